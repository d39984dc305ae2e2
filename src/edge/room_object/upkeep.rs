//! The room's history upkeep: taking versions (in SQLite, or in R2 when large) and announcing
//! them, and what the alarm does for history: checkpoints, automatic versions, retention.

use super::history_calls::store_error;
use super::{now_ms, unavailable, Loaded, RoomInfo, RoomObject};
use crate::edge::log::{self, Emit};

/// Most authors of one automatic version the activity feed names one by one.
const MAX_EDIT_ENTRIES: usize = 20;
use crate::api::ApiError;
use crate::edge::version_store::{self as stored_versions, NewVersion, Target};
use crate::edge::{env, http};
use crate::storage::RoomStore;
use crate::versions::{Version, VersionKind};
use serde_json::json;
use worker::Result;

impl RoomObject {
    /// Takes a version of the current state now and announces it (`version.created`).
    pub(super) async fn take_version(
        &self,
        kind: VersionKind,
        name: Option<String>,
        description: Option<String>,
        author: &str,
    ) -> std::result::Result<Version, ApiError> {
        let policy = env::history_policy(&self.env);
        let info = self.info().await;
        let now = now_ms();
        let (state, seq) =
            self.with_store(|room| Ok((room.full_state().map_err(unavailable)?, room.head())))?;
        let new = NewVersion {
            kind,
            name,
            description,
            author: author.to_owned(),
            at: now,
            seq,
        };
        let (target, r2_chunks) = match &info {
            Some(info) if state.len() > policy.inline_limit => {
                let prefix = format!(
                    "history/{}/{}/v-{seq}-{now}-{:08x}",
                    info.project,
                    info.room,
                    crate::edge::platform::random_client_id()
                );
                let bucket = self
                    .env
                    .bucket(env::ASSETS)
                    .map_err(http::internal("history bucket"))?;
                let count = stored_versions::put_r2(&bucket, &prefix, &state)
                    .await
                    .map_err(http::internal("history R2 write"))?;
                (Target::R2(prefix), count)
            }
            _ => (Target::Sql, 0),
        };
        let version = self.with_store(|room| {
            stored_versions::insert(room.store(), &new, &state, &target, r2_chunks)
                .map_err(store_error)
        })?;
        if let (Some(info), VersionKind::Auto) = (&info, kind) {
            self.record_edits(info, &version).await;
        }
        if let Some(info) = info {
            super::super::webhook_queue::emit(
                &self.env,
                &info.project,
                "version.created",
                json!({ "project": info.project, "document": info.room, "version": version }),
                None,
            )
            .await;
        }
        Ok(version)
    }

    /// The activity feed's edits: one entry per author of the changes an automatic version
    /// gathered (a few minutes of editing), naming the version to diff against the one before.
    async fn record_edits(&self, info: &RoomInfo, version: &Version) {
        let result = async {
            let db = self.env.d1(env::DB)?;
            let mut stmts = Vec::new();
            for author in version.authors.iter().take(MAX_EDIT_ENTRIES) {
                let actor = author.strip_prefix("user:").unwrap_or(author);
                let detail = json!({ "version": version.id, "seq": version.seq, "authors": version.authors.len() });
                stmts.push(
                    db.prepare(
                        "INSERT INTO activity (project_id, document, actor, kind, detail, at)
                         VALUES (?, ?, ?, 'document.edited', ?, ?)",
                    )
                    .bind(&[
                        info.project.as_str().into(),
                        info.room.as_str().into(),
                        actor.into(),
                        detail.to_string().into(),
                        (version.at as f64).into(),
                    ])?,
                );
            }
            if !stmts.is_empty() {
                db.batch(stmts).await?;
            }
            Ok::<(), worker::Error>(())
        }
        .await;
        if let Err(e) = result {
            log::warn("activity.record_failed")
                .message("recording edits in the activity feed failed")
                .project(&info.project)
                .room(&info.room)
                .cause(e)
                .emit();
        }
    }

    pub(super) async fn info(&self) -> Option<RoomInfo> {
        let info = self
            .state
            .storage()
            .get::<RoomInfo>("info")
            .await
            .ok()
            .flatten();
        if let Some(info) = &info {
            self.learn_names(info);
        }
        info
    }

    /// Deletes R2 objects of removed versions; a failure leaves garbage, never a broken version.
    pub(super) async fn delete_r2(&self, keys: Vec<String>) {
        if keys.is_empty() {
            return;
        }
        match self.env.bucket(env::ASSETS) {
            Ok(bucket) => {
                for key in keys {
                    if let Err(e) = bucket.delete(&key).await {
                        let line = log::warn("version.r2_delete_failed")
                            .field("key", key.as_str())
                            .cause(e);
                        self.here(line).emit();
                    }
                }
            }
            Err(e) => {
                let line = log::warn("version.r2_delete_failed")
                    .message("no bucket to delete versions from")
                    .cause(e);
                self.here(line).emit();
            }
        }
    }

    /// Deletes every version the room keeps in R2 (the document is being deleted).
    pub(super) async fn delete_history_objects(&self) -> Result<()> {
        let Some(info) = self.info().await else {
            return Ok(());
        };
        let bucket = self.env.bucket(env::ASSETS)?;
        let prefix = format!("history/{}/{}/", info.project, info.room);
        loop {
            let listed = bucket.list().prefix(prefix.clone()).execute().await?;
            let objects = listed.objects();
            if objects.is_empty() {
                return Ok(());
            }
            for object in objects {
                bucket.delete(object.key()).await?;
            }
        }
    }

    /// The alarm's share of history upkeep: write a due checkpoint, take a due automatic
    /// version, apply retention, and once the last connection has left, checkpoint whatever was
    /// logged since the last checkpoint. Returns when the alarm must next come back for it.
    pub(super) async fn history_upkeep(&self, now: u64, room_empty: bool) -> Result<Option<u64>> {
        self.compact_if_due(false);
        let policy = env::history_policy(&self.env);
        // Only a leave counts (`room_empty`): a room written through the API alone has no
        // connections either, and takes its versions on the interval.
        let next = self.versions_upkeep(&policy, now, room_empty).await;
        let next = crate::upkeep::Upkeep::earliest([next, self.retention_upkeep(now).await]);
        // After the version, whose encoding of the document the checkpoint reuses.
        if room_empty {
            self.compact_if_due(true);
        }
        Ok(next)
    }

    /// The alarm's automatic version and retention; returns when the alarm must next come back
    /// for them.
    async fn versions_upkeep(
        &self,
        policy: &crate::versions::Policy,
        now: u64,
        room_empty: bool,
    ) -> Option<u64> {
        let state = match &*self.room.borrow() {
            Loaded::Ready(room) => stored_versions::history_state(room.store()),
            _ => return None,
        };
        let state = match state {
            Ok(s) => s,
            Err(e) => {
                let line = log::error("history.state_unreadable").cause(e);
                self.here(line).emit();
                return None;
            }
        };
        if policy.take_auto(&state, now, room_empty) {
            if let Err(e) = self
                .take_version(VersionKind::Auto, None, None, "room")
                .await
            {
                let line = log::error("version.auto_failed")
                    .message("automatic version failed")
                    .cause(format!("{e:?}"));
                self.here(line).emit();
            }
            self.apply_retention(now).await;
            return None;
        }
        let due = policy.auto_due(&state);
        if due.is_some() {
            self.upkeep.borrow_mut().version_asked();
        }
        due
    }

    /// Removes what the project's retention no longer keeps; nothing when the project's
    /// setting cannot be read.
    pub(super) async fn apply_retention(&self, now: u64) {
        let mut policy = env::history_policy(&self.env);
        policy.retention_ms = match self.retention_ms().await {
            Ok(retention) => retention,
            Err(e) => {
                let line = log::warn("retention.skipped").cause(e);
                self.here(line).emit();
                return;
            }
        };
        self.set_retention_at(now);
        let keys = self.with_store(|room| {
            let all = stored_versions::all(room.store()).map_err(store_error)?;
            let prune = policy.prune(&all, now);
            // The room loads from its checkpoint plus the log after it: move the checkpoint past
            // what goes first.
            if prune.log_upto_seq > room.store().checkpoint_upto().map_err(store_error)? {
                room.compact().map_err(|e| {
                    log::error("retention.checkpoint_failed")
                        .message("checkpoint before retention failed")
                        .cause(e)
                        .emit();
                    ApiError::Internal
                })?;
            }
            let store = room.store();
            store.prune_log(prune.log_upto_seq).map_err(store_error)?;
            let mut keys = Vec::new();
            for id in prune.versions {
                if let Some(stored) = stored_versions::get(store, id).map_err(store_error)? {
                    keys.extend(stored_versions::delete(store, &stored).map_err(store_error)?);
                }
            }
            Ok(keys)
        });
        match keys {
            Ok(keys) => self.delete_r2(keys).await,
            Err(e) => {
                let line = log::error("retention.failed").cause(format!("{e:?}"));
                self.here(line).emit();
            }
        }
    }

    /// The project's retention (`history_retention_days`; 0 keeps everything) from D1, or the
    /// server's default when the project has none. `Err` when D1 could not say: then nothing is
    /// pruned (a project set to keep everything must never lose history to a failed query).
    async fn retention_ms(&self) -> std::result::Result<Option<u64>, String> {
        let default = env::history_policy(&self.env).retention_ms;
        let Some(info) = self.info().await else {
            return Ok(default);
        };
        let read = async {
            let db = self
                .env
                .d1(env::DB)
                .map_err(|e| format!("d1 binding: {e}"))?;
            let row = db
                .prepare("SELECT history_retention_days AS days FROM projects WHERE id = ?")
                .bind(&[info.project.into()])
                .map_err(|e| format!("d1 bind: {e}"))?
                .first::<serde_json::Value>(None)
                .await
                .map_err(|e| format!("d1 query: {e}"))?;
            Ok(row.map(|r| r["days"].as_u64()))
        };
        crate::versions::project_retention(read.await, default)
    }

    /// The daily retention run: dormant documents are pruned too, not only after an automatic
    /// version. Returns when the alarm must next come back for it (`None` while the room has
    /// no history to prune).
    pub(super) async fn retention_upkeep(&self, now: u64) -> Option<u64> {
        let interval =
            env::number_or(&self.env, env::RETENTION_CHECK_SECONDS, 86_400) as u64 * 1000;
        let (last, has_log) = match &*self.room.borrow() {
            Loaded::Ready(room) => {
                let store = room.store();
                (store.meta(RETENTION_AT).ok().flatten(), store.head() > 0)
            }
            _ => return None,
        };
        if !has_log {
            return None;
        }
        let last = match last {
            Some(at) => at as u64,
            None => {
                self.set_retention_at(now);
                now
            }
        };
        if now < last.saturating_add(interval) {
            return Some(last.saturating_add(interval));
        }
        self.apply_retention(now).await;
        Some(now.saturating_add(interval))
    }

    fn set_retention_at(&self, now: u64) {
        if let Loaded::Ready(room) = &*self.room.borrow() {
            if let Err(e) = room.store().set_meta(RETENTION_AT, now as i64) {
                let line = log::warn("retention.unremembered")
                    .message("remembering the retention run failed")
                    .cause(e);
                self.here(line).emit();
            }
        }
    }
}

/// `room_meta` key of the last retention run (unix ms).
const RETENTION_AT: &str = "retention_at";
