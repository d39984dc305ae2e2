//! Results: one flat list of measurements, printed as one table (a row per measurement, a
//! column per server) and written as JSON and CSV.

use serde_json::{json, Value};
use std::fmt::Write as _;
use std::path::Path;

/// One measured value, or why there is none.
#[derive(Debug, Clone)]
pub enum Cell {
    /// A number in the row's unit.
    Num(f64),
    /// A short text (`ok`, `yes`).
    Text(String),
    /// Not applicable or not measured, with the reason.
    Missing(String),
}

/// One row entry: a server's value of one measurement.
#[derive(Debug, Clone)]
pub struct Record {
    /// Column: the server (or the in-process baseline).
    pub server: String,
    /// Workload the measurement belongs to.
    pub workload: String,
    /// What was measured.
    pub metric: String,
    /// Unit of the number (`ms`, `updates/s`, `B`, `%`, `s`).
    pub unit: String,
    /// The value.
    pub value: Cell,
}

/// Every measurement of a run, plus notes and the environment.
#[derive(Debug, Default)]
pub struct Report {
    /// Measurements in the order they were taken.
    pub records: Vec<Record>,
    /// Free-form notes (skipped servers, caveats found while running).
    pub notes: Vec<String>,
    /// Environment (name, value).
    pub env: Vec<(String, String)>,
    /// Servers in column order.
    pub columns: Vec<String>,
}

impl Report {
    /// Adds a number.
    pub fn num(&mut self, server: &str, workload: &str, metric: &str, unit: &str, v: f64) {
        self.push(server, workload, metric, unit, Cell::Num(v));
    }

    /// Adds a text value.
    pub fn text(&mut self, server: &str, workload: &str, metric: &str, v: impl Into<String>) {
        self.push(server, workload, metric, "", Cell::Text(v.into()));
    }

    /// Records that a value is missing, and why.
    pub fn missing(&mut self, server: &str, workload: &str, metric: &str, unit: &str, why: &str) {
        self.push(
            server,
            workload,
            metric,
            unit,
            Cell::Missing(why.to_owned()),
        );
    }

    fn push(&mut self, server: &str, workload: &str, metric: &str, unit: &str, value: Cell) {
        if !self.columns.iter().any(|c| c == server) {
            self.columns.push(server.to_owned());
        }
        self.records.push(Record {
            server: server.to_owned(),
            workload: workload.to_owned(),
            metric: metric.to_owned(),
            unit: unit.to_owned(),
            value,
        });
    }

    /// Adds a note printed under the table.
    pub fn note(&mut self, note: impl Into<String>) {
        let note = note.into();
        if !self.notes.contains(&note) {
            eprintln!("note: {note}");
            self.notes.push(note);
        }
    }

    /// Rows as (workload, metric, unit) in first-seen order.
    fn rows(&self) -> Vec<(String, String, String)> {
        let mut rows: Vec<(String, String, String)> = Vec::new();
        for r in &self.records {
            if !rows
                .iter()
                .any(|(w, m, _)| *w == r.workload && *m == r.metric)
            {
                rows.push((r.workload.clone(), r.metric.clone(), r.unit.clone()));
            }
        }
        // Workloads in their numbered order, measurements in the order they were taken.
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        rows
    }

    fn cell(&self, workload: &str, metric: &str, server: &str) -> Option<&Cell> {
        self.records
            .iter()
            .rev()
            .find(|r| r.workload == workload && r.metric == metric && r.server == server)
            .map(|r| &r.value)
    }

    /// The table as plain text (also valid Markdown).
    pub fn table(&self) -> String {
        let mut header = vec!["workload".to_owned(), "measurement".to_owned()];
        header.extend(self.columns.iter().cloned());
        let mut lines = vec![header];
        for (w, m, unit) in self.rows() {
            let mut line = vec![
                w.clone(),
                if unit.is_empty() {
                    m.clone()
                } else {
                    format!("{m} ({unit})")
                },
            ];
            for s in &self.columns {
                line.push(match self.cell(&w, &m, s) {
                    Some(Cell::Num(v)) => format_num(*v, &unit),
                    Some(Cell::Text(t)) => t.clone(),
                    Some(Cell::Missing(_)) => "n/a".to_owned(),
                    None => String::new(),
                });
            }
            lines.push(line);
        }
        let widths: Vec<usize> = (0..lines[0].len())
            .map(|i| {
                lines
                    .iter()
                    .map(|l| l[i].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for (n, l) in lines.iter().enumerate() {
            let cells: Vec<String> = l
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    if i < 2 {
                        format!(" {c:<w$} ", w = widths[i])
                    } else {
                        format!(" {c:>w$} ", w = widths[i])
                    }
                })
                .collect();
            let _ = writeln!(out, "|{}|", cells.join("|"));
            if n == 0 {
                // Markdown: measurement columns right-aligned.
                let rule: Vec<String> = widths
                    .iter()
                    .enumerate()
                    .map(|(i, w)| {
                        if i < 2 {
                            "-".repeat(w + 2)
                        } else {
                            format!("{}:", "-".repeat(w + 1))
                        }
                    })
                    .collect();
                let _ = writeln!(out, "|{}|", rule.join("|"));
            }
        }
        out
    }

    /// Notes on missing values, one per distinct reason.
    pub fn missing_reasons(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for r in &self.records {
            if let Cell::Missing(why) = &r.value {
                let line = format!("{}: {} — {}", r.server, r.workload, why);
                if !out.contains(&line) {
                    out.push(line);
                }
            }
        }
        out
    }

    /// Everything as JSON.
    pub fn json(&self) -> Value {
        let records: Vec<Value> = self
            .records
            .iter()
            .map(|r| {
                let (value, note) = match &r.value {
                    Cell::Num(v) => (json!(v), Value::Null),
                    Cell::Text(t) => (json!(t), Value::Null),
                    Cell::Missing(why) => (Value::Null, json!(why)),
                };
                json!({"server": r.server, "workload": r.workload, "metric": r.metric,
                       "unit": r.unit, "value": value, "note": note})
            })
            .collect();
        let env: serde_json::Map<String, Value> = self
            .env
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        json!({"environment": env, "servers": self.columns, "notes": self.notes, "results": records})
    }

    /// Every record as CSV (`server,workload,metric,unit,value,note`).
    pub fn csv(&self) -> String {
        let q = |s: &str| {
            if s.contains([',', '"', '\n']) {
                format!("\"{}\"", s.replace('"', "\"\""))
            } else {
                s.to_owned()
            }
        };
        let mut out = String::from("server,workload,metric,unit,value,note\n");
        for r in &self.records {
            let (value, note) = match &r.value {
                Cell::Num(v) => (format!("{v}"), String::new()),
                Cell::Text(t) => (t.clone(), String::new()),
                Cell::Missing(why) => (String::new(), why.clone()),
            };
            let _ = writeln!(
                out,
                "{},{},{},{},{},{}",
                q(&r.server),
                q(&r.workload),
                q(&r.metric),
                q(&r.unit),
                q(&value),
                q(&note)
            );
        }
        out
    }

    /// The environment as text lines.
    pub fn env_text(&self) -> String {
        self.env
            .iter()
            .map(|(k, v)| format!("{k}: {v}\n"))
            .collect()
    }

    /// Writes `<stem>.json`, `<stem>.csv` and `<stem>.txt` into `dir`, and the same as `latest.*`.
    pub fn write(&self, dir: &Path, stem: &str) -> std::io::Result<Vec<std::path::PathBuf>> {
        std::fs::create_dir_all(dir)?;
        let mut text = self.env_text();
        text.push('\n');
        text.push_str(&self.table());
        for n in self.notes.iter().chain(self.missing_reasons().iter()) {
            text.push_str(&format!("- {n}\n"));
        }
        let json = serde_json::to_string_pretty(&self.json()).expect("JSON encodes");
        let mut written = Vec::new();
        for name in [stem, "latest"] {
            for (ext, body) in [("json", &json), ("csv", &self.csv()), ("txt", &text)] {
                let path = dir.join(format!("{name}.{ext}"));
                std::fs::write(&path, body)?;
                if name == stem {
                    written.push(path);
                }
            }
        }
        Ok(written)
    }
}

/// Formats a number for the table according to its unit.
pub fn format_num(v: f64, unit: &str) -> String {
    match unit {
        "B" => bytes(v),
        "%" => format!("{v:.0}"),
        "updates/s" | "count" => format!("{v:.0}"),
        _ if v.abs() >= 100.0 => format!("{v:.0}"),
        _ if v.abs() >= 10.0 => format!("{v:.1}"),
        _ => format!("{v:.2}"),
    }
}

fn bytes(v: f64) -> String {
    if v >= 1024.0 * 1024.0 {
        format!("{:.1} MiB", v / 1024.0 / 1024.0)
    } else if v >= 1024.0 {
        format!("{:.0} KiB", v / 1024.0)
    } else {
        format!("{v:.0} B")
    }
}
