//! Under load while a folder is indexed (`docchat bench load`, bounded, loopback):
//! every request gets an answer or a clean 503, the server stays up with bounded
//! memory, and a client that walks away from an answer frees its slot at once.

use crate::common::{corpus, docchat, outcome};
use serde_json::Value;

#[test]
fn every_request_gets_an_answer_or_a_clean_503() {
    let (code, stdout, stderr) = outcome(docchat().args([
        "bench",
        "load",
        corpus().join("pdf-wild/tracemonkey.pdf").to_str().unwrap(),
        "--seconds",
        "15",
        "--chat-clients",
        "3",
        "--max-queue",
        "1",
        "--max-tokens",
        "24",
        "--json",
    ]));
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let r: Value = serde_json::from_str(&stdout).unwrap();
    println!("{r:#}");
    assert_eq!(r["alive"], true);
    let kind = |k: &str| {
        r["kinds"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["kind"] == k)
            .unwrap_or_else(|| panic!("{k}: {r:#}"))
            .clone()
    };
    for k in ["chat", "search", "upload", "walk-away"] {
        let f = kind(k);
        assert_eq!(f["errors"], 0, "{k}: {f:#}");
        assert!(f["requests"].as_u64().unwrap() >= 1, "{k}: {f:#}");
    }
    for k in ["chat", "search", "upload"] {
        assert!(kind(k)["ok"].as_u64().unwrap() >= 1, "{k}: {r:#}");
    }
    // Four clients on one model with one waiting place: some are told to come back.
    let busy: u64 = ["chat", "walk-away"]
        .iter()
        .map(|k| kind(k)["busy"].as_u64().unwrap())
        .sum();
    assert!(busy >= 1, "the queue bound was reached: {r:#}");
    // Every upload became a document, besides the paper.
    assert_eq!(
        r["documents_indexed"].as_u64().unwrap(),
        kind("upload")["ok"].as_u64().unwrap() + 1,
        "{r:#}"
    );
    // Memory: the model files, their caches and the index, with room to spare.
    let peak = r["peak_rss_mb"].as_f64().unwrap();
    let models = r["model_files_mb"].as_f64().unwrap();
    assert!(peak < models + 1500.0, "peak RSS {peak} MB");
    // A walked-away answer of 2,000 tokens would take a minute; the next question
    // does not wait for it.
    let idle = r["idle_ttft_ms"].as_f64().unwrap();
    let after = r["after_walk_away_ttft_ms"].as_f64().unwrap();
    assert!(
        after < idle * 2.0 + 2000.0,
        "after {after} ms, idle {idle} ms"
    );
}
