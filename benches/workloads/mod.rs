//! The workloads, each run against one server at a time. Every workload uses fresh rooms, checks
//! that what the clients ended with is what was written, and records the CPU time of the load
//! generator and of the server next to its figures.

pub mod cold;
pub mod fanout;
pub mod keystrokes;
pub mod throughput;

use crate::common::measure::{Probe, Usage};
use crate::common::report::Report;
use crate::common::servers::Server;
use crate::common::trace::Trace;
use std::time::Duration;
use yrs::encoding::read::{Cursor, Read};

/// Sizes and rates of a run (`--quick` shrinks them).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Open-loop keystroke rate (updates/s) and how many updates.
    pub open_rate: f64,
    /// Updates sent in the open-loop keystroke run.
    pub open_count: usize,
    /// Updates sent in the closed-loop keystroke run.
    pub closed_count: usize,
    /// Room sizes of the fan-out workload.
    pub fanout_sizes: Vec<usize>,
    /// Updates per second of each fan-out writer.
    pub fanout_rate: f64,
    /// Length of each fan-out phase, in seconds.
    pub fanout_secs: f64,
    /// Patches of the trace to replay (`None`: all).
    pub trace_limit: Option<usize>,
    /// Most updates in flight (sent, not yet seen by the observer) in the trace workload.
    pub window: usize,
    /// The trace replay stops sending after this many seconds (the figures then cover a prefix).
    pub trace_max_secs: f64,
    /// Restarts measured in the cold-load workload.
    pub cold_reps: usize,
}

impl Settings {
    /// The full run.
    pub fn full() -> Settings {
        Settings {
            open_rate: 50.0,
            open_count: 1000,
            closed_count: 1000,
            fanout_sizes: vec![2, 10, 50, 200],
            fanout_rate: 10.0,
            fanout_secs: 6.0,
            trace_limit: None,
            window: 256,
            trace_max_secs: 180.0,
            cold_reps: 3,
        }
    }

    /// A run of a couple of minutes, to check the harness.
    pub fn quick() -> Settings {
        Settings {
            open_rate: 50.0,
            open_count: 250,
            closed_count: 200,
            fanout_sizes: vec![2, 10, 50],
            fanout_rate: 10.0,
            fanout_secs: 3.0,
            trace_limit: Some(20_000),
            window: 256,
            trace_max_secs: 60.0,
            cold_reps: 1,
        }
    }
}

/// Documents prepared once per run and used against every server.
pub struct Data {
    /// The editing trace.
    pub trace: Trace,
    /// Cold-load documents: label, updates that build it (sent one per frame), expected text.
    pub cold_docs: Vec<(String, Vec<Vec<u8>>, String)>,
}

/// What a workload works with.
pub struct Ctx<'a> {
    /// The server under test.
    pub server: &'a mut Server,
    /// Sizes and rates.
    pub settings: &'a Settings,
    /// Trace and documents.
    pub data: &'a Data,
    /// Where results go.
    pub report: &'a mut Report,
    /// Distinguishes the rooms of this run.
    pub run: String,
}

/// Long enough for any single wait of a workload (connect, sync, drain).
pub const PATIENCE: Duration = Duration::from_secs(120);

impl Ctx<'_> {
    /// The server's column name.
    pub fn col(&self) -> &'static str {
        self.server.kind.name()
    }

    /// A room name unique to this run.
    pub fn room(&self, what: &str) -> String {
        format!("bench-{what}-{}", self.run)
    }

    /// Starts measuring CPU of the load generator and the server.
    pub fn probe(&self) -> Probe {
        Probe::start(&self.server.procs())
    }

    /// Finishes a probe.
    pub fn finish(&self, probe: &Probe) -> Usage {
        probe.finish(&self.server.procs())
    }

    /// Records client, server and other CPU of a phase as percentages of one core.
    pub fn usage(&mut self, workload: &str, phase: &str, u: &Usage) {
        let col = self.col();
        let p = |m: &str| {
            if phase.is_empty() {
                m.to_owned()
            } else {
                format!("{phase}: {m}")
            }
        };
        self.report
            .num(col, workload, &p("client CPU"), "%", u.pct(u.client_cpu));
        self.report.num(
            col,
            workload,
            &p("server CPU"),
            "%",
            u.pct(u.server_total()),
        );
        self.report.num(
            col,
            workload,
            &p("other CPU on the machine"),
            "%",
            u.pct(u.other_cpu),
        );
    }

    /// Records a failed workload.
    pub fn failed(&mut self, workload: &str, why: &str) {
        let col = self.col();
        self.report.text(col, workload, "result", "FAILED");
        self.report.note(format!("{col}: {workload} failed: {why}"));
    }
}

/// The first client id and clock of a v1 update: enough to tell which writer made an update of a
/// single insertion and which of its updates it is.
pub fn first_id(update: &[u8]) -> Option<(u64, u32)> {
    let mut cur = Cursor::new(update);
    let clients: u32 = cur.read_var().ok()?;
    if clients == 0 {
        return None;
    }
    let _structs: u32 = cur.read_var().ok()?;
    let client: u64 = cur.read_var().ok()?;
    let clock: u32 = cur.read_var().ok()?;
    Some((client, clock))
}
