//! PPTX: each slide is a page, in the presentation's order: its title first, then
//! the text of its shapes, its tables a row to a line (cells joined by ` | `, so a
//! row stays together in one chunk), then its speaker notes. A hidden slide says
//! so on its first line.

use crate::package::{Package, folder, resolve};
use crate::xml::{Node, attr, walk};
use crate::{Error, Result};
use docchat_core::{Extracted, Page};
use std::collections::HashMap;

/// What marks a slide the presenter hides.
pub(crate) const HIDDEN: &str = "(hidden slide)";

pub(crate) fn extract(bytes: &[u8]) -> Result<Extracted> {
    let mut pkg = Package::open(bytes, "PPTX")?;
    let presentation = pkg.require("ppt/presentation.xml")?;
    let rels = relationships(&mut pkg, "ppt/presentation.xml")?;
    let mut order: Vec<String> = Vec::new();
    walk(&presentation, "ppt/presentation.xml", |n| {
        if let Node::Open {
            name: "sldId",
            attrs,
            ..
        } = n
            && let Some(id) = attr(attrs, "r:id")
        {
            order.push(id.to_string());
        }
    })?;
    if order.is_empty() {
        return Err(Error::NoText("the presentation has no slides".into()));
    }
    let mut pages = Vec::with_capacity(order.len());
    for (i, id) in order.iter().enumerate() {
        let number = i as u32 + 1;
        let text = match rels.get(id) {
            Some((_, part)) => slide_text(&mut pkg, part)?,
            None => String::new(),
        };
        pages.push(Page { number, text });
    }
    let (title, author) = match pkg.read("docProps/core.xml")? {
        Some(core) => core_properties(&core),
        None => (None, None),
    };
    Ok(Extracted {
        pages,
        title,
        author,
        extractor: "pptx".into(),
        ..Extracted::default()
    })
}

/// The text of the slide in `part`, with its notes.
fn slide_text(pkg: &mut Package<'_>, part: &str) -> Result<String> {
    let Some(xml) = pkg.read(part)? else {
        return Ok(String::new());
    };
    let slide = Shapes::read(&xml, part)?;
    let mut out = Vec::new();
    if slide.hidden {
        out.push(HIDDEN.to_string());
    }
    let title = slide.title();
    if let Some(t) = &title {
        out.push(t.clone());
    }
    for s in &slide.shapes {
        if !s.is_title() {
            out.extend(s.lines.iter().cloned());
        }
    }
    let notes = relationships(pkg, part)?
        .into_values()
        .find(|(kind, _)| kind.ends_with("/notesSlide"))
        .map(|(_, p)| p);
    if let Some(notes_part) = notes
        && let Some(xml) = pkg.read(&notes_part)?
    {
        let notes = Shapes::read(&xml, &notes_part)?;
        let lines: Vec<String> = notes
            .shapes
            .iter()
            .filter(|s| s.placeholder.as_deref() == Some("body"))
            .flat_map(|s| s.lines.iter().cloned())
            .collect();
        if !lines.is_empty() {
            out.push(format!("Notes: {}", lines.join("\n")));
        }
    }
    Ok(out.join("\n"))
}

/// A shape's text, by paragraph, and its placeholder type.
#[derive(Default)]
struct Shape {
    placeholder: Option<String>,
    lines: Vec<String>,
}

impl Shape {
    fn is_title(&self) -> bool {
        matches!(self.placeholder.as_deref(), Some("title" | "ctrTitle"))
    }
}

/// The shapes of a slide (or notes page) in document order; tables are shapes of
/// their own, a row to a line.
#[derive(Default)]
struct Shapes {
    hidden: bool,
    shapes: Vec<Shape>,
}

impl Shapes {
    fn read(xml: &[u8], part: &str) -> Result<Self> {
        let mut out = Shapes::default();
        // The shape being read, the paragraph, the table row's cells and the cell.
        let mut shape: Option<Shape> = None;
        let mut paragraph = String::new();
        let mut in_text = false;
        let mut row: Option<Vec<String>> = None;
        let mut cell: Option<Vec<String>> = None;
        walk(xml, part, |n| match n {
            Node::Open { name, attrs, .. } => match name {
                "sld" => out.hidden = attr(attrs, "show") == Some("0"),
                "sp" | "graphicFrame" => shape = Some(Shape::default()),
                "ph" => {
                    if let Some(s) = shape.as_mut() {
                        // A placeholder without a type is a body placeholder.
                        s.placeholder = Some(attr(attrs, "type").unwrap_or("body").to_string());
                    }
                }
                "p" => paragraph.clear(),
                "t" => in_text = true,
                "br" => paragraph.push('\n'),
                "tab" => paragraph.push('\t'),
                "tr" => row = Some(Vec::new()),
                "tc" => cell = Some(Vec::new()),
                _ => {}
            },
            Node::Text(t) if in_text => paragraph.push_str(t),
            Node::Text(_) => {}
            Node::Close(name) => match name {
                "t" => in_text = false,
                "p" => {
                    let line = paragraph.trim().to_string();
                    paragraph.clear();
                    if line.is_empty() {
                        return;
                    }
                    if let Some(c) = cell.as_mut() {
                        c.push(line);
                    } else if let Some(s) = shape.as_mut() {
                        s.lines.push(line);
                    } else {
                        out.shapes.push(Shape {
                            placeholder: None,
                            lines: vec![line],
                        });
                    }
                }
                "tc" => {
                    if let (Some(c), Some(r)) = (cell.take(), row.as_mut()) {
                        r.push(c.join(" "));
                    }
                }
                "tr" => {
                    if let Some(r) = row.take()
                        && r.iter().any(|c| !c.is_empty())
                        && let Some(s) = shape.as_mut()
                    {
                        s.lines.push(r.join(" | "));
                    }
                }
                "sp" | "graphicFrame" => {
                    if let Some(s) = shape.take()
                        && !s.lines.is_empty()
                    {
                        out.shapes.push(s);
                    }
                }
                _ => {}
            },
        })?;
        Ok(out)
    }

    fn title(&self) -> Option<String> {
        self.shapes
            .iter()
            .find(|s| s.is_title())
            .map(|s| s.lines.join(" "))
    }
}

/// The relationships of `part`: id → (type, the part it points at). External
/// targets are left out.
fn relationships(pkg: &mut Package<'_>, part: &str) -> Result<HashMap<String, (String, String)>> {
    let dir = folder(part);
    let file = part.rsplit('/').next().unwrap_or(part);
    let rels_part = if dir.is_empty() {
        format!("_rels/{file}.rels")
    } else {
        format!("{dir}/_rels/{file}.rels")
    };
    let mut out = HashMap::new();
    let Some(xml) = pkg.read(&rels_part)? else {
        return Ok(out);
    };
    walk(&xml, &rels_part, |n| {
        if let Node::Open {
            name: "Relationship",
            attrs,
            ..
        } = n
            && attr(attrs, "TargetMode") != Some("External")
            && let (Some(id), Some(kind), Some(target)) = (
                attr(attrs, "Id"),
                attr(attrs, "Type"),
                attr(attrs, "Target"),
            )
        {
            out.insert(id.to_string(), (kind.to_string(), resolve(dir, target)));
        }
    })?;
    Ok(out)
}

/// Title and author from `docProps/core.xml` (a damaged one gives none).
pub(crate) fn core_properties(xml: &[u8]) -> (Option<String>, Option<String>) {
    let (mut title, mut author) = (String::new(), String::new());
    let mut field: Option<&'static str> = None;
    let walked = walk(xml, "docProps/core.xml", |n| match n {
        Node::Open { name: "title", .. } => field = Some("title"),
        Node::Open {
            name: "creator", ..
        } => field = Some("creator"),
        Node::Open { .. } | Node::Close(_) => field = None,
        Node::Text(t) => match field {
            Some("title") => title.push_str(t),
            Some(_) => author.push_str(t),
            None => {}
        },
    });
    if walked.is_err() {
        return (None, None);
    }
    let some = |s: String| {
        let s = s.trim().to_string();
        (!s.is_empty()).then_some(s)
    };
    (some(title), some(author))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A package of `parts` (name, content).
    pub(crate) fn package(parts: &[(&str, &str)]) -> Vec<u8> {
        let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default();
        for (name, content) in parts {
            out.start_file(*name, options).unwrap();
            out.write_all(content.as_bytes()).unwrap();
        }
        out.finish().unwrap().into_inner()
    }

    const NS: &str = r#"xmlns:a="a" xmlns:p="p" xmlns:r="r""#;

    #[test]
    fn slides_keep_their_order_title_table_rows_notes_and_hidden_mark() {
        let presentation = format!(
            r#"<p:presentation {NS}><p:sldIdLst><p:sldId id="257" r:id="rId9"/><p:sldId id="256" r:id="rId2"/></p:sldIdLst></p:presentation>"#
        );
        let rels = r#"<Relationships><Relationship Id="rId2" Type="http://x/slide" Target="slides/slide1.xml"/><Relationship Id="rId9" Type="http://x/slide" Target="slides/slide2.xml"/><Relationship Id="rId3" Type="http://x/hyperlink" Target="http://example.com" TargetMode="External"/></Relationships>"#;
        let slide1 = format!(
            r#"<p:sld {NS} show="0"><p:cSld><p:spTree>
            <p:sp><p:nvSpPr><p:nvPr><p:ph type="body"/></p:nvPr></p:nvSpPr><p:txBody><a:p><a:r><a:t>Revenue grew </a:t></a:r><a:r><a:t>in Q3 &amp; Q4</a:t></a:r></a:p></p:txBody></p:sp>
            <p:sp><p:nvSpPr><p:nvPr><p:ph type="title"/></p:nvPr></p:nvSpPr><p:txBody><a:p><a:r><a:t>Results</a:t></a:r></a:p></p:txBody></p:sp>
            <p:graphicFrame><a:graphic><a:graphicData><a:tbl>
              <a:tr><a:tc><a:txBody><a:p><a:r><a:t>Region</a:t></a:r></a:p></a:txBody></a:tc><a:tc><a:txBody><a:p><a:r><a:t>Sales</a:t></a:r></a:p></a:txBody></a:tc></a:tr>
              <a:tr><a:tc><a:txBody><a:p><a:r><a:t>North</a:t></a:r></a:p></a:txBody></a:tc><a:tc><a:txBody><a:p><a:r><a:t>42</a:t></a:r></a:p></a:txBody></a:tc></a:tr>
            </a:tbl></a:graphicData></a:graphic></p:graphicFrame>
            </p:spTree></p:cSld></p:sld>"#
        );
        let slide1_rels = r#"<Relationships><Relationship Id="rId1" Type="http://x/notesSlide" Target="../notesSlides/notesSlide1.xml"/></Relationships>"#;
        let notes = format!(
            r#"<p:notes {NS}><p:cSld><p:spTree>
            <p:sp><p:nvSpPr><p:nvPr><p:ph type="sldImg"/></p:nvPr></p:nvSpPr></p:sp>
            <p:sp><p:nvSpPr><p:nvPr><p:ph type="body" idx="1"/></p:nvPr></p:nvSpPr><p:txBody><a:p><a:r><a:t>Say the North doubled.</a:t></a:r></a:p></p:txBody></p:sp>
            <p:sp><p:nvSpPr><p:nvPr><p:ph type="sldNum"/></p:nvPr></p:nvSpPr><p:txBody><a:p><a:fld type="slidenum"><a:t>1</a:t></a:fld></a:p></p:txBody></p:sp>
            </p:spTree></p:cSld></p:notes>"#
        );
        let slide2 = format!(
            r#"<p:sld {NS}><p:cSld><p:spTree><p:sp><p:txBody><a:p><a:r><a:t>Agenda</a:t></a:r><a:br/><a:r><a:t>Plans</a:t></a:r></a:p></p:txBody></p:sp></p:spTree></p:cSld></p:sld>"#
        );
        let core = r#"<cp:coreProperties xmlns:cp="c" xmlns:dc="d"><dc:title>Quarterly</dc:title><dc:creator>Ada</dc:creator></cp:coreProperties>"#;
        let bytes = package(&[
            ("ppt/presentation.xml", &presentation),
            ("ppt/_rels/presentation.xml.rels", rels),
            ("ppt/slides/slide1.xml", &slide1),
            ("ppt/slides/_rels/slide1.xml.rels", slide1_rels),
            ("ppt/notesSlides/notesSlide1.xml", &notes),
            ("ppt/slides/slide2.xml", &slide2),
            ("docProps/core.xml", core),
        ]);
        let e = extract(&bytes).unwrap();
        assert_eq!(e.title.as_deref(), Some("Quarterly"));
        assert_eq!(e.author.as_deref(), Some("Ada"));
        assert_eq!(e.pages.len(), 2);
        // The presentation's order, not the part names'.
        assert_eq!(e.pages[0].text, "Agenda\nPlans");
        assert_eq!(
            e.pages[1].text,
            "(hidden slide)\nResults\nRevenue grew in Q3 & Q4\nRegion | Sales\nNorth | 42\nNotes: Say the North doubled."
        );
        assert_eq!(e.pages[1].number, 2);

        // Damaged packages are reasons, not panics.
        assert!(matches!(
            extract(b"PK\x03\x04 not a zip"),
            Err(Error::Corrupt(_))
        ));
        let no_slides = package(&[("ppt/presentation.xml", &format!("<p:presentation {NS}/>"))]);
        assert!(matches!(extract(&no_slides), Err(Error::NoText(_))));
        let broken = package(&[("ppt/presentation.xml", "<p:presentation><p:sldIdLst>")]);
        assert!(extract(&broken).is_err());
    }
}
