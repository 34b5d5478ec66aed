//! Scanned pages and images read by OCR (Tesseract, installed by scripts/setup.sh):
//! a page of a real manual, rendered to pixels, comes back with its words, only
//! the pages without a text layer are read, text documents go first, the progress
//! names the pages, and a question about the scanned page cites it.

use crate::common::http::read_events;
use crate::common::scan::{
    Gray, PdfPage, SCANNED_PAGE, render, render_png, word_recall, words, words_of_page, write_pdf,
    write_tiff,
};
use crate::common::{Server, corpus, docchat, settled};
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;

/// The languages `scripts/setup.sh` installs, as the server passes them.
const LANGUAGES: &str = "eng+ita+deu+fra+spa";

const WAIT: Duration = Duration::from_secs(300);

const FIRST_PAGE: &[&str] = &[
    "Minutes of the board of the alpaca cooperative, spring meeting.",
    "The board approved the new shearing schedule and the budget for fencing.",
];
const LAST_PAGE: &[&str] = &[
    "Appendix: the scanned page above is a copy of the packaging manual.",
    "Questions about it go to the secretary of the cooperative.",
];

fn manual() -> std::path::PathBuf {
    corpus().join("manuals/R-exts.pdf")
}

/// A report of three pages: text, a scan of the manual's page, text.
fn scanned_report(path: &Path, scan: &Gray) {
    write_pdf(
        path,
        &[
            PdfPage::Text(FIRST_PAGE),
            PdfPage::Scan(scan),
            PdfPage::Text(LAST_PAGE),
        ],
    );
}

/// `docchat extract` with `--ocr pass`: the JSON outcome and what it printed.
fn extract(path: &Path, pass: &str) -> (Value, String) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out.json");
    let output = docchat()
        .args(["extract", "--ocr", pass, "--ocr-languages", LANGUAGES])
        .arg("--out")
        .arg(&out)
        .arg(path)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let v = serde_json::from_slice(&std::fs::read(out).unwrap()).unwrap();
    (v, String::from_utf8_lossy(&output.stdout).into_owned())
}

fn page_text(v: &Value, number: u64) -> String {
    v["ok"]["pages"]
        .as_array()
        .expect("extracted")
        .iter()
        .find(|p| p["number"] == number)
        .and_then(|p| p["text"].as_str())
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_scanned_page_comes_back_with_its_words_and_only_it_is_read() {
    let tmp = tempfile::tempdir().unwrap();
    let pdf = tmp.path().join("report.pdf");
    scanned_report(&pdf, &render(&manual(), SCANNED_PAGE, 300));
    let expected = words_of_page(&manual(), SCANNED_PAGE);
    assert!(expected.len() > 400, "{} words", expected.len());

    // The quick first reading lists the page without reading it.
    let (first, _) = extract(&pdf, "detect");
    assert_eq!(first["ok"]["ocr_wanted"], json!([2]), "{first:#}");
    assert!(first["ok"]["ocr"].is_null());
    assert!(page_text(&first, 2).trim().is_empty());

    // With OCR: page 2 only, with at least 95 % of its words, the progress printed.
    let (v, printed) = extract(&pdf, "run");
    let ocr = &v["ok"]["ocr"];
    assert_eq!(ocr["pages"], json!([2]), "{v:#}");
    assert_eq!(ocr["languages"], json!(["eng", "ita", "deu", "fra", "spa"]));
    assert!(ocr["engine"].as_str().unwrap().starts_with("tesseract "));
    let extractor = v["ok"]["extractor"].as_str().unwrap();
    assert!(
        extractor.ends_with("+ OCR tesseract") || extractor.contains(" + OCR tesseract "),
        "{extractor}"
    );
    assert!(extractor.ends_with("pages 2"), "{extractor}");
    let recall = word_recall(&expected, &words(&page_text(&v, 2)));
    assert!(
        recall >= 0.95,
        "OCR found {:.1} % of the page's words",
        recall * 100.0
    );
    assert!(page_text(&v, 1).contains("alpaca cooperative"));
    assert!(page_text(&v, 3).contains("secretary of the cooperative"));
    assert_eq!(printed.lines().collect::<Vec<_>>(), ["ocr 0 1", "ocr 1 1"]);

    // With OCR off, a scan alone has no text, and the reason says so.
    let only_scan = tmp.path().join("scan-only.pdf");
    write_pdf(
        &only_scan,
        &[PdfPage::Scan(&render(&manual(), SCANNED_PAGE, 150))],
    );
    let (off, _) = extract(&only_scan, "off");
    let reason = off["failed"].as_str().expect("failed");
    assert!(
        reason.starts_with("no text") && reason.contains("OCR is off"),
        "{reason}"
    );
}

#[test]
fn images_are_read_a_page_per_frame() {
    let tmp = tempfile::tempdir().unwrap();
    // A PNG, as poppler writes it.
    let png = tmp.path().join("page.png");
    render_png(&manual(), 20, 300, &png);
    let (v, _) = extract(&png, "run");
    assert_eq!(v["ok"]["pages"].as_array().unwrap().len(), 1, "{v:#}");
    let recall = word_recall(&words_of_page(&manual(), 20), &words(&page_text(&v, 1)));
    assert!(recall >= 0.95, "PNG: {:.1} %", recall * 100.0);
    assert!(
        v["ok"]["extractor"]
            .as_str()
            .unwrap()
            .starts_with("image + OCR tesseract")
    );

    // A TIFF of two frames: two pages, each with its own page's words.
    let tiff = tmp.path().join("two.tiff");
    let (a, b) = (render(&manual(), 20, 300), render(&manual(), 21, 300));
    write_tiff(&tiff, &[&a, &b]);
    let (v, _) = extract(&tiff, "run");
    assert_eq!(v["ok"]["pages"].as_array().unwrap().len(), 2, "{v:#}");
    for (number, page) in [(1, 20), (2, 21)] {
        let recall = word_recall(
            &words_of_page(&manual(), page),
            &words(&page_text(&v, number)),
        );
        assert!(
            recall >= 0.95,
            "TIFF frame {number}: {:.1} %",
            recall * 100.0
        );
    }

    // Not an image at all: a reason, not a crash.
    let fake = tmp.path().join("fake.jpg");
    std::fs::write(&fake, b"\xFF\xD8\xFF not really a JPEG").unwrap();
    let (v, _) = extract(&fake, "run");
    let reason = v["failed"].as_str().expect("failed");
    assert!(reason.starts_with("corrupt"), "{reason}");
}

#[test]
fn scans_wait_for_text_documents_show_progress_and_are_cited_by_page() {
    let tmp = tempfile::tempdir().unwrap();
    let inbox = tmp.path().join("inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    let watch = tmp.path().join("watch-dirs");
    std::fs::write(&watch, format!("{} = office\n", inbox.display())).unwrap();
    let data = tmp.path().join("data");
    let server = Server::start(&data, &watch);
    server.wait_status("the empty start", WAIT, settled);

    // The collection is paused while the files arrive, the scans first: all seven
    // are queued when indexing resumes.
    let (code, body) = server.post("/api/collections/office/pause", &json!({}));
    assert_eq!(code, 200, "{body}");
    scanned_report(
        &inbox.join("report.pdf"),
        &render(&manual(), SCANNED_PAGE, 300),
    );
    render_png(&manual(), 21, 200, &tmp.path().join("fax.png"));
    std::fs::rename(tmp.path().join("fax.png"), inbox.join("fax.png")).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    for i in 0..5 {
        std::fs::write(
            inbox.join(format!("note-{i}.md")),
            format!("# Note {i}\n\nThe shearing of herd {i} is planned for week {i}.\n"),
        )
        .unwrap();
    }
    server.wait_status("the seven files to be queued", WAIT, |s| s["queue"] == 7);

    // Every event until the queue drains.
    let url = server.url("/api/events");
    let reader = std::thread::spawn(move || {
        let mut events: Vec<(String, Value)> = Vec::new();
        read_events(&url, WAIT, |name, data| {
            events.push((name.to_string(), data.clone()));
            !(name == "progress" && data["total"] == 7 && data["done"] == 7 && data["queued"] == 0)
        });
        events
    });
    std::thread::sleep(Duration::from_millis(500));
    let (code, body) = server.post("/api/collections/office/resume", &json!({}));
    assert_eq!(code, 200, "{body}");
    let events = reader.join().unwrap();
    let s = server.wait_status("the seven files", WAIT, |s| {
        settled(s) && s["documents"].as_array().unwrap().len() == 7
    });

    // Text documents went first: every note was indexed before either scan.
    let indexed: Vec<&str> = events
        .iter()
        .filter(|(name, d)| name == "document" && d["state"] == "indexed")
        .map(|(_, d)| d["path"].as_str().unwrap())
        .collect();
    assert_eq!(indexed.len(), 7, "{indexed:?}");
    let first_scan = indexed
        .iter()
        .position(|p| *p == "report.pdf" || *p == "fax.png")
        .unwrap();
    assert_eq!(first_scan, 5, "notes first: {indexed:?}");

    // The progress named the file and its pages while OCR ran.
    let ocr: Vec<&Value> = events
        .iter()
        .filter(|(name, d)| name == "progress" && d["ocr"]["path"] == "report.pdf")
        .map(|(_, d)| &d["ocr"])
        .collect();
    assert!(
        ocr.iter().any(|o| o["done"] == 0 && o["total"] == 1),
        "{ocr:?}"
    );
    assert!(
        ocr.iter().any(|o| o["done"] == 1 && o["total"] == 1),
        "{ocr:?}"
    );

    // The document says which pages OCR read, and how.
    let report = crate::common::doc(&s, "report.pdf").expect("report listed");
    assert_eq!(report["state"], "indexed", "{report:#}");
    assert_eq!(report["pages"], 3);
    let extractor = report["extractor"].as_str().unwrap();
    assert!(
        extractor.contains("+ OCR tesseract") && extractor.ends_with("pages 2"),
        "{extractor}"
    );

    // A question about the scanned page cites that page, marked as read by OCR.
    let (code, body) = server.post(
        "/api/chat",
        &json!({
            "question": "Which DESCRIPTION field declares the packages whose C/C++ header files a package compiles against?",
            "max_tokens": 48
        }),
    );
    assert_eq!(code, 200, "{body}");
    let events = crate::common::sse_events(&body);
    let sources = events
        .iter()
        .find(|(name, _)| name == "citations")
        .map(|(_, d)| d.clone())
        .expect("a citations event");
    let cited = sources["citations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["path"] == "report.pdf")
        .unwrap_or_else(|| panic!("report.pdf among the sources: {sources:#}"));
    assert_eq!(cited["page_start"], 2, "{cited:#}");
    assert_eq!(cited["ocr"], true, "{cited:#}");

    // `docchat status` names each file's extractor, and the pages OCR read.
    server.kill();
    let out = crate::common::run(&data, &["status"]);
    let line = out
        .lines()
        .find(|l| l.contains("office/report.pdf"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        line.contains("(3 pages") && line.contains("+ OCR tesseract") && line.ends_with("pages 2)"),
        "{line}"
    );
}
