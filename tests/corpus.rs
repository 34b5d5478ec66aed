//! The regression net for extraction: every file of `pdf-wild/`, `docx-wild/`,
//! `pptx-wild/`, `epub-wild/` and `sheets-wild/` indexed in one run by a live
//! server. Each ends `indexed` or `failed` with a reason, nothing hangs or
//! crashes, memory stays bounded, the server keeps
//! answering, and docchat finds text in (at least) 98 % of the PDFs where poppler's
//! `pdftotext` does.

use crate::common::{Server, corpus, settled};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Reasons a file may fail with, as the user reads them.
const REASONS: [&str; 7] = [
    "encrypted:",
    "no text:",
    "corrupt:",
    "timeout:",
    "too large:",
    "unsupported:",
    "cannot read file:",
];

/// Decks of `pptx-wild/` whose slides hold text (counted from the slides' XML: the
/// rest hold only charts, pictures, layouts or no slides).
const PPTX_WITH_TEXT: usize = 12;
/// Books of `epub-wild/` whose spine documents hold text (the two Kusamakura
/// samples ship none, the SVG sample only drawings).
const EPUB_WITH_TEXT: usize = 16;

/// PDFs of `pdf-wild/` indexed with pages read by OCR: the 7 with no text layer
/// whose page images hold words (`docchat bench ocr` on the folder), and one with
/// a text layer beside a scanned page.
const PDFS_WITH_OCR: usize = 8;

/// Workbooks of `sheets-wild/` read (the rest are password-protected, broken on
/// purpose, or hold no cell).
const SHEETS_READ: usize = 51;

fn files(dir: &Path, ext: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.to_lowercase().ends_with(ext) && !n.starts_with('.'))
        .collect();
    v.sort();
    v
}

/// Letters and digits pdftotext finds in the PDF.
fn poppler_text_len(pdf: &Path) -> usize {
    let out = Command::new("pdftotext")
        .args(["-q"])
        .arg(pdf)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils, installed by scripts/setup.sh) runs");
    String::from_utf8_lossy(&out.stdout)
        .chars()
        .filter(|c| c.is_alphanumeric())
        .count()
}

/// Peak resident memory of a process, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

#[test]
fn every_wild_file_ends_indexed_or_failed_with_a_reason() {
    let c = corpus();
    let (pdf_dir, docx_dir) = (c.join("pdf-wild"), c.join("docx-wild"));
    let (pptx_dir, epub_dir) = (c.join("pptx-wild"), c.join("epub-wild"));
    let sheets_dir = c.join("sheets-wild");
    let pdfs = files(&pdf_dir, ".pdf");
    let docxs = files(&docx_dir, ".docx");
    let (pptxs, epubs) = (files(&pptx_dir, ".pptx"), files(&epub_dir, ".epub"));
    let sheets: usize = [".xlsx", ".xls", ".xlsb", ".ods"]
        .iter()
        .map(|e| files(&sheets_dir, e).len())
        .sum();
    let total = pdfs.len() + docxs.len() + pptxs.len() + epubs.len() + sheets;
    assert!(
        pdfs.len() > 400 && docxs.len() > 40 && pptxs.len() > 30 && epubs.len() > 15 && sheets > 60,
        "{} PDFs, {} DOCX, {} PPTX, {} EPUB, {sheets} workbooks",
        pdfs.len(),
        docxs.len(),
        pptxs.len(),
        epubs.len()
    );

    let tmp = tempfile::tempdir().unwrap();
    let watch = tmp.path().join("watch-dirs");
    std::fs::write(
        &watch,
        format!(
            "{} = pdf\n{} = docx\n{} = pptx\n{} = epub\n{} = sheets\n",
            pdf_dir.display(),
            docx_dir.display(),
            pptx_dir.display(),
            epub_dir.display(),
            sheets_dir.display()
        ),
    )
    .unwrap();
    let server = Server::start(&tmp.path().join("data"), &watch);

    // The server answers while it indexes; the run ends within the limit.
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    let mut polls = 0;
    let status = loop {
        let t = Instant::now();
        let s = server.get("/api/status");
        let (code, body) = server.post(
            "/api/search",
            &json!({ "query": "font encoding", "top_k": 3 }),
        );
        assert_eq!(code, 200, "{body}");
        slowest = slowest.max(t.elapsed());
        polls += 1;
        if settled(&s) && s["documents"].as_array().unwrap().len() == total {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1_500),
            "the run did not finish in 25 minutes: {}",
            s["progress"]
        );
        std::thread::sleep(Duration::from_secs(2));
    };
    let rss_mib = peak_rss_kib(server.pid()) / 1024;
    server.kill();
    // Nothing of the run is left for the integrity check to repair.
    crate::common::assert_intact(&tmp.path().join("data"));

    let docs = status["documents"].as_array().unwrap();
    let mut by_reason: BTreeMap<String, usize> = BTreeMap::new();
    let mut indexed = 0;
    let mut indexed_in: BTreeMap<String, usize> = BTreeMap::new();
    for d in docs {
        match d["state"].as_str().unwrap() {
            "indexed" => {
                indexed += 1;
                *indexed_in
                    .entry(d["collection"].as_str().unwrap().to_string())
                    .or_default() += 1;
                assert!(d["chunks"].as_u64().unwrap() > 0, "{d}");
            }
            "failed" => {
                let reason = d["error"].as_str().unwrap_or_default();
                let kind = REASONS
                    .iter()
                    .find(|r| reason.starts_with(**r))
                    .unwrap_or_else(|| panic!("a failure reason the user can read: {d}"));
                assert!(
                    reason.len() > kind.len() + 5,
                    "the reason says more than its kind: {d}"
                );
                *by_reason
                    .entry(kind.trim_end_matches(':').to_string())
                    .or_default() += 1;
            }
            other => panic!("document left {other}: {d}"),
        }
    }
    println!(
        "{total} files in {:.0} s: {indexed} indexed ({indexed_in:?}), failed by reason: {by_reason:?}; \
         status and search answered {polls} polls, slowest {slowest:?}; peak server memory {rss_mib} MiB",
        started.elapsed().as_secs_f64()
    );
    // Every slide deck and book with text is read (the others hold only charts,
    // layouts, images, or no spine documents).
    assert!(
        indexed_in.get("pptx").copied().unwrap_or(0) >= PPTX_WITH_TEXT,
        "{indexed_in:?}"
    );
    assert!(
        indexed_in.get("epub").copied().unwrap_or(0) >= EPUB_WITH_TEXT,
        "{indexed_in:?}"
    );
    assert!(
        indexed_in.get("sheets").copied().unwrap_or(0) >= SHEETS_READ,
        "{indexed_in:?}"
    );
    assert!(
        slowest < Duration::from_secs(10),
        "the server kept answering: slowest {slowest:?}"
    );
    assert!(
        rss_mib < 4_096,
        "server memory stays bounded: {rss_mib} MiB"
    );

    // Text recall against poppler.
    let state: BTreeMap<&str, &Value> = docs
        .iter()
        .filter(|d| d["collection"] == "pdf")
        .map(|d| (d["path"].as_str().unwrap(), d))
        .collect();
    // Metadata and the extractor used are stored with each document.
    let basic = state["basicapi.pdf"];
    assert_eq!(basic["title"], "Basic API Test", "{basic}");
    let extractors: BTreeMap<&str, usize> = state.values().fold(BTreeMap::new(), |mut m, d| {
        if d["state"] == "indexed" {
            *m.entry(d["extractor"].as_str().unwrap()).or_default() += 1;
        }
        m
    });
    println!("extractors of the indexed PDFs: {extractors:?}");
    assert!(extractors.keys().all(|e| !e.is_empty()), "{extractors:?}");
    // Scanned pages were read by OCR, and each document says which.
    let by_ocr: Vec<(&str, usize)> = state
        .iter()
        .filter(|(_, d)| d["state"] == "indexed")
        .map(|(p, d)| {
            (
                *p,
                docchat_core::ocr_pages(d["extractor"].as_str().unwrap()).len(),
            )
        })
        .filter(|(_, n)| *n > 0)
        .collect();
    println!(
        "PDFs with pages read by OCR: {} ({} pages): {by_ocr:?}",
        by_ocr.len(),
        by_ocr.iter().map(|(_, n)| n).sum::<usize>()
    );
    assert!(by_ocr.len() >= PDFS_WITH_OCR, "{by_ocr:?}");

    // Two readings of "poppler finds text": any letter or digit at all, and some
    // words (20 letters or digits); docchat must find text in 98 % of either set.
    let poppler: Vec<(&String, usize)> = pdfs
        .iter()
        .map(|p| (p, poppler_text_len(&pdf_dir.join(p))))
        .collect();
    for threshold in [1, 20] {
        let with_text: Vec<&String> = poppler
            .iter()
            .filter(|(_, n)| *n >= threshold)
            .map(|(p, _)| *p)
            .collect();
        let missed: Vec<&&String> = with_text
            .iter()
            .filter(|p| {
                state
                    .get(p.as_str())
                    .is_none_or(|d| d["state"] != "indexed")
            })
            .collect();
        let recall = 1.0 - missed.len() as f64 / with_text.len() as f64;
        println!(
            "text recall vs pdftotext (>= {threshold} letters or digits): {} of {} PDFs ({:.1} %); missed: {missed:?}",
            with_text.len() - missed.len(),
            with_text.len(),
            recall * 100.0
        );
        assert!(
            recall >= 0.98,
            "text found in {:.1} % of the PDFs where poppler finds {threshold}+ letters or digits",
            recall * 100.0
        );
    }
}
