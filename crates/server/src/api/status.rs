//! `/api/status`, `/api/events` (index progress over SSE) and `/api/resources`.

use super::wire::{
    CollectionRow, Counts, DocumentRow, IndexPlace, IndexStats, ModelIds, Requests, StatusBody,
};
use crate::error::ApiError;
use crate::keys::Principal;
use crate::state::AppState;
use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::convert::Infallible;
use std::sync::atomic::Ordering;
use tokio_stream::StreamExt;

/// `GET /api/status`: the documents, the indexer, the requests in flight, the
/// models.
pub(crate) async fn status(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<Response, ApiError> {
    let (live, switch) = state.live_and_switch();
    let mut docs = live.rag.retriever.store.documents().await?;
    // A key sees the documents and folders of its collections only.
    docs.retain(|d| who.may_read(&d.collection));
    let ix = &live.indexer;
    let mut roots = ix.roots();
    roots.retain(|r| who.may_read(&r.collection));
    let body = StatusBody {
        documents: docs.iter().map(DocumentRow::from).collect(),
        counts: Counts::of(&docs),
        queue: ix.queue_len(),
        requests: Requests {
            chat_in_flight: state.chat_slots.in_flight(),
            chat_limit: state.chat_slots.limit(),
            embedding_in_flight: state.embed_slots.in_flight(),
            searches: state.searches.in_use(),
            uploads: state.uploads.in_use(),
            event_streams: state.event_streams.in_use(),
        },
        reconciled: state.reader || ix.reconciled(),
        index: IndexPlace {
            role: match (&state.store, state.reader) {
                (_, true) => "reader",
                (Some(_), false) => "writer",
                (None, false) => "local",
            },
            store: state.store.as_deref(),
        },
        write_error: ix.write_error(),
        unavailable: ix.unavailable(),
        progress: ix.progress(),
        stats: IndexStats {
            chunks_embedded: ix.stats.chunks_embedded.load(Ordering::SeqCst),
            documents_extracted: ix.stats.documents_extracted.load(Ordering::SeqCst),
            documents_moved: ix.stats.documents_moved.load(Ordering::SeqCst),
        },
        collections: roots
            .iter()
            .map(|r| CollectionRow {
                name: &r.collection,
                path: &r.path,
            })
            .collect(),
        embedding_switch: switch,
        models: ModelIds {
            chat: live.rag.generator.id(),
            embedding: live.rag.retriever.embedder.id(),
        },
    };
    Ok(Json(body).into_response())
}

/// `GET /api/events`: indexing progress as Server-Sent Events — `progress` now and
/// after every file, `document` on every state change.
pub(crate) async fn events(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<Sse<impl futures::Stream<Item = Result<Event, Infallible>>>, ApiError> {
    use tokio_stream::wrappers::BroadcastStream;
    // Held as long as the stream is open.
    let place = state.event_streams.enter()?;
    let ix = &state.live().indexer;
    let rx = ix.events.subscribe();
    let first = docchat_service::index::progress::IndexEvent::Progress(ix.progress());
    let stream = tokio_stream::once(first)
        .chain(BroadcastStream::new(rx).filter_map(Result::ok))
        .filter_map(move |ev| {
            let data = json!(ev);
            // A document of a collection the key may not read is not told.
            let hidden = data
                .get("collection")
                .and_then(|c| c.as_str())
                .is_some_and(|c| !who.may_read(c));
            (!hidden).then(|| (ev.name(), data))
        })
        .map(move |(name, data)| {
            let _open = &place;
            Ok(Event::default().event(name).data(data.to_string()))
        });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// Resident memory and CPU time of this process, from `/proc/self`.
pub(crate) fn process_figures() -> (u64, u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces): utime is the 14th
    // field of the line, stime the 15th, in clock ticks (100 per second).
    let ticks = stat
        .rsplit_once(')')
        .map(|(_, rest)| {
            let f: Vec<&str> = rest.split_whitespace().collect();
            let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            n(11) + n(12)
        })
        .unwrap_or(0);
    (field("VmRSS:") * 1024, field("Threads:"), ticks)
}

/// `GET /api/resources`: process memory and CPU use, the machine's memory, and what
/// is loaded.
pub(crate) async fn resources(State(state): State<AppState>) -> Json<serde_json::Value> {
    let live = state.live();
    let (rss, threads, ticks) = process_figures();
    let now = std::time::Instant::now();
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let cpu_percent = {
        let mut last = state
            .cpu
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let pct = last.map(|(at, t)| {
            let secs = now.duration_since(at).as_secs_f64().max(1e-3);
            (ticks.saturating_sub(t) as f64 / 100.0) / secs / cores as f64 * 100.0
        });
        *last = Some((now, ticks));
        pct
    };
    Json(json!({
        "process": {
            "rss_bytes": rss, "threads": threads,
            "cpu_seconds": ticks as f64 / 100.0,
            "cpu_percent": cpu_percent, "cores": cores,
        },
        "system": docchat_service::models::system_memory(),
        "models": {
            "chat": { "id": live.rag.generator.id(), "loaded": true,
                      "context_size": live.rag.generator.context_size() },
            "embedding": { "id": live.rag.retriever.embedder.id(), "loaded": true,
                           "dimensions": live.rag.retriever.embedder.dim() },
        },
        "requests": {
            "chat_in_flight": state.chat_slots.in_flight(),
            "chat_limit": state.chat_slots.limit(),
        },
        "uptime_s": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
            .saturating_sub(state.started_unix),
    }))
}
