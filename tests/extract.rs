//! Extraction of real documents, through the isolated `docchat extract` child.

use crate::common::{corpus, docchat};
use serde_json::Value;

fn extract(path: &std::path::Path) -> Value {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out.json");
    let status = docchat()
        .arg("extract")
        .arg("--out")
        .arg(&out)
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
    serde_json::from_slice(&std::fs::read(out).unwrap()).unwrap()
}

#[test]
fn pdf_pages_come_out_in_order() {
    let v = extract(&corpus().join("pdf-wild/tracemonkey.pdf"));
    let pages = v["ok"]["pages"].as_array().expect("extracted");
    assert_eq!(pages.len(), 14);
    assert_eq!(pages[9]["number"], 10);
    assert!(
        pages[9]["text"]
            .as_str()
            .unwrap()
            .contains("foreign function interface")
    );
    assert!(
        pages[0]["text"]
            .as_str()
            .unwrap()
            .contains("Trace-based Just-in-Time")
    );
}

#[test]
fn docx_page_breaks_give_pages() {
    let v = extract(&corpus().join("docx-wild/fixtures_toc1_toc1.docx"));
    let pages = v["ok"]["pages"].as_array().expect("extracted");
    assert_eq!(pages.len(), 3, "{v:#}");
    assert!(pages[1]["text"].as_str().unwrap().contains("Hello"));
    assert!(pages[2]["text"].as_str().unwrap().contains("こんにちは"));
    assert_eq!(v["ok"]["extractor"], "docx-rs");
}

#[test]
fn a_broken_pdf_is_a_reason_not_a_crash() {
    let v = extract(&corpus().join("pdf-wild/issue9105_other.pdf"));
    let reason = v["failed"].as_str().expect("failed with a reason");
    assert!(
        reason.starts_with("corrupt") || reason.starts_with("no text"),
        "{reason}"
    );
}
