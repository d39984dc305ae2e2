//! Where a room keeps its threads, comments and chat: a trait the edge implements on the
//! room's Durable Object SQLite, and [`MemoryConversations`] for tests. Rows are whole records
//! (JSON at the edge); each change is written with its room-wide sequence number, which is
//! what `?since=` reads.

use super::{ChatMessage, Comment, Thread};
use crate::storage::StoreError;
use std::collections::BTreeMap;

/// Storage of one room's conversations.
pub trait ConversationStore {
    /// The next number of the room's conversation sequence (ids and change positions share
    /// it), counted from 1 and never reused.
    fn next_seq(&mut self) -> Result<u64, StoreError>;
    /// The last number handed out (0 when none).
    fn last_seq(&self) -> Result<u64, StoreError>;
    /// A thread, deleted ones included.
    fn thread(&self, id: u64) -> Result<Option<Thread>, StoreError>;
    /// Writes a thread (insert or replace).
    fn put_thread(&mut self, thread: &Thread) -> Result<(), StoreError>;
    /// Threads changed after `since`, by id above `after`, at most `limit`.
    fn threads(&self, since: u64, after: u64, limit: usize) -> Result<Vec<Thread>, StoreError>;
    /// How many threads the room holds, deleted ones included.
    fn thread_count(&self) -> Result<u64, StoreError>;
    /// A comment.
    fn comment(&self, id: u64) -> Result<Option<Comment>, StoreError>;
    /// Writes a comment (insert or replace).
    fn put_comment(&mut self, comment: &Comment) -> Result<(), StoreError>;
    /// The comments of a thread, oldest first.
    fn comments(&self, thread: u64) -> Result<Vec<Comment>, StoreError>;
    /// Stores a chat message.
    fn put_chat(&mut self, message: &ChatMessage) -> Result<(), StoreError>;
    /// Chat messages with an id below `before` (all when `None`), newest first, at most `limit`.
    fn chat_before(
        &self,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<ChatMessage>, StoreError>;
    /// Chat messages with an id above `since` (and below `before`, when given), oldest first,
    /// at most `limit`.
    fn chat_since(
        &self,
        since: u64,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<ChatMessage>, StoreError>;
    /// Removes the oldest chat messages beyond the newest `keep`.
    fn prune_chat(&mut self, keep: usize) -> Result<(), StoreError>;
}

/// Conversations in memory, for tests.
#[derive(Debug, Default, Clone)]
pub struct MemoryConversations {
    seq: u64,
    threads: BTreeMap<u64, Thread>,
    comments: BTreeMap<u64, Comment>,
    chat: BTreeMap<u64, ChatMessage>,
    /// When set, every write fails (tests of half-written changes).
    pub fail_writes: bool,
}

impl MemoryConversations {
    /// A store whose every write fails.
    pub fn failing() -> Self {
        MemoryConversations {
            fail_writes: true,
            ..MemoryConversations::default()
        }
    }
}

impl MemoryConversations {
    fn write(&self) -> Result<(), StoreError> {
        if self.fail_writes {
            Err(StoreError::Backend("writes fail".into()))
        } else {
            Ok(())
        }
    }
}

impl ConversationStore for MemoryConversations {
    fn next_seq(&mut self) -> Result<u64, StoreError> {
        self.write()?;
        self.seq += 1;
        Ok(self.seq)
    }
    fn last_seq(&self) -> Result<u64, StoreError> {
        Ok(self.seq)
    }
    fn thread(&self, id: u64) -> Result<Option<Thread>, StoreError> {
        Ok(self.threads.get(&id).cloned())
    }
    fn put_thread(&mut self, thread: &Thread) -> Result<(), StoreError> {
        self.write()?;
        self.threads.insert(thread.id, thread.clone());
        Ok(())
    }
    fn threads(&self, since: u64, after: u64, limit: usize) -> Result<Vec<Thread>, StoreError> {
        Ok(self
            .threads
            .range(after + 1..)
            .map(|(_, t)| t)
            .filter(|t| t.seq > since)
            .take(limit)
            .cloned()
            .collect())
    }
    fn thread_count(&self) -> Result<u64, StoreError> {
        Ok(self.threads.len() as u64)
    }
    fn comment(&self, id: u64) -> Result<Option<Comment>, StoreError> {
        Ok(self.comments.get(&id).cloned())
    }
    fn put_comment(&mut self, comment: &Comment) -> Result<(), StoreError> {
        self.write()?;
        self.comments.insert(comment.id, comment.clone());
        Ok(())
    }
    fn comments(&self, thread: u64) -> Result<Vec<Comment>, StoreError> {
        Ok(self
            .comments
            .values()
            .filter(|c| c.thread == thread)
            .cloned()
            .collect())
    }
    fn put_chat(&mut self, message: &ChatMessage) -> Result<(), StoreError> {
        self.write()?;
        self.chat.insert(message.id, message.clone());
        Ok(())
    }
    fn chat_before(
        &self,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<ChatMessage>, StoreError> {
        Ok(self
            .chat
            .range(..before.unwrap_or(u64::MAX))
            .rev()
            .take(limit)
            .map(|(_, m)| m.clone())
            .collect())
    }
    fn chat_since(
        &self,
        since: u64,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<ChatMessage>, StoreError> {
        Ok(self
            .chat
            .range(since.saturating_add(1)..)
            .take_while(|(id, _)| before.is_none_or(|b| **id < b))
            .take(limit)
            .map(|(_, m)| m.clone())
            .collect())
    }
    fn prune_chat(&mut self, keep: usize) -> Result<(), StoreError> {
        while self.chat.len() > keep {
            self.chat.pop_first();
        }
        Ok(())
    }
}
