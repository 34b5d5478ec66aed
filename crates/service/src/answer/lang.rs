//! The language of a question, for the words docchat itself writes in an answer
//! (the model is asked to answer in the question's language by its system prompt).
//! A question is taken as Italian when its common words are; German, French and
//! Spanish as the keyword index tells them; English otherwise.

/// A language docchat writes its own words in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    English,
    Italian,
    German,
    French,
    Spanish,
}

/// Italian words common in questions (articles, prepositions, question words) and
/// the verbs of whole-document questions.
const ITALIAN: &[&str] = &[
    "il",
    "lo",
    "la",
    "le",
    "gli",
    "di",
    "del",
    "della",
    "dei",
    "delle",
    "che",
    "quali",
    "quale",
    "cosa",
    "come",
    "dove",
    "quando",
    "perché",
    "questo",
    "questa",
    "sono",
    "è",
    "un",
    "una",
    "per",
    "con",
    "nel",
    "nella",
    "si",
    "ogni",
    "tutti",
    "tutte",
    "riassumi",
    "elenca",
    "capitolo",
    "pagine",
    "documento",
    "documenti",
    "chi",
    "ha",
    "hanno",
    "non",
    "al",
    "alla",
    "dal",
    "sul",
    "quanto",
    "quanti",
    "quante",
    "qual",
];

/// English words common in questions, against which the Italian ones are counted.
const ENGLISH: &[&str] = &[
    "the", "a", "an", "of", "to", "in", "is", "are", "what", "which", "how", "does", "do", "for",
    "with", "on", "and", "or", "this", "that", "from", "by", "be", "can", "i", "my", "it", "who",
    "when", "where", "why",
];

/// The language `question` is written in: German, French or Spanish (or Italian)
/// when the keyword index's detector says so; otherwise Italian when its common
/// Italian words outnumber its common English ones (two at least), make a quarter
/// of it, or it asks for a summary in Italian; English else.
pub fn of(question: &str) -> Lang {
    use docchat_store::keywords::{Language, detect};
    match detect(question) {
        Some(Language::Italian) => return Lang::Italian,
        Some(Language::German) => return Lang::German,
        Some(Language::French) => return Lang::French,
        Some(Language::Spanish) => return Lang::Spanish,
        _ => {}
    }
    let lower = question.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let italian = words.iter().filter(|w| ITALIAN.contains(w)).count();
    let english = words.iter().filter(|w| ENGLISH.contains(w)).count();
    if (italian >= 2 && italian > english)
        || italian * 4 >= words.len().max(1)
        || words
            .iter()
            .any(|w| w.starts_with("riassum") || *w == "sintesi")
    {
        Lang::Italian
    } else {
        Lang::English
    }
}

/// "page 3", "pagine 3-5": a place in a document in `lang`.
pub fn pages(lang: Lang, at: &docchat_core::Location) -> String {
    match lang {
        Lang::English => at.pages(),
        Lang::Italian if at.page_start == at.page_end => format!("pagina {}", at.page_start),
        Lang::Italian => format!("pagine {}-{}", at.page_start, at.page_end),
        Lang::German if at.page_start == at.page_end => format!("Seite {}", at.page_start),
        Lang::German => format!("Seiten {}-{}", at.page_start, at.page_end),
        Lang::French if at.page_start == at.page_end => format!("page {}", at.page_start),
        Lang::French => format!("pages {}-{}", at.page_start, at.page_end),
        Lang::Spanish if at.page_start == at.page_end => format!("página {}", at.page_start),
        Lang::Spanish => format!("páginas {}-{}", at.page_start, at.page_end),
    }
}

/// The last line of a prompt for a question not in English: the language to answer
/// in, said in that language where docchat knows how (else in English).
pub fn answer_in(question: &str) -> Option<String> {
    use docchat_store::keywords::{Language, detect};
    Some(match detect(question)? {
        Language::English => return None,
        Language::Italian => "Rispondi in italiano, con le parole dei passi.".to_string(),
        Language::German => "Antworte auf Deutsch, mit den Worten der Passagen.".to_string(),
        Language::French => "Réponds en français, avec les mots des passages.".to_string(),
        Language::Spanish => "Responde en español, con las palabras de los pasajes.".to_string(),
        Language::Portuguese => "Responda em português, com as palavras das passagens.".to_string(),
        other => format!("Answer in {other}, using the passages' own words."),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_asked_for_in_the_questions_language() {
        assert_eq!(
            answer_in("Come si converte un file system ext2 in ext3?").as_deref(),
            Some("Rispondi in italiano, con le parole dei passi.")
        );
        assert!(
            answer_in("Wie wandle ich ein ext2-Dateisystem in ext3 um?")
                .unwrap()
                .starts_with("Antworte auf Deutsch")
        );
        assert_eq!(answer_in("How do I convert ext2 to ext3?"), None);
        assert_eq!(answer_in("ext3?"), None);
    }

    #[test]
    fn questions_in_italian_and_english() {
        for q in [
            "Quali sono le opzioni del comando?",
            "Come si installa il pacchetto?",
            "Riassumi questo documento",
            "Perché l'archivio testing è poco utile?",
            "Chi ha vinto i Mondiali di calcio del 2018?",
            "Cosa si scrive in limits.conf per permettere i file core dump senza limiti?",
            "Quale programma crea la directory debian a partire dall'archivio dei sorgenti \
             originali gentoo-0.9.12.tar.gz?",
        ] {
            assert_eq!(of(q), Lang::Italian, "{q}");
        }
        for q in [
            "What are the options of the command?",
            "How do I install the package?",
            "Summarize this document",
            "Which DESCRIPTION field declares LinkingTo?",
            "Can I use it?",
        ] {
            assert_eq!(of(q), Lang::English, "{q}");
        }
        assert_eq!(
            of("Welche Optionen hat der Befehl für das Paket?"),
            Lang::German
        );
        assert_eq!(
            of("Quelles sont les options de la commande pour le paquet ?"),
            Lang::French
        );
        assert_eq!(
            of("¿Cuáles son las opciones del comando para el paquete?"),
            Lang::Spanish
        );
    }
}
