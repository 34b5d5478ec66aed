//! Watched folders added and removed while the server runs: validated, indexed at
//! once, watched for new files, kept across a restart, and let go.

use crate::common::{Server, corpus, doc, settled};
use serde_json::{Value, json};
use std::time::Duration;

fn collection<'a>(list: &'a Value, name: &str) -> Option<&'a Value> {
    list["collections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
}

fn delete(server: &Server, path: &str) -> (u16, Value) {
    let res = crate::common::http::request("DELETE", &server.url(path), None);
    (res.status, res.json())
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
        let out = crate::common::docchat()
            .args(["collections", "--server", &server.base])
            .args(args)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (
            out.status.code(),
            text,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = cli(&["list", "--json"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("\"Cases\""), "{out}");
    let (code, out, err) = cli(&["remove", "Cases"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("0 documents removed"), "{out}");
    let (code, _, err) = cli(&["remove", "Cases"]);
    assert_eq!(code, Some(1));
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
