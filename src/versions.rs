//! Versions of a document: what one is, when the room takes one on its own, and what the
//! retention policy lets it forget. No I/O; time comes in as a value. The edge stores versions
//! (`src/edge/versions.rs`) and serves them under `/v1` (see `docs/history.md`).

use serde::{Deserialize, Serialize};

/// Why a version exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VersionKind {
    /// Taken by the room: after a stretch of activity, or when the last connection left.
    Auto,
    /// Created through the API with a name.
    Named,
    /// The state right after a version was restored.
    Restore,
    /// The state right after a branch was merged in.
    Merge,
    /// The state a branch started from (the first version of a branch).
    Fork,
}

impl VersionKind {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            VersionKind::Auto => "auto",
            VersionKind::Named => "named",
            VersionKind::Restore => "restore",
            VersionKind::Merge => "merge",
            VersionKind::Fork => "fork",
        }
    }

    /// Reads the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "auto" => VersionKind::Auto,
            "named" => VersionKind::Named,
            "restore" => VersionKind::Restore,
            "merge" => VersionKind::Merge,
            "fork" => VersionKind::Fork,
            _ => return None,
        })
    }

    /// Whether retention may delete it. Only automatic versions expire; the others were asked
    /// for and stay until deleted.
    pub fn expires(self) -> bool {
        self == VersionKind::Auto
    }
}

/// Where a version's bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Placement {
    /// In the room's SQLite storage, chunked.
    Sql,
    /// In R2, chunked (versions over [`Policy::inline_limit`]).
    R2,
}

/// A stored version, as the API lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    /// Number within the document, increasing.
    pub id: u64,
    /// Why it exists.
    pub kind: VersionKind,
    /// Name (named versions, and a generated one for restores and merges).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Free text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Who created it (`room` for automatic versions).
    pub author: String,
    /// Who changed the document since the previous version.
    pub authors: Vec<String>,
    /// When it was taken, unix ms.
    pub at: u64,
    /// The last log entry it includes.
    pub seq: u64,
    /// Size of the state, in bytes (a v1 update).
    pub bytes: u64,
    /// Where the state is stored.
    pub storage: Placement,
}

/// Longest version name, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// Longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 2000;

/// Body of `POST .../versions`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateVersion {
    /// 1 to [`MAX_NAME_CHARS`] characters.
    pub name: String,
    /// At most [`MAX_DESCRIPTION_CHARS`] characters.
    #[serde(default)]
    pub description: Option<String>,
}

impl CreateVersion {
    /// Checks lengths; the message says what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        let name = self.name.trim();
        if name.is_empty() {
            return Err("name must not be empty".into());
        }
        if name.chars().count() > MAX_NAME_CHARS {
            return Err(format!("name is longer than {MAX_NAME_CHARS} characters"));
        }
        if self.name.chars().any(char::is_control) {
            return Err("name must not hold control characters".into());
        }
        if self
            .description
            .as_ref()
            .is_some_and(|d| d.chars().count() > MAX_DESCRIPTION_CHARS)
        {
            return Err(format!(
                "description is longer than {MAX_DESCRIPTION_CHARS} characters"
            ));
        }
        Ok(())
    }
}

/// When a room takes versions, how long it keeps history, where large versions go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// At most this long of activity goes without an automatic version (5 minutes).
    pub interval_ms: u64,
    /// Log entries and automatic versions older than this may be removed (`None`: keep all).
    pub retention_ms: Option<u64>,
    /// Versions larger than this are stored in R2 instead of the room's SQLite.
    pub inline_limit: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            interval_ms: 5 * 60 * 1000,
            retention_ms: Some(30 * 24 * 3600 * 1000),
            inline_limit: 1024 * 1024,
        }
    }
}

/// What the room knows about its history when it decides on an automatic version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryState {
    /// The last logged change.
    pub head_seq: u64,
    /// The last entry of the newest version (0 when there is none).
    pub versioned_seq: u64,
    /// When the first change after the newest version was logged.
    pub first_unversioned_at: Option<u64>,
}

impl Policy {
    /// When the next automatic version is due, if there are changes no version holds yet:
    /// `interval_ms` after the first of them, so no stretch of activity longer than that goes
    /// without one.
    pub fn auto_due(&self, state: &HistoryState) -> Option<u64> {
        if state.head_seq <= state.versioned_seq {
            return None;
        }
        let first = state.first_unversioned_at.unwrap_or(0);
        Some(first.saturating_add(self.interval_ms))
    }

    /// Whether to take an automatic version at `now`; `room_empty` when the last connection
    /// just left (a version then keeps what the session did, whatever the interval).
    pub fn take_auto(&self, state: &HistoryState, now: u64, room_empty: bool) -> bool {
        match self.auto_due(state) {
            None => false,
            Some(due) => room_empty || now >= due,
        }
    }

    /// What retention removes at `now`, given the versions as `(id, kind, at, seq)` sorted by
    /// id. History stays readable from the newest version taken before the cutoff (the base):
    /// log entries up to the base's `seq` and expiring versions older than the base go.
    pub fn prune(&self, versions: &[(u64, VersionKind, u64, u64)], now: u64) -> Prune {
        let Some(retention) = self.retention_ms else {
            return Prune::default();
        };
        let cutoff = now.saturating_sub(retention);
        let Some(&(base_id, _, _, base_seq)) =
            versions.iter().rev().find(|(_, _, at, _)| *at <= cutoff)
        else {
            return Prune::default();
        };
        Prune {
            log_upto_seq: base_seq,
            versions: versions
                .iter()
                .filter(|(id, kind, _, _)| *id < base_id && kind.expires())
                .map(|(id, ..)| *id)
                .collect(),
        }
    }
}

/// What a project's retention setting means, as read from D1: `Ok(None)` keeps everything.
/// `read` is the query's outcome: an error, no project row, or the row's
/// `history_retention_days` (`None`: the server's `default`, 0: keep everything). Anything but a
/// row is an error: then nothing may be pruned (a project set to keep everything must never
/// lose history to a failed query, nor a deleted project's rooms to a missing row).
pub fn project_retention(
    read: Result<Option<Option<u64>>, String>,
    default: Option<u64>,
) -> Result<Option<u64>, String> {
    match read? {
        None => Err("the project is not in D1".into()),
        Some(None) => Ok(default),
        Some(Some(0)) => Ok(None),
        Some(Some(days)) => Ok(Some(days.saturating_mul(24 * 3600 * 1000))),
    }
}

/// What retention removes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prune {
    /// Log entries with `seq` up to this go (0: none).
    pub log_upto_seq: u64,
    /// Versions to delete.
    pub versions: Vec<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: u64 = 60_000;

    fn policy() -> Policy {
        Policy {
            interval_ms: 5 * MIN,
            retention_ms: Some(60 * MIN),
            inline_limit: 1024,
        }
    }

    #[test]
    fn nothing_is_due_without_unversioned_changes() {
        let state = HistoryState {
            head_seq: 7,
            versioned_seq: 7,
            first_unversioned_at: None,
        };
        assert_eq!(policy().auto_due(&state), None);
        assert!(!policy().take_auto(&state, u64::MAX, true));
    }

    #[test]
    fn a_version_is_due_five_minutes_after_the_first_unversioned_change() {
        let state = HistoryState {
            head_seq: 9,
            versioned_seq: 7,
            first_unversioned_at: Some(10 * MIN),
        };
        assert_eq!(policy().auto_due(&state), Some(15 * MIN));
        assert!(!policy().take_auto(&state, 15 * MIN - 1, false));
        assert!(policy().take_auto(&state, 15 * MIN, false));
        // When the room empties it does not wait.
        assert!(policy().take_auto(&state, 10 * MIN + 1, true));
    }

    #[test]
    fn retention_keeps_a_base_and_every_named_version() {
        use VersionKind::*;
        let versions = [
            (1, Auto, MIN, 10),
            (2, Named, 5 * MIN, 20),
            (3, Auto, 10 * MIN, 30),
            (4, Auto, 50 * MIN, 40),
            (5, Auto, 90 * MIN, 50),
        ];
        // At 100 min with 60 min retention the cutoff is 40 min: version 3 is the base.
        let prune = policy().prune(&versions, 100 * MIN);
        assert_eq!(prune.log_upto_seq, 30);
        assert_eq!(prune.versions, vec![1]);
        // Before anything is old enough, nothing goes.
        assert_eq!(policy().prune(&versions, 30 * MIN), Prune::default());
        let keep_all = Policy {
            retention_ms: None,
            ..policy()
        };
        assert_eq!(keep_all.prune(&versions, u64::MAX), Prune::default());
    }

    #[test]
    fn a_failed_read_of_the_setting_prunes_nothing() {
        let default = Some(30 * 24 * 3600 * 1000);
        assert_eq!(project_retention(Ok(Some(None)), default), Ok(default));
        assert_eq!(project_retention(Ok(Some(Some(0))), default), Ok(None));
        assert_eq!(
            project_retention(Ok(Some(Some(2))), default),
            Ok(Some(2 * 24 * 3600 * 1000))
        );
        assert!(project_retention(Err("d1 down".into()), default).is_err());
        assert!(project_retention(Ok(None), default).is_err());
        assert_eq!(
            project_retention(Ok(Some(Some(u64::MAX))), default),
            Ok(Some(u64::MAX))
        );
    }

    #[test]
    fn names_are_checked() {
        let ok = CreateVersion {
            name: "Draft 1".into(),
            description: None,
        };
        assert!(ok.validate().is_ok());
        for bad in ["", "   ", &"x".repeat(MAX_NAME_CHARS + 1)] {
            let v = CreateVersion {
                name: bad.into(),
                description: None,
            };
            assert!(v.validate().is_err(), "{bad:?}");
        }
        let long = CreateVersion {
            name: "a".into(),
            description: Some("d".repeat(MAX_DESCRIPTION_CHARS + 1)),
        };
        assert!(long.validate().is_err());
        assert_eq!(VersionKind::parse("merge"), Some(VersionKind::Merge));
        assert_eq!(
            VersionKind::parse(VersionKind::Fork.as_str()),
            Some(VersionKind::Fork)
        );
        assert_eq!(VersionKind::parse("bogus"), None);
    }
}
