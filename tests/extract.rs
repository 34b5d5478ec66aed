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

/// The text of each page, white space runs as one space.
fn page_texts(v: &Value) -> Vec<String> {
    v["ok"]["pages"]
        .as_array()
        .unwrap_or_else(|| panic!("extracted: {v:#}"))
        .iter()
        .map(|p| {
            p["text"]
                .as_str()
                .unwrap()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

#[test]
fn slides_are_pages_with_their_title_first_and_table_rows_kept_together() {
    let v = extract(&corpus().join("pptx-wild/features_steps_test_files_tbl-cell.pptx"));
    let pages = page_texts(&v);
    assert_eq!(pages.len(), 3, "{v:#}");
    // A 3×3 table: each row on a line of its own, cells in order.
    let third = v["ok"]["pages"][2]["text"].as_str().unwrap();
    assert!(third.contains("a | b | c\nd | e | f\ng | h | i"), "{third}");
    assert_eq!(v["ok"]["pages"][2]["number"], 3);

    let v = extract(&corpus().join("pptx-wild/features_steps_test_files_test.pptx"));
    let pages = page_texts(&v);
    assert!(
        pages[0].starts_with("Presentation Title Text") && pages[0].contains("Subtitle Text"),
        "{pages:?}"
    );
    assert_eq!(v["ok"]["extractor"], "pptx");

    // A deck of charts only has no text to index: a reason, not a crash.
    let v = extract(&corpus().join("pptx-wild/features_steps_test_files_cht-chart-type.pptx"));
    let reason = v["failed"].as_str().expect("failed with a reason");
    assert!(reason.starts_with("no text"), "{reason}");
}

#[test]
fn book_chapters_are_pages_in_reading_order() {
    let v = extract(&corpus().join("epub-wild/moby-dick-mo.epub"));
    let pages = page_texts(&v);
    // One page per document of the spine: cover, title page, contents, preface,
    // introduction, epigraph, then the chapters.
    assert_eq!(pages.len(), 144);
    assert_eq!(v["ok"]["title"], "Moby-Dick");
    assert!(
        pages[6].contains("Call me Ishmael."),
        "{}",
        &pages[6][..200]
    );
    assert!(
        pages[6].contains("Chapter 1. Loomings."),
        "{}",
        &pages[6][..200]
    );
    assert_eq!(v["ok"]["extractor"], "epub");

    // Japanese and French text as written.
    let pages = page_texts(&extract(&corpus().join("epub-wild/haruko-html-jpeg.epub")));
    assert!(
        pages.iter().any(|p| p.contains("ハルコさんの彼氏")),
        "{pages:?}"
    );
    let pages = page_texts(&extract(&corpus().join("epub-wild/sous-le-vent.epub")));
    assert!(
        pages
            .iter()
            .any(|p| p.contains("Il avait sorti sa fléchette")),
        "{pages:?}"
    );

    // SVG in the spine: drawings whose only text is their style sheet, which is not
    // taken for text.
    let v = extract(&corpus().join("epub-wild/svg-in-spine.epub"));
    let reason = v["failed"].as_str().expect("failed with a reason");
    assert!(reason.starts_with("no text"), "{reason}");

    // A book whose spine documents are missing: a reason.
    let v = extract(&corpus().join("epub-wild/kusamakura-japanese-vertical-writing.epub"));
    let reason = v["failed"].as_str().expect("failed with a reason");
    assert!(reason.starts_with("no text"), "{reason}");
}

#[test]
fn sheets_are_pages_with_their_header_dates_and_cached_formula_values() {
    let sheets = corpus().join("sheets-wild");
    let v = extract(&sheets.join("tests_temperature-table.xlsx"));
    let first = v["ok"]["pages"][0]["text"].as_str().expect("extracted");
    assert!(
        first.starts_with("Sheet: Sheet1\nlabel | value\ncelsius | 22.2222\nfahrenheit | 72"),
        "{first}"
    );
    assert_eq!(v["ok"]["extractor"], "calamine");

    // Dates as dates, in both of Excel's date systems and in XLSB; a duration as
    // hours.
    for name in [
        "tests_date.xlsb",
        "tests_date_1904.xlsx",
        "tests_date_1904.xls",
    ] {
        let v = extract(&sheets.join(name));
        let text = v["ok"]["pages"][0]["text"].as_str().expect("extracted");
        assert_eq!(
            text, "Sheet: Sheet1\n2021-01-01 | 15\n2021-01-02 | 16\n255:10:10 | 17",
            "{name}"
        );
    }
    // Formulas give the values the workbook saved.
    let v = extract(&sheets.join("tests_shared_formula_simple.xlsx"));
    let text = v["ok"]["pages"][0]["text"].as_str().unwrap();
    assert_eq!(text, "Sheet: Sheet1\n1 | 2\n2 | 4\n3 | 6");
    // Every sheet is a page, in the workbook's order; an ODS and an XLS as well.
    let v = extract(&sheets.join("tests_issues.ods"));
    assert_eq!(v["ok"]["pages"].as_array().unwrap().len(), 6, "{v:#}");
    let v = extract(&sheets.join("tests_issue219.xls"));
    assert_eq!(v["ok"]["pages"][0]["text"], "Sheet: 工作表1\na");

    // A long sheet: every block of rows begins with the header row.
    let v = extract(&sheets.join("tests_minimal_package.xlsx"));
    let text = v["ok"]["pages"][0]["text"].as_str().unwrap();
    let blocks: Vec<&str> = text.split("\n\n").collect();
    assert!(blocks.len() > 20, "{}", blocks.len());
    // The title above the table comes once; the column names head every block.
    assert!(blocks[0].starts_with("Sheet: Sheet1\nARREST BOOKINGS for 01/30/17\nBKG_NUM | BKG_DT"));
    let header = blocks[0].lines().nth(2).unwrap();
    assert!(
        blocks[1..].iter().all(|b| b.starts_with(header)),
        "{}",
        blocks[1]
    );

    // Password-protected workbooks and broken ones are reasons, not crashes.
    for name in ["tests_pass_protected.xlsx", "tests_pass_protected.ods"] {
        let v = extract(&sheets.join(name));
        let reason = v["failed"].as_str().expect("failed with a reason");
        assert!(reason.starts_with("encrypted"), "{name}: {reason}");
    }
    for name in ["tests_too_small.xls", "tests_ptgexp-truncated-operand.xls"] {
        let v = extract(&sheets.join(name));
        let reason = v["failed"].as_str().expect("failed with a reason");
        assert!(reason.starts_with("corrupt"), "{name}: {reason}");
    }
}
