//! The alarm's record of which assets the document references (docs/asset-references.md): a
//! scan of the live document ([`crate::asset_refs`]) when it changed since the last one, and,
//! when the set differs from the one last recorded, the document's `asset_usage` rows in D1
//! replaced in one batch. Never on the message path: the alarm runs it at most
//! `ASSET_USAGE_SECONDS` after a change, or when the last connection leaves.

use super::{Loaded, RoomInfo, RoomObject};
use crate::asset_refs::{self, Limits, Scan};
use crate::edge::d1::{self, num, text};
use crate::edge::env;
use crate::edge::log::{self, Emit};

/// `room_meta` key of the log position the last recorded scan read.
const ASSETS_SEQ: &str = "assets_seq";
/// `room_meta` key of the digest of the set last recorded in D1 ([`Scan::digest`]); none: the
/// empty set (a document that never referenced an asset has no rows to write).
const ASSETS_DIGEST: &str = "assets_digest";

/// What the synchronous part of the upkeep found.
enum Found {
    /// Nothing to write: the document did not change, or its set did not.
    Nothing,
    /// A set to record, read at log position `seq`.
    Record { scan: Scan, seq: u64 },
}

impl RoomObject {
    /// The alarm's asset upkeep; returns when the alarm must come back for it (a scan asked
    /// for later, or a retry after a failed write).
    pub(super) async fn assets_upkeep(&self, now: u64, room_empty: bool) -> Option<u64> {
        if !self.upkeep.borrow().assets_due(now, room_empty) {
            return self.upkeep.borrow().assets_pending();
        }
        let (scan, seq) = match self.scan_assets() {
            Found::Nothing => return None,
            Found::Record { scan, seq } => (scan, seq),
        };
        let Some(info) = self.info().await else {
            // Only a room the worker never reached has no names: nothing to record them under.
            log::warn("asset_refs.unrecorded")
                .message("asset references not recorded: the room has no names")
                .emit();
            return None;
        };
        match record(&self.env, &info, &scan, now).await {
            Ok(()) => {
                if let Loaded::Ready(room) = &*self.room.borrow() {
                    let store = room.store();
                    let stored = store
                        .set_meta(ASSETS_DIGEST, scan.digest())
                        .and_then(|()| store.set_meta(ASSETS_SEQ, seq as i64));
                    if let Err(e) = stored {
                        // The next scan writes the same rows again; nothing is lost.
                        let line = log::warn("asset_refs.unremembered")
                            .message("remembering the recorded asset references failed")
                            .cause(e);
                        self.here(line).emit();
                    }
                }
                self.upkeep.borrow_mut().assets_recorded();
                None
            }
            Err(e) => {
                let line = log::error("asset_refs.record_failed")
                    .message("recording asset references failed (retried)")
                    .cause(e);
                self.here(line).emit();
                self.upkeep.borrow_mut().assets_failed(self.intervals, now)
            }
        }
    }

    /// Scans the document if it changed since the last recorded scan; the set when it differs
    /// from the one recorded. Synchronous: the document is read as it is in this event.
    fn scan_assets(&self) -> Found {
        let loaded = self.room.borrow();
        let Loaded::Ready(room) = &*loaded else {
            return Found::Nothing;
        };
        let store = room.store();
        let seq = room.head();
        let (last_seq, last_digest) = match (store.meta(ASSETS_SEQ), store.meta(ASSETS_DIGEST)) {
            (Ok(seq), Ok(digest)) => (seq.unwrap_or(0) as u64, digest),
            (Err(e), _) | (_, Err(e)) => {
                let line = log::error("asset_refs.scan_failed")
                    .message("asset references: room metadata unreadable")
                    .cause(e);
                self.here(line).emit();
                return Found::Nothing;
            }
        };
        self.upkeep.borrow_mut().assets_scanned();
        if seq <= last_seq {
            return Found::Nothing;
        }
        let doc = match room.doc() {
            Ok(doc) => doc,
            Err(e) => {
                let line = log::error("asset_refs.scan_failed")
                    .message("asset references: document unreadable")
                    .cause(e);
                self.here(line).emit();
                return Found::Nothing;
            }
        };
        let scan = asset_refs::scan(doc, &Limits::default());
        if scan.truncated || scan.dropped > 0 || scan.too_deep > 0 {
            let line = log::warn("asset_refs.capped")
                .message("asset references at a cap")
                .cause(asset_refs::describe(&scan));
            self.here(line).emit();
        }
        let last_digest = last_digest.unwrap_or_else(|| asset_refs::digest(&Default::default()));
        if scan.digest() == last_digest {
            if let Err(e) = store.set_meta(ASSETS_SEQ, seq as i64) {
                let line = log::warn("asset_refs.unremembered")
                    .message("remembering the asset scan failed")
                    .cause(e);
                self.here(line).emit();
            }
            self.upkeep.borrow_mut().assets_recorded();
            return Found::Nothing;
        }
        Found::Record { scan, seq }
    }
}

/// Replaces the document's `asset_usage` rows with `scan`'s set, in one batch (a D1
/// transaction): readers see the old set or the new one, never a mix.
async fn record(
    env: &worker::Env,
    info: &RoomInfo,
    scan: &Scan,
    now: u64,
) -> std::result::Result<(), String> {
    let db = env.d1(env::DB).map_err(|e| format!("d1 binding: {e}"))?;
    let (project, document) = (info.project.as_str(), info.room.as_str());
    let failed = |e: crate::api::ApiError| format!("{e:?}");
    let mut stmts = vec![d1::stmt(
        &db,
        "DELETE FROM asset_usage WHERE project_id = ? AND document = ?",
        &[text(project), text(document)],
    )
    .map_err(failed)?];
    if !scan.refs.is_empty() {
        stmts.push(
            d1::stmt(
                &db,
                "INSERT INTO asset_usage (project_id, document, asset_id, refs, updated_at)
                 SELECT ?1, ?2, key, value, ?3 FROM json_each(?4)",
                &[
                    text(project),
                    text(document),
                    num(now),
                    text(&scan.refs_json()),
                ],
            )
            .map_err(failed)?,
        );
    }
    d1::batch(&db, stmts).await.map_err(failed)
}
