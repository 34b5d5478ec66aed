//! Conversations kept server-side: the turns a follow-up uses, the answer written
//! back with its sources, and a chat exported to Markdown with its citations.

use crate::answer::rag::{AnswerEvent, AskOptions, Rag, Sources};
use crate::clock::{fresh_hex, now_ms};
use anyhow::Result;
use docchat_core::{ChatTurn, Role};
use docchat_store::{ChatRecord, ChatStore, MessageRecord};
use serde_json::Value;
use tokio::sync::mpsc;

/// Longest title made from a first question, in characters.
const TITLE_CHARS: usize = 60;

/// A fresh chat id.
pub fn new_chat_id() -> String {
    fresh_hex(16)
}

/// The title of a chat that starts with `question`: its first line, shortened.
pub fn title_of(question: &str) -> String {
    let line = question
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("Chat")
        .trim();
    if line.chars().count() <= TITLE_CHARS {
        return line.to_string();
    }
    let cut: String = line.chars().take(TITLE_CHARS).collect();
    let cut = cut.rsplit_once(' ').map_or(cut.as_str(), |(head, _)| head);
    format!("{cut}…")
}

/// The conversation so far as turns for the prompt.
pub fn turns(messages: &[MessageRecord]) -> Vec<ChatTurn> {
    messages
        .iter()
        .filter(|m| !m.content.trim().is_empty())
        .map(|m| {
            let role = if m.role == "user" {
                Role::User
            } else {
                Role::Assistant
            };
            ChatTurn::new(role, m.content.clone())
        })
        .collect()
}

/// Answers `question` in the chat `chat` (created when new): the question is
/// written first, then the answer with its sources, also when the client leaves
/// mid-way (the part written so far, marked as stopped). Events go to `out`.
pub async fn answer_in_chat(
    rag: Rag,
    chats: ChatStore,
    chat: ChatRecord,
    question: String,
    opts: AskOptions,
    out: mpsc::Sender<AnswerEvent>,
) -> Result<()> {
    let earlier = chats.messages(&chat.id).await?;
    let seq = earlier.last().map_or(0, |m| m.seq + 1);
    if chats.chat(&chat.id).await?.is_none() {
        chats.put_chat(&chat).await?;
    }
    chats
        .add_message(&MessageRecord {
            chat_id: chat.id.clone(),
            seq,
            role: "user".into(),
            content: question.clone(),
            sources: None,
            created_ms: now_ms(),
        })
        .await?;

    let (tx, mut rx) = mpsc::channel(64);
    let history = turns(&earlier);
    let task = tokio::spawn(async move { rag.answer(question, history, opts, tx).await });
    let mut text = String::new();
    let mut sources: Option<Sources> = None;
    let mut stats = None;
    let mut client_left = false;
    // A whole-document reading: its notes so far, and how far it got.
    let mut notes = Vec::new();
    let mut reading = None;
    loop {
        // The client leaving stops the answer at once, not at its next event.
        let ev = tokio::select! {
            ev = rx.recv() => ev,
            () = out.closed() => {
                client_left = true;
                break;
            }
        };
        let Some(ev) = ev else { break };
        match &ev {
            AnswerEvent::Token(t) => text.push_str(t),
            AnswerEvent::Citations(s) => sources = Some(s.clone()),
            AnswerEvent::Done(s) => stats = Some(s.clone()),
            AnswerEvent::Reading(p) => {
                notes.extend(p.notes.iter().cloned());
                reading = Some((p.windows_done, p.windows_total));
            }
            AnswerEvent::Error(_) => {}
        }
        if out.send(ev).await.is_err() {
            // Dropping the receiver stops the generation.
            client_left = true;
            break;
        }
    }
    drop(rx);
    let _ = task.await;
    let stopped = client_left || stats.is_none();
    let partial = stopped && text.trim().is_empty() && reading.is_some();
    if partial && let Some((done, total)) = reading {
        // Stopped while reading: what was read so far is kept, marked partial.
        text = crate::answer::read::partial_answer(&notes, done, total);
    }
    let record = serde_json::json!({
        "sources": sources,
        "stats": stats,
        "stopped": stopped,
        "partial": partial,
    });
    chats
        .add_message(&MessageRecord {
            chat_id: chat.id,
            seq: seq + 1,
            role: "assistant".into(),
            content: text,
            sources: Some(record.to_string()),
            created_ms: now_ms(),
        })
        .await?;
    Ok(())
}

/// A chat as Markdown: the turns, and under each answer its sources with page and
/// snippet, the cited ones marked.
pub fn markdown(chat: &ChatRecord, messages: &[MessageRecord]) -> String {
    let mut out = format!("# {}\n\n", chat.title.replace('\n', " "));
    out.push_str(&format!(
        "_{} messages, exported from docchat._\n\n",
        messages.len()
    ));
    for m in messages {
        if m.role == "user" {
            out.push_str(&format!("## Question\n\n{}\n\n", m.content.trim()));
            continue;
        }
        out.push_str(&format!("### Answer\n\n{}\n\n", m.content.trim()));
        let record: Value = m
            .sources
            .as_deref()
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or(Value::Null);
        if record["stopped"] == true {
            out.push_str("_(stopped before the end)_\n\n");
        }
        let citations = record["sources"]["citations"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if citations.is_empty() {
            continue;
        }
        out.push_str("Sources:\n\n");
        for c in citations {
            let (start, end) = (
                c["page_start"].as_u64().unwrap_or(0),
                c["page_end"].as_u64().unwrap_or(0),
            );
            let path = c["path"].as_str().unwrap_or("");
            let word = docchat_core::FileKind::from_path(std::path::Path::new(path))
                .map_or("page", docchat_core::FileKind::page_word);
            let pages = if start == end {
                format!("{word} {start}")
            } else {
                format!("{word}s {start}–{end}")
            };
            let snippet: String = c["snippet"]
                .as_str()
                .unwrap_or("")
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            let short: String = snippet.chars().take(200).collect();
            out.push_str(&format!(
                "{}. **{}/{}**, {pages}{}: “{}{}”\n",
                c["n"],
                c["collection"].as_str().unwrap_or(""),
                c["path"].as_str().unwrap_or(""),
                if c["cited"] == true { " (cited)" } else { "" },
                short,
                if snippet.chars().count() > 200 {
                    "…"
                } else {
                    ""
                }
            ));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_the_first_line_shortened_at_a_word() {
        assert_eq!(title_of("\n  What is .Call?\nmore"), "What is .Call?");
        let long =
            "How do I register native routines so that R finds them when the package is loaded";
        let t = title_of(long);
        assert!(
            t.ends_with('…') && t.chars().count() <= TITLE_CHARS + 1,
            "{t}"
        );
        assert!(long.starts_with(t.trim_end_matches('…')));
    }

    #[test]
    fn markdown_lists_answers_with_their_sources() {
        let chat = ChatRecord {
            id: "c".into(),
            title: "FFI".into(),
            created_ms: 0,
            updated_ms: 0,
            owner: String::new(),
        };
        let sources = serde_json::json!({
            "sources": {"citations": [
                {"n": 1, "collection": "papers", "path": "tm.pdf", "page_start": 10, "page_end": 10,
                 "snippet": "Calls  to\nC builtins", "cited": true},
                {"n": 2, "collection": "papers", "path": "tm.pdf", "page_start": 2, "page_end": 3,
                 "snippet": "Other", "cited": false}
            ]},
            "stopped": false,
        });
        let messages = vec![
            MessageRecord {
                chat_id: "c".into(),
                seq: 0,
                role: "user".into(),
                content: "How?".into(),
                sources: None,
                created_ms: 0,
            },
            MessageRecord {
                chat_id: "c".into(),
                seq: 1,
                role: "assistant".into(),
                content: "Through the FFI [1].".into(),
                sources: Some(sources.to_string()),
                created_ms: 0,
            },
        ];
        let md = markdown(&chat, &messages);
        assert!(md.starts_with("# FFI\n"));
        assert!(md.contains("## Question\n\nHow?"));
        assert!(md.contains("### Answer\n\nThrough the FFI [1]."));
        assert!(md.contains("1. **papers/tm.pdf**, page 10 (cited): “Calls to C builtins”"));
        assert!(md.contains("2. **papers/tm.pdf**, pages 2–3: “Other”"));
        assert_eq!(turns(&messages).len(), 2);
    }
}
