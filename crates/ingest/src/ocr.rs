//! OCR: PDF pages without a text layer, and images, read by Tesseract; a PDF page
//! is rendered by poppler's `pdftoppm` first. The decision is per page: only the
//! pages whose text layer is missing or nearly empty, and which hold an image, are
//! read. Both tools run at the lowest CPU priority with one thread each, inside the
//! extraction child's time and memory limits: a question asked meanwhile still
//! gets the CPU.

use crate::pdf::run_tool;
use crate::{Error, Result, split_pages};
use docchat_core::{Extracted, OcrReport, Page};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A page with fewer non-whitespace characters than this in its text layer is
/// "nearly empty": a scan with a page number or a running header.
pub(crate) const SPARSE_PAGE_CHARS: usize = 40;
/// An image of at least this many pixels makes a sparse page worth reading (a
/// scan is millions; a logo or a rule is not).
const MIN_IMAGE_PIXELS: u64 = 100_000;
/// Resolution pages are rendered at for OCR.
const RENDER_DPI: f64 = 300.0;
/// The longest side of a rendered page, in pixels: an A4 page at 300 dpi. A poster
/// page is rendered at a lower resolution, never to gigabytes.
const RENDER_LONG_SIDE: f64 = 3508.0;
/// Time limit of listing a PDF's images.
const LIST_TIMEOUT: Duration = Duration::from_secs(60);

/// How OCR reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OcrOptions {
    /// Tesseract language codes, the first the most likely (`eng`, `ita`, …).
    pub languages: Vec<String>,
    /// Time limit of rendering or reading one page.
    pub page_timeout: Duration,
}

impl OcrOptions {
    /// The installed languages, with a limit per page of `page_timeout`.
    pub fn installed(page_timeout: Duration) -> Self {
        Self {
            languages: installed_languages(),
            page_timeout,
        }
    }
}

/// Languages docchat prefers, in this order, when the machine has their data.
const PREFERRED: &[&str] = &["eng", "ita", "deu", "fra", "spa"];

/// The languages Tesseract has data for here (without its script-detection and
/// equation models), English first and the other major European languages next;
/// empty when Tesseract is not installed.
pub fn installed_languages() -> Vec<String> {
    let Ok(out) = run_tool(Command::new("tesseract").arg("--list-langs"), LIST_TIMEOUT) else {
        return Vec::new();
    };
    let text = String::from_utf8_lossy(&out);
    let mut found: Vec<String> = text
        .lines()
        .skip_while(|l| !l.starts_with("List of available languages"))
        .skip(1)
        .map(str::trim)
        .filter(|l| !l.is_empty() && *l != "osd" && *l != "equ")
        .map(str::to_string)
        .collect();
    found.sort_by_key(|l| {
        (
            PREFERRED
                .iter()
                .position(|p| p == l)
                .unwrap_or(PREFERRED.len()),
            l.clone(),
        )
    });
    found
}

/// The engine and its version, e.g. `tesseract 5.3.0`; `None` when Tesseract is
/// not installed.
pub fn engine() -> Option<String> {
    let out = run_tool(Command::new("tesseract").arg("--version"), LIST_TIMEOUT).ok()?;
    let text = String::from_utf8_lossy(&out);
    let first = text.lines().next()?.trim();
    Some(first.to_string()).filter(|s| s.starts_with("tesseract"))
}

/// How far OCR of the current file is: pages done of pages to read.
pub type Progress<'a> = &'a mut dyn FnMut(u32, u32);

/// The pages of a PDF that OCR should read: those among `pages` (all the PDF's
/// pages, `count` of them) whose text layer is nearly empty, and which hold a
/// large image. When the images cannot be listed, every nearly empty page.
pub(crate) fn wanted_pages(path: &Path, pages: &[Page], count: u32) -> Vec<u32> {
    let count = count.max(pages.len() as u32);
    let sparse: Vec<u32> = (1..=count)
        .filter(|n| {
            pages.iter().find(|p| p.number == *n).is_none_or(|p| {
                p.text.chars().filter(|c| !c.is_whitespace()).count() < SPARSE_PAGE_CHARS
            })
        })
        .collect();
    if sparse.is_empty() {
        return sparse;
    }
    match image_pages(path) {
        Ok(with_images) => sparse
            .into_iter()
            .filter(|n| with_images.contains(n))
            .collect(),
        Err(e) => {
            tracing::debug!(path = %path.display(), error = %e, "pdfimages failed; reading every sparse page");
            sparse
        }
    }
}

/// The pages that hold a large image, from `pdfimages -list`.
fn image_pages(path: &Path) -> std::result::Result<Vec<u32>, String> {
    let out = run_tool(
        Command::new("pdfimages").arg("-list").arg(path),
        LIST_TIMEOUT,
    )?;
    Ok(parse_image_list(&String::from_utf8_lossy(&out)))
}

/// Pages with an image of at least [`MIN_IMAGE_PIXELS`] in `pdfimages -list`
/// output (soft masks do not count: they belong to an image already counted).
fn parse_image_list(list: &str) -> Vec<u32> {
    let mut pages: Vec<u32> = list
        .lines()
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let page = cols.first()?.parse::<u32>().ok()?;
            let kind = *cols.get(2)?;
            let w = cols.get(3)?.parse::<u64>().ok()?;
            let h = cols.get(4)?.parse::<u64>().ok()?;
            (kind != "smask" && w * h >= MIN_IMAGE_PIXELS).then_some(page)
        })
        .collect();
    pages.dedup();
    pages
}

/// Reads `wanted` pages of the PDF at `path` by OCR into `pages` (a page read
/// replaces its nearly empty text layer; a page that fails keeps it and is
/// reported). Returns what OCR did.
pub(crate) fn read_pdf_pages(
    path: &Path,
    pages: &mut Vec<Page>,
    wanted: &[u32],
    opts: &OcrOptions,
    progress: Progress<'_>,
) -> Result<OcrReport> {
    let engine = engine().ok_or_else(|| {
        Error::NoText("no text layer (scanned?), and Tesseract, which would read it, is not installed (scripts/setup.sh installs it)".into())
    })?;
    let started = Instant::now();
    let work = WorkDir::new()?;
    let mut report = OcrReport {
        engine,
        languages: opts.languages.clone(),
        ..OcrReport::default()
    };
    let total = wanted.len() as u32;
    progress(0, total);
    for (i, &number) in wanted.iter().enumerate() {
        match read_pdf_page(path, number, opts, &work.0) {
            Ok(text) => {
                // OCR's text replaces the page's nearly empty text layer, unless it
                // found less (a page whose image holds no words keeps its own).
                let text = clean(&text);
                let found = letters(&text);
                match pages.iter_mut().find(|p| p.number == number) {
                    Some(page) if letters(&page.text) >= found => {}
                    Some(page) => {
                        page.text = text;
                        report.pages.push(number);
                    }
                    None if found > 0 => {
                        pages.push(Page { number, text });
                        report.pages.push(number);
                    }
                    None => {}
                }
            }
            Err(e) => report.failed.push((number, e)),
        }
        progress(i as u32 + 1, total);
    }
    pages.sort_by_key(|p| p.number);
    // Pages before the last that no extractor listed (a PDF whose text layer
    // ends early) are there, empty, so page numbers stay those of the PDF.
    let last = pages.last().map_or(0, |p| p.number);
    for n in 1..=last {
        if !pages.iter().any(|p| p.number == n) {
            pages.push(Page {
                number: n,
                text: String::new(),
            });
        }
    }
    pages.sort_by_key(|p| p.number);
    report.ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

fn read_pdf_page(
    path: &Path,
    number: u32,
    opts: &OcrOptions,
    work: &Path,
) -> std::result::Result<String, String> {
    let prefix = work.join(format!("page-{number}"));
    let n = number.to_string();
    let dpi = page_size(path, number).map_or(RENDER_DPI, |(w, h)| {
        (RENDER_LONG_SIDE * 72.0 / w.max(h).max(1.0)).clamp(10.0, RENDER_DPI)
    });
    run_tool(
        background("pdftoppm")
            .args(["-gray", "-png", "-singlefile", "-f", &n, "-l", &n])
            .args(["-r", &format!("{dpi:.0}")])
            .arg(path)
            .arg(&prefix),
        opts.page_timeout,
    )
    .map_err(|e| format!("rendering the page failed ({e})"))?;
    let image = prefix.with_extension("png");
    let text = tesseract(&image, opts);
    let _ = std::fs::remove_file(&image);
    text
}

/// The size of page `number` in points, from `pdfinfo`.
fn page_size(path: &Path, number: u32) -> Option<(f64, f64)> {
    let n = number.to_string();
    let out = run_tool(
        Command::new("pdfinfo").args(["-f", &n, "-l", &n]).arg(path),
        LIST_TIMEOUT,
    )
    .ok()?;
    parse_page_size(&String::from_utf8_lossy(&out))
}

/// `Page    3 size: 612 x 792 pts (letter)` (or `Page size:` for one page).
fn parse_page_size(info: &str) -> Option<(f64, f64)> {
    let line = info
        .lines()
        .find(|l| l.starts_with("Page") && l.contains("size:"))?;
    let (_, dims) = line.split_once("size:")?;
    let mut parts = dims.split_whitespace();
    let w = parts.next()?.parse().ok()?;
    let _x = parts.next()?;
    let h = parts.next()?.parse().ok()?;
    Some((w, h))
}

/// An image file: every frame (a multi-page TIFF's pages) is a page.
pub(crate) fn read_image(
    path: &Path,
    opts: &OcrOptions,
    progress: Progress<'_>,
) -> Result<Extracted> {
    let engine = engine().ok_or_else(|| {
        Error::NoText(
            "images are read by OCR, and Tesseract is not installed (scripts/setup.sh installs it)"
                .into(),
        )
    })?;
    let started = Instant::now();
    progress(0, 1);
    let text = tesseract(path, opts).map_err(|e| {
        if e.contains("timed out") {
            Error::Corrupt(format!("OCR of the image {e}"))
        } else {
            Error::Corrupt(format!("the image could not be read ({e})"))
        }
    })?;
    progress(1, 1);
    let mut text = text;
    // Tesseract ends every frame with a form feed.
    while text.ends_with(['\u{c}', '\n', ' ']) {
        text.pop();
    }
    let pages: Vec<Page> = split_pages(&text)
        .into_iter()
        .map(|p| Page {
            number: p.number,
            text: clean(&p.text),
        })
        .collect();
    let report = OcrReport {
        engine,
        languages: opts.languages.clone(),
        pages: pages.iter().map(|p| p.number).collect(),
        failed: Vec::new(),
        ms: started.elapsed().as_millis() as u64,
    };
    Ok(Extracted {
        pages,
        extractor: format!("image{}", report.describe()),
        ocr: Some(report),
        ..Extracted::default()
    })
}

fn tesseract(image: &Path, opts: &OcrOptions) -> std::result::Result<String, String> {
    let mut cmd = background("tesseract");
    cmd.arg(image).arg("stdout");
    if !opts.languages.is_empty() {
        cmd.arg("-l").arg(opts.languages.join("+"));
    }
    let out = run_tool(&mut cmd, opts.page_timeout).map_err(|e| format!("OCR failed ({e})"))?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Non-whitespace characters.
fn letters(text: &str) -> usize {
    text.chars().filter(|c| !c.is_whitespace()).count()
}

/// A tool that runs at the lowest CPU priority, on one thread.
fn background(tool: &str) -> Command {
    let mut cmd = Command::new("nice");
    cmd.args(["-n", "19", tool]).env("OMP_THREAD_LIMIT", "1");
    cmd
}

/// OCR text with line-end hyphens joined and runs of blank lines shortened.
fn clean(text: &str) -> String {
    let joined = crate::pdf::dehyphenate(text);
    let mut out = String::with_capacity(joined.len());
    let mut blank = 0;
    for line in joined.lines() {
        let line = line.trim_end();
        if line.is_empty() {
            blank += 1;
            if blank > 1 {
                continue;
            }
        } else {
            blank = 0;
        }
        out.push_str(line);
        out.push('\n');
    }
    out.trim().to_string()
}

/// A private folder for rendered pages, removed when dropped.
struct WorkDir(PathBuf);

impl WorkDir {
    fn new() -> Result<Self> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "docchat-ocr-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir)?;
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(Self(dir))
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_images_mark_their_pages() {
        let list = "page   num  type   width height color comp bpc  enc interp  object ID x-ppi y-ppi size ratio\n\
            --------------------------------------------------------------------------------------------\n\
               1     0 image    2480  3508  gray    1   8  jpeg   no         7  0   300   300  512K 6.0%\n\
               1     1 smask    2480  3508  gray    1   8  image  no         8  0   300   300  1K 0.0%\n\
               2     2 image      64    64  rgb     3   8  image  no        12  0    72    72  1K 10%\n\
               3     3 stencil  2550  3300  -       1   1  ccitt  no        15  0   300   300  40K 3.9%\n";
        assert_eq!(parse_image_list(list), vec![1, 3]);
    }

    #[test]
    fn page_sizes_are_read() {
        let info =
            "Pages:           236\nPage   20 size: 612 x 792 pts (letter)\nPage   20 rot:  0\n";
        assert_eq!(parse_page_size(info), Some((612.0, 792.0)));
        assert_eq!(
            parse_page_size("Page size:       399 x 400.5 pts"),
            Some((399.0, 400.5))
        );
        assert_eq!(parse_page_size("Pages: 1"), None);
    }

    #[test]
    fn ocr_text_is_tidied() {
        assert_eq!(
            clean("  inter-\nface\n\n\n\nnext  \n"),
            "inter-\nface\n\nnext".replace("inter-\nface", "interface")
        );
    }

    #[test]
    fn languages_put_english_first() {
        // Whatever is installed here, the order is the preferred one.
        let langs = installed_languages();
        let ranks: Vec<usize> = langs
            .iter()
            .map(|l| PREFERRED.iter().position(|p| p == l).unwrap_or(99))
            .collect();
        assert!(ranks.windows(2).all(|w| w[0] <= w[1]), "{langs:?}");
        assert!(!langs.iter().any(|l| l == "osd"));
    }
}
