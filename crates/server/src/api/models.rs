//! `/api/models`: the models on disk and in the catalog, and a switch of the chat
//! model.

use crate::error::ApiError;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::json;

/// `GET /api/models`: the models in use and the settings of answers, the GGUF
/// files docchat knows and the catalog, each with the memory it needs at the
/// configured context against this machine's memory.
pub(crate) async fn models(
    State(state): State<AppState>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let live = state.live();
    let ctx = state.ctx_size;
    let (paths, defaults) = (state.models.clone(), state.ask_defaults.clone());
    let (known, catalog, system) = tokio::task::spawn_blocking(move || {
        let mut known = docchat_service::models::known_models(&paths);
        for row in &mut known {
            if let Some(info) = &row.info {
                let at = ctx.min(info.context_length.max(1));
                row.memory = Some(docchat_llm::meta::estimate_memory(info, at));
            }
        }
        (
            known,
            docchat_service::models::catalog_rows(ctx),
            docchat_service::models::system_memory(),
        )
    })
    .await
    .map_err(|e| ApiError::Internal(e.into()))?;
    let catalog = catalog?;
    let fit = |m: &Option<docchat_llm::meta::MemoryEstimate>| {
        m.map(|m| docchat_llm::meta::Fit::of(m.total(), system.available).as_str())
    };
    let rows = |rows: &[docchat_service::models::ModelRow]| -> Vec<serde_json::Value> {
        rows.iter()
            .map(|r| {
                let mut v = json!(r);
                v["fit"] = json!(fit(&r.memory));
                v
            })
            .collect()
    };
    Ok(Json(json!({
        "in_use": {
            "chat": live.rag.generator.id(),
            "embedding": live.rag.retriever.embedder.id(),
            "context_size": live.rag.generator.context_size(),
        },
        "settings": {
            "top_k": defaults.top_k, "mode": defaults.mode,
            "temperature": defaults.params.temperature, "max_tokens": defaults.params.max_tokens,
            "max_upload_bytes": state.max_upload_bytes,
        },
        "system": system,
        "models": rows(&known),
        "catalog": rows(&catalog),
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UseModel {
    model: String,
}

/// `POST /api/models/use` `{"model"}`: answers come from another chat model from
/// now on (for this run; `docchat models use` makes it the configured one). Refused
/// when it will not fit in the memory free now, or when it is an embedding model
/// (a switch that re-embeds the index: `docchat models use`, then a restart).
pub(crate) async fn use_model(
    State(state): State<AppState>,
    Json(req): Json<UseModel>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let path = docchat_service::models::resolve_model_path(&state.models.dir, req.model.trim())
        .map_err(|e| ApiError::BadRequest(format!("{e:#}")))?;
    // Only the models folder: the API loads no file a caller points at elsewhere
    // (a link the user put in the folder is theirs, and counts as inside).
    let inside = match (
        std::fs::canonicalize(&state.models.dir),
        path.parent().map(std::fs::canonicalize),
    ) {
        (Ok(dir), Some(Ok(parent))) => parent.starts_with(dir),
        _ => false,
    };
    if !inside {
        return Err(ApiError::BadRequest(format!(
            "only models in the models folder ({}) can be used from the browser or the API; \
             copy the file there first",
            state.models.dir.display()
        )));
    }
    let info =
        docchat_llm::meta::read_info(&path).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    if info.embedding {
        return Err(ApiError::BadRequest(format!(
            "{} is an embedding model: switching it re-embeds the index; run `docchat models use {}` and restart",
            path.display(),
            req.model.trim()
        )));
    }
    let need =
        docchat_llm::meta::estimate_memory(&info, state.ctx_size.min(info.context_length.max(1)));
    let available = docchat_service::models::system_memory().available;
    if docchat_llm::meta::Fit::of(need.total(), available) == docchat_llm::meta::Fit::WillNotFit {
        return Err(ApiError::BadRequest(format!(
            "{} needs about {} MiB at this context and {} MiB are free",
            path.display(),
            need.total() >> 20,
            available >> 20
        )));
    }
    let opts = state.engine.clone();
    let generator =
        tokio::task::spawn_blocking(move || docchat_service::models::load_generator(&path, &opts))
            .await
            .map_err(|e| ApiError::Internal(e.into()))?
            .map_err(|e| ApiError::BadRequest(format!("{e:#}")))?;
    let (id, ctx) = (generator.id().to_string(), generator.context_size());
    state
        .live
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .rag
        .generator = generator;
    tracing::info!(model = %id, "chat model switched");
    Ok(Json(json!({ "chat": id, "context_size": ctx })))
}
