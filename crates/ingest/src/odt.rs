//! OpenDocument text (.odt, as LibreOffice Writer saves it): headings and
//! paragraphs in order, list items, tables a row to a line (cells joined by ` | `,
//! so a row stays together in one chunk), footnotes where they are anchored.
//! Pages are where the document recorded them: LibreOffice writes a
//! `text:soft-page-break` where each laid-out page begins, and a paragraph whose
//! style breaks the page before it starts one. Headers and footers (in styles.xml)
//! belong to every page; they are kept once, with page 1, as DOCX's are. Title and
//! author come from meta.xml.

use crate::package::Package;
use crate::xml::{Node, attr, walk};
use crate::{Error, Result};
use docchat_core::{Extracted, Page};
use std::collections::{HashMap, HashSet};

/// Elements whose text is not the document's: comments, tracked deletions, the
/// number a footnote is cited by, and form or variable declarations.
const SKIPPED: &[&str] = &[
    "annotation",
    "tracked-changes",
    "note-citation",
    "sequence-decls",
    "variable-decls",
    "user-field-decls",
    "forms",
];

/// Where the headers and footers of the page styles are.
const MARGINS: &[&str] = &[
    "header",
    "footer",
    "header-left",
    "footer-left",
    "header-first",
    "footer-first",
];

pub(crate) fn extract(bytes: &[u8]) -> Result<Extracted> {
    let mut pkg = Package::open(bytes, "ODT")?;
    if let Some(manifest) = pkg.read("META-INF/manifest.xml")?
        && manifest.windows(15).any(|w| w == b"encryption-data")
    {
        return Err(Error::Encrypted(
            "the document is password-protected".into(),
        ));
    }
    let content = pkg.require("content.xml")?;
    let styles = pkg.read("styles.xml")?;
    let mut breaks = StyleBreaks::default();
    breaks.read(&content, "content.xml")?;
    if let Some(s) = &styles {
        breaks.read(s, "styles.xml")?;
    }
    let breaking = breaks.resolve();
    let mut body = Text::new(Region::Body, &breaking);
    walk(&content, "content.xml", |n| body.visit(n))?;
    let mut pages = body.finish();
    if let Some(s) = &styles {
        let mut margins = Text::new(Region::Margins, &breaking);
        walk(s, "styles.xml", |n| margins.visit(n))?;
        let mut seen = HashSet::new();
        let lines: Vec<String> = margins
            .finish()
            .concat()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && seen.insert(l.to_string()))
            .map(str::to_string)
            .collect();
        if !lines.is_empty() {
            let first = pages.first_mut().expect("at least one page");
            *first = format!("{}\n{first}", lines.join("\n"));
        }
    }
    let (title, author) = match pkg.read("meta.xml")? {
        Some(meta) => crate::pptx::core_properties(&meta),
        None => (None, None),
    };
    Ok(Extracted {
        pages: pages
            .into_iter()
            .enumerate()
            .map(|(i, text)| Page {
                number: i as u32 + 1,
                text,
            })
            .collect(),
        title,
        author,
        extractor: "odt".into(),
        ..Extracted::default()
    })
}

/// The paragraph styles of a document, and which break the page before them.
#[derive(Default)]
struct StyleBreaks {
    parent: HashMap<String, String>,
    breaking: HashSet<String>,
}

impl StyleBreaks {
    fn read(&mut self, xml: &[u8], what: &str) -> Result<()> {
        let mut current: Option<String> = None;
        walk(xml, what, |n| match n {
            Node::Open {
                name: "style",
                attrs,
                ..
            } => {
                current = attr(attrs, "style:name").map(str::to_string);
                if let (Some(name), Some(parent)) =
                    (&current, attr(attrs, "style:parent-style-name"))
                {
                    self.parent.insert(name.clone(), parent.to_string());
                }
            }
            Node::Open {
                name: "paragraph-properties",
                attrs,
                ..
            } => {
                if attr(attrs, "fo:break-before") == Some("page")
                    && let Some(name) = &current
                {
                    self.breaking.insert(name.clone());
                }
            }
            Node::Close("style") => current = None,
            _ => {}
        })
    }

    /// Every style that breaks the page, itself or through the styles it is
    /// based on.
    fn resolve(&self) -> HashSet<String> {
        let mut out = self.breaking.clone();
        for name in self.parent.keys() {
            let mut at = name;
            for _ in 0..16 {
                if self.breaking.contains(at) {
                    out.insert(name.clone());
                    break;
                }
                match self.parent.get(at) {
                    Some(p) => at = p,
                    None => break,
                }
            }
        }
        out
    }
}

/// Which text a walk collects.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Region {
    /// The document's body (`office:text`), with its pages.
    Body,
    /// The headers and footers of the page styles.
    Margins,
}

/// The text of one walk: pages of lines; paragraphs inside paragraphs (footnotes,
/// text boxes) join their parent's line; table cells collect their paragraphs and
/// a row becomes one line.
struct Text<'s> {
    region: Region,
    breaking: &'s HashSet<String>,
    /// Open elements that make the text count (`office:text`, a header).
    inside: usize,
    /// Open elements whose text is skipped.
    skipped: usize,
    pages: Vec<String>,
    /// Open paragraphs, innermost last.
    lines: Vec<String>,
    /// Open table rows, innermost last, with their finished cells.
    rows: Vec<Vec<String>>,
    /// Open table cells, innermost last.
    cells: Vec<String>,
}

impl<'s> Text<'s> {
    fn new(region: Region, breaking: &'s HashSet<String>) -> Self {
        Self {
            region,
            breaking,
            inside: 0,
            skipped: 0,
            pages: vec![String::new()],
            lines: Vec::new(),
            rows: Vec::new(),
            cells: Vec::new(),
        }
    }

    fn counts(&self) -> bool {
        self.inside > 0 && self.skipped == 0
    }

    fn region_element(&self, name: &str) -> bool {
        match self.region {
            Region::Body => name == "text",
            Region::Margins => MARGINS.contains(&name),
        }
    }

    /// A new page, unless the current one is still empty.
    fn page_break(&mut self) {
        if self.region == Region::Body && self.pages.last().is_some_and(|p| !p.trim().is_empty()) {
            self.pages.push(String::new());
        }
    }

    /// Where finished text goes: the open paragraph, else the open cell, else
    /// the page.
    fn push_text(&mut self, text: &str) {
        if let Some(line) = self.lines.last_mut() {
            line.push_str(text);
        } else if let Some(cell) = self.cells.last_mut() {
            if !cell.is_empty() && !text.is_empty() {
                cell.push(' ');
            }
            cell.push_str(text);
        } else if let Some(page) = self.pages.last_mut() {
            page.push_str(text);
            page.push('\n');
        }
    }

    fn visit(&mut self, n: Node<'_>) {
        match n {
            // The walk closes an empty element (`<a/>`) right after opening it.
            Node::Open { name, attrs, .. } => {
                if self.region_element(name) {
                    self.inside += 1;
                }
                if self.inside > 0 && SKIPPED.contains(&name) {
                    self.skipped += 1;
                }
                if !self.counts() {
                    return;
                }
                match name {
                    "soft-page-break" => {
                        // Mid-paragraph, the words so far stay on the page before.
                        if self.lines.len() == 1 && self.cells.is_empty() {
                            let line = std::mem::take(&mut self.lines[0]);
                            self.push_page_text(&line);
                        }
                        self.page_break();
                    }
                    "p" | "h" => {
                        let breaks = attr(attrs, "text:style-name")
                            .is_some_and(|s| self.breaking.contains(s));
                        if breaks && self.lines.is_empty() && self.cells.is_empty() {
                            self.page_break();
                        }
                        self.lines.push(String::new());
                    }
                    "s" => {
                        let n = attr(attrs, "text:c")
                            .and_then(|c| c.parse::<usize>().ok())
                            .unwrap_or(1)
                            .min(64);
                        self.push_inline(&" ".repeat(n));
                    }
                    "tab" => self.push_inline("\t"),
                    "line-break" => self.push_inline("\n"),
                    "table-row" => self.rows.push(Vec::new()),
                    "table-cell" | "covered-table-cell" => self.cells.push(String::new()),
                    _ => {}
                }
            }
            Node::Close(name) => self.close(name),
            Node::Text(t) => {
                if self.counts() {
                    self.push_inline(t);
                }
            }
        }
    }

    /// Text inside a paragraph (text outside one is layout white space).
    fn push_inline(&mut self, text: &str) {
        if let Some(line) = self.lines.last_mut() {
            line.push_str(text);
        }
    }

    /// Text that goes straight to the current page (the part of a paragraph
    /// before a page break inside it).
    fn push_page_text(&mut self, text: &str) {
        if text.trim().is_empty() {
            return;
        }
        if let Some(page) = self.pages.last_mut() {
            page.push_str(text.trim_end());
            page.push('\n');
        }
    }

    fn close(&mut self, name: &str) {
        if self.region_element(name) && self.inside > 0 {
            self.inside -= 1;
            return;
        }
        if SKIPPED.contains(&name) && self.skipped > 0 {
            self.skipped -= 1;
            return;
        }
        if !self.counts() {
            return;
        }
        match name {
            "p" | "h" => {
                let Some(line) = self.lines.pop() else {
                    return;
                };
                let line = line.trim_end().to_string();
                if self.lines.is_empty() {
                    if self.cells.is_empty() && line.trim().is_empty() {
                        return;
                    }
                    self.push_text(&line);
                } else if !line.trim().is_empty() {
                    // A footnote or a text box: it joins the paragraph it sits in.
                    self.push_inline(" ");
                    self.push_inline(line.trim());
                }
            }
            "table-cell" | "covered-table-cell" => {
                if let Some(cell) = self.cells.pop()
                    && let Some(row) = self.rows.last_mut()
                {
                    row.push(cell.split_whitespace().collect::<Vec<_>>().join(" "));
                }
            }
            "table-row" => {
                if let Some(row) = self.rows.pop() {
                    let cells: Vec<&String> = row.iter().filter(|c| !c.is_empty()).collect();
                    if !cells.is_empty() {
                        let line = cells
                            .iter()
                            .map(|c| c.as_str())
                            .collect::<Vec<_>>()
                            .join(" | ");
                        self.push_text(&line);
                    }
                }
            }
            _ => {}
        }
    }

    /// The pages (at least one), without trailing white space.
    fn finish(self) -> Vec<String> {
        let mut pages: Vec<String> = self
            .pages
            .into_iter()
            .map(|p| p.trim_end().to_string())
            .collect();
        while pages.len() > 1 && pages.last().is_some_and(|p| p.is_empty()) {
            pages.pop();
        }
        pages
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(xml: &str) -> Vec<String> {
        let breaking: HashSet<String> = ["Break".to_string()].into();
        let mut t = Text::new(Region::Body, &breaking);
        let doc = format!(
            r#"<office:document-content><office:body><office:text>{xml}</office:text></office:body></office:document-content>"#
        );
        walk(doc.as_bytes(), "content.xml", |n| t.visit(n)).unwrap();
        t.finish()
    }

    #[test]
    fn paragraphs_lists_tables_and_notes() {
        let pages = body(
            r#"<text:sequence-decls><text:sequence-decl text:name="Table"/></text:sequence-decls>
            <text:h text:outline-level="1">Contract</text:h>
            <text:p>Rent is<text:s text:c="2"/>due monthly<text:note><text:note-citation>1</text:note-citation><text:note-body><text:p>On the first day.</text:p></text:note-body></text:note>.</text:p>
            <office:annotation><dc:creator>Ann</dc:creator><text:p>check this</text:p></office:annotation>
            <text:list><text:list-item><text:p>Deposit</text:p></text:list-item></text:list>
            <table:table><table:table-row><table:table-cell><text:p>Term</text:p></table:table-cell><table:table-cell><text:p>12</text:p><text:p>months</text:p></table:table-cell></table:table-row></table:table>"#,
        );
        assert_eq!(
            pages,
            ["Contract\nRent is  due monthly On the first day..\nDeposit\nTerm | 12 months"]
        );
    }

    #[test]
    fn recorded_page_breaks_make_pages() {
        let pages = body(
            r#"<text:p>One</text:p><text:soft-page-break/><text:p>Two starts<text:soft-page-break/>and ends</text:p>
            <text:p text:style-name="Break">Three</text:p><text:p>still three</text:p>"#,
        );
        assert_eq!(
            pages,
            ["One", "Two starts", "and ends", "Three\nstill three"]
        );
    }

    #[test]
    fn styles_break_through_their_parents() {
        let mut b = StyleBreaks::default();
        let xml = br#"<office:styles>
            <style:style style:name="Chapter" style:family="paragraph"><style:paragraph-properties fo:break-before="page"/></style:style>
            <style:style style:name="P7" style:family="paragraph" style:parent-style-name="Chapter"/>
            <style:style style:name="P8" style:family="paragraph" style:parent-style-name="Text_body"/>
            </office:styles>"#;
        b.read(xml, "styles.xml").unwrap();
        let resolved = b.resolve();
        assert!(resolved.contains("Chapter") && resolved.contains("P7"));
        assert!(!resolved.contains("P8"));
    }
}
