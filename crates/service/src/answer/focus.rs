//! Passages cut to what the question is about: a small model given the few
//! sentences that hold the question's words answers sooner (a shorter prompt) and
//! strays less than one given whole chunks. A passage keeps the run of whole
//! sentences, at most a given length, that holds most of the question's words.

use crate::answer::retrieve::Passage;
use std::collections::HashSet;

/// The question's words worth finding in a passage: lower-cased, four letters or
/// more, function words left out.
fn terms(question: &str) -> HashSet<String> {
    const SKIP: &[&str] = &[
        "what", "which", "when", "where", "does", "with", "from", "that", "this", "have", "there",
        "their", "they", "into", "about", "should", "would", "could", "used", "using", "make",
        "many", "much", "some", "will", "been", "were", "than",
    ];
    question
        .split(|c: char| !c.is_alphanumeric() && c != '_' && c != '@' && c != '.')
        .map(|w| w.trim_matches('.').to_lowercase())
        .filter(|w| w.chars().count() >= 4 && !SKIP.contains(&w.as_str()))
        .map(|w| w.chars().take(6).collect())
        .collect()
}

/// Byte ranges of the sentences of `text` (cut after `.`, `!`, `?` or a line
/// break followed by white space), covering it whole.
fn sentence_spans(text: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    for (i, c) in text.char_indices() {
        let end = i + c.len_utf8();
        // A single line break is a PDF's line wrap, not the end of a sentence.
        let boundary = matches!(c, '.' | '!' | '?' | '\n')
            && bytes.get(end).is_none_or(|b| b.is_ascii_whitespace());
        if boundary && end > start {
            spans.push((start, end));
            start = end;
        }
    }
    if start < text.len() {
        spans.push((start, text.len()));
    }
    spans
}

/// How many of `terms` (as six-letter prefixes) `text` holds, then how often.
fn hits(text: &str, terms: &HashSet<String>) -> (usize, usize) {
    let lower = text.to_lowercase();
    let counts: Vec<usize> = terms
        .iter()
        .map(|t| lower.matches(t.as_str()).count())
        .collect();
    (
        counts.iter().filter(|&&n| n > 0).count(),
        counts.iter().sum(),
    )
}

/// Cuts `p` to at most `max_bytes`: the run of whole sentences that holds most of
/// the question's words (then the most mentions of them, then the earliest). A passage already that short is
/// left alone; a single sentence longer than the limit is kept whole. The byte
/// range of a one-page passage follows the cut.
pub fn focus(p: &mut Passage, question: &str, max_bytes: usize) {
    if p.text.len() <= max_bytes {
        return;
    }
    let terms = terms(question);
    let spans = sentence_spans(&p.text);
    let (mut best, mut best_score) = ((0, 0), None);
    for i in 0..spans.len() {
        let mut j = i;
        // The longest run from sentence i within the limit (at least one sentence).
        while j + 1 < spans.len() && spans[j + 1].1 - spans[i].0 <= max_bytes {
            j += 1;
        }
        let (s, e) = (spans[i].0, spans[j].1);
        let score = hits(&p.text[s..e], &terms);
        if best_score.is_none_or(|b| score > b) {
            best = (s, e);
            best_score = Some(score);
        }
    }
    let (s, e) = best;
    let lead = p.text[s..e].len() - p.text[s..e].trim_start().len();
    let trail = p.text[s..e].len() - p.text[s..e].trim_end().len();
    let (s, e) = (s + lead, e - trail);
    if s >= e {
        return;
    }
    p.text = p.text[s..e].to_string();
    if p.at.page_start == p.at.page_end {
        let base = p.at.byte_start;
        p.at.byte_start = base + s as u32;
        p.at.byte_end = base + e as u32;
        p.at.match_start = p.at.match_start.clamp(p.at.byte_start, p.at.byte_end);
        p.at.match_end = p.at.match_end.clamp(p.at.match_start, p.at.byte_end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use docchat_core::Location;

    fn passage(text: &str) -> Passage {
        Passage {
            at: Location {
                page_start: 3,
                page_end: 3,
                byte_start: 100,
                byte_end: 100 + text.len() as u32,
                match_start: 100,
                match_end: 100 + text.len() as u32,
                ..Location::default()
            },
            text: text.into(),
            score: 1.0,
            chunk_ids: Vec::new(),
            ocr: false,
        }
    }

    #[test]
    fn a_passage_keeps_the_sentences_that_hold_the_question() {
        let text = "Packages are built with R CMD build. Vignettes are rebuilt then. \
                    The number of threads is capped by OMP_THREAD_LIMIT. \
                    Set OMP_NUM_THREADS to choose threads. Tests run afterwards.";
        let mut p = passage(text);
        focus(&mut p, "How can the number of threads be capped?", 100);
        assert!(p.text.starts_with("The number of threads"), "{}", p.text);
        assert!(p.text.contains("OMP_NUM_THREADS"), "{}", p.text);
        assert!(p.text.len() <= 100);
        // The byte range still slices the page at the text.
        let start = (p.at.byte_start - 100) as usize;
        assert_eq!(&text[start..start + p.text.len()], p.text);
        assert_eq!(p.at.byte_end - p.at.byte_start, p.text.len() as u32);
        assert!(p.at.byte_start <= p.at.match_start && p.at.match_end <= p.at.byte_end);
        // Short passages are left alone.
        let mut short = passage("One sentence.");
        focus(&mut short, "threads?", 100);
        assert_eq!(short.text, "One sentence.");
    }

    #[test]
    fn one_long_sentence_is_kept_whole_and_sentences_are_cut_at_boundaries() {
        let long = format!("{} threads.", "word ".repeat(40));
        let mut p = passage(&format!("Intro here. {long} Outro."));
        focus(&mut p, "threads", 50);
        assert_eq!(p.text, long);
        assert_eq!(
            sentence_spans("A b. C d.\nE f\ng\n\nH"),
            vec![(0, 4), (4, 9), (9, 16), (16, 18)]
        );
    }
}
