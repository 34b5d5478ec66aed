//! Scanned documents with known text: a page of a real manual rendered by poppler
//! to pixels, then wrapped as an image-only PDF page, a PNG or a TIFF.

use std::io::Write;
use std::path::Path;
use std::process::Command;

/// The page of `manuals/R-exts.pdf` the scans show (its "LinkingTo" page).
pub const SCANNED_PAGE: u32 = 20;

/// A gray image: width, height, one byte per pixel.
pub struct Gray {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<u8>,
}

/// Page `page` of `pdf` rendered at `dpi` to gray pixels by `pdftoppm`.
pub fn render(pdf: &Path, page: u32, dpi: u32) -> Gray {
    parse_pgm(&pdftoppm(pdf, page, dpi, None))
}

/// Page `page` of `pdf` rendered at `dpi` to the gray PNG file `out` by `pdftoppm`.
pub fn render_png(pdf: &Path, page: u32, dpi: u32, out: &Path) {
    pdftoppm(pdf, page, dpi, Some(out));
    assert!(out.is_file(), "{}", out.display());
}

/// Runs `pdftoppm` on one page, in gray: a PNG file at `png` (its path without
/// the extension is what poppler is given), or else a PGM on stdout, returned.
fn pdftoppm(pdf: &Path, page: u32, dpi: u32, png: Option<&Path>) -> Vec<u8> {
    let n = page.to_string();
    let mut cmd = Command::new("pdftoppm");
    cmd.args([
        "-gray",
        "-r",
        &dpi.to_string(),
        "-f",
        &n,
        "-l",
        &n,
        "-singlefile",
    ]);
    if png.is_some() {
        cmd.arg("-png");
    }
    cmd.arg(pdf);
    if let Some(png) = png {
        cmd.arg(png.with_extension(""));
    }
    let out = cmd.output().expect("pdftoppm (poppler-utils) runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A binary PGM (`P5`, 8 bits).
fn parse_pgm(bytes: &[u8]) -> Gray {
    let mut fields = Vec::new();
    let mut at = 0;
    while fields.len() < 4 {
        while bytes[at].is_ascii_whitespace() {
            at += 1;
        }
        let start = at;
        while !bytes[at].is_ascii_whitespace() {
            at += 1;
        }
        fields.push(String::from_utf8_lossy(&bytes[start..at]).into_owned());
    }
    assert_eq!(fields[0], "P5");
    assert_eq!(fields[3], "255");
    let (width, height) = (fields[1].parse().unwrap(), fields[2].parse().unwrap());
    let pixels = bytes[at + 1..].to_vec();
    assert_eq!(pixels.len(), width * height);
    Gray {
        width,
        height,
        pixels,
    }
}

/// The words of page `page` of `pdf`'s text layer, lowercased.
pub fn words_of_page(pdf: &Path, page: u32) -> Vec<String> {
    let n = page.to_string();
    let out = Command::new("pdftotext")
        .args(["-q", "-f", &n, "-l", &n])
        .arg(pdf)
        .arg("-")
        .output()
        .unwrap();
    words(&String::from_utf8_lossy(&out.stdout))
}

/// Runs of letters and digits, lowercased.
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// The share of `expected` words (counted with repeats) found in `got`.
pub fn word_recall(expected: &[String], got: &[String]) -> f64 {
    let mut have: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for w in got {
        *have.entry(w).or_default() += 1;
    }
    let mut hit = 0;
    for w in expected {
        if let Some(n) = have.get_mut(w.as_str())
            && *n > 0
        {
            *n -= 1;
            hit += 1;
        }
    }
    hit as f64 / expected.len().max(1) as f64
}

/// What a page of a hand-made PDF holds.
pub enum PdfPage<'a> {
    /// Lines of Helvetica text.
    Text(&'a [&'a str]),
    /// A scan: the image fills the page, at 300 dpi.
    Scan(&'a Gray),
}

/// A PDF of `pages`, with a correct cross-reference table.
pub fn write_pdf(path: &Path, pages: &[PdfPage<'_>]) {
    let mut objects: Vec<Vec<u8>> = Vec::new();
    // 1: catalog, 2: pages, 3: font; then per page: page, contents (, image).
    let font = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_vec();
    let mut kids = Vec::new();
    let mut body: Vec<Vec<u8>> = Vec::new();
    let mut next = 4;
    for page in pages {
        let page_id = next;
        kids.push(format!("{page_id} 0 R"));
        match page {
            PdfPage::Text(lines) => {
                let mut content = String::from("BT /F1 11 Tf 72 720 Td 14 TL\n");
                for line in *lines {
                    let escaped = line
                        .replace('\\', "\\\\")
                        .replace('(', "\\(")
                        .replace(')', "\\)");
                    content.push_str(&format!("({escaped}) Tj T*\n"));
                }
                content.push_str("ET");
                body.push(format!(
                    "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents {} 0 R >>",
                    page_id + 1
                ).into_bytes());
                body.push(stream(b"", content.as_bytes()));
                next += 2;
            }
            PdfPage::Scan(gray) => {
                let (w, h) = (
                    gray.width as f64 * 72.0 / 300.0,
                    gray.height as f64 * 72.0 / 300.0,
                );
                body.push(format!(
                    "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {w:.2} {h:.2}] /Resources << /XObject << /Im1 {} 0 R >> >> /Contents {} 0 R >>",
                    page_id + 2,
                    page_id + 1
                ).into_bytes());
                body.push(stream(
                    b"",
                    format!("q {w:.2} 0 0 {h:.2} 0 0 cm /Im1 Do Q").as_bytes(),
                ));
                let mut z =
                    flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
                z.write_all(&gray.pixels).unwrap();
                let data = z.finish().unwrap();
                let dict = format!(
                    "/Type /XObject /Subtype /Image /Width {} /Height {} /ColorSpace /DeviceGray /BitsPerComponent 8 /Filter /FlateDecode",
                    gray.width, gray.height
                );
                body.push(stream(dict.as_bytes(), &data));
                next += 3;
            }
        }
    }
    objects.push(b"<< /Type /Catalog /Pages 2 0 R >>".to_vec());
    objects.push(
        format!(
            "<< /Type /Pages /Kids [{}] /Count {} >>",
            kids.join(" "),
            pages.len()
        )
        .into_bytes(),
    );
    objects.push(font);
    objects.extend(body);
    let mut pdf = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, obj) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        pdf.extend_from_slice(obj);
        pdf.extend_from_slice(b"\nendobj\n");
    }
    let xref = pdf.len();
    pdf.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for off in offsets {
        pdf.extend_from_slice(format!("{off:010} 00000 n \n").as_bytes());
    }
    pdf.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    std::fs::write(path, pdf).unwrap();
}

fn stream(dict: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = b"<< ".to_vec();
    out.extend_from_slice(dict);
    out.extend_from_slice(format!(" /Length {} >>\nstream\n", data.len()).as_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\nendstream");
    out
}

/// A multi-page TIFF (uncompressed, 8-bit gray), one frame per image.
pub fn write_tiff(path: &Path, frames: &[&Gray]) {
    let mut out = b"II*\0\0\0\0\0".to_vec();
    let mut link_at = 4; // where the offset of the next IFD goes
    for gray in frames {
        let data_at = out.len() as u32;
        out.extend_from_slice(&gray.pixels);
        if out.len() % 2 == 1 {
            out.push(0);
        }
        let ifd_at = out.len() as u32;
        out[link_at..link_at + 4].copy_from_slice(&ifd_at.to_le_bytes());
        // (tag, type, value): 3 = SHORT, 4 = LONG; one value each.
        let entries: [(u16, u16, u32); 10] = [
            (256, 4, gray.width as u32),                 // ImageWidth
            (257, 4, gray.height as u32),                // ImageLength
            (258, 3, 8),                                 // BitsPerSample
            (259, 3, 1),                                 // Compression: none
            (262, 3, 1),                                 // Photometric: black is zero
            (273, 4, data_at),                           // StripOffsets
            (277, 3, 1),                                 // SamplesPerPixel
            (278, 4, gray.height as u32),                // RowsPerStrip
            (279, 4, (gray.width * gray.height) as u32), // StripByteCounts
            (284, 3, 1),                                 // PlanarConfiguration
        ];
        out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        for (tag, kind, value) in entries {
            out.extend_from_slice(&tag.to_le_bytes());
            out.extend_from_slice(&kind.to_le_bytes());
            out.extend_from_slice(&1u32.to_le_bytes());
            if kind == 3 {
                out.extend_from_slice(&(value as u16).to_le_bytes());
                out.extend_from_slice(&[0, 0]);
            } else {
                out.extend_from_slice(&value.to_le_bytes());
            }
        }
        link_at = out.len();
        out.extend_from_slice(&[0, 0, 0, 0]);
    }
    std::fs::write(path, out).unwrap();
}
