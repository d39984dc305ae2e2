//! Structured log lines: one JSON object per line, as `wrangler tail` and Workers Logs show
//! them and a log pipeline parses them (docs/operations.md lists the fields and events).
//!
//! A [`Line`] is built where something happened and rendered with the time passed in; the edge
//! (`edge::log`) writes it to the console at its level. Every string in a line is cut to a
//! bound, so one line stays small whatever a cause or a client sent.

use crate::assets::http_date::civil_from_days;
use std::fmt::{self, Display, Write};

/// Longest `cause`, in characters: an error's text with its chain, enough for a D1 or R2
/// message and a SQL statement, not a whole document a failed call echoed back.
pub const MAX_CAUSE_CHARS: usize = 1024;
/// Longest `message` or text field, in characters.
pub const MAX_TEXT_CHARS: usize = 256;
/// The names a [`Line`] writes itself; [`Line::field`] does not take them.
const RESERVED: [&str; 9] = [
    "time",
    "level",
    "event",
    "message",
    "request_id",
    "project",
    "room",
    "cause",
    "truncated",
];

/// How much a line matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Detail that helps only while debugging (`console.debug`).
    Debug,
    /// Something that happened as it should (`console.log`).
    Info,
    /// Something unusual the service handled: a refusal, a retry, a setting ignored
    /// (`console.warn`).
    Warn,
    /// Something failed (`console.error`).
    Error,
}

impl Level {
    /// The level as written in a line: `debug`, `info`, `warn`, `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// A typed value of an extra field.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Text, cut to [`MAX_TEXT_CHARS`].
    Text(String),
    /// A count, a status, an id.
    Int(i64),
    /// A number with a fraction.
    Float(f64),
    /// A flag.
    Bool(bool),
}

macro_rules! ints {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(n: $t) -> Value {
                // Every count logged fits; a value past i64 is written at its bound.
                Value::Int(i64::try_from(n).unwrap_or(i64::MAX))
            }
        }
    )*};
}
ints!(u8, u16, u32, u64, usize, i32, i64);

impl From<f64> for Value {
    fn from(n: f64) -> Value {
        Value::Float(n)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Text(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Text(s)
    }
}

/// One log line: a level, an event name, and what is known about where it happened.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    level: Level,
    event: &'static str,
    message: Option<String>,
    request_id: Option<String>,
    project: Option<String>,
    room: Option<String>,
    fields: Vec<(&'static str, Value)>,
    cause: Option<String>,
}

/// A [`Level::Debug`] line for `event`.
pub fn debug(event: &'static str) -> Line {
    Line::new(Level::Debug, event)
}

/// A [`Level::Info`] line for `event`.
pub fn info(event: &'static str) -> Line {
    Line::new(Level::Info, event)
}

/// A [`Level::Warn`] line for `event`.
pub fn warn(event: &'static str) -> Line {
    Line::new(Level::Warn, event)
}

/// A [`Level::Error`] line for `event`.
pub fn error(event: &'static str) -> Line {
    Line::new(Level::Error, event)
}

impl Line {
    /// A line at `level` for `event`: a short, stable, dotted name (`http.request`,
    /// `room.unavailable`), what a query or an alert matches on.
    pub fn new(level: Level, event: &'static str) -> Line {
        Line {
            level,
            event,
            message: None,
            request_id: None,
            project: None,
            room: None,
            fields: Vec::new(),
            cause: None,
        }
    }

    /// The line's level.
    pub fn level(&self) -> Level {
        self.level
    }

    /// The line's event name.
    pub fn event(&self) -> &'static str {
        self.event
    }

    /// A sentence for people reading the line (the event is for machines).
    pub fn message(mut self, message: impl Display) -> Line {
        self.message = Some(message.to_string());
        self
    }

    /// The request this happened in (`x-request-id`).
    pub fn request_id(mut self, id: impl Display) -> Line {
        self.request_id = Some(id.to_string());
        self
    }

    /// The project it happened in.
    pub fn project(mut self, project: impl Display) -> Line {
        self.project = Some(project.to_string());
        self
    }

    /// The room (document) it happened in.
    pub fn room(mut self, room: impl Display) -> Line {
        self.room = Some(room.to_string());
        self
    }

    /// The error's text, for a line about a failure: logged in full (up to
    /// [`MAX_CAUSE_CHARS`]) here, never sent to a client.
    pub fn cause(mut self, cause: impl Display) -> Line {
        self.cause = Some(cause.to_string());
        self
    }

    /// An extra field. `name` is a fixed identifier of the call site; one of the line's own
    /// names (`time`, `event`, ...) is ignored, so a line never holds a key twice.
    pub fn field(mut self, name: &'static str, value: impl Into<Value>) -> Line {
        if !RESERVED.contains(&name) && self.fields.iter().all(|(n, _)| *n != name) {
            self.fields.push((name, value.into()));
        }
        self
    }

    /// The line as one JSON object at `now_ms` (unix milliseconds), keys in a fixed order:
    /// `time`, `level`, `event`, `message`, `request_id`, `project`, `room`, the extra fields,
    /// `cause`, and `truncated: true` when a text was cut to its bound.
    pub fn render(&self, now_ms: u64) -> String {
        let mut out = Writer {
            text: String::with_capacity(160),
            truncated: false,
        };
        out.text.push('{');
        out.key("time");
        out.string(&iso8601(now_ms), usize::MAX);
        out.text.push(',');
        out.key("level");
        out.string(self.level.as_str(), usize::MAX);
        out.text.push(',');
        out.key("event");
        out.string(self.event, MAX_TEXT_CHARS);
        let texts = [
            ("message", &self.message),
            ("request_id", &self.request_id),
            ("project", &self.project),
            ("room", &self.room),
        ];
        for (name, value) in texts {
            if let Some(value) = value {
                out.text.push(',');
                out.key(name);
                out.string(value, MAX_TEXT_CHARS);
            }
        }
        for (name, value) in &self.fields {
            out.text.push(',');
            out.key(name);
            match value {
                Value::Text(s) => out.string(s, MAX_TEXT_CHARS),
                Value::Int(n) => {
                    let _ = write!(out.text, "{n}");
                }
                // JSON has no NaN or infinity.
                Value::Float(f) if f.is_finite() => {
                    let _ = write!(out.text, "{f}");
                }
                Value::Float(_) => out.text.push_str("null"),
                Value::Bool(b) => out.text.push_str(if *b { "true" } else { "false" }),
            }
        }
        if let Some(cause) = &self.cause {
            out.text.push(',');
            out.key("cause");
            out.string(cause, MAX_CAUSE_CHARS);
        }
        if out.truncated {
            out.text.push_str(",\"truncated\":true");
        }
        out.text.push('}');
        out.text
    }
}

impl Display for Line {
    /// The line without its time (for tests and messages; [`Line::render`] is what is logged).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.level.as_str(), self.event)?;
        if let Some(cause) = &self.cause {
            write!(f, ": {cause}")?;
        }
        Ok(())
    }
}

struct Writer {
    text: String,
    truncated: bool,
}

impl Writer {
    fn key(&mut self, name: &str) {
        self.string(name, usize::MAX);
        self.text.push(':');
    }

    /// `s` as a JSON string (serde_json escapes it), cut to `max` characters with `…`.
    fn string(&mut self, s: &str, max: usize) {
        let cut = match s.char_indices().nth(max) {
            Some((at, _)) => {
                self.truncated = true;
                let mut cut = s[..at].to_owned();
                cut.push('…');
                std::borrow::Cow::Owned(cut)
            }
            None => std::borrow::Cow::Borrowed(s),
        };
        // Serializing a string to JSON cannot fail.
        self.text
            .push_str(&serde_json::to_string(cut.as_ref()).unwrap_or_default());
    }
}

/// `ms` unix milliseconds as ISO 8601 in UTC: `2026-04-01T09:30:05.042Z`.
pub fn iso8601(ms: u64) -> String {
    let secs = ms / 1000;
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value as Json};

    /// 2026-04-01T09:30:05.042Z.
    const NOW: u64 = 1_775_035_805_042;

    fn parsed(line: &Line) -> Json {
        let text = line.render(NOW);
        assert!(!text.contains('\n'), "one line: {text}");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }

    #[test]
    fn time_is_iso_8601_utc_with_milliseconds() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(NOW), "2026-04-01T09:30:05.042Z");
        assert_eq!(iso8601(951_782_400_999), "2000-02-29T00:00:00.999Z");
        assert_eq!(iso8601(1_767_225_599_000), "2025-12-31T23:59:59.000Z");
    }

    #[test]
    fn a_line_holds_its_fields_in_order() {
        let line = error("webhook.delivery_failed")
            .message("webhook delivery failed")
            .request_id("8f1c2a3b4c5d6e7f-IAD")
            .project("prj_1")
            .room("notes")
            .field("status", 502u16)
            .field("attempt", 3u32)
            .field("ms", 12.5)
            .field("retry", true)
            .field("outcome", "timeout")
            .cause("connection reset");
        let text = line.render(NOW);
        assert_eq!(
            text,
            r#"{"time":"2026-04-01T09:30:05.042Z","level":"error","event":"webhook.delivery_failed","message":"webhook delivery failed","request_id":"8f1c2a3b4c5d6e7f-IAD","project":"prj_1","room":"notes","status":502,"attempt":3,"ms":12.5,"retry":true,"outcome":"timeout","cause":"connection reset"}"#
        );
        assert_eq!(
            line.to_string(),
            "error webhook.delivery_failed: connection reset"
        );
    }

    #[test]
    fn optional_parts_are_left_out() {
        let v = parsed(&info("http.request"));
        assert_eq!(
            v,
            json!({ "time": "2026-04-01T09:30:05.042Z", "level": "info", "event": "http.request" })
        );
    }

    #[test]
    fn every_level_is_written_by_name() {
        for (line, name) in [
            (debug("e"), "debug"),
            (info("e"), "info"),
            (warn("e"), "warn"),
            (error("e"), "error"),
        ] {
            assert_eq!(parsed(&line)["level"], name);
        }
        assert!(Level::Error > Level::Warn && Level::Warn > Level::Info);
        assert!(Level::Info > Level::Debug);
    }

    #[test]
    fn text_is_escaped() {
        let hostile = "a\"b\\c\nd\re\u{0}f\u{1b}[31m\u{2028}</script>é";
        let line = warn("x").message(hostile).room(hostile).cause(hostile);
        let text = line.render(NOW);
        assert!(!text.contains('\n') && !text.contains('\r') && !text.contains('\u{0}'));
        assert!(!text.contains('\u{1b}'), "no terminal escapes: {text}");
        let v = parsed(&line);
        for key in ["message", "room", "cause"] {
            assert_eq!(v[key], hostile, "{key}");
        }
    }

    #[test]
    fn long_texts_are_cut_and_marked() {
        let long = "é".repeat(MAX_CAUSE_CHARS * 3);
        let v = parsed(
            &error("x")
                .cause(&long)
                .message(&long)
                .field("what", long.as_str()),
        );
        let cause = v["cause"].as_str().unwrap();
        assert_eq!(cause.chars().count(), MAX_CAUSE_CHARS + 1);
        assert!(cause.ends_with('…'));
        assert_eq!(
            v["message"].as_str().unwrap().chars().count(),
            MAX_TEXT_CHARS + 1
        );
        assert_eq!(
            v["what"].as_str().unwrap().chars().count(),
            MAX_TEXT_CHARS + 1
        );
        assert_eq!(v["truncated"], true);
        // Bounded whatever goes in: a cause of a megabyte of control characters (each escaped
        // to six bytes) stays a few kilobytes.
        let worst = "\u{1}".repeat(1 << 20);
        let text = error("x").cause(&worst).message(&worst).render(NOW);
        assert!(text.len() < 8 * 1024, "{} bytes", text.len());
        // At the bound exactly, nothing is cut.
        let v = parsed(&error("x").cause("a".repeat(MAX_CAUSE_CHARS)));
        assert_eq!(v["cause"].as_str().unwrap().len(), MAX_CAUSE_CHARS);
        assert!(v.get("truncated").is_none());
    }

    #[test]
    fn fields_never_repeat_a_key() {
        let v = parsed(
            &info("x")
                .field("event", "other")
                .field("time", 1u8)
                .field("n", 1u8)
                .field("n", 2u8),
        );
        assert_eq!(v["event"], "x");
        assert_eq!(v["time"], "2026-04-01T09:30:05.042Z");
        assert_eq!(v["n"], 1);
        let text = info("x").field("n", 1u8).field("n", 2u8).render(NOW);
        assert_eq!(text.matches("\"n\"").count(), 1);
    }

    #[test]
    fn numbers_stay_json() {
        let v = parsed(
            &info("x")
                .field("nan", f64::NAN)
                .field("inf", f64::INFINITY)
                .field("big", u64::MAX)
                .field("neg", -3i64),
        );
        assert_eq!(v["nan"], Json::Null);
        assert_eq!(v["inf"], Json::Null);
        assert_eq!(v["big"], i64::MAX);
        assert_eq!(v["neg"], -3);
    }
}
