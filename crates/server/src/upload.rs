//! Files dropped into the browser: checked (size, type by content, name), then
//! written into a watched folder, where the indexer picks them up like any other
//! file. Nothing is ever written outside that folder or over an existing file.

use docchat_core::FileKind;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Longest file name kept, in bytes.
const MAX_NAME: usize = 180;

/// Why an upload was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// The name is unusable (empty, or nothing left after cleaning).
    BadName(String),
    /// The type is not one docchat reads, or the content is not what the name says.
    BadType(String),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::BadName(m) | Self::BadType(m) => f.write_str(m),
        }
    }
}

/// A file name safe to create in a folder: the last component of what the client
/// sent (no folders, no `..`), without control characters or a leading dot (hidden
/// files are not indexed), at most [`MAX_NAME`] bytes with its extension kept.
pub fn clean_name(raw: &str) -> Result<String, Refused> {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or("").trim();
    let mut name: String = last
        .chars()
        .map(|c| {
            if c.is_control() || matches!(c, ':' | '*' | '?' | '"' | '<' | '>' | '|') {
                '_'
            } else {
                c
            }
        })
        .collect();
    while name.starts_with('.') {
        name.replace_range(..1, "_");
    }
    if name.is_empty() || name.chars().all(|c| c == '_' || c == '.') {
        return Err(Refused::BadName(format!(
            "{raw:?} is not a usable file name"
        )));
    }
    if name.len() > MAX_NAME {
        let ext = Path::new(&name)
            .extension()
            .map(|e| format!(".{}", e.to_string_lossy()))
            .unwrap_or_default();
        let mut stem: String = String::new();
        for c in name.chars() {
            if stem.len() + c.len_utf8() + ext.len() > MAX_NAME {
                break;
            }
            stem.push(c);
        }
        name = format!("{stem}{ext}");
    }
    Ok(name)
}

/// Checks that `bytes` are what the name's extension says: a PDF starts with
/// `%PDF-`, a DOCX is a ZIP holding `word/document.xml`, text types are UTF-8
/// without NUL bytes.
pub fn check_content(name: &str, bytes: &[u8]) -> Result<FileKind, Refused> {
    let Some(kind) = FileKind::from_path(Path::new(name)) else {
        return Err(Refused::BadType(format!(
            "{name}: docchat reads PDF, Word (.docx), OpenDocument text (.odt), PowerPoint (.pptx), spreadsheets (.xlsx, .xls, .xlsb, .ods), EPUB, text, Markdown and HTML files, and images (.png, .jpg, .tiff) by OCR"
        )));
    };
    let head = &bytes[..bytes.len().min(1024)];
    let ok = match kind {
        FileKind::Pdf => head.windows(5).any(|w| w == b"%PDF-"),
        FileKind::Docx => {
            bytes.starts_with(b"PK\x03\x04") && bytes.windows(17).any(|w| w == b"word/document.xml")
        }
        // The package's first part, stored, is its MIME type.
        FileKind::Odt => {
            bytes.starts_with(b"PK\x03\x04")
                && head
                    .windows(39)
                    .any(|w| w == b"application/vnd.oasis.opendocument.text")
        }
        FileKind::Pptx => {
            bytes.starts_with(b"PK\x03\x04")
                && bytes.windows(20).any(|w| w == b"ppt/presentation.xml")
        }
        FileKind::Epub => {
            bytes.starts_with(b"PK\x03\x04")
                && bytes.windows(22).any(|w| w == b"META-INF/container.xml")
        }
        // Excel's own formats are ZIP packages (XLSX, XLSB) or OLE2 compound
        // files (XLS); an ODS is a ZIP package.
        FileKind::Spreadsheet => {
            bytes.starts_with(b"PK\x03\x04")
                || bytes.starts_with(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1])
        }
        FileKind::Image => {
            bytes.starts_with(b"\x89PNG\r\n\x1a\n")
                || bytes.starts_with(&[0xFF, 0xD8, 0xFF])
                || bytes.starts_with(b"II*\0")
                || bytes.starts_with(b"MM\0*")
        }
        FileKind::Text | FileKind::Markdown | FileKind::Html => {
            !bytes.contains(&0) && std::str::from_utf8(bytes).is_ok()
        }
    };
    if ok {
        Ok(kind)
    } else {
        let what = match kind {
            FileKind::Pdf => "a PDF",
            FileKind::Docx => "a Word document",
            FileKind::Odt => "an OpenDocument text",
            FileKind::Pptx => "a PowerPoint presentation",
            FileKind::Epub => "an EPUB book",
            FileKind::Spreadsheet => "a spreadsheet",
            FileKind::Image => "a PNG, JPEG or TIFF image",
            _ => "UTF-8 text",
        };
        Err(Refused::BadType(format!(
            "{name}: the content is not {what}"
        )))
    }
}

/// Whether anything is at `path`: a file, a folder, a link, even one that leads
/// nowhere (which `Path::exists` calls free, and which no write may replace).
fn taken(path: &Path) -> bool {
    path.symlink_metadata().is_ok()
}

/// Names tried before an upload is refused: a folder where thousands of
/// `name (n).ext` exist is not searched forever.
const MAX_NAME_TRIES: usize = 1_000;

/// A path in `folder` for `name` that nothing takes yet: `name`, else
/// `stem (2).ext`, `stem (3).ext`, … `None` when none of the first
/// [`MAX_NAME_TRIES`] is free.
fn free_path(folder: &Path, name: &str) -> Option<PathBuf> {
    let first = folder.join(name);
    if !taken(&first) {
        return Some(first);
    }
    let p = Path::new(name);
    let stem = p
        .file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    let ext = p
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    (2..MAX_NAME_TRIES)
        .map(|n| folder.join(format!("{stem} ({n}){ext}")))
        .find(|p| !taken(p))
}

/// Writes `bytes` as `name` into `folder` without replacing anything: to a hidden
/// temporary file first (the indexer ignores it), then renamed into place, so the
/// watcher only ever sees the whole file. Returns the path written.
pub fn write_into(folder: &Path, name: &str, bytes: &[u8]) -> std::io::Result<PathBuf> {
    let mut tmp = tempfile::Builder::new()
        .prefix(".docchat-upload-")
        .suffix(".part")
        .tempfile_in(folder)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    for _ in 0..MAX_NAME_TRIES {
        let Some(target) = free_path(folder, name) else {
            break;
        };
        match tmp.persist_noclobber(&target) {
            Ok(_) => return Ok(target),
            // Taken between the check and the rename: try the next name.
            Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => tmp = e.file,
            Err(e) => return Err(e.error),
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AlreadyExists,
        format!("no free name for {name}: rename the file or clear the folder"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_lose_folders_dots_and_control_characters() {
        assert_eq!(clean_name("../../etc/passwd.md").unwrap(), "passwd.md");
        assert_eq!(
            clean_name("C:\\Users\\x\\report.pdf").unwrap(),
            "report.pdf"
        );
        assert_eq!(clean_name(".hidden.txt").unwrap(), "_hidden.txt");
        assert_eq!(clean_name("a\u{0}b\nc.md").unwrap(), "a_b_c.md");
        assert!(clean_name("..").is_err());
        assert!(clean_name("dir/").is_err());
        let long = format!("{}.pdf", "é".repeat(200));
        let cut = clean_name(&long).unwrap();
        assert!(cut.len() <= MAX_NAME && cut.ends_with(".pdf"), "{cut}");
    }

    #[test]
    fn content_must_match_the_type() {
        assert_eq!(
            check_content("a.pdf", b"%PDF-1.7\n...").unwrap(),
            FileKind::Pdf
        );
        assert!(matches!(
            check_content("a.pdf", b"hello"),
            Err(Refused::BadType(_))
        ));
        assert!(check_content("a.docx", b"PK\x03\x04 no document").is_err());
        assert!(check_content("a.pptx", b"PK\x03\x04 ppt/presentation.xml").is_ok());
        assert!(check_content("a.pptx", b"PK\x03\x04 word/document.xml").is_err());
        assert!(check_content("a.epub", b"PK\x03\x04 META-INF/container.xml").is_ok());
        assert!(check_content("a.epub", b"%PDF-1.7").is_err());
        assert!(check_content("a.xls", &[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]).is_ok());
        assert!(check_content("a.xlsx", b"hello").is_err());
        assert!(
            check_content(
                "a.odt",
                b"PK\x03\x04....mimetypeapplication/vnd.oasis.opendocument.text"
            )
            .is_ok()
        );
        assert!(check_content("a.odt", b"PK\x03\x04 word/document.xml").is_err());
        assert!(check_content("scan.png", b"\x89PNG\r\n\x1a\n....").is_ok());
        assert!(check_content("scan.tif", b"II*\0....").is_ok());
        assert!(check_content("scan.jpg", b"%PDF-1.7").is_err());
        assert!(check_content("a.md", b"# Title\n").is_ok());
        assert!(check_content("a.txt", b"bin\0ary").is_err());
        assert!(check_content("a.exe", b"MZ").is_err());
    }

    #[test]
    fn nothing_is_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let a = write_into(dir.path(), "n.md", b"one").unwrap();
        let b = write_into(dir.path(), "n.md", b"two").unwrap();
        assert_eq!(a.file_name().unwrap(), "n.md");
        assert_eq!(b.file_name().unwrap(), "n (2).md");
        assert_eq!(std::fs::read(&a).unwrap(), b"one");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 2, "no temporary file is left");
    }

    #[test]
    fn a_link_that_leads_nowhere_is_not_a_free_name() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(dir.path().join("gone.md"), dir.path().join("l.md")).unwrap();
        let written = write_into(dir.path(), "l.md", b"text").unwrap();
        assert_eq!(written.file_name().unwrap(), "l (2).md");
        assert!(
            dir.path()
                .join("l.md")
                .symlink_metadata()
                .unwrap()
                .is_symlink()
        );
    }
}
