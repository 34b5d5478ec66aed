//! Watch semantics on real folders: edits re-embed only what changed, renames and
//! moves are metadata updates, editors' save patterns are one update, ignored and
//! linked files, and a watched folder that disappears keeps its index.

use crate::common::{Server, doc, run, settled};
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(180);

/// A long text document: `pages` pages (form feeds), four paragraphs each.
fn long_text(pages: usize, edited_page: Option<usize>) -> String {
    let mut out = String::new();
    for p in 0..pages {
        if p > 0 {
            out.push('\u{c}');
        }
        for q in 0..4 {
            if Some(p) == edited_page && q == 1 {
                out.push_str(
                    "This paragraph was rewritten: the lease now ends in March, the deposit \
                     is returned within fourteen days, and the tenant keeps the garden shed.\n\n",
                );
                continue;
            }
            out.push_str(&format!(
                "Section {p}.{q}. The parties agree that clause {p}{q} governs the delivery of \
                 goods numbered {p}-{q}, that invoices for batch {q} of page {p} are payable \
                 within thirty days, and that disputes about item {p}{q} go to arbitration in \
                 the city named in schedule {q}. Notices under clause {p}{q} are given in \
                 writing to the addresses in annex {p}, and the warranty for batch {p}{q} \
                 lasts for twelve months from delivery.\n\n"
            ));
        }
    }
    out
}

fn stat(s: &Value, key: &str) -> u64 {
    s["stats"][key].as_u64().unwrap()
}

fn paths(s: &Value) -> Vec<String> {
    let mut v: Vec<String> = s["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            format!(
                "{}/{}",
                d["collection"].as_str().unwrap(),
                d["path"].as_str().unwrap()
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn edits_renames_moves_and_ignores() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, outside) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("outside"),
    );
    for d in [&a, &b, &outside] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(a.join("long.txt"), long_text(20, None)).unwrap();
    std::fs::write(
        a.join("notes.md"),
        "# Notes\n\nThe boiler is serviced every October by Kessler & Sons.\n",
    )
    .unwrap();
    std::fs::write(
        outside.join("shared.md"),
        "# Shared\n\nThe shared calendar lives on the office server.\n",
    )
    .unwrap();
    // Ignored: hidden, office lock and temp files, partial downloads, unsupported types.
    for name in [
        ".hidden.md",
        "~$draft.docx",
        ".~lock.notes.md#",
        "movie.part",
        "photo.heic",
    ] {
        std::fs::write(a.join(name), "The boiler is serviced every October.").unwrap();
    }
    // Links are followed, a link back up the tree is not a loop.
    std::os::unix::fs::symlink(outside.join("shared.md"), a.join("shared-link.md")).unwrap();
    std::os::unix::fs::symlink(&a, a.join("loop")).unwrap();

    let watch = tmp.path().join("watch-dirs");
    std::fs::write(
        &watch,
        format!("{} = alpha\n{} = beta\n", a.display(), b.display()),
    )
    .unwrap();
    let data = tmp.path().join("data");
    let server = Server::start(&data, &watch);
    let s = server.wait_status("the first scan", WAIT, |s| {
        settled(s) && s["documents"].as_array().unwrap().len() >= 3
    });
    assert_eq!(
        paths(&s),
        ["alpha/long.txt", "alpha/notes.md", "alpha/shared-link.md"],
        "{s:#}"
    );
    let long = doc(&s, "long.txt").unwrap();
    assert_eq!(long["pages"], 20);
    let long_chunks = long["chunks"].as_u64().unwrap();
    assert!(long_chunks >= 20, "{long:#}");

    // One paragraph edited: only the chunks of its page are embedded again.
    let (embedded, extracted) = (stat(&s, "chunks_embedded"), stat(&s, "documents_extracted"));
    std::fs::write(a.join("long.txt"), long_text(20, Some(9))).unwrap();
    let s = server.wait_status("the edit", WAIT, |s| {
        settled(s) && stat(s, "documents_extracted") == extracted + 1
    });
    let re_embedded = stat(&s, "chunks_embedded") - embedded;
    assert!(re_embedded >= 1, "the edited chunk is embedded");
    assert!(
        re_embedded * 10 <= long_chunks,
        "{re_embedded} of {long_chunks} chunks embedded again for a one-paragraph edit"
    );
    let (_, body) = server.post(
        "/api/search",
        &json!({ "query": "garden shed deposit returned", "top_k": 1 }),
    );
    let hit: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(hit["hits"][0]["path"], "long.txt", "{hit}");
    assert_eq!(hit["hits"][0]["page_start"], 10, "{hit}");

    // Rename, move into a subfolder, move to the other watched folder: metadata only.
    let (embedded, extracted) = (stat(&s, "chunks_embedded"), stat(&s, "documents_extracted"));
    let steps: [(&Path, &Path, &str); 3] = [
        (&a.join("notes.md"), &a.join("boiler.md"), "alpha/boiler.md"),
        (
            &a.join("boiler.md"),
            &a.join("sub/boiler.md"),
            "alpha/sub/boiler.md",
        ),
        (
            &a.join("sub/boiler.md"),
            &b.join("boiler.md"),
            "beta/boiler.md",
        ),
    ];
    std::fs::create_dir_all(a.join("sub")).unwrap();
    for (i, (from, to, listed)) in steps.iter().enumerate() {
        std::fs::rename(from, to).unwrap();
        let s = server.wait_status(listed, WAIT, |s| {
            settled(s) && paths(s).contains(&listed.to_string()) && paths(s).len() == 3
        });
        assert_eq!(stat(&s, "documents_moved"), i as u64 + 1, "{s:#}");
        assert_eq!(
            stat(&s, "chunks_embedded"),
            embedded,
            "a move embeds nothing: {s:#}"
        );
        assert_eq!(
            stat(&s, "documents_extracted"),
            extracted,
            "a move extracts nothing: {s:#}"
        );
    }
    let (_, body) = server.post(
        "/api/search",
        &json!({ "query": "boiler serviced October", "top_k": 1 }),
    );
    let hit: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(hit["hits"][0]["collection"], "beta", "{hit}");
    assert_eq!(hit["hits"][0]["path"], "boiler.md", "{hit}");

    // Moved out of every watched folder: removed.
    std::fs::rename(b.join("boiler.md"), outside.join("boiler.md")).unwrap();
    let s = server.wait_status("the move out", WAIT, |s| settled(s) && paths(s).len() == 2);
    assert_eq!(paths(&s), ["alpha/long.txt", "alpha/shared-link.md"]);

    // An editor's save (write a temp file, rename it over) and a burst of writes:
    // one update each.
    let extracted = stat(&s, "documents_extracted");
    std::fs::write(a.join("long.txt.tmp"), long_text(20, Some(3))).unwrap();
    std::fs::rename(a.join("long.txt.tmp"), a.join("long.txt")).unwrap();
    for i in 0..8 {
        std::fs::write(
            a.join("draft.md"),
            format!("# Draft\n\nVersion {i} of the minutes.\n"),
        )
        .unwrap();
        std::thread::sleep(Duration::from_millis(40));
    }
    let s = server.wait_status("the saves", WAIT, |s| settled(s) && paths(s).len() == 3);
    assert_eq!(stat(&s, "documents_extracted"), extracted + 2, "{s:#}");
    let (_, body) = server.post(
        "/api/search",
        &json!({ "query": "minutes draft version", "top_k": 1, "mode": "keyword" }),
    );
    assert!(
        body.contains("Version 7 of the minutes"),
        "the last write is indexed: {body}"
    );

    // A PDF copied slowly (pauses longer than the debounce) is read once, whole.
    let extracted = stat(&s, "documents_extracted");
    let pdf = std::fs::read(crate::common::corpus().join("pdf-wild/tracemonkey.pdf")).unwrap();
    {
        use std::io::Write;
        let mut f = std::fs::File::create(a.join("paper.pdf")).unwrap();
        for part in pdf.chunks(pdf.len() / 3 + 1) {
            f.write_all(part).unwrap();
            f.flush().unwrap();
            std::thread::sleep(Duration::from_millis(900));
        }
    }
    let s = server.wait_status("the slow copy", WAIT, |s| settled(s) && paths(s).len() == 4);
    let paper = doc(&s, "paper.pdf").unwrap();
    assert_eq!(paper["state"], "indexed", "{paper:#}");
    assert_eq!(paper["pages"], 14, "{paper:#}");
    assert_eq!(
        stat(&s, "documents_extracted"),
        extracted + 1,
        "read once, when complete: {s:#}"
    );
    server.kill();
    // Edits, renames and moves left nothing for the integrity check to repair.
    crate::common::assert_intact(&data);

    // The watched folder disappears (an unplugged disk) while docchat is off, then
    // while it runs: its documents stay.
    let unplugged = tmp.path().join("a-unplugged");
    std::fs::rename(&a, &unplugged).unwrap();
    let server = Server::start(&data, &watch);
    let s = server.wait_status("the restart", WAIT, settled);
    assert_eq!(paths(&s).len(), 4, "{s:#}");
    std::fs::rename(&unplugged, &a).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    std::fs::rename(&a, &unplugged).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let s = server.wait_status("the unplug", WAIT, settled);
    assert_eq!(
        paths(&s).len(),
        4,
        "documents of a missing folder are kept: {s:#}"
    );
    server.kill();

    // The user says so: forgetting the collection removes it.
    let out = run(&data, &["forget", "alpha"]);
    assert!(out.contains("forgot 4 documents"), "{out}");
    let out = run(&data, &["status", "--json"]);
    let status: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        status["documents"].as_array().unwrap().len(),
        0,
        "{status:#}"
    );
}

/// A file whose name is not UTF-8 (written on a machine with a Latin-1 locale, or
/// unpacked from an old archive) is indexed once, kept across restarts without
/// being read again, and served. Before, its path was stored lossily: the file was
/// removed and indexed again at every other start, and could not be opened.
#[test]
fn a_name_in_another_encoding_is_indexed_once_and_served() {
    use std::os::unix::ffi::OsStrExt;
    let tmp = tempfile::tempdir().unwrap();
    let docs = tmp.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    let name = std::ffi::OsStr::from_bytes(b"caf\xe9 menu.txt");
    let text = "The caf\u{e9} serves chestnut soup on Thursdays.\n";
    std::fs::write(docs.join(name), text).unwrap();
    let watch = tmp.path().join("watch-dirs");
    std::fs::write(&watch, format!("{} = docs\n", docs.display())).unwrap();
    let data = tmp.path().join("data");
    let mut id = String::new();
    for start in 0..3 {
        let server = Server::start(&data, &watch);
        let s = server.wait_status("the folder to settle", WAIT, |s| {
            settled(s) && s["counts"]["indexed"] == 1
        });
        let d = &s["documents"][0];
        assert_eq!(s["documents"].as_array().unwrap().len(), 1, "{s:#}");
        if start == 0 {
            id = d["id"].as_str().unwrap().to_string();
        } else {
            assert_eq!(d["id"], id.as_str(), "the same document: {s:#}");
            assert_eq!(stat(&s, "documents_extracted"), 0, "not read again: {s:#}");
        }
        let res = server.get_raw(&format!("/api/documents/{id}/file"));
        assert_eq!(res.status, 200, "{}", res.text());
        assert_eq!(res.text(), text);
        server.kill();
    }
    crate::common::assert_intact(&data);
}
