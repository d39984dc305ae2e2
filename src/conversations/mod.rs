//! Conversations in a room: threads anchored in the document, their comments and reactions,
//! and the room's chat. They live in the room's own storage, beside the document, so they are
//! as durable as it is (see `docs/conversations.md`).
//!
//! Every operation takes the acting [`Participant`] and the time, checks the participant's
//! right to it and every bound of its input before anything is written, and returns what
//! changed with the [`Event`]s it makes (webhooks, live pushes, notifications). Nothing here
//! knows the platform: the store is a trait and the document a `yrs::Doc`.

pub mod anchor;
pub mod body;
pub mod store;
#[cfg(test)]
mod tests;

use crate::auth::Role;
use crate::storage::StoreError;
pub use anchor::{Anchor, Position};
pub use body::Body;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
pub use store::{ConversationStore, MemoryConversations};
use thiserror::Error;

/// Most threads a room holds (deleted ones count: their tombstones stay).
pub const MAX_THREADS: u64 = 10_000;
/// Most comments in a thread (deleted ones count).
pub const MAX_COMMENTS: u32 = 500;
/// Most entries in a thread's metadata.
pub const MAX_METADATA: usize = 16;
/// Longest metadata key.
pub const MAX_METADATA_KEY: usize = 40;
/// Longest metadata string value, in characters.
pub const MAX_METADATA_STRING: usize = 256;
/// Most distinct emoji on one comment.
pub const MAX_EMOJI: usize = 20;
/// Longest reaction, in characters (an emoji, possibly several code points; or a short name
/// like `:+1:`).
pub const MAX_EMOJI_CHARS: usize = 32;
/// Most users on one reaction.
pub const MAX_REACTORS: usize = 1_000;
/// Most chat messages a room keeps: older ones are dropped.
pub const MAX_CHAT: usize = 5_000;
/// Most threads or messages one page returns.
pub const MAX_PAGE: usize = 100;

/// Who acts: a user (a token's subject, or the subject an API key acts for) with the role the
/// credential carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Participant {
    /// The user id (or an API key's id when it names no subject).
    pub id: String,
    /// The credential's role.
    pub role: Role,
}

/// Who did something, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    /// The user.
    pub by: String,
    /// Unix ms.
    pub at: u64,
}

/// A metadata value: a string, a number or a boolean.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MetaValue {
    /// A flag.
    Bool(bool),
    /// A number.
    Number(f64),
    /// A short string.
    String(String),
}

/// A thread's metadata.
pub type Metadata = BTreeMap<String, MetaValue>;

/// A thread: an anchor and its comments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Thread {
    /// Its id in the room.
    pub id: u64,
    /// The room's conversation sequence at its last change (`?since=`).
    pub seq: u64,
    /// Where it is attached.
    pub anchor: Anchor,
    /// The text it was opened on (text anchors), to find it again after an undo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quote: Option<String>,
    /// Small application data.
    #[serde(default)]
    pub metadata: Metadata,
    /// Who opened it.
    pub created_by: String,
    /// When (unix ms).
    pub created_at: u64,
    /// Its last change (unix ms).
    pub updated_at: u64,
    /// Resolved: by whom and when.
    #[serde(default)]
    pub resolved: Option<Stamp>,
    /// Deleted: by whom and when (its record stays, so ids are never reused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<Stamp>,
    /// Comments made, deleted ones included.
    pub comment_count: u32,
    /// Everyone who commented on it or was mentioned in it (reply notifications).
    #[serde(default)]
    pub participants: Vec<String>,
}

/// A comment of a thread.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comment {
    /// Its id in the room.
    pub id: u64,
    /// Its thread.
    pub thread: u64,
    /// Who wrote it.
    pub author: String,
    /// Its body; `None` once deleted (the tombstone keeps the thread's shape).
    pub body: Option<Body>,
    /// When it was written (unix ms).
    pub created_at: u64,
    /// When it was last edited.
    #[serde(default)]
    pub edited_at: Option<u64>,
    /// Deleted: by whom and when.
    #[serde(default)]
    pub deleted: Option<Stamp>,
    /// Emoji → the users who reacted with it, in order.
    #[serde(default)]
    pub reactions: BTreeMap<String, Vec<String>>,
}

/// A chat message of the room.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Its id (ascending in time).
    pub id: u64,
    /// Who wrote it.
    pub author: String,
    /// Its body.
    pub body: Body,
    /// When (unix ms).
    pub created_at: u64,
}

/// What a change was, as webhook events name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    /// A thread was opened (with its first comment).
    #[serde(rename = "thread.created")]
    ThreadCreated,
    /// A thread was resolved.
    #[serde(rename = "thread.resolved")]
    ThreadResolved,
    /// A resolved thread was reopened.
    #[serde(rename = "thread.reopened")]
    ThreadReopened,
    /// A thread was deleted.
    #[serde(rename = "thread.deleted")]
    ThreadDeleted,
    /// A thread's metadata changed.
    #[serde(rename = "thread.updated")]
    ThreadUpdated,
    /// A comment was added to a thread.
    #[serde(rename = "comment.created")]
    CommentCreated,
    /// A comment was edited.
    #[serde(rename = "comment.edited")]
    CommentEdited,
    /// A comment was deleted.
    #[serde(rename = "comment.deleted")]
    CommentDeleted,
    /// A reaction was added.
    #[serde(rename = "reaction.added")]
    ReactionAdded,
    /// A reaction was removed.
    #[serde(rename = "reaction.removed")]
    ReactionRemoved,
    /// A chat message was posted.
    #[serde(rename = "chat.message.created")]
    ChatMessageCreated,
}

impl EventKind {
    /// The event's name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::ThreadCreated => "thread.created",
            EventKind::ThreadResolved => "thread.resolved",
            EventKind::ThreadReopened => "thread.reopened",
            EventKind::ThreadDeleted => "thread.deleted",
            EventKind::ThreadUpdated => "thread.updated",
            EventKind::CommentCreated => "comment.created",
            EventKind::CommentEdited => "comment.edited",
            EventKind::CommentDeleted => "comment.deleted",
            EventKind::ReactionAdded => "reaction.added",
            EventKind::ReactionRemoved => "reaction.removed",
            EventKind::ChatMessageCreated => "chat.message.created",
        }
    }
}

/// One change, for webhooks, live pushes and notifications.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// What happened.
    #[serde(rename = "type")]
    pub kind: EventKind,
    /// The room's conversation sequence after it.
    pub seq: u64,
    /// Who did it.
    pub actor: String,
    /// The thread.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thread: Option<u64>,
    /// The comment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<u64>,
    /// The chat message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<u64>,
    /// The reaction's emoji.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub emoji: Option<String>,
    /// Users mentioned (new mentions only, on an edit), who get a notification.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub mentioned: Vec<String>,
    /// Thread participants (besides the actor and the mentioned) told of a reply.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub participants: Vec<String>,
    /// The body as plain text (comments and chat).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

impl Event {
    fn new(kind: EventKind, seq: u64, actor: &Participant) -> Event {
        Event {
            kind,
            seq,
            actor: actor.id.clone(),
            thread: None,
            comment: None,
            message: None,
            emoji: None,
            mentioned: Vec::new(),
            participants: Vec::new(),
            text: None,
        }
    }
}

/// Why a conversation operation was refused.
#[derive(Debug, Error)]
pub enum ConvError {
    /// The input is malformed or out of bounds (400).
    #[error("{0}")]
    Invalid(String),
    /// The participant may not do this (403).
    #[error("{0}")]
    Forbidden(String),
    /// No such thread, comment or message (404).
    #[error("no such {0}")]
    Missing(&'static str),
    /// The change does not fit the room's state: a limit reached (409).
    #[error("{0}")]
    Conflict(String),
    /// Storage failed (500).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A new thread: where, its metadata, and its first comment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewThread {
    /// Where it is attached.
    pub anchor: Anchor,
    /// Its metadata.
    #[serde(default)]
    pub metadata: Metadata,
    /// Its first comment.
    pub body: Body,
}

/// A page of threads.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ThreadView {
    /// The thread.
    #[serde(flatten)]
    pub thread: Thread,
    /// Where its anchor is now.
    pub position: Position,
    /// Its comments, oldest first.
    pub comments: Vec<Comment>,
}

/// Checks a thread's metadata: at most [`MAX_METADATA`] entries, keys of 1 to
/// [`MAX_METADATA_KEY`] of `A-Z a-z 0-9 _ - .`, strings of at most [`MAX_METADATA_STRING`]
/// characters, finite numbers.
pub fn check_metadata(metadata: &Metadata) -> Result<(), ConvError> {
    if metadata.len() > MAX_METADATA {
        return Err(ConvError::Invalid(format!(
            "metadata has at most {MAX_METADATA} entries"
        )));
    }
    for (key, value) in metadata {
        if key.is_empty()
            || key.len() > MAX_METADATA_KEY
            || !key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        {
            return Err(ConvError::Invalid(format!(
                "a metadata key is 1 to {MAX_METADATA_KEY} of A-Z a-z 0-9 _ - ."
            )));
        }
        match value {
            MetaValue::String(s) if s.chars().count() > MAX_METADATA_STRING => {
                return Err(ConvError::Invalid(format!(
                    "a metadata string is at most {MAX_METADATA_STRING} characters"
                )));
            }
            MetaValue::Number(n) if !n.is_finite() => {
                return Err(ConvError::Invalid("a metadata number is finite".into()));
            }
            _ => {}
        }
    }
    Ok(())
}

fn check_body(body: &Body) -> Result<(), ConvError> {
    body.check().map_err(ConvError::Invalid)
}

/// Checks a reaction: 1 to [`MAX_EMOJI_CHARS`] characters (Unicode scalar values, as JSON
/// Schema's `maxLength` counts them), none of them white space (`char::is_whitespace`) or a
/// control character.
pub fn check_emoji(emoji: &str) -> Result<(), ConvError> {
    let chars = emoji.chars().count();
    if chars == 0
        || chars > MAX_EMOJI_CHARS
        || emoji.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(ConvError::Invalid(format!(
            "a reaction is 1 to {MAX_EMOJI_CHARS} characters without spaces or control characters"
        )));
    }
    Ok(())
}

/// Most reviewers one review request names.
pub const MAX_REVIEWERS: usize = 20;
/// Most notification ids one mark-read request names.
pub const MAX_MARK_READ: usize = 100;
/// Longest comment of a review request or a verdict, in characters.
pub const MAX_REVIEW_COMMENT: usize = 2_000;

/// Checks the comment of a review request or a verdict: at most [`MAX_REVIEW_COMMENT`]
/// characters, no control character but the line feed.
pub fn check_review_comment(comment: &str) -> Result<(), String> {
    if comment.chars().count() > MAX_REVIEW_COMMENT
        || comment.chars().any(|c| c.is_control() && c != '\n')
    {
        return Err(format!(
            "a comment is at most {MAX_REVIEW_COMMENT} characters, without control characters"
        ));
    }
    Ok(())
}

/// Requires at least `role`.
fn require(actor: &Participant, role: Role, what: &str) -> Result<(), ConvError> {
    if actor.role < role {
        return Err(ConvError::Forbidden(format!(
            "{what} needs the {role} role; the credential has {}",
            actor.role
        )));
    }
    Ok(())
}

/// Whether `actor` may moderate others' work (resolve any thread, delete any comment).
fn moderates(actor: &Participant) -> bool {
    actor.role >= Role::Editor
}

fn add_participant(thread: &mut Thread, user: &str) {
    // Bounded by the comments a thread holds and the mentions each makes.
    if !thread.participants.iter().any(|p| p == user) && thread.participants.len() < 1_000 {
        thread.participants.push(user.to_owned());
    }
}

/// The conversations of one room, over its store.
pub struct Conversations<'a, S: ConversationStore> {
    /// The store.
    pub store: &'a mut S,
    /// The time of the operation (unix ms).
    pub now: u64,
}

impl<S: ConversationStore> Conversations<'_, S> {
    fn live_thread(&self, id: u64) -> Result<Thread, ConvError> {
        match self.store.thread(id)? {
            Some(t) if t.deleted.is_none() => Ok(t),
            _ => Err(ConvError::Missing("thread")),
        }
    }

    fn live_comment(&self, thread: &Thread, id: u64) -> Result<Comment, ConvError> {
        match self.store.comment(id)? {
            Some(c) if c.thread == thread.id && c.deleted.is_none() => Ok(c),
            _ => Err(ConvError::Missing("comment")),
        }
    }

    /// Opens a thread with its first comment. `position` is where the anchor is in the
    /// document now (resolved by the caller, who holds the document): a text anchor must name
    /// some text of it.
    pub fn create_thread(
        &mut self,
        actor: &Participant,
        new: NewThread,
        position: &Position,
    ) -> Result<(ThreadView, Vec<Event>), ConvError> {
        require(actor, Role::Commenter, "commenting")?;
        new.anchor.check().map_err(ConvError::Invalid)?;
        check_metadata(&new.metadata)?;
        check_body(&new.body)?;
        if matches!(new.anchor, Anchor::Text { .. })
            && (position.orphaned || position.length == Some(0))
        {
            return Err(ConvError::Invalid(
                "the text anchor names no text of the document (empty range or unknown positions)"
                    .into(),
            ));
        }
        if self.store.thread_count()? >= MAX_THREADS {
            return Err(ConvError::Conflict(format!(
                "the room holds {MAX_THREADS} threads, as many as it may"
            )));
        }
        let thread_id = self.store.next_seq()?;
        let comment_id = self.store.next_seq()?;
        let mentioned = new.body.mentions();
        let comment = Comment {
            id: comment_id,
            thread: thread_id,
            author: actor.id.clone(),
            body: Some(new.body),
            created_at: self.now,
            edited_at: None,
            deleted: None,
            reactions: BTreeMap::new(),
        };
        let mut thread = Thread {
            id: thread_id,
            seq: comment_id,
            quote: position
                .quote
                .clone()
                .filter(|_| matches!(new.anchor, Anchor::Text { .. })),
            anchor: new.anchor,
            metadata: new.metadata,
            created_by: actor.id.clone(),
            created_at: self.now,
            updated_at: self.now,
            resolved: None,
            deleted: None,
            comment_count: 1,
            participants: Vec::new(),
        };
        add_participant(&mut thread, &actor.id);
        for m in &mentioned {
            add_participant(&mut thread, m);
        }
        // The comment first: a thread row is what makes its comments visible.
        self.store.put_comment(&comment)?;
        self.store.put_thread(&thread)?;
        let mut event = Event::new(EventKind::ThreadCreated, comment_id, actor);
        event.thread = Some(thread_id);
        event.comment = Some(comment_id);
        event.text = comment.body.as_ref().map(Body::plain_text);
        event.mentioned = mentioned.into_iter().filter(|m| *m != actor.id).collect();
        let view = ThreadView {
            thread,
            position: position.clone(),
            comments: vec![comment],
        };
        Ok((view, vec![event]))
    }

    /// Adds a comment to a thread.
    pub fn add_comment(
        &mut self,
        actor: &Participant,
        thread_id: u64,
        body: Body,
    ) -> Result<(Comment, Vec<Event>), ConvError> {
        require(actor, Role::Commenter, "commenting")?;
        check_body(&body)?;
        let mut thread = self.live_thread(thread_id)?;
        if thread.comment_count >= MAX_COMMENTS {
            return Err(ConvError::Conflict(format!(
                "the thread holds {MAX_COMMENTS} comments, as many as it may"
            )));
        }
        let id = self.store.next_seq()?;
        let mentioned: Vec<String> = body
            .mentions()
            .into_iter()
            .filter(|m| *m != actor.id)
            .collect();
        let participants: Vec<String> = thread
            .participants
            .iter()
            .filter(|p| **p != actor.id && !mentioned.contains(p))
            .cloned()
            .collect();
        let comment = Comment {
            id,
            thread: thread_id,
            author: actor.id.clone(),
            body: Some(body),
            created_at: self.now,
            edited_at: None,
            deleted: None,
            reactions: BTreeMap::new(),
        };
        thread.seq = id;
        thread.updated_at = self.now;
        thread.comment_count += 1;
        add_participant(&mut thread, &actor.id);
        for m in &mentioned {
            add_participant(&mut thread, m);
        }
        self.store.put_comment(&comment)?;
        self.store.put_thread(&thread)?;
        let mut event = Event::new(EventKind::CommentCreated, id, actor);
        event.thread = Some(thread_id);
        event.comment = Some(id);
        event.text = comment.body.as_ref().map(Body::plain_text);
        event.mentioned = mentioned;
        event.participants = participants;
        Ok((comment, vec![event]))
    }

    /// Replaces the body of one's own comment. Users newly mentioned are notified.
    pub fn edit_comment(
        &mut self,
        actor: &Participant,
        thread_id: u64,
        comment_id: u64,
        body: Body,
    ) -> Result<(Comment, Vec<Event>), ConvError> {
        require(actor, Role::Commenter, "editing a comment")?;
        check_body(&body)?;
        let mut thread = self.live_thread(thread_id)?;
        let mut comment = self.live_comment(&thread, comment_id)?;
        if comment.author != actor.id {
            return Err(ConvError::Forbidden(
                "only its author edits a comment".into(),
            ));
        }
        let before = comment
            .body
            .as_ref()
            .map(Body::mentions)
            .unwrap_or_default();
        let mentioned: Vec<String> = body
            .mentions()
            .into_iter()
            .filter(|m| *m != actor.id && !before.contains(m))
            .collect();
        let seq = self.store.next_seq()?;
        comment.body = Some(body);
        comment.edited_at = Some(self.now);
        thread.seq = seq;
        thread.updated_at = self.now;
        for m in &mentioned {
            add_participant(&mut thread, m);
        }
        self.store.put_comment(&comment)?;
        self.store.put_thread(&thread)?;
        let mut event = Event::new(EventKind::CommentEdited, seq, actor);
        event.thread = Some(thread_id);
        event.comment = Some(comment_id);
        event.text = comment.body.as_ref().map(Body::plain_text);
        event.mentioned = mentioned;
        Ok((comment, vec![event]))
    }

    /// Deletes a comment: its author, or an editor or owner. The tombstone stays.
    pub fn delete_comment(
        &mut self,
        actor: &Participant,
        thread_id: u64,
        comment_id: u64,
    ) -> Result<(Comment, Vec<Event>), ConvError> {
        require(actor, Role::Commenter, "deleting a comment")?;
        let mut thread = self.live_thread(thread_id)?;
        let mut comment = self.live_comment(&thread, comment_id)?;
        if comment.author != actor.id && !moderates(actor) {
            return Err(ConvError::Forbidden(
                "a comment is deleted by its author, an editor or an owner".into(),
            ));
        }
        let seq = self.store.next_seq()?;
        comment.body = None;
        comment.reactions.clear();
        comment.deleted = Some(Stamp {
            by: actor.id.clone(),
            at: self.now,
        });
        thread.seq = seq;
        thread.updated_at = self.now;
        self.store.put_comment(&comment)?;
        self.store.put_thread(&thread)?;
        let mut event = Event::new(EventKind::CommentDeleted, seq, actor);
        event.thread = Some(thread_id);
        event.comment = Some(comment_id);
        Ok((comment, vec![event]))
    }

    /// Adds (`add`) or removes a reaction of the actor; doing it twice changes nothing and
    /// makes no event.
    pub fn react(
        &mut self,
        actor: &Participant,
        thread_id: u64,
        comment_id: u64,
        emoji: &str,
        add: bool,
    ) -> Result<(Comment, Vec<Event>), ConvError> {
        require(actor, Role::Commenter, "reacting")?;
        check_emoji(emoji)?;
        let mut thread = self.live_thread(thread_id)?;
        let mut comment = self.live_comment(&thread, comment_id)?;
        let users = comment.reactions.get(emoji);
        let has = users.is_some_and(|u| u.contains(&actor.id));
        if has == add {
            return Ok((comment, Vec::new()));
        }
        if add {
            if users.is_none() && comment.reactions.len() >= MAX_EMOJI {
                return Err(ConvError::Conflict(format!(
                    "a comment holds at most {MAX_EMOJI} distinct reactions"
                )));
            }
            if users.is_some_and(|u| u.len() >= MAX_REACTORS) {
                return Err(ConvError::Conflict(format!(
                    "a reaction holds at most {MAX_REACTORS} users"
                )));
            }
            comment
                .reactions
                .entry(emoji.to_owned())
                .or_default()
                .push(actor.id.clone());
        } else if let Some(list) = comment.reactions.get_mut(emoji) {
            list.retain(|u| *u != actor.id);
            if list.is_empty() {
                comment.reactions.remove(emoji);
            }
        }
        let seq = self.store.next_seq()?;
        thread.seq = seq;
        thread.updated_at = self.now;
        self.store.put_comment(&comment)?;
        self.store.put_thread(&thread)?;
        let kind = if add {
            EventKind::ReactionAdded
        } else {
            EventKind::ReactionRemoved
        };
        let mut event = Event::new(kind, seq, actor);
        event.thread = Some(thread_id);
        event.comment = Some(comment_id);
        event.emoji = Some(emoji.to_owned());
        Ok((comment, vec![event]))
    }

    /// Resolves or reopens a thread: the user who opened it, or an editor or owner. Asking for
    /// the state it is in changes nothing.
    pub fn set_resolved(
        &mut self,
        actor: &Participant,
        thread_id: u64,
        resolved: bool,
    ) -> Result<(Thread, Vec<Event>), ConvError> {
        require(actor, Role::Commenter, "resolving a thread")?;
        let mut thread = self.live_thread(thread_id)?;
        if thread.created_by != actor.id && !moderates(actor) {
            return Err(ConvError::Forbidden(
                "a thread is resolved by whoever opened it, an editor or an owner".into(),
            ));
        }
        if thread.resolved.is_some() == resolved {
            return Ok((thread, Vec::new()));
        }
        let seq = self.store.next_seq()?;
        thread.resolved = resolved.then(|| Stamp {
            by: actor.id.clone(),
            at: self.now,
        });
        thread.seq = seq;
        thread.updated_at = self.now;
        self.store.put_thread(&thread)?;
        let kind = if resolved {
            EventKind::ThreadResolved
        } else {
            EventKind::ThreadReopened
        };
        let mut event = Event::new(kind, seq, actor);
        event.thread = Some(thread_id);
        Ok((thread, vec![event]))
    }

    /// Replaces a thread's metadata: whoever opened it, or an editor or owner.
    pub fn set_metadata(
        &mut self,
        actor: &Participant,
        thread_id: u64,
        metadata: Metadata,
    ) -> Result<(Thread, Vec<Event>), ConvError> {
        require(actor, Role::Commenter, "changing a thread")?;
        check_metadata(&metadata)?;
        let mut thread = self.live_thread(thread_id)?;
        if thread.created_by != actor.id && !moderates(actor) {
            return Err(ConvError::Forbidden(
                "a thread's metadata is changed by whoever opened it, an editor or an owner".into(),
            ));
        }
        let seq = self.store.next_seq()?;
        thread.metadata = metadata;
        thread.seq = seq;
        thread.updated_at = self.now;
        self.store.put_thread(&thread)?;
        let mut event = Event::new(EventKind::ThreadUpdated, seq, actor);
        event.thread = Some(thread_id);
        Ok((thread, vec![event]))
    }

    /// Deletes a thread: an editor or owner, or whoever opened it while every comment is
    /// theirs. Its record stays as a tombstone (listed to `?since=` readers as deleted).
    pub fn delete_thread(
        &mut self,
        actor: &Participant,
        thread_id: u64,
    ) -> Result<(Thread, Vec<Event>), ConvError> {
        require(actor, Role::Commenter, "deleting a thread")?;
        let mut thread = self.live_thread(thread_id)?;
        if !moderates(actor) {
            let only_theirs = thread.created_by == actor.id
                && self
                    .store
                    .comments(thread_id)?
                    .iter()
                    .all(|c| c.author == actor.id || c.deleted.is_some());
            if !only_theirs {
                return Err(ConvError::Forbidden(
                    "a thread with others' comments is deleted by an editor or an owner".into(),
                ));
            }
        }
        let seq = self.store.next_seq()?;
        thread.deleted = Some(Stamp {
            by: actor.id.clone(),
            at: self.now,
        });
        thread.seq = seq;
        thread.updated_at = self.now;
        self.store.put_thread(&thread)?;
        let mut event = Event::new(EventKind::ThreadDeleted, seq, actor);
        event.thread = Some(thread_id);
        Ok((thread, vec![event]))
    }

    /// One thread with its comments, where `resolve` says its anchor is.
    pub fn view(
        &self,
        thread_id: u64,
        resolve: impl Fn(&Thread) -> Position,
    ) -> Result<ThreadView, ConvError> {
        let thread = self.live_thread(thread_id)?;
        Ok(ThreadView {
            position: resolve(&thread),
            comments: self.store.comments(thread_id)?,
            thread,
        })
    }

    /// Threads changed after `since` (deleted ones as tombstones without comments when
    /// `since > 0`; left out of a full listing), by id above `after`, at most `limit`.
    pub fn list(
        &self,
        since: u64,
        after: u64,
        limit: usize,
        resolve: impl Fn(&Thread) -> Position,
    ) -> Result<Vec<ThreadView>, ConvError> {
        let limit = limit.clamp(1, MAX_PAGE);
        let mut out = Vec::new();
        let mut cursor = after;
        // Deleted threads are skipped in a full listing, so read on until the page is full.
        loop {
            let batch = self.store.threads(since, cursor, limit)?;
            let done = batch.len() < limit;
            for thread in batch {
                cursor = thread.id;
                if thread.deleted.is_some() {
                    if since > 0 {
                        out.push(ThreadView {
                            position: Position {
                                orphaned: false,
                                index: None,
                                length: None,
                                quote: None,
                                text: None,
                            },
                            comments: Vec::new(),
                            thread,
                        });
                    }
                } else {
                    out.push(ThreadView {
                        position: resolve(&thread),
                        comments: self.store.comments(thread.id)?,
                        thread,
                    });
                }
                if out.len() == limit {
                    return Ok(out);
                }
            }
            if done {
                return Ok(out);
            }
        }
    }

    /// Posts a chat message to the room.
    pub fn post_chat(
        &mut self,
        actor: &Participant,
        body: Body,
    ) -> Result<(ChatMessage, Vec<Event>), ConvError> {
        require(actor, Role::Commenter, "chatting")?;
        check_body(&body)?;
        let id = self.store.next_seq()?;
        let message = ChatMessage {
            id,
            author: actor.id.clone(),
            body,
            created_at: self.now,
        };
        self.store.put_chat(&message)?;
        self.store.prune_chat(MAX_CHAT)?;
        let mut event = Event::new(EventKind::ChatMessageCreated, id, actor);
        event.message = Some(id);
        event.text = Some(message.body.plain_text());
        event.mentioned = message
            .body
            .mentions()
            .into_iter()
            .filter(|m| *m != actor.id)
            .collect();
        Ok((message, vec![event]))
    }
}

/// A conversation operation the worker asks a room to perform for a participant (inside
/// [`crate::room_call::RoomCall::Converse`]). Values are typed: ids are numbers, bodies and
/// anchors parsed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum ConvOp {
    /// Threads changed after `since` (all when 0), by id above `after`.
    ListThreads {
        /// Sequence number to read changes after.
        since: u64,
        /// Id to page after.
        after: u64,
        /// Most threads.
        limit: u32,
        /// Only resolved (`true`) or unresolved (`false`) threads.
        #[serde(default)]
        resolved: Option<bool>,
    },
    /// One thread.
    GetThread {
        /// The thread.
        thread: u64,
    },
    /// Open a thread.
    CreateThread {
        /// The thread.
        new: NewThread,
    },
    /// Reply in a thread.
    AddComment {
        /// The thread.
        thread: u64,
        /// The comment.
        body: Body,
    },
    /// Edit one's comment.
    EditComment {
        /// The thread.
        thread: u64,
        /// The comment.
        comment: u64,
        /// Its new body.
        body: Body,
    },
    /// Delete a comment.
    DeleteComment {
        /// The thread.
        thread: u64,
        /// The comment.
        comment: u64,
    },
    /// Add or remove one's reaction.
    React {
        /// The thread.
        thread: u64,
        /// The comment.
        comment: u64,
        /// The emoji.
        emoji: String,
        /// Add (`true`) or remove.
        add: bool,
    },
    /// Resolve or reopen a thread.
    SetResolved {
        /// The thread.
        thread: u64,
        /// Resolved or not.
        resolved: bool,
    },
    /// Replace a thread's metadata.
    SetMetadata {
        /// The thread.
        thread: u64,
        /// The metadata.
        metadata: Metadata,
    },
    /// Delete a thread.
    DeleteThread {
        /// The thread.
        thread: u64,
    },
    /// Post to the room's chat.
    PostChat {
        /// The message.
        body: Body,
    },
    /// Read the chat: newest first before `before`; or, given `since`, oldest first after it
    /// (and below `before` when both are given).
    ListChat {
        /// Messages with an id below this.
        #[serde(default)]
        before: Option<u64>,
        /// Messages with an id above this (live catch-up), oldest first.
        #[serde(default)]
        since: Option<u64>,
        /// Most messages.
        limit: u32,
    },
}

/// A room's answer to a conversation operation: the value and the events it made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConvReply {
    /// The thread, comment, message or page.
    pub value: serde_json::Value,
    /// What changed.
    #[serde(default)]
    pub events: Vec<Event>,
}

/// The y-protocols message type of a conversation event on the room's socket. Yjs uses 0–3;
/// only connections that asked (`?events=1`) receive it (see `docs/protocol.md`).
pub const EVENT_MESSAGE: u64 = 100;

/// The frame of one event: the message type, then the event as a JSON string (both as
/// lib0 varuint and varstring): `{type, seq, actor, thread?, comment?, message?, emoji?}`.
/// Bodies are not pushed: a client fetches what changed (`?since=`).
pub fn event_frame(event: &Event) -> Vec<u8> {
    let small = serde_json::json!({
        "type": event.kind,
        "seq": event.seq,
        "actor": event.actor,
        "thread": event.thread,
        "comment": event.comment,
        "message": event.message,
        "emoji": event.emoji,
    });
    frame(&small.to_string())
}

/// A change made outside the room (in the inbox, to a review) that the room's connections
/// which asked for events are told of, in the same frame format as [`event_frame`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum Notice {
    /// Notifications were made for these users (each reads its own inbox).
    #[serde(rename = "notification.created")]
    NotificationsCreated {
        /// The notifications, at most [`MAX_NOTICE_ENTRIES`].
        notifications: Vec<NoticeEntry>,
    },
    /// A review of this document changed (`review.requested`, `review.submitted`,
    /// `review.completed`, `review.withdrawn`).
    #[serde(rename = "review.changed")]
    ReviewChanged {
        /// What happened.
        event: String,
        /// The review.
        review: u64,
        /// Who did it.
        actor: String,
    },
}

/// Most notifications one notice names.
pub const MAX_NOTICE_ENTRIES: usize = 200;

/// One notification of a [`Notice::NotificationsCreated`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoticeEntry {
    /// Whose it is.
    pub user: String,
    /// Its id.
    pub id: u64,
    /// `mention`, `reply`, `thread` or `review`.
    pub kind: String,
}

/// The frame of a notice: the message type, then the notice as a JSON string.
pub fn notice_frame(notice: &Notice) -> Vec<u8> {
    frame(&serde_json::to_string(notice).unwrap_or_default())
}

/// An event message: lib0 varuint [`EVENT_MESSAGE`], then `json` as a lib0 varstring.
fn frame(json: &str) -> Vec<u8> {
    use yrs::encoding::write::Write;
    let mut out = Vec::new();
    out.write_var(EVENT_MESSAGE);
    out.write_string(json);
    out
}

impl<S: ConversationStore> Conversations<'_, S> {
    /// The room's conversation sequence now (what a client passes as `?since=` next).
    pub fn store_seq(&self) -> Result<u64, ConvError> {
        Ok(self.store.last_seq()?)
    }
}
