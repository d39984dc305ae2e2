//! The inbox: notifications of one user in a project (mentions, replies in threads they take
//! part in, new threads where they follow everything, review requests and verdicts), what
//! each document's conversations notify them of, and the `notification.created` webhook, sent
//! after the project's delay only when the notification is still unread.

use super::{Call, Result};
use crate::api::ApiError;
use crate::conversations::{Event, EventKind, Notice as RoomNotice, NoticeEntry};
use crate::edge::d1::{self, num, text};
use crate::edge::log::{self, Emit};
use crate::edge::platform::now_ms;
use crate::edge::{http, webhook_queue};
use crate::names::{Id, RoomName};
use crate::routes::RouteId;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use worker::{D1Database, Response};

/// Most recipients one event notifies.
const MAX_RECIPIENTS: usize = 200;
/// Longest excerpt of a comment kept with its notification.
const MAX_EXCERPT_CHARS: usize = 280;
use crate::conversations::MAX_MARK_READ as MAX_MARK;

/// Which of a document's conversations notify a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Every new thread and reply, and mentions.
    All,
    /// Replies in threads the user takes part in, and mentions (the default).
    RepliesAndMentions,
    /// Nothing.
    None,
}

impl Level {
    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::All => "all",
            Level::RepliesAndMentions => "replies_and_mentions",
            Level::None => "none",
        }
    }
}

/// The users of `subs` who are members of `project` (not removed).
pub async fn members_among(db: &D1Database, project: &str, subs: &[String]) -> Result<Vec<String>> {
    if subs.is_empty() {
        return Ok(Vec::new());
    }
    #[derive(Deserialize)]
    struct Row {
        sub: String,
    }
    // One parameter for the list (a JSON array): D1 binds at most 100 per statement, and a
    // thread has up to 1,000 participants.
    let list = serde_json::to_string(subs).map_err(http::internal("member list"))?;
    let rows: Vec<Row> = d1::rows(
        db,
        "SELECT sub FROM members WHERE project_id = ? AND removed_at IS NULL
           AND sub IN (SELECT value FROM json_each(?))",
        &[text(project), text(&list)],
    )
    .await?;
    Ok(rows.into_iter().map(|r| r.sub).collect())
}

/// A user's level for a document (the default when they chose none).
pub async fn level_of(db: &D1Database, project: &str, document: &str, sub: &str) -> Result<Level> {
    #[derive(Deserialize)]
    struct Row {
        level: Level,
    }
    let row: Option<Row> = d1::row(
        db,
        "SELECT level FROM subscriptions WHERE project_id = ? AND document = ? AND sub = ?",
        &[text(project), text(document), text(sub)],
    )
    .await?;
    Ok(row.map_or(Level::RepliesAndMentions, |r| r.level))
}

/// One notification to make.
pub struct Notice<'a> {
    /// Who is notified.
    pub sub: String,
    /// `mention`, `reply`, `thread` or `review`.
    pub kind: &'static str,
    /// The document.
    pub document: Option<&'a str>,
    /// The thread.
    pub thread: Option<u64>,
    /// The comment.
    pub comment: Option<u64>,
    /// The review.
    pub review: Option<u64>,
    /// Who caused it.
    pub actor: &'a str,
    /// What it says.
    pub excerpt: Option<String>,
}

/// Stores notifications and queues their webhook events, to leave after the project's delay
/// if still unread then.
pub async fn store(cx: &Call<'_>, project: &str, notices: Vec<Notice<'_>>) -> Result<()> {
    if notices.is_empty() {
        return Ok(());
    }
    let db = cx.db()?;
    #[derive(Deserialize)]
    struct Delay {
        notification_delay_seconds: u64,
    }
    let delay = d1::row::<Delay>(
        &db,
        "SELECT notification_delay_seconds FROM projects WHERE id = ?",
        &[text(project)],
    )
    .await?
    .map_or(300, |d| d.notification_delay_seconds);
    let now = now_ms();
    // Told to the document's room too, for the SDK clients there (one notice per document).
    let mut told: Vec<(String, Vec<NoticeEntry>)> = Vec::new();
    for n in notices.into_iter().take(MAX_RECIPIENTS) {
        #[derive(Deserialize)]
        struct Inserted {
            id: u64,
        }
        let opt = |v: Option<u64>| v.map_or(worker::wasm_bindgen::JsValue::NULL, num);
        let excerpt: Option<String> = n
            .excerpt
            .map(|e| e.chars().take(MAX_EXCERPT_CHARS).collect());
        let inserted: Option<Inserted> = d1::row(
            &db,
            "INSERT INTO notifications
               (project_id, sub, kind, document, thread, comment, review, actor, excerpt, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            &[
                text(project),
                text(&n.sub),
                text(n.kind),
                n.document.map_or(worker::wasm_bindgen::JsValue::NULL, text),
                opt(n.thread),
                opt(n.comment),
                opt(n.review),
                text(n.actor),
                excerpt
                    .as_deref()
                    .map_or(worker::wasm_bindgen::JsValue::NULL, text),
                num(now),
            ],
        )
        .await?;
        let Some(Inserted { id }) = inserted else {
            continue;
        };
        if let Some(d) = n.document {
            let entry = NoticeEntry {
                user: n.sub.clone(),
                id,
                kind: n.kind.to_owned(),
            };
            match told.iter_mut().find(|(doc, _)| doc == d) {
                Some((_, entries)) => entries.push(entry),
                None => told.push((d.to_owned(), vec![entry])),
            }
        }
        let data = json!({
            "project": project, "id": id, "user": n.sub, "kind": n.kind, "document": n.document,
            "thread": n.thread, "comment": n.comment, "review": n.review, "actor": n.actor,
            "excerpt": excerpt, "created_at": now,
        });
        webhook_queue::emit_unless_read(
            cx.env,
            project,
            "notification.created",
            data,
            delay * 1000,
            id,
        )
        .await;
    }
    for (document, notifications) in told {
        tell_room(
            cx,
            project,
            &document,
            RoomNotice::NotificationsCreated { notifications },
        )
        .await;
    }
    Ok(())
}

/// Tells a document's room (its connections that asked for events) of a change made outside
/// it. Failures are logged: the change is stored, and clients also poll.
pub async fn tell_room(cx: &Call<'_>, project: &str, document: &str, notice: RoomNotice) {
    let (Ok(project), Ok(room)) = (Id::parse("project id", project), RoomName::parse(document))
    else {
        return;
    };
    let client = crate::edge::room_client::RoomClient {
        env: cx.env,
        project: &project,
        room: &room,
        author: String::new(),
    };
    if let Err(e) = client
        .send(crate::room_call::RoomCall::Notify { notice }, &[])
        .await
    {
        log::warn("room.notify_failed")
            .message("telling a room of a change failed")
            .project(&project)
            .room(&room)
            .cause(format!("{e:?}"))
            .emit();
    }
}

/// The notifications a conversation event makes: mentions for the users it mentions;
/// replies for the thread's participants and new threads for users who follow everything,
/// as each one's level allows; never for the actor.
pub async fn notify_for(
    cx: &Call<'_>,
    project: &Id,
    document: &RoomName,
    event: &Event,
) -> Result<()> {
    let (p, d) = (project.as_str(), document.as_str());
    let db = cx.db()?;
    #[derive(Deserialize)]
    struct Row {
        sub: String,
        level: Level,
    }
    let chosen: Vec<Row> = d1::rows(
        &db,
        "SELECT sub, level FROM subscriptions WHERE project_id = ? AND document = ? LIMIT 1000",
        &[text(p), text(d)],
    )
    .await?;
    let level = |sub: &str| {
        chosen
            .iter()
            .find(|r| r.sub == sub)
            .map_or(Level::RepliesAndMentions, |r| r.level)
    };
    fn add<'a>(
        notices: &mut Vec<Notice<'a>>,
        sub: &str,
        kind: &'static str,
        d: &'a str,
        event: &'a Event,
    ) {
        if sub == event.actor || notices.iter().any(|n| n.sub == sub) {
            return;
        }
        notices.push(Notice {
            sub: sub.to_owned(),
            kind,
            document: Some(d),
            thread: event.thread,
            comment: event.comment,
            review: None,
            actor: &event.actor,
            excerpt: event.text.clone(),
        });
    }
    let mut notices: Vec<Notice<'_>> = Vec::new();
    let replies = matches!(
        event.kind,
        EventKind::CommentCreated | EventKind::ThreadCreated | EventKind::CommentEdited
    );
    for m in &event.mentioned {
        if level(m) != Level::None && (replies || event.kind == EventKind::ChatMessageCreated) {
            add(&mut notices, m, "mention", d, event);
        }
    }
    if event.kind == EventKind::CommentCreated {
        let members = members_among(&db, p, &event.participants).await?;
        for sub in &members {
            if level(sub) != Level::None {
                add(&mut notices, sub, "reply", d, event);
            }
        }
    }
    if matches!(
        event.kind,
        EventKind::ThreadCreated | EventKind::CommentCreated
    ) {
        let followers: Vec<String> = chosen
            .iter()
            .filter(|r| r.level == Level::All)
            .map(|r| r.sub.clone())
            .collect();
        let kind = if event.kind == EventKind::ThreadCreated {
            "thread"
        } else {
            "reply"
        };
        for sub in members_among(&db, p, &followers).await? {
            add(&mut notices, &sub, kind, d, event);
        }
    }
    store(cx, p, notices).await
}

/// The inbox's user: the token's subject, or the user an API key names.
async fn owner(cx: &Call<'_>) -> Result<String> {
    let (sub, _) = super::conversations::participant(cx).await?;
    if cx
        .req
        .headers()
        .get(super::conversations::SUBJECT_HEADER)
        .ok()
        .flatten()
        .is_none()
        && !matches!(cx.actor, crate::edge::access::Actor::User { .. })
    {
        return Err(ApiError::InvalidBody(
            "an API key names the user whose inbox it reads in the TandemX-Subject header".into(),
        ));
    }
    Ok(sub)
}

/// `POST .../inbox/read`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MarkRead {
    /// These notifications; all when absent.
    #[serde(default)]
    ids: Option<Vec<u64>>,
}

/// Serves the inbox routes.
pub async fn serve(id: RouteId, cx: &mut Call<'_>) -> Result<Response> {
    let project = cx.project()?.clone();
    let p = project.as_str();
    let sub = owner(cx).await?;
    let db = cx.db()?;
    match id {
        RouteId::ListInbox => {
            let q = crate::api::url_query(&cx.req.inner().url()).map(str::to_owned);
            let q = q.as_deref();
            let (crate::queries::FeedPage { limit, before }, unread) =
                crate::queries::list_inbox(q)?;
            let limit = u64::from(limit);
            let rows: Vec<Value> = d1::rows(
                &db,
                "SELECT id, kind, document, thread, comment, review, actor, excerpt, created_at,
                        read_at
                 FROM notifications WHERE project_id = ?1 AND sub = ?2
                   AND (?3 IS NULL OR id < ?3) AND (?4 = 0 OR read_at IS NULL)
                 ORDER BY id DESC LIMIT ?5",
                &[
                    text(p),
                    text(&sub),
                    before.map_or(worker::wasm_bindgen::JsValue::NULL, num),
                    num(u64::from(unread)),
                    num(limit),
                ],
            )
            .await?;
            let ids: Vec<u64> = rows.iter().filter_map(|r| r["id"].as_u64()).collect();
            let next = crate::queries::next_before(&ids, limit);
            http::json(&json!({ "notifications": rows, "next_before": next }))
        }
        RouteId::InboxCount => http::json(&json!({ "unread": unread_count(&db, p, &sub).await? })),
        RouteId::MarkInboxRead => {
            let input: MarkRead = cx.body().await?;
            let now = now_ms();
            match input.ids {
                None => {
                    d1::stmt(
                        &db,
                        "UPDATE notifications SET read_at = ? WHERE project_id = ? AND sub = ? AND read_at IS NULL",
                        &[num(now), text(p), text(&sub)],
                    )?
                    .run()
                    .await
                    .map_err(http::internal("mark read"))?;
                }
                Some(ids) => {
                    if ids.is_empty() || ids.len() > MAX_MARK {
                        return Err(ApiError::InvalidBody(format!(
                            "ids holds 1 to {MAX_MARK} notification ids (leave it out to mark all)"
                        )));
                    }
                    if ids.iter().any(|i| *i > crate::queries::NO_LIMIT) {
                        return Err(ApiError::InvalidBody("ids are integers below 2^53".into()));
                    }
                    // The ids as one JSON parameter: D1 binds at most 100 per statement.
                    let list = serde_json::to_string(&ids).map_err(http::internal("ids"))?;
                    d1::stmt(
                        &db,
                        "UPDATE notifications SET read_at = ? WHERE project_id = ? AND sub = ? AND read_at IS NULL
                           AND id IN (SELECT value FROM json_each(?))",
                        &[num(now), text(p), text(&sub), text(&list)],
                    )?
                    .run()
                    .await
                    .map_err(http::internal("mark read"))?;
                }
            }
            http::json(&json!({ "unread": unread_count(&db, p, &sub).await? }))
        }
        RouteId::DeleteNotification => {
            let n = cx.params.notification()?;
            #[derive(Deserialize)]
            struct Gone {
                #[allow(dead_code)]
                id: u64,
            }
            let gone: Option<Gone> = d1::row(
                &db,
                "DELETE FROM notifications WHERE id = ? AND project_id = ? AND sub = ? RETURNING id",
                &[num(n), text(p), text(&sub)],
            )
            .await?;
            if gone.is_none() {
                return Err(ApiError::Missing("notification", n.to_string()));
            }
            http::json(&json!({ "deleted": true, "unread": unread_count(&db, p, &sub).await? }))
        }
        _ => Err(ApiError::NotFound),
    }
}

async fn unread_count(db: &D1Database, project: &str, sub: &str) -> Result<u64> {
    #[derive(Deserialize)]
    struct Count {
        n: u64,
    }
    Ok(d1::row::<Count>(
        db,
        "SELECT COUNT(*) AS n FROM notifications WHERE project_id = ? AND sub = ? AND read_at IS NULL",
        &[text(project), text(sub)],
    )
    .await?
    .map_or(0, |c| c.n))
}
