//! docchat's HTTP server: the web UI, its API (`/api/*`: status, chat over SSE,
//! chats, search, collections, documents, models) and the OpenAI-compatible API
//! (`/v1`), every route behind one [`guard::Guard`]. Handlers translate HTTP to the
//! service (`docchat-service`) and back; what docchat does lives there.

pub mod api;
pub mod error;
pub mod guard;
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
        .with_state(state)
        .merge(login)
        .layer(axum::middleware::from_fn_with_state(guard, guard::check))
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}
