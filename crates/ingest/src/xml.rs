//! A small walk over XML events for the package formats: element names without
//! their prefix, attributes with theirs, text with its entities resolved.

use crate::{Error, Result};
use quick_xml::events::Event;

/// One step of the walk.
pub(crate) enum Node<'n> {
    /// An element opens (`empty`: it also closes at once, `<a/>`).
    Open {
        /// The element's name without its prefix (`sldId` for `p:sldId`).
        name: &'n str,
        /// Its attributes, names with their prefix (`r:id`).
        attrs: &'n [(String, String)],
        /// Whether it has no content.
        empty: bool,
    },
    /// An element closes.
    Close(&'n str),
    /// Text.
    Text(&'n str),
}

/// The value of attribute `name` (with its prefix: `r:id`).
pub(crate) fn attr<'a>(attrs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Walks `xml`, handing each node to `visit`. `what` names the part in errors.
pub(crate) fn walk(xml: &[u8], what: &str, mut visit: impl FnMut(Node<'_>)) -> Result<()> {
    let mut reader = quick_xml::Reader::from_reader(xml);
    let bad = |e: &dyn std::fmt::Display| Error::Corrupt(format!("{what}: bad XML: {e}"));
    let mut buf = Vec::new();
    let mut attrs: Vec<(String, String)> = Vec::new();
    loop {
        let event = reader.read_event_into(&mut buf).map_err(|e| bad(&e))?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(event, Event::Empty(_));
                attrs.clear();
                for a in e.attributes().flatten() {
                    let key = String::from_utf8_lossy(a.key.as_ref()).into_owned();
                    let value = a
                        .decoded_and_normalized_value(
                            quick_xml::XmlVersion::Implicit1_0,
                            reader.decoder(),
                        )
                        .map(|v| v.into_owned())
                        .unwrap_or_else(|_| String::from_utf8_lossy(&a.value).into_owned());
                    attrs.push((key, value));
                }
                let local = e.local_name();
                let name = String::from_utf8_lossy(local.as_ref());
                visit(Node::Open {
                    name: &name,
                    attrs: &attrs,
                    empty,
                });
                if empty {
                    visit(Node::Close(&name));
                }
            }
            Event::End(ref e) => {
                let local = e.local_name();
                visit(Node::Close(&String::from_utf8_lossy(local.as_ref())));
            }
            Event::Text(ref t) => {
                let text = t.decode().map_err(|e| bad(&e))?;
                visit(Node::Text(&text));
            }
            Event::CData(ref t) => {
                visit(Node::Text(&String::from_utf8_lossy(t.as_ref())));
            }
            Event::GeneralRef(ref r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    _ => match r.decode().map_err(|e| bad(&e))?.as_ref() {
                        "amp" => "&".into(),
                        "lt" => "<".into(),
                        "gt" => ">".into(),
                        "quot" => "\"".into(),
                        "apos" => "'".into(),
                        "nbsp" => "\u{a0}".into(),
                        _ => String::new(),
                    },
                };
                visit(Node::Text(&resolved));
            }
            Event::Eof => return Ok(()),
            _ => {}
        }
        buf.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_lose_their_prefix_and_entities_resolve() {
        let xml = br#"<p:sld show="0"><a:t>Fish &amp; chips &#x263A;</a:t><p:sldId r:id="rId2"/></p:sld>"#;
        let mut seen = Vec::new();
        walk(xml, "test", |n| match n {
            Node::Open { name, attrs, empty } => seen.push(format!(
                "<{name}{}{}>",
                attr(attrs, "r:id")
                    .map(|v| format!(" id={v}"))
                    .unwrap_or_default(),
                if empty { "/" } else { "" }
            )),
            Node::Close(name) => seen.push(format!("</{name}>")),
            Node::Text(t) => seen.push(t.to_string()),
        })
        .unwrap();
        assert_eq!(
            seen.concat(),
            "<sld><t>Fish & chips ☺</t><sldId id=rId2/></sldId></sld>"
        );
        assert!(walk(b"<a><b></a>", "broken.xml", |_| {}).is_err());
    }
}
