//! `docchat bench ocr FOLDER`: what OCR adds on a folder of PDFs and images. Each
//! file is read as the indexer reads it, in the `docchat extract` child: first
//! for its text layer only (the pages OCR would read are listed), then, when it
//! has such pages, with OCR, timing every page. The report says how many files
//! had no text without OCR and how many of them OCR made readable, and the time
//! per page (rendering and recognition).

use anyhow::{Result, bail};
use docchat_core::{FileKind, ocr_pages};
use docchat_service::index::isolate::{self, ExtractLimits, Extraction, OcrPass};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

/// The figures of one run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct OcrReport {
    /// PDFs and images in the folder.
    pub files: usize,
    /// Files with no text without OCR ("no text" failures).
    pub no_text_without_ocr: usize,
    /// Of those, files with text once OCR read them.
    pub read_by_ocr: usize,
    /// Files with a text layer that also had pages to read by OCR.
    pub mixed: usize,
    /// Pages OCR read.
    pub pages: usize,
    /// Pages OCR read and found no words on (a picture, a drawing, noise).
    pub pages_empty: usize,
    /// Pages OCR could not read (failed or timed out).
    pub pages_failed: usize,
    /// Median time per page (render and recognition), ms.
    pub page_ms_median: f64,
    /// 95th percentile of the time per page, ms.
    pub page_ms_p95: f64,
    /// Slowest page, ms.
    pub page_ms_max: f64,
    /// Wall time of the OCR readings, s.
    pub ocr_s: f64,
    /// Languages OCR read with.
    pub languages: Vec<String>,
    /// The files OCR made readable, with their pages read.
    pub readable: Vec<(String, usize)>,
}

/// Runs the benchmark over the files directly in `folder`.
pub async fn run(folder: &Path, limits: &ExtractLimits) -> Result<OcrReport> {
    let Some(opts) = &limits.ocr else {
        bail!("OCR is off: Tesseract and its language data are not installed, or ocr = false");
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(folder)?
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| {
            matches!(
                FileKind::from_path(p),
                Some(FileKind::Pdf | FileKind::Image)
            )
        })
        .collect();
    files.sort();
    let mut report = OcrReport {
        files: files.len(),
        languages: opts.languages.clone(),
        ..OcrReport::default()
    };
    let mut page_ms: Vec<f64> = Vec::new();
    let ignore = |_: u32, _: u32| {};
    for (i, file) in files.iter().enumerate() {
        let name = file
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let image = FileKind::from_path(file) == Some(FileKind::Image);
        // Without OCR: the text layer, and the pages OCR would read.
        let (had_text, wanted) = if image {
            (false, 1)
        } else {
            match isolate::extract(file, limits, OcrPass::Detect, &ignore).await? {
                Extraction::Ok(e) => (e.text_chars() > 0, e.ocr_wanted.len()),
                Extraction::Failed(_) => (false, 0),
            }
        };
        if !had_text {
            report.no_text_without_ocr += 1;
        }
        if wanted == 0 {
            continue;
        }
        // With OCR, timing each page from the child's progress.
        let marks: Mutex<Vec<Instant>> = Mutex::new(Vec::new());
        let on_page = |_: u32, _: u32| {
            marks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(Instant::now());
        };
        let started = Instant::now();
        let outcome = isolate::extract(file, limits, OcrPass::Run, &on_page).await?;
        report.ocr_s += started.elapsed().as_secs_f64();
        let marks = marks.into_inner().unwrap_or_default();
        page_ms.extend(
            marks
                .windows(2)
                .map(|w| (w[1] - w[0]).as_secs_f64() * 1000.0),
        );
        match outcome {
            Extraction::Ok(e) => {
                let read = ocr_pages(&e.extractor).len();
                let failed = e.ocr.as_ref().map_or(0, |o| o.failed.len());
                report.pages += read;
                report.pages_failed += failed;
                report.pages_empty += wanted.saturating_sub(read + failed);
                if had_text {
                    report.mixed += 1;
                } else {
                    report.read_by_ocr += 1;
                    report.readable.push((name.clone(), read));
                }
            }
            Extraction::Failed(why) => {
                if why.to_string().contains("found no words") {
                    report.pages_empty += wanted;
                } else {
                    report.pages_failed += wanted;
                }
                eprintln!("ocr: {name}: {why}");
            }
        }
        eprintln!(
            "ocr: {}/{}: {name}: {wanted} page(s) in {:.1} s",
            i + 1,
            files.len(),
            started.elapsed().as_secs_f64()
        );
    }
    page_ms.sort_by(f64::total_cmp);
    report.page_ms_median = crate::engine::median(&page_ms);
    report.page_ms_p95 = percentile(&page_ms, 0.95);
    report.page_ms_max = page_ms.last().copied().unwrap_or(0.0);
    Ok(report)
}

/// The `q` quantile of sorted `v` (nearest rank; 0 when empty).
fn percentile(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let rank = (q * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

/// The report as text.
pub fn table(r: &OcrReport) -> String {
    format!(
        "files (PDF and images)        {}\n\
         no text without OCR           {}\n\
         of those, readable with OCR   {}\n\
         with text, and scanned pages  {}\n\
         pages read by OCR             {} (and {} with no words, {} failed)\n\
         time per page                 median {:.0} ms, p95 {:.0} ms, max {:.0} ms\n\
         OCR wall time                 {:.1} s\n\
         languages                     {}\n",
        r.files,
        r.no_text_without_ocr,
        r.read_by_ocr,
        r.mixed,
        r.pages,
        r.pages_empty,
        r.pages_failed,
        r.page_ms_median,
        r.page_ms_p95,
        r.page_ms_max,
        r.ocr_s,
        r.languages.join("+"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.95), 19.0);
        assert_eq!(percentile(&v, 0.5), 10.0);
        assert_eq!(percentile(&[], 0.95), 0.0);
        assert_eq!(percentile(&[7.0], 0.95), 7.0);
    }
}
