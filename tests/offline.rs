//! Offline, proven: the whole flow (serve, index, ask, search, the OpenAI API with the
//! official client) in a network namespace that has nothing but loopback, with every
//! socket docchat connects or sends on recorded by strace.

use crate::common::http::request;
use crate::common::{Server, corpus, run_python, settled, sse_events};
use serde_json::json;
use std::process::Command;
use std::time::Duration;

/// Set in the copy of this test that runs inside the namespace.
const INSIDE: &str = "DOCCHAT_TEST_IN_NETNS";

/// Checks, inside the namespace, that it has nothing but loopback, and brings it up.
fn loopback_only() {
    let st = Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status()
        .unwrap();
    assert!(st.success());
    let links = Command::new("ip").args(["-o", "link"]).output().unwrap();
    let links = String::from_utf8_lossy(&links.stdout);
    assert_eq!(links.lines().count(), 1, "only loopback: {links}");
    // Nothing outside answers here.
    assert!(
        std::net::TcpStream::connect_timeout(
            &"1.1.1.1:443".parse().unwrap(),
            Duration::from_secs(2)
        )
        .is_err()
    );
}

/// The peer addresses in an strace log of connect/sendto/sendmsg/bind calls.
fn addresses(log: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in log.lines() {
        for (open, close) in [("inet_addr(\"", "\")"), ("inet_pton(AF_INET6, \"", "\"")] {
            let mut rest = line;
            while let Some(i) = rest.find(open) {
                let tail = &rest[i + open.len()..];
                let end = tail.find(close).unwrap_or(tail.len());
                out.push(tail[..end].to_string());
                rest = &tail[end..];
            }
        }
    }
    out
}

#[test]
fn the_whole_flow_runs_offline_and_opens_no_outbound_socket() {
    if std::env::var_os(INSIDE).is_none() {
        // This test runs again, alone, in a new network namespace (`unshare -n`) and
        // a new PID namespace, so nothing it starts outlives it (a process that
        // strace traced lives on when strace is killed).
        let out = Command::new("unshare")
            .args(["--net", "--pid", "--fork", "--kill-child"])
            .arg(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "offline::the_whole_flow_runs_offline_and_opens_no_outbound_socket",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(INSIDE, "1")
            .output()
            .unwrap();
        let printed = String::from_utf8_lossy(&out.stdout);
        println!("{printed}");
        assert!(
            out.status.success(),
            "the run in the namespace failed:\n{printed}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(printed.contains("1 passed"), "{printed}");
        assert!(printed.contains("offline run:"), "{printed}");
        return;
    }
    loopback_only();
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("papers");
    std::fs::create_dir(&docs).unwrap();
    std::fs::copy(
        corpus().join("pdf-wild/tracemonkey.pdf"),
        docs.join("tracemonkey.pdf"),
    )
    .unwrap();
    let watch = dir.path().join("watch-dirs");
    std::fs::write(&watch, format!("{} = papers\n", docs.display())).unwrap();
    let trace = dir.path().join("strace.log");
    let serve = Server::command(&dir.path().join("data"), &watch, &[]);
    let trace_arg = trace.display().to_string();
    let traced = Server::wrapped(
        &serve,
        &[
            "strace",
            "-f",
            "-qq",
            "-e",
            "signal=none",
            "-e",
            "trace=connect,bind,sendto,sendmsg,sendmmsg",
            "-o",
            &trace_arg,
        ],
    );
    let server = Server::spawn(traced);

    // Index.
    server.wait_status("the paper to be indexed", Duration::from_secs(300), |s| {
        settled(s) && s["counts"]["indexed"] == 1
    });
    // Ask: a streamed answer with citations.
    let (code, body) = server.post(
        "/api/chat",
        &json!({"question": "What is a trace tree?", "save": false}),
    );
    assert_eq!(code, 200, "{body}");
    let events = sse_events(&body);
    assert!(events.iter().any(|(n, _)| n == "token"), "{body}");
    assert!(events.iter().any(|(n, _)| n == "citations"), "{body}");
    // Search.
    let res = request(
        "POST",
        &server.url("/api/search"),
        Some(&json!({"query": "type-specialized native code"})),
    );
    assert_eq!(res.status, 200);
    assert!(!res.json()["hits"].as_array().unwrap().is_empty());
    // The OpenAI API through the official client.
    let script = format!(
        "import openai\n\
         c = openai.OpenAI(base_url='{base}/v1', api_key='none', max_retries=0)\n\
         r = c.chat.completions.create(model='docchat', max_tokens=24, \
             messages=[{{'role': 'user', 'content': 'What does TraceMonkey record?'}}])\n\
         assert r.choices[0].message.content\n\
         e = c.embeddings.create(model='all-MiniLM-L6-v2', input=['offline'])\n\
         print('ok', len(e.data[0].embedding))\n",
        base = server.base
    );
    let printed = run_python(&script);
    assert!(printed.contains("ok 384"), "{printed}");
    drop(server);

    // Every address docchat bound, connected or sent to is loopback.
    let log = std::fs::read_to_string(&trace).unwrap();
    let seen = addresses(&log);
    assert!(
        seen.iter().any(|a| a == "127.0.0.1"),
        "strace saw the server bind 127.0.0.1: {log}"
    );
    let outside: Vec<&String> = seen
        .iter()
        .filter(|a| {
            !a.parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback() || ip.is_unspecified())
        })
        .collect();
    assert!(
        outside.is_empty(),
        "docchat reached out to {outside:?}:\n{log}"
    );
    let connects = log.lines().filter(|l| l.contains("connect(")).count();
    println!(
        "offline run: {} socket calls traced, {connects} connects, all loopback or local",
        log.lines().count()
    );
}
