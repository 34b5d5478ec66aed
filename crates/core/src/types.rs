use serde::{Deserialize, Serialize};
use std::path::Path;

/// The kinds of files docchat reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    /// Portable Document Format.
    Pdf,
    /// Office Open XML word processing document.
    Docx,
    /// OpenDocument text (LibreOffice Writer).
    Odt,
    /// Plain text.
    Text,
    /// Markdown.
    Markdown,
    /// HTML.
    Html,
    /// Office Open XML presentation (PowerPoint).
    Pptx,
    /// EPUB book.
    Epub,
    /// Spreadsheet: Excel (XLSX, XLSM, XLSB, XLS) or OpenDocument (ODS).
    Spreadsheet,
    /// Image (PNG, JPEG, TIFF), read by OCR: a page per frame.
    Image,
}

impl FileKind {
    /// The kind of a file by its extension; `None` for files docchat does not read.
    pub fn from_path(path: &Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        Some(match ext.as_str() {
            "pdf" => Self::Pdf,
            "docx" => Self::Docx,
            "odt" => Self::Odt,
            "txt" | "text" => Self::Text,
            "md" | "markdown" => Self::Markdown,
            "html" | "htm" => Self::Html,
            "pptx" => Self::Pptx,
            "epub" => Self::Epub,
            "xlsx" | "xlsm" | "xlsb" | "xls" | "ods" => Self::Spreadsheet,
            "png" | "jpg" | "jpeg" | "tif" | "tiff" => Self::Image,
            _ => return None,
        })
    }

    /// The MIME type used when serving the original file.
    pub fn mime(self) -> &'static str {
        match self {
            Self::Pdf => "application/pdf",
            Self::Docx => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            Self::Odt => "application/vnd.oasis.opendocument.text",
            Self::Text => "text/plain; charset=utf-8",
            Self::Markdown => "text/markdown; charset=utf-8",
            Self::Html => "text/html; charset=utf-8",
            Self::Pptx => {
                "application/vnd.openxmlformats-officedocument.presentationml.presentation"
            }
            Self::Epub => "application/epub+zip",
            // The original workbook or image is downloaded, not shown: its text
            // is what the viewer shows.
            Self::Spreadsheet | Self::Image => "application/octet-stream",
        }
    }

    /// What a citation calls one of its pages: a slide of a presentation, a
    /// chapter of a book, a sheet of a workbook, a page of anything else.
    pub fn page_word(self) -> &'static str {
        match self {
            Self::Pptx => "slide",
            Self::Epub => "chapter",
            Self::Spreadsheet => "sheet",
            _ => "page",
        }
    }
}

/// One page of extracted text. Pages are numbered from 1 as a reader sees them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page {
    /// 1-based page number.
    pub number: u32,
    /// The page's text.
    pub text: String,
}

/// The result of extracting one file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Extracted {
    /// The pages in order.
    pub pages: Vec<Page>,
    /// Document title from its metadata, if any.
    pub title: Option<String>,
    /// Document author from its metadata, if any.
    pub author: Option<String>,
    /// Which extractor produced the text (e.g. `pdf-extract`, `pdftotext`, `docx-rs`),
    /// and, when OCR read pages, which engine and languages on which pages (see
    /// [`OcrReport::describe`] and [`ocr_pages`]).
    pub extractor: String,
    /// The pages OCR read, when it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ocr: Option<OcrReport>,
    /// Pages that have no text layer but an image, which OCR would read: set by a
    /// reading that ran without OCR.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ocr_wanted: Vec<u32>,
}

/// What OCR did to a document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OcrReport {
    /// The engine and its version, e.g. `tesseract 5.3.0`.
    pub engine: String,
    /// The languages it read with (Tesseract's codes: `eng`, `ita`, …).
    pub languages: Vec<String>,
    /// The pages whose text came from OCR.
    pub pages: Vec<u32>,
    /// Pages OCR could not read, with the reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<(u32, String)>,
    /// Time spent on OCR, ms.
    pub ms: u64,
}

/// The marker that starts the OCR part of an extractor's description.
const OCR_MARK: &str = " + OCR ";

impl OcrReport {
    /// The OCR part of a document's extractor description, e.g.
    /// ` + OCR tesseract 5.3.0 (eng+ita) pages 3-5,9`; [`ocr_pages`] reads it back.
    pub fn describe(&self) -> String {
        format!(
            "{OCR_MARK}{} ({}) pages {}",
            self.engine,
            self.languages.join("+"),
            page_list(&self.pages)
        )
    }
}

/// The pages an extractor description (see [`OcrReport::describe`]) says OCR read.
pub fn ocr_pages(extractor: &str) -> Vec<u32> {
    let Some((_, ocr)) = extractor.split_once(OCR_MARK) else {
        return Vec::new();
    };
    let Some((_, list)) = ocr.rsplit_once(" pages ") else {
        return Vec::new();
    };
    let mut pages = Vec::new();
    for part in list.split(',') {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        if let (Ok(a), Ok(b)) = (a.trim().parse::<u32>(), b.trim().parse::<u32>()) {
            pages.extend(a..=b.min(a.saturating_add(100_000)));
        }
    }
    pages
}

/// Pages as ranges: `1-3,7`.
fn page_list(pages: &[u32]) -> String {
    let mut sorted = pages.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        out.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    out.join(",")
}

impl Extracted {
    /// Number of non-whitespace characters over all pages.
    pub fn text_chars(&self) -> usize {
        self.pages
            .iter()
            .map(|p| p.text.chars().filter(|c| !c.is_whitespace()).count())
            .sum()
    }
}

/// A chunk of a document before it is embedded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkDraft {
    /// The chunk's text.
    pub text: String,
    /// First page (1-based) the chunk's text comes from.
    pub page_start: u32,
    /// Last page (1-based) the chunk's text comes from.
    pub page_end: u32,
    /// Byte offset of the chunk in the text of `page_start`.
    pub byte_start: u32,
    /// Byte offset one past the chunk's end in the text of `page_end`.
    pub byte_end: u32,
    /// BLAKE3 hash (hex) of the text: an unchanged chunk keeps its embedding.
    pub hash: String,
}

/// Where a piece of text is: in which document, on which pages, at which bytes of
/// the extracted page text. Shared by the stored chunk, the search hit, the
/// passage and the citation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Location {
    /// The document's id.
    pub document_id: String,
    /// Its collection (the watched folder's name).
    pub collection: String,
    /// Its path, relative to its watched folder.
    pub path: String,
    /// First page (1-based).
    pub page_start: u32,
    /// Last page.
    pub page_end: u32,
    /// Byte offset in the text of `page_start`.
    pub byte_start: u32,
    /// Byte offset one past the end, in the text of `page_end`.
    pub byte_end: u32,
    /// The part that matched a query, as a byte range of the page text (inside
    /// `byte_start..byte_end`), for highlighting; a stored chunk's is all of it.
    pub match_start: u32,
    /// End of the matched range.
    pub match_end: u32,
}

impl Location {
    /// "p. 3" or "pp. 3-5".
    pub fn pages(&self) -> String {
        match FileKind::from_path(Path::new(&self.path)).map(FileKind::page_word) {
            Some(word) if word != "page" => {
                if self.page_start == self.page_end {
                    format!("{word} {}", self.page_start)
                } else {
                    format!("{word}s {}-{}", self.page_start, self.page_end)
                }
            }
            _ => page_range(self.page_start, self.page_end),
        }
    }
}

/// A page range as citations write it: "p. 3" or "pp. 3-5".
pub fn page_range(start: u32, end: u32) -> String {
    if start == end {
        format!("p. {start}")
    } else {
        format!("pp. {start}-{end}")
    }
}

/// The stable id of a document: derived from its collection and path, so that
/// re-indexing the same file never creates a second document.
pub fn document_id(collection: &str, rel_path: &str) -> String {
    let key = format!("{collection}\0{rel_path}");
    format!("{:016x}", fnv1a(key.as_bytes()))
}

/// FNV-1a 64: small, dependency-free and stable across releases. Ids only need to be
/// unique within one index, not cryptographic.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ocr_pages_are_read_back_from_the_description() {
        let report = OcrReport {
            engine: "tesseract 5.3.0".into(),
            languages: vec!["eng".into(), "ita".into()],
            pages: vec![9, 3, 4, 5],
            ..OcrReport::default()
        };
        let described = format!("pdftotext{}", report.describe());
        assert_eq!(
            described,
            "pdftotext + OCR tesseract 5.3.0 (eng+ita) pages 3-5,9"
        );
        assert_eq!(ocr_pages(&described), vec![3, 4, 5, 9]);
        assert!(ocr_pages("pdf-extract").is_empty());
        assert_eq!(
            FileKind::from_path(Path::new("scan.TIFF")),
            Some(FileKind::Image)
        );
    }

    #[test]
    fn kinds_by_extension() {
        assert_eq!(
            FileKind::from_path(Path::new("a/B.PDF")),
            Some(FileKind::Pdf)
        );
        assert_eq!(
            FileKind::from_path(Path::new("x.docx")),
            Some(FileKind::Docx)
        );
        assert_eq!(
            FileKind::from_path(Path::new("x.md")),
            Some(FileKind::Markdown)
        );
        assert_eq!(FileKind::from_path(Path::new("x.exe")), None);
        assert_eq!(FileKind::from_path(Path::new("noext")), None);
    }

    #[test]
    fn citations_name_slides_chapters_and_pages() {
        let at = |path: &str, start, end| Location {
            path: path.into(),
            page_start: start,
            page_end: end,
            ..Location::default()
        };
        assert_eq!(at("deck.PPTX", 3, 3).pages(), "slide 3");
        assert_eq!(at("deck.pptx", 3, 4).pages(), "slides 3-4");
        assert_eq!(at("book.epub", 7, 7).pages(), "chapter 7");
        assert_eq!(at("budget.xlsx", 2, 2).pages(), "sheet 2");
        assert_eq!(at("paper.pdf", 2, 2).pages(), "p. 2");
        assert_eq!(at("notes.md", 1, 2).pages(), "pp. 1-2");
    }

    #[test]
    fn document_ids_are_stable_and_distinct() {
        let a = document_id("docs", "a.pdf");
        assert_eq!(a, document_id("docs", "a.pdf"));
        assert_ne!(a, document_id("docs", "b.pdf"));
        assert_ne!(a, document_id("other", "a.pdf"));
        assert_eq!(a.len(), 16);
    }
}
