//! Questions about a whole document, end to end with the default chat model: a
//! scoped summary that fits the context (its pages cited), a summary of one chapter
//! (found by its heading) and of pages by number, a "list every…" read in
//! windows (every item in the text, recall against a list made from the text by a
//! pattern), the same question again from the kept notes, an edit of one page that
//! rereads one window, a question from another user answered while a reading runs,
//! and Stop mid-way keeping the notes as a partial answer.
//!
//! The documents are real text: pages of R-ints (a manual nobody here wrote) as
//! `pdftotext` gives them, a page to a form feed, which docchat reads as pages.

use crate::common::{Server, corpus, http, settled, sse_events};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

/// Tokens per window: the eight pages are read in several windows.
const WINDOW_TOKENS: usize = 1200;
/// Floor of the items' recall against the pattern's list, from measurement
/// (BENCHMARKS.md, "Whole documents").
const MIN_RECALL: f64 = 0.5;

/// Pages `first..=last` of R-ints as text, pages separated by form feeds.
fn pages_of_r_ints(first: u32, last: u32, to: &Path) {
    let out = std::process::Command::new("pdftotext")
        .args(["-f", &first.to_string(), "-l", &last.to_string()])
        .arg(corpus().join("manuals/R-ints.pdf"))
        .arg(to)
        .output()
        .expect("pdftotext runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The environment variables of `text` by pattern: `R_…` and `_R_…_` names.
fn variables(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        let name = word.trim_start_matches('_');
        if name.starts_with("R_")
            && name.len() > 3
            && name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        {
            out.insert(word.to_string());
        }
    }
    out
}

fn ask(server: &Server, body: &Value) -> Vec<(String, Value)> {
    let res = http::request("POST", &server.url("/api/chat"), Some(body));
    assert_eq!(res.status, 200, "{}", res.text());
    sse_events(&res.text())
}

fn answer_of(events: &[(String, Value)]) -> String {
    events
        .iter()
        .filter(|(n, _)| n == "token")
        .map(|(_, d)| d["text"].as_str().unwrap())
        .collect()
}

fn last_reading(events: &[(String, Value)]) -> &Value {
    &events
        .iter()
        .rev()
        .find(|(n, d)| n == "reading" && d["finished"] == true)
        .unwrap_or_else(|| panic!("a finished reading: {events:#?}"))
        .1
}

fn document_id(status: &Value, file: &str) -> String {
    status["documents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["path"].as_str().unwrap().ends_with(file))
        .unwrap_or_else(|| panic!("{file} in {status:#}"))["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn whole_documents_are_read_to_the_end_with_coverage_cache_and_stop() {
    let tmp = tempfile::tempdir().unwrap();
    let docs = tmp.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    pages_of_r_ints(57, 64, &docs.join("check-variables.txt"));
    pages_of_r_ints(5, 7, &docs.join("r-ints-start.txt"));
    pages_of_r_ints(35, 42, &docs.join("r-ints-chapters.txt"));
    let watch = tmp.path().join("watch-dirs.txt");
    std::fs::write(&watch, format!("{}\n", docs.display())).unwrap();
    let config = tmp.path().join("docchat.toml");
    std::fs::write(
        &config,
        format!("[reading]\nwindow_tokens = {WINDOW_TOKENS}\n"),
    )
    .unwrap();
    let mut cmd = Server::command(&tmp.path().join("data"), &watch, &[]);
    cmd.env("DOCCHAT_CONFIG", &config);
    let server = Server::spawn(cmd);
    let status = server.wait_status("indexing", Duration::from_secs(300), |s| {
        settled(s) && s["counts"]["indexed"] == 3
    });
    let list_doc = document_id(&status, "check-variables.txt");
    let short_doc = document_id(&status, "r-ints-start.txt");

    // A summary of three pages: they fit the context, and go in whole.
    let events = ask(
        &server,
        &json!({"question": "Summarize this document", "documents": [short_doc],
                "save": false, "max_tokens": 96}),
    );
    let answer = answer_of(&events);
    println!("summary: {answer}");
    let done = last_reading(&events);
    assert_eq!(done["kind"], "summary", "{done:#}");
    assert_eq!(
        (done["pages_read"].as_u64(), done["pages_total"].as_u64()),
        (Some(3), Some(3))
    );
    assert!(
        answer.contains("Read 3 of 3 pages"),
        "coverage said: {answer}"
    );
    let (_, sources) = events.iter().find(|(n, _)| n == "citations").unwrap();
    let sources = sources["citations"].as_array().unwrap();
    assert!(
        sources.iter().all(|c| c["page_start"] == c["page_end"]) && sources.len() == 3,
        "one source per page: {sources:#?}"
    );
    assert!(
        sources
            .iter()
            .any(|c| c["cited"] == true || c["found"] == true),
        "the summary cites a page: {sources:#?}"
    );
    // Without a scope, the same question is an ordinary retrieval.
    let events = ask(
        &server,
        &json!({"question": "Summarize this document", "save": false, "max_tokens": 8}),
    );
    assert!(!events.iter().any(|(n, _)| n == "reading"));

    // A part of a document: "summarize chapter 4" reads the pages from its
    // heading to the next chapter's, found in the text past the running heads.
    let chapters = document_id(&status, "r-ints-chapters.txt");
    let text = std::fs::read_to_string(docs.join("r-ints-chapters.txt")).unwrap();
    let page_of = |heading: &str| {
        text.split('\u{c}')
            .position(|p| p.lines().any(|l| l.trim() == heading))
            .map(|i| i as u64 + 1)
            .unwrap_or_else(|| panic!("{heading} in the text"))
    };
    // Chapter 5 opens its page, below the page's number alone: chapter 4 ends
    // on the page before.
    let (first, last) = (
        page_of("4 Structure of an Installed Package"),
        page_of("5 Files") - 1,
    );
    let events = ask(
        &server,
        &json!({"question": "Summarize chapter 4", "documents": [chapters],
                "save": false, "max_tokens": 96}),
    );
    let answer = answer_of(&events);
    println!("chapter 4: {answer}");
    let done = last_reading(&events);
    assert_eq!(
        (done["pages_read"].as_u64(), done["pages_total"].as_u64()),
        (Some(last - first + 1), Some(last - first + 1)),
        "{done:#}"
    );
    assert!(
        answer.contains(&format!("Read chapter 4, pages {first}-{last}:")),
        "coverage names the chapter and its pages: {answer}"
    );
    let (_, sources) = events.iter().find(|(n, _)| n == "citations").unwrap();
    let sources = sources["citations"].as_array().unwrap();
    assert!(
        !sources.is_empty()
            && sources.iter().all(|c| {
                let p = c["page_start"].as_u64().unwrap();
                (first..=last).contains(&p)
            }),
        "only the chapter's pages: {sources:#?}"
    );
    let first_source = sources[0]["snippet"].as_str().unwrap();
    assert!(
        first_source.starts_with("4 Structure of an Installed Package"),
        "the chapter's first page from its heading on: {first_source}"
    );
    // Pages by number, and a chapter the document does not have.
    let events = ask(
        &server,
        &json!({"question": "Summarize pages 2-3", "documents": [chapters],
                "save": false, "max_tokens": 32}),
    );
    assert!(answer_of(&events).contains("Read pages 2-3: 2 of 2 pages"));
    let events = ask(
        &server,
        &json!({"question": "Summarize chapter 9", "documents": [chapters], "save": false}),
    );
    let answer = answer_of(&events);
    assert!(
        answer.starts_with("Chapter 9 was not found in")
            && !events.iter().any(|(n, _)| n == "reading"),
        "{answer}"
    );

    // "List every…": read in windows, each item in the text.
    let text = std::fs::read_to_string(docs.join("check-variables.txt")).unwrap();
    let expected = variables(&text);
    assert!(expected.len() >= 40, "{expected:?}");
    let question = "List every environment variable this document mentions";
    let started = Instant::now();
    let events = ask(
        &server,
        &json!({"question": question, "documents": [list_doc], "save": false}),
    );
    let first_time = started.elapsed();
    let done = last_reading(&events).clone();
    let windows = done["windows_total"].as_u64().unwrap();
    assert!(windows >= 3, "{done:#}");
    assert_eq!(done["from_cache"], 0);
    assert_eq!(
        (done["pages_read"].as_u64(), done["pages_total"].as_u64()),
        (Some(8), Some(8))
    );
    let progress: Vec<u64> = events
        .iter()
        .filter(|(n, d)| n == "reading" && d["finished"] == false)
        .map(|(_, d)| d["windows_done"].as_u64().unwrap())
        .collect();
    assert_eq!(
        progress,
        (0..=windows).collect::<Vec<_>>(),
        "progress after each window"
    );
    let answer = answer_of(&events);
    let items: Vec<String> = answer
        .lines()
        .filter_map(|l| l.strip_prefix("- "))
        .map(|l| l.split(" (p").next().unwrap().to_string())
        .collect();
    assert!(!items.is_empty(), "{answer}");
    let lower = text.to_lowercase();
    for item in &items {
        assert!(
            lower.contains(&item.to_lowercase()),
            "{item:?} is not in the document"
        );
    }
    let found = expected
        .iter()
        .filter(|v| items.iter().any(|i| i == *v))
        .count();
    let recall = found as f64 / expected.len() as f64;
    let precision =
        items.iter().filter(|i| expected.contains(*i)).count() as f64 / items.len() as f64;
    println!(
        "list: {} items, recall {recall:.2} ({found} of {}), precision {precision:.2}, {:.1} s",
        items.len(),
        expected.len(),
        first_time.as_secs_f64()
    );
    assert!(recall >= MIN_RECALL, "recall {recall:.2}: {answer}");
    assert!(answer.contains("Read 8 of 8 pages"), "{answer}");

    // The same question again: every window's notes are kept.
    let started = Instant::now();
    let again = ask(
        &server,
        &json!({"question": question, "documents": [list_doc], "save": false}),
    );
    assert_eq!(last_reading(&again)["from_cache"], windows);
    assert_eq!(answer_of(&again).lines().next(), answer.lines().next());
    assert!(
        started.elapsed() < first_time / 4,
        "{:?} against {first_time:?}",
        started.elapsed()
    );

    // One page edited: one window is read again.
    let before = server.get("/api/status")["stats"]["documents_extracted"]
        .as_u64()
        .unwrap();
    let mut pages: Vec<String> = text.split('\u{c}').map(String::from).collect();
    pages[5] = pages[5].replacen("the", "THE", 1);
    std::fs::write(docs.join("check-variables.txt"), pages.join("\u{c}")).unwrap();
    server.wait_status("the edit indexed", Duration::from_secs(120), |s| {
        settled(s) && s["stats"]["documents_extracted"].as_u64().unwrap() > before
    });
    let edited = ask(
        &server,
        &json!({"question": question, "documents": [list_doc], "save": false}),
    );
    let done = last_reading(&edited);
    assert_eq!(done["windows_total"], windows, "{done:#}");
    assert_eq!(
        done["from_cache"].as_u64().unwrap(),
        windows - 1,
        "{done:#}"
    );

    // A question from another user meanwhile goes first.
    questions_go_first(&server, &list_doc);

    // Stop mid-way: the notes read so far are kept, marked partial, and the model is
    // free again at once.
    let body = json!({"question": "List every function name this document mentions",
                      "documents": [list_doc]});
    let chat_id = stop_after_first_window(&server, &body);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = server.get("/api/status");
        if s["requests"]["chat_in_flight"] == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the reading goes on after Stop: {s:#}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let chat = server.get(&format!("/api/chats/{chat_id}"));
    let answer = &chat["messages"][1];
    assert_eq!(answer["partial"], true, "{chat:#}");
    assert_eq!(answer["stopped"], true, "{chat:#}");
    let content = answer["content"].as_str().unwrap();
    let stopped_after: u64 = content
        .strip_prefix("Partial answer: stopped after ")
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{chat:#}"));
    println!("stopped after {stopped_after} of {windows} windows");
    assert!((1..windows).contains(&stopped_after), "{chat:#}");
    assert!(
        content.contains("(p. "),
        "the notes so far, with their pages: {content}"
    );
}

/// Posts `body`, reads its events until the first window is read, then closes the
/// connection (as the browser's Stop does); returns the chat's id.
fn stop_after_first_window(server: &Server, body: &Value) -> String {
    let mut chat_id = None;
    http::post_events(&server.base, body, |name, data| match name {
        "chat" => {
            chat_id = Some(data["id"].as_str().unwrap().to_string());
            true
        }
        "reading" => data["windows_done"] != 1,
        "token" | "citations" => panic!("the answer came before the first window: {data}"),
        _ => true,
    });
    chat_id.expect("a chat event first")
}

/// A question asked while a reading runs goes first: it is answered while the
/// reading still has windows to read, and the reading then goes on to the end.
fn questions_go_first(server: &Server, list_doc: &str) {
    let (tx, rx) = std::sync::mpsc::channel();
    let body = json!({"question": "List every option name this document mentions",
                      "documents": [list_doc], "save": false});
    let reading = std::thread::scope(|scope| {
        let reader = scope.spawn(|| {
            let mut progress: Vec<(Instant, u64, u64)> = Vec::new();
            http::post_events(&server.base, &body, |name, data| {
                if name == "reading" {
                    let done = data["windows_done"].as_u64().unwrap();
                    progress.push((
                        Instant::now(),
                        done,
                        data["windows_total"].as_u64().unwrap(),
                    ));
                    if done == 1 {
                        let _ = tx.send(());
                    }
                }
                true
            });
            progress
        });
        rx.recv_timeout(Duration::from_secs(120))
            .expect("the first window is read");
        let asked = Instant::now();
        let events = ask(
            server,
            &json!({"question": "What does _R_CHECK_FORCE_SUGGESTS_ do?", "save": false, "max_tokens": 32}),
        );
        assert!(events.iter().any(|(n, _)| n == "done"), "{events:#?}");
        let answered = Instant::now();
        let progress = reader.join().unwrap();
        (asked, answered, progress)
    });
    let (asked, answered, progress) = reading;
    let &(finished_at, last_done, total) = progress.last().unwrap();
    let done_when_answered = progress
        .iter()
        .filter(|(at, _, _)| *at <= answered)
        .map(|(_, d, _)| *d)
        .max()
        .unwrap();
    println!(
        "a question during a reading: answered in {:.1} s, with {done_when_answered} of {total} windows read",
        (answered - asked).as_secs_f64()
    );
    assert!(
        done_when_answered + 1 < total,
        "the question waited for the reading: {progress:?}"
    );
    assert_eq!(
        last_done, total,
        "the reading went on to the end: {progress:?}"
    );
    assert!(finished_at > answered, "after the question");
}
