//! A team's docchat: one writer indexes into a shared store on a real
//! S3-compatible object store (SeaweedFS), readers on other ports answer from it,
//! and answers can be written by another server (`--generator`).

use crate::common::objectstore::ObjectStore;
use crate::common::{Server, corpus, doc, docchat, http, outcome, settled, sse_events};
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const PAPER: &str = "tracemonkey.pdf";
const JUDGMENT: &str = "issue11913.pdf";
/// How soon a reader must see what the writer indexed.
const VISIBLE_WITHIN: Duration = Duration::from_secs(10);

fn with_env(mut cmd: Command, env: &[(&'static str, String)]) -> Command {
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// The paths of the files a search finds.
fn found(server: &Server, query: &str) -> (u16, Vec<String>) {
    let (code, body) = server.post("/api/search", &json!({ "query": query, "top_k": 5 }));
    if code != 200 {
        return (code, vec![body]);
    }
    let v: Value = serde_json::from_str(&body).unwrap();
    let paths = v["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["path"].as_str().unwrap_or_default().to_string())
        .collect();
    (code, paths)
}

/// The chat id and the citations of a streamed, saved answer.
fn chat_and_citations(body: &str) -> (String, Value) {
    let events = sse_events(body);
    let chat_id = events
        .iter()
        .find(|(n, _)| n == "chat")
        .map(|(_, c)| c["id"].as_str().unwrap().to_string())
        .unwrap_or_else(|| panic!("no chat event: {body}"));
    let citations = events
        .into_iter()
        .find(|(n, _)| n == "citations")
        .unwrap_or_else(|| panic!("no citations: {body}"))
        .1;
    (chat_id, citations)
}

/// A reader of `uri` with its own data folder.
fn reader(tmp: &Path, name: &str, uri: &str, env: &[(&'static str, String)]) -> Server {
    let data = tmp.join(name);
    let none = tmp.join(format!("{name}-watch"));
    std::fs::write(&none, "").unwrap();
    Server::spawn(with_env(
        Server::command(&data, &none, &["--role", "reader", "--store", uri]),
        env,
    ))
}

/// The reader's web page in headless Chromium (tests/browser/reader.mjs).
fn reader_page(reader: &Server, uri: &str) {
    let browser_dir = crate::common::models_dir().join("../browser/node_modules");
    let out = Command::new("node")
        .arg(crate::common::manifest_dir().join("../../tests/browser/reader.mjs"))
        .arg(&reader.base)
        .arg(uri)
        .arg(PAPER)
        .env("DOCCHAT_BROWSER_DIR", &browser_dir)
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "the reader's page failed its checks:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_team_shares_one_index_on_an_object_store() {
    let s3 = ObjectStore::start();
    let env = s3.env();
    let uri = s3.uri("team");
    let tmp = tempfile::tempdir().unwrap();
    let inbox = tmp.path().join("inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    std::fs::copy(corpus().join("pdf-wild").join(PAPER), inbox.join(PAPER)).unwrap();
    let watch = tmp.path().join("watch-dirs");
    std::fs::write(&watch, format!("{} = papers\n", inbox.display())).unwrap();
    let writer_cmd = || {
        with_env(
            Server::command(&tmp.path().join("writer"), &watch, &["--store", &uri]),
            &env,
        )
    };

    // The writer indexes the folder into the object store.
    let writer = Server::spawn(writer_cmd());
    let status = writer.wait_status("the paper to be indexed", Duration::from_secs(300), |s| {
        settled(s) && doc(s, PAPER).is_some_and(|d| d["state"] == "indexed")
    });
    let chunks = doc(&status, PAPER).unwrap()["chunks"].as_u64().unwrap();
    assert!(chunks > 20, "{status:#}");
    // Nothing of the index is in the writer's data folder: it is in the bucket.
    assert!(
        !tmp.path().join("writer/index/chunks.lance").exists(),
        "the index went to the object store"
    );

    // Two readers on other ports answer from it, with citations; the second
    // embeds its questions through the first's OpenAI API (`--embedder`), which
    // it checks against the index's vectors at start.
    let r1 = reader(tmp.path(), "reader1", &uri, &env);
    let r2 = {
        let data = tmp.path().join("reader2");
        let none = tmp.path().join("reader2-watch");
        std::fs::write(&none, "").unwrap();
        let embedder = format!("{}/v1", r1.base);
        Server::spawn(with_env(
            Server::command(
                &data,
                &none,
                &["--role", "reader", "--store", &uri, "--embedder", &embedder],
            ),
            &env,
        ))
    };
    for r in [&r1, &r2] {
        let (code, paths) = found(r, "foreign function interface C builtins");
        assert_eq!(code, 200, "{paths:?}");
        assert_eq!(paths.first().map(String::as_str), Some(PAPER), "{paths:?}");
        let listed = r.get("/api/status");
        assert!(
            doc(&listed, PAPER).is_some(),
            "a reader lists the writer's documents: {listed:#}"
        );
        // It says what it is and where the index lives (without the options).
        assert_eq!(listed["index"]["role"], "reader", "{:#}", listed["index"]);
        assert_eq!(listed["index"]["store"], uri.as_str());
        assert_eq!(
            listed["reconciled"], true,
            "a reader has no folders to scan"
        );
    }
    assert_eq!(status["index"]["role"], "writer", "{:#}", status["index"]);
    assert_eq!(status["index"]["store"], uri.as_str());
    // In a real browser, a reader's page says which shared index it answers from
    // and offers no folder or file to add.
    reader_page(&r1, &uri);
    let (code, body) = r1.post(
        "/api/chat",
        &json!({ "question": "How does SpiderMonkey call C builtins through its foreign function interface?", "max_tokens": 48 }),
    );
    assert_eq!(code, 200, "{body}");
    let (chat_id, citations) = chat_and_citations(&body);
    let citations = &citations;
    assert!(
        citations["citations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["path"] == PAPER),
        "{citations:#}"
    );
    // The chats are shared: the other reader lists the first one's chat.
    let deadline = Instant::now() + VISIBLE_WITHIN;
    loop {
        let chats = r2.get("/api/chats");
        if chats.to_string().contains(&chat_id) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "reader 2 never saw the chat: {chats:#}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }

    // A reader refuses to change the index.
    let (code, body) = r1.post(
        "/api/collections",
        &json!({ "path": inbox.display().to_string(), "collection": "more" }),
    );
    assert_eq!(code, 409, "{body}");
    assert!(body.contains("--role reader"), "{body}");

    // A document added to the folder is found by both readers within the bound
    // from when the writer has it indexed, and never before its manifest row.
    std::fs::copy(
        corpus().join("pdf-wild").join(JUDGMENT),
        inbox.join(JUDGMENT),
    )
    .unwrap();
    writer.wait_status(
        "the judgment to be indexed",
        Duration::from_secs(120),
        |s| settled(s) && doc(s, JUDGMENT).is_some_and(|d| d["state"] == "indexed"),
    );
    let indexed_at = Instant::now();
    for r in [&r1, &r2] {
        loop {
            let (_, paths) = found(r, "Sinnott Minister for Education judgment of Hardiman");
            if paths.iter().any(|p| p == JUDGMENT) {
                break;
            }
            assert!(
                indexed_at.elapsed() < VISIBLE_WITHIN,
                "a reader did not find the new document within {VISIBLE_WITHIN:?}: {paths:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    eprintln!(
        "shared store: both readers found the new document {:.1} s after the writer indexed it",
        indexed_at.elapsed().as_secs_f64()
    );

    // A second writer on the same store is refused, naming the one that writes.
    let mut second = with_env(
        Server::command(&tmp.path().join("writer2"), &watch, &["--store", &uri]),
        &env,
    );
    second.stderr(std::process::Stdio::piped());
    let (code, _, err) = outcome(&mut second);
    assert_ne!(code, 0);
    assert!(err.contains("another docchat writes to the store"), "{err}");
    assert!(err.contains(&format!("process {}", writer.pid())), "{err}");

    // The writer is killed -9: the readers keep answering; a restarted writer
    // takes the store over at once (its predecessor's process is gone).
    writer.kill();
    for r in [&r1, &r2] {
        let (code, paths) = found(r, "foreign function interface C builtins");
        assert_eq!(code, 200, "{paths:?}");
        assert_eq!(paths.first().map(String::as_str), Some(PAPER), "{paths:?}");
    }
    let writer = Server::spawn(writer_cmd());
    let status = writer.wait_status("the restart to settle", Duration::from_secs(120), settled);
    assert_eq!(
        status["stats"]["chunks_embedded"], 0,
        "nothing re-embedded: {status:#}"
    );
    assert_eq!(doc(&status, JUDGMENT).unwrap()["state"], "indexed");
}

#[test]
fn the_store_going_away_gives_clean_errors_and_comes_back() {
    let mut s3 = ObjectStore::start();
    let env = s3.env();
    let uri = s3.uri("outage");
    let tmp = tempfile::tempdir().unwrap();
    let inbox = tmp.path().join("inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    std::fs::copy(
        corpus().join("pdf-wild").join(JUDGMENT),
        inbox.join(JUDGMENT),
    )
    .unwrap();
    let watch = tmp.path().join("watch-dirs");
    std::fs::write(&watch, format!("{} = law\n", inbox.display())).unwrap();
    let writer = Server::spawn(with_env(
        Server::command(&tmp.path().join("writer"), &watch, &["--store", &uri]),
        &env,
    ));
    writer.wait_status(
        "the judgment to be indexed",
        Duration::from_secs(300),
        |s| settled(s) && doc(s, JUDGMENT).is_some_and(|d| d["state"] == "indexed"),
    );
    let r = reader(tmp.path(), "reader", &uri, &env);
    let query = "Sinnott Minister for Education";
    assert_eq!(
        found(&r, query).1.first().map(String::as_str),
        Some(JUDGMENT)
    );

    // The object store stops: a search is a 503 that says why, within seconds.
    s3.stop();
    std::thread::sleep(Duration::from_secs(3));
    let started = Instant::now();
    let (code, body) = found(&r, query);
    assert_eq!(code, 503, "{body:?}");
    assert!(
        body.concat().contains("cannot be reached") || body.concat().contains("store"),
        "{body:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "no hang: {:?}",
        started.elapsed()
    );

    // It comes back: the same search finds the same document; nothing was lost.
    s3.restart();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (code, paths) = found(&r, query);
        if code == 200 && paths.first().map(String::as_str) == Some(JUDGMENT) {
            break;
        }
        assert!(Instant::now() < deadline, "no recovery: {code} {paths:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
    let status = writer.get("/api/status");
    assert_eq!(doc(&status, JUDGMENT).unwrap()["state"], "indexed");
}

#[test]
fn answers_written_by_a_remote_generator_and_503_while_it_is_down() {
    let tmp = tempfile::tempdir().unwrap();
    // The generator: another docchat (its OpenAI API), with nothing to index.
    let empty = tmp.path().join("gen-watch");
    std::fs::write(&empty, "").unwrap();
    let generator = Server::start(&tmp.path().join("gen"), &empty);
    let port = generator.base.rsplit(':').next().unwrap().to_string();
    let url = format!("{}/v1", generator.base);

    let inbox = tmp.path().join("inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    std::fs::copy(
        corpus().join("pdf-wild").join(JUDGMENT),
        inbox.join(JUDGMENT),
    )
    .unwrap();
    let watch = tmp.path().join("watch-dirs");
    std::fs::write(&watch, format!("{} = law\n", inbox.display())).unwrap();
    let front = Server::start_with(&tmp.path().join("front"), &watch, &["--generator", &url]);
    front.wait_status(
        "the judgment to be indexed",
        Duration::from_secs(300),
        |s| settled(s) && doc(s, JUDGMENT).is_some_and(|d| d["state"] == "indexed"),
    );
    let ask = || {
        front.post(
            "/api/chat",
            &json!({ "question": "Who delivered the judgment in the Sinnott case, and when?",
                     "save": false, "max_tokens": 40 }),
        )
    };
    let (code, body) = ask();
    assert_eq!(code, 200, "{body}");
    let events = sse_events(&body);
    assert!(
        events.iter().filter(|(n, _)| n == "token").count() >= 2,
        "{body}"
    );
    let done = &events.iter().find(|(n, _)| n == "done").expect("done").1;
    assert!(
        !events.iter().any(|(n, _)| n == "error"),
        "the remote generator answered: {body}"
    );
    assert!(done.to_string().contains("ttft"), "{done}");
    let citations = &events
        .iter()
        .find(|(n, _)| n == "citations")
        .expect("citations")
        .1;
    assert!(citations.to_string().contains(JUDGMENT), "{citations}");

    // A client that leaves stops the remote generation too: asked for 2,000
    // tokens with no end of text (a minute and more on this machine), the
    // generator's line is empty again within seconds of the client closing.
    let mut tokens = 0;
    http::post_events(
        &front.base,
        &json!({ "question": "Who delivered the judgment in the Sinnott case?",
                 "save": false, "max_tokens": 2000, "ignore_eos": true }),
        |name, _| {
            tokens += usize::from(name == "token");
            tokens < 3
        },
    );
    assert_eq!(tokens, 3, "the answer streamed before the client left");
    let left = Instant::now();
    let busy = |s: &Server| s.get("/api/status")["requests"]["chat_in_flight"].as_u64();
    while busy(&generator) != Some(0) || busy(&front) != Some(0) {
        assert!(
            left.elapsed() < Duration::from_secs(15),
            "the remote generation goes on after the client left"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    println!(
        "remote generation stopped {:?} after the client left",
        left.elapsed()
    );

    // The generator is killed: questions get 503 with the reason, at once.
    generator.kill();
    let started = Instant::now();
    let (code, body) = ask();
    assert_eq!(code, 503, "{body}");
    assert!(
        body.contains("cannot be reached") && body.contains(&url),
        "{body}"
    );
    let (code, body) = front.post(
        "/v1/chat/completions",
        &json!({ "model": "docchat", "messages": [{ "role": "user", "content": "Who is Sinnott?" }] }),
    );
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("cannot be reached"), "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    // Search does not need the generator.
    assert_eq!(found(&front, "Sinnott").0, 200);

    // It comes back on the same port: answers resume.
    let mut again = docchat();
    again
        .args([
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--data-dir",
        ])
        .arg(tmp.path().join("gen"))
        .arg("--watch-dirs")
        .arg(&empty);
    let generator = Server::spawn(again);
    let (code, body) = ask();
    assert_eq!(code, 200, "{body}");
    assert!(
        sse_events(&body).iter().any(|(n, _)| n == "token"),
        "{body}"
    );
    drop(generator);
}

#[test]
fn a_reader_needs_a_store_and_a_writer_first() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, _, err) = outcome(
        docchat()
            .args(["serve", "--role", "reader", "--port", "0", "--data-dir"])
            .arg(tmp.path().join("d")),
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("--role reader serves questions from a shared store"),
        "{err}"
    );
    // A folder as the shared store, with no writer yet.
    let (code, _, err) = outcome(
        docchat()
            .args(["serve", "--role", "reader", "--port", "0", "--data-dir"])
            .arg(tmp.path().join("d"))
            .arg("--store")
            .arg(tmp.path().join("shared")),
    );
    assert_ne!(code, 0);
    assert!(err.contains("start the writer"), "{err}");
    let (code, _, err) = outcome(
        docchat()
            .args([
                "serve",
                "--port",
                "0",
                "--store",
                "gs://bucket/x",
                "--data-dir",
            ])
            .arg(tmp.path().join("d")),
    );
    assert_ne!(code, 0);
    assert!(err.contains("gs:// is not supported"), "{err}");
}

#[test]
fn each_key_sees_only_its_collections_and_its_chats() {
    use crate::common::http::request_with;
    let tmp = tempfile::tempdir().unwrap();
    let (papers, law) = (tmp.path().join("papers"), tmp.path().join("law"));
    std::fs::create_dir_all(&papers).unwrap();
    std::fs::create_dir_all(&law).unwrap();
    std::fs::copy(corpus().join("pdf-wild").join(PAPER), papers.join(PAPER)).unwrap();
    std::fs::copy(corpus().join("pdf-wild").join(JUDGMENT), law.join(JUDGMENT)).unwrap();
    let watch = tmp.path().join("watch-dirs");
    std::fs::write(
        &watch,
        format!("{} = papers\n{} = law\n", papers.display(), law.display()),
    )
    .unwrap();
    let keys = tmp.path().join("keys.toml");
    let (alice, bob, admin) = (
        "alice-key-0123456789abcdef",
        "bob-key-0123456789abcdef",
        "admin-key-0123456789abcdef",
    );
    std::fs::write(
        &keys,
        format!(
            "[[key]]\nname = \"alice\"\nkey = \"{alice}\"\ncollections = [\"papers\"]\n\n\
             [[key]]\nname = \"bob\"\nkey = \"{bob}\"\ncollections = [\"law\"]\n\n\
             [[key]]\nname = \"admin\"\nkey = \"{admin}\"\n"
        ),
    )
    .unwrap();
    let server = Server::start_with(
        &tmp.path().join("data"),
        &watch,
        &["--keys-file", &keys.display().to_string()],
    );
    let call = |key: &str, method: &str, path: &str, body: Option<Value>| {
        let auth = format!("Bearer {key}");
        let payload = body.map(|b| b.to_string());
        let res = request_with(
            method,
            &server.url(path),
            &[("Authorization", auth.as_str())],
            payload
                .as_deref()
                .map(|p| ("application/json", p.as_bytes())),
        );
        (res.status, res.text())
    };
    let get = |key: &str, path: &str| call(key, "GET", path, None).0;
    // No key at all: 401, on loopback too.
    assert_eq!(server.get_raw("/api/status").status, 401);
    // Wait for both documents, as the admin sees them.
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        let (code, body) = call(admin, "GET", "/api/status", None);
        assert_eq!(code, 200, "{body}");
        let s: Value = serde_json::from_str(&body).unwrap();
        if settled(&s)
            && [PAPER, JUDGMENT]
                .iter()
                .all(|p| doc(&s, p).is_some_and(|d| d["state"] == "indexed"))
        {
            break s;
        }
        assert!(Instant::now() < deadline, "not indexed: {s:#}");
        std::thread::sleep(Duration::from_millis(300));
    };
    let judgment_id = doc(&status, JUDGMENT).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();

    // Alice's status lists her collection's document only.
    let (_, body) = call(alice, "GET", "/api/status", None);
    let s: Value = serde_json::from_str(&body).unwrap();
    assert!(
        doc(&s, PAPER).is_some() && doc(&s, JUDGMENT).is_none(),
        "{s:#}"
    );
    // Her searches never reach the judgment, even asked for by its words.
    let (code, body) = call(
        alice,
        "POST",
        "/api/search",
        Some(json!({ "query": "Sinnott Minister for Education", "top_k": 10 })),
    );
    assert_eq!(code, 200, "{body}");
    assert!(!body.contains(JUDGMENT), "{body}");
    let (code, body) = call(
        alice,
        "POST",
        "/api/search",
        Some(json!({ "query": "Sinnott", "collections": ["law"] })),
    );
    assert_eq!(code, 403, "{body}");
    // Nor its text or file, nor through the OpenAI API.
    let text = format!("/api/documents/{judgment_id}/text?page=1");
    let file = format!("/api/documents/{judgment_id}/file");
    assert_eq!(get(alice, &text), 404);
    assert_eq!(get(alice, &file), 404);
    let (code, body) = call(
        alice,
        "POST",
        "/v1/chat/completions",
        Some(
            json!({ "model": "docchat", "messages": [{ "role": "user", "content": "Who is Sinnott?" }],
                     "docchat": { "collections": ["law"] } }),
        ),
    );
    assert_eq!(code, 403, "{body}");
    // Bob reads the judgment's text.
    let (code, body) = call(
        bob,
        "GET",
        &format!("/api/documents/{judgment_id}/text?page=1"),
        None,
    );
    assert_eq!(code, 200, "{body}");
    assert!(
        body.contains("Sinnott") || body.contains("SINNOTT"),
        "{body}"
    );
    // A limited key may not change the folders.
    let (code, _) = call(
        alice,
        "POST",
        "/api/collections",
        Some(json!({ "path": law.display().to_string(), "name": "mine" })),
    );
    assert_eq!(code, 403);

    // Chats are per key.
    let (code, body) = call(
        alice,
        "POST",
        "/api/chat",
        Some(json!({ "question": "What does the paper say about trace trees?", "max_tokens": 16 })),
    );
    assert_eq!(code, 200, "{body}");
    let (chat_id, citations) = chat_and_citations(&body);
    assert!(!citations.to_string().contains(JUDGMENT), "{citations}");
    let (_, mine) = call(alice, "GET", "/api/chats", None);
    assert!(mine.contains(&chat_id), "{mine}");
    let (_, theirs) = call(bob, "GET", "/api/chats", None);
    assert!(!theirs.contains(&chat_id), "{theirs}");
    let chat = format!("/api/chats/{chat_id}");
    assert_eq!(get(bob, &chat), 404);
    assert_eq!(call(bob, "DELETE", &chat, None).0, 404);
    assert_eq!(get(alice, &chat), 200);
}
