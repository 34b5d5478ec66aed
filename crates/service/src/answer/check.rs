//! Answers checked against their sources: each sentence of an answer is a claim;
//! a claim that cites `[n]` is *supported* by passage n when the passage holds the
//! sentence's content words (numbers, identifiers, names, rare terms); a claim
//! that states something and cites nothing is *uncited*.

use crate::answer::retrieve::{cited_markers, is_marker};
use serde::{Deserialize, Serialize};

/// One sentence of an answer, checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claim {
    /// The sentence, markers included, as the answer has it.
    pub text: String,
    /// The sources it cites, each with whether that source supports it.
    pub cites: Vec<CheckedCite>,
    /// It states something (it has content words) and cites no source.
    pub uncited: bool,
    /// When no source it cites holds it: the source docchat found that does (the
    /// one holding most of its content words, the better ranked on a tie), shown
    /// as docchat's citation beside the model's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub found_in: Option<usize>,
}

/// One source a claim cites.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckedCite {
    /// The source number.
    pub n: usize,
    /// The passage holds the claim's content words.
    pub supported: bool,
    /// The content words the passage lacks (why it is unsupported).
    pub missing: Vec<String>,
}

impl Claim {
    /// Whether some source it cites does not support it.
    pub fn is_unsupported(&self) -> bool {
        self.cites.iter().any(|c| !c.supported)
    }
}

/// Checks each sentence of `answer` against `passages` (source n is
/// `passages[n - 1]`). Markers naming no passage are left out (they are reported
/// as unknown elsewhere).
pub fn check(answer: &str, passages: &[&str]) -> Vec<Claim> {
    let lowered: Vec<String> = passages.iter().map(|p| p.to_lowercase()).collect();
    sentences(answer)
        .into_iter()
        .filter_map(|sentence| {
            let words = content_words(&sentence);
            let (numbers, _) = cited_markers(&sentence, passages.len());
            if words.is_empty() && numbers.is_empty() {
                return None;
            }
            let cites = check_cites(&words, &numbers, &lowered);
            let found_in = if cites.iter().any(|c| c.supported) {
                None
            } else {
                find_source(&words, &lowered)
            };
            Some(Claim {
                uncited: cites.is_empty() && !words.is_empty(),
                cites,
                text: sentence,
                found_in,
            })
        })
        .collect()
}

/// The sources a sentence cites, each checked. A source holding every content
/// word supports the sentence; so does one of several cited sources that hold
/// them only together when the others, without it, do not (a sentence joining
/// two passages cites both). A source the others make redundant, or that adds to
/// no combination holding the sentence, does not support it: the rule of
/// citation precision of the ALCE benchmark (Gao et al., 2023).
fn check_cites(words: &[Word], numbers: &[usize], lowered: &[String]) -> Vec<CheckedCite> {
    let held_by = |skip: Option<usize>| {
        let joined: Vec<&str> = numbers
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != skip)
            .map(|(_, &n)| lowered[n - 1].as_str())
            .collect();
        !joined.is_empty() && missing_words(words, &joined.join("\n")).is_empty()
    };
    let together = numbers.len() > 1 && held_by(None);
    numbers
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            let missing = missing_words(words, &lowered[n - 1]);
            let supported = missing.is_empty() || (together && !held_by(Some(i)));
            CheckedCite {
                n,
                supported,
                missing: if supported {
                    Vec::new()
                } else {
                    missing.into_iter().map(|w| w.text).collect()
                },
            }
        })
        .collect()
}

/// Whether nothing `claims` state is in any of `passages`: at least one claim
/// states something, and no such claim is held (by the rule of [`holds`]) by any
/// passage, cited or not. An answer made up beside its sources; a refusal or a
/// sentence without content words is not.
pub fn unfounded(claims: &[Claim], passages: &[&str]) -> bool {
    let lowered: Vec<String> = passages.iter().map(|p| p.to_lowercase()).collect();
    let stating: Vec<Vec<Word>> = claims
        .iter()
        .map(|c| content_words(&c.text))
        .filter(|w| !w.is_empty())
        .collect();
    !stating.is_empty()
        && stating
            .iter()
            .all(|words| lowered.iter().all(|p| !missing_words(words, p).is_empty()))
}

/// Whether `passage` holds what `sentence` states: its content words, by the rule
/// of the support check (a sentence with no content words holds nowhere).
pub fn holds(sentence: &str, passage: &str) -> bool {
    let words = content_words(sentence);
    !words.is_empty() && missing_words(&words, &passage.to_lowercase()).is_empty()
}

/// The passage (numbered from 1) that holds `words` by the rule of
/// [`missing_words`] and holds most of them, the first on a tie; none for a claim
/// too thin to place (a single plain term).
fn find_source(words: &[Word], passages: &[String]) -> Option<usize> {
    if words.len() < 2 && !words.iter().any(|w| w.exact) {
        return None;
    }
    let held = |passage: &str| {
        words
            .iter()
            .filter(|w| {
                let lower = w.text.to_lowercase();
                passage.contains(&if w.exact { lower.clone() } else { stem(&lower) })
            })
            .count()
    };
    passages
        .iter()
        .enumerate()
        .filter(|(_, p)| missing_words(words, p).is_empty())
        .map(|(i, p)| (i + 1, held(p)))
        .fold(None, |best: Option<(usize, usize)>, (n, h)| match best {
            Some((_, bh)) if bh >= h => best,
            _ => Some((n, h)),
        })
        .map(|(n, _)| n)
}

/// The sentences of `text`: cut after `.`, `!` or `?` followed by a space, and at
/// line breaks; markers after the full stop (`… here. [2]`) stay with their
/// sentence.
pub fn sentences(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\n' {
            push_sentence(&mut out, &mut current);
            continue;
        }
        current.push(c);
        let next_is_space = chars.peek().is_none_or(|n| n.is_whitespace());
        if matches!(c, '.' | '!' | '?') && next_is_space && !ends_with_abbreviation(&current) {
            push_sentence(&mut out, &mut current);
        }
    }
    push_sentence(&mut out, &mut current);
    out
}

fn push_sentence(out: &mut Vec<String>, current: &mut String) {
    // Markers that open a sentence (`… here. [2] Next`) belong to the one before.
    let (lead, rest) = leading_markers(current.trim());
    match out.last_mut() {
        Some(last) if !lead.is_empty() => {
            last.push(' ');
            last.push_str(lead);
        }
        _ => {}
    }
    let rest = if out.is_empty() { current.trim() } else { rest };
    if !rest.is_empty() {
        out.push(rest.to_string());
    }
    current.clear();
}

/// Splits `s` into the markers it starts with and the rest.
fn leading_markers(s: &str) -> (&str, &str) {
    let mut end = 0;
    let mut rest = s;
    while let Some(inner) = rest.strip_prefix('[') {
        let Some(close) = inner.find(']') else { break };
        if !is_marker(&inner[..close]) {
            break;
        }
        end = s.len() - inner[close + 1..].len();
        rest = inner[close + 1..].trim_start();
    }
    let lead = s[..end].trim();
    (lead, s[end..].trim())
}

/// `sentence` without its `[n]` markers.
fn strip_markers(sentence: &str) -> String {
    let mut out = String::with_capacity(sentence.len());
    let mut rest = sentence;
    while let Some(open) = rest.find('[') {
        out.push_str(&rest[..open]);
        let inner = &rest[open + 1..];
        match inner.find(']') {
            Some(close) if is_marker(&inner[..close]) => {
                out.push(' ');
                rest = &inner[close + 1..];
            }
            _ => {
                out.push('[');
                rest = inner;
            }
        }
    }
    out.push_str(rest);
    out
}

fn ends_with_abbreviation(s: &str) -> bool {
    let last = s
        .rsplit(char::is_whitespace)
        .next()
        .unwrap_or("")
        .trim_start_matches(['(', '[', '"']);
    matches!(
        last.to_lowercase().as_str(),
        "e.g." | "i.e." | "etc." | "vs." | "cf." | "p." | "pp." | "fig." | "no." | "dr." | "mr."
    )
}

/// A word a claim's passage must hold.
#[derive(Debug, Clone, PartialEq)]
struct Word {
    /// As the sentence writes it.
    text: String,
    /// Numbers, identifiers and names must appear as they are; other terms may
    /// differ in their ending (`registered`, `registration`).
    exact: bool,
}

/// Function words and the words every answer uses, which claim nothing.
const COMMON: &[&str] = &[
    "about",
    "above",
    "after",
    "again",
    "against",
    "also",
    "although",
    "always",
    "among",
    "another",
    "answer",
    "anything",
    "around",
    "because",
    "been",
    "before",
    "being",
    "below",
    "between",
    "both",
    "cannot",
    "could",
    "does",
    "doing",
    "done",
    "down",
    "during",
    "each",
    "either",
    "else",
    "enough",
    "even",
    "every",
    "example",
    "excerpt",
    "excerpts",
    "first",
    "following",
    "from",
    "further",
    "given",
    "have",
    "having",
    "here",
    "however",
    "information",
    "instead",
    "into",
    "itself",
    "just",
    "like",
    "made",
    "make",
    "makes",
    "many",
    "more",
    "most",
    "much",
    "must",
    "need",
    "needs",
    "neither",
    "never",
    "only",
    "other",
    "others",
    "otherwise",
    "over",
    "passage",
    "passages",
    "document",
    "documents",
    "question",
    "rather",
    "really",
    "same",
    "says",
    "should",
    "shown",
    "since",
    "some",
    "something",
    "specific",
    "specified",
    "still",
    "such",
    "than",
    "that",
    "their",
    "them",
    "themselves",
    "then",
    "there",
    "therefore",
    "these",
    "they",
    "thing",
    "things",
    "this",
    "those",
    "though",
    "through",
    "thus",
    "together",
    "under",
    "until",
    "upon",
    "used",
    "uses",
    "using",
    "usually",
    "very",
    "want",
    "well",
    "were",
    "what",
    "whatever",
    "when",
    "where",
    "whether",
    "which",
    "while",
    "whose",
    "will",
    "with",
    "within",
    "without",
    "would",
    "your",
    "yourself",
    "mentioned",
    "provided",
    "provide",
    "provides",
    "according",
    "described",
    "describes",
    "called",
    "include",
    "includes",
    "including",
    "important",
    "different",
    "possible",
    "available",
    "certain",
    "several",
    "particular",
    "typically",
    "generally",
    "simply",
    "actually",
    "directly",
];

/// Letters below which a plain lower-case word is too common to check.
const RARE_LETTERS: usize = 6;

/// The content words of a sentence, its markers left out.
fn content_words(sentence: &str) -> Vec<Word> {
    let mut out: Vec<Word> = Vec::new();
    let mut first = true;
    let text = strip_markers(sentence);
    for raw in text.split(|c: char| {
        c.is_whitespace()
            || matches!(
                c,
                ',' | ';' | '"' | '“' | '”' | '[' | ']' | '(' | ')' | '`' | '*'
            )
    }) {
        let token =
            raw.trim_matches(|c: char| matches!(c, '.' | ':' | '!' | '?' | '\'' | '’' | '-'));
        if token.is_empty() {
            continue;
        }
        let was_first = std::mem::replace(&mut first, false);
        let Some(word) = classify(token, was_first) else {
            continue;
        };
        if !out.iter().any(|w| w.text.eq_ignore_ascii_case(&word.text)) {
            out.push(word);
        }
    }
    out
}

fn classify(token: &str, first_of_sentence: bool) -> Option<Word> {
    let has_digit = token.chars().any(|c| c.is_ascii_digit());
    let has_symbol = token
        .chars()
        .any(|c| matches!(c, '_' | '@' | '$' | '.' | ':' | '/' | '\\' | '#' | '='));
    let uppers = token.chars().filter(|c| c.is_uppercase()).count();
    let letters = token.chars().filter(|c| c.is_alphabetic()).count();
    let capitalized = token.chars().next().is_some_and(char::is_uppercase);
    let lower = token.to_lowercase();
    let common = COMMON.contains(&lower.as_str());
    let exact = has_digit
        || has_symbol
        || uppers >= 2
        || (capitalized && !first_of_sentence && !common && letters >= 2);
    if exact {
        return Some(Word {
            text: token.to_string(),
            exact: true,
        });
    }
    (letters >= RARE_LETTERS && !common).then(|| Word {
        text: token.to_string(),
        exact: false,
    })
}

/// The words `passage` (lower-cased) lacks: any exact word, and the terms beyond
/// the half of them that may be paraphrased.
fn missing_words(words: &[Word], passage: &str) -> Vec<Word> {
    let (exact, terms): (Vec<&Word>, Vec<&Word>) = words.iter().partition(|w| w.exact);
    let mut missing: Vec<Word> = exact
        .into_iter()
        .filter(|w| !passage.contains(&w.text.to_lowercase()))
        .cloned()
        .collect();
    let absent: Vec<&Word> = terms
        .iter()
        .copied()
        .filter(|w| !passage.contains(&stem(&w.text.to_lowercase())))
        .collect();
    // Half of the other terms may be the answer's own words.
    if absent.len() * 2 > terms.len() {
        missing.extend(absent.into_iter().cloned());
    }
    missing
}

/// The part of a word its other forms share: all but a few letters of its ending.
fn stem(word: &str) -> String {
    let chars: Vec<char> = word.chars().collect();
    let keep = chars.len().saturating_sub(3).max(5).min(chars.len());
    chars[..keep].iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_keep_their_markers_and_identifiers() {
        let s = sentences(
            "Use .Call to call C code. [1] It takes e.g. three args [2].\nA list:\n- one",
        );
        assert_eq!(
            s,
            [
                "Use .Call to call C code. [1]",
                "It takes e.g. three args [2].",
                "A list:",
                "- one"
            ]
        );
        assert_eq!(
            sentences("- archive room (p. 1) [1]\n- key (p. 2) [1]").len(),
            2,
            "a page in parentheses ends no sentence"
        );
    }

    #[test]
    fn content_words_are_numbers_identifiers_names_and_rare_terms() {
        let words: Vec<String> = content_words(
            "The Authors@R field lists each person() with 2 roles in Vienna, see [3].",
        )
        .into_iter()
        .map(|w| w.text)
        .collect();
        assert_eq!(words, ["Authors@R", "person", "2", "Vienna"]);
        let words: Vec<Word> = content_words("Packages register their native routines.");
        assert_eq!(
            words
                .iter()
                .map(|w| (w.text.as_str(), w.exact))
                .collect::<Vec<_>>(),
            [
                ("Packages", false),
                ("register", false),
                ("native", false),
                ("routines", false)
            ]
        );
    }

    #[test]
    fn claims_are_checked_against_the_passage_they_cite() {
        let passages = [
            "The Authors@R field of DESCRIPTION gives the authors, each a call to person() with roles.",
            "Registering native routines makes .Call faster and safer.",
        ];
        let claims = check(
            "Record the authors in the Authors@R field [1]. Routines are registered natively [2]. \
             The dose is 400 mg [2]. R was written in Vienna.",
            &passages,
        );
        assert_eq!(claims.len(), 4);
        assert!(!claims[0].is_unsupported() && !claims[0].uncited);
        assert!(!claims[1].is_unsupported(), "{:?}", claims[1]);
        assert!(claims[2].is_unsupported());
        assert_eq!(claims[2].cites[0].missing, ["400"]);
        assert!(claims[3].uncited && claims[3].cites.is_empty());
        // The same claim cited to the wrong passage is unsupported.
        let wrong = check("Use the Authors@R field [2].", &passages);
        assert_eq!(wrong[0].cites[0].missing, ["Authors@R"]);
        // A refusal states nothing; a marker naming no passage is not checked.
        assert!(check("The documents do not say.", &passages).is_empty());
        let unknown = check("See the Authors@R field [7].", &passages);
        assert!(unknown[0].cites.is_empty() && unknown[0].uncited);
    }

    #[test]
    fn a_sentence_joining_two_passages_is_supported_by_both_and_not_by_a_third() {
        let passages = [
            "The Authors@R field of DESCRIPTION gives the authors.",
            "Each author is a call to person() with roles.",
            "Registering native routines makes .Call faster.",
            "The Authors@R field of DESCRIPTION lists each person() of the package.",
        ];
        // Neither [1] nor [2] holds it alone; together they do, and each is needed.
        let joined = check("The Authors@R field lists each person() [1][2].", &passages);
        assert!(
            joined[0].cites.iter().all(|c| c.supported),
            "{:?}",
            joined[0]
        );
        // [3] adds nothing to [1][2]: not supported, with what it lacks.
        let extra = check(
            "The Authors@R field lists each person() [1][2][3].",
            &passages,
        );
        let third = &extra[0].cites[2];
        assert!(!third.supported && third.missing.contains(&"Authors@R".to_string()));
        assert!(extra[0].cites[..2].iter().all(|c| c.supported));
        // [4] alone holds it: [4] is supported, [1] (made redundant) is not.
        let redundant = check("The Authors@R field lists each person() [4][1].", &passages);
        assert!(redundant[0].cites[0].supported);
        assert!(!redundant[0].cites[1].supported);
    }

    #[test]
    fn an_answer_no_source_holds_is_unfounded() {
        let passages = [
            "The manuals and FAQs are written in texinfo.",
            "Registering native routines makes .Call faster.",
        ];
        let claims_of = |answer: &str| check(answer, &passages);
        // Made up beside the sources, cited or not.
        let made_up = claims_of("Use the ubuntu:latest image [1]. It has apt.");
        assert!(unfounded(&made_up, &passages));
        // One sentence held somewhere is enough, even a thin one docchat would not
        // place, and even cited to the wrong source.
        let thin = claims_of("They are written in texinfo [2]. Use ubuntu:latest.");
        assert!(!unfounded(&thin, &passages));
        // A refusal states nothing.
        assert!(!unfounded(
            &claims_of("The documents do not say."),
            &passages
        ));
        assert!(!unfounded(&[], &passages));
    }

    #[test]
    fn a_claim_no_cited_source_holds_is_placed_in_the_source_that_does() {
        let passages = [
            "Registering native routines makes .Call faster and safer.",
            "The Authors@R field of DESCRIPTION gives the authors, each a call to person() with roles.",
            "Authors@R is also read by citation().",
        ];
        let claims = check(
            "Record the authors in the Authors@R field with person(). \
             Use the Authors@R field [1]. Registered routines are faster [1]. \
             The dose is 400 mg. Routines.",
            &passages,
        );
        // Uncited: placed in the passage holding most of its words.
        assert_eq!(claims[0].found_in, Some(2), "{:?}", claims[0]);
        // Cited to the wrong passage: placed where it is.
        assert!(claims[1].is_unsupported());
        assert_eq!(claims[1].found_in, Some(2));
        // Cited right: nothing to place.
        assert_eq!(claims[2].found_in, None);
        // In no passage, or too thin to place: left unplaced.
        assert_eq!(claims[3].found_in, None);
        assert_eq!(claims[4].found_in, None);
    }
}
