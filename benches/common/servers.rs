//! The servers under test: start, address, restart on the same storage, stop.
//!
//! - TandemX under `wrangler dev`, started exactly as the end-to-end tests start it
//!   (`node tests/e2e/serve.mjs`, which prints `READY <url>` and, once rooms need a token,
//!   `TOKEN <jwt>`). It is reached through wrangler's entry proxy (the URL it prints) or
//!   directly on the socket of the `workerd` that runs the worker, found by probing the
//!   listening sockets of wrangler's processes for `/health`.
//! - The reference `@y/websocket-server` from node_modules (in memory).
//! - `y-sweet serve` with a store directory and no auth key (development mode).
//! - Hocuspocus (`@hocuspocus/server` from node_modules, `benches/hocuspocus/serve.mjs`, in
//!   memory). Its frames carry the document name; the client adds and strips it (client.rs).
//!
//! Servers are pinned to one core and the load generator to another when `taskset` exists.

use super::measure::{cmdline, descendants, status_bytes, Proc};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

/// Which server, and how it is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `@y/websocket-server` (Node, in memory).
    Reference,
    /// `y-sweet serve` (Rust, filesystem store).
    YSweet,
    /// Hocuspocus (Node, Yjs, in memory).
    Hocuspocus,
    /// TandemX through wrangler's entry proxy.
    TandemxProxy,
    /// TandemX on the user worker's own socket.
    TandemxDirect,
    /// TandemX on its own socket with `DURABILITY=relaxed` (changes sent at once, written in
    /// batches moments later).
    TandemxRelaxed,
    /// The runtime's floor: `benches/relay/relay.js` under `wrangler dev` on its own socket, a
    /// Durable Object that only relays frames, with hibernatable WebSockets (as TandemX).
    RelayHibernate,
    /// The same relay with `ws.accept()` and a message listener (no hibernation).
    RelayAccept,
}

impl Kind {
    /// Column name in the results.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Reference => "y-websocket-server",
            Kind::YSweet => "y-sweet",
            Kind::Hocuspocus => "hocuspocus",
            Kind::TandemxProxy => "tandemx (proxy)",
            Kind::TandemxDirect => "tandemx (direct)",
            Kind::TandemxRelaxed => "tandemx relaxed (direct)",
            Kind::RelayHibernate => "workerd relay, hibernating (floor)",
            Kind::RelayAccept => "workerd relay, accept() (floor)",
        }
    }

    /// Short id used in room names, file names and on the command line.
    pub fn id(self) -> &'static str {
        match self {
            Kind::Reference => "reference",
            Kind::YSweet => "y-sweet",
            Kind::Hocuspocus => "hocuspocus",
            Kind::TandemxProxy => "tandemx-proxy",
            Kind::TandemxDirect => "tandemx-direct",
            Kind::TandemxRelaxed => "tandemx-relaxed",
            Kind::RelayHibernate => "relay-hibernate",
            Kind::RelayAccept => "relay-accept",
        }
    }

    /// Every kind, in the order of the table.
    pub const ALL: [Kind; 6] = [
        Kind::Reference,
        Kind::YSweet,
        Kind::Hocuspocus,
        Kind::TandemxProxy,
        Kind::TandemxDirect,
        Kind::TandemxRelaxed,
    ];

    /// Columns only named on the command line (`--servers relay-hibernate,relay-accept`).
    pub const EXTRA: [Kind; 2] = [Kind::RelayHibernate, Kind::RelayAccept];

    /// Whether documents survive a restart.
    pub fn persists(self) -> bool {
        !matches!(
            self,
            Kind::Reference | Kind::Hocuspocus | Kind::RelayHibernate | Kind::RelayAccept
        )
    }

    /// Whether the server keeps the document (the relays keep nothing: a new client's initial
    /// sync is empty: the load workload does not apply, the fan-out skips its late joiner).
    pub fn keeps_document(self) -> bool {
        !self.is_relay()
    }

    /// A relay of `benches/relay/` (the runtime's floor), not a Yjs server.
    pub fn is_relay(self) -> bool {
        matches!(self, Kind::RelayHibernate | Kind::RelayAccept)
    }

    /// TandemX (any column).
    pub fn is_tandemx(self) -> bool {
        matches!(
            self,
            Kind::TandemxProxy | Kind::TandemxDirect | Kind::TandemxRelaxed
        )
    }

    /// Started under `wrangler dev` by a serve script that prints `READY <url>`.
    fn under_wrangler(self) -> bool {
        self.is_tandemx() || self.is_relay()
    }

    /// Reached on the socket of the `workerd` that runs the worker, past wrangler's proxy.
    fn direct(self) -> bool {
        matches!(
            self,
            Kind::TandemxDirect | Kind::TandemxRelaxed | Kind::RelayHibernate | Kind::RelayAccept
        )
    }
}

/// What every server start needs to know.
#[derive(Debug, Clone)]
pub struct Setup {
    /// Repository root (node_modules, the reference server).
    pub root: PathBuf,
    /// Where TandemX is started from: a checkout with `build/`, `wrangler.toml` and
    /// `tests/e2e/serve.mjs` (the repository itself, or a frozen copy of it).
    pub tandemx_dir: PathBuf,
    /// Scratch directory for stores and logs (removed by the caller).
    pub scratch: PathBuf,
    /// The `y-sweet` executable.
    pub ysweet: Option<PathBuf>,
    /// Core list for `taskset -c` (the server side), if pinning.
    pub server_cores: Option<String>,
    /// `KEY=VALUE` variables for TandemX (`wrangler dev --var`, through serve.mjs).
    pub tandemx_vars: Vec<String>,
}

/// A running server.
pub struct Server {
    /// Which one.
    pub kind: Kind,
    setup: Setup,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Option<mpsc::UnboundedReceiver<String>>,
    /// `ws://127.0.0.1:<port>` the clients connect to.
    base: String,
    /// Port of the public URL (wrangler's entry proxy for TandemX).
    port: u16,
    token: Option<String>,
    store: Option<PathBuf>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn pinned(setup: &Setup, program: &str) -> Command {
    match &setup.server_cores {
        Some(cores) => {
            let mut c = Command::new("taskset");
            c.arg("-c").arg(cores).arg(program);
            c
        }
        None => Command::new(program),
    }
}

fn log_file(setup: &Setup, name: &str) -> Stdio {
    std::fs::File::create(setup.scratch.join(format!("{name}.log")))
        .map(Stdio::from)
        .unwrap_or_else(|_| Stdio::null())
}

async fn tcp_ready(port: u16, timeout: Duration) -> Result<(), String> {
    let start = std::time::Instant::now();
    while start.elapsed() < timeout {
        if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!("nothing listens on port {port} after {timeout:?}"))
}

/// `GET path` over plain HTTP/1.1; returns the status code and the body.
pub async fn http_get(port: u16, path: &str) -> Result<(u16, String), String> {
    let fetch = async {
        let mut s = TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| e.to_string())?;
        let req =
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        // Read the head, then Content-Length bytes of body: some servers keep the connection
        // open despite `Connection: close`.
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = s.read(&mut chunk).await.map_err(|e| e.to_string())?;
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf);
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head.lines().find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                });
                if n == 0 || length.is_some_and(|len| body.len() >= len) {
                    break;
                }
            } else if n == 0 {
                break;
            }
        }
        let text = String::from_utf8_lossy(&buf).into_owned();
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| format!("not HTTP: {}", text.chars().take(80).collect::<String>()))?;
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        Ok::<_, String>((status, body))
    };
    tokio::time::timeout(Duration::from_secs(5), fetch)
        .await
        .map_err(|_| "timed out".to_string())?
}

/// TCP ports a process listens on (IPv4), from /proc.
fn listening_ports(pid: u32) -> Vec<u16> {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                .filter_map(|l| {
                    let l = l.to_string_lossy().into_owned();
                    l.strip_prefix("socket:[")
                        .and_then(|r| r.strip_suffix(']'))
                        .map(str::to_owned)
                })
                .collect()
        })
        .unwrap_or_default();
    let table = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")).unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            // local_address is field 1 (hex ip:port), st field 3 (0A = LISTEN), inode field 9.
            if f.len() < 10 || f[3] != "0A" || !inodes.iter().any(|i| i == f[9]) {
                return None;
            }
            u16::from_str_radix(f[1].split(':').nth(1)?, 16).ok()
        })
        .collect()
}

impl Server {
    /// Starts a server of `kind` and waits until it serves.
    pub async fn start(kind: Kind, setup: &Setup) -> Result<Server, String> {
        let port = free_port();
        let mut server = match kind {
            Kind::Reference => {
                let script = "node_modules/@y/websocket-server/src/server.js";
                let child = Server::spawn_node(setup, script, "reference", port)?;
                Server::plain(kind, setup, child, port, None)
            }
            Kind::Hocuspocus => {
                let script = "benches/hocuspocus/serve.mjs";
                let child = Server::spawn_node(setup, script, "hocuspocus", port)?;
                Server::plain(kind, setup, child, port, None)
            }
            Kind::YSweet => {
                let bin = setup.ysweet.clone().ok_or("y-sweet is not installed")?;
                let store = setup.scratch.join("y-sweet-store");
                std::fs::create_dir_all(&store).map_err(|e| e.to_string())?;
                let child = Server::spawn_ysweet(setup, &bin, &store, port)?;
                Server::plain(kind, setup, child, port, Some(store))
            }
            _ => {
                let (script, vars): (&str, &[String]) = if kind.is_relay() {
                    ("benches/relay/serve.mjs", &[])
                } else {
                    ("tests/e2e/serve.mjs", &setup.tandemx_vars)
                };
                let mut child = pinned(setup, "node")
                    .arg(script)
                    .args(vars)
                    .args((kind == Kind::TandemxRelaxed).then_some("DURABILITY=relaxed"))
                    .args((kind == Kind::RelayAccept).then_some("MODE=accept"))
                    .current_dir(&setup.tandemx_dir)
                    // serve.mjs keeps its storage under the temporary directory.
                    .env("TMPDIR", &setup.scratch)
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(log_file(setup, kind.id()))
                    // Not killed on drop: its stdin closing stops wrangler and workerd cleanly,
                    // where a SIGKILL of serve.mjs alone would leave them running.
                    .spawn()
                    .map_err(|e| format!("node {script}: {e}"))?;
                let stdin = child.stdin.take();
                let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
                let (tx, rx) = mpsc::unbounded_channel();
                tokio::spawn(async move {
                    while let Ok(Some(line)) = out.next_line().await {
                        if tx.send(line).is_err() {
                            break;
                        }
                    }
                });
                Server {
                    kind,
                    setup: setup.clone(),
                    child,
                    stdin,
                    lines: Some(rx),
                    base: String::new(),
                    port: 0,
                    token: None,
                    store: None,
                }
            }
        };
        server.wait_ready().await?;
        Ok(server)
    }

    fn plain(kind: Kind, setup: &Setup, child: Child, port: u16, store: Option<PathBuf>) -> Server {
        Server {
            kind,
            setup: setup.clone(),
            child,
            stdin: None,
            lines: None,
            base: format!("ws://127.0.0.1:{port}"),
            port,
            token: None,
            store,
        }
    }

    /// A Node server of the repository (`script`, relative to its root) on `port`, which reads
    /// `HOST` and `PORT`; logs as `<log>.log` and `<log>.err.log`.
    fn spawn_node(setup: &Setup, script: &str, log: &str, port: u16) -> Result<Child, String> {
        pinned(setup, "node")
            .arg(setup.root.join(script))
            .current_dir(&setup.root)
            .env("HOST", "127.0.0.1")
            .env("PORT", port.to_string())
            .stdin(Stdio::null())
            .stdout(log_file(setup, log))
            .stderr(log_file(setup, &format!("{log}.err")))
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("node {script}: {e}"))
    }

    fn spawn_ysweet(setup: &Setup, bin: &Path, store: &Path, port: u16) -> Result<Child, String> {
        pinned(setup, &bin.to_string_lossy())
            .arg("serve")
            .arg(store)
            .arg("--host")
            .arg("127.0.0.1")
            .arg("--port")
            .arg(port.to_string())
            // Its INFO log writes lines for every checkpoint signal; warnings are enough here.
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log_file(setup, "y-sweet"))
            .stderr(log_file(setup, "y-sweet.err"))
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("{}: {e}", bin.display()))
    }

    async fn wait_ready(&mut self) -> Result<(), String> {
        if !self.kind.under_wrangler() {
            return tcp_ready(self.port, Duration::from_secs(60)).await;
        }
        let lines = self.lines.as_mut().ok_or("no output")?;
        let url = loop {
            let line = tokio::time::timeout(Duration::from_secs(180), lines.recv())
                .await
                .map_err(|_| "serve.mjs printed no READY within 180 s".to_string())?
                .ok_or("serve.mjs exited before READY (see its log)")?;
            if let Some(url) = line.strip_prefix("READY ") {
                break url.trim().to_owned();
            }
        };
        // Once rooms need a token, serve.mjs prints it on the line after READY.
        self.token = None;
        if let Ok(Some(line)) = tokio::time::timeout(Duration::from_millis(750), lines.recv()).await
        {
            if let Some(token) = line.strip_prefix("TOKEN ") {
                self.token = Some(token.trim().to_owned());
            }
        }
        self.port = url
            .rsplit(':')
            .next()
            .and_then(|p| p.trim_end_matches('/').parse().ok())
            .ok_or_else(|| format!("no port in {url}"))?;
        self.base = url
            .replacen("http://", "ws://", 1)
            .trim_end_matches('/')
            .to_owned();
        self.store = self.persist_dir();
        if self.kind.direct() {
            let port = self.direct_port().await?;
            self.base = format!("ws://127.0.0.1:{port}");
        }
        Ok(())
    }

    /// Port of the `workerd` that runs the worker itself (not wrangler's entry proxy): the
    /// listening socket of a `workerd` in wrangler's process tree, other than the public one,
    /// that answers `/health` like the worker does.
    async fn direct_port(&self) -> Result<u16, String> {
        for p in self.procs() {
            if !p.label.starts_with("workerd") {
                continue;
            }
            for port in listening_ports(p.pid) {
                if port == self.port {
                    continue;
                }
                if let Ok((200, body)) = http_get(port, "/health").await {
                    if body.contains("durable_object") {
                        return Ok(port);
                    }
                }
            }
        }
        Err("no workerd socket other than the entry proxy answers /health".into())
    }

    /// wrangler's `--persist-to` directory.
    fn persist_dir(&self) -> Option<PathBuf> {
        for pid in descendants(self.pid()) {
            let args = cmdline(pid);
            if let Some(i) = args.iter().position(|a| a == "--persist-to") {
                return args.get(i + 1).map(PathBuf::from);
            }
        }
        None
    }

    fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }

    /// The WebSocket URL of document `room`.
    pub fn room_url(&self, room: &str) -> String {
        let path = match self.kind {
            Kind::Reference => format!("/{room}"),
            // y-sweet's client URL repeats the doc id, for the y-websocket provider's sake.
            Kind::YSweet => format!("/d/{room}/ws/{room}"),
            // Hocuspocus ignores the path; the client reads the document name from the query.
            Kind::Hocuspocus => format!("/{room}?{}={room}", super::client::HOCUSPOCUS_DOCUMENT),
            _ => format!("/rooms/{room}"),
        };
        match &self.token {
            Some(token) => format!("{}{path}?token={token}", self.base),
            None => format!("{}{path}", self.base),
        }
    }

    /// Whether rooms are opened with a token.
    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// Files holding Durable Object (TandemX) or document (y-sweet) storage: path and size.
    pub fn stored_files(&self) -> Vec<(PathBuf, u64)> {
        let Some(store) = &self.store else {
            return Vec::new();
        };
        let dir = if self.kind.is_tandemx() {
            store.join("v3/do/tandemx-RoomObject")
        } else {
            store.clone()
        };
        let mut out = Vec::new();
        let mut stack = vec![dir];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let Ok(meta) = e.metadata() else { continue };
                if meta.is_dir() {
                    stack.push(e.path());
                } else {
                    out.push((e.path(), meta.len()));
                }
            }
        }
        out
    }

    /// The server's processes, labelled.
    pub fn procs(&self) -> Vec<Proc> {
        descendants(self.pid())
            .into_iter()
            .map(|pid| {
                let args = cmdline(pid);
                let all = args.join(" ");
                let label = if all.contains("workerd") {
                    if all.contains(&format!("entry=127.0.0.1:{} ", self.port))
                        || all.ends_with(&format!("entry=127.0.0.1:{}", self.port))
                    {
                        "workerd (entry proxy)"
                    } else {
                        "workerd (user worker)"
                    }
                } else if all.contains("hocuspocus") {
                    "node"
                } else if all.contains("serve.mjs") {
                    "serve.mjs (node)"
                } else if all.contains("wrangler-dist") {
                    "wrangler (node)"
                } else if all.contains("wrangler") {
                    "wrangler launcher (node)"
                } else if all.contains("esbuild") {
                    "esbuild"
                } else if all.contains("y-sweet") {
                    "y-sweet"
                } else if all.contains("websocket-server") {
                    "node"
                } else {
                    "other"
                };
                Proc {
                    pid,
                    label: label.to_owned(),
                }
            })
            .collect()
    }

    /// Resident and peak resident memory of each process, by label (bytes).
    pub fn memory(&self) -> Vec<(String, u64, u64)> {
        let mut out: Vec<(String, u64, u64)> = Vec::new();
        for p in self.procs() {
            let rss = status_bytes(p.pid, "VmRSS").unwrap_or(0);
            let hwm = status_bytes(p.pid, "VmHWM").unwrap_or(0);
            match out.iter_mut().find(|(l, _, _)| *l == p.label) {
                Some((_, r, h)) => {
                    *r += rss;
                    *h += hwm;
                }
                None => out.push((p.label, rss, hwm)),
            }
        }
        out
    }

    /// Stops the server gracefully and starts it again on the same storage. `Ok(false)` when
    /// the server keeps documents in memory only.
    pub async fn restart(&mut self) -> Result<bool, String> {
        match self.kind {
            Kind::Reference | Kind::Hocuspocus | Kind::RelayHibernate | Kind::RelayAccept => {
                Ok(false)
            }
            Kind::YSweet => {
                self.interrupt_and_wait().await;
                let store = self.store.clone().ok_or("no store")?;
                let bin = self.setup.ysweet.clone().ok_or("no y-sweet")?;
                let port = free_port();
                self.child = Server::spawn_ysweet(&self.setup, &bin, &store, port)?;
                self.port = port;
                self.base = format!("ws://127.0.0.1:{port}");
                self.wait_ready().await?;
                Ok(true)
            }
            _ => {
                let stdin = self.stdin.as_mut().ok_or("no stdin")?;
                stdin
                    .write_all(b"restart\n")
                    .await
                    .map_err(|e| e.to_string())?;
                stdin.flush().await.map_err(|e| e.to_string())?;
                self.wait_ready().await?;
                Ok(true)
            }
        }
    }

    /// SIGINT (y-sweet saves its documents on Ctrl-C), then SIGKILL after 20 s.
    async fn interrupt_and_wait(&mut self) {
        if let Some(pid) = self.child.id() {
            let _ = Command::new("kill")
                .arg("-INT")
                .arg(pid.to_string())
                .status()
                .await;
        }
        if tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }

    /// Stops the server and waits for its processes.
    pub async fn stop(mut self) {
        match self.kind {
            Kind::Reference | Kind::Hocuspocus => {
                let _ = self.child.kill().await;
            }
            Kind::YSweet => self.interrupt_and_wait().await,
            _ => {
                // serve.mjs stops wrangler gracefully when its stdin closes.
                drop(self.stdin.take());
                if tokio::time::timeout(Duration::from_secs(40), self.child.wait())
                    .await
                    .is_err()
                {
                    let _ = self.child.kill().await;
                }
            }
        }
    }
}
