//! Faults of the machine, not of the documents: a full disk, a read-only data folder,
//! files docchat may not read. docchat says what is wrong, loses nothing, and goes
//! on by itself once the fault is gone.
//!
//! The data folder is a small tmpfs in a mount namespace of the server's own
//! (`unshare --mount`), which the test grows or makes read-only with `nsenter`.

use crate::common::{Server, corpus, docchat, outcome, settled};
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// `docchat serve` over `watch`, its data folder `data` a tmpfs of `size` (mount
/// options, e.g. `size=256k` or `size=1m,ro`) that only it sees.
fn serve_on_tmpfs(data: &Path, watch: &Path, options: &str) -> Command {
    std::fs::create_dir_all(data).unwrap();
    let serve = Server::command(data, watch, &[]);
    let data = data.display().to_string();
    let mount = format!("mount -t tmpfs -o {options} docchat-test \"$0\" && exec \"$@\"");
    Server::wrapped(
        &serve,
        &[
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            &mount,
            &data,
        ],
    )
}

/// Runs `mount ARGS…` in the mount namespace of process `pid`.
fn mount_in(pid: u32, args: &[&str]) {
    let st = Command::new("nsenter")
        .args(["-t", &pid.to_string(), "-m", "mount"])
        .args(args)
        .status()
        .unwrap();
    assert!(st.success(), "mount {args:?}");
}

fn write_error(status: &Value) -> String {
    status["write_error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Checks the index in `data` (a copy of the tmpfs) with `docchat status --json`.
fn assert_intact(data: &Path, documents: usize) {
    let status = crate::common::assert_intact(data);
    assert_eq!(
        status["documents"].as_array().unwrap().len(),
        documents,
        "{status:#}"
    );
}

fn docs_folder(root: &Path) -> std::path::PathBuf {
    let docs = root.join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    for i in 0..3 {
        std::fs::write(
            docs.join(format!("note-{i}.md")),
            format!("# Note {i}\n\nThe orchard on hill {i} grows pears and plums."),
        )
        .unwrap();
    }
    docs
}

#[test]
fn a_full_disk_is_reported_and_indexing_resumes_when_space_returns() {
    let dir = tempfile::tempdir().unwrap();
    let docs = docs_folder(dir.path());
    let watch = dir.path().join("watch-dirs");
    std::fs::write(&watch, format!("{} = docs\n", docs.display())).unwrap();
    let data = dir.path().join("data");
    let server = Server::spawn(serve_on_tmpfs(&data, &watch, "size=400k"));
    server.wait_status("the notes to be indexed", Duration::from_secs(120), |s| {
        settled(s) && s["counts"]["indexed"] == 3
    });

    // A paper larger than the space left.
    std::fs::copy(
        corpus().join("pdf-wild/tracemonkey.pdf"),
        docs.join("tracemonkey.pdf"),
    )
    .unwrap();
    let status = server.wait_status(
        "the full disk to be reported",
        Duration::from_secs(120),
        |s| !write_error(s).is_empty(),
    );
    let message = write_error(&status);
    assert!(message.contains("full"), "{message}");
    assert!(
        status["write_error"]["waiting"].as_u64().unwrap() >= 1,
        "{status:#}"
    );
    // The server goes on answering from what it has.
    let (code, body) = server.post(
        "/api/search",
        &serde_json::json!({"query": "pears and plums"}),
    );
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("note-"), "{body}");
    // A chat that cannot be saved says why.
    let (code, body) = server.post(
        "/api/chat",
        &serde_json::json!({"question": "What grows on the hills?", "max_tokens": 16}),
    );
    assert!(
        code == 200 || (code == 507 && body.contains("full")),
        "{code}: {body}"
    );

    // Space returns: the paper is indexed without anyone asking.
    mount_in(
        server.pid(),
        &["-o", "remount,size=64m", &data.display().to_string()],
    );
    let status = server.wait_status("indexing to resume", Duration::from_secs(180), |s| {
        settled(s) && s["counts"]["indexed"] == 4 && s["write_error"].is_null()
    });
    assert!(
        status["documents"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["state"] == "indexed"),
        "{status:#}"
    );
    // Nothing is damaged: a copy of the data folder passes the integrity check.
    let copy = dir.path().join("copy");
    let st = Command::new("nsenter")
        .args(["-t", &server.pid().to_string(), "-m", "cp", "-a"])
        .arg(&data)
        .arg(&copy)
        .status()
        .unwrap();
    assert!(st.success());
    server.kill();
    assert_intact(&copy, 4);
}

#[test]
fn a_read_only_data_folder_is_refused_at_start_and_waited_out_while_running() {
    let dir = tempfile::tempdir().unwrap();
    let docs = docs_folder(dir.path());
    let watch = dir.path().join("watch-dirs");
    std::fs::write(&watch, format!("{} = docs\n", docs.display())).unwrap();

    // At start: a clear refusal.
    let data = dir.path().join("ro-data");
    let mut refused = serve_on_tmpfs(&data, &watch, "size=1m,ro");
    refused.stderr(std::process::Stdio::piped());
    let (code, stdout, stderr) = outcome(&mut refused);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stderr.contains("read-only"), "{stderr}");
    assert!(stderr.contains("--data-dir"), "says what to do: {stderr}");
    // The same for `docchat index`.
    let (code, _, stderr) = outcome(
        docchat()
            .arg("--data-dir")
            .arg("/proc/docchat-cannot-write-here")
            .arg("index")
            .arg(&docs),
    );
    assert_ne!(code, 0);
    assert!(stderr.contains("cannot use the data folder"), "{stderr}");

    // While running: writes wait, the reason is shown, and they go on once writable.
    let data = dir.path().join("data");
    let server = Server::spawn(serve_on_tmpfs(&data, &watch, "size=64m"));
    server.wait_status("the notes to be indexed", Duration::from_secs(120), |s| {
        settled(s) && s["counts"]["indexed"] == 3
    });
    let mount_point = data.display().to_string();
    mount_in(server.pid(), &["-o", "remount,ro", &mount_point]);
    std::fs::write(docs.join("late.md"), "# Late\n\nThe ferry leaves at seven.").unwrap();
    let status = server.wait_status(
        "the read-only folder to be reported",
        Duration::from_secs(120),
        |s| !write_error(s).is_empty(),
    );
    assert!(write_error(&status).contains("read-only"), "{status:#}");
    assert_eq!(server.get("/api/status")["counts"]["indexed"], 3);
    mount_in(server.pid(), &["-o", "remount,rw", &mount_point]);
    server.wait_status("indexing to resume", Duration::from_secs(180), |s| {
        settled(s) && s["counts"]["indexed"] == 4 && s["write_error"].is_null()
    });
}

#[test]
fn files_docchat_may_not_read_fail_alone() {
    let dir = tempfile::tempdir().unwrap();
    let docs = docs_folder(dir.path());
    let locked = docs.join("locked.md");
    std::fs::write(&locked, "# Locked\n\nNobody may read this.").unwrap();
    let mut perms = std::fs::metadata(&locked).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o000);
    std::fs::set_permissions(&locked, perms).unwrap();
    let watch = dir.path().join("watch-dirs");
    std::fs::write(&watch, format!("{} = docs\n", docs.display())).unwrap();
    let server = serve_without_override(&dir.path().join("data"), &watch);
    let status = server.wait_status("the folder to settle", Duration::from_secs(120), |s| {
        settled(s) && s["documents"].as_array().is_some_and(|d| d.len() == 4)
    });
    let docs_of = status["documents"].as_array().unwrap();
    let locked = docs_of.iter().find(|d| d["path"] == "locked.md").unwrap();
    assert_eq!(locked["state"], "failed", "{locked:#}");
    assert!(
        locked["error"]
            .as_str()
            .unwrap()
            .contains("ermission denied"),
        "{locked:#}"
    );
    assert_eq!(status["counts"]["indexed"], 3, "{status:#}");
}

/// Sets the write bits of `path` and everything below it (`on`) or clears them.
fn set_writable(path: &Path, on: bool) {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::symlink_metadata(path).unwrap();
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            set_writable(&entry.unwrap().path(), on);
        }
    }
    if meta.file_type().is_symlink() {
        return;
    }
    let mode = meta.permissions().mode();
    let mode = if on { mode | 0o200 } else { mode & !0o222 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn a_data_folder_docchat_may_not_write_answers_507_with_the_reason_and_is_waited_out() {
    let dir = tempfile::tempdir().unwrap();
    let docs = docs_folder(dir.path());
    let watch = dir.path().join("watch-dirs");
    std::fs::write(&watch, format!("{} = docs\n", docs.display())).unwrap();
    let data = dir.path().join("data");
    let server = serve_without_override(&data, &watch);
    server.wait_status("the notes to be indexed", Duration::from_secs(120), |s| {
        settled(s) && s["counts"]["indexed"] == 3
    });
    let (code, body) = server.post(
        "/api/chat",
        &serde_json::json!({"question": "What grows on the hills?", "max_tokens": 8}),
    );
    assert_eq!(code, 200, "{body}");
    let events = crate::common::sse_events(&body);
    let id = events[0].1["id"].as_str().expect("a chat id").to_string();

    // The data folder loses its write permission: a write the API is asked for is
    // a 507 that says why (not a 500 "internal error").
    set_writable(&data, false);
    let rename = |title: &str| {
        crate::common::http::request(
            "PATCH",
            &server.url(&format!("/api/chats/{id}")),
            Some(&serde_json::json!({ "title": title })),
        )
    };
    let res = rename("Orchards");
    assert_eq!(res.status, 507, "{}", res.text());
    let message = res.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(message.contains("permission denied"), "{message}");
    assert!(message.contains("data folder"), "{message}");
    // The indexer waits, and its status says the same.
    std::fs::write(docs.join("late.md"), "# Late\n\nThe ferry leaves at seven.").unwrap();
    let status = server.wait_status(
        "the unwritable folder to be reported",
        Duration::from_secs(120),
        |s| !write_error(s).is_empty(),
    );
    assert!(
        write_error(&status).contains("permission denied"),
        "{status:#}"
    );
    assert_eq!(server.get("/api/status")["counts"]["indexed"], 3);

    // Writable again: the late note is indexed without anyone asking, and the
    // rename goes through.
    set_writable(&data, true);
    server.wait_status("indexing to resume", Duration::from_secs(180), |s| {
        settled(s) && s["counts"]["indexed"] == 4 && s["write_error"].is_null()
    });
    let res = rename("Orchards");
    assert_eq!(res.status, 200, "{}", res.text());
}

/// A `docchat serve` over `watch` without the capabilities that let root read any
/// file: the tests run as root, whom file modes do not stop otherwise.
fn serve_without_override(data: &Path, watch: &Path) -> Server {
    let serve = Server::command(data, watch, &[]);
    Server::spawn(Server::wrapped(
        &serve,
        &["setpriv", "--bounding-set=-dac_override,-dac_read_search"],
    ))
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The paths of the documents a search for `query` finds.
fn found(server: &Server, query: &str) -> String {
    let (code, body) = server.post(
        "/api/search",
        &serde_json::json!({ "query": query, "mode": "keyword", "top_k": 5 }),
    );
    assert_eq!(code, 200, "{body}");
    body
}

/// A new version of a document that cannot be read (a sync tool wrote it with the
/// wrong mode) keeps the previous version searchable; a `chmod` that fixes it is
/// picked up at once, and a failure that outlives a stop is tried again at the
/// next start. Before, the failure replaced the document's chunks with nothing,
/// and the document stayed failed until its content changed again.
#[test]
fn a_version_that_cannot_be_read_keeps_the_previous_one_until_it_can() {
    let dir = tempfile::tempdir().unwrap();
    let docs = docs_folder(dir.path());
    let watch = dir.path().join("watch-dirs");
    std::fs::write(&watch, format!("{} = docs\n", docs.display())).unwrap();
    let data = dir.path().join("data");
    let server = serve_without_override(&data, &watch);
    server.wait_status("the notes to be indexed", Duration::from_secs(120), |s| {
        settled(s) && s["counts"]["indexed"] == 3
    });

    // The new version replaces the file in one rename, unreadable from the start.
    let replace = |text: &str| {
        let tmp = docs.join(".incoming");
        std::fs::write(&tmp, text).unwrap();
        chmod(&tmp, 0o000);
        std::fs::rename(&tmp, docs.join("note-0.md")).unwrap();
    };
    replace("# Note 0\n\nThe orchard on hill 0 now grows quinces.");
    let status = server.wait_status("the read to fail", Duration::from_secs(120), |s| {
        settled(s) && crate::common::doc(s, "note-0.md").is_some_and(|d| d["state"] == "failed")
    });
    let note = crate::common::doc(&status, "note-0.md").unwrap();
    let error = note["error"].as_str().unwrap();
    assert!(error.contains("ermission denied"), "{note:#}");
    assert!(
        error.contains("previous version stays searchable"),
        "{note:#}"
    );
    assert!(note["chunks"].as_u64().unwrap() > 0, "{note:#}");
    assert!(found(&server, "hill 0 pears").contains("note-0.md"));

    // Readable again: indexed at once, without waiting for the next try.
    chmod(&docs.join("note-0.md"), 0o644);
    server.wait_status("the chmod to be picked up", Duration::from_secs(60), |s| {
        settled(s) && crate::common::doc(s, "note-0.md").is_some_and(|d| d["state"] == "indexed")
    });
    assert!(found(&server, "quinces").contains("note-0.md"));

    // Unreadable again; fixed while docchat is stopped: tried again at start.
    replace("# Note 0\n\nThe orchard on hill 0 now grows medlars.");
    server.wait_status("the read to fail", Duration::from_secs(120), |s| {
        settled(s) && crate::common::doc(s, "note-0.md").is_some_and(|d| d["state"] == "failed")
    });
    server.kill();
    chmod(&docs.join("note-0.md"), 0o644);
    let server = serve_without_override(&data, &watch);
    server.wait_status("the retry at start", Duration::from_secs(120), |s| {
        settled(s) && crate::common::doc(s, "note-0.md").is_some_and(|d| d["state"] == "indexed")
    });
    assert!(found(&server, "medlars").contains("note-0.md"));
    server.kill();
    assert_intact(&data, 3);
}

/// A sub-folder that cannot be read is not a deleted one: its documents stay,
/// the status says what cannot be reached, and once it can be read again it
/// is no longer listed. Before, a start with the folder unreadable removed its
/// documents.
#[test]
fn a_folder_that_cannot_be_read_keeps_its_documents() {
    let dir = tempfile::tempdir().unwrap();
    let docs = docs_folder(dir.path());
    let sub = docs.join("archive");
    std::fs::create_dir_all(&sub).unwrap();
    std::fs::write(
        sub.join("old.md"),
        "# Archive\n\nThe granary was rebuilt in stone.",
    )
    .unwrap();
    let watch = dir.path().join("watch-dirs");
    std::fs::write(&watch, format!("{} = docs\n", docs.display())).unwrap();
    let data = dir.path().join("data");
    let server = serve_without_override(&data, &watch);
    server.wait_status("the notes to be indexed", Duration::from_secs(120), |s| {
        settled(s) && s["counts"]["indexed"] == 4
    });
    server.kill();

    chmod(&sub, 0o000);
    let server = serve_without_override(&data, &watch);
    let status = server.wait_status(
        "the folder to be found unreadable",
        Duration::from_secs(120),
        |s| settled(s) && s["unavailable"].as_array().is_some_and(|u| !u.is_empty()),
    );
    let away = status["unavailable"].to_string();
    assert!(away.contains("archive"), "{away}");
    assert!(away.contains("ermission denied"), "{away}");
    assert_eq!(status["counts"]["indexed"], 4, "{status:#}");
    assert!(found(&server, "granary stone").contains("archive/old.md"));

    // Readable again: no longer listed, nothing indexed twice.
    chmod(&sub, 0o755);
    let status = server.wait_status("the folder to be back", Duration::from_secs(90), |s| {
        settled(s) && s["unavailable"].as_array().is_some_and(Vec::is_empty)
    });
    assert_eq!(status["counts"]["indexed"], 4, "{status:#}");
    server.kill();
    chmod(&sub, 0o755);
    assert_intact(&data, 4);
}

/// A file far larger than any document (a disk image or a log named .txt) is
/// refused by its size, without being read: before, it was read whole into the
/// server to be hashed, and the server died at every start.
#[test]
fn a_huge_file_fails_alone_without_being_read() {
    let dir = tempfile::tempdir().unwrap();
    let docs = docs_folder(dir.path());
    // Sparse: 30 GiB long, nothing on the disk.
    std::fs::File::create(docs.join("huge.txt"))
        .unwrap()
        .set_len(30 << 30)
        .unwrap();
    let watch = dir.path().join("watch-dirs");
    std::fs::write(&watch, format!("{} = docs\n", docs.display())).unwrap();
    let server = Server::start(&dir.path().join("data"), &watch);
    let status = server.wait_status("the folder to settle", Duration::from_secs(120), |s| {
        settled(s) && s["documents"].as_array().is_some_and(|d| d.len() == 4)
    });
    let huge = crate::common::doc(&status, "huge.txt").unwrap();
    assert_eq!(huge["state"], "failed", "{huge:#}");
    let error = huge["error"].as_str().unwrap();
    assert!(
        error.contains("too large") && error.contains("max_file_mb"),
        "{huge:#}"
    );
    assert_eq!(status["counts"]["indexed"], 3, "{status:#}");
    let r = server.get("/api/resources");
    assert!(
        r["process"]["rss_bytes"].as_u64().unwrap() < 2 << 30,
        "{r:#}"
    );
}
