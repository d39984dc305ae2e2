//! Loading a document: the automerge-paper result (its whole history, as replayed) and a
//! document ten times that, each stored in a room first.
//!
//! - Warm: a new client joins while the room is in memory; connect → synced.
//! - Cold: the rooms are left idle for a second, the server is restarted on the same storage
//!   (graceful stop), then a new client joins; connect → synced, which includes the server
//!   reading the document.
//!   The reference server keeps documents in memory only, so it has no cold load.
//!
//! Every load is checked: the synced text must be the expected text.

use super::{Ctx, PATIENCE};
use crate::common::client::{Peer, PeerConfig};
use crate::common::measure::ms;
use crate::common::trace::{new_doc, TEXT};
use std::time::{Duration, Instant};

const WORKLOAD: &str = "4 document load";

/// How long the rooms are left without clients before each restart.
const IDLE_BEFORE_RESTART: Duration = Duration::from_secs(1);

/// Seeds the rooms, then measures warm and cold loads.
pub async fn run(ctx: &mut Ctx<'_>) {
    if let Err(e) = measure(ctx).await {
        ctx.failed(WORKLOAD, &e);
    }
}

/// Joins `url` and returns the time from connect to synced, checking the text.
async fn load(url: &str, expected: &str) -> Result<Duration, String> {
    let started = Instant::now();
    let peer = Peer::join(url, PeerConfig::new(new_doc(50)), PATIENCE).await?;
    let took = started.elapsed();
    let ok = peer.text(TEXT) == expected;
    peer.close().await;
    if ok {
        Ok(took)
    } else {
        Err("loaded text differs from the stored document".into())
    }
}

fn median(mut v: Vec<Duration>) -> f64 {
    v.sort();
    ms(v[v.len() / 2])
}

async fn measure(ctx: &mut Ctx<'_>) -> Result<(), String> {
    let docs = &ctx.data.cold_docs;
    let mut rooms = Vec::new();
    for (label, updates, expected) in docs {
        let url = ctx.server.room_url(&ctx.room(&format!("doc-{label}")));
        let seeder = Peer::join(&url, PeerConfig::new(new_doc(40)), PATIENCE).await?;
        for u in updates {
            seeder.send_update(u.clone());
        }
        // Stored once a new client syncs all of it.
        let since = Instant::now();
        loop {
            let checker = Peer::join(&url, PeerConfig::new(new_doc(41)), PATIENCE).await?;
            let done = checker.text(TEXT) == *expected;
            checker.close().await;
            if done {
                break;
            }
            seeder.check()?;
            if since.elapsed() > PATIENCE {
                return Err(format!("{label} document not stored within {PATIENCE:?}"));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        seeder.close().await;
        let mut warm = Vec::new();
        for _ in 0..3 {
            warm.push(load(&url, expected).await?);
        }
        let size: usize = updates.iter().map(Vec::len).sum();
        let col = ctx.col();
        ctx.report.num(
            col,
            WORKLOAD,
            &format!("{label}: document (v1 update)"),
            "B",
            size as f64,
        );
        ctx.report.num(
            col,
            WORKLOAD,
            &format!("{label}: warm, connect → synced"),
            "ms",
            median(warm),
        );
        rooms.push((label.clone(), expected.clone()));
    }
    let col = ctx.col();
    if !ctx.server.kind.persists() {
        for (label, _) in &rooms {
            ctx.report.missing(
                col,
                WORKLOAD,
                &format!("{label}: cold, connect → synced"),
                "ms",
                "in memory only: nothing to load after a restart",
            );
        }
        return Ok(());
    }
    let mut cold: Vec<Vec<Duration>> = vec![Vec::new(); rooms.len()];
    let mut restarts = Vec::new();
    for _ in 0..ctx.settings.cold_reps {
        // The rooms idle for a moment before the restart, as a room does between its last
        // client leaving and the next one opening it (TandemX writes its checkpoint then).
        tokio::time::sleep(IDLE_BEFORE_RESTART).await;
        let started = Instant::now();
        ctx.server.restart().await?;
        restarts.push(started.elapsed());
        for (i, (label, expected)) in rooms.iter().enumerate() {
            let url = ctx.server.room_url(&ctx.room(&format!("doc-{label}")));
            cold[i].push(load(&url, expected).await?);
        }
    }
    for ((label, _), samples) in rooms.iter().zip(cold) {
        ctx.report.num(
            col,
            WORKLOAD,
            &format!("{label}: cold, connect → synced"),
            "ms",
            median(samples),
        );
    }
    ctx.report.num(
        col,
        WORKLOAD,
        "server restart (until it serves)",
        "s",
        median(restarts) / 1000.0,
    );
    Ok(())
}
