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

/// A seeded generator of kill moments (`DOCCHAT_CRASH_SEED` replays a run).
fn moments() -> impl FnMut() -> u64 {
    let seed: u64 = std::env::var("DOCCHAT_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_261_124);
    println!("crash seed {seed} (set DOCCHAT_CRASH_SEED to replay)");
    let mut state = seed;
    move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        state >> 33
    }
}

#[test]
fn kill_9_at_random_moments_then_restart_matches_a_clean_run() {
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
    let mut next = moments();
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

/// The (role, content) of each message of a chat, after checking that the chat is
/// consistent: numbered from 0 without gaps, a question first, turns alternating.
fn consistent_messages(server: &Server, id: &str) -> Vec<(String, String)> {
    let chat = server.get(&format!("/api/chats/{id}"));
    let messages = chat["messages"].as_array().unwrap();
    for (i, m) in messages.iter().enumerate() {
        assert_eq!(m["seq"], i as u64, "chat {id}: {chat:#}");
        let role = if i % 2 == 0 { "user" } else { "assistant" };
        assert_eq!(m["role"], role, "chat {id}: {chat:#}");
    }
    messages
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap().to_string(),
                m["content"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn kill_9_while_chats_are_written_keeps_every_saved_chat() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = tmp.path().join("docs");
    std::fs::create_dir_all(&folder).unwrap();
    for i in 0..4 {
        std::fs::write(
            folder.join(format!("minutes-{i}.md")),
            format!(
                "# Meeting {i}\n\nThe committee reviewed the budget of the {i} harbour projects."
            ),
        )
        .unwrap();
    }
    let watch = tmp.path().join("watch-dirs");
    std::fs::write(&watch, format!("{} = docs\n", folder.display())).unwrap();
    let data = tmp.path().join("data");
    let mut next = moments();

    let mut server = Server::start(&data, &watch);
    server.wait_status("the minutes to be indexed", Duration::from_secs(180), |s| {
        settled(s) && s["counts"]["indexed"] == 4
    });
    // Chats the server acknowledged (their stream ended), with their messages.
    let mut saved: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for round in 0..5 {
        let (code, body) = server.post(
            "/api/chat",
            &serde_json::json!({"question": format!("What did meeting {round} review?"), "max_tokens": 32}),
        );
        assert_eq!(code, 200, "{body}");
        let events = crate::common::sse_events(&body);
        let id = events
            .iter()
            .find(|(n, _)| n == "chat")
            .and_then(|(_, v)| v["id"].as_str())
            .unwrap_or_else(|| panic!("no chat event: {body}"))
            .to_string();
        let messages = consistent_messages(&server, &id);
        assert_eq!(messages.len(), 2, "{messages:?}");
        saved.push((id, messages));

        // A chat cut by kill -9 at a seeded moment of its question, answer or write.
        let url = server.url("/api/chat");
        let asking = std::thread::spawn(move || {
            let body = serde_json::json!({"question": "Which harbour projects were reviewed?", "max_tokens": 48});
            // The connection dies with the server: whatever it read is discarded.
            let _ = std::panic::catch_unwind(|| {
                crate::common::http::request("POST", &url, Some(&body))
            });
        });
        let delay = Duration::from_millis(next() % 4_000);
        std::thread::sleep(delay);
        println!("round {round}: kill -9 {delay:?} into a chat");
        server.kill();
        let _ = asking.join();

        server = Server::start(&data, &watch);
        let listed = server.get("/api/chats");
        let ids: Vec<&str> = listed["chats"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap())
            .collect();
        for (id, messages) in &saved {
            assert!(ids.contains(&id.as_str()), "chat {id} lost: {listed:#}");
            assert_eq!(
                &consistent_messages(&server, id),
                messages,
                "chat {id} changed"
            );
        }
        // The cut chat, if it got as far as a row, is consistent too.
        for id in &ids {
            consistent_messages(&server, id);
        }
    }
    // The history still takes writes, and every saved chat exports.
    let (code, body) = server.post(
        "/api/chat",
        &serde_json::json!({"question": "What did meeting 1 review?", "chat_id": saved[0].0, "max_tokens": 24}),
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(consistent_messages(&server, &saved[0].0).len(), 4);
    server.kill();
    for (id, _) in &saved {
        let md = run(&data, &["export", id]);
        assert!(md.contains("What did meeting"), "{md}");
    }
}

/// A long document is embedded and written in parts: its first part is searchable
/// while the rest is embedded, and after a `kill -9` mid-way the restart reuses the
/// vectors of the parts written instead of embedding them again.
#[test]
fn a_long_document_is_written_in_parts_and_a_kill_mid_way_loses_no_embedding() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = tmp.path().join("docs");
    std::fs::create_dir_all(&folder).unwrap();
    let body: String = (0..1_500)
        .map(|i| {
            format!(
                "## Ledger entry {i}\n\nEntry {i} of the harbour ledger records that vessel \
                 number {} unloaded {} crates of tea at berth {} after a crossing of {} days, \
                 and that the harbour master signed the receipt number {} in the presence of \
                 clerk {}.\n\n",
                i * 7 + 3,
                i * 13 % 97 + 1,
                i % 23,
                i % 41 + 5,
                100_000 + i * 31,
                i % 17
            )
        })
        .collect();
    std::fs::write(
        folder.join("ledger.md"),
        format!("# Harbour ledger\n\n{body}"),
    )
    .unwrap();
    // Settled files only: no wait for the copy to finish.
    let old = std::time::SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(folder.join("ledger.md"))
        .unwrap()
        .set_modified(old)
        .unwrap();
    let watch = tmp.path().join("watch-dirs");
    std::fs::write(&watch, format!("{} = docs\n", folder.display())).unwrap();
    let data = tmp.path().join("data");

    let server = Server::start(&data, &watch);
    let query =
        serde_json::json!({ "query": "harbour ledger entry 3 vessel number 24 tea", "top_k": 5 });
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let (code, body) = server.post("/api/search", &query);
        assert_eq!(code, 200, "{body}");
        if body.contains("ledger.md") {
            let status = server.get("/api/status");
            let state = crate::common::doc(&status, "ledger.md").map(|d| d["state"].clone());
            assert_eq!(
                state,
                Some(Value::from("pending")),
                "the first part is searchable before the document is done: {status:#}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the first part never became searchable"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    server.kill();

    let server = Server::start(&data, &watch);
    let status = server.wait_status(
        "the restart to finish the ledger",
        Duration::from_secs(300),
        |s| settled(s) && crate::common::doc(s, "ledger.md").is_some(),
    );
    server.kill();
    let ledger = crate::common::doc(&status, "ledger.md").unwrap();
    assert_eq!(ledger["state"], "indexed", "{status:#}");
    let chunks = ledger["chunks"].as_u64().unwrap();
    assert!(
        chunks > 300,
        "long enough for two parts of 256: {chunks} chunks"
    );
    let embedded = status["stats"]["chunks_embedded"].as_u64().unwrap();
    assert!(
        embedded + 256 <= chunks,
        "the restart embedded {embedded} of {chunks} chunks: the first part's vectors were not reused"
    );
    let after: Value = serde_json::from_str(&run(&data, &["status", "--json"])).unwrap();
    let integrity = &after["integrity"];
    assert_eq!(integrity["chunks"], chunks, "{integrity}");
    assert_eq!(integrity["duplicate_chunk_ids"], 0, "{integrity}");
    assert_eq!(integrity["orphan_chunks"], 0, "{integrity}");
    assert_eq!(integrity["pending_documents"], 0, "{integrity}");
    assert_eq!(integrity["mismatched_documents"], 0, "{integrity}");
}
