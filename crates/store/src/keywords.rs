//! The keyword side of the index: each chunk's language, told from its text, and its
//! words analysed for that language (lower case, stop words out, stemmed, accents
//! folded). The analysed words are stored beside the text (`keywords`), and the
//! full-text index splits them on spaces only, so chunks in several languages share
//! one index, each analysed in its own. A question is analysed the same way, in its
//! own language.
//!
//! The stemmers and stop-word lists are those of LanceDB's own full-text index
//! (`lance-tokenizer`); the language is told by `whichlang`.

use std::sync::LazyLock;

use lance_tokenizer::{
    AsciiFoldingFilter, Language as Stemming, LowerCaser, RemoveLongFilter, SimpleTokenizer,
    Stemmer, StopWordFilter, TextAnalyzer, TokenStream,
};

/// A language a chunk or a question is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Language {
    /// Arabic.
    Arabic,
    /// Chinese (Mandarin).
    Chinese,
    /// Dutch.
    Dutch,
    /// English.
    English,
    /// French.
    French,
    /// German.
    German,
    /// Hindi.
    Hindi,
    /// Italian.
    Italian,
    /// Japanese.
    Japanese,
    /// Korean.
    Korean,
    /// Portuguese.
    Portuguese,
    /// Russian.
    Russian,
    /// Spanish.
    Spanish,
    /// Swedish.
    Swedish,
    /// Turkish.
    Turkish,
    /// Vietnamese.
    Vietnamese,
}

/// Every language told apart, in code order.
pub const LANGUAGES: [Language; 16] = [
    Language::Arabic,
    Language::German,
    Language::English,
    Language::Spanish,
    Language::French,
    Language::Hindi,
    Language::Italian,
    Language::Japanese,
    Language::Korean,
    Language::Dutch,
    Language::Portuguese,
    Language::Russian,
    Language::Swedish,
    Language::Turkish,
    Language::Vietnamese,
    Language::Chinese,
];

/// Fewer letters than this do not tell a language.
const MIN_LETTERS: usize = 20;

/// Words longer than this (bytes) are not indexed: hashes, base64, run-together text.
const MAX_WORD: usize = 40;

impl Language {
    /// The ISO 639-1 code ("it").
    pub fn code(self) -> &'static str {
        match self {
            Self::Arabic => "ar",
            Self::Chinese => "zh",
            Self::Dutch => "nl",
            Self::English => "en",
            Self::French => "fr",
            Self::German => "de",
            Self::Hindi => "hi",
            Self::Italian => "it",
            Self::Japanese => "ja",
            Self::Korean => "ko",
            Self::Portuguese => "pt",
            Self::Russian => "ru",
            Self::Spanish => "es",
            Self::Swedish => "sv",
            Self::Turkish => "tr",
            Self::Vietnamese => "vi",
        }
    }

    /// The language of an ISO 639-1 code.
    pub fn from_code(code: &str) -> Option<Self> {
        LANGUAGES.into_iter().find(|l| l.code() == code)
    }

    /// The English name ("Italian").
    pub fn name(self) -> &'static str {
        match self {
            Self::Arabic => "Arabic",
            Self::Chinese => "Chinese",
            Self::Dutch => "Dutch",
            Self::English => "English",
            Self::French => "French",
            Self::German => "German",
            Self::Hindi => "Hindi",
            Self::Italian => "Italian",
            Self::Japanese => "Japanese",
            Self::Korean => "Korean",
            Self::Portuguese => "Portuguese",
            Self::Russian => "Russian",
            Self::Spanish => "Spanish",
            Self::Swedish => "Swedish",
            Self::Turkish => "Turkish",
            Self::Vietnamese => "Vietnamese",
        }
    }

    /// Whether words of this language are stemmed and stop words removed (the
    /// others are only lower-cased and folded).
    pub fn stemmed(self) -> bool {
        self.stemming().is_some()
    }

    fn stemming(self) -> Option<Stemming> {
        Some(match self {
            Self::Arabic => Stemming::Arabic,
            Self::Dutch => Stemming::Dutch,
            Self::English => Stemming::English,
            Self::French => Stemming::French,
            Self::German => Stemming::German,
            Self::Italian => Stemming::Italian,
            Self::Portuguese => Stemming::Portuguese,
            Self::Russian => Stemming::Russian,
            Self::Spanish => Stemming::Spanish,
            Self::Swedish => Stemming::Swedish,
            Self::Turkish => Stemming::Turkish,
            Self::Chinese | Self::Hindi | Self::Japanese | Self::Korean | Self::Vietnamese => {
                return None;
            }
        })
    }

    fn of(lang: whichlang::Lang) -> Self {
        use whichlang::Lang as W;
        match lang {
            W::Ara => Self::Arabic,
            W::Cmn => Self::Chinese,
            W::Deu => Self::German,
            W::Eng => Self::English,
            W::Fra => Self::French,
            W::Hin => Self::Hindi,
            W::Ita => Self::Italian,
            W::Jpn => Self::Japanese,
            W::Kor => Self::Korean,
            W::Nld => Self::Dutch,
            W::Por => Self::Portuguese,
            W::Rus => Self::Russian,
            W::Spa => Self::Spanish,
            W::Swe => Self::Swedish,
            W::Tur => Self::Turkish,
            W::Vie => Self::Vietnamese,
        }
    }
}

impl serde::Serialize for Language {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl std::fmt::Display for Language {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Texts shorter than this (letters) are told by their stop words first.
const SHORT: usize = 300;

/// The language `text` is written in; `None` when it has too few letters to tell.
///
/// A short text (a question) that names identifiers and English terms can look
/// English to letter statistics ("Come si converte un file system ext2 in ext3?"),
/// while its small words say otherwise: it goes to the language with the most stop
/// words in it, when no other language has as many.
pub fn detect(text: &str) -> Option<Language> {
    let letters = text.chars().filter(|c| c.is_alphabetic()).count();
    if letters < MIN_LETTERS {
        return None;
    }
    if letters < SHORT
        && let Some(lang) = by_stop_words(text)
    {
        return Some(lang);
    }
    Some(Language::of(whichlang::detect_language(text)))
}

/// The language whose stop words `text` has most of (one at least, no tie).
fn by_stop_words(text: &str) -> Option<Language> {
    let words = |a: &TextAnalyzer| {
        let mut a = a.clone();
        let mut stream = a.token_stream(text);
        let mut n = 0usize;
        while stream.advance() {
            n += 1;
        }
        n
    };
    let all = words(&PLAIN);
    let mut counts: Vec<(Language, usize)> = STOP_WORDS
        .iter()
        .map(|(l, a)| (*l, all - words(a)))
        .collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1));
    match counts.as_slice() {
        [(lang, best), (_, next), ..] if *best >= 1 && best > next => Some(*lang),
        _ => None,
    }
}

/// Splits and lower-cases only.
static PLAIN: LazyLock<TextAnalyzer> = LazyLock::new(|| {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(LowerCaser)
        .build()
});

/// Per language with a stop-word list, an analyzer that drops them.
static STOP_WORDS: LazyLock<Vec<(Language, TextAnalyzer)>> = LazyLock::new(|| {
    LANGUAGES
        .iter()
        .filter_map(|l| {
            let stop = StopWordFilter::new(l.stemming()?)?;
            let a = TextAnalyzer::builder(SimpleTokenizer::default())
                .filter(LowerCaser)
                .filter(stop)
                .build();
            Some((*l, a))
        })
        .collect()
});

/// The language of each of `texts` (the chunks of one document): a text too short
/// to tell takes the language most of the document's letters are in, English when
/// none can be told.
pub fn detect_each(texts: &[&str]) -> Vec<Language> {
    let told: Vec<Option<Language>> = texts.iter().map(|t| detect(t)).collect();
    let mut letters: Vec<(Language, usize)> = Vec::new();
    for (lang, text) in told.iter().zip(texts) {
        if let Some(lang) = lang {
            match letters.iter_mut().find(|(l, _)| l == lang) {
                Some((_, n)) => *n += text.len(),
                None => letters.push((*lang, text.len())),
            }
        }
    }
    let main = letters
        .iter()
        .max_by_key(|(_, n)| *n)
        .map_or(Language::English, |(l, _)| *l);
    told.into_iter().map(|l| l.unwrap_or(main)).collect()
}

/// Whether `lang` is written without spaces between words.
fn unspaced(lang: Language) -> bool {
    matches!(lang, Language::Chinese | Language::Japanese)
}

/// Han, kana and the CJK punctuation-free blocks: the characters of unspaced text.
fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2FA1F)
}

/// A run of unspaced text as its overlapping character pairs ("全文检索" → "全文",
/// "文检", "检索"), the usual stand-in for words where no dictionary is at hand;
/// other words as they are.
fn split_unspaced(word: &str, out: &mut Vec<String>) {
    if !word.chars().any(is_cjk) {
        if word.len() <= MAX_WORD {
            out.push(word.to_string());
        }
        return;
    }
    let chars: Vec<char> = word.chars().collect();
    if chars.len() == 1 {
        out.push(word.to_string());
    }
    for pair in chars.windows(2) {
        out.push(pair.iter().collect());
    }
}

fn analyzer(lang: Language) -> TextAnalyzer {
    // Unspaced text comes out of the tokenizer as whole runs, split afterwards.
    let limit = if unspaced(lang) { usize::MAX } else { MAX_WORD };
    let base = TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(limit))
        .filter(LowerCaser)
        .dynamic();
    let base = match lang.stemming() {
        Some(s) => {
            let base = match StopWordFilter::new(s) {
                Some(stop) => base.filter_dynamic(stop),
                None => base,
            };
            base.filter_dynamic(Stemmer::new(s))
        }
        None => base,
    };
    base.filter_dynamic(AsciiFoldingFilter).build()
}

/// One analyzer per language, built once.
static ANALYZERS: LazyLock<Vec<(Language, TextAnalyzer)>> =
    LazyLock::new(|| LANGUAGES.iter().map(|l| (*l, analyzer(*l))).collect());

/// The words of `text` as the keyword index holds them for `lang`: lower case, stop
/// words out, stemmed, accents folded, in order.
pub fn analyse(text: &str, lang: Language) -> Vec<String> {
    let mut analyzer = ANALYZERS
        .iter()
        .find(|(l, _)| *l == lang)
        .map(|(_, a)| a.clone())
        .unwrap_or_else(|| analyzer(lang));
    let mut stream = analyzer.token_stream(text);
    let mut out = Vec::new();
    while stream.advance() {
        let word = &stream.token().text;
        if unspaced(lang) {
            split_unspaced(word, &mut out);
        } else {
            out.push(word.clone());
        }
    }
    out
}

/// The `keywords` value of a chunk: its analysed words joined by spaces.
pub fn keywords(text: &str, lang: Language) -> String {
    analyse(text, lang).join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_are_told_from_sentences() {
        let cases = [
            (
                "Come si crea un pacchetto Debian a partire dai sorgenti originali?",
                Language::Italian,
            ),
            (
                "How do I build a Debian package from the upstream sources?",
                Language::English,
            ),
            (
                "Wie erstelle ich ein Debian-Paket aus den Quellen des Autors?",
                Language::German,
            ),
            (
                "Comment créer un paquet Debian à partir des sources originales ?",
                Language::French,
            ),
            (
                "¿Cómo se crea un paquete de Debian a partir de las fuentes originales?",
                Language::Spanish,
            ),
        ];
        for (text, lang) in cases {
            assert_eq!(detect(text), Some(lang), "{text}");
        }
        assert_eq!(detect("dpkg -i"), None);
        // Identifiers and English terms do not outweigh the question's small words.
        assert_eq!(
            detect("Come si converte un file system ext2 in ext3?"),
            Some(Language::Italian)
        );
        assert_eq!(
            detect("What does R CMD check do with the vignettes?"),
            Some(Language::English)
        );
        assert_eq!(
            detect("Which DESCRIPTION field declares LinkingTo?"),
            Some(Language::English)
        );
    }

    #[test]
    fn short_chunks_take_the_documents_language() {
        let texts = [
            "Il manutentore del pacchetto deve controllare le dipendenze prima di caricarlo.",
            "p. 12",
            "La guida spiega come preparare un pacchetto per la distribuzione Debian.",
        ];
        assert_eq!(detect_each(&texts), vec![Language::Italian; 3]);
        assert_eq!(detect_each(&["12", "ok"]), vec![Language::English; 2]);
    }

    #[test]
    fn words_are_stemmed_and_stop_words_dropped_per_language() {
        // Italian plural and singular meet; articles and prepositions go.
        let it = analyse("I pacchetti della distribuzione", Language::Italian);
        assert_eq!(it, analyse("il pacchetto distribuzioni", Language::Italian));
        assert!(!it.iter().any(|w| w == "della" || w == "i"));
        // English as the index always did.
        assert_eq!(
            analyse("The packages are building", Language::English),
            vec!["packag", "build"]
        );
        // Accents fold after stemming, so "perché" and "perche" meet.
        assert_eq!(
            analyse("città", Language::Italian),
            analyse("citta", Language::Italian)
        );
        // A language with no stemmer keeps its words, lower-cased.
        assert_eq!(analyse("Hà Nội", Language::Vietnamese), vec!["ha", "noi"]);
        // Unspaced text is searched by character pairs, however long the run.
        let zh = analyse("全文检索的索引，Lance 格式", Language::Chinese);
        assert_eq!(
            zh,
            vec![
                "全文", "文检", "检索", "索的", "的索", "索引", "lance", "格式"
            ]
        );
        let q = analyse("全文检索", Language::Chinese);
        assert!(q.iter().all(|w| zh.contains(w)), "{q:?}");
        assert_eq!(
            keywords("Running dpkg-buildpackage", Language::English),
            "run dpkg buildpackag"
        );
    }

    #[test]
    fn codes_round_trip() {
        for l in LANGUAGES {
            assert_eq!(Language::from_code(l.code()), Some(l));
        }
        assert_eq!(Language::from_code("xx"), None);
    }
}
