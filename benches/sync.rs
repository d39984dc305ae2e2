//! Load generator: TandemX under `wrangler dev` (through wrangler's entry proxy and directly on
//! the worker's socket) side by side with the reference `@y/websocket-server`, `y-sweet` and
//! Hocuspocus, in one run. Starts each server, runs each workload against it, stops it, and
//! prints one table (also written as JSON and CSV under `target/bench-results/`).
//!
//! Run it with `scripts/bench` (which builds what is needed and pins client and server to
//! different cores); `docs/benchmarks.md` describes the workloads and the figures.

mod common;
mod workloads;

use common::report::Report;
use common::servers::{Kind, Server, Setup};
use common::trace::{Replayer, Trace, TEXT};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use workloads::{Ctx, Data, Settings};
use yrs::{ReadTxn, StateVector, Transact};

const USAGE: &str = "\
usage: sync [--quick] [--servers LIST] [--workloads LIST] [options]

  --quick               small counts (a few minutes in all)
  --servers LIST        of reference,y-sweet,hocuspocus,tandemx-proxy,tandemx-direct,
                        tandemx-relaxed
                        (default: all), and relay-hibernate,relay-accept: the runtime's floor,
                        a Durable Object that only relays frames (benches/relay; keystrokes,
                        fan-out and trace)
  --workloads LIST      of keystrokes,fanout,trace,load,footprint (default: all)
  --clients LIST        fan-out room sizes (default 2,10,50,200; quick 2,10,50)
  --trace PATH          editing trace (default ../shared/data/editing-traces/automerge-paper.json.gz)
  --trace-limit N       replay only the first N patches
  --trace-max-secs S    stop sending the trace after S seconds
  --window N            updates in flight in the trace workload (default 256)
  --y-sweet PATH        the y-sweet executable (y-sweet is skipped without it)
  --server-cores LIST   pin servers with taskset -c LIST (default 1 on a machine of 2+ cores)
  --no-pin              do not pin servers
  --tandemx-var K=V     passed to tests/e2e/serve.mjs (a wrangler --var); repeatable; the
                        defaults lift the rate limits (RATE_MESSAGES_PER_SECOND=1000000,
                        RATE_BYTES_PER_SECOND=1073741824) and the per-user connection cap
                        (MAX_CONNECTIONS_PER_USER=1000)
  --tandemx-dir DIR     start TandemX from DIR (build/, wrangler.toml, tests/e2e/serve.mjs;
                        default: the repository; scripts/bench passes a frozen copy)
  --out DIR             results directory (default target/bench-results)

Run through scripts/bench, which builds the worker, installs y-sweet and pins this process.";

struct Args {
    settings: Settings,
    quick: bool,
    servers: Vec<Kind>,
    workloads: Vec<String>,
    trace: PathBuf,
    ysweet: Option<PathBuf>,
    server_cores: Option<String>,
    tandemx_vars: Vec<String>,
    tandemx_dir: PathBuf,
    out: PathBuf,
}

const WORKLOADS: [&str; 5] = ["keystrokes", "fanout", "trace", "load", "footprint"];

/// Cores of the machine (not of this process, which scripts/bench pins to one).
fn machine_cores() -> usize {
    std::fs::read_to_string("/proc/cpuinfo")
        .map(|s| s.lines().filter(|l| l.starts_with("processor")).count())
        .ok()
        .filter(|n| *n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn parse(args: Vec<String>) -> Result<Args, String> {
    let quick = args.iter().any(|a| a == "--quick");
    let mut a = Args {
        settings: if quick {
            Settings::quick()
        } else {
            Settings::full()
        },
        quick,
        servers: Kind::ALL.to_vec(),
        workloads: WORKLOADS.iter().map(|w| w.to_string()).collect(),
        trace: root().join("../shared/data/editing-traces/automerge-paper.json.gz"),
        ysweet: None,
        server_cores: (machine_cores() >= 2).then(|| "1".to_owned()),
        // The benchmark measures capacity, not the per-connection rate limits: the trace is
        // replayed far faster than anyone types. Every client connects as the same user, so
        // the per-user connection cap (32) is lifted too, or the 50-client fan-out is refused.
        tandemx_vars: vec![
            "RATE_MESSAGES_PER_SECOND=1000000".into(),
            "RATE_BYTES_PER_SECOND=1073741824".into(),
            "MAX_CONNECTIONS_PER_USER=1000".into(),
        ],
        tandemx_dir: root(),
        out: root().join("target/bench-results"),
    };
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or(format!("{arg} needs a value"));
        let number = |v: String| v.parse::<f64>().map_err(|e| format!("{v}: {e}"));
        match arg.as_str() {
            "--quick" | "--bench" | "--full" => {}
            "--servers" => {
                a.servers = value()?
                    .split(',')
                    .map(|s| {
                        Kind::ALL
                            .into_iter()
                            .chain(Kind::EXTRA)
                            .find(|k| k.id() == s)
                            .ok_or(format!("unknown server {s}"))
                    })
                    .collect::<Result<_, _>>()?;
            }
            "--workloads" => {
                a.workloads = value()?.split(',').map(str::to_owned).collect();
                if let Some(w) = a
                    .workloads
                    .iter()
                    .find(|w| !WORKLOADS.contains(&w.as_str()))
                {
                    return Err(format!("unknown workload {w}"));
                }
            }
            "--clients" => {
                a.settings.fanout_sizes = value()?
                    .split(',')
                    .map(|n| n.parse().map_err(|e| format!("{n}: {e}")))
                    .collect::<Result<_, _>>()?;
            }
            "--trace" => a.trace = PathBuf::from(value()?),
            "--trace-limit" => a.settings.trace_limit = Some(number(value()?)? as usize),
            "--trace-max-secs" => a.settings.trace_max_secs = number(value()?)?,
            "--window" => a.settings.window = number(value()?)? as usize,
            "--y-sweet" => a.ysweet = Some(PathBuf::from(value()?)),
            "--server-cores" => a.server_cores = Some(value()?),
            "--no-pin" => a.server_cores = None,
            "--tandemx-var" => a.tandemx_vars.push(value()?),
            "--tandemx-dir" => a.tandemx_dir = PathBuf::from(value()?),
            "--out" => a.out = PathBuf::from(value()?),
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other}\n\n{USAGE}")),
        }
    }
    Ok(a)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo test --all-targets` runs this binary too, with no arguments or with the test
    // runner's: it is not a test, so it does nothing then.
    let test_runner = [
        "--list",
        "--nocapture",
        "--ignored",
        "--include-ignored",
        "--test-threads",
    ];
    if args.is_empty() || args.iter().any(|a| test_runner.contains(&a.as_str())) {
        eprintln!("{USAGE}");
        return;
    }
    let args = match parse(args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(if e == USAGE { 0 } else { 2 });
        }
    };
    // One thread: the load generator's CPU time is one core's, and a reading of it is exact.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let code = rt.block_on(run(args));
    std::process::exit(code);
}

fn progress(what: &str) {
    eprintln!("[{}] {what}", clock());
    let _ = std::io::stderr().flush();
}

async fn run(args: Args) -> i32 {
    let mut report = Report {
        env: environment(&args),
        ..Report::default()
    };
    let scratch = std::env::temp_dir().join(format!("tandemx-bench-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&scratch) {
        eprintln!("{}: {e}", scratch.display());
        return 1;
    }
    progress(&format!("reading {}", args.trace.display()));
    let trace = match Trace::load(&args.trace) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    let wants = |w: &str| args.workloads.iter().any(|x| x == w);
    let cold_docs = if wants("load") {
        progress("building the documents to load (1x and 10x the trace's result)");
        cold_documents(&trace, &args.trace)
    } else {
        Vec::new()
    };
    let data = Data { trace, cold_docs };
    if wants("trace") {
        baseline(&data, &args, &mut report);
    }
    let setup = Setup {
        root: root(),
        tandemx_dir: args.tandemx_dir.clone(),
        scratch: scratch.clone(),
        ysweet: args.ysweet.clone().filter(|p| p.exists()),
        server_cores: args.server_cores.clone(),
        tandemx_vars: args.tandemx_vars.clone(),
    };
    let run_id = format!(
        "{:x}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    );
    for kind in args.servers.iter().copied() {
        if kind == Kind::YSweet && setup.ysweet.is_none() {
            report.note(
                "y-sweet skipped: not installed (scripts/bench installs it with cargo install)",
            );
            continue;
        }
        progress(&format!("starting {}", kind.name()));
        let mut server = match Server::start(kind, &setup).await {
            Ok(s) => s,
            Err(e) => {
                // The server's own output says why; keep its last lines with the note.
                let log = std::fs::read_to_string(scratch.join(format!("{}.log", kind.id())))
                    .unwrap_or_default();
                let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
                let tail = lines[lines.len().saturating_sub(8)..].join(" / ");
                report.note(format!("{} skipped: {e} {tail}", kind.name()));
                continue;
            }
        };
        if server.has_token() {
            report.note(format!(
                "{}: rooms opened with the token serve.mjs printed",
                kind.name()
            ));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let idle = server.memory();
        let mut ctx = Ctx {
            server: &mut server,
            settings: &args.settings,
            data: &data,
            report: &mut report,
            run: run_id.clone(),
        };
        for w in ["keystrokes", "fanout", "trace", "load"] {
            if !wants(w) {
                continue;
            }
            // The relays keep no document: joiners after the fact have nothing to sync (the
            // fan-out runs without its late joiner's check).
            if kind.is_relay() && w == "load" {
                continue;
            }
            progress(&format!("{}: {w}", kind.name()));
            match w {
                "keystrokes" => workloads::keystrokes::run(&mut ctx).await,
                "fanout" => workloads::fanout::run(&mut ctx).await,
                "trace" => workloads::throughput::run(&mut ctx).await,
                _ => workloads::cold::run(&mut ctx).await,
            }
        }
        if wants("footprint") {
            footprint(&server, &idle, &args.tandemx_dir, &mut report);
        }
        progress(&format!("stopping {}", kind.name()));
        server.stop().await;
    }
    let _ = std::fs::remove_dir_all(&scratch);

    println!();
    print!("{}", report.env_text());
    println!();
    print!("{}", report.table());
    for n in report.notes.iter().chain(report.missing_reasons().iter()) {
        println!("- {n}");
    }
    let stem = format!("{}-{}", stamp(), if args.quick { "quick" } else { "full" });
    match report.write(&args.out, &stem) {
        Ok(files) => {
            for f in files {
                println!("wrote {}", f.display());
            }
            0
        }
        Err(e) => {
            eprintln!("writing results: {e}");
            1
        }
    }
}

/// The trace's result, and a document ten times as long (the trace replayed ten times into one
/// text, each copy in front of the previous ones, so that positions stay near the start as in
/// the first replay): each as the updates that build it, one per copy. Building takes about a
/// minute, so the updates are kept in `target/bench-cache/` and checked when reused.
fn cold_documents(trace: &Trace, trace_path: &Path) -> Vec<(String, Vec<Vec<u8>>, String)> {
    let source_len = std::fs::metadata(trace_path).map_or(0, |m| m.len());
    let name = trace_path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let cache = root()
        .join("target/bench-cache")
        .join(format!("{name}.10x.bin"));
    let one = trace.end_content.clone();
    let ten = one.repeat(10);
    let parts = match read_parts(&cache, source_len) {
        Some(parts)
            if parts.len() == 10 && text_of(&parts[..1]) == one && text_of(&parts) == ten =>
        {
            parts
        }
        _ => {
            let doc = Replayer::new(7, TEXT);
            let mut parts = Vec::new();
            for copy in 0..10u32 {
                let sv: StateVector = doc.doc().transact().state_vector();
                for p in &trace.patches {
                    doc.edit(p, 0);
                }
                parts.push(doc.doc().transact().encode_state_as_update_v1(&sv));
                progress(&format!("  copy {} of 10 built", copy + 1));
            }
            assert_eq!(doc.text(), ten, "ten replays make ten copies");
            write_parts(&cache, source_len, &parts);
            parts
        }
    };
    vec![
        ("1x".to_owned(), parts[..1].to_vec(), one),
        ("10x".to_owned(), parts, ten),
    ]
}

fn text_of(parts: &[Vec<u8>]) -> String {
    use yrs::updates::decoder::Decode;
    let doc = common::trace::new_doc(8);
    {
        let mut txn = doc.transact_mut();
        for p in parts {
            let applied = yrs::Update::decode_v1(p).map(|u| txn.apply_update(u).is_ok());
            if !matches!(applied, Ok(true)) {
                return String::new();
            }
        }
    }
    let txn = doc.transact();
    txn.get_text(TEXT)
        .map(|t| yrs::GetString::get_string(&t, &txn))
        .unwrap_or_default()
}

const CACHE_MAGIC: &[u8; 8] = b"tdxbench";

fn read_parts(path: &Path, source_len: u64) -> Option<Vec<Vec<u8>>> {
    let bytes = std::fs::read(path).ok()?;
    let (magic, mut rest) = bytes.split_at_checked(8)?;
    let mut take = |n: usize| {
        let (head, tail) = rest.split_at_checked(n)?;
        rest = tail;
        Some(head)
    };
    let u64_at = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap());
    if magic != CACHE_MAGIC || u64_at(take(8)?) != source_len {
        return None;
    }
    let count = u64_at(take(8)?) as usize;
    (0..count)
        .map(|_| {
            let len = u64_at(take(8)?) as usize;
            take(len).map(<[u8]>::to_vec)
        })
        .collect()
}

fn write_parts(path: &Path, source_len: u64, parts: &[Vec<u8>]) {
    let mut out = CACHE_MAGIC.to_vec();
    out.extend(source_len.to_le_bytes());
    out.extend((parts.len() as u64).to_le_bytes());
    for p in parts {
        out.extend((p.len() as u64).to_le_bytes());
        out.extend(p);
    }
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let _ = std::fs::write(path, out);
}

/// The CRDT work of the trace workload done in this process, with no network or storage.
fn baseline(data: &Data, args: &Args, report: &mut Report) {
    progress("in-process baseline: applying the trace's updates to a yrs document");
    let (n, secs, ok) =
        workloads::throughput::native_baseline(&data.trace, args.settings.trace_limit);
    let col = "yrs in-process (native)";
    let w = "3 trace throughput";
    report.num(col, w, "updates sent", "count", n as f64);
    report.num(col, w, "total time", "s", secs);
    report.num(col, w, "sustained rate", "updates/s", n as f64 / secs);
    report.text(
        col,
        w,
        "observer's final text",
        if ok { "exact" } else { "WRONG" },
    );
    report.num(col, w, "server CPU per update", "µs", 1e6 * secs / n as f64);
}

fn footprint(server: &Server, idle: &[(String, u64, u64)], dir: &Path, report: &mut Report) {
    let col = server.kind.name();
    let w = "5 footprint";
    let main = match server.kind {
        Kind::Reference | Kind::Hocuspocus => "node",
        Kind::YSweet => "y-sweet",
        _ => "workerd (user worker)",
    };
    let now = server.memory();
    let pick = |m: &[(String, u64, u64)], f: fn(&(String, u64, u64)) -> u64| {
        m.iter().filter(|e| e.0 == main).map(f).sum::<u64>() as f64
    };
    let total = |m: &[(String, u64, u64)], f: fn(&(String, u64, u64)) -> u64| {
        m.iter().map(f).sum::<u64>() as f64
    };
    report.num(
        col,
        w,
        "server process RSS after start",
        "B",
        pick(idle, |e| e.1),
    );
    report.num(
        col,
        w,
        "server process peak RSS (VmHWM)",
        "B",
        pick(&now, |e| e.2),
    );
    report.num(
        col,
        w,
        "all its processes, RSS after start",
        "B",
        total(idle, |e| e.1),
    );
    report.num(
        col,
        w,
        "all its processes, peak RSS",
        "B",
        total(&now, |e| e.2),
    );
    if server.kind.is_tandemx() {
        let wasm = dir.join("build/index_bg.wasm");
        match std::fs::read(&wasm) {
            Ok(bytes) => {
                report.num(col, w, "wasm bundle (raw)", "B", bytes.len() as f64);
                report.num(
                    col,
                    w,
                    "wasm bundle (gzip -9)",
                    "B",
                    gzip_len(&bytes) as f64,
                );
            }
            Err(e) => report.note(format!("{}: {e}", wasm.display())),
        }
    }
}

fn gzip_len(bytes: &[u8]) -> usize {
    use flate2::{write::GzEncoder, Compression};
    let mut enc = GzEncoder::new(Vec::new(), Compression::best());
    enc.write_all(bytes).expect("in memory");
    enc.finish().expect("in memory").len()
}

fn output(program: &str, args: &[&str], dir: &Path) -> String {
    std::process::Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned())
}

fn npm_version(package: &str) -> String {
    let path = root()
        .join("node_modules")
        .join(package)
        .join("package.json");
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
        .and_then(|v| v["version"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

fn lock_version(krate: &str) -> String {
    let lock = std::fs::read_to_string(root().join("Cargo.lock")).unwrap_or_default();
    let mut lines = lock.lines();
    while let Some(l) = lines.next() {
        if l == format!("name = \"{krate}\"") {
            if let Some(v) = lines.next().and_then(|v| v.strip_prefix("version = ")) {
                return v.trim_matches('"').to_owned();
            }
        }
    }
    "unknown".to_owned()
}

fn environment(args: &Args) -> Vec<(String, String)> {
    let r = root();
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    let cores = machine_cores();
    let mem = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:").map(|v| v.trim().to_owned()))
        .unwrap_or_default();
    let dirty = !output(
        "git",
        &["status", "--porcelain", "--untracked-files=no"],
        &r,
    )
    .is_empty();
    let commit = output("git", &["rev-parse", "--short", "HEAD"], &r);
    let ysweet = args
        .ysweet
        .as_ref()
        .filter(|p| p.exists())
        .map(|p| output(&p.to_string_lossy(), &["version"], &r))
        .unwrap_or_else(|| "not installed".into());
    let pin = match &args.server_cores {
        Some(c) => format!("servers on CPU {c} (taskset); load generator as scripts/bench pins it"),
        None => "none".into(),
    };
    vec![
        ("date (UTC)".into(), clock()),
        (
            "mode".into(),
            if args.quick {
                "quick".into()
            } else {
                "full".into()
            },
        ),
        ("CPU".into(), model),
        ("cores".into(), cores.to_string()),
        ("memory".into(), mem),
        (
            "kernel".into(),
            std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
                .to_owned(),
        ),
        (
            "load average at start".into(),
            std::fs::read_to_string("/proc/loadavg")
                .unwrap_or_default()
                .trim()
                .to_owned(),
        ),
        ("pinning".into(), pin),
        (
            "tandemx".into(),
            format!(
                "{commit}{}",
                if dirty {
                    " with uncommitted changes"
                } else {
                    ""
                }
            ),
        ),
        ("rustc".into(), output("rustc", &["--version"], &r)),
        ("yrs".into(), lock_version("yrs")),
        ("node".into(), output("node", &["--version"], &r)),
        ("wrangler".into(), npm_version("wrangler")),
        ("workerd".into(), npm_version("workerd")),
        (
            "@y/websocket-server".into(),
            npm_version("@y/websocket-server"),
        ),
        (
            "@hocuspocus/server".into(),
            npm_version("@hocuspocus/server"),
        ),
        ("yjs (reference server)".into(), npm_version("yjs")),
        ("y-sweet".into(), ysweet),
        (
            "trace".into(),
            args.trace
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default(),
        ),
    ]
}

/// Now, UTC, as `YYYY-MM-DD HH:MM:SS`.
fn clock() -> String {
    let (d, t) = utc();
    format!("{d} {t}")
}

/// Now, UTC, for file names: `YYYYMMDD-HHMMSS`.
fn stamp() -> String {
    let (d, t) = utc();
    format!("{}-{}", d.replace('-', ""), t.replace(':', ""))
}

fn utc() -> (String, String) {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        format!("{year:04}-{month:02}-{day:02}"),
        format!("{:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60),
    )
}
