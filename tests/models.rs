//! Model management: listing from GGUF metadata, memory estimates against this
//! machine, the catalog, `models use`, and `models pull` against a local HTTP server
//! (interrupted and resumed, bad checksums refused).

use crate::common::{docchat, models_dir};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Runs `docchat ARGS` with a models folder; returns (exit status, stdout, stderr).
fn run(models: &Path, args: &[&str]) -> (i32, String, String) {
    crate::common::outcome(docchat().env("DOCCHAT_MODELS_DIR", models).args(args))
}

#[test]
fn models_are_listed_from_their_metadata_and_sized_against_this_machine() {
    let (code, out, err) = run(&models_dir(), &["models", "list", "--json"]);
    assert_eq!(code, 0, "{err}");
    let rows: Vec<Value> = serde_json::from_str(&out).unwrap();
    let chat = rows
        .iter()
        .find(|r| r["in_use"] == "chat model")
        .expect("the chat model is listed");
    assert_eq!(chat["info"]["architecture"], "qwen2", "{chat:#}");
    assert_eq!(chat["info"]["quantization"], "Q4_K_M");
    assert_eq!(chat["info"]["embedding"], false);
    let params = chat["info"]["parameters"].as_u64().unwrap();
    assert!((600_000_000..660_000_000).contains(&params), "{params}");
    assert_eq!(chat["info"]["context_length"], 32768);
    let embed = rows
        .iter()
        .find(|r| r["in_use"] == "embedding model")
        .expect("the embedding model is listed");
    assert_eq!(embed["info"]["architecture"], "bert");
    assert_eq!(embed["info"]["embedding"], true);

    let (code, out, _) = run(&models_dir(), &["models", "list"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("qwen2.5-coder-0.5b-instruct-q4_k_m.gguf") && out.contains("chat model"),
        "{out}"
    );

    // The estimate: the KV cache doubles with the context; the default model fits.
    let info = |ctx: &str| -> Value {
        let (code, out, err) = run(
            &models_dir(),
            &[
                "models",
                "info",
                "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
                "--ctx",
                ctx,
                "--json",
            ],
        );
        assert_eq!(code, 0, "{err}");
        serde_json::from_str(&out).unwrap()
    };
    let (small, big) = (info("4096"), info("8192"));
    let kv = |v: &Value| v["memory"]["kv_cache"].as_u64().unwrap();
    assert_eq!(kv(&big), 2 * kv(&small));
    assert_eq!(small["memory"]["weights"], small["info"]["file_size"]);
    assert_eq!(small["fit"], "fits", "{small:#}");
    let largest = small["largest_context"].as_u64().unwrap();
    assert!(largest >= 4096 && largest % 256 == 0, "{small:#}");
    let (_, text, _) = run(
        &models_dir(),
        &["models", "info", "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"],
    );
    assert!(text.contains("KV cache") && text.contains("fits"), "{text}");

    // A catalog model that is not downloaded is sized from the catalog's figures;
    // one far beyond this machine's memory will not fit.
    let (code, out, err) = run(
        &models_dir(),
        &["models", "info", "qwen3-30b-a3b", "--json"],
    );
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert!(v["path"].is_null());
    assert_eq!(v["fit"], "will_not_fit", "{v:#}");
    let (code, out, _) = run(&models_dir(), &["models", "list", "--catalog"]);
    assert_eq!(code, 0);
    for name in [
        "llama-3.1-8b",
        "mistral-7b",
        "qwen3-4b",
        "gpt-oss-20b",
        "nomic-embed-text-v1.5",
    ] {
        assert!(out.contains(name), "{name} missing from\n{out}");
    }
    let (code, _, err) = run(&models_dir(), &["models", "info", "no-such-model"]);
    assert_eq!(code, 1);
    assert!(err.contains("not in the catalog"), "{err}");
}

#[test]
fn models_use_writes_the_configuration() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("docchat.toml");
    std::fs::write(&config, "# mine\nport = 9001\n\n[retrieval]\ntop_k = 5\n").unwrap();
    let with_config = |args: &[&str]| {
        let mut all = vec!["--config", config.to_str().unwrap()];
        all.extend_from_slice(args);
        run(&models_dir(), &all)
    };
    let chat = models_dir().join("gemma-3-270m-q4_k_m.gguf");
    let (code, out, err) = with_config(&["models", "use", chat.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("chat_model"), "{out}");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(
        text.starts_with("# mine\nport = 9001\nchat_model = "),
        "{text}"
    );
    assert!(text.contains("[retrieval]\ntop_k = 5"), "{text}");
    let (code, out, err) = with_config(&["models", "use", "all-MiniLM-L6-v2.gguf"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("embedding_model") && out.contains("re-embedded"),
        "{out}"
    );
    // The configured models are the ones `models list` marks as in use.
    let (_, listed, _) = with_config(&["models", "list", "--json"]);
    let rows: Vec<Value> = serde_json::from_str(&listed).unwrap();
    assert!(
        rows.iter()
            .any(|r| r["in_use"] == "embedding model" && r["name"] == "all-MiniLM-L6-v2.gguf")
    );
}

/// A file server on loopback that honours `Range`, records the requests, and cuts
/// the first response after `cut_after` bytes.
struct FileServer {
    base: String,
    requests: Arc<Mutex<Vec<String>>>,
}

impl FileServer {
    fn start(body: Vec<u8>, cut_after: usize, max_requests: usize) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        std::thread::spawn(move || {
            for (n, stream) in listener.incoming().take(max_requests).enumerate() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut head = String::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    head.push_str(&line);
                }
                seen.lock().unwrap().push(head.clone());
                let start = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("range: bytes=")
                            .map(str::to_string)
                    })
                    .and_then(|r| r.trim_end_matches('-').parse::<usize>().ok())
                    .unwrap_or(0);
                let rest = &body[start.min(body.len())..];
                let status = if start > 0 {
                    "206 Partial Content"
                } else {
                    "200 OK"
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
                    rest.len()
                );
                let send = if n == 0 {
                    &rest[..cut_after.min(rest.len())]
                } else {
                    rest
                };
                let _ = stream.write_all(send);
                let _ = stream.flush();
                // Dropping the stream closes the connection (early, the first time).
            }
        });
        Self { base, requests }
    }
}

fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn pull_resumes_an_interrupted_download_and_refuses_bad_checksums() {
    let mut gguf = Vec::new();
    std::fs::File::open(models_dir().join("all-MiniLM-L6-v2.gguf"))
        .unwrap()
        .read_to_end(&mut gguf)
        .unwrap();
    let sha = hex_sha256(&gguf);
    let cut = 10 << 20;
    let server = FileServer::start(gguf.clone(), cut, 4);
    let tmp = tempfile::tempdir().unwrap();
    let models = tmp.path().join("models");
    let name = "someone/minilm-GGUF/minilm-f16.gguf";
    let pull = |extra: &[&str]| {
        let mut args = vec!["models", "pull", name, "--endpoint", &server.base];
        args.extend_from_slice(extra);
        run(&models, &args)
    };

    // Without a checksum nothing is fetched.
    let (code, _, err) = pull(&[]);
    assert_eq!(code, 1);
    assert!(err.contains("--sha256"), "{err}");
    assert!(server.requests.lock().unwrap().is_empty());

    // The first attempt is cut after 10 MiB: a clear error, the part kept.
    let (code, _, err) = pull(&["--sha256", &sha]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("interrupted") && err.contains("resume"),
        "{err}"
    );
    let part = models.join("minilm-f16.gguf.part");
    assert_eq!(std::fs::metadata(&part).unwrap().len(), cut as u64);
    assert!(!models.join("minilm-f16.gguf").exists());

    // The second resumes with a range request and verifies the whole file.
    let (code, out, err) = pull(&["--sha256", &sha, "--json"]);
    assert_eq!(code, 0, "{err}");
    let pulled: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(pulled["resumed_from"], cut as u64);
    assert_eq!(pulled["sha256"], sha.as_str());
    let requests = server.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 2);
    assert!(
        requests[1]
            .to_ascii_lowercase()
            .contains(&format!("range: bytes={cut}-")),
        "{}",
        requests[1]
    );
    assert_eq!(std::fs::read(models.join("minilm-f16.gguf")).unwrap(), gguf);
    assert!(!part.exists());
    // The pulled file is a model docchat can list.
    let (_, listed, _) = run(&models, &["models", "list", "--json"]);
    assert!(
        listed.contains("minilm-f16.gguf") && listed.contains("\"bert\""),
        "{listed}"
    );

    // A catalog model whose bytes do not match the catalog's checksum is refused
    // (the local server serves this same file under every name) and nothing stays.
    let (code, _, err) = run(
        &models,
        &[
            "models",
            "pull",
            "bge-small-en-v1.5",
            "--endpoint",
            &server.base,
        ],
    );
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("checksum mismatch"), "{err}");
    assert!(!models.join("bge-small-en-v1.5-q8_0.gguf").exists());
    assert!(!models.join("bge-small-en-v1.5-q8_0.gguf.part").exists());
}

#[test]
fn a_missing_damaged_or_incomplete_model_is_named_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let real = models_dir().join("gemma-3-270m-q4_k_m.gguf");
    let missing = dir.path().join("missing.gguf");
    let random = dir.path().join("random.gguf");
    std::fs::write(
        &random,
        b"PK\x03\x04 this is a zip file, not a model".repeat(64),
    )
    .unwrap();
    // The first 60 MB of the real model: an interrupted download.
    let cut = dir.path().join("cut.gguf");
    let mut head = Vec::new();
    std::fs::File::open(&real)
        .unwrap()
        .take(60 << 20)
        .read_to_end(&mut head)
        .unwrap();
    std::fs::write(&cut, head).unwrap();
    let cases = [
        ("--chat-model", &missing, "not found"),
        ("--chat-model", &random, "not a valid GGUF file"),
        ("--chat-model", &cut, "the file is incomplete"),
        ("--embedding-model", &random, "not a valid GGUF file"),
        ("--embedding-model", &cut, "the file is incomplete"),
    ];
    for (flag, path, why) in cases {
        let started = std::time::Instant::now();
        let (code, stdout, stderr) = crate::common::outcome(
            docchat()
                .arg("--data-dir")
                .arg(dir.path().join("data"))
                .arg(flag)
                .arg(path)
                .args(["serve", "--port", "0"]),
        );
        assert_eq!(code, 1, "{flag} {}: {stdout}{stderr}", path.display());
        assert!(!stdout.contains("listening on"), "{stdout}");
        assert!(
            stderr.contains(&path.display().to_string()),
            "names the file: {stderr}"
        );
        assert!(stderr.contains(why), "{flag} {}: {stderr}", path.display());
        assert!(
            stderr.contains("scripts/setup.sh"),
            "says what to do: {stderr}"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(60));
    }
    // The real model still loads and answers `models info`.
    let (code, stdout, stderr) = run(&models_dir(), &["models", "info", real.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}{stderr}");
}
