//! "Why wasn't my document found?": a search's steps as a reader sees them — the
//! vector and keyword rankings with their scores, what fusion kept and from which
//! ranks, which passages the answer path gives the model, and whether the nearest
//! chunk was close enough to ask it at all.

use crate::answer::rag::{CHAT_PASSAGES, asks_about_the_documents};
use crate::answer::retrieve::{Ranked, SearchMode, Trace};
use std::collections::HashMap;

/// Rows of each ranking shown.
const SHOWN: usize = 10;

/// The trace of the search for `query` as text (`docchat search --explain`).
pub fn report(trace: &Trace, query: &str, mode: SearchMode, min_similarity: f32) -> String {
    let mut out = String::new();
    let section = |out: &mut String, title: &str, list: &[Ranked]| {
        out.push_str(&format!("{title}\n"));
        if list.is_empty() {
            out.push_str("   (no hits)\n");
        }
        for r in list.iter().take(SHOWN) {
            out.push_str(&format!(
                "  {:>2}. {:>8.4}  {} {}  {}\n",
                r.rank,
                r.score,
                r.path,
                pages(r),
                r.chunk_id
            ));
        }
        out.push('\n');
    };
    if mode != SearchMode::Keyword {
        section(
            &mut out,
            "vector ranking (cosine similarity):",
            &trace.vector,
        );
    }
    if mode != SearchMode::Vector {
        if let Some(k) = &trace.keywords {
            let langs: Vec<&str> = k.langs.iter().map(|l| l.name()).collect();
            let how = if k.told {
                "the question's language"
            } else {
                "too short to tell its language; each language of the index"
            };
            out.push_str(&format!(
                "keywords searched, analysed as {} ({how}): {}\n",
                langs.join(", "),
                if k.words.is_empty() {
                    "(none: only stop words)".to_string()
                } else {
                    k.words.join(" ")
                }
            ));
        }
        section(&mut out, "keyword ranking (BM25):", &trace.keyword);
    }
    if mode == SearchMode::Hybrid {
        out.push_str("fused (reciprocal rank fusion; v = vector rank, k = keyword rank):\n");
        let vector = ranks(&trace.vector);
        let keyword = ranks(&trace.keyword);
        for r in trace.fused.iter().take(SHOWN) {
            let at = |m: &HashMap<&str, usize>| {
                m.get(r.chunk_id.as_str())
                    .map_or_else(|| "-".to_string(), usize::to_string)
            };
            out.push_str(&format!(
                "  {:>2}. {:>8.4}  v {:>2}  k {:>2}  {} {}\n",
                r.rank,
                r.score,
                at(&vector),
                at(&keyword),
                r.path,
                pages(r)
            ));
        }
        out.push('\n');
    }
    out.push_str("passages kept (duplicates dropped, neighbouring chunks merged, top k):\n");
    for (i, p) in trace.passages.iter().enumerate() {
        out.push_str(&format!(
            "  [{}] {:>8.4}  {} {}  ({} chunks)\n",
            i + 1,
            p.score,
            p.at.path,
            p.at.pages(),
            p.chunk_ids.len()
        ));
    }
    out.push_str(&format!(
        "\ngiven to the model: an instruction-tuned model gets passages [1]-[{}], a base \
         model as many as fit its context with the answer's room; the others are cut\n",
        CHAT_PASSAGES.min(trace.passages.len())
    ));
    match trace.nearest_similarity() {
        Some(s) if s < min_similarity && asks_about_the_documents(query) => {
            out.push_str(&format!(
                "nearest chunk similarity {s:.3} < min_similarity {min_similarity:.2}, but \
                 the question is about the documents as a whole: the model is asked\n"
            ));
        }
        Some(s) if s < min_similarity => out.push_str(&format!(
            "nearest chunk similarity {s:.3} < min_similarity {min_similarity:.2}: \
             the answer is \"nothing close\", the model is not asked\n"
        )),
        Some(s) => out.push_str(&format!(
            "nearest chunk similarity {s:.3} >= min_similarity {min_similarity:.2}: \
             the model is asked\n"
        )),
        None => out.push_str("keyword search alone: no similarity, the model is asked\n"),
    }
    out
}

fn pages(r: &Ranked) -> String {
    docchat_core::page_range(r.page_start, r.page_end)
}

fn ranks(list: &[Ranked]) -> HashMap<&str, usize> {
    list.iter().map(|r| (r.chunk_id.as_str(), r.rank)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranked(rank: usize, id: &str, page: u32, score: f32) -> Ranked {
        Ranked {
            rank,
            chunk_id: id.into(),
            path: "R-exts.pdf".into(),
            page_start: page,
            page_end: page,
            score,
        }
    }

    #[test]
    fn the_report_shows_where_each_fused_hit_came_from_and_the_gate() {
        let trace = Trace {
            vector: vec![ranked(1, "d-00007", 7, 0.25), ranked(2, "d-00003", 3, 0.21)],
            keyword: vec![ranked(1, "d-00003", 3, 9.5)],
            keywords: Some(docchat_store::QueryKeywords {
                langs: vec![docchat_store::keywords::Language::Italian],
                told: true,
                words: vec!["compil".into(), "pacchett".into()],
            }),
            fused: vec![
                ranked(1, "d-00003", 3, 0.0325),
                ranked(2, "d-00007", 7, 0.0164),
            ],
            passages: Vec::new(),
        };
        let text = report(&trace, "Why?", SearchMode::Hybrid, 0.3);
        assert!(text.contains("vector ranking"), "{text}");
        assert!(text.contains("keyword ranking"), "{text}");
        assert!(
            text.contains(
                "keywords searched, analysed as Italian (the question's language): compil pacchett"
            ),
            "{text}"
        );
        // The first fused hit was second by vector and first by keyword.
        assert!(
            text.lines()
                .any(|l| l.contains("0.0325") && l.contains("v  2  k  1")),
            "{text}"
        );
        assert!(
            text.lines()
                .any(|l| l.contains("0.0164") && l.contains("k  -")),
            "{text}"
        );
        assert!(text.contains("0.250 < min_similarity 0.30"), "{text}");
        let text = report(&trace, "Why?", SearchMode::Hybrid, 0.2);
        assert!(text.contains("the model is asked"), "{text}");
        assert!(!report(&trace, "Why?", SearchMode::Vector, 0.2).contains("keyword ranking"));
        let whole = report(&trace, "Summarize these documents", SearchMode::Hybrid, 0.3);
        assert!(whole.contains("about the documents as a whole"), "{whole}");
    }
}
