//! A watched folder becomes a streamed, cited answer; deletions and restarts keep
//! the index right.

use crate::common::{Server, corpus, doc, settled, sse_events};
use serde_json::json;
use std::time::Duration;

const PDF: &str = "tracemonkey.pdf";
const DOCX: &str = "fixtures_line_spacing_line_spacing.docx";
const BROKEN: &str = "issue9105_other.pdf";

#[test]
fn watched_folder_to_cited_answer_and_back() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let inbox = tmp.path().join("inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    let watch = tmp.path().join("watch-dirs");
    std::fs::write(&watch, format!("{} = papers\n", inbox.display())).unwrap();

    let server = Server::start(&data, &watch);
    // Files dropped into the folder while the server runs.
    std::fs::copy(corpus().join("pdf-wild").join(PDF), inbox.join(PDF)).unwrap();
    std::fs::copy(corpus().join("docx-wild").join(DOCX), inbox.join(DOCX)).unwrap();
    std::fs::copy(corpus().join("pdf-wild").join(BROKEN), inbox.join(BROKEN)).unwrap();

    let status = server.wait_status("three documents to settle", Duration::from_secs(300), |s| {
        settled(s) && s["documents"].as_array().is_some_and(|d| d.len() == 3)
    });
    let pdf = doc(&status, PDF).expect("the PDF is listed");
    assert_eq!(pdf["state"], "indexed", "{pdf:#}");
    assert_eq!(pdf["collection"], "papers");
    assert_eq!(pdf["pages"], 14);
    assert!(pdf["chunks"].as_u64().unwrap() > 20, "{pdf:#}");
    let docx = doc(&status, DOCX).expect("the DOCX is listed");
    assert_eq!(docx["state"], "indexed", "{docx:#}");
    let broken = doc(&status, BROKEN).expect("the broken PDF is listed");
    assert_eq!(broken["state"], "failed", "{broken:#}");
    let reason = broken["error"].as_str().unwrap_or_default();
    assert!(reason.len() > 10, "a failed document says why: {broken:#}");
    let embedded = status["stats"]["chunks_embedded"].as_u64().unwrap();
    assert!(embedded >= pdf["chunks"].as_u64().unwrap());

    // The answer streams, then cites the page that holds it.
    let (code, body) = server.post(
        "/api/chat",
        &json!({ "question": "How does SpiderMonkey call C builtins through its foreign function interface (FFI)?" }),
    );
    assert_eq!(code, 200, "{body}");
    let events = sse_events(&body);
    let tokens = events.iter().filter(|(n, _)| n == "token").count();
    assert!(tokens >= 1, "no token events: {body}");
    let (_, citations) = events
        .iter()
        .find(|(n, _)| n == "citations")
        .unwrap_or_else(|| panic!("no citations event: {body}"));
    // The answer's [n] markers are mapped onto the sources given.
    let cited = citations["cited"].as_array().expect("cited numbers");
    let unknown = citations["unknown"].as_array().expect("unknown markers");
    let given = citations["citations"].as_array().unwrap().len() as u64;
    assert!(
        cited
            .iter()
            .all(|n| (1..=given).contains(&n.as_u64().unwrap())),
        "{citations}"
    );
    assert!(
        unknown.iter().all(|n| n.as_u64().unwrap() > given),
        "{citations}"
    );
    let citations = &citations["citations"];
    let cited: Vec<(String, u64)> = citations
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["path"].as_str().unwrap().to_string(),
                c["page_start"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(
        cited.contains(&(PDF.to_string(), 10)),
        "page 10 of the paper is cited: {cited:?}"
    );
    let first = &citations[0];
    assert_eq!(first["n"], 1);
    assert!(first["url"].as_str().unwrap().contains("#page="));
    assert!(events.iter().any(|(n, _)| n == "done"), "{body}");
    assert!(!events.iter().any(|(n, _)| n == "error"), "{body}");

    // The cited link serves the original PDF.
    let id = pdf["id"].as_str().unwrap();
    let res = server.get_raw(&format!("/api/documents/{id}/file"));
    assert_eq!(res.status, 200);
    assert_eq!(res.header("content-type"), Some("application/pdf"));
    assert!(res.body.starts_with(b"%PDF"));
    let failed_id = broken["id"].as_str().unwrap();
    let res = server.get_raw(&format!("/api/documents/{failed_id}/file"));
    assert_eq!(res.status, 404, "only indexed documents are served");

    // A restart over unchanged folders re-embeds and re-extracts nothing.
    server.kill();
    let server = Server::start(&data, &watch);
    let status = server.wait_status("the restart to settle", Duration::from_secs(120), settled);
    assert_eq!(status["stats"]["chunks_embedded"], 0, "{status:#}");
    assert_eq!(status["stats"]["documents_extracted"], 0, "{status:#}");
    assert_eq!(doc(&status, PDF).unwrap()["state"], "indexed");

    // Deleting the PDF removes it and its chunks from search.
    let query = json!({ "query": "foreign function interface C builtins", "top_k": 10 });
    let (_, before) = server.post("/api/search", &query);
    assert!(
        before.contains(PDF),
        "the PDF is found before deletion: {before}"
    );
    std::fs::remove_file(inbox.join(PDF)).unwrap();
    server.wait_status("the PDF to be removed", Duration::from_secs(60), |s| {
        settled(s) && doc(s, PDF).is_none()
    });
    let (code, after) = server.post("/api/search", &query);
    assert_eq!(code, 200);
    let hits: serde_json::Value = serde_json::from_str(&after).unwrap();
    assert!(
        !hits["hits"].as_array().unwrap().is_empty(),
        "the DOCX still answers"
    );
    assert!(
        hits["hits"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["path"] != PDF),
        "no chunk of the deleted PDF is left: {after}"
    );
}

#[test]
fn bad_requests_get_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let watch = tmp.path().join("watch-dirs");
    std::fs::write(&watch, "").unwrap();
    let server = Server::start(&tmp.path().join("data"), &watch);
    let (code, body) = server.post("/api/chat", &json!({ "question": "   " }));
    assert_eq!(code, 400);
    assert!(body.contains("the question is empty"), "{body}");
    let (code, body) = server.post("/api/search", &json!({ "query": "x", "top_k": 0 }));
    assert_eq!(code, 400);
    assert!(body.contains("top_k"), "{body}");
    assert_eq!(server.get_raw("/api/documents/nope/file").status, 404);
    let page = server.get_raw("/").text();
    assert!(page.contains("<title>docchat</title>"));
}
