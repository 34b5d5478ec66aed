//! Chat history kept by the server: follow-ups continue a chat, chats survive a
//! restart, can be renamed, exported to Markdown (API and CLI) and deleted.

use crate::common::{Server, run, settled, sse_events};
use serde_json::{Value, json};
use std::time::Duration;

const NOTE: &str = "# Lease of the Harbour Street office\n\n\
The tenant pays a monthly rent of 2,450 euros, due on the fifth day of each month. \
The lease runs for three years from 1 March 2025 and may be ended by either party \
with six months of notice in writing. The landlord repairs the heating system; the \
tenant keeps the premises clean and insured.\n";

fn ask(server: &Server, body: &Value) -> Vec<(String, Value)> {
    let (code, text) = server.post("/api/chat", body);
    assert_eq!(code, 200, "{text}");
    let events = sse_events(&text);
    assert!(events.iter().any(|(n, _)| n == "done"), "{text}");
    events
}

#[test]
fn chats_are_kept_continued_renamed_exported_and_deleted() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let docs = tmp.path().join("contracts");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::write(docs.join("lease.md"), NOTE).unwrap();
    let watch = tmp.path().join("watch-dirs");
    std::fs::write(&watch, format!("{}\n", docs.display())).unwrap();
    let ready = |s: &Value| settled(s) && s["counts"]["indexed"] == 1;
    // A models folder of this test's own: links to the default models, and a
    // second chat model to switch to.
    let models = tmp.path().join("models");
    std::fs::create_dir_all(&models).unwrap();
    for e in std::fs::read_dir(crate::common::models_dir()).unwrap() {
        let e = e.unwrap();
        std::os::unix::fs::symlink(e.path(), models.join(e.file_name())).unwrap();
    }
    std::os::unix::fs::symlink(
        crate::common::models_dir().join("gemma-3-270m-q4_k_m.gguf"),
        models.join("gemma-copy.gguf"),
    )
    .unwrap();
    let start = || {
        let mut cmd = Server::command(&data, &watch, &[]);
        cmd.env("DOCCHAT_MODELS_DIR", &models);
        Server::spawn(cmd)
    };

    let server = start();
    server.wait_status("the note to be indexed", Duration::from_secs(120), ready);
    let events = ask(
        &server,
        &json!({"question": "How much is the monthly rent?", "max_tokens": 24}),
    );
    let (name, chat) = &events[0];
    assert_eq!(name, "chat", "the chat's id comes first: {events:?}");
    let id = chat["id"].as_str().unwrap().to_string();
    assert_eq!(chat["title"], "How much is the monthly rent?");
    ask(
        &server,
        &json!({"question": "And the notice period?", "chat_id": id, "max_tokens": 24}),
    );
    // A question that is not to be kept makes no chat.
    ask(
        &server,
        &json!({"question": "Who repairs the heating?", "save": false, "max_tokens": 8}),
    );
    let (code, body) = server.post("/api/chat", &json!({"question": "x", "chat_id": "nope"}));
    assert_eq!(code, 404, "{body}");

    // After a restart the chat is there, with both turns and the answers' sources.
    server.kill();
    let server = start();
    server.wait_status("the restart", Duration::from_secs(120), ready);
    let chats = server.get("/api/chats");
    let listed = chats["chats"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{chats:#}");
    assert_eq!(listed[0]["id"], id.as_str());
    let chat = server.get(&format!("/api/chats/{id}"));
    let messages = chat["messages"].as_array().unwrap();
    let roles: Vec<&str> = messages
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(
        roles,
        ["user", "assistant", "user", "assistant"],
        "{chat:#}"
    );
    assert_eq!(messages[2]["content"], "And the notice period?");
    for answer in [&messages[1], &messages[3]] {
        assert!(
            !answer["content"].as_str().unwrap().trim().is_empty(),
            "{answer:#}"
        );
        assert_eq!(answer["stopped"], false);
        let cited = &answer["sources"]["citations"][0];
        assert_eq!(cited["path"], "lease.md", "{answer:#}");
        assert_eq!(cited["page_start"], 1);
    }

    // Renamed; exported by the API and by the CLI alike.
    let res = crate::common::http::request(
        "PATCH",
        &server.url(&format!("/api/chats/{id}")),
        Some(&json!({"title": "Lease questions"})),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    let bad = crate::common::http::request(
        "PATCH",
        &server.url(&format!("/api/chats/{id}")),
        Some(&json!({"title": "  "})),
    );
    assert_eq!(bad.status, 400);
    let export = server.get_raw(&format!("/api/chats/{id}/export"));
    assert_eq!(export.status, 200);
    assert!(
        export
            .header("content-type")
            .unwrap()
            .starts_with("text/markdown")
    );
    let md = export.text();
    assert!(md.starts_with("# Lease questions\n"), "{md}");
    assert!(
        md.contains("## Question\n\nHow much is the monthly rent?"),
        "{md}"
    );
    assert!(md.contains("**contracts/lease.md**, page 1"), "{md}");
    assert_eq!(md.matches("### Answer").count(), 2, "{md}");
    let cli = run(&data, &["export", id.as_str()]);
    assert_eq!(cli, md);
    let listing = run(&data, &["export"]);
    assert!(
        listing.contains(&id) && listing.contains("Lease questions"),
        "{listing}"
    );

    // Deleted: gone from the list and from its own address.
    let res =
        crate::common::http::request("DELETE", &server.url(&format!("/api/chats/{id}")), None);
    assert_eq!(res.status, 200);
    assert_eq!(server.get_raw(&format!("/api/chats/{id}")).status, 404);
    assert!(
        server.get("/api/chats")["chats"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // Another chat model of the models folder takes over answers while the server
    // runs; one from elsewhere is refused.
    let outside = tmp.path().join("gemma-outside.gguf");
    std::os::unix::fs::symlink(
        crate::common::models_dir().join("gemma-3-270m-q4_k_m.gguf"),
        &outside,
    )
    .unwrap();
    let (code, body) = server.post("/api/models/use", &json!({"model": outside}));
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("only models in the models folder"), "{body}");
    let (code, body) = server.post("/api/models/use", &json!({"model": "gemma-copy.gguf"}));
    assert_eq!(code, 200, "{body}");
    assert_eq!(server.get("/api/status")["models"]["chat"], "gemma-copy");
    ask(
        &server,
        &json!({"question": "How much is the rent?", "save": false, "max_tokens": 8}),
    );
    let (code, body) = server.post(
        "/api/models/use",
        &json!({"model": "all-MiniLM-L6-v2.gguf"}),
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("re-embeds"), "{body}");
    let (code, body) = server.post("/api/models/use", &json!({"model": "no-such-model"}));
    assert_eq!(code, 400, "{body}");
}
