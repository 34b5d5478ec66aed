//! Live indexing progress: per-document state changes and overall figures (files
//! done of total, chunks/s, ETA), broadcast to `/api/events` subscribers.

use serde::Serialize;
use std::sync::Mutex;
use std::time::Instant;
use tokio::sync::broadcast;

/// Events kept for a slow subscriber before it starts missing some.
const CHANNEL: usize = 1024;

/// What happened to a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    /// Being (re)indexed.
    Pending,
    /// Searchable.
    Indexed,
    /// Could not be indexed (`error` says why).
    Failed,
    /// Gone from the index.
    Removed,
    /// Renamed or moved (`from` says from where).
    Moved,
}

/// A document's new state.
#[derive(Debug, Clone, Serialize)]
pub struct DocumentEvent {
    /// Document id.
    pub id: String,
    /// Collection.
    pub collection: String,
    /// Path in the collection.
    pub path: String,
    /// The change.
    pub state: Change,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Pages.
    pub pages: u32,
    /// Chunks.
    pub chunks: u32,
    /// `collection/path` before a move.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

/// Overall progress of the current burst of work (since the queue was last empty).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Progress {
    /// Files handled in this burst.
    pub done: u64,
    /// Files in this burst (handled and waiting).
    pub total: u64,
    /// Files waiting or in hand now.
    pub queued: usize,
    /// Chunks embedded in this burst.
    pub chunks_embedded: u64,
    /// Embedding rate in this burst.
    pub chunks_per_s: f64,
    /// Estimated seconds left (after the first file).
    pub eta_s: Option<f64>,
    /// Collections whose indexing is paused.
    pub paused: Vec<String>,
    /// OCR of the file in hand, while it runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ocr: Option<OcrProgress>,
}

/// How far OCR of the file in hand is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OcrProgress {
    /// Collection of the file.
    pub collection: String,
    /// The file's path in its collection.
    pub path: String,
    /// Pages read.
    pub done: u32,
    /// Pages to read.
    pub total: u32,
}

/// An event of `/api/events`.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum IndexEvent {
    /// A document changed state.
    Document(DocumentEvent),
    /// Overall progress.
    Progress(Progress),
}

impl IndexEvent {
    /// The SSE event name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Document(_) => "document",
            Self::Progress(_) => "progress",
        }
    }
}

#[derive(Debug)]
struct Burst {
    started: Instant,
    done: u64,
    total: u64,
    chunks_at_start: u64,
}

/// Counts a burst of work and broadcasts events.
#[derive(Debug)]
pub struct Tracker {
    tx: broadcast::Sender<IndexEvent>,
    burst: Mutex<Option<Burst>>,
    ocr: Mutex<Option<OcrProgress>>,
}

impl Default for Tracker {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(CHANNEL).0,
            burst: Mutex::new(None),
            ocr: Mutex::new(None),
        }
    }
}

impl Tracker {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Burst>> {
        self.burst.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new subscriber.
    pub fn subscribe(&self) -> broadcast::Receiver<IndexEvent> {
        self.tx.subscribe()
    }

    /// Sends `event` to the subscribers, if any.
    pub fn send(&self, event: IndexEvent) {
        let _ = self.tx.send(event);
    }

    /// `n` files joined the queue; `chunks_now` is the embedding counter.
    pub fn added(&self, n: u64, chunks_now: u64) {
        let mut b = self.lock();
        let burst = b.get_or_insert_with(|| Burst {
            started: Instant::now(),
            done: 0,
            total: 0,
            chunks_at_start: chunks_now,
        });
        burst.total += n;
    }

    /// A file was handled (or dropped from the queue).
    pub fn finished(&self, n: u64) {
        if let Some(b) = self.lock().as_mut() {
            b.done = (b.done + n).min(b.total);
        }
    }

    /// OCR of the file in hand has read `done` of `total` pages (`None`: it is
    /// over).
    pub fn ocr(&self, now: Option<OcrProgress>) {
        *self.ocr.lock().unwrap_or_else(|e| e.into_inner()) = now;
    }

    /// The burst ended (the queue is empty).
    pub fn idle(&self) {
        *self.lock() = None;
    }

    /// The figures now.
    pub fn progress(&self, queued: usize, chunks_now: u64, paused: Vec<String>) -> Progress {
        let ocr = self.ocr.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let b = self.lock();
        let Some(b) = b.as_ref() else {
            return Progress {
                queued,
                paused,
                ocr,
                ..Progress::default()
            };
        };
        let secs = b.started.elapsed().as_secs_f64();
        let chunks = chunks_now.saturating_sub(b.chunks_at_start);
        let left = b.total.saturating_sub(b.done);
        Progress {
            done: b.done,
            total: b.total,
            queued,
            chunks_embedded: chunks,
            chunks_per_s: if secs > 0.0 {
                chunks as f64 / secs
            } else {
                0.0
            },
            eta_s: (b.done > 0).then(|| secs / b.done as f64 * left as f64),
            paused,
            ocr,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_count_and_estimate() {
        let t = Tracker::default();
        assert_eq!(t.progress(0, 0, vec![]).total, 0);
        t.added(4, 100);
        t.finished(1);
        let p = t.progress(3, 130, vec!["a".into()]);
        assert_eq!(
            (p.done, p.total, p.queued, p.chunks_embedded),
            (1, 4, 3, 30)
        );
        assert!(p.eta_s.is_some());
        assert_eq!(p.paused, ["a"]);
        t.finished(10);
        assert_eq!(
            t.progress(0, 130, vec![]).done,
            4,
            "done never passes total"
        );
        t.idle();
        t.added(1, 500);
        assert_eq!(
            t.progress(1, 500, vec![]).total,
            1,
            "a new burst starts from zero"
        );
    }

    #[test]
    fn events_reach_subscribers_as_tagged_json() {
        let t = Tracker::default();
        let mut rx = t.subscribe();
        t.send(IndexEvent::Progress(Progress::default()));
        let ev = rx.try_recv().unwrap();
        assert_eq!(ev.name(), "progress");
        let json = serde_json::to_value(&ev).unwrap();
        assert_eq!(json["type"], "progress");
        assert_eq!(json["done"], 0);
    }
}
