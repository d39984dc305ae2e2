//! Percentiles, and what Linux tells about processes in /proc: CPU time, memory, bytes written.
//! The CPU time of the load generator itself is measured alongside every server's, so that a
//! saturated client is not mistaken for a slow server.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Latency percentiles of one set of samples, in milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest sample.
    pub max: f64,
}

/// Nearest-rank percentiles of `samples` (sorted in place); `None` when there are none.
pub fn summarize(samples: &mut [Duration]) -> Option<Summary> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_unstable();
    let at = |q: f64| {
        let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
        ms(samples[rank - 1])
    };
    Some(Summary {
        p50: at(0.50),
        p99: at(0.99),
        max: ms(samples[samples.len() - 1]),
    })
}

/// A duration in milliseconds.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn clock_ticks() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// Fields of /proc/<pid>/stat after the command name (field 3 onwards, 0-based here).
fn stat_fields(pid: &str) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// CPU seconds a process has used, all its live threads included; `pid` may be "self". Read
/// from the scheduler's nanosecond counters (/proc/<pid>/task/*/schedstat), or from the
/// clock-tick counters of /proc/<pid>/stat where those are missing.
pub fn cpu_seconds(pid: &str) -> Option<f64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut ns = 0u64;
    let mut any = false;
    for t in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(t.path().join("schedstat")) else {
            continue;
        };
        if let Some(v) = stat
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
        {
            ns += v;
            any = true;
        }
    }
    if any {
        Some(ns as f64 / 1e9)
    } else {
        stat_cpu_seconds(pid)
    }
}

fn stat_cpu_seconds(pid: &str) -> Option<f64> {
    let f = stat_fields(pid)?;
    // utime and stime are fields 14 and 15 of the stat line.
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / clock_ticks())
}

/// Busy CPU seconds of the whole machine (every core), from /proc/stat.
pub fn machine_busy_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = stat.lines().find(|l| l.starts_with("cpu ")) else {
        return 0.0;
    };
    let v: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal: busy is everything but idle and iowait.
    let busy: f64 = v
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4 && *i < 8)
        .map(|(_, x)| x)
        .sum();
    busy / clock_ticks()
}

/// Live processes descending from `root`, `root` included, in no particular order.
pub fn descendants(root: u32) -> Vec<u32> {
    let mut parent: Vec<(u32, u32)> = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let Some(f) = stat_fields(&pid.to_string()) else {
                continue;
            };
            if f[0] == "Z" || f[0] == "X" {
                continue;
            }
            if let Some(ppid) = f.get(1).and_then(|p| p.parse().ok()) {
                parent.push((pid, ppid));
            }
        }
    }
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        let p = out[i];
        out.extend(parent.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    out.retain(|p| std::path::Path::new(&format!("/proc/{p}")).exists());
    out
}

/// The command line of a process.
pub fn cmdline(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|c| *c == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// A `kB` field of /proc/<pid>/status (`VmRSS`, `VmHWM`), in bytes.
pub fn status_bytes(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status
        .lines()
        .find(|l| l.starts_with(&format!("{field}:")))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Bytes a process caused to be sent to the storage layer (`write_bytes` of /proc/<pid>/io).
pub fn write_bytes(pid: u32) -> Option<u64> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    io.lines()
        .find_map(|l| l.strip_prefix("write_bytes: "))
        .and_then(|v| v.trim().parse().ok())
}

/// A process of a server under test, with a label saying what it is.
#[derive(Debug, Clone)]
pub struct Proc {
    /// Process id.
    pub pid: u32,
    /// What the process is (`workerd (user worker)`, `node`, ...).
    pub label: String,
}

/// CPU time and storage writes over one measured phase.
#[derive(Debug, Clone, Default)]
pub struct Usage {
    /// Wall-clock seconds.
    pub wall: f64,
    /// CPU seconds of the load generator.
    pub client_cpu: f64,
    /// CPU seconds of the server's processes, by label.
    pub server_cpu: Vec<(String, f64)>,
    /// CPU seconds of everything else on the machine (other work competing for the cores).
    pub other_cpu: f64,
    /// Bytes the server's processes sent to storage.
    pub written: u64,
}

impl Usage {
    /// CPU seconds of all the server's processes.
    pub fn server_total(&self) -> f64 {
        self.server_cpu.iter().map(|(_, s)| s).sum()
    }

    /// `cpu` seconds as a percentage of one core over the phase.
    pub fn pct(&self, cpu: f64) -> f64 {
        if self.wall > 0.0 {
            100.0 * cpu / self.wall
        } else {
            0.0
        }
    }
}

/// Readings at the start of a phase.
pub struct Probe {
    started: Instant,
    client: f64,
    machine: f64,
    server: HashMap<u32, (f64, u64)>,
}

impl Probe {
    /// Starts measuring the load generator and the processes `procs`.
    pub fn start(procs: &[Proc]) -> Probe {
        Probe {
            started: Instant::now(),
            client: cpu_seconds("self").unwrap_or(0.0),
            machine: machine_busy_seconds(),
            server: procs
                .iter()
                .map(|p| {
                    let cpu = cpu_seconds(&p.pid.to_string()).unwrap_or(0.0);
                    (p.pid, (cpu, write_bytes(p.pid).unwrap_or(0)))
                })
                .collect(),
        }
    }

    /// What was used since [`Probe::start`], by the same processes.
    pub fn finish(&self, procs: &[Proc]) -> Usage {
        let wall = self.started.elapsed().as_secs_f64();
        let client_cpu = cpu_seconds("self").unwrap_or(0.0) - self.client;
        let mut by_label: Vec<(String, f64)> = Vec::new();
        let mut written = 0;
        for p in procs {
            let (cpu0, w0) = self.server.get(&p.pid).copied().unwrap_or((0.0, 0));
            let cpu = cpu_seconds(&p.pid.to_string()).unwrap_or(cpu0) - cpu0;
            written += write_bytes(p.pid).unwrap_or(w0).saturating_sub(w0);
            match by_label.iter_mut().find(|(l, _)| *l == p.label) {
                Some((_, s)) => *s += cpu,
                None => by_label.push((p.label.clone(), cpu)),
            }
        }
        let machine = machine_busy_seconds() - self.machine;
        let server: f64 = by_label.iter().map(|(_, s)| s).sum();
        Usage {
            wall,
            client_cpu,
            other_cpu: (machine - client_cpu - server).max(0.0),
            server_cpu: by_label,
            written,
        }
    }
}
