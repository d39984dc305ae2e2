//! Fan-out: N clients in one room. First one writer, then 10% of the clients, each typing one
//! character per update at a fixed rate (open loop). Every other client times every update it
//! receives from the moment the update was sent.
//!
//! Each writer types into its own document only (it does not apply what it receives), one
//! character per update, so each update is a single insertion with its own (client, clock) id:
//! a receiver reads writer and clock from the first bytes of the update and looks up when it
//! was sent.

use super::{first_id, Ctx, PATIENCE};
use crate::common::client::{Peer, PeerConfig};
use crate::common::measure::summarize;
use crate::common::trace::{new_doc, TEXT};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use yrs::{Text, Transact};

const WORKLOAD: &str = "2 fan-out";

#[derive(Default)]
struct Shared {
    /// When each update, by (writer, clock), was handed to its socket.
    sent: RwLock<HashMap<(u64, u32), Instant>>,
    latencies: Mutex<Vec<Duration>>,
    delivered: AtomicU64,
    unknown: AtomicU64,
}

/// Runs every room size.
pub async fn run(ctx: &mut Ctx<'_>) {
    for n in ctx.settings.fanout_sizes.clone() {
        if let Err(e) = room(ctx, n).await {
            ctx.failed(WORKLOAD, &format!("{n} clients: {e}"));
        }
    }
}

async fn room(ctx: &mut Ctx<'_>, n: usize) -> Result<(), String> {
    let url = ctx.server.room_url(&ctx.room(&format!("fanout-{n}")));
    let shared = Arc::new(Shared::default());
    let mut peers = Vec::with_capacity(n);
    for i in 0..n {
        let me = 1000 + i as u64;
        let s = shared.clone();
        let hook = Box::new(move |u: &[u8], at: Instant| {
            let Some((client, clock)) = first_id(u) else {
                s.unknown.fetch_add(1, Ordering::Relaxed);
                return;
            };
            if client == me {
                return; // the server echoing the sender's own update (as some servers do)
            }
            let sent = s.sent.read().unwrap().get(&(client, clock)).copied();
            match sent {
                Some(sent) => {
                    s.latencies
                        .lock()
                        .unwrap()
                        .push(at.saturating_duration_since(sent));
                    s.delivered.fetch_add(1, Ordering::Relaxed);
                }
                None => {
                    s.unknown.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        let peer = Peer::join(&url, PeerConfig::new(new_doc(me)).with_hook(hook), PATIENCE)
            .await
            .map_err(|e| format!("client {i}: {e}"))?;
        peers.push(peer);
    }
    let mut clocks = vec![0u32; n];
    let tenth = n.div_ceil(10).max(1);
    for (phase, writers) in [("1 writer", 1), ("10% writing", tenth)] {
        let label = format!("{n} clients, {phase}");
        phase_run(ctx, &peers, &shared, &mut clocks, writers, &label).await?;
    }
    // Everything typed is in the room: a late joiner sees every character (a relay, the
    // runtime's floor, keeps nothing: there the deliveries counted above are the check).
    let held = if ctx.server.kind.keeps_document() {
        let late = Peer::join(&url, PeerConfig::new(new_doc(999)), PATIENCE).await?;
        let len = late.text(TEXT).chars().count() as u32;
        late.close().await;
        Some(len)
    } else {
        None
    };
    for p in peers {
        p.close().await;
    }
    let typed: u32 = clocks.iter().sum();
    if let Some(len) = held.filter(|len| *len != typed) {
        return Err(format!(
            "the room holds {len} characters, {typed} were typed"
        ));
    }
    Ok(())
}

async fn phase_run(
    ctx: &mut Ctx<'_>,
    peers: &[Peer],
    shared: &Shared,
    clocks: &mut [u32],
    writers: usize,
    label: &str,
) -> Result<(), String> {
    let n = peers.len();
    let period = Duration::from_secs_f64(1.0 / ctx.settings.fanout_rate);
    let per_writer = (ctx.settings.fanout_secs * ctx.settings.fanout_rate).round() as u32;
    let start = Instant::now() + Duration::from_millis(50);
    shared.sent.write().unwrap().clear();
    shared.latencies.lock().unwrap().clear();
    shared.delivered.store(0, Ordering::Relaxed);
    let mut schedule: Vec<(Instant, usize)> = (0..writers)
        .flat_map(|w| {
            // Writers are spread evenly over one period.
            let offset = period.mul_f64(w as f64 / writers as f64);
            (0..per_writer).map(move |k| (start + offset + period * k, w))
        })
        .collect();
    schedule.sort();
    let texts: Vec<_> = peers[..writers]
        .iter()
        .map(|p| p.doc.get_or_insert_text(TEXT))
        .collect();
    let expected = schedule.len() as u64 * (n as u64 - 1);

    let probe = ctx.probe();
    let mut late = Duration::ZERO;
    for (due, w) in &schedule {
        tokio::time::sleep_until((*due).into()).await;
        late = late.max(Instant::now().saturating_duration_since(*due));
        let update = {
            let mut txn = peers[*w].doc.transact_mut();
            texts[*w].insert(&mut txn, 0, "x");
            txn.encode_update_v1()
        };
        let id = (1000 + *w as u64, clocks[*w]);
        clocks[*w] += 1;
        shared.sent.write().unwrap().insert(id, Instant::now());
        peers[*w].send_update(update);
    }
    let drained = Instant::now();
    while shared.delivered.load(Ordering::Relaxed) < expected && drained.elapsed() < PATIENCE {
        if let Some(e) = peers.iter().find_map(|p| p.check().err()) {
            return Err(e);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let usage = ctx.finish(&probe);
    let delivered = shared.delivered.load(Ordering::Relaxed);
    let mut lat = std::mem::take(&mut *shared.latencies.lock().unwrap());
    let col = ctx.col();
    let r = &mut *ctx.report;
    if let Some(s) = summarize(&mut lat) {
        r.num(col, WORKLOAD, &format!("{label}: p50"), "ms", s.p50);
        r.num(col, WORKLOAD, &format!("{label}: p99"), "ms", s.p99);
    }
    r.num(
        col,
        WORKLOAD,
        &format!("{label}: deliveries"),
        "updates/s",
        delivered as f64 / usage.wall,
    );
    if delivered < expected {
        r.note(format!(
            "{col}: {label}: {delivered} of {expected} deliveries within {PATIENCE:?} of the end"
        ));
    }
    if late > period / 2 {
        r.note(format!(
            "{col}: {label}: the load generator sent up to {late:?} late (client saturated?)"
        ));
    }
    ctx.usage(WORKLOAD, label, &usage);
    Ok(())
}
