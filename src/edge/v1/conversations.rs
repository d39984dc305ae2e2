//! Threads, comments, reactions and chat of a document. The room stores and checks them
//! (`crate::conversations`); this side establishes who acts, checks mentions against the
//! project's members before anything is written, and after the room answers records the
//! activity, fills the inbox and sends the webhook events.

use super::{activity, created, inbox, Call, Result};
use crate::api::ApiError;
use crate::auth::{self, Membership, Role};
use crate::conversations::{Body, ConvOp, ConvReply, Event, EventKind, Metadata, NewThread};
use crate::edge::access::Actor;
use crate::edge::d1::{self, text};
use crate::edge::log::{self, Emit};
use crate::edge::room_client::RoomClient;
use crate::edge::{http, webhook_queue};
use crate::names::{Id, RoomName};
use crate::room_call::RoomCall;
use crate::routes::RouteId;
use serde::Deserialize;
use serde_json::json;
use worker::Response;

/// The header an API key (or the admin) names the user it acts for with.
pub const SUBJECT_HEADER: &str = "tandemx-subject";

/// Who acts and with which role: a token's subject with its role; an API key for the user
/// `TandemX-Subject` names, with the lower of the key's role and the user's membership (a
/// removed member acts for nobody), or as itself (its id) when it names no one.
pub async fn participant(cx: &Call<'_>) -> Result<(String, Role)> {
    let header = cx.req.headers().get(SUBJECT_HEADER).ok().flatten();
    if let Some(h) = &header {
        auth::validate_sub(h)
            .map_err(|e| ApiError::InvalidBody(format!("TandemX-Subject: {e}")))?;
    }
    let (ceiling, default) = match &cx.actor {
        Actor::User { sub, role, .. } => {
            if header.as_ref().is_some_and(|h| h != sub) {
                return Err(ApiError::InvalidBody(
                    "TandemX-Subject names another user than the token's subject".into(),
                ));
            }
            return Ok((sub.clone(), *role));
        }
        Actor::Key { id, role, .. } => (*role, id.clone()),
        Actor::Admin => (Role::Owner, "admin".to_owned()),
        Actor::Link { .. } => {
            return Err(ApiError::NotPermitted(
                "a signed link reads one asset, nothing else".into(),
            ))
        }
    };
    let Some(sub) = header else {
        return Ok((default, ceiling));
    };
    match d1::membership(&cx.db()?, cx.project()?.as_str(), &sub).await? {
        Membership::Removed => Err(auth::AuthError::MemberRemoved.into()),
        Membership::Member(role) => Ok((sub, ceiling.min(role))),
        Membership::None => Ok((sub, ceiling)),
    }
}

/// `PATCH .../threads/{thread}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateThread {
    #[serde(default)]
    resolved: Option<bool>,
    #[serde(default)]
    metadata: Option<Metadata>,
}

/// A body of a comment or message.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BodyOnly {
    body: Body,
}

/// `PUT .../subscription`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Subscription {
    level: inbox::Level,
}

/// Serves the conversation routes of a document.
pub async fn serve(id: RouteId, cx: &mut Call<'_>) -> Result<Response> {
    let (project, document) = super::history_routes::live_document(cx).await?;
    let (actor, role) = participant(cx).await?;
    let q = crate::api::url_query(&cx.req.inner().url()).map(str::to_owned);
    let q = q.as_deref();
    let op = match id {
        RouteId::ListThreads => crate::queries::list_threads(q)?,
        RouteId::ListChat => crate::queries::list_chat(q)?,
        RouteId::GetThread => ConvOp::GetThread {
            thread: cx.params.thread()?,
        },
        RouteId::CreateThread => {
            let new: NewThread = cx.body().await?;
            new.anchor.check().map_err(ApiError::InvalidBody)?;
            new.body.check().map_err(ApiError::InvalidBody)?;
            ConvOp::CreateThread { new }
        }
        RouteId::UpdateThread => {
            let input: UpdateThread = cx.body().await?;
            match (input.resolved, input.metadata) {
                (Some(resolved), None) => ConvOp::SetResolved {
                    thread: cx.params.thread()?,
                    resolved,
                },
                (None, Some(metadata)) => ConvOp::SetMetadata {
                    thread: cx.params.thread()?,
                    metadata,
                },
                _ => {
                    return Err(ApiError::InvalidBody(
                        "send one of resolved or metadata".into(),
                    ))
                }
            }
        }
        RouteId::DeleteThread => ConvOp::DeleteThread {
            thread: cx.params.thread()?,
        },
        RouteId::AddComment => {
            let BodyOnly { body } = cx.body().await?;
            body.check().map_err(ApiError::InvalidBody)?;
            ConvOp::AddComment {
                thread: cx.params.thread()?,
                body,
            }
        }
        RouteId::EditComment => {
            let BodyOnly { body } = cx.body().await?;
            body.check().map_err(ApiError::InvalidBody)?;
            ConvOp::EditComment {
                thread: cx.params.thread()?,
                comment: cx.params.comment()?,
                body,
            }
        }
        RouteId::DeleteComment => ConvOp::DeleteComment {
            thread: cx.params.thread()?,
            comment: cx.params.comment()?,
        },
        RouteId::AddReaction | RouteId::RemoveReaction => ConvOp::React {
            thread: cx.params.thread()?,
            comment: cx.params.comment()?,
            emoji: cx.params.emoji()?.to_owned(),
            add: id == RouteId::AddReaction,
        },
        RouteId::PostChat => {
            let BodyOnly { body } = cx.body().await?;
            body.check().map_err(ApiError::InvalidBody)?;
            ConvOp::PostChat { body }
        }
        RouteId::GetSubscription | RouteId::PutSubscription => {
            return subscription(cx, id, &project, &document, &actor).await
        }
        _ => return Err(ApiError::NotFound),
    };
    // Mentions name members of the project: checked before the room writes anything.
    if let Some(body) = op_body(&op) {
        let mentioned = body.mentions();
        let members = inbox::members_among(&cx.db()?, project.as_str(), &mentioned).await?;
        let strangers: Vec<&String> = mentioned.iter().filter(|m| !members.contains(m)).collect();
        if !strangers.is_empty() {
            return Err(ApiError::InvalidBody(format!(
                "mentions must name members of the project; these are not: {strangers:?}"
            )));
        }
    }
    let creates = matches!(
        id,
        RouteId::CreateThread | RouteId::AddComment | RouteId::PostChat
    );
    if creates {
        crate::edge::rate_limits::check(
            cx.env,
            crate::edge::rate_limits::Limit::Comments,
            &format!("{project}:{actor}"),
        )
        .await?;
    }
    let room = RoomClient {
        env: cx.env,
        project: &project,
        room: &document,
        author: actor.clone(),
    };
    let reply: ConvReply = room
        .json(
            RoomCall::Converse {
                actor: actor.clone(),
                role,
                op,
            },
            &[],
        )
        .await?;
    for event in &reply.events {
        after_event(cx, &project, &document, event).await;
    }
    if creates {
        created(&reply.value)
    } else {
        http::json(&reply.value)
    }
}

fn op_body(op: &ConvOp) -> Option<&Body> {
    match op {
        ConvOp::CreateThread { new } => Some(&new.body),
        ConvOp::AddComment { body, .. }
        | ConvOp::EditComment { body, .. }
        | ConvOp::PostChat { body } => Some(body),
        _ => None,
    }
}

/// What follows one conversation event: the activity row, the inbox entries (and their
/// delayed webhooks), the event's own webhook. Failures are logged: the change is stored.
async fn after_event(cx: &Call<'_>, project: &Id, document: &RoomName, event: &Event) {
    let (p, d) = (project.as_str(), document.as_str());
    let data = json!({
        "project": p,
        "document": d,
        "thread": event.thread,
        "comment": event.comment,
        "message": event.message,
        "emoji": event.emoji,
        "actor": event.actor,
        "text": event.text,
        "mentioned": event.mentioned,
    });
    let recorded = matches!(
        event.kind,
        EventKind::ThreadCreated
            | EventKind::ThreadResolved
            | EventKind::ThreadReopened
            | EventKind::ThreadDeleted
            | EventKind::CommentCreated
            | EventKind::CommentDeleted
    );
    if recorded {
        if let Err(e) =
            activity::record(cx, p, Some(d), &event.actor, event.kind.as_str(), &data).await
        {
            log::error("activity.record_failed")
                .project(p)
                .room(d)
                .cause(format!("{e:?}"))
                .emit();
        }
    }
    if let Err(e) = inbox::notify_for(cx, project, document, event).await {
        log::error("inbox.fill_failed")
            .project(p)
            .room(d)
            .cause(format!("{e:?}"))
            .emit();
    }
    webhook_queue::emit(cx.env, p, event.kind.as_str(), data, None).await;
}

async fn subscription(
    cx: &mut Call<'_>,
    id: RouteId,
    project: &Id,
    document: &RoomName,
    actor: &str,
) -> Result<Response> {
    let db = cx.db()?;
    if id == RouteId::PutSubscription {
        let input: Subscription = cx.body().await?;
        d1::stmt(
            &db,
            "INSERT INTO subscriptions (project_id, document, sub, level, updated_at)
             VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (project_id, document, sub) DO UPDATE
               SET level = excluded.level, updated_at = excluded.updated_at",
            &[
                text(project.as_str()),
                text(document.as_str()),
                text(actor),
                text(input.level.as_str()),
                d1::num(crate::edge::platform::now_ms()),
            ],
        )?
        .run()
        .await
        .map_err(http::internal("subscription"))?;
    }
    let level = inbox::level_of(&db, project.as_str(), document.as_str(), actor).await?;
    http::json(&json!({ "document": document, "user": actor, "level": level }))
}
