//! Spreadsheets (XLSX, XLSM, XLSB, XLS, ODS) with calamine: each sheet is a page,
//! its name on the first line. Rows are written a line each, cells joined by
//! ` | `, in blocks that each begin with the sheet's header row, so a chunk holding
//! any rows still says what their columns mean. Formulas give their cached values,
//! dates are written as dates, hidden sheets say so.

use crate::{Error, Result};
use calamine::{Data, Reader, SheetType, SheetVisible};
use docchat_core::{Extracted, Page};
use std::io::Cursor;

/// What marks a sheet hidden in the workbook.
pub(crate) const HIDDEN: &str = "(hidden sheet)";

/// Most characters of the rows of one block, its header row aside: a block and
/// its header fit one chunk of the embedding model (`ChunkOptions`: 200 to 256
/// tokens).
const BLOCK_CHARS: usize = 600;

/// Most cells read from one sheet: a sheet past it is cut, and says so.
const MAX_CELLS: usize = 2_000_000;

pub(crate) fn extract(bytes: &[u8]) -> Result<Extracted> {
    if encrypted(bytes) {
        return Err(Error::Encrypted(
            "the workbook is password-protected".into(),
        ));
    }
    let mut book = calamine::open_workbook_auto_from_rs(Cursor::new(bytes)).map_err(reason)?;
    let sheets = book.sheets_metadata().to_vec();
    if sheets.is_empty() {
        return Err(Error::NoText("the workbook has no sheets".into()));
    }
    let mut pages = Vec::with_capacity(sheets.len());
    for (i, sheet) in sheets.iter().enumerate() {
        let number = i as u32 + 1;
        let mut text = String::new();
        if sheet.visible != SheetVisible::Visible {
            text.push_str(HIDDEN);
            text.push('\n');
        }
        text.push_str(&format!("Sheet: {}\n", sheet.name));
        let rows = if sheet.typ == SheetType::WorkSheet {
            match book.worksheet_range(&sheet.name) {
                Ok(range) => {
                    let (h, w) = range.get_size();
                    let cut = h.saturating_mul(w) > MAX_CELLS;
                    let rows: Vec<Vec<String>> = range
                        .rows()
                        .take(if cut { MAX_CELLS / w.max(1) } else { h })
                        .map(|r| r.iter().map(cell).collect())
                        .collect();
                    let mut out = blocks(&rows);
                    if cut {
                        out.push_str(&format!("\n(the sheet is cut after {MAX_CELLS} cells)"));
                    }
                    out
                }
                // One damaged sheet does not lose the others.
                Err(e) => {
                    tracing::debug!(sheet = sheet.name, error = %e, "sheet not read");
                    String::new()
                }
            }
        } else {
            String::new()
        };
        if rows.trim().is_empty() {
            // A sheet without cells holds no text: its name alone is not indexed.
            text.clear();
        } else {
            text.push_str(&rows);
        }
        pages.push(Page { number, text });
    }
    Ok(Extracted {
        pages,
        title: None,
        author: None,
        extractor: "calamine".into(),
        ..Extracted::default()
    })
}

/// Whether the workbook is password-protected: Excel wraps an encrypted workbook
/// in an OLE2 compound file holding an `EncryptedPackage` stream; an encrypted ODS
/// lists its encryption in its manifest.
fn encrypted(bytes: &[u8]) -> bool {
    const OLE2: [u8; 8] = [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];
    if bytes.starts_with(&OLE2) {
        let name: Vec<u8> = "EncryptedPackage"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        return bytes.windows(name.len()).any(|w| w == name.as_slice());
    }
    crate::package::Package::open(bytes, "ODS")
        .and_then(|mut p| p.read("META-INF/manifest.xml"))
        .ok()
        .flatten()
        .is_some_and(|m| m.windows(15).any(|w| w == b"encryption-data"))
}

/// A calamine error as a reason the user reads.
fn reason(e: calamine::Error) -> Error {
    let text = e.to_string();
    if text.to_lowercase().contains("password") || text.to_lowercase().contains("encrypt") {
        Error::Encrypted(format!("the workbook is password-protected ({text})"))
    } else {
        Error::Corrupt(format!("cannot read the workbook: {text}"))
    }
}

/// The rows as blocks: the header row, then rows until the block is full, a blank
/// line between blocks. The header row is the first of the first rows as wide as
/// half the widest of them, and of two cells at least where any is (a title above
/// the table is kept once, before it).
/// Empty rows are left out.
fn blocks(rows: &[Vec<String>]) -> String {
    let filled = |r: &[String]| r.iter().filter(|c| !c.is_empty()).count();
    let rows: Vec<&Vec<String>> = rows.iter().filter(|r| filled(r) > 0).collect();
    let line = |r: &[String]| -> String {
        // Trailing empty cells say nothing.
        let last = r.iter().rposition(|c| !c.is_empty()).unwrap_or(0);
        r[..=last].join(" | ")
    };
    let head = &rows[..rows.len().min(HEADER_SEARCH)];
    let widest = head.iter().map(|r| filled(r)).max().unwrap_or(0);
    let Some(at) = head
        .iter()
        .position(|r| 2 * filled(r) >= widest && (filled(r) >= 2 || widest < 2))
    else {
        return String::new();
    };
    let mut out = String::new();
    for r in &rows[..at] {
        out.push_str(&line(r));
        out.push('\n');
    }
    let header = line(rows[at]);
    let mut block = String::new();
    for r in &rows[at + 1..] {
        let l = line(r);
        if !block.is_empty() && block.len() + l.len() > BLOCK_CHARS {
            out.push_str(&format!("{header}\n{block}\n"));
            block.clear();
        }
        block.push_str(&l);
        block.push('\n');
    }
    if block.is_empty() {
        out.push_str(&header);
    } else {
        out.push_str(&format!("{header}\n{block}"));
    }
    out.trim_end().to_string()
}

/// How many of a sheet's first rows may hold its header row.
const HEADER_SEARCH: usize = 10;

/// One cell as text: numbers without a needless `.0`, dates as dates, errors as
/// the sheet shows them.
fn cell(d: &Data) -> String {
    match d {
        Data::Empty => String::new(),
        Data::String(s) => s.split_whitespace().collect::<Vec<_>>().join(" "),
        Data::Float(f) => number(*f),
        Data::Int(i) => i.to_string(),
        Data::Bool(b) => if *b { "TRUE" } else { "FALSE" }.into(),
        Data::DateTime(dt) => {
            // calamine keeps a workbook's 1904 date system to itself unless its
            // `chrono` feature is on, which would rebuild chrono and every crate
            // of the Arrow stack that uses it; its debug form says it.
            let is_1904 = format!("{dt:?}").contains("is_1904: true");
            if dt.is_duration() {
                duration(dt.as_f64())
            } else {
                date_time(dt.as_f64() + if is_1904 { 1462.0 } else { 0.0 })
            }
        }
        Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::Error(e) => e.to_string(),
    }
}

fn number(f: f64) -> String {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else {
        format!("{f}")
    }
}

/// An Excel serial date (days since 1899-12-30, the fraction the time of day).
fn date_time(serial: f64) -> String {
    if !serial.is_finite() || !(0.0..3_000_000.0).contains(&serial) {
        return number(serial);
    }
    let seconds = (serial * 86_400.0).round() as i64;
    let (days, secs) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if days == 0 {
        return format!("{h:02}:{m:02}:{s:02}");
    }
    let (y, mo, d) = civil_from_days(days - 25_569);
    match (secs, s) {
        (0, _) => format!("{y:04}-{mo:02}-{d:02}"),
        (_, 0) => format!("{y:04}-{mo:02}-{d:02} {h:02}:{m:02}"),
        _ => format!("{y:04}-{mo:02}-{d:02} {h:02}:{m:02}:{s:02}"),
    }
}

/// A duration in days, as `[h]:mm:ss`.
fn duration(days: f64) -> String {
    let total = (days * 86_400.0).round() as i64;
    let sign = if total < 0 { "-" } else { "" };
    let t = total.abs();
    format!("{sign}{}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60)
}

/// The proleptic Gregorian date `days` after 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_numbers_and_durations_read_as_a_sheet_shows_them() {
        assert_eq!(date_time(45_000.0), "2023-03-15");
        assert_eq!(date_time(45_000.5), "2023-03-15 12:00");
        assert_eq!(date_time(1.0), "1899-12-31");
        assert_eq!(date_time(0.25), "06:00:00");
        assert_eq!(date_time(25_569.0), "1970-01-01");
        assert_eq!(duration(1.5), "36:00:00");
        assert_eq!(number(42.0), "42");
        assert_eq!(number(3.25), "3.25");
    }

    #[test]
    fn every_block_of_rows_starts_with_the_header() {
        let row = |cells: &[&str]| cells.iter().map(|c| c.to_string()).collect::<Vec<_>>();
        let mut rows = vec![
            row(&["", ""]),
            row(&["Sales by region", ""]),
            row(&["Region", "Sales", ""]),
        ];
        for i in 0..100 {
            rows.push(row(&[
                &format!("region number {i:03}"),
                &format!("{}", i * 7),
            ]));
        }
        let text = blocks(&rows);
        let rest = text
            .strip_prefix("Sales by region\n")
            .expect("the title, once");
        let parts: Vec<&str> = rest.split("\n\n").collect();
        assert!(parts.len() > 3, "{text}");
        for p in &parts {
            assert!(p.starts_with("Region | Sales\n"), "{p}");
            assert!(p.len() <= BLOCK_CHARS + 40, "{}", p.len());
        }
        assert!(text.contains("region number 099 | 693"));
        assert_eq!(text.matches("region number").count(), 100);
        assert_eq!(blocks(&[row(&["", ""])]), "");
        assert_eq!(blocks(&[row(&["Only", "a header"])]), "Only | a header");
    }
}
