//! The room's history: versions (automatic, named, restore, merge, fork), diff, restore,
//! session replay and the document at any instant, and the room's half of branching. Called by
//! the worker through typed [`RoomCall`]s, after it checked the caller (see
//! `src/edge/history_api.rs`).

use super::document::binary;
use super::{now_ms, unavailable, Loaded, RoomObject};
use crate::api::ApiError;
use crate::edge::log::{self, Emit};
use crate::edge::sql_store::SqlRoomStore;
use crate::edge::version_store as stored_versions;
use crate::edge::{env, http};
use crate::names::RoomName;
use crate::room_call::{DiffSide, ForkReply, HeadReply, RoomCall};
use crate::storage::{RoomStore, StoreError};
use crate::versions::{CreateVersion, VersionKind};
use serde_json::json;
use worker::Response;

type Answer = std::result::Result<Response, ApiError>;

pub(super) fn store_error(e: StoreError) -> ApiError {
    log::error("history.store_failed").cause(e).emit();
    ApiError::Internal
}

use crate::codec::base64 as b64;

impl RoomObject {
    /// Serves a history call (the worker checked the caller; values are typed).
    pub(super) async fn history(&self, call: RoomCall, payload: &[u8], author: &str) -> Answer {
        // History reads the stored log: rows still waiting for the group commit are written
        // first, so that the log, its head and the document's state describe the same changes.
        self.flush_now()
            .map_err(http::internal("commit before a history call"))?;
        match call {
            RoomCall::ListVersions { limit, before } => self.list_versions(limit, before),
            RoomCall::CreateVersion { name, description } => {
                self.create_named(name, description, author).await
            }
            RoomCall::GetVersion { id, as_update } => self.get_version(id, as_update).await,
            RoomCall::DeleteVersion { id } => self.delete_version(id).await,
            RoomCall::RestoreVersion { id } => self.restore(id, author).await,
            RoomCall::Diff { from, to } => self.diff(from, to).await,
            RoomCall::Replay {
                after,
                from,
                to,
                limit,
            } => self.replay(after, from, to, limit),
            RoomCall::At { t, as_update } => self.at(t, as_update).await,
            RoomCall::Head { after, with_state } => self.head(after, with_state),
            RoomCall::Fork { parent } => {
                let name = format!("Branched from {parent}");
                self.start(payload, author, VersionKind::Fork, name).await
            }
            RoomCall::Import => {
                let name = "Imported from an archive".to_owned();
                self.start(payload, author, VersionKind::Named, name).await
            }
            RoomCall::Merge { branch, preview } => {
                self.merge(payload, author, &branch, preview).await
            }
            _ => Err(ApiError::NotFound),
        }
    }

    /// Runs `f` on the loaded room's store.
    pub(super) fn with_store<T>(
        &self,
        f: impl FnOnce(&mut crate::room::Room<SqlRoomStore>) -> std::result::Result<T, ApiError>,
    ) -> std::result::Result<T, ApiError> {
        match &mut *self.room.borrow_mut() {
            Loaded::Ready(room) => f(room),
            _ => Err(ApiError::RoomUnavailable),
        }
    }

    fn list_versions(&self, limit: u32, before: Option<u64>) -> Answer {
        let limit = limit.clamp(1, crate::queries::MAX_VERSION_PAGE) as usize;
        let before = before.unwrap_or(u64::MAX);
        let mut versions = self.with_store(|room| {
            stored_versions::list(room.store(), limit, before).map_err(store_error)
        })?;
        // Rows are metadata, bounded but for `authors` (everyone who wrote between two
        // versions): a page also stops at the byte budget.
        let sizes: Vec<usize> = versions
            .iter()
            .map(|v| serde_json::to_vec(v).map_or(0, |json| json.len()))
            .collect();
        let cut = crate::history::cut_page(&sizes, limit, crate::history::PAGE_BYTES);
        versions.truncate(cut.len);
        let next = cut.more.then(|| versions.last().map(|v| v.id)).flatten();
        http::json(&json!({ "versions": versions, "next_before": next }))
    }

    async fn create_named(
        &self,
        name: String,
        description: Option<String>,
        author: &str,
    ) -> Answer {
        let input = CreateVersion { name, description };
        input.validate().map_err(ApiError::InvalidBody)?;
        let version = self
            .take_version(
                VersionKind::Named,
                Some(input.name.trim().to_owned()),
                input.description,
                author,
            )
            .await?;
        Ok(http::json(&version)?.with_status(201))
    }

    /// A version's row and state.
    async fn version_state(
        &self,
        id: u64,
    ) -> std::result::Result<(stored_versions::StoredVersion, Vec<u8>), ApiError> {
        let (stored, inline) = self.with_store(|room| {
            let stored = stored_versions::get(room.store(), id)
                .map_err(store_error)?
                .ok_or_else(|| ApiError::Missing("version", id.to_string()))?;
            let inline = stored_versions::read_sql(room.store(), &stored).map_err(store_error)?;
            Ok((stored, inline))
        })?;
        let state = match inline {
            Some(state) => state,
            None => {
                let bucket = self
                    .env
                    .bucket(env::ASSETS)
                    .map_err(http::internal("history bucket"))?;
                stored_versions::read_r2(&bucket, &stored)
                    .await
                    .map_err(store_error)?
            }
        };
        Ok((stored, state))
    }

    async fn get_version(&self, id: u64, as_update: bool) -> Answer {
        let (stored, state) = self.version_state(id).await?;
        if as_update {
            return binary(state);
        }
        let doc = crate::history::state_at(Some(&state), []).map_err(|e| {
            log::error("version.unloadable")
                .message("a version does not load")
                .field("version", id)
                .cause(e)
                .emit();
            ApiError::Internal
        })?;
        http::json(&json!({
            "version": stored.version,
            "content": crate::document::render_json(&doc),
        }))
    }

    async fn delete_version(&self, id: u64) -> Answer {
        let keys = self.with_store(|room| {
            let stored = stored_versions::get(room.store(), id)
                .map_err(store_error)?
                .ok_or_else(|| ApiError::Missing("version", id.to_string()))?;
            stored_versions::delete(room.store(), &stored).map_err(store_error)
        })?;
        self.delete_r2(keys).await;
        http::json(&json!({ "deleted": id }))
    }

    async fn restore(&self, id: u64, author: &str) -> Answer {
        let (stored, state) = self.version_state(id).await?;
        let applied = self.with_store(|room| {
            let update = crate::history::restore_update(
                room.doc().map_err(unavailable)?,
                &state,
                super::document::server_client_id(room).map_err(store_error)?,
            )
            .map_err(|e| {
                log::error("version.restore_failed")
                    .field("version", id)
                    .cause(e)
                    .emit();
                ApiError::Internal
            })?;
            match update {
                None => Ok(None),
                Some(update) => {
                    let before = self.before_change(room.doc().map_err(unavailable)?);
                    room.apply_external(&update, now_ms(), author)
                        .map(|(out, _)| Some((out, before)))
                        .map_err(|r| {
                            log::error("version.restore_failed")
                                .message("restore did not apply")
                                .cause(&r.detail)
                                .emit();
                            ApiError::Internal
                        })
                }
            }
        })?;
        let Some((out, before)) = applied else {
            return http::json(&json!({ "changed": false, "restored": stored.version }));
        };
        self.broadcast(&out.everyone);
        self.after_api_write(author, before)
            .await
            .map_err(http::internal("history write"))?;
        let name = match &stored.version.name {
            Some(n) => format!("Restored {n:?} (version {})", stored.version.id),
            None => format!("Restored version {}", stored.version.id),
        };
        let version = self
            .take_version(VersionKind::Restore, Some(name), None, author)
            .await?;
        http::json(&json!({ "changed": true, "restored": stored.version, "version": version }))
    }

    /// The full state of a diff side, with the log position it holds.
    async fn side_state(&self, side: DiffSide) -> std::result::Result<(Vec<u8>, u64), ApiError> {
        match side {
            DiffSide::Current => {
                self.with_store(|room| Ok((room.full_state().map_err(unavailable)?, room.head())))
            }
            DiffSide::Version(id) => {
                let (stored, state) = self.version_state(id).await?;
                Ok((state, stored.version.seq))
            }
        }
    }

    async fn diff(&self, from: DiffSide, to: DiffSide) -> Answer {
        let (before, from_seq) = self.side_state(from).await?;
        let (after, to_seq) = self.side_state(to).await?;
        let diff = crate::history::diff(&before, &after).map_err(|e| {
            log::error("history.diff_failed").cause(e).emit();
            ApiError::Internal
        })?;
        let (lo, hi) = (from_seq.min(to_seq), from_seq.max(to_seq));
        let authors =
            self.with_store(|room| room.store().authors_between(lo, hi).map_err(store_error))?;
        let name = |s: &DiffSide| match s {
            DiffSide::Current => json!("current"),
            DiffSide::Version(id) => json!(id),
        };
        http::json(&json!({
            "from": name(&from),
            "to": name(&to),
            "from_seq": from_seq,
            "to_seq": to_seq,
            "authors": authors,
            "changes": diff,
        }))
    }

    fn replay(&self, after: u64, from: u64, to: u64, limit: u32) -> Answer {
        let limit = limit.clamp(1, crate::queries::MAX_REPLAY_PAGE) as usize;
        // A page also stops once the base64 of its updates would pass the byte budget (always
        // sending one entry, however large, so the client progresses); the next page starts
        // after the last entry sent. The sizes are read first, so only what is sent is read.
        let (entries, earliest, more) = self.with_store(|room| {
            let store = room.store();
            let sizes = store
                .log_sizes(after, from, to, limit)
                .map_err(store_error)?;
            let encoded: Vec<usize> = sizes
                .iter()
                .map(|(_, n)| crate::history::base64_len(*n))
                .collect();
            let cut = crate::history::cut_page(&encoded, limit, crate::history::PAGE_BYTES);
            let entries = match (
                sizes.first(),
                cut.len.checked_sub(1).and_then(|i| sizes.get(i)),
            ) {
                (Some((first, _)), Some((last, _))) => {
                    store.log_between(first - 1, *last).map_err(store_error)?
                }
                _ => Vec::new(),
            };
            let earliest = store.first_entry_after(0).map_err(store_error)?;
            Ok((entries, earliest, cut.more))
        })?;
        let next = more.then(|| entries.last().map(|e| e.seq)).flatten();
        let updates: Vec<_> = entries
            .iter()
            .map(|e| json!({ "seq": e.seq, "at": e.at_ms, "author": e.author, "update": b64(&e.update) }))
            .collect();
        http::json(&json!({
            "updates": updates,
            "next_after": next,
            "earliest": earliest.map(|(seq, at)| json!({ "seq": seq, "at": at })),
        }))
    }

    /// The document as it was at `t` (unix ms): the newest version at or before that point
    /// plus the log entries after it.
    async fn at(&self, t: u64, as_update: bool) -> Answer {
        // A version holds every entry logged before it was taken, so the document at `t` is the
        // newest version taken by then plus the entries after it logged by then.
        let (seq, base, first, head) = self.with_store(|room| {
            let store = room.store();
            let seq = store.seq_at(t).map_err(store_error)?;
            let base = stored_versions::latest_at(store, t).map_err(store_error)?;
            let first = store.first_entry_after(0).map_err(store_error)?;
            Ok((seq, base, first, store.head()))
        })?;
        let Some(base_seq) = crate::history::replay_start(
            base.as_ref().map(|b| b.version.seq),
            first.map(|(s, _)| s),
            head,
        ) else {
            return Err(ApiError::HistoryPruned(match first {
                Some((_, at)) => format!("the history before {at} ms is no longer kept"),
                None => "the history before the newest version is no longer kept".into(),
            }));
        };
        let seq = seq.max(base_seq);
        let base_state = match &base {
            Some(b) => Some(self.version_state(b.version.id).await?.1),
            None => None,
        };
        let entries =
            self.with_store(|room| room.store().log_between(base_seq, seq).map_err(store_error))?;
        let doc = crate::history::state_at(
            base_state.as_deref(),
            entries.iter().map(|e| e.update.as_slice()),
        )
        .map_err(|e| {
            log::error("history.replay_failed").cause(e).emit();
            ApiError::Internal
        })?;
        if as_update {
            use yrs::{ReadTxn, StateVector, Transact};
            return binary(
                doc.transact()
                    .encode_state_as_update_v1(&StateVector::default()),
            );
        }
        http::json(&json!({ "t": t, "seq": seq, "content": crate::document::render_json(&doc) }))
    }

    /// Where the log stands: the head, how many entries follow `after` and who wrote them, the
    /// state vector, and with `state=1` the whole state (one read, so head and state agree).
    fn head(&self, after: u64, with_state: bool) -> Answer {
        let body = self.with_store(|room| {
            use yrs::updates::encoder::Encode;
            use yrs::{ReadTxn, Transact};
            let store = room.store();
            let head = store.head();
            let sv = room
                .doc()
                .map_err(unavailable)?
                .transact()
                .state_vector()
                .encode_v1();
            Ok(HeadReply {
                head,
                after,
                count: store.count_after(after).map_err(store_error)?,
                authors: store.authors_between(after, head).map_err(store_error)?,
                state_vector: b64(&sv),
                state: match with_state {
                    true => Some(b64(&room.full_state().map_err(unavailable)?)),
                    false => None,
                },
            })
        })?;
        http::json(&body)
    }

    /// Starts a branch or an imported document: this (new, empty) room takes `state` (the
    /// parent's state at the fork, or the archive's) as its first change, and records it as a
    /// version of `kind` named `name`.
    async fn start(&self, state: &[u8], author: &str, kind: VersionKind, name: String) -> Answer {
        let seq = self.with_store(|room| {
            if room.head() > 0 {
                return Err(ApiError::Conflict(
                    "the document's room is not empty".into(),
                ));
            }
            let before = self.before_change(room.doc().map_err(unavailable)?);
            room.apply_external(state, now_ms(), author)
                .map_err(|r| ApiError::InvalidBody(format!("{}: {}", r.reason, r.detail)))?;
            Ok((room.head(), before))
        })?;
        let (seq, before) = seq;
        self.after_api_write(author, before)
            .await
            .map_err(http::internal("history write"))?;
        let version = self.take_version(kind, Some(name), None, author).await?;
        http::json(&ForkReply {
            seq,
            version: serde_json::to_value(&version).map_err(http::internal("version json"))?,
        })
    }

    /// Applies a branch's changes (an update holding what this room lacks of the branch), or
    /// with `preview` only reports the diff it would make.
    async fn merge(&self, update: &[u8], author: &str, branch: &RoomName, preview: bool) -> Answer {
        if preview {
            let (before, after) = self.with_store(|room| {
                let before = room.full_state().map_err(unavailable)?;
                let doc = crate::history::state_at(Some(&before), [update]).map_err(|e| {
                    ApiError::InvalidBody(format!("the branch's changes do not apply: {e}"))
                })?;
                use yrs::{ReadTxn, StateVector, Transact};
                let after = doc
                    .transact()
                    .encode_state_as_update_v1(&StateVector::default());
                Ok((before, after))
            })?;
            let diff = crate::history::diff(&before, &after).map_err(|e| {
                log::error("branch.preview_failed")
                    .message("merge preview failed")
                    .cause(e)
                    .emit();
                ApiError::Internal
            })?;
            return http::json(&json!({ "changes": diff }));
        }
        let (out, before) = self.with_store(|room| {
            let before = self.before_change(room.doc().map_err(unavailable)?);
            room.apply_external(update, now_ms(), author)
                .map(|(out, _)| (out, before))
                .map_err(|r| ApiError::InvalidBody(format!("{}: {}", r.reason, r.detail)))
        })?;
        if !out.document_changed {
            return http::json(&json!({ "changed": false }));
        }
        self.broadcast(&out.everyone);
        self.after_api_write(author, before)
            .await
            .map_err(http::internal("history write"))?;
        let version = self
            .take_version(
                VersionKind::Merge,
                Some(format!("Merged branch {branch}")),
                None,
                author,
            )
            .await?;
        http::json(&json!({ "changed": true, "version": version }))
    }
}
