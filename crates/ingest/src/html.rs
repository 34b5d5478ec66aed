//! HTML to text: drops tags, scripts and styles; block elements become line breaks;
//! character references are decoded.

use crate::{decode_text, split_pages};
use docchat_core::Extracted;

pub(crate) fn extract(bytes: &[u8]) -> Extracted {
    let html = decode_text(bytes);
    let title = find_title(&html);
    Extracted {
        pages: split_pages(&html_to_text(&html)),
        title,
        author: None,
        extractor: "html".into(),
        ..Extracted::default()
    }
}

fn find_title(html: &str) -> Option<String> {
    let lower = html.to_ascii_lowercase();
    let start = lower.find("<title")?;
    let open_end = start + lower[start..].find('>')? + 1;
    let close = open_end + lower[open_end..].find("</title")?;
    let t = decode_entities(html[open_end..close].trim());
    (!t.is_empty()).then_some(t)
}

const BLOCKS: [&str; 18] = [
    "p",
    "div",
    "br",
    "li",
    "tr",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "section",
    "article",
    "table",
    "ul",
    "ol",
    "pre",
    "blockquote",
];

pub(crate) fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        out.push_str(&decode_entities(&rest[..lt]));
        rest = &rest[lt..];
        if rest.starts_with("<!--") {
            rest = rest.find("-->").map_or("", |e| &rest[e + 3..]);
            continue;
        }
        let Some(gt) = rest.find('>') else {
            rest = "";
            break;
        };
        let tag = &rest[1..gt];
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        rest = &rest[gt + 1..];
        if (name == "script" || name == "style" || name == "head") && !tag.starts_with('/') {
            let close = format!("</{name}");
            let lower = rest.to_ascii_lowercase();
            rest = match lower.find(&close) {
                Some(i) => rest[i..].find('>').map_or("", |g| &rest[i + g + 1..]),
                None => "",
            };
            continue;
        }
        if BLOCKS.contains(&name.as_str()) {
            out.push('\n');
        } else if name == "td" || name == "th" {
            out.push_str(" | ");
        }
    }
    out.push_str(&decode_entities(rest));
    out
}

fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        // Byte-wise: a cut at byte 12 may fall inside a character.
        let end = rest.bytes().take(12).position(|b| b == b';');
        let decoded = end.and_then(|e| decode_entity(&rest[1..e]).map(|c| (c, e)));
        match decoded {
            Some((c, e)) => {
                out.push(c);
                rest = &rest[e + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn decode_entity(name: &str) -> Option<char> {
    if let Some(num) = name.strip_prefix('#') {
        let code = match num.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => num.parse().ok()?,
        };
        return char::from_u32(code);
    }
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => ' ',
        "mdash" => '—',
        "ndash" => '–',
        "hellip" => '…',
        "copy" => '©',
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ampersand_before_wide_characters_does_not_panic() {
        // Found by the extract_html fuzz target: the entity scan cut a character.
        assert_eq!(
            html_to_text("a &\u{fffd}\u{fffd}\u{fffd}\u{fffd}\u{fffd} b"),
            "a &\u{fffd}\u{fffd}\u{fffd}\u{fffd}\u{fffd} b"
        );
        assert_eq!(
            html_to_text("&\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9};"),
            "&\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9};"
        );
        let crash = b"plain\x0ctext\xff\xff\xff&\xff\xff\xff\xff\xff\xff\xff<p>x";
        let _ = extract(crash);
    }

    #[test]
    fn strips_markup_and_decodes() {
        let html = "<html><head><title>T &amp; C</title><style>p{}</style></head>\
                    <body><p>Fish &amp; chips</p><script>var x = '<p>';</script>\
                    <!-- note --><div>caf&#233; &lt;3</div></body></html>";
        let text = html_to_text(html);
        assert!(text.contains("Fish & chips"));
        assert!(text.contains("café <3"));
        assert!(!text.contains("var x"));
        assert!(!text.contains("note"));
        assert!(!text.contains("T & C"), "head content is not body text");
        assert_eq!(find_title(html).as_deref(), Some("T & C"));
    }
}
