//! EPUB: the documents of the spine, in reading order, each a page ("chapter N"):
//! XHTML as the HTML extractor reads it, its title on the first line; SVG by its
//! text. Vertical Japanese, Arabic and other scripts stay as they are written.

use crate::package::{Package, folder, resolve};
use crate::xml::{Node, attr, walk};
use crate::{Error, Result, html};
use docchat_core::{Extracted, Page};
use std::collections::HashMap;

/// Most spine documents read.
const MAX_CHAPTERS: usize = 10_000;

pub(crate) fn extract(bytes: &[u8]) -> Result<Extracted> {
    let mut pkg = Package::open(bytes, "EPUB")?;
    let container = pkg.require("META-INF/container.xml")?;
    let mut opf_path = None;
    walk(&container, "META-INF/container.xml", |n| {
        if let Node::Open {
            name: "rootfile",
            attrs,
            ..
        } = n
            && opf_path.is_none()
        {
            opf_path = attr(attrs, "full-path").map(|p| resolve("", p));
        }
    })?;
    let opf_path = opf_path
        .ok_or_else(|| Error::Corrupt("not an EPUB: its container names no package".into()))?;
    let opf = pkg.require(&opf_path)?;
    let book = Book::read(&opf, &opf_path)?;
    let mut pages = Vec::new();
    for (i, idref) in book.spine.iter().take(MAX_CHAPTERS).enumerate() {
        let number = i as u32 + 1;
        let text = match book.items.get(idref) {
            Some((href, media)) => match pkg.read(href)? {
                Some(data) => chapter_text(&data, media, href)?,
                None => String::new(),
            },
            None => String::new(),
        };
        pages.push(Page { number, text });
    }
    if pages.is_empty() {
        return Err(Error::NoText("the book's spine is empty".into()));
    }
    Ok(Extracted {
        pages,
        title: book.title,
        author: book.author,
        extractor: "epub".into(),
        ..Extracted::default()
    })
}

/// The text of one spine document.
fn chapter_text(data: &[u8], media: &str, href: &str) -> Result<String> {
    if media.contains("svg") {
        // Its text elements; styles and scripts are not text.
        let mut text = String::new();
        let mut hidden = 0usize;
        walk(data, href, |n| match n {
            Node::Open {
                name: "style" | "script",
                empty: false,
                ..
            } => hidden += 1,
            Node::Close("style" | "script") => hidden = hidden.saturating_sub(1),
            Node::Text(t) if hidden == 0 && !t.trim().is_empty() => {
                if !text.is_empty() {
                    text.push('\n');
                }
                text.push_str(t.trim());
            }
            _ => {}
        })?;
        return Ok(text);
    }
    if !(media.contains("html") || media.contains("xml")) {
        return Ok(String::new());
    }
    let extracted = html::extract(data);
    // The markup's indentation is not text: lines trimmed, runs of blank lines as
    // one.
    let mut body = String::new();
    let mut blank = true;
    for line in extracted.pages.iter().flat_map(|p| p.text.lines()) {
        let line = line.trim();
        if line.is_empty() {
            if !blank {
                body.push('\n');
            }
            blank = true;
            continue;
        }
        body.push_str(line);
        body.push('\n');
        blank = false;
    }
    let body = body.trim_end().to_string();
    Ok(match extracted.title {
        Some(title) if !body.trim_start().starts_with(title.trim()) => {
            format!("{}\n{body}", title.trim())
        }
        _ => body,
    })
}

/// What the package document says: the manifest, the spine, title and author.
struct Book {
    /// Manifest id → (part, media type).
    items: HashMap<String, (String, String)>,
    /// Manifest ids in reading order.
    spine: Vec<String>,
    title: Option<String>,
    author: Option<String>,
}

impl Book {
    fn read(opf: &[u8], opf_path: &str) -> Result<Self> {
        let dir = folder(opf_path);
        let mut book = Book {
            items: HashMap::new(),
            spine: Vec::new(),
            title: None,
            author: None,
        };
        let mut field: Option<&'static str> = None;
        let (mut title, mut author) = (String::new(), String::new());
        walk(opf, opf_path, |n| match n {
            Node::Open {
                name: "item",
                attrs,
                ..
            } => {
                if let (Some(id), Some(href)) = (attr(attrs, "id"), attr(attrs, "href")) {
                    let media = attr(attrs, "media-type").unwrap_or_default().to_string();
                    book.items
                        .insert(id.to_string(), (resolve(dir, href), media));
                }
            }
            Node::Open {
                name: "itemref",
                attrs,
                ..
            } => {
                if let Some(id) = attr(attrs, "idref") {
                    book.spine.push(id.to_string());
                }
            }
            Node::Open { name: "title", .. } if title.is_empty() => field = Some("title"),
            Node::Open {
                name: "creator", ..
            } if author.is_empty() => field = Some("creator"),
            Node::Open { .. } | Node::Close(_) => field = None,
            Node::Text(t) => match field {
                Some("title") => title.push_str(t),
                Some(_) => author.push_str(t),
                None => {}
            },
        })?;
        let some = |s: String| {
            let s = s.trim().to_string();
            (!s.is_empty()).then_some(s)
        };
        book.title = some(title);
        book.author = some(author);
        Ok(book)
    }
}
