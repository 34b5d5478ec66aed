//! Crash safety: `kill -9` of the server at random moments while it indexes, then a
//! restart, ends in exactly the state a clean run reaches. The moments come from a
//! seeded generator (`DOCCHAT_CRASH_SEED` to replay a run).

use crate::common::{Server, corpus, run, settled};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

/// Documents as (collection/path, state, pages, chunks), sorted.
fn summary(status: &Value) -> Vec<(String, String, u64, u64)> {
    let mut v: Vec<_> = status["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                format!(
                    "{}/{}",
                    d["collection"].as_str().unwrap(),
                    d["path"].as_str().unwrap()
                ),
                d["state"].as_str().unwrap().to_string(),
                d["pages"].as_u64().unwrap(),
                d["chunks"].as_u64().unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

fn fill(folder: &Path) {
    std::fs::create_dir_all(folder).unwrap();
    let c = corpus();
    for (from, to) in [
        ("pdf-wild/tracemonkey.pdf", "tracemonkey.pdf"),
        ("pdf-wild/issue9105_other.pdf", "broken.pdf"),
        (
            "docx-wild/fixtures_line_spacing_line_spacing.docx",
            "spacing.docx",
        ),
        ("docx-wild/fixtures_toc1_toc1.docx", "toc.docx"),
    ] {
        std::fs::copy(c.join(from), folder.join(to)).unwrap();
    }
    for i in 0..12 {
        let body: String = (0..40)
            .map(|j| {
                format!("Minute {i}.{j}: the committee reviewed budget line {j} of meeting {i}. ")
            })
            .collect();
        std::fs::write(
            folder.join(format!("minutes-{i:02}.md")),
            format!("# Meeting {i}\n\n{body}\n"),
        )
        .unwrap();
    }
}

#[test]
fn kill_9_at_random_moments_then_restart_matches_a_clean_run() {
    let seed: u64 = std::env::var("DOCCHAT_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_261_124);
    println!("crash seed {seed} (set DOCCHAT_CRASH_SEED to replay)");
    let tmp = tempfile::tempdir().unwrap();
    let folder = tmp.path().join("docs");
    fill(&folder);

    // The reference: one clean run.
    let clean = tmp.path().join("clean");
    run(
        &clean,
        &[
            "index".as_ref(),
            folder.as_os_str(),
            "--collection".as_ref(),
            "docs".as_ref(),
        ],
    );
    let reference: Value = serde_json::from_str(&run(&clean, &["status", "--json"])).unwrap();
    assert_eq!(reference["documents"].as_array().unwrap().len(), 16);

    // Kills at seeded moments: after the server is up, somewhere in the first
    // seconds of its indexing.
    let watch = tmp.path().join("watch-dirs");
    std::fs::write(&watch, format!("{} = docs\n", folder.display())).unwrap();
    let data = tmp.path().join("crashed");
    let mut state = seed;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) as u64
    };
    for round in 0..6 {
        let server = Server::start(&data, &watch);
        let delay = Duration::from_millis(200 + next() % 8_000);
        let started = Instant::now();
        std::thread::sleep(delay);
        let s = server.get("/api/status");
        println!(
            "round {round}: kill -9 after {delay:?} ({} documents, queue {})",
            s["documents"].as_array().unwrap().len(),
            s["queue"]
        );
        server.kill();
        assert!(started.elapsed() < Duration::from_secs(60));
    }

    // The restart finishes the job.
    let server = Server::start(&data, &watch);
    server.wait_status("the restart to settle", Duration::from_secs(300), |s| {
        settled(s) && s["documents"].as_array().unwrap().len() == 16
    });
    server.kill();
    let after: Value = serde_json::from_str(&run(&data, &["status", "--json"])).unwrap();
    assert_eq!(
        summary(&after),
        summary(&reference),
        "the same documents, states, pages and chunks"
    );
    let integrity = &after["integrity"];
    assert_eq!(integrity["duplicate_chunk_ids"], 0, "{integrity}");
    assert_eq!(integrity["orphan_chunks"], 0, "{integrity}");
    assert_eq!(integrity["pending_documents"], 0, "{integrity}");
    assert_eq!(integrity["mismatched_documents"], 0, "{integrity}");
    assert_eq!(
        integrity["chunks"], reference["integrity"]["chunks"],
        "{integrity}"
    );
}
