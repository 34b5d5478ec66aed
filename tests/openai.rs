//! The OpenAI-compatible API, driven by the official `openai` Python client and by
//! the README's curl example as written.

use crate::common::{Server, corpus, python, settled};
use serde_json::{Value, json};
use std::process::Command;
use std::time::Duration;

const PDF: &str = "tracemonkey.pdf";

/// A server with one indexed paper, answering one request at a time.
fn server(tmp: &std::path::Path) -> Server {
    let docs = tmp.join("papers");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::copy(corpus().join("pdf-wild").join(PDF), docs.join(PDF)).unwrap();
    let watch = tmp.join("watch-dirs");
    std::fs::write(&watch, format!("{} = papers\n", docs.display())).unwrap();
    let server = Server::start_with(&tmp.join("data"), &watch, &["--max-queue", "0"]);
    server.wait_status("the paper to be indexed", Duration::from_secs(300), |s| {
        settled(s) && s["counts"]["indexed"] == 1
    });
    server
}

#[test]
fn the_official_openai_client_gets_answers_citations_embeddings_and_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let server = server(tmp.path());
    let script = crate::common::manifest_dir().join("../../tests/openai_client.py");
    let out = Command::new(python())
        .arg(script)
        .arg(&server.base)
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the client's checks failed:\n{stdout}\n{stderr}"
    );
    let seen: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("no summary ({e}): {stdout}"));
    println!("openai client: {seen}");
    assert_eq!(seen["embedding_dim"], 384);
    assert!(
        seen["models"]
            .as_array()
            .unwrap()
            .contains(&json!("docchat"))
    );
    assert!(seen["freed_after_s"].as_f64().unwrap() < 3.0, "{seen}");
    // The paper's FFI discussion is on its later pages, not the title page.
    let pages = seen["rag_pages"].as_array().unwrap();
    assert!(pages.iter().any(|p| p.as_u64().unwrap() > 1), "{seen}");
}

#[test]
fn the_readme_curl_example_works_as_written_and_errors_have_openai_shape() {
    let tmp = tempfile::tempdir().unwrap();
    let server = server(tmp.path());
    let readme =
        std::fs::read_to_string(crate::common::manifest_dir().join("../../README.md")).unwrap();
    let block = readme
        .split("<!-- curl-example")
        .nth(1)
        .and_then(|b| b.split("```sh\n").nth(1))
        .and_then(|b| b.split("```").next())
        .expect("the README has the curl example");
    assert!(block.contains("http://127.0.0.1:8080"), "{block}");
    // The example as written, pointed at this server's port.
    let script = block.replace("http://127.0.0.1:8080", &server.base);
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(v["object"], "chat.completion", "{v:#}");
    assert!(
        !v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .trim()
            .is_empty()
    );
    assert!(
        v["usage"]["completion_tokens"].as_u64().unwrap() <= 64,
        "{v:#}"
    );
    assert!(v["citations"][0]["path"] == PDF, "{v:#}");

    // A body of the wrong shape, an unknown endpoint: OpenAI's error shape.
    let (code, body) = server.post("/v1/chat/completions", &json!({ "model": 5 }));
    assert_eq!(code, 400, "{body}");
    let err: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(err["error"]["type"], "invalid_request_error", "{err}");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("invalid JSON body")
    );
    // A question over the size limit is refused before anything runs, as on
    // /api/chat.
    let (code, body) = server.post(
        "/v1/chat/completions",
        &json!({ "model": "docchat",
                 "messages": [{ "role": "user", "content": "why ".repeat(4000) }] }),
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("longer than"), "{body}");
    let res = server.get_raw("/v1/files");
    assert_eq!(res.status, 404);
    assert_eq!(res.json()["error"]["type"], "invalid_request_error");
    let m = server.get("/v1/models/docchat");
    assert_eq!(m["kind"], "rag");
}
