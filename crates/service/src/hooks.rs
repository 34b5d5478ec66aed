//! Pause points: places where a test can stop the process on purpose, to make a race
//! happen every time instead of by luck.
//!
//! With `DOCCHAT_TEST_PAUSE=NAME:DIR` in the environment, the process reaching the
//! point `NAME` creates `DIR/NAME.paused` and waits until `DIR/NAME.go` exists; once it
//! does, the point lets everything through. Without the variable (always, outside the
//! tests) a pause point costs one comparison.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

/// The indexer has appended the chunks of new documents and not yet written their
/// manifest rows.
pub const NEW_ROWS: &str = "new-rows";
/// A search has its place and has not started.
pub const SEARCH: &str = "search";
/// An extraction child has saved what it extracted and not yet exited (the child
/// keeps `DOCCHAT_TEST_PAUSE` from the server's environment).
pub const EXTRACTED: &str = "extracted";

fn configured() -> Option<&'static (String, PathBuf)> {
    static PAUSE: OnceLock<Option<(String, PathBuf)>> = OnceLock::new();
    PAUSE
        .get_or_init(|| {
            let v = std::env::var("DOCCHAT_TEST_PAUSE").ok()?;
            let (name, dir) = v.split_once(':')?;
            Some((name.to_string(), PathBuf::from(dir)))
        })
        .as_ref()
}

/// The file whose existence ends the pause at `name`, when a test holds it.
fn held(name: &str) -> Option<PathBuf> {
    let (want, dir) = configured()?;
    if want != name {
        return None;
    }
    let go = dir.join(format!("{name}.go"));
    if go.exists() {
        return None;
    }
    let _ = std::fs::write(dir.join(format!("{name}.paused")), b"");
    tracing::warn!(point = name, "paused for a test");
    Some(go)
}

/// Waits at the pause point `name` while a test holds it (see the module's text).
pub async fn pause(name: &str) {
    if let Some(go) = held(name) {
        while !go.exists() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// [`pause`] for code that is not async (the extraction child).
pub fn pause_blocking(name: &str) {
    if let Some(go) = held(name) {
        while !go.exists() {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
