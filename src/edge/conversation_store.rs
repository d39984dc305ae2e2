//! [`ConversationStore`] on the room's Durable Object SQLite: one row per thread, comment and
//! chat message, each a JSON record with the columns the queries select on. Writes made in one
//! synchronous stretch (no `await` between them) commit together, and the output gate holds
//! the answer until they are durable
//! (<https://developers.cloudflare.com/durable-objects/api/sqlite-storage-api/>).

use super::sql_store::{backend, int, string};
use crate::conversations::{ChatMessage, Comment, ConversationStore, Thread};
use crate::storage::StoreError;
use serde::de::DeserializeOwned;
use worker::{SqlStorage, SqlStorageValue};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS conv_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS conv_threads (
  id INTEGER PRIMARY KEY, seq INTEGER NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS conv_threads_by_seq ON conv_threads (seq);
CREATE TABLE IF NOT EXISTS conv_comments (
  id INTEGER PRIMARY KEY, thread INTEGER NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS conv_comments_by_thread ON conv_comments (thread, id);
CREATE TABLE IF NOT EXISTS conv_chat (id INTEGER PRIMARY KEY, data TEXT NOT NULL);
";

/// A room's conversations in its SQLite storage.
pub struct SqlConversations {
    sql: SqlStorage,
}

fn record<T: DeserializeOwned>(row: Vec<SqlStorageValue>) -> Result<T, StoreError> {
    let text = row
        .into_iter()
        .next()
        .map(string)
        .transpose()?
        .flatten()
        .ok_or_else(|| StoreError::Inconsistent("a conversation row without data".into()))?;
    serde_json::from_str(&text).map_err(|e| StoreError::Inconsistent(format!("stored record: {e}")))
}

fn json<T: serde::Serialize>(value: &T) -> Result<SqlStorageValue, StoreError> {
    serde_json::to_string(value)
        .map(Into::into)
        .map_err(|e| StoreError::Backend(format!("encoding a record: {e}")))
}

fn id(v: u64) -> SqlStorageValue {
    // Ids come from the room's own counter: far below 2^53.
    (v as i64).into()
}

impl SqlConversations {
    /// Opens the store, creating its tables on first use.
    pub fn open(sql: SqlStorage) -> Result<Self, StoreError> {
        sql.exec(SCHEMA, None).map_err(backend)?;
        Ok(SqlConversations { sql })
    }

    fn rows(
        &self,
        query: &str,
        params: Vec<SqlStorageValue>,
    ) -> Result<Vec<Vec<SqlStorageValue>>, StoreError> {
        super::sql_store::rows(&self.sql, query, params)
    }

    fn exec(&self, query: &str, params: Vec<SqlStorageValue>) -> Result<(), StoreError> {
        self.rows(query, params).map(|_| ())
    }

    fn records<T: DeserializeOwned>(
        &self,
        query: &str,
        params: Vec<SqlStorageValue>,
    ) -> Result<Vec<T>, StoreError> {
        self.rows(query, params)?.into_iter().map(record).collect()
    }

    fn count(&self, query: &str, params: Vec<SqlStorageValue>) -> Result<u64, StoreError> {
        match self.rows(query, params)?.first().and_then(|r| r.first()) {
            None | Some(SqlStorageValue::Null) => Ok(0),
            Some(v) => Ok(int(v)?.max(0) as u64),
        }
    }
}

impl ConversationStore for SqlConversations {
    fn next_seq(&mut self) -> Result<u64, StoreError> {
        let next = self.last_seq()? + 1;
        self.exec(
            "INSERT INTO conv_meta (key, value) VALUES ('seq', ?)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            vec![id(next)],
        )?;
        Ok(next)
    }

    fn last_seq(&self) -> Result<u64, StoreError> {
        self.count("SELECT value FROM conv_meta WHERE key = 'seq'", vec![])
    }

    fn thread(&self, thread: u64) -> Result<Option<Thread>, StoreError> {
        Ok(self
            .records(
                "SELECT data FROM conv_threads WHERE id = ?",
                vec![id(thread)],
            )?
            .pop())
    }

    fn put_thread(&mut self, thread: &Thread) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO conv_threads (id, seq, data) VALUES (?, ?, ?)
             ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, data = excluded.data",
            vec![id(thread.id), id(thread.seq), json(thread)?],
        )
    }

    fn threads(&self, since: u64, after: u64, limit: usize) -> Result<Vec<Thread>, StoreError> {
        self.records(
            "SELECT data FROM conv_threads WHERE id > ? AND seq > ? ORDER BY id LIMIT ?",
            vec![id(after), id(since), id(limit as u64)],
        )
    }

    fn thread_count(&self) -> Result<u64, StoreError> {
        self.count("SELECT COUNT(*) FROM conv_threads", vec![])
    }

    fn comment(&self, comment: u64) -> Result<Option<Comment>, StoreError> {
        Ok(self
            .records(
                "SELECT data FROM conv_comments WHERE id = ?",
                vec![id(comment)],
            )?
            .pop())
    }

    fn put_comment(&mut self, comment: &Comment) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO conv_comments (id, thread, data) VALUES (?, ?, ?)
             ON CONFLICT (id) DO UPDATE SET data = excluded.data",
            vec![id(comment.id), id(comment.thread), json(comment)?],
        )
    }

    fn comments(&self, thread: u64) -> Result<Vec<Comment>, StoreError> {
        self.records(
            "SELECT data FROM conv_comments WHERE thread = ? ORDER BY id",
            vec![id(thread)],
        )
    }

    fn put_chat(&mut self, message: &ChatMessage) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO conv_chat (id, data) VALUES (?, ?)",
            vec![id(message.id), json(message)?],
        )
    }

    fn chat_before(
        &self,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<ChatMessage>, StoreError> {
        self.records(
            "SELECT data FROM conv_chat WHERE id < ? ORDER BY id DESC LIMIT ?",
            vec![id(before.unwrap_or(1 << 53)), id(limit as u64)],
        )
    }

    fn chat_since(
        &self,
        since: u64,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<ChatMessage>, StoreError> {
        self.records(
            "SELECT data FROM conv_chat WHERE id > ? AND id < ? ORDER BY id LIMIT ?",
            vec![id(since), id(before.unwrap_or(1 << 53)), id(limit as u64)],
        )
    }

    fn prune_chat(&mut self, keep: usize) -> Result<(), StoreError> {
        // The oldest kept message is found through the primary key: no scan of the table.
        self.exec(
            "DELETE FROM conv_chat WHERE id <
               (SELECT id FROM conv_chat ORDER BY id DESC LIMIT 1 OFFSET ?)",
            vec![id(keep.saturating_sub(1) as u64)],
        )
    }
}
