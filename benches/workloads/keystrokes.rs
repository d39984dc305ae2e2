//! Keystroke latency: one writer replays the start of the trace, one keystroke patch per update;
//! one observer in the same room times each update's arrival.
//!
//! - Open loop: updates leave at a fixed rate whatever the answers, so a stalled server cannot
//!   hide its queue behind a waiting sender (no coordinated omission). Latency counts from the
//!   moment the update was handed to the socket; how late the sender's timer fired is reported
//!   apart, when it matters.
//! - Closed loop: the next update leaves when the observer has the previous one; the rate is the
//!   round trip's.
//!
//! A server delivers one connection's updates in order and one message per update, so the k-th
//! update the observer receives is the writer's k-th; the observer applies them and must end
//! with the writer's text.

use super::{Ctx, PATIENCE};
use crate::common::client::{Peer, PeerConfig};
use crate::common::measure::summarize;
use crate::common::trace::{new_doc, Replayer, TEXT};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const WORKLOAD: &str = "1 keystroke latency";

/// Runs both loops.
pub async fn run(ctx: &mut Ctx<'_>) {
    for open in [true, false] {
        if let Err(e) = one(ctx, open).await {
            ctx.failed(WORKLOAD, &e);
        }
    }
}

async fn one(ctx: &mut Ctx<'_>, open: bool) -> Result<(), String> {
    let (label, count) = if open {
        (
            format!("open loop {:.0}/s", ctx.settings.open_rate),
            ctx.settings.open_count,
        )
    } else {
        ("closed loop".to_owned(), ctx.settings.closed_count)
    };
    let patches = &ctx.data.trace.patches[..count.min(ctx.data.trace.patches.len())];
    let url = ctx
        .server
        .room_url(&ctx.room(if open { "keys-open" } else { "keys-closed" }));
    let writer = Replayer::new(1, TEXT);
    let arrivals: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let seen = arrivals.clone();
    let observer = Peer::join(
        &url,
        PeerConfig::new(new_doc(2))
            .applying()
            .with_hook(Box::new(move |_, at| seen.lock().unwrap().push(at))),
        PATIENCE,
    )
    .await?;
    let sender = Peer::join(&url, PeerConfig::new(writer.doc().clone()), PATIENCE).await?;

    let probe = ctx.probe();
    let mut due = Vec::with_capacity(patches.len());
    let started = Instant::now();
    if open {
        let period = Duration::from_secs_f64(1.0 / ctx.settings.open_rate);
        let t0 = tokio::time::Instant::now() + Duration::from_millis(20);
        let mut late = Duration::ZERO;
        for (k, patch) in patches.iter().enumerate() {
            let at = t0 + period * k as u32;
            tokio::time::sleep_until(at).await;
            let update = writer.apply(patch, 0);
            let now = Instant::now();
            late = late.max(now.saturating_duration_since(at.into_std()));
            due.push(now);
            sender.send_update(update);
        }
        if late > period / 2 {
            let col = ctx.col();
            ctx.report.note(format!(
                "{col}: {label}: the load generator sent up to {late:?} late"
            ));
        }
        observer
            .wait_received(patches.len() as u64, &[&sender], PATIENCE)
            .await?;
    } else {
        for (k, patch) in patches.iter().enumerate() {
            let update = writer.apply(patch, 0);
            due.push(Instant::now());
            sender.send_update(update);
            observer
                .wait_received(k as u64 + 1, &[&sender], PATIENCE)
                .await?;
        }
    }
    let elapsed = started.elapsed();
    let usage = ctx.finish(&probe);
    sender.check()?;

    let arrivals = arrivals.lock().unwrap().clone();
    if arrivals.len() != patches.len() {
        return Err(format!(
            "observer received {} updates for {} sent",
            arrivals.len(),
            patches.len()
        ));
    }
    if observer.text(TEXT) != writer.text() {
        return Err("observer's text differs from the writer's".into());
    }
    let mut lat: Vec<Duration> = arrivals
        .iter()
        .zip(&due)
        .map(|(a, d)| a.saturating_duration_since(*d))
        .collect();
    let s = summarize(&mut lat).ok_or("no samples")?;
    let col = ctx.col();
    let r = &mut *ctx.report;
    r.num(col, WORKLOAD, &format!("{label}: p50"), "ms", s.p50);
    r.num(col, WORKLOAD, &format!("{label}: p99"), "ms", s.p99);
    r.num(col, WORKLOAD, &format!("{label}: max"), "ms", s.max);
    if !open {
        r.num(
            col,
            WORKLOAD,
            &format!("{label}: round trips"),
            "updates/s",
            patches.len() as f64 / elapsed.as_secs_f64(),
        );
    }
    ctx.usage(WORKLOAD, &label, &usage);
    observer.close().await;
    sender.close().await;
    Ok(())
}
