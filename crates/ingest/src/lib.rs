//! docchat-ingest: from a file's bytes to pages of text, and from pages to chunks.
//!
//! Extraction ([`extract_file`]) may panic or loop forever inside third-party
//! parsers on hostile files; callers run it in a child process (see the `docchat
//! extract` command) and treat a crash or a timeout as a failed document.

#![warn(missing_docs)]

mod chunk;
mod docx;
mod epub;
mod error;
mod html;
pub mod ocr;
mod odt;
mod package;
mod pdf;
mod pptx;
mod sheets;
mod xml;

pub use chunk::{ChunkOptions, chunk_pages};
pub use error::{Error, Result};
pub use ocr::OcrOptions;

use docchat_core::{Extracted, FileKind, Page};
use std::path::Path;

/// Whether extraction reads pages without a text layer (and images) by OCR.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Ocr {
    /// Never: a scanned PDF has no text, an image is not read.
    #[default]
    Off,
    /// Not now, but list the pages OCR would read ([`Extracted::ocr_wanted`]): a
    /// quick first reading that lets documents with a text layer go first.
    Detect,
    /// Read them, with these options.
    Run(OcrOptions),
}

/// Extracts the pages of a file, choosing the extractor by the file's kind, without
/// OCR.
pub fn extract_file(path: &Path) -> Result<Extracted> {
    extract_file_with(path, &Ocr::Off, &mut |_, _| {})
}

/// Extracts the pages of a file, choosing the extractor by the file's kind; `ocr`
/// says what happens to pages without a text layer and to images, and `progress`
/// hears of every page OCR reads (pages done, pages to read).
pub fn extract_file_with(path: &Path, ocr: &Ocr, progress: ocr::Progress<'_>) -> Result<Extracted> {
    let kind = FileKind::from_path(path).ok_or_else(|| Error::Unsupported(describe_ext(path)))?;
    let extracted = match kind {
        // Poppler's tools, the PDF fallback, read the file by its path.
        FileKind::Pdf => pdf::extract(path, &std::fs::read(path)?, ocr, progress)?,
        FileKind::Image => match ocr {
            Ocr::Off => {
                return Err(Error::NoText(
                    "images are read by OCR, which is off (ocr = false in docchat.toml)".into(),
                ));
            }
            Ocr::Detect => Extracted {
                extractor: "image".into(),
                ocr_wanted: vec![1],
                ..Extracted::default()
            },
            Ocr::Run(opts) => ocr::read_image(path, opts, progress)?,
        },
        _ => extract_in_process(kind, &std::fs::read(path)?)?,
    };
    with_text(kind, ocr, extracted)
}

/// Extracts the pages of `bytes` of the given kind with the in-process parsers only
/// (for PDF: pdf-extract behind the decompression-bomb check, without poppler's
/// fallback). The entry point the fuzz targets drive.
pub fn extract_bytes(kind: FileKind, bytes: &[u8]) -> Result<Extracted> {
    with_text(kind, &Ocr::Off, extract_in_process(kind, bytes)?)
}

fn extract_in_process(kind: FileKind, bytes: &[u8]) -> Result<Extracted> {
    Ok(match kind {
        FileKind::Pdf => pdf::extract_in_process(bytes)?,
        FileKind::Docx => docx::extract(bytes)?,
        FileKind::Odt => odt::extract(bytes)?,
        FileKind::Text | FileKind::Markdown => plain(bytes, "text"),
        FileKind::Html => html::extract(bytes),
        FileKind::Pptx => pptx::extract(bytes)?,
        FileKind::Epub => epub::extract(bytes)?,
        FileKind::Spreadsheet => sheets::extract(bytes)?,
        FileKind::Image => {
            return Err(Error::Unsupported(
                "images are read by OCR, from a file".into(),
            ));
        }
    })
}

/// The extraction, unless it found no text (and has no pages left for OCR).
fn with_text(kind: FileKind, ocr: &Ocr, extracted: Extracted) -> Result<Extracted> {
    if extracted.text_chars() > 0 || !extracted.ocr_wanted.is_empty() {
        return Ok(extracted);
    }
    Err(match (kind, ocr, &extracted.ocr) {
        (FileKind::Image, _, _) => Error::NoText("OCR found no words in the image".into()),
        (_, _, Some(report)) if !report.failed.is_empty() => Error::NoText(format!(
            "no text layer, and OCR failed: {}",
            report.failed[0].1
        )),
        (_, _, Some(_)) => {
            Error::NoText("no text layer, and OCR found no words on the scanned page(s)".into())
        }
        (FileKind::Pdf, Ocr::Off, _) => Error::NoText(
            "no text layer: the PDF holds only images (scanned?) or no text, and OCR is off".into(),
        ),
        (FileKind::Pdf, _, _) => {
            Error::NoText("no text layer, and no page image large enough to read by OCR".into())
        }
        _ => Error::NoText("the document contains no text".into()),
    })
}

fn describe_ext(path: &Path) -> String {
    match path.extension() {
        Some(e) => format!("files of type .{} are not supported", e.to_string_lossy()),
        None => "files without an extension are not supported".into(),
    }
}

/// Plain text; form feeds separate pages, and one that ends the text (as
/// `pdftotext` writes after the last page) ends the last page.
fn plain(bytes: &[u8], extractor: &str) -> Extracted {
    let text = decode_text(bytes);
    let mut pages = split_pages(&text);
    if pages.len() > 1 && pages.last().is_some_and(|p| p.text.trim().is_empty()) {
        pages.pop();
    }
    Extracted {
        pages,
        extractor: extractor.into(),
        ..Extracted::default()
    }
}

/// Splits text at form feeds into numbered pages.
pub(crate) fn split_pages(text: &str) -> Vec<Page> {
    text.split('\u{c}')
        .enumerate()
        .map(|(i, t)| Page {
            number: i as u32 + 1,
            text: t.to_string(),
        })
        .collect()
}

/// UTF-8 (with or without BOM), UTF-16 with BOM, or else Latin-1.
pub(crate) fn decode_text(bytes: &[u8]) -> String {
    if let Some(rest) = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        return String::from_utf8_lossy(rest).into_owned();
    }
    if bytes.len() >= 2 && (bytes[..2] == [0xFF, 0xFE] || bytes[..2] == [0xFE, 0xFF]) {
        let le = bytes[0] == 0xFF;
        let units: Vec<u16> = bytes[2..]
            .chunks_exact(2)
            .map(|c| {
                if le {
                    u16::from_le_bytes([c[0], c[1]])
                } else {
                    u16::from_be_bytes([c[0], c[1]])
                }
            })
            .collect();
        return String::from_utf16_lossy(&units);
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => bytes.iter().map(|b| char::from(*b)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_common_encodings() {
        assert_eq!(decode_text(b"\xEF\xBB\xBFhi"), "hi");
        assert_eq!(decode_text(&[0xFF, 0xFE, b'h', 0, b'i', 0]), "hi");
        assert_eq!(decode_text(b"caf\xE9"), "café");
    }

    #[test]
    fn form_feeds_make_pages() {
        let pages = split_pages("one\u{c}two");
        let ended = plain(b"one\x0ctwo\x0c\n", "text");
        assert_eq!(
            ended.pages.len(),
            2,
            "a form feed at the end ends the last page"
        );
        assert_eq!(pages.len(), 2);
        assert_eq!(
            pages[1],
            Page {
                number: 2,
                text: "two".into()
            }
        );
    }

    #[test]
    fn unsupported_and_empty_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("a.exe");
        std::fs::write(&exe, b"MZ").unwrap();
        assert!(matches!(extract_file(&exe), Err(Error::Unsupported(_))));
        let empty = dir.path().join("b.txt");
        std::fs::write(&empty, b"  \n ").unwrap();
        assert!(matches!(extract_file(&empty), Err(Error::NoText(_))));
        let md = dir.path().join("c.md");
        std::fs::write(&md, b"# Title\n\nBody text.").unwrap();
        let e = extract_file(&md).unwrap();
        assert_eq!(e.pages.len(), 1);
        assert!(e.pages[0].text.contains("Body text."));
    }
}
