//! Switching the embedding model: the old index keeps answering while the stored
//! text is re-embedded into a new one (nothing extracted again), then the new one
//! takes over, and stays in use after a restart.

use crate::common::{Server, corpus, models_dir, settled};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const QUERY: &str = "how are promises evaluated lazily";

fn top_hit(server: &Server) -> (String, u64) {
    let (code, body) = server.post("/api/search", &json!({"query": QUERY, "top_k": 3}));
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let hit = &v["hits"][0];
    (
        hit["path"].as_str().unwrap_or_default().to_string(),
        hit["page_start"].as_u64().unwrap_or(0),
    )
}

#[test]
fn a_new_embedding_model_takes_over_without_a_gap_in_search() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let docs = tmp.path().join("manuals");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::copy(corpus().join("manuals/R-ints.pdf"), docs.join("R-ints.pdf")).unwrap();
    let watch = tmp.path().join("watch-dirs");
    std::fs::write(&watch, format!("{}\n", docs.display())).unwrap();
    // A second model file: the same weights under another name, so the results can
    // be compared exactly after the switch.
    let other = tmp.path().join("minilm-b.gguf");
    std::fs::copy(models_dir().join("all-MiniLM-L6-v2.gguf"), &other).unwrap();

    let before = {
        let server = Server::start(&data, &watch);
        let s = server.wait_status("the manual to be indexed", Duration::from_secs(300), |s| {
            settled(s) && s["counts"]["indexed"] == 1
        });
        assert_eq!(s["models"]["embedding"], "all-MiniLM-L6-v2");
        let chunks = s["documents"][0]["chunks"].as_u64().unwrap();
        (top_hit(&server), chunks)
    };

    let server = Server::start_with(
        &data,
        &watch,
        &["--embedding-model", other.to_str().unwrap()],
    );
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut searched_during_switch = 0;
    let status = loop {
        let s = server.get("/api/status");
        let state = s["embedding_switch"]["state"]
            .as_str()
            .unwrap_or("")
            .to_string();
        if state == "re-embedding" {
            // The old index answers meanwhile, with the old model.
            assert_eq!(s["models"]["embedding"], "all-MiniLM-L6-v2", "{s:#}");
            assert_eq!(top_hit(&server), before.0);
            searched_during_switch += 1;
        } else if state == "done" && settled(&s) {
            break s;
        } else {
            assert_ne!(state, "failed", "{s:#}");
        }
        assert!(
            Instant::now() < deadline,
            "the switch did not finish: {s:#}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    println!(
        "searches answered during the switch: {searched_during_switch}; {}",
        status["embedding_switch"]
    );
    assert!(
        searched_during_switch > 0,
        "the switch was never seen running"
    );
    assert_eq!(status["models"]["embedding"], "minilm-b");
    assert_eq!(
        status["embedding_switch"]["chunks"].as_u64().unwrap(),
        before.1
    );
    assert_eq!(
        status["stats"]["documents_extracted"], 0,
        "nothing is extracted again"
    );
    assert_eq!(status["stats"]["chunks_embedded"], 0, "{status:#}");
    assert_eq!(status["documents"][0]["chunks"].as_u64().unwrap(), before.1);
    assert_eq!(
        top_hit(&server),
        before.0,
        "the same weights find the same page"
    );
    let active: Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("active-index.json")).unwrap())
            .unwrap();
    assert_eq!(active["embedder"], "minilm-b");
    assert_eq!(active["dir"], "index-minilm-b");
    server.kill();

    // The next start uses the new index as it is.
    let server = Server::start_with(
        &data,
        &watch,
        &["--embedding-model", other.to_str().unwrap()],
    );
    let s = server.wait_status("the restart", Duration::from_secs(120), |s| {
        settled(s) && s["counts"]["indexed"] == 1
    });
    assert!(s["embedding_switch"].is_null(), "{s:#}");
    assert_eq!(s["stats"]["chunks_embedded"], 0);
    assert_eq!(top_hit(&server), before.0);
}
