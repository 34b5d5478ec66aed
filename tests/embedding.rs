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
