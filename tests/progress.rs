//! Live progress and control of indexing: `/api/events`, and pause, resume and
//! cancel per collection from the API and the CLI.

use crate::common::http::read_events;
use crate::common::{Server, run, settled};
use serde_json::{Value, json};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(180);

fn write_notes(dir: &std::path::Path, prefix: &str, n: usize) {
    for i in 0..n {
        std::fs::write(
            dir.join(format!("{prefix}-{i:02}.md")),
            format!(
                "# Note {i}\n\nMeeting {i} decided that project {prefix}{i} ships in week {i}.\n"
            ),
        )
        .unwrap();
    }
}

#[test]
fn pause_resume_cancel_with_live_events() {
    let tmp = tempfile::tempdir().unwrap();
    let inbox = tmp.path().join("inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    let watch = tmp.path().join("watch-dirs");
    std::fs::write(&watch, format!("{}\n", inbox.display())).unwrap();
    let data = tmp.path().join("data");
    let server = Server::start(&data, &watch);
    server.wait_status("the empty start", WAIT, settled);

    // Paused from the CLI: new files wait in the queue.
    let out = run(&data, &["pause", "inbox", "--server", &server.base]);
    assert!(out.contains("paused: [\"inbox\"]"), "{out}");
    write_notes(&inbox, "a", 12);
    let s = server.wait_status("the files to be queued", WAIT, |s| s["queue"] == 12);
    assert_eq!(s["progress"]["paused"], json!(["inbox"]));
    std::thread::sleep(Duration::from_secs(3));
    let s = server.get("/api/status");
    assert_eq!(
        s["documents"].as_array().unwrap().len(),
        0,
        "nothing is indexed while paused: {s:#}"
    );
    assert_eq!(s["queue"], 12);

    // Resumed from the API, watched through /api/events.
    let url = server.url("/api/events");
    let reader = std::thread::spawn(move || {
        let mut events: Vec<(String, Value)> = Vec::new();
        read_events(&url, WAIT, |name, data| {
            events.push((name.to_string(), data.clone()));
            !(name == "progress"
                && data["total"] == 12
                && data["done"] == 12
                && data["queued"] == 0)
        });
        events
    });
    std::thread::sleep(Duration::from_millis(500));
    let (code, body) = server.post("/api/collections/inbox/resume", &json!({}));
    assert_eq!(code, 200, "{body}");
    let events = reader.join().unwrap();
    let indexed: Vec<&Value> = events
        .iter()
        .filter(|(n, d)| n == "document" && d["state"] == "indexed")
        .map(|(_, d)| d)
        .collect();
    assert_eq!(indexed.len(), 12, "one indexed event per file: {events:?}");
    assert!(
        indexed
            .iter()
            .all(|d| d["collection"] == "inbox" && d["chunks"] == 1)
    );
    assert!(
        events
            .iter()
            .any(|(n, d)| n == "document" && d["state"] == "pending")
    );
    let progress: Vec<&Value> = events
        .iter()
        .filter(|(n, _)| n == "progress")
        .map(|(_, d)| d)
        .collect();
    assert!(
        progress.iter().any(|p| p["eta_s"].is_number()),
        "{progress:?}"
    );
    assert!(
        progress
            .iter()
            .any(|p| p["chunks_per_s"].as_f64().unwrap() > 0.0),
        "{progress:?}"
    );
    let dones: Vec<u64> = progress
        .iter()
        .map(|p| p["done"].as_u64().unwrap())
        .collect();
    assert!(
        dones.windows(2).all(|w| w[0] <= w[1]),
        "progress only goes forward: {dones:?}"
    );

    // Cancel drops the queued files of the collection.
    let (code, _) = server.post("/api/collections/inbox/pause", &json!({}));
    assert_eq!(code, 200);
    write_notes(&inbox, "b", 5);
    server.wait_status("the new files to be queued", WAIT, |s| s["queue"] == 5);
    let out = run(&data, &["cancel", "inbox", "--server", &server.base]);
    assert!(out.contains("(5 files dropped)"), "{out}");
    run(&data, &["resume", "inbox", "--server", &server.base]);
    let s = server.wait_status("the cancel", WAIT, settled);
    assert_eq!(s["documents"].as_array().unwrap().len(), 12, "{s:#}");

    // Clear errors.
    let (code, body) = server.post("/api/collections/nope/pause", &json!({}));
    assert_eq!(code, 404, "{body}");
    let (code, body) = server.post("/api/collections/inbox/explode", &json!({}));
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("pause, resume or cancel"), "{body}");
}
