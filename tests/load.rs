//! Under load while a folder is indexed (`docchat bench load`, bounded, loopback):
//! every request gets an answer or a clean 503, the server stays up with bounded
//! memory, and a client that walks away from an answer frees its slot at once.

use crate::common::{corpus, docchat, outcome};
use serde_json::Value;

#[test]
fn every_request_gets_an_answer_or_a_clean_503() {
    let (code, stdout, stderr) = outcome(docchat().args([
        "bench",
        "load",
        corpus().join("pdf-wild/tracemonkey.pdf").to_str().unwrap(),
        "--seconds",
        "15",
        "--chat-clients",
        "3",
        "--max-queue",
        "1",
        "--max-tokens",
        "24",
        "--json",
    ]));
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let r: Value = serde_json::from_str(&stdout).unwrap();
    println!("{r:#}");
    assert_eq!(r["alive"], true);
    let kind = |k: &str| {
        r["kinds"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["kind"] == k)
            .unwrap_or_else(|| panic!("{k}: {r:#}"))
            .clone()
    };
    for k in ["chat", "search", "upload", "walk-away"] {
        let f = kind(k);
        assert_eq!(f["errors"], 0, "{k}: {f:#}");
        assert!(f["requests"].as_u64().unwrap() >= 1, "{k}: {f:#}");
    }
    for k in ["chat", "search", "upload"] {
        assert!(kind(k)["ok"].as_u64().unwrap() >= 1, "{k}: {r:#}");
    }
    // Four clients on one model with one waiting place: some are told to come back.
    let busy: u64 = ["chat", "walk-away"]
        .iter()
        .map(|k| kind(k)["busy"].as_u64().unwrap())
        .sum();
    assert!(busy >= 1, "the queue bound was reached: {r:#}");
    // Every upload became a document, besides the paper.
    assert_eq!(
        r["documents_indexed"].as_u64().unwrap(),
        kind("upload")["ok"].as_u64().unwrap() + 1,
        "{r:#}"
    );
    // Memory: the model files, their caches and the index, with room to spare.
    let peak = r["peak_rss_mb"].as_f64().unwrap();
    let models = r["model_files_mb"].as_f64().unwrap();
    assert!(peak < models + 1500.0, "peak RSS {peak} MB");
    // A walked-away answer of 2,000 tokens would take a minute; the next question
    // does not wait for it.
    let idle = r["idle_ttft_ms"].as_f64().unwrap();
    let after = r["after_walk_away_ttft_ms"].as_f64().unwrap();
    assert!(
        after < idle * 2.0 + 2000.0,
        "after {after} ms, idle {idle} ms"
    );
}

/// Searches and uploads past their bounds get a clean 503 with `Retry-After`, and
/// the places come back as requests end. Eight searches are held at their start
/// (pause point `search`); four uploads hold their places while their bodies have
/// not arrived.
#[test]
fn searches_and_uploads_past_their_bounds_get_503_and_their_places_back() {
    use crate::common::{Server, http, settled};
    use serde_json::json;
    use std::io::{Read, Write};
    use std::time::Duration;
    let tmp = tempfile::tempdir().unwrap();
    let docs = tmp.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::write(
        docs.join("note.md"),
        "# Note\n\nThe pears ripen in August.\n",
    )
    .unwrap();
    let watch = tmp.path().join("watch-dirs");
    std::fs::write(&watch, format!("{} = docs\n", docs.display())).unwrap();
    let hold = tmp.path().join("hold");
    std::fs::create_dir_all(&hold).unwrap();
    let mut cmd = Server::command(&tmp.path().join("data"), &watch, &[]);
    cmd.env("DOCCHAT_TEST_PAUSE", format!("search:{}", hold.display()));
    let server = Server::spawn(cmd);
    let wait = Duration::from_secs(120);
    server.wait_status("the note", wait, |s| {
        settled(s) && s["counts"]["indexed"] == 1
    });
    let search = json!({ "query": "pears", "mode": "keyword" });

    let held: Vec<_> = (0..8)
        .map(|_| {
            let (url, body) = (server.url("/api/search"), search.clone());
            std::thread::spawn(move || http::request("POST", &url, Some(&body)).status)
        })
        .collect();
    server.wait_status("eight searches running", wait, |s| {
        s["requests"]["searches"] == 8
    });
    let res = http::request("POST", &server.url("/api/search"), Some(&search));
    assert_eq!(res.status, 503, "{}", res.text());
    assert!(res.text().contains("too many searches"), "{}", res.text());
    assert_eq!(res.header("retry-after"), Some("1"));
    std::fs::write(hold.join("search.go"), b"").unwrap();
    for h in held {
        assert_eq!(h.join().unwrap(), 200);
    }
    assert_eq!(server.post("/api/search", &search).0, 200);

    let authority = server.base.trim_start_matches("http://").to_string();
    let body = vec![b'a'; 100];
    let mut slow: Vec<std::net::TcpStream> = (0..4)
        .map(|i| {
            let mut s = std::net::TcpStream::connect(&authority).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
            write!(
                s,
                "POST /api/collections/docs/files?name=slow-{i}.md HTTP/1.1\r\nHost: {authority}\r\n\
                 Content-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .unwrap();
            s
        })
        .collect();
    server.wait_status("four uploads being received", wait, |s| {
        s["requests"]["uploads"] == 4
    });
    let late = || {
        http::request_raw(
            "POST",
            &server.url("/api/collections/docs/files?name=late.md"),
            Some(("application/octet-stream", b"# Late\n\nThe plums follow.\n")),
        )
    };
    let res = late();
    assert_eq!(res.status, 503, "{}", res.text());
    assert!(res.text().contains("too many uploads"), "{}", res.text());
    // One body arrives: that upload is written, and its place is free again.
    let mut first = slow.remove(0);
    first.write_all(&body).unwrap();
    let mut answer = String::new();
    let _ = first.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    assert_eq!(late().status, 201);
    drop(slow);
}
