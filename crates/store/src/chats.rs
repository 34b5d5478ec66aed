//! Chat history in LanceDB: the `chats` table (one row per conversation) and the
//! `messages` table (one row per turn, with the answer's sources as JSON).

use crate::Result;
use crate::arrow_rows::Columns;
use crate::location::Location;
use arrow_array::{
    ArrayRef, Int64Array, RecordBatch, RecordBatchIterator, StringArray, UInt32Array,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use futures::TryStreamExt;
use lancedb::Table;
use lancedb::query::{ExecutableQuery, QueryBase};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;

const CHATS: &str = "chats";
const MESSAGES: &str = "messages";

/// A conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatRecord {
    /// Stable id.
    pub id: String,
    /// Title shown in the history list.
    pub title: String,
    /// Creation time (Unix milliseconds).
    pub created_ms: i64,
    /// Time of the last message or rename.
    pub updated_ms: i64,
    /// The name of the API key it belongs to (empty: the server's only user).
    #[serde(default)]
    pub owner: String,
}

/// One turn of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageRecord {
    /// The conversation.
    pub chat_id: String,
    /// Position in the conversation, from 0.
    pub seq: u32,
    /// `user` or `assistant`.
    pub role: String,
    /// The text.
    pub content: String,
    /// For an answer: its sources (the citations object), as JSON.
    pub sources: Option<String>,
    /// When it was written (Unix milliseconds).
    pub created_ms: i64,
}

fn chats_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("title", DataType::Utf8, false),
        Field::new("created_ms", DataType::Int64, false),
        Field::new("updated_ms", DataType::Int64, false),
        Field::new("owner", DataType::Utf8, true),
    ]))
}

fn messages_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("chat_id", DataType::Utf8, false),
        Field::new("seq", DataType::UInt32, false),
        Field::new("role", DataType::Utf8, false),
        Field::new("content", DataType::Utf8, false),
        Field::new("sources", DataType::Utf8, true),
        Field::new("created_ms", DataType::Int64, false),
    ]))
}

fn chat_batch(c: &ChatRecord) -> Result<RecordBatch> {
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec![c.id.as_str()])),
        Arc::new(StringArray::from(vec![c.title.as_str()])),
        Arc::new(Int64Array::from(vec![c.created_ms])),
        Arc::new(Int64Array::from(vec![c.updated_ms])),
        Arc::new(StringArray::from(vec![c.owner.as_str()])),
    ];
    Ok(RecordBatch::try_new(chats_schema(), cols)?)
}

fn message_batch(m: &MessageRecord) -> Result<RecordBatch> {
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec![m.chat_id.as_str()])),
        Arc::new(UInt32Array::from(vec![m.seq])),
        Arc::new(StringArray::from(vec![m.role.as_str()])),
        Arc::new(StringArray::from(vec![m.content.as_str()])),
        Arc::new(StringArray::from(vec![m.sources.as_deref()])),
        Arc::new(Int64Array::from(vec![m.created_ms])),
    ];
    Ok(RecordBatch::try_new(messages_schema(), cols)?)
}

fn chats_from(b: &RecordBatch) -> Result<Vec<ChatRecord>> {
    use arrow_array::Array;
    let c = Columns::new(b, CHATS);
    let (id, title) = (c.str("id")?, c.str("title")?);
    let (created, updated) = (c.i64("created_ms")?, c.i64("updated_ms")?);
    let owner = c.str("owner")?;
    Ok((0..b.num_rows())
        .map(|i| ChatRecord {
            id: id.value(i).to_string(),
            title: title.value(i).to_string(),
            created_ms: created.value(i),
            updated_ms: updated.value(i),
            owner: if owner.is_null(i) {
                String::new()
            } else {
                owner.value(i).to_string()
            },
        })
        .collect())
}

fn messages_from(b: &RecordBatch) -> Result<Vec<MessageRecord>> {
    use arrow_array::Array;
    let c = Columns::new(b, MESSAGES);
    let (chat, seq, role) = (c.str("chat_id")?, c.u32("seq")?, c.str("role")?);
    let (content, sources, created) = (c.str("content")?, c.str("sources")?, c.i64("created_ms")?);
    Ok((0..b.num_rows())
        .map(|i| MessageRecord {
            chat_id: chat.value(i).to_string(),
            seq: seq.value(i),
            role: role.value(i).to_string(),
            content: content.value(i).to_string(),
            sources: (!sources.is_null(i)).then(|| sources.value(i).to_string()),
            created_ms: created.value(i),
        })
        .collect())
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

async fn rows<T>(
    table: &Table,
    filter: Option<String>,
    convert: fn(&RecordBatch) -> Result<Vec<T>>,
) -> Result<Vec<T>> {
    let mut q = table.query();
    if let Some(f) = filter {
        q = q.only_if(f);
    }
    let batches: Vec<RecordBatch> = q.execute().await?.try_collect().await?;
    let mut out = Vec::new();
    for b in &batches {
        out.extend(convert(b)?);
    }
    Ok(out)
}

/// The chat history of one docchat data directory.
#[derive(Clone)]
pub struct ChatStore {
    chats: Table,
    messages: Table,
}

impl std::fmt::Debug for ChatStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatStore").finish_non_exhaustive()
    }
}

impl ChatStore {
    /// Opens (creating if needed) the history in `dir`.
    pub async fn open(dir: &Path) -> Result<Self> {
        Self::open_at(&Location::folder(dir), None).await
    }

    /// Opens (creating if needed) the history at `location`. `refresh`: for a
    /// history several processes write, how stale a read may be.
    pub async fn open_at(
        location: &Location,
        refresh: Option<std::time::Duration>,
    ) -> Result<Self> {
        let db = location.connect(refresh).await?;
        let names = db
            .table_names()
            .execute()
            .await
            .map_err(|e| location.unreachable(e))?;
        let open = |name: &'static str, schema: SchemaRef| {
            let db = db.clone();
            let exists = names.iter().any(|n| n == name);
            async move {
                if exists {
                    db.open_table(name).execute().await
                } else {
                    match db.create_empty_table(name, schema).execute().await {
                        Ok(t) => Ok(t),
                        // Another process sharing the history made it first.
                        Err(e) => db.open_table(name).execute().await.map_err(|_| e),
                    }
                }
            }
        };
        let mut chats = open(CHATS, chats_schema()).await?;
        if chats.schema().await?.field_with_name("owner").is_err() {
            // A history from before chats had owners: every chat is the only
            // user's (an empty owner). Another process may do the same at once.
            let added = chats
                .add_columns()
                .transform(lancedb::table::NewColumnTransform::SqlExpressions(vec![(
                    "owner".to_string(),
                    "CAST('' AS STRING)".to_string(),
                )]))
                .execute()
                .await;
            if let Err(e) = added {
                chats = db.open_table(CHATS).execute().await?;
                if chats.schema().await?.field_with_name("owner").is_err() {
                    return Err(e.into());
                }
            }
        }
        Ok(Self {
            chats,
            messages: open(MESSAGES, messages_schema()).await?,
        })
    }

    /// Every chat, the most recently active first.
    pub async fn chats(&self) -> Result<Vec<ChatRecord>> {
        self.chats_of(None).await
    }

    /// The chats of `owner` (every chat with `None`), the most recently active
    /// first.
    pub async fn chats_of(&self, owner: Option<&str>) -> Result<Vec<ChatRecord>> {
        let filter = owner.map(|o| format!("owner = {}", quote(o)));
        let mut out = rows(&self.chats, filter, chats_from).await?;
        out.sort_by(|a, b| b.updated_ms.cmp(&a.updated_ms).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// One chat.
    pub async fn chat(&self, id: &str) -> Result<Option<ChatRecord>> {
        Ok(
            rows(&self.chats, Some(format!("id = {}", quote(id))), chats_from)
                .await?
                .into_iter()
                .next(),
        )
    }

    /// Inserts or replaces a chat row.
    pub async fn put_chat(&self, chat: &ChatRecord) -> Result<()> {
        let batch = chat_batch(chat)?;
        let schema = batch.schema();
        let mut merge = self.chats.merge_insert(&["id"]);
        merge
            .when_matched_update_all(None)
            .when_not_matched_insert_all();
        merge
            .execute(Box::new(RecordBatchIterator::new(vec![Ok(batch)], schema)))
            .await?;
        Ok(())
    }

    /// Removes a chat and its messages (messages first: a crash in between leaves
    /// an empty chat, never orphan messages).
    pub async fn delete_chat(&self, id: &str) -> Result<()> {
        self.messages
            .delete(&format!("chat_id = {}", quote(id)))
            .await?;
        self.chats.delete(&format!("id = {}", quote(id))).await?;
        Ok(())
    }

    /// The messages of a chat, in order.
    pub async fn messages(&self, chat_id: &str) -> Result<Vec<MessageRecord>> {
        let mut out = rows(
            &self.messages,
            Some(format!("chat_id = {}", quote(chat_id))),
            messages_from,
        )
        .await?;
        out.sort_by_key(|m| m.seq);
        Ok(out)
    }

    /// Appends a message (one commit) and marks the chat active.
    pub async fn add_message(&self, m: &MessageRecord) -> Result<()> {
        self.messages.add(message_batch(m)?).execute().await?;
        if let Some(mut chat) = self.chat(&m.chat_id).await? {
            chat.updated_ms = chat.updated_ms.max(m.created_ms);
            self.put_chat(&chat).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(chat: &str, seq: u32, role: &str, content: &str) -> MessageRecord {
        MessageRecord {
            chat_id: chat.into(),
            seq,
            role: role.into(),
            content: content.into(),
            sources: (role == "assistant").then(|| "{\"citations\":[]}".to_string()),
            created_ms: 1000 + i64::from(seq),
        }
    }

    #[tokio::test]
    async fn chats_and_messages_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let store = ChatStore::open(dir.path()).await.unwrap();
        for (id, t) in [("a", 10), ("b", 20)] {
            let chat = ChatRecord {
                id: id.into(),
                title: format!("chat {id}"),
                created_ms: t,
                updated_ms: t,
                owner: if id == "a" {
                    "alice".into()
                } else {
                    String::new()
                },
            };
            store.put_chat(&chat).await.unwrap();
        }
        store
            .add_message(&msg("a", 1, "assistant", "Yes [1]."))
            .await
            .unwrap();
        store
            .add_message(&msg("a", 0, "user", "It's here?"))
            .await
            .unwrap();
        store
            .add_message(&msg("b", 0, "user", "Other"))
            .await
            .unwrap();

        let store = ChatStore::open(dir.path()).await.unwrap();
        let chats = store.chats().await.unwrap();
        assert_eq!(
            chats.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        let alice = store.chats_of(Some("alice")).await.unwrap();
        assert_eq!(alice.len(), 1);
        assert_eq!(alice[0].id, "a");
        assert_eq!(store.chats_of(Some("")).await.unwrap()[0].id, "b");
        let m = store.messages("a").await.unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(
            (m[0].role.as_str(), m[0].content.as_str()),
            ("user", "It's here?")
        );
        assert!(m[1].sources.is_some() && m[0].sources.is_none());

        let mut renamed = store.chat("b").await.unwrap().unwrap();
        renamed.title = "Renamed".into();
        store.put_chat(&renamed).await.unwrap();
        assert_eq!(store.chat("b").await.unwrap().unwrap().title, "Renamed");
        store.delete_chat("a").await.unwrap();
        assert!(store.chat("a").await.unwrap().is_none());
        assert!(store.messages("a").await.unwrap().is_empty());
        assert_eq!(store.messages("b").await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_history_from_before_owners_is_brought_over() {
        let dir = tempfile::tempdir().unwrap();
        {
            // The old layout: no owner column.
            let db = lancedb::connect(&dir.path().to_string_lossy())
                .execute()
                .await
                .unwrap();
            let old = Arc::new(Schema::new(chats_schema().fields()[..4].to_vec()));
            let t = db
                .create_empty_table(CHATS, old.clone())
                .execute()
                .await
                .unwrap();
            let cols: Vec<ArrayRef> = vec![
                Arc::new(StringArray::from(vec!["c1"])),
                Arc::new(StringArray::from(vec!["Old chat"])),
                Arc::new(Int64Array::from(vec![5])),
                Arc::new(Int64Array::from(vec![6])),
            ];
            t.add(RecordBatch::try_new(old, cols).unwrap())
                .execute()
                .await
                .unwrap();
        }
        let store = ChatStore::open(dir.path()).await.unwrap();
        let chats = store.chats().await.unwrap();
        assert_eq!(chats.len(), 1);
        assert_eq!(
            (chats[0].title.as_str(), chats[0].owner.as_str()),
            ("Old chat", "")
        );
        assert_eq!(store.chats_of(Some("")).await.unwrap().len(), 1);
    }
}
