//! PDF: pdf-extract first; poppler's `pdftotext` when pdf-extract panics, errors,
//! or returns far less text than the pages hold.

use crate::ocr::{self, Progress};
use crate::{Error, Ocr, Result, split_pages};
use docchat_core::{Extracted, Page};
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Below this many non-whitespace characters per page, pdf-extract's output is
/// compared with poppler's.
const SPARSE_CHARS_PER_PAGE: usize = 200;
/// Time limit of one poppler command.
const TOOL_TIMEOUT: Duration = Duration::from_secs(60);

/// Largest one compressed stream of a PDF (not an image) may inflate to.
pub(crate) const MAX_STREAM_BYTES: u64 = 512 << 20;
/// Largest all such streams together may inflate to.
pub(crate) const MAX_INFLATED_BYTES: u64 = 2 << 30;

/// The text layer, then, as `ocr` says, the pages without one read by OCR (or
/// listed for it).
pub(crate) fn extract(
    path: &Path,
    bytes: &[u8],
    ocr: &Ocr,
    progress: Progress<'_>,
) -> Result<Extracted> {
    check_streams(bytes)?;
    let info = pdfinfo(path);
    let mut extracted = text_layer(path, bytes, &info)?;
    if matches!(ocr, Ocr::Off) {
        return Ok(extracted);
    }
    let wanted = ocr::wanted_pages(path, &extracted.pages, info.pages);
    if wanted.is_empty() {
        return Ok(extracted);
    }
    match ocr {
        Ocr::Off => {}
        Ocr::Detect => extracted.ocr_wanted = wanted,
        Ocr::Run(opts) => {
            match ocr::read_pdf_pages(path, &mut extracted.pages, &wanted, opts, progress) {
                Ok(report) => {
                    if !report.pages.is_empty() {
                        extracted.extractor.push_str(&report.describe());
                    }
                    extracted.ocr = Some(report);
                }
                // Without the engine, the pages with text are still worth indexing.
                Err(e) if extracted.text_chars() > 0 => {
                    tracing::warn!(path = %path.display(), error = %e, "scanned pages left unread");
                }
                Err(e) => return Err(e),
            }
        }
    }
    Ok(extracted)
}

/// The PDF's own text: pdf-extract, or poppler's pdftotext where that finds more.
fn text_layer(path: &Path, bytes: &[u8], info: &PdfInfo) -> Result<Extracted> {
    let primary = run_pdf_extract(bytes);
    let primary_pages = match &primary {
        Ok(pages) => Some(pages),
        Err(e) => {
            tracing::debug!(path = %path.display(), error = %e, "pdf-extract failed, trying pdftotext");
            None
        }
    };
    if let Some(pages) = primary_pages {
        let chars = count_chars(pages);
        if chars >= SPARSE_CHARS_PER_PAGE * pages.len().max(1) {
            return Ok(with_info(pages.clone(), "pdf-extract", info));
        }
    }
    // pdf-extract failed or found little: ask poppler, and keep whichever found more.
    match pdftotext(path) {
        Ok(pages) => {
            let fallback_chars = count_chars(&pages);
            match primary_pages {
                Some(p) if count_chars(p) >= fallback_chars => {
                    Ok(with_info(p.clone(), "pdf-extract", info))
                }
                _ => Ok(with_info(pages, "pdftotext", info)),
            }
        }
        Err(fallback_err) => match primary {
            Ok(pages) => Ok(with_info(pages, "pdf-extract", info)),
            Err(primary_err) => Err(classify(&primary_err, &fallback_err, info)),
        },
    }
}

/// pdf-extract alone, behind the bomb check.
pub(crate) fn extract_in_process(bytes: &[u8]) -> Result<Extracted> {
    check_streams(bytes)?;
    let pages = run_pdf_extract(bytes).map_err(|e| Error::Corrupt(first_line(&e).to_string()))?;
    Ok(Extracted {
        pages,
        extractor: "pdf-extract".into(),
        ..Extracted::default()
    })
}

/// Refuses a decompression bomb before any parser inflates it into memory: every
/// Flate stream that is not an image is inflated into nothing, counting, up to the
/// caps. A stream too damaged to inflate is left to the parsers.
pub(crate) fn check_streams(bytes: &[u8]) -> Result<()> {
    let mut total = 0u64;
    let mut from = 0;
    while let Some(found) = find(&bytes[from..], b"stream") {
        let at = from + found;
        from = at + b"stream".len();
        if bytes[..at].ends_with(b"end") {
            continue;
        }
        // The data starts after the keyword's end of line.
        let mut data = from;
        if bytes.get(data) == Some(&b'\r') {
            data += 1;
        }
        if bytes.get(data) == Some(&b'\n') {
            data += 1;
        }
        if data == from {
            continue;
        }
        let window = &bytes[at.saturating_sub(4096)..at];
        let dict = rfind(window, b"obj").map_or(window, |i| &window[i..]);
        let compact: Vec<u8> = dict
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        if find(&compact, b"FlateDecode").is_none() || find(&compact, b"/Subtype/Image").is_some() {
            continue;
        }
        let cap = MAX_STREAM_BYTES.min(MAX_INFLATED_BYTES - total);
        let inflated = inflated_len(&bytes[data..], cap + 1);
        if inflated > cap {
            return Err(Error::Corrupt(format!(
                "decompression bomb: the PDF's streams inflate to more than {} MB",
                cap >> 20
            )));
        }
        total += inflated;
    }
    Ok(())
}

/// How many bytes the zlib stream at the start of `data` inflates to, counted up to
/// `limit` (and up to where it turns out damaged).
fn inflated_len(data: &[u8], limit: u64) -> u64 {
    let mut inflater = flate2::read::ZlibDecoder::new(data);
    let mut buf = vec![0u8; 64 << 10];
    let mut n = 0u64;
    while n < limit {
        match inflater.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k as u64,
        }
    }
    n
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

/// Joins words hyphenated at a line end ("inter-\nface" becomes "interface"), so
/// search and embeddings see whole words.
pub(crate) fn dehyphenate(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut prev = ' ';
    while let Some(c) = chars.next() {
        if c == '-' && prev.is_lowercase() {
            let mut ahead = chars.clone();
            if ahead.next() == Some('\n') && ahead.peek().is_some_and(|n| n.is_lowercase()) {
                chars.next();
                continue;
            }
        }
        out.push(c);
        prev = c;
    }
    out
}

fn run_pdf_extract(bytes: &[u8]) -> std::result::Result<Vec<Page>, String> {
    let outcome = std::panic::catch_unwind(|| pdf_extract::extract_text_from_mem_by_pages(bytes));
    match outcome {
        Ok(Ok(pages)) => Ok(pages
            .into_iter()
            .enumerate()
            .map(|(i, text)| Page {
                number: i as u32 + 1,
                text,
            })
            .collect()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(panic) => Err(panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_string()))
            .map_or_else(
                || "pdf-extract panicked".into(),
                |m| format!("pdf-extract panicked: {m}"),
            )),
    }
}

fn count_chars(pages: &[Page]) -> usize {
    pages
        .iter()
        .map(|p| p.text.chars().filter(|c| !c.is_whitespace()).count())
        .sum()
}

#[derive(Debug, Default)]
struct PdfInfo {
    title: Option<String>,
    author: Option<String>,
    encrypted: bool,
    /// Pages, as the PDF says (0 when unknown).
    pages: u32,
}

fn with_info(pages: Vec<Page>, extractor: &str, info: &PdfInfo) -> Extracted {
    Extracted {
        pages: pages
            .into_iter()
            .map(|p| Page {
                number: p.number,
                text: dehyphenate(&p.text),
            })
            .collect(),
        title: info.title.clone(),
        author: info.author.clone(),
        extractor: extractor.into(),
        ..Extracted::default()
    }
}

fn classify(primary: &str, fallback: &str, info: &PdfInfo) -> Error {
    let both = format!("{primary} {fallback}").to_lowercase();
    if info.encrypted || both.contains("password") || both.contains("encrypt") {
        Error::Encrypted("the PDF is password-protected".into())
    } else {
        Error::Corrupt(format!(
            "the PDF could not be read (pdf-extract: {}; pdftotext: {})",
            first_line(primary),
            first_line(fallback)
        ))
    }
}

fn first_line(s: &str) -> &str {
    let line = s
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    match line.char_indices().nth(160) {
        Some((i, _)) => &line[..i],
        None => line,
    }
}

fn pdftotext(path: &Path) -> std::result::Result<Vec<Page>, String> {
    let out = run_tool(
        Command::new("pdftotext")
            .args(["-q", "-enc", "UTF-8"])
            .arg(path)
            .arg("-"),
        TOOL_TIMEOUT,
    )?;
    let mut text = String::from_utf8_lossy(&out).into_owned();
    // pdftotext ends every page with a form feed.
    if text.ends_with('\u{c}') {
        text.pop();
    }
    Ok(split_pages(&text))
}

fn pdfinfo(path: &Path) -> PdfInfo {
    let Ok(out) = run_tool(
        Command::new("pdfinfo").args(["-enc", "UTF-8"]).arg(path),
        TOOL_TIMEOUT,
    ) else {
        return PdfInfo::default();
    };
    let text = String::from_utf8_lossy(&out);
    let mut info = PdfInfo::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key {
            "Title" if !value.is_empty() => info.title = Some(value.to_string()),
            "Author" if !value.is_empty() => info.author = Some(value.to_string()),
            "Encrypted" => info.encrypted = value.starts_with("yes"),
            "Pages" => info.pages = value.parse().unwrap_or(0),
            _ => {}
        }
    }
    info
}

/// Runs a tool, returning its stdout; a non-zero exit, a missing tool or a run past
/// `timeout` is an error (the process is killed).
pub(crate) fn run_tool(
    cmd: &mut Command,
    timeout: Duration,
) -> std::result::Result<Vec<u8>, String> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {:?}: {e}", cmd.get_program()))?;
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("timed out after {}s", timeout.as_secs()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(e.to_string()),
        }
    };
    let out = out_reader.join().unwrap_or_default();
    let err = err_reader.join().unwrap_or_default();
    if status.success() {
        Ok(out)
    } else {
        Err(format!(
            "exit {}: {}",
            status.code().unwrap_or(-1),
            String::from_utf8_lossy(&err).trim()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The package's folder, as `cargo test` says when it runs the tests (they may
    /// run from another checkout than the one that compiled them).
    fn manifest_dir() -> std::path::PathBuf {
        std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(
            || std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")),
            std::path::PathBuf::from,
        )
    }
    use std::io::Write;

    /// A one-page PDF whose content stream is `content` compressed.
    fn pdf_with_stream(content: impl Fn(&mut dyn Write)) -> Vec<u8> {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        content(&mut z);
        let data = z.finish().unwrap();
        let mut pdf = b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n\
            2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n\
            3 0 obj << /Type /Page /Parent 2 0 R /Contents 4 0 R >> endobj\n"
            .to_vec();
        pdf.extend_from_slice(
            format!(
                "4 0 obj << /Length {} /Filter /FlateDecode >>\nstream\n",
                data.len()
            )
            .as_bytes(),
        );
        pdf.extend_from_slice(&data);
        pdf.extend_from_slice(b"\nendstream\nendobj\ntrailer << /Root 1 0 R >>\n%%EOF\n");
        pdf
    }

    #[test]
    fn a_decompression_bomb_is_refused_quickly() {
        let zeros = vec![0u8; 1 << 20];
        let bomb = pdf_with_stream(|w| {
            for _ in 0..(MAX_STREAM_BYTES >> 20) + 8 {
                w.write_all(&zeros).unwrap();
            }
        });
        assert!(bomb.len() < 4 << 20, "{} bytes", bomb.len());
        let started = Instant::now();
        let err = check_streams(&bomb).unwrap_err().to_string();
        assert!(err.contains("decompression bomb"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(20));
        // An ordinary stream passes.
        let fine = pdf_with_stream(|w| w.write_all(b"BT /F1 12 Tf (Hello) Tj ET").unwrap());
        check_streams(&fine).unwrap();
    }

    #[test]
    fn real_pdfs_pass_the_bomb_check() {
        let corpus = manifest_dir().join("../../../shared/corpus");
        let entries = ["manuals", "pdf-wild"]
            .iter()
            .flat_map(|d| std::fs::read_dir(corpus.join(d)).unwrap());
        for entry in entries {
            let path = entry.unwrap().path();
            if path
                .extension()
                .is_none_or(|e| !e.eq_ignore_ascii_case("pdf"))
            {
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            check_streams(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
    }

    #[test]
    fn line_end_hyphens_are_joined() {
        assert_eq!(
            dehyphenate("foreign function inter-\nface (FFI)"),
            "foreign function interface (FFI)"
        );
        assert_eq!(
            dehyphenate("well-\nKnown x-\n1 a - \nb"),
            "well-\nKnown x-\n1 a - \nb"
        );
    }

    #[test]
    fn reasons_are_classified() {
        let info = PdfInfo::default();
        assert!(matches!(
            classify("x", "Command Line Error: Incorrect password", &info),
            Error::Encrypted(_)
        ));
        let e = classify(
            "invalid file header",
            "exit 1: Syntax Error: Couldn't read xref",
            &info,
        );
        assert!(matches!(e, Error::Corrupt(_)));
        assert!(e.to_string().contains("xref"));
    }
}
