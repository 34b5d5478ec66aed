//! DOCX with docx-rs. A DOCX stores no pages, but Word records where it last broke
//! pages (`w:lastRenderedPageBreak`) besides explicit page breaks; both become page
//! boundaries so citations into Word files carry a page too.

use crate::package::read_capped;
use crate::{Error, Result};
use docchat_core::{Extracted, Page};
use serde_json::Value;
use std::io::{Cursor, Write};

pub(crate) fn extract(bytes: &[u8]) -> Result<Extracted> {
    let prepared = mark_rendered_page_breaks(bytes)?;
    let docx = docx_rs::read_docx(&prepared)
        .map_err(|e| Error::Corrupt(format!("cannot read DOCX: {e}")))?;

    let mut body = PageWriter::default();
    let document = serde_json::to_value(&docx.document.children)
        .map_err(|e| Error::Corrupt(format!("cannot read DOCX body: {e}")))?;
    body.walk(&document);

    // Headers and footers belong to every page; they are kept once, with page 1.
    let mut margins = PageWriter::default();
    if let Ok(v) = serde_json::to_value(&docx.document.section_property) {
        margins.walk(&v);
    }
    let mut notes = PageWriter::default();
    if let Ok(v) = serde_json::to_value(&docx.footnotes) {
        notes.walk(&v);
    }

    let mut pages = body.finish();
    let margin_text = margins
        .finish()
        .into_iter()
        .map(|p| p.text)
        .collect::<Vec<_>>()
        .join("\n");
    let note_text = notes
        .finish()
        .into_iter()
        .map(|p| p.text)
        .collect::<Vec<_>>()
        .join("\n");
    if !margin_text.trim().is_empty() {
        let first = &mut pages[0].text;
        first.push_str("\n\n");
        first.push_str(margin_text.trim());
    }
    if !note_text.trim().is_empty() {
        let last = &mut pages.last_mut().expect("at least one page").text;
        last.push_str("\n\n");
        last.push_str(note_text.trim());
    }
    let core = serde_json::to_value(&docx.doc_props.core).unwrap_or(Value::Null);
    let title = find_str(&core, "title");
    let author = find_str(&core, "creator");
    Ok(Extracted {
        pages,
        title,
        author,
        extractor: "docx-rs".into(),
        ..Extracted::default()
    })
}

/// Largest one part of a DOCX may unpack to.
pub(crate) const MAX_PART_BYTES: u64 = 256 << 20;
/// Largest all parts of a DOCX together may unpack to.
pub(crate) const MAX_UNPACKED_BYTES: u64 = 512 << 20;
/// Most parts a DOCX may hold.
const MAX_PARTS: usize = 20_000;

const RENDERED_BREAK: &str = "<w:br w:type=\"docchatRenderedPage\"/>";

/// Rewrites `word/document.xml` so that Word's rendered page breaks reach us through
/// docx-rs as breaks of a type of their own (docx-rs reads unknown types as
/// `unsupported`), told apart from explicit page breaks.
fn mark_rendered_page_breaks(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| Error::Corrupt(format!("not a DOCX (zip) file: {e}")))?;
    let mut out = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    if archive.len() > MAX_PARTS {
        return Err(Error::Corrupt(format!(
            "zip bomb: the DOCX holds {} parts (at most {MAX_PARTS} are read)",
            archive.len()
        )));
    }
    let mut unpacked = 0u64;
    for i in 0..archive.len() {
        let mut entry = archive
            .by_index(i)
            .map_err(|e| Error::Corrupt(format!("damaged DOCX entry: {e}")))?;
        if entry.is_dir() {
            continue;
        }
        let name = entry.name().to_string();
        let size = entry.size();
        let mut data = read_capped(&mut entry, size, &name, "DOCX", &mut unpacked)?;
        if name == "word/document.xml" {
            let text = String::from_utf8_lossy(&data);
            data = text
                .replace("<w:lastRenderedPageBreak/>", RENDERED_BREAK)
                .replace("<w:lastRenderedPageBreak />", RENDERED_BREAK)
                .into_bytes();
        }
        out.start_file(name.as_str(), options)
            .map_err(|e| Error::Corrupt(format!("DOCX: {e}")))?;
        out.write_all(&data)?;
    }
    let cursor = out
        .finish()
        .map_err(|e| Error::Corrupt(format!("DOCX: {e}")))?;
    Ok(cursor.into_inner())
}

/// The first non-empty string under `key` anywhere in `v`.
fn find_str(v: &Value, key: &str) -> Option<String> {
    match v {
        Value::Object(map) => map
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
            .map(str::to_string)
            .or_else(|| map.values().find_map(|x| find_str(x, key))),
        Value::Array(items) => items.iter().find_map(|x| find_str(x, key)),
        _ => None,
    }
}

/// Collects text from docx-rs's serialized tree, page by page.
#[derive(Default)]
struct PageWriter {
    pages: Vec<String>,
    current: String,
}

impl PageWriter {
    fn push(&mut self, s: &str) {
        self.current.push_str(s);
    }

    /// An explicit page break always starts a page (the page before may hold only
    /// what docchat cannot read, such as images).
    fn page_break(&mut self) {
        self.pages.push(std::mem::take(&mut self.current));
    }

    /// Word records where it last broke pages; right after an explicit break it
    /// records the same spot again, so a page that has no text yet is not a new page.
    fn rendered_break(&mut self) {
        if !self.current.trim().is_empty() {
            self.pages.push(std::mem::take(&mut self.current));
        }
    }

    fn finish(mut self) -> Vec<Page> {
        if !self.current.trim().is_empty() || self.pages.is_empty() {
            self.pages.push(std::mem::take(&mut self.current));
        }
        // Trailing pages without text (a break at the very end) are not pages.
        while self.pages.len() > 1 && self.pages.last().is_some_and(|p| p.trim().is_empty()) {
            self.pages.pop();
        }
        self.pages
            .into_iter()
            .enumerate()
            .map(|(i, text)| Page {
                number: i as u32 + 1,
                text,
            })
            .collect()
    }

    fn walk(&mut self, v: &Value) {
        match v {
            Value::Array(items) => items.iter().for_each(|i| self.walk(i)),
            Value::Object(map) => {
                let data = map.get("data").unwrap_or(&Value::Null);
                match map.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        if let Some(t) = data.get("text").and_then(Value::as_str) {
                            self.push(t);
                        }
                    }
                    Some("tab" | "ptab") => self.push("\t"),
                    Some("break") => match data.get("breakType").and_then(Value::as_str) {
                        Some("page") => self.page_break(),
                        Some("unsupported") => self.rendered_break(),
                        _ => self.push("\n"),
                    },
                    Some("carriageReturn") => self.push("\n"),
                    // Deleted revisions, field instructions and comments are not text
                    // a reader sees.
                    Some(
                        "delete" | "deleteText" | "moveFrom" | "deleteInstrText" | "instrText"
                        | "instrTextString" | "commentRangeStart" | "commentRangeEnd",
                    ) => {}
                    Some("tableCell") => {
                        self.walk(data);
                        self.push(" | ");
                    }
                    Some("tableRow") => {
                        self.walk(data);
                        self.push("\n");
                    }
                    Some("paragraph") => {
                        self.walk(data);
                        self.push("\n");
                    }
                    Some(_) => self.walk(data),
                    None => {
                        for (key, value) in map {
                            if key != "property" && key != "runProperty" {
                                self.walk(value);
                            }
                        }
                        // A paragraph outside a tagged node (footnotes, headers).
                        if map.contains_key("children") && map.contains_key("id") {
                            self.push("\n");
                        }
                    }
                }
            }
            _ => {}
        }
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

    /// A DOCX whose `word/document.xml` is written by `body`, its other parts taken
    /// from a real Word file.
    fn docx_with(body: impl Fn(&mut dyn Write)) -> Vec<u8> {
        let real = std::fs::read(
            manifest_dir()
                .join("../../../shared/corpus/docx-wild/fixtures_line_spacing_line_spacing.docx"),
        )
        .unwrap();
        let mut real = zip::ZipArchive::new(Cursor::new(real)).unwrap();
        let mut z = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .large_file(true);
        for i in 0..real.len() {
            let mut part = real.by_index(i).unwrap();
            if part.name() == "word/document.xml" || part.is_dir() {
                continue;
            }
            z.start_file(part.name().to_string(), options).unwrap();
            std::io::copy(&mut part, &mut z).unwrap();
        }
        z.start_file("word/document.xml", options).unwrap();
        body(&mut z);
        z.finish().unwrap().into_inner()
    }

    #[test]
    fn the_real_parts_alone_make_a_readable_docx() {
        let doc = docx_with(|w| {
            w.write_all(
                b"<?xml version=\"1.0\"?><w:document xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\">\
                  <w:body><w:p><w:r><w:t>harbour ferry</w:t></w:r></w:p></w:body></w:document>",
            )
            .unwrap();
        });
        let e = extract(&doc).unwrap();
        assert!(e.pages[0].text.contains("harbour ferry"), "{:?}", e.pages);
    }

    #[test]
    fn a_zip_bomb_is_refused() {
        let spaces = vec![b' '; 1 << 20];
        let bomb = docx_with(|w| {
            for _ in 0..(MAX_PART_BYTES >> 20) + 4 {
                w.write_all(&spaces).unwrap();
            }
        });
        assert!(bomb.len() < 4 << 20, "{} bytes", bomb.len());
        let err = extract(&bomb).unwrap_err().to_string();
        assert!(err.contains("zip bomb"), "{err}");
    }

    #[test]
    fn an_xml_entity_bomb_is_refused() {
        let mut dtd =
            String::from("<?xml version=\"1.0\"?>\n<!DOCTYPE w:document [\n<!ENTITY l0 \"lol\">\n");
        for i in 1..=9 {
            let prev = format!("&l{};", i - 1);
            dtd.push_str(&format!("<!ENTITY l{i} \"{}\">\n", prev.repeat(10)));
        }
        dtd.push_str("]>\n<w:document xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\">\
            <w:body><w:p><w:r><w:t>&l9;</w:t></w:r></w:p></w:body></w:document>");
        let bomb = docx_with(|w| w.write_all(dtd.as_bytes()).unwrap());
        let started = std::time::Instant::now();
        let result = extract(&bomb);
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
        let err = result
            .expect_err("the entities are not expanded")
            .to_string();
        assert!(err.contains("xml"), "{err}");
    }

    #[test]
    fn breaks_split_pages_once() {
        let mut w = PageWriter::default();
        w.push("one");
        w.page_break();
        w.rendered_break();
        w.push("two");
        w.page_break();
        w.page_break();
        w.push("four");
        w.rendered_break();
        let pages = w.finish();
        let texts: Vec<&str> = pages.iter().map(|p| p.text.as_str()).collect();
        assert_eq!(texts, ["one", "two", "", "four"]);
        assert_eq!(pages[3].number, 4);
    }

    #[test]
    fn not_a_zip_is_corrupt() {
        assert!(matches!(extract(b"plain text"), Err(Error::Corrupt(_))));
    }
}
