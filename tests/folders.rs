//! Watched folders added and removed while the server runs: validated, indexed at
//! once, watched for new files, kept across a restart, and let go.

use crate::common::{Server, corpus, delete, doc, settled};
use serde_json::{Value, json};
use std::time::Duration;

fn collection<'a>(list: &'a Value, name: &str) -> Option<&'a Value> {
    list["collections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
}

#[test]
fn folders_are_added_and_removed_while_running() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let notes = tmp.path().join("notes");
    let cases = tmp.path().join("cases");
    std::fs::create_dir_all(&notes).unwrap();
    std::fs::create_dir_all(&cases).unwrap();
    std::fs::write(
        notes.join("a.md"),
        "# Notes\n\nThe boiler is serviced every April.\n",
    )
    .unwrap();
    std::fs::copy(
        corpus().join("docx-wild/fixtures_line_spacing_line_spacing.docx"),
        cases.join("brief.docx"),
    )
    .unwrap();
    let watch = tmp.path().join("watch-dirs");
    std::fs::write(&watch, format!("# mine\n{} = notes\n", notes.display())).unwrap();
    let wait = Duration::from_secs(120);

    let server = Server::start(&data, &watch);
    server.wait_status("the notes", wait, |s| {
        settled(s) && s["counts"]["indexed"] == 1
    });

    // Refusals, each with its reason; nothing changes.
    for (body, reason) in [
        (json!({"path": "cases"}), "full path"),
        (
            json!({"path": tmp.path().join("nowhere")}),
            "does not exist",
        ),
        (json!({"path": notes.join("a.md")}), "not a folder"),
        (json!({"path": cases, "name": "notes"}), "exists already"),
        (json!({"path": notes, "name": "other"}), "watched already"),
    ] {
        let (code, text) = server.post("/api/collections", &body);
        assert_eq!(code, 400, "{body}: {text}");
        assert!(text.contains(reason), "{body}: {text}");
    }

    let (code, text) = server.post("/api/collections", &json!({"path": cases, "name": "Cases"}));
    assert_eq!(code, 201, "{text}");
    let s = server.wait_status("the new folder", wait, |s| {
        settled(s) && s["counts"]["indexed"] == 2
    });
    assert_eq!(doc(&s, "brief.docx").unwrap()["collection"], "Cases");
    let file = std::fs::read_to_string(&watch).unwrap();
    assert!(
        file.starts_with("# mine\n") && file.ends_with("cases = Cases\n"),
        "{file}"
    );
    // The new folder is watched: a file dropped in is indexed.
    std::fs::write(cases.join("memo.txt"), "Memo: the hearing moved to June.\n").unwrap();
    server.wait_status("the dropped file", wait, |s| {
        settled(s) && s["counts"]["indexed"] == 3
    });

    // It is still watched after a restart.
    server.kill();
    let server = Server::start(&data, &watch);
    server.wait_status("the restart", wait, settled);
    let list = server.get("/api/collections");
    let c = collection(&list, "Cases").expect("listed");
    assert_eq!(
        (c["watched"].clone(), c["indexed"].clone()),
        (json!(true), json!(2)),
        "{list:#}"
    );

    // Removed from the command line, in the running server: no longer watched, its
    // documents kept until forgotten.
    let cli = |args: &[&str]| {
        crate::common::outcome(
            crate::common::docchat()
                .args(["collections", "--server", &server.base])
                .args(args),
        )
    };
    let (code, out, err) = cli(&["list", "--json"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"Cases\""), "{out}");
    let (code, out, err) = cli(&["remove", "Cases"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("0 documents removed"), "{out}");
    let (code, _, err) = cli(&["remove", "Cases"]);
    assert_eq!(code, 1);
    assert!(err.contains("no watched collection"), "{err}");
    assert!(!std::fs::read_to_string(&watch).unwrap().contains("Cases"));
    std::fs::write(cases.join("late.txt"), "Too late to be indexed.\n").unwrap();
    std::fs::write(notes.join("b.md"), "The roof was repaired in May.\n").unwrap();
    let s = server.wait_status("the note written after", wait, |s| {
        settled(s) && doc(s, "b.md").is_some()
    });
    assert!(
        doc(&s, "late.txt").is_none(),
        "a removed folder is not watched: {s:#}"
    );
    let list = server.get("/api/collections");
    let c = collection(&list, "Cases").expect("still in the index");
    assert_eq!(
        (c["watched"].clone(), c["indexed"].clone()),
        (json!(false), json!(2)),
        "{list:#}"
    );

    let (code, body) = delete(&server, "/api/collections/notes?forget=true");
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["forgotten"], 2);
    assert!(collection(&server.get("/api/collections"), "notes").is_none());
    let (code, _) = delete(&server, "/api/collections/notes");
    assert_eq!(code, 404);
}

#[test]
fn dropped_files_are_checked_and_written_into_the_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let inbox = tmp.path().join("inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    let watch = tmp.path().join("watch-dirs");
    std::fs::write(&watch, format!("{} = Inbox\n", inbox.display())).unwrap();
    let server = Server::start_with(&data, &watch, &["--max-upload-mb", "1"]);
    server.wait_status("the start", Duration::from_secs(60), settled);
    let upload = |name: &str, bytes: &[u8]| {
        let url = server.url(&format!(
            "/api/collections/Inbox/files?name={}",
            name.replace('%', "%25")
                .replace('/', "%2F")
                .replace(' ', "%20")
        ));
        let res = crate::common::http::request_raw(
            "POST",
            &url,
            Some(("application/octet-stream", bytes)),
        );
        (res.status, res.json())
    };

    let pdf = std::fs::read(corpus().join("pdf-wild/tracemonkey.pdf")).unwrap();
    let (code, body) = upload("tracemonkey.pdf", &pdf);
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["path"], "tracemonkey.pdf");
    // A name with folders in it lands in the collection's folder, cleaned; the same
    // name again gets a new name instead of replacing the first file.
    let (code, body) = upload(
        "../../escape.md",
        b"# Escape\n\nThe key is under the mat.\n",
    );
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["path"], "escape.md");
    assert!(inbox.join("escape.md").is_file());
    assert!(!tmp.path().join("escape.md").exists() && !data.join("escape.md").exists());
    let (code, body) = upload("escape.md", b"# Second\n");
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["path"], "escape (2).md");
    assert_eq!(
        std::fs::read_to_string(inbox.join("escape.md")).unwrap(),
        "# Escape\n\nThe key is under the mat.\n"
    );

    // Refusals with their reasons, and nothing written.
    let (code, body) = upload("report.pdf", b"just text, not a PDF");
    assert_eq!(code, 415, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not a PDF"),
        "{body}"
    );
    let (code, body) = upload("tool.exe", b"MZ");
    assert_eq!(code, 415, "{body}");
    let (code, body) = upload("..", b"x");
    assert_eq!(code, 400, "{body}");
    let res = crate::common::http::request_raw(
        "POST",
        &server.url("/api/collections/Nope/files?name=a.md"),
        Some(("text/markdown", b"# A")),
    );
    assert_eq!(res.status, 404);
    // Over the limit: refused from the declared size, before the body is sent.
    {
        use std::io::{Read, Write};
        let authority = server.base.trim_start_matches("http://");
        let mut s = std::net::TcpStream::connect(authority).unwrap();
        write!(
            s,
            "POST /api/collections/Inbox/files?name=big.txt HTTP/1.1\r\nHost: {authority}\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            2 << 20
        )
        .unwrap();
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        assert!(
            answer.contains("larger than the upload limit of 1 MB"),
            "{answer}"
        );
    }
    let names: Vec<String> = std::fs::read_dir(&inbox)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names.len(),
        3,
        "only the accepted files, no temporary ones: {names:?}"
    );

    // The watcher indexes the uploads like any other file.
    let s = server.wait_status("the uploads", Duration::from_secs(180), |s| {
        settled(s) && s["counts"]["indexed"] == 3
    });
    assert_eq!(doc(&s, "tracemonkey.pdf").unwrap()["pages"], 14);

    // A link that leads nowhere holds its name: the upload takes the next one,
    // at once (it was tried again and again at full speed before).
    std::os::unix::fs::symlink(tmp.path().join("gone.md"), inbox.join("memo.md")).unwrap();
    let (code, body) = upload("memo.md", b"# Memo\n\nThe boiler was serviced.\n");
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["path"], "memo (2).md");
    assert!(
        inbox
            .join("memo.md")
            .symlink_metadata()
            .unwrap()
            .is_symlink()
    );

    // The settings view: models in use, known models with their memory need, the
    // catalog, and the resources of the process.
    let m = server.get("/api/models");
    assert_eq!(m["in_use"]["chat"], "qwen2.5-coder-0.5b-instruct-q4_k_m");
    assert!(m["settings"]["top_k"].as_u64().unwrap() >= 1);
    let chat = m["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["in_use"] == "chat model")
        .unwrap();
    assert_eq!(chat["fit"], "fits", "{chat:#}");
    assert!(chat["memory"]["kv_cache"].as_u64().unwrap() > 0);
    assert!(m["catalog"].as_array().unwrap().len() >= 15);
    let r = server.get("/api/resources");
    assert!(
        r["process"]["rss_bytes"].as_u64().unwrap() > 100 << 20,
        "{r:#}"
    );
    assert_eq!(r["models"]["embedding"]["dimensions"], 384);
    let again = server.get("/api/resources");
    assert!(
        again["process"]["cpu_percent"].as_f64().is_some(),
        "{again:#}"
    );
}

/// A hand-edited watch-dirs file with two folders of the same name, or one folder
/// inside another, is refused at start with a message that says which lines and
/// what to do, before anything is indexed (before, both became the collection
/// `docs`: the same document ids, files evicting each other).
#[test]
fn colliding_or_nested_folders_are_refused_at_start() {
    let tmp = tempfile::tempdir().unwrap();
    let (work, home) = (tmp.path().join("work/docs"), tmp.path().join("home/docs"));
    for d in [&work, &home] {
        std::fs::create_dir_all(d).unwrap();
        std::fs::write(d.join("note.md"), "# Note\n\nSome words.\n").unwrap();
    }
    let refused = |lines: String, wanted: &[&str]| {
        let list = tmp.path().join("watch-dirs");
        std::fs::write(&list, lines).unwrap();
        let data = tmp.path().join("data");
        let mut cmd = Server::command(&data, &list, &[]);
        cmd.stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        // Bounded: a server that starts instead of refusing is killed and fails.
        let mut status = None;
        for _ in 0..1200 {
            status = child.try_wait().unwrap();
            if status.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if status.is_none() {
            child.kill().unwrap();
        }
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(
            !out.status.success() && status.is_some(),
            "it started: {stderr}"
        );
        for w in wanted {
            assert!(stderr.contains(w), "{w:?} not in: {stderr}");
        }
    };
    refused(
        format!("{}\n{}\n", work.display(), home.display()),
        &["line 2", "\"docs\"", "own name"],
    );
    refused(
        format!(
            "{} = all\n{} = inner\n",
            tmp.path().display(),
            home.display()
        ),
        &["line 2", "is inside", "indexed twice"],
    );
    // Named apart, both are watched.
    let list = tmp.path().join("watch-dirs");
    std::fs::write(
        &list,
        format!("{} = work\n{} = home\n", work.display(), home.display()),
    )
    .unwrap();
    let server = Server::start(&tmp.path().join("data2"), &list);
    let s = server.wait_status("both notes indexed", Duration::from_secs(120), |s| {
        settled(s)
            && s["documents"]
                .as_array()
                .is_some_and(|d| d.len() == 2 && d.iter().all(|d| d["state"] == "indexed"))
    });
    let mut collections: Vec<&str> = s["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["collection"].as_str().unwrap())
        .collect();
    collections.sort_unstable();
    assert_eq!(collections, ["home", "work"], "{s}");
    server.kill();
}
