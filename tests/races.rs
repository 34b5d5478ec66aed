//! Races between the indexer and the API, made to happen every time: the server
//! runs with a pause point (`DOCCHAT_TEST_PAUSE`) where the indexer has appended the
//! chunks of new documents and not yet written their rows, and the test acts while
//! it waits there.

use crate::common::{Server, assert_intact, delete, settled, wait_for_file};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(180);

/// A folder of `n` short notes, each with its own fact.
fn notes(dir: &Path, name: &str, n: usize, fact: &str) -> PathBuf {
    let folder = dir.join(name);
    std::fs::create_dir_all(&folder).unwrap();
    for i in 0..n {
        std::fs::write(
            folder.join(format!("{name}-{i:02}.md")),
            format!("# {name} {i}\n\n{fact} number {i}.\n"),
        )
        .unwrap();
    }
    folder
}

/// `orchard` (30 notes: more than the writer's batch and the queue before it
/// hold, so some wait unprepared while the writer is held) and `harbour` (2).
fn two_folders(dir: &Path) -> (PathBuf, PathBuf) {
    (
        notes(dir, "orchard", 30, "The orchard ledger records pear crate"),
        notes(dir, "harbour", 2, "The harbour log records ferry crossing"),
    )
}

/// A server over `watch` held at the pause point `new-rows`; returns it and the
/// folder of the pause files.
fn held_server(dir: &Path, watch: &Path) -> (Server, PathBuf) {
    let hold = dir.join("hold");
    std::fs::create_dir_all(&hold).unwrap();
    let mut cmd = Server::command(&dir.join("data"), watch, &[]);
    cmd.env("DOCCHAT_TEST_PAUSE", format!("new-rows:{}", hold.display()));
    let server = Server::spawn(cmd);
    wait_for_file(
        &hold.join("new-rows.paused"),
        "the indexer to reach the pause point",
    );
    (server, hold)
}

fn release(hold: &Path) {
    std::fs::write(hold.join("new-rows.go"), b"").unwrap();
}

/// Adding a folder while another folder's new documents are half written (chunks
/// appended, rows not yet) takes nothing from them. Before, the scan of the new
/// folder removed those chunks as leftovers of a crash, and the documents ended
/// `indexed` with no chunks, for good.
#[test]
fn a_folder_added_while_documents_are_written_takes_nothing_from_them() {
    let tmp = tempfile::tempdir().unwrap();
    let (orchard, harbour) = two_folders(tmp.path());
    let watch = tmp.path().join("watch-dirs");
    std::fs::write(&watch, format!("{} = orchard\n", orchard.display())).unwrap();
    let (server, hold) = held_server(tmp.path(), &watch);

    // The notes not prepared yet wait (paused), so none of them is read again
    // before the held ones are written: what the scan does to the held ones stays.
    let (code, body) = server.post("/api/collections/orchard/pause", &json!({}));
    assert_eq!(code, 200, "{body}");
    let queued = |s: &Value| s["queue"].as_u64().unwrap();
    let before = queued(&server.get("/api/status"));
    let (code, body) = server.post("/api/collections", &json!({ "path": harbour }));
    assert_eq!(code, 201, "{body}");
    // The scan of the new folder has run once its files are queued.
    server.wait_status("the scan of the new folder", WAIT, |s| {
        queued(s) >= before + 2
    });
    release(&hold);
    server.wait_status("the new folder indexed", WAIT, |s| {
        s["documents"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["collection"] == "harbour" && d["state"] == "indexed")
            .count()
            == 2
    });
    let (code, body) = server.post("/api/collections/orchard/resume", &json!({}));
    assert_eq!(code, 200, "{body}");

    let s = server.wait_status("everything indexed", WAIT, |s| {
        settled(s) && s["counts"]["indexed"] == 32
    });
    for d in s["documents"].as_array().unwrap() {
        assert!(d["chunks"].as_u64().unwrap() > 0, "{d:#}");
    }
    // Every note is found by its own words.
    for i in [0, 7, 29] {
        let (code, body) = server.post(
            "/api/search",
            &json!({ "query": format!("orchard {i}"), "mode": "keyword", "top_k": 5 }),
        );
        assert_eq!(code, 200, "{body}");
        assert!(body.contains(&format!("orchard-{i:02}.md")), "{i}: {body}");
    }
    server.kill();
    assert_intact(&tmp.path().join("data"));
}

/// Forgetting a collection while the writer holds some of its documents leaves
/// none of them behind: the forget waits for the write in progress, and nothing
/// of the collection is written after it. A collection whose folder was removed
/// first can still be forgotten. Before, the held documents were written after
/// the forget and stayed searchable, and a forget of a collection no longer
/// watched was refused (404).
#[test]
fn forget_leaves_nothing_behind_and_can_be_finished_later() {
    let tmp = tempfile::tempdir().unwrap();
    let (orchard, harbour) = two_folders(tmp.path());
    let watch = tmp.path().join("watch-dirs");
    std::fs::write(
        &watch,
        format!(
            "{} = harbour\n{} = orchard\n",
            harbour.display(),
            orchard.display()
        ),
    )
    .unwrap();
    let (server, hold) = held_server(tmp.path(), &watch);

    let url = server.url("/api/collections/orchard?forget=true");
    let forget = std::thread::spawn(move || {
        let res = crate::common::http::request("DELETE", &url, None);
        (res.status, res.text())
    });
    // The folder is let go at once; the forget itself waits for the writer.
    server.wait_status("the folder to be let go", WAIT, |s| {
        s["collections"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["name"] != "orchard")
    });
    release(&hold);
    let (code, body) = forget.join().unwrap();
    assert_eq!(code, 200, "{body}");

    let s = server.wait_status("the rest indexed", WAIT, |s| {
        settled(s) && s["counts"]["indexed"] == 2
    });
    assert!(
        s["documents"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["collection"] == "harbour"),
        "{s:#}"
    );
    let (code, body) = server.post(
        "/api/search",
        &json!({ "query": "orchard ledger pear crate", "top_k": 20 }),
    );
    assert_eq!(code, 200, "{body}");
    assert!(!body.contains("orchard-"), "{body}");

    // Stopped watching first, forgotten later: the documents go then.
    let (code, body) = delete(&server, "/api/collections/harbour");
    assert_eq!(code, 200, "{body}");
    assert_eq!(server.get("/api/status")["counts"]["indexed"], 2);
    let (code, body) = delete(&server, "/api/collections/harbour?forget=true");
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["forgotten"], 2, "{body}");
    assert_eq!(server.get("/api/status")["counts"]["indexed"], 0);
    // Again: nothing is left to forget.
    let (code, body) = delete(&server, "/api/collections/harbour?forget=true");
    assert_eq!(code, 404, "{body}");
    server.kill();
    let status = assert_intact(&tmp.path().join("data"));
    assert_eq!(status["integrity"]["chunks"], 0, "{status:#}");
}
