//! Trace throughput: the whole editing trace through one connection, one update per keystroke
//! patch, as fast as the server takes it. At most `window` updates are in flight: the writer
//! waits while it is that far ahead of what an observer in the room has received. Done when the
//! observer has every update; its text, and then the text a fresh client syncs from the server,
//! must equal the trace's final text exactly.
//!
//! Also measured: bytes the server's processes sent to storage during the run
//! (`write_bytes` of /proc/<pid>/io), and the size of the room's files afterwards.

use super::{Ctx, PATIENCE};
use crate::common::client::{Peer, PeerConfig};
use crate::common::servers::Kind;
use crate::common::trace::{new_doc, Replayer, TEXT};
use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use yrs::updates::decoder::Decode;
use yrs::{Transact, Update};

const WORKLOAD: &str = "3 trace throughput";

/// Replays the trace against the server.
pub async fn run(ctx: &mut Ctx<'_>) {
    if let Err(e) = replay(ctx).await {
        ctx.failed(WORKLOAD, &e);
    }
}

async fn replay(ctx: &mut Ctx<'_>) -> Result<(), String> {
    let all = &ctx.data.trace.patches;
    let limit = ctx.settings.trace_limit.unwrap_or(all.len()).min(all.len());
    let patches = &all[..limit];
    let url = ctx.server.room_url(&ctx.room("trace"));
    let before: HashSet<PathBuf> = ctx
        .server
        .stored_files()
        .into_iter()
        .map(|(p, _)| p)
        .collect();

    let writer = Replayer::new(1, TEXT);
    let observer = Peer::join(&url, PeerConfig::new(new_doc(2)).applying(), PATIENCE).await?;
    let sender = Peer::join(&url, PeerConfig::new(writer.doc().clone()), PATIENCE).await?;
    let window = ctx.settings.window as u64;
    let cap = Duration::from_secs_f64(ctx.settings.trace_max_secs);

    let probe = ctx.probe();
    let started = Instant::now();
    let mut sent = 0u64;
    for patch in patches {
        if sent >= window && observer.received() < sent - window + 1 {
            observer
                .wait_received(sent - window + 1, &[&sender], PATIENCE)
                .await
                .map_err(|e| format!("after {sent} updates sent: {e}"))?;
        }
        sender.send_update(writer.apply(patch, 0));
        sent += 1;
        if started.elapsed() > cap {
            break;
        }
    }
    observer.wait_received(sent, &[&sender], PATIENCE).await?;
    let elapsed = started.elapsed();
    let usage = ctx.finish(&probe);
    sender.check()?;

    let complete = sent as usize == all.len();
    let expected = writer.text();
    if complete && expected != ctx.data.trace.end_content {
        return Err("the replay itself does not end with the trace's final text".into());
    }
    let observed_ok = observer.text(TEXT) == expected;
    // What the server holds: a fresh client's initial sync.
    let fresh = Peer::join(&url, PeerConfig::new(new_doc(3)), PATIENCE).await?;
    let stored_ok = fresh.text(TEXT) == expected;
    fresh.close().await;
    observer.close().await;
    sender.close().await;

    // y-sweet writes a checkpoint at most every 10 s: wait for the one that holds the run.
    let mut written = usage.written;
    if ctx.server.kind == Kind::YSweet {
        let extra = ctx.probe();
        tokio::time::sleep(Duration::from_secs(12)).await;
        written += ctx.finish(&extra).written;
    }
    let stored: u64 = ctx
        .server
        .stored_files()
        .into_iter()
        .filter(|(p, _)| !before.contains(p))
        .map(|(_, len)| len)
        .sum();

    let col = ctx.col();
    let r = &mut *ctx.report;
    if (sent as usize) < limit {
        r.note(format!(
            "{col}: trace stopped after {:.0} s at {sent} of {limit} updates; figures cover that prefix",
            cap.as_secs_f64(),
        ));
    } else if !complete {
        r.note(format!(
            "trace throughput replays the first {limit} of the trace's {} patches",
            all.len()
        ));
    }
    r.num(col, WORKLOAD, "updates sent", "count", sent as f64);
    r.num(col, WORKLOAD, "total time", "s", elapsed.as_secs_f64());
    r.num(
        col,
        WORKLOAD,
        "sustained rate",
        "updates/s",
        sent as f64 / elapsed.as_secs_f64(),
    );
    let verdict = |ok: bool| if ok { "exact" } else { "WRONG" };
    r.text(col, WORKLOAD, "observer's final text", verdict(observed_ok));
    if ctx.server.kind.keeps_document() {
        r.text(col, WORKLOAD, "text synced from server", verdict(stored_ok));
    } else {
        r.missing(
            col,
            WORKLOAD,
            "text synced from server",
            "",
            "a relay keeps no document",
        );
    }
    if ctx.server.kind.persists() {
        r.num(
            col,
            WORKLOAD,
            "bytes written to storage",
            "B",
            written as f64,
        );
        r.num(col, WORKLOAD, "room's files afterwards", "B", stored as f64);
    } else {
        for m in ["bytes written to storage", "room's files afterwards"] {
            r.missing(col, WORKLOAD, m, "B", "in memory only");
        }
    }
    r.num(
        col,
        WORKLOAD,
        "server CPU per update",
        "µs",
        1e6 * usage.server_total() / sent as f64,
    );
    // Where TandemX's time goes: wrangler's entry proxy and the workerd running the worker.
    let tandemx = ctx.server.kind.is_tandemx() || ctx.server.kind.is_relay();
    for (label, cpu) in &usage.server_cpu {
        if tandemx && *cpu > 0.05 * usage.server_total() {
            r.num(
                col,
                WORKLOAD,
                &format!("  of which {label}"),
                "µs",
                1e6 * cpu / sent as f64,
            );
        }
    }
    ctx.usage(WORKLOAD, "", &usage);
    if !observed_ok || (ctx.server.kind.keeps_document() && !stored_ok) {
        return Err("final text differs from the trace".into());
    }
    Ok(())
}

/// The same updates applied in-process to a yrs document and re-encoded, as a room does with
/// each (no network, no storage): the CRDT's own cost, natively.
pub fn native_baseline(
    ctx_trace: &crate::common::trace::Trace,
    limit: Option<usize>,
) -> (usize, f64, bool) {
    let patches = &ctx_trace.patches[..limit
        .unwrap_or(ctx_trace.patches.len())
        .min(ctx_trace.patches.len())];
    let writer = Replayer::new(1, TEXT);
    let updates: Vec<Vec<u8>> = patches.iter().map(|p| writer.apply(p, 0)).collect();
    let room = new_doc(2);
    let started = Instant::now();
    for u in &updates {
        let update = Update::decode_v1(u).expect("own update decodes");
        let mut txn = room.transact_mut();
        txn.apply_update(update).expect("own update applies");
        let _change = txn.encode_update_v1();
    }
    let secs = started.elapsed().as_secs_f64();
    let text = {
        use yrs::{GetString, ReadTxn};
        let txn = room.transact();
        txn.get_text(TEXT)
            .map(|t| t.get_string(&txn))
            .unwrap_or_default()
    };
    (updates.len(), secs, text == writer.text())
}
