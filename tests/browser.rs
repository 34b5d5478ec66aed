//! The web UI in a real headless Chromium (driven by playwright-core, installed by
//! scripts/setup.sh) against a real server: ask and watch the answer stream, open a
//! cited page, find the chat after a reload, drop a file and see it indexed, drop a
//! scanned page and see its source marked as read by OCR, ask about one document as a
//! whole, stop a generation; then the same in Italian (every string translated,
//! numbers the Italian way, the language switch in Settings). Screenshots of the
//! main screens go to target/ui-screenshots.

use crate::common::{Server, corpus, models_dir, settled};
use std::process::Command;
use std::time::Duration;

#[test]
fn the_web_ui_in_a_real_browser() {
    let tmp = tempfile::tempdir().unwrap();
    let docs = tmp.path().join("papers");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::copy(
        corpus().join("pdf-wild/tracemonkey.pdf"),
        docs.join("tracemonkey.pdf"),
    )
    .unwrap();
    let watch = tmp.path().join("watch-dirs");
    std::fs::write(&watch, format!("{} = papers\n", docs.display())).unwrap();
    let upload = tmp.path().join("dropped-note.md");
    std::fs::write(
        &upload,
        "# Dropped note\n\nThe archive room key is kept by the porter.\n",
    )
    .unwrap();

    // A page of a manual as a scanner writes it, dropped later: read by OCR.
    let scan = tmp.path().join("scanned-page.png");
    crate::common::scan::render_png(
        &corpus().join("manuals/R-exts.pdf"),
        crate::common::scan::SCANNED_PAGE,
        300,
        &scan,
    );

    let server = Server::start(&data_dir(tmp.path()), &watch);
    server.wait_status("the paper", Duration::from_secs(300), |s| {
        settled(s) && s["counts"]["indexed"] == 1
    });
    let browser_dir = models_dir().join("../browser/node_modules");
    assert!(
        browser_dir.join("playwright-core").is_dir(),
        "playwright-core is missing at {} (run scripts/setup.sh)",
        browser_dir.display()
    );
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("../ui-screenshots");
    let out = Command::new("node")
        .arg(crate::common::manifest_dir().join("../../tests/browser/ui.mjs"))
        .arg(&server.base)
        .arg(&shots)
        .arg(&upload)
        .arg(&scan)
        .env("DOCCHAT_BROWSER_DIR", &browser_dir)
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the browser checks failed:\n{stdout}\n{stderr}"
    );
    println!("browser: {}", stdout.trim());
    // The same server in a browser whose language is Italian.
    let out = Command::new("node")
        .arg(crate::common::manifest_dir().join("../../tests/browser/italian.mjs"))
        .arg(&server.base)
        .arg(&shots)
        .env("DOCCHAT_BROWSER_DIR", &browser_dir)
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "the checks in Italian failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!(
        "browser (it): {}",
        String::from_utf8_lossy(&out.stdout).trim()
    );
    println!("screenshots in {}", shots.display());
    for shot in [
        "1-answer.png",
        "2-drop.png",
        "3-settings.png",
        "4-narrow.png",
        "5-dark.png",
        "6-reading.png",
        "7-italian.png",
        "8-italian-settings.png",
    ] {
        let len = std::fs::metadata(shots.join(shot)).map_or(0, |m| m.len());
        assert!(len > 10_000, "{shot} was not taken");
    }
    // The dropped files are in the watched folder and indexed.
    assert!(docs.join("dropped-note.md").is_file());
    assert!(docs.join("scanned-page.png").is_file());
    let status = server.get("/api/status");
    assert_eq!(status["counts"]["indexed"], 3, "{status:#}");
}

fn data_dir(tmp: &std::path::Path) -> std::path::PathBuf {
    tmp.join("data")
}
