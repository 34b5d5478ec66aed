//! ZIP packages (PPTX, EPUB): their parts read by name, within the same bounds as
//! DOCX parts, so a zip bomb costs a bounded time and memory.

use crate::docx::{MAX_PART_BYTES, MAX_UNPACKED_BYTES};
use crate::{Error, Result};
use std::io::{Cursor, Read};

/// Most parts a package may hold.
const MAX_PARTS: usize = 20_000;

/// An opened package.
pub(crate) struct Package<'a> {
    archive: zip::ZipArchive<Cursor<&'a [u8]>>,
    /// What the package is called in messages ("PPTX", "EPUB").
    what: &'static str,
    /// Bytes unpacked so far, over every part read.
    unpacked: u64,
}

impl<'a> Package<'a> {
    /// Opens `bytes` as a ZIP package.
    pub(crate) fn open(bytes: &'a [u8], what: &'static str) -> Result<Self> {
        let archive = zip::ZipArchive::new(Cursor::new(bytes))
            .map_err(|e| Error::Corrupt(format!("not a {what} (zip) file: {e}")))?;
        if archive.len() > MAX_PARTS {
            return Err(Error::Corrupt(format!(
                "zip bomb: the {what} holds {} parts (at most {MAX_PARTS} are read)",
                archive.len()
            )));
        }
        Ok(Self {
            archive,
            what,
            unpacked: 0,
        })
    }

    /// The part `name` (`None`: the package has no such part).
    pub(crate) fn read(&mut self, name: &str) -> Result<Option<Vec<u8>>> {
        let what = self.what;
        let mut entry = match self.archive.by_name(name) {
            Ok(e) => e,
            Err(zip::result::ZipError::FileNotFound) => return Ok(None),
            Err(e) => return Err(Error::Corrupt(format!("damaged {what} part {name}: {e}"))),
        };
        let size = entry.size();
        let data = read_capped(&mut entry, size, name, what, &mut self.unpacked)?;
        Ok(Some(data))
    }

    /// The part `name`, which the package must hold.
    pub(crate) fn require(&mut self, name: &str) -> Result<Vec<u8>> {
        let what = self.what;
        self.read(name)?
            .ok_or_else(|| Error::Corrupt(format!("not a {what}: it has no {name}")))
    }
}

/// Reads one part of a package of kind `what` (`declared`: the size its entry
/// claims). The sizes a zip declares may lie: what is read is counted into
/// `unpacked`, and never past the caps on one part and on all, so a zip bomb costs
/// a bounded time and memory.
pub(crate) fn read_capped(
    entry: &mut impl Read,
    declared: u64,
    name: &str,
    what: &str,
    unpacked: &mut u64,
) -> Result<Vec<u8>> {
    let cap = MAX_PART_BYTES.min(MAX_UNPACKED_BYTES.saturating_sub(*unpacked));
    let mut data = Vec::with_capacity(declared.min(16 << 20) as usize);
    entry
        .take(cap + 1)
        .read_to_end(&mut data)
        .map_err(|e| Error::Corrupt(format!("damaged {what} part {name}: {e}")))?;
    if data.len() as u64 > cap {
        return Err(Error::Corrupt(format!(
            "zip bomb: the {what} part {name} unpacks to more than {} MB",
            cap >> 20
        )));
    }
    *unpacked += data.len() as u64;
    Ok(data)
}

/// The part a relationship target or an `href` names, from the folder of the part
/// that refers to it: `../notesSlides/n1.xml` from `ppt/slides/` is
/// `ppt/notesSlides/n1.xml`; `%20` and the like are decoded, a `#fragment` dropped.
pub(crate) fn resolve(base_dir: &str, target: &str) -> String {
    let target = target.split('#').next().unwrap_or_default();
    let target = percent_decoded(target);
    let mut parts: Vec<&str> = if let Some(absolute) = target.strip_prefix('/') {
        return normalized(absolute.split('/').collect());
    } else {
        base_dir.split('/').filter(|p| !p.is_empty()).collect()
    };
    parts.extend(target.split('/'));
    normalized(parts)
}

fn normalized(parts: Vec<&str>) -> String {
    let mut out: Vec<&str> = Vec::new();
    for p in parts {
        match p {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            p => out.push(p),
        }
    }
    out.join("/")
}

/// The folder of a part's name (`ppt/slides/slide1.xml` → `ppt/slides`).
pub(crate) fn folder(name: &str) -> &str {
    name.rsplit_once('/').map_or("", |(dir, _)| dir)
}

fn percent_decoded(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = bytes.get(i + 1..i + 3)
            && let Some(b) = std::str::from_utf8(hex)
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_resolve_from_the_referring_folder() {
        assert_eq!(
            resolve("ppt/slides", "../notesSlides/notesSlide1.xml"),
            "ppt/notesSlides/notesSlide1.xml"
        );
        assert_eq!(resolve("ppt", "slides/slide2.xml"), "ppt/slides/slide2.xml");
        assert_eq!(resolve("OEBPS", "/OEBPS/a%20b.xhtml#c1"), "OEBPS/a b.xhtml");
        assert_eq!(resolve("", "EPUB/package.opf"), "EPUB/package.opf");
        assert_eq!(folder("ppt/slides/slide1.xml"), "ppt/slides");
        assert_eq!(folder("content.opf"), "");
        // A cut escape stays as it is.
        assert_eq!(resolve("", "a%2"), "a%2");
    }
}
