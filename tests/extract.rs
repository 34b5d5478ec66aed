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

/// An OpenDocument text as LibreOffice writes one: the MIME type first and stored,
/// then content, styles (a header) and metadata.
fn write_odt(path: &std::path::Path, content: &str, styles: &str, meta: &str, encrypted: bool) {
    use std::io::Write;
    let file = std::fs::File::create(path).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let deflated = zip::write::SimpleFileOptions::default();
    zip.start_file("mimetype", stored).unwrap();
    zip.write_all(b"application/vnd.oasis.opendocument.text")
        .unwrap();
    for (name, xml) in [
        ("content.xml", content),
        ("styles.xml", styles),
        ("meta.xml", meta),
        (
            "META-INF/manifest.xml",
            if encrypted {
                r#"<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"><manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"><manifest:encryption-data manifest:checksum-type="SHA1/1K"/></manifest:file-entry></manifest:manifest>"#
            } else {
                r#"<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"><manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.text"/></manifest:manifest>"#
            },
        ),
    ] {
        zip.start_file(name, deflated).unwrap();
        zip.write_all(xml.as_bytes()).unwrap();
    }
    zip.finish().unwrap();
}

#[test]
fn odt_pages_tables_headers_and_metadata() {
    const NS: &str = r#"xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0" xmlns:fo="urn:oasis:names:tc:opendocument:xmlns:xsl-fo-compatible:1.0" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:meta="urn:oasis:names:tc:opendocument:xmlns:meta:1.0""#;
    let content = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<office:document-content {NS}><office:automatic-styles>
<style:style style:name="P1" style:family="paragraph" style:parent-style-name="Standard"><style:paragraph-properties fo:break-before="page"/></style:style>
</office:automatic-styles><office:body><office:text>
<text:h text:outline-level="1">Lease of the north pasture</text:h>
<text:p>The tenant pays the rent on the first day of each month.</text:p>
<table:table table:name="Terms"><table:table-column/><table:table-column/>
<table:table-row><table:table-cell><text:p>Rent</text:p></table:table-cell><table:table-cell><text:p>450 EUR</text:p></table:table-cell></table:table-row>
<text:soft-page-break/>
<table:table-row><table:table-cell><text:p>Deposit</text:p></table:table-cell><table:table-cell><text:p>900 EUR</text:p></table:table-cell></table:table-row>
</table:table>
<text:p text:style-name="P1">Annex: the fences are repaired by the owner.</text:p>
</office:text></office:body></office:document-content>"#
    );
    let styles = format!(
        r#"<office:document-styles {NS}><office:master-styles><style:master-page style:name="Standard"><style:header><text:p>Rossi farm, lease 2026</text:p></style:header></style:master-page></office:master-styles></office:document-styles>"#
    );
    let meta = format!(
        r#"<office:document-meta {NS}><office:meta><dc:title>North pasture lease</dc:title><dc:creator>Giulia Rossi</dc:creator></office:meta></office:document-meta>"#
    );
    let tmp = tempfile::tempdir().unwrap();
    let odt = tmp.path().join("lease.odt");
    write_odt(&odt, &content, &styles, &meta, false);
    let v = extract(&odt);
    assert_eq!(v["ok"]["extractor"], "odt", "{v:#}");
    assert_eq!(v["ok"]["title"], "North pasture lease");
    assert_eq!(v["ok"]["author"], "Giulia Rossi");
    assert_eq!(
        page_texts(&v),
        [
            "Rossi farm, lease 2026 Lease of the north pasture The tenant pays the rent on the first day of each month. Rent | 450 EUR",
            "Deposit | 900 EUR",
            "Annex: the fences are repaired by the owner.",
        ]
    );

    // A password-protected one says so; a broken one is corrupt.
    let locked = tmp.path().join("locked.odt");
    write_odt(&locked, &content, &styles, &meta, true);
    let reason = extract(&locked)["failed"].as_str().unwrap().to_string();
    assert!(reason.starts_with("encrypted"), "{reason}");
    let broken = tmp.path().join("broken.odt");
    std::fs::write(&broken, b"PK\x03\x04 not a package").unwrap();
    let reason = extract(&broken)["failed"].as_str().unwrap().to_string();
    assert!(reason.starts_with("corrupt"), "{reason}");
}
