//! docchat's HTTP server: the web UI, its API (`/api/*`: status, chat over SSE,
//! chats, search, collections, documents, models) and the OpenAI-compatible API
//! (`/v1`), every route behind one [`guard::Guard`]. Handlers translate HTTP to the
//! service (`docchat-service`) and back; what docchat does lives there.

pub mod api;
pub mod error;
pub mod guard;
pub mod keys;
pub mod openai;
pub mod state;
pub mod upload;

pub use error::ApiError;
pub use state::{AppState, Limits};

use axum::Router;
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use guard::Guard;
use std::future::Future;
use std::sync::Arc;

const INDEX_HTML: &str = include_str!("../web/index.html");
const APP_JS: &str = include_str!("../web/app.js");
const I18N_JS: &str = include_str!("../web/i18n.js");
const STYLE_CSS: &str = include_str!("../web/style.css");
const VIEW_HTML: &str = include_str!("../web/view.html");
const VIEW_JS: &str = include_str!("../web/view.js");

/// Serves `state` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    guard: Guard,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Streamed answers are many small writes: send each at once instead of holding
    // it until the previous one is acknowledged.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    axum::serve(listener, router(state, Arc::new(guard)))
        .with_graceful_shutdown(shutdown)
        .await
}

/// The application's routes, every one behind `guard`.
pub fn router(state: AppState, guard: Arc<Guard>) -> Router {
    let login = Router::new()
        .route("/login", get(guard::login_page).post(guard::login))
        .with_state(Arc::clone(&guard));
    Router::new()
        .route("/", get(|| async { Html(INDEX_HTML) }))
        .route(
            "/app.js",
            get(|| async { asset(APP_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/i18n.js",
            get(|| async { asset(I18N_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/style.css",
            get(|| async { asset(STYLE_CSS, "text/css; charset=utf-8") }),
        )
        .route("/api/status", get(api::status::status))
        .route("/api/chat", post(api::chat::chat))
        .route("/api/chats", get(api::chats::list_chats))
        .route(
            "/api/chats/{id}",
            get(api::chats::get_chat)
                .patch(api::chats::rename_chat)
                .delete(api::chats::delete_chat),
        )
        .route("/api/chats/{id}/export", get(api::chats::export_chat))
        .route("/api/search", post(api::chat::search))
        .route(
            "/api/documents/{id}/file",
            get(api::documents::document_file),
        )
        .route(
            "/api/documents/{id}/text",
            get(api::documents::document_text),
        )
        .route("/view.html", get(|| async { Html(VIEW_HTML) }))
        .route(
            "/view.js",
            get(|| async { asset(VIEW_JS, "text/javascript; charset=utf-8") }),
        )
        .route("/api/events", get(api::status::events))
        .route(
            "/api/collections",
            get(api::collections::list_collections).post(api::collections::add_collection),
        )
        .route(
            "/api/collections/{name}",
            axum::routing::delete(api::collections::remove_collection),
        )
        .route(
            "/api/collections/{name}/files",
            post(api::collections::upload),
        )
        .route(
            "/api/collections/{name}/{action}",
            post(api::collections::collection_action),
        )
        .route("/api/models", get(api::models::models))
        .route("/api/models/use", post(api::models::use_model))
        .route("/api/resources", get(api::status::resources))
        .nest("/v1", openai::router())
        .layer(axum::middleware::from_fn_with_state(
            state.reader,
            refuse_writes,
        ))
        .with_state(state)
        .merge(login)
        .layer(axum::middleware::from_fn_with_state(guard, guard::check))
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// A reader of a shared store (`--role reader`) refuses what would change the
/// index, the folders or the models: that is the writer's work.
async fn refuse_writes(
    axum::extract::State(reader): axum::extract::State<bool>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = req.uri().path();
    let changes = req.method() != axum::http::Method::GET
        && (path.starts_with("/api/collections") || path.starts_with("/api/models/use"));
    let who = req
        .extensions()
        .get::<keys::Principal>()
        .cloned()
        .unwrap_or_else(keys::Principal::nobody);
    // A key limited to some collections may upload into them, nothing more.
    let upload_into = path
        .strip_prefix("/api/collections/")
        .and_then(|rest| rest.strip_suffix("/files"))
        .filter(|name| !name.contains('/'));
    if changes
        && !who.may_administer()
        && !upload_into.is_some_and(|name| who.may_read(&percent_decoded(name)))
    {
        return ApiError::Forbidden(format!(
            "the key {:?} may not change the folders, the index or the models",
            who.name()
        ))
        .into_response();
    }
    if reader && changes {
        return ApiError::ReadOnly(
            "this docchat only answers questions from the shared store (--role reader): \
             add, remove and re-index documents on the writer"
                .into(),
        )
        .into_response();
    }
    next.run(req).await
}

/// A path segment with its `%XX` escapes decoded (as the router decodes it).
fn percent_decoded(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(v) = segment
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
