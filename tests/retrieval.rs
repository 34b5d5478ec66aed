//! Retrieval over real documents: the labelled question sets in `tests/eval/` (in
//! English, and in Italian over two Italian manuals) scored in every search mode,
//! and the filters of `docchat search`.

use crate::common::{corpus, run};
use serde_json::Value;

fn recall_at_5(report: &Value, mode: &str, level: &str) -> f64 {
    let modes = report["modes"].as_array().unwrap();
    let m = modes
        .iter()
        .find(|m| m["mode"] == mode)
        .unwrap_or_else(|| panic!("no {mode} figures: {report:#}"));
    m[level]["recall_at_5"].as_f64().unwrap()
}

/// Share of the questions no document answers that the default `min_similarity`
/// answers with "nothing close", set from the measurement (BENCHMARKS.md,
/// "Nothing close").
const MIN_UNANSWERABLE_REFUSED: f64 = 0.75;

/// Page recall@5 of hybrid search on the Italian set, above the target of the
/// language work (0.85; measured 0.962, 0.923 when every text was analysed as
/// English; BENCHMARKS.md, "Questions in Italian").
const MIN_ITALIAN_HYBRID_PAGE: f64 = 0.9;

/// Page recall@5 of keyword search on the Italian set: with Italian stemming and
/// stop words it finds every page (1.0; 0.962 with English analysis).
const MIN_ITALIAN_KEYWORD_PAGE: f64 = 0.98;

#[test]
fn questions_in_italian_find_their_page_in_italian_manuals() {
    // Fetched by scripts/test.sh (scripts/corpus-it.sh), or here when run alone.
    let folder = match std::env::var_os("DOCCHAT_CORPUS_IT") {
        Some(f) => std::path::PathBuf::from(f),
        None => {
            let script = crate::common::manifest_dir().join("../../scripts/corpus-it.sh");
            let out = std::process::Command::new("bash")
                .arg(script)
                .output()
                .expect("bash runs");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::path::PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
        }
    };
    let tmp = tempfile::tempdir().unwrap();
    let docs = tmp.path().join("manuali");
    std::fs::create_dir_all(&docs).unwrap();
    for f in ["maint-guide.it.pdf", "debian-reference.it.pdf"] {
        std::fs::copy(folder.join(f), docs.join(f)).unwrap();
    }
    let data = tmp.path().join("data");
    let stdout = run(&data, &["index".as_ref(), docs.as_os_str()]);
    assert!(stdout.contains("2 indexed"), "{stdout}");
    let questions = crate::common::manifest_dir().join("../../tests/eval/qa-it.jsonl");
    let out = run(
        &data,
        &["eval".as_ref(), questions.as_os_str(), "--json".as_ref()],
    );
    let report: Value = serde_json::from_str(&out).unwrap();
    assert!(report["questions"].as_u64().unwrap() >= 25, "{report:#}");
    let (vector, keyword, hybrid) = (
        recall_at_5(&report, "vector", "page"),
        recall_at_5(&report, "keyword", "page"),
        recall_at_5(&report, "hybrid", "page"),
    );
    println!("Italian page recall@5: hybrid {hybrid}, keyword {keyword}, vector {vector}");
    assert!(
        hybrid >= MIN_ITALIAN_HYBRID_PAGE && hybrid > vector,
        "page recall@5: hybrid {hybrid}, vector {vector}, keyword {keyword}"
    );
    assert!(
        keyword >= MIN_ITALIAN_KEYWORD_PAGE,
        "page recall@5: keyword {keyword}"
    );
    assert_eq!(recall_at_5(&report, "hybrid", "file"), 1.0, "{report:#}");

    // The explanation says how the question was read: Italian words, Italian stems.
    let out = run(
        &data,
        &[
            "search",
            "--explain",
            "--json",
            "Quali file crea dh_make nella directory debian dei pacchetti?",
        ],
    );
    let explained: Value = serde_json::from_str(&out).unwrap();
    let keywords = &explained["explain"]["keywords"];
    assert_eq!(keywords["langs"], serde_json::json!(["it"]), "{keywords}");
    assert_eq!(keywords["told"], true, "{keywords}");
    let words: Vec<&str> = keywords["words"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    // "pacchetti" is stemmed as Italian; "quali", "nella", "dei" are stop words.
    assert!(words.contains(&"pacchett"), "{words:?}");
    assert!(
        !words.iter().any(|w| ["quali", "nella", "dei"].contains(w)),
        "{words:?}"
    );
}

#[test]
fn hybrid_search_finds_the_page_better_than_either_mode_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let c = corpus();
    let stdout = run(
        &data,
        &[
            "index".as_ref(),
            c.join("manuals").as_os_str(),
            c.join("pdf-wild/tracemonkey.pdf").as_os_str(),
            c.join("docx-wild").as_os_str(),
        ],
    );
    assert!(stdout.contains("chunks embedded"), "{stdout}");

    let questions = crate::common::manifest_dir().join("../../tests/eval/qa.jsonl");
    let out = run(
        &data,
        &["eval".as_ref(), questions.as_os_str(), "--json".as_ref()],
    );
    let report: Value = serde_json::from_str(&out).unwrap();
    let n = report["questions"].as_u64().unwrap();
    assert!(n >= 60, "the labelled set has {n} questions");
    for m in report["modes"].as_array().unwrap() {
        println!(
            "{}: file {} / page {} / p95 {} ms",
            m["mode"], m["file"], m["page"], m["latency"]["p95_ms"]
        );
    }

    let (vector, keyword, hybrid) = (
        recall_at_5(&report, "vector", "page"),
        recall_at_5(&report, "keyword", "page"),
        recall_at_5(&report, "hybrid", "page"),
    );
    assert!(
        hybrid > vector && hybrid > keyword,
        "page recall@5: hybrid {hybrid}, vector {vector}, keyword {keyword}"
    );
    assert!(
        recall_at_5(&report, "hybrid", "file")
            >= recall_at_5(&report, "vector", "file").max(recall_at_5(&report, "keyword", "file")),
        "{report:#}"
    );
    for m in report["modes"].as_array().unwrap() {
        let p95 = m["latency"]["p95_ms"].as_f64().unwrap();
        assert!(p95 > 0.0 && p95.is_finite(), "{m}");
    }

    // The "nothing close" gate: no question a document answers falls under the
    // default threshold, and most questions none answers do.
    let near = &report["nearness"];
    println!("nearness: {near}");
    let unanswerable = near["unanswerable"].as_array().unwrap().len();
    assert!(unanswerable >= 12, "{near}");
    assert_eq!(near["answerable_refused"], 0, "{near}");
    let refused = near["unanswerable_refused"].as_u64().unwrap() as f64;
    assert!(
        refused >= MIN_UNANSWERABLE_REFUSED * unanswerable as f64,
        "{near}"
    );

    // `docchat search`: type and path filters, modes, exact snippets.
    let search = |extra: &[&str]| -> Value {
        let mut args = vec!["search", "--json", "--top-k", "5"];
        args.extend_from_slice(extra);
        serde_json::from_str(&run(&data, &args)).unwrap()
    };
    let hits = search(&["native routines registration", "--type", "docx"]);
    let hits = hits["hits"].as_array().unwrap();
    assert!(
        hits.iter()
            .all(|h| h["path"].as_str().unwrap().ends_with(".docx")),
        "{hits:?}"
    );
    let hits = search(&[
        "garbage collection of external pointers",
        "--path-prefix",
        "R-ints",
    ]);
    let hits = hits["hits"].as_array().unwrap();
    assert!(!hits.is_empty());
    assert!(hits.iter().all(|h| h["path"] == "R-ints.pdf"), "{hits:?}");
    let hits = search(&["trace trees", "--glob", "*monkey*", "--mode", "keyword"]);
    let hits = hits["hits"].as_array().unwrap();
    assert!(!hits.is_empty());
    assert!(
        hits.iter().all(|h| h["path"] == "tracemonkey.pdf"),
        "{hits:?}"
    );
    let none = search(&["trace trees", "--after", "2999-01-01"]);
    assert!(none["hits"].as_array().unwrap().is_empty(), "{none}");

    // `--explain`: both rankings with their scores, the fused one with each hit's
    // rank in both, the passages kept, and the gate.
    let text = run(
        &data,
        &[
            "search",
            "--explain",
            "How do I register native routines with R?",
        ],
    );
    for part in [
        "vector ranking (cosine similarity):",
        "keyword ranking (BM25):",
        "fused (reciprocal rank fusion",
        "passages kept",
        "the model is asked",
    ] {
        assert!(text.contains(part), "{part:?} missing from:\n{text}");
    }
    let explained = search(&["--explain", "How do I register native routines with R?"]);
    let x = &explained["explain"];
    let (vector, fused) = (
        x["vector"].as_array().unwrap(),
        x["fused"].as_array().unwrap(),
    );
    assert!(
        !vector.is_empty() && !x["keyword"].as_array().unwrap().is_empty(),
        "{x}"
    );
    // The nearest similarity is the vector ranking's first score, and the passages
    // come from the fused ranking.
    assert_eq!(x["nearest_similarity"], vector[0]["score"], "{x}");
    let first = &explained["hits"][0];
    assert!(
        fused.iter().take(3).any(|f| f["path"] == first["path"]),
        "{explained}"
    );
    let far = run(
        &data,
        &["search", "--explain", "Who won the 2018 FIFA World Cup?"],
    );
    assert!(far.contains("the model is not asked"), "{far}");

    // Each passage is an exact slice of its page with the matched chunk inside.
    let hits = search(&["How do I register native routines with R?"]);
    for h in hits["hits"].as_array().unwrap() {
        let (bs, be) = (
            h["byte_start"].as_u64().unwrap(),
            h["byte_end"].as_u64().unwrap(),
        );
        let (ms, me) = (
            h["match_start"].as_u64().unwrap(),
            h["match_end"].as_u64().unwrap(),
        );
        assert!(bs <= ms && ms < me && me <= be, "{h}");
        let text = h["text"].as_str().unwrap();
        assert_eq!(text.len() as u64, be - bs, "{h}");
    }
}
