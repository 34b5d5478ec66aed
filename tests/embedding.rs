//! The importer turns the default sentence-transformers checkpoint into a GGUF that
//! reproduces the reference similarities.

use crate::common::models_dir;
use docchat_core::Embedder;
use docchat_llm::{EmbeddingModel, EngineOptions};

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

#[test]
fn imported_minilm_reproduces_reference_cosines() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("minilm.gguf");
    let summary = docchat_llm::import::import_sentence_transformer(
        &models_dir().join("all-MiniLM-L6-v2"),
        &out,
    )
    .expect("import succeeds");
    assert_eq!(summary.dim, 384);
    assert_eq!(summary.vocab, 30522);
    assert_eq!(summary.pooling, "mean");

    let model = EmbeddingModel::load(&out, &EngineOptions::default()).expect("llama.cpp loads it");
    assert_eq!(model.dim(), 384);
    let texts: Vec<String> = [
        "A man is eating food.",
        "A man is eating a piece of bread.",
        "A man is riding a horse.",
    ]
    .map(String::from)
    .to_vec();
    let v = model.embed(&texts).unwrap();
    for e in &v {
        let norm: f32 = e.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-3, "vectors are normalized: {norm}");
    }
    let bread = cosine(&v[0], &v[1]);
    let horse = cosine(&v[0], &v[2]);
    assert!((bread - 0.7553).abs() <= 0.005, "bread: {bread}");
    assert!((horse - 0.2474).abs() <= 0.005, "horse: {horse}");

    // Batching does not change results: one text alone gives the same vector.
    let alone = model.embed(&texts[1..2]).unwrap();
    assert!(cosine(&alone[0], &v[1]) > 0.9999);
}

/// Indexing yields to a user: while foreground work holds the priority, background
/// embedding does not start a batch, foreground embedding still runs, and the
/// background job finishes with the same vectors once the foreground is free.
#[test]
fn background_embedding_waits_for_the_foreground_and_foreground_goes_first() {
    let opts = EngineOptions::default();
    let priority = std::sync::Arc::clone(&opts.priority);
    let model = std::sync::Arc::new(
        EmbeddingModel::load(&models_dir().join("all-MiniLM-L6-v2.gguf"), &opts)
            .expect("the default embedding model loads"),
    );
    let texts: Vec<String> = (0..40)
        .map(|i| {
            format!("Paragraph {i} of a long report on harbour logistics and ferry timetables.")
        })
        .collect();
    let expected = model.embed(&texts).expect("foreground embedding");

    let user = priority.foreground();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let background = {
        let (model, texts) = (std::sync::Arc::clone(&model), texts.clone());
        std::thread::spawn(move || {
            let v = model.embed_background(&texts);
            let _ = done_tx.send(());
            v
        })
    };
    // However long the user's request takes, indexing does not run meanwhile...
    assert!(
        done_rx
            .recv_timeout(std::time::Duration::from_millis(1500))
            .is_err(),
        "background embedding ran while a user waited"
    );
    // ...while the user's own embedding (the question's) is served at once.
    let query = model
        .embed(&["ferry timetables".to_string()])
        .expect("foreground embedding while background work waits");
    assert_eq!(query.len(), 1);
    drop(user);
    let got = background
        .join()
        .expect("the background thread")
        .expect("background embedding finishes once the foreground is free");
    assert_eq!(got.len(), expected.len());
    for (a, b) in got.iter().zip(&expected) {
        assert!(cosine(a, b) > 0.9999, "same vectors as in the foreground");
    }
}
