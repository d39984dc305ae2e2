//! When a room's alarm must fire: a platform-free planner the Durable Object asks after every
//! change and every alarm, with the clock passed in (as tldraw tests its alarm scheduler with a
//! fake). A room has one alarm; it wakes the room for the earliest of its upkeep tasks:
//! writing a due checkpoint, taking an automatic version, closing connections whose tokens
//! expire, ending a webhook event's coalescing window, the daily retention run, and recording
//! which assets the document references (docs/asset-references.md).
//!
//! The planner also remembers the alarm it last asked for, so that the many messages that each
//! want one (a keystroke wants the automatic version five minutes later) cost nothing once the
//! alarm is set: only a wish earlier than the pending alarm reaches the runtime.

/// The room's alarm, as this instance knows it.
#[derive(Debug, Default, Clone)]
pub struct Upkeep {
    /// When the pending alarm fires, as this instance set or read it (`None`: not known).
    known: Option<u64>,
    /// Whether the checkpoint and the version were asked for since the alarm last ran (a burst
    /// of changes asks once).
    checkpoint_asked: bool,
    version_asked: bool,
    /// Whether the last connection left since the alarm last ran (a version is due then).
    emptied: bool,
    /// When the document's asset references are next scanned: the first change since the last
    /// scan plus [`Intervals::assets_ms`] (`None`: no change asked for one in this instance).
    /// Unlike the other tasks it outlives an alarm run that came too early for it.
    assets_due: Option<u64>,
    /// Failed recordings of the references in a row.
    assets_failures: u32,
}

/// How long after a change the tasks that follow changes are due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Intervals {
    /// The automatic version (`AUTO_VERSION_SECONDS`).
    pub version_ms: u64,
    /// The scan of the asset references (`ASSET_USAGE_SECONDS`).
    pub assets_ms: u64,
}

/// Retries of a failed recording of the asset references before the room waits for the next
/// change (or any other alarm run) to try again: the alarm must not keep waking the room
/// while D1 is down.
pub const ASSET_RETRIES: u32 = 3;

/// What the caller must do for the alarm to fire by a wished time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wish {
    /// Nothing: the pending alarm fires earlier (and is still to come).
    Nothing,
    /// Set the alarm to this time.
    Set(u64),
    /// The pending alarm is not known to this instance (it woke from hibernation): read it, and
    /// set this time unless it fires earlier ([`Upkeep::known`]).
    Check(u64),
}

impl Upkeep {
    /// Whether the alarm must be touched for it to fire by `at`.
    pub fn wish(&mut self, at: u64, now: u64) -> Wish {
        match self.known {
            Some(pending) if pending <= at && pending > now => Wish::Nothing,
            Some(_) => {
                self.known = Some(at);
                Wish::Set(at)
            }
            None => Wish::Check(at),
        }
    }

    /// The runtime's pending alarm, as read after a [`Wish::Check`]: the alarm to set, if any.
    pub fn known(&mut self, pending: Option<u64>, at: u64, now: u64) -> Option<u64> {
        match pending {
            Some(pending) if pending <= at && pending > now => {
                self.known = Some(pending);
                None
            }
            _ => {
                self.known = Some(at);
                Some(at)
            }
        }
    }

    /// The earliest of several wishes, each when its task wants the alarm.
    pub fn earliest(times: impl IntoIterator<Item = Option<u64>>) -> Option<u64> {
        times.into_iter().flatten().min()
    }

    /// After a stored change: when the alarm must fire for it (`checkpoint_due`: the log asks
    /// for a checkpoint; the version is due [`Intervals::version_ms`] after the first change
    /// since the last alarm, the asset scan [`Intervals::assets_ms`] after the first change
    /// since the last scan). `None` once all are asked for, until the alarm runs.
    pub fn after_change(
        &mut self,
        checkpoint_due: bool,
        intervals: Intervals,
        now: u64,
    ) -> Option<u64> {
        let checkpoint =
            (checkpoint_due && !std::mem::replace(&mut self.checkpoint_asked, true)).then_some(now);
        let version = (!std::mem::replace(&mut self.version_asked, true))
            .then(|| now.saturating_add(intervals.version_ms));
        let assets = match self.assets_due {
            Some(_) => None,
            None => {
                let at = now.saturating_add(intervals.assets_ms);
                self.assets_due = Some(at);
                Some(at)
            }
        };
        Self::earliest([checkpoint, version, assets])
    }

    /// Whether this alarm run scans the asset references (when the document changed since the
    /// last scan): when the scan is due, when the last connection left (the idle checkpoint),
    /// or when this instance does not know (it woke from hibernation, or a recording failed):
    /// then the alarm that runs anyway does it.
    pub fn assets_due(&self, now: u64, room_empty: bool) -> bool {
        room_empty || self.assets_due.is_none_or(|at| at <= now)
    }

    /// When the alarm must come back for the asset scan, if one is asked for.
    pub fn assets_pending(&self) -> Option<u64> {
        self.assets_due
    }

    /// The scan is done (the references it found are being recorded): changes from now on ask
    /// for the next one.
    pub fn assets_scanned(&mut self) {
        self.assets_due = None;
    }

    /// The references were recorded (or found unchanged).
    pub fn assets_recorded(&mut self) {
        self.assets_failures = 0;
    }

    /// Recording the references failed: when the alarm retries (the interval, doubling), or
    /// `None` after [`ASSET_RETRIES`] retries (the next change or alarm run tries again).
    pub fn assets_failed(&mut self, intervals: Intervals, now: u64) -> Option<u64> {
        self.assets_failures = self.assets_failures.saturating_add(1);
        if self.assets_failures > ASSET_RETRIES {
            return self.assets_due;
        }
        let wait = intervals
            .assets_ms
            .saturating_mul(1 << (self.assets_failures - 1));
        let at = now.saturating_add(wait);
        // A change during the failed write may have asked for an earlier scan already.
        let at = Self::earliest([self.assets_due, Some(at)]).unwrap_or(at);
        self.assets_due = Some(at);
        Some(at)
    }

    /// The last connection left: the alarm takes a version of what the session changed, now.
    pub fn emptied(&mut self, now: u64) -> u64 {
        self.emptied = true;
        now
    }

    /// The alarm fired: nothing is pending any more, and the tasks are asked for afresh.
    /// Returns whether the room emptied since the last run.
    pub fn fired(&mut self) -> bool {
        self.known = None;
        self.checkpoint_asked = false;
        self.version_asked = false;
        std::mem::take(&mut self.emptied)
    }

    /// The next automatic version is asked for (the alarm found one due later): later changes
    /// need not ask again.
    pub fn version_asked(&mut self) {
        self.version_asked = true;
    }

    /// Forgets the pending alarm (it was deleted with the room's storage).
    pub fn forget(&mut self) {
        *self = Upkeep::default();
    }
}

/// When the alarm closes a connection whose token expires at `exp` (unix seconds): just after.
/// Saturating: an `exp` from a token is bounded when verified, but no arithmetic on it may wrap
/// (a wrapped time would set an alarm in the past, which fires again at once, forever).
pub fn expiry_alarm_ms(exp: u64) -> u64 {
    exp.saturating_mul(1000).saturating_add(50)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000_000;
    const INTERVALS: Intervals = Intervals {
        version_ms: 300_000,
        assets_ms: 30_000,
    };

    #[test]
    fn only_an_earlier_wish_reaches_the_runtime() {
        let mut u = Upkeep::default();
        // Not known after a wake: read it first.
        assert_eq!(u.wish(NOW + 500, NOW), Wish::Check(NOW + 500));
        assert_eq!(
            u.known(Some(NOW + 100), NOW + 500, NOW),
            None,
            "an earlier one stays"
        );
        assert_eq!(u.wish(NOW + 300, NOW), Wish::Nothing);
        assert_eq!(u.wish(NOW + 50, NOW), Wish::Set(NOW + 50));
        assert_eq!(u.wish(NOW + 60, NOW), Wish::Nothing);
        // A pending alarm already past (it fires now) does not hide a new wish.
        assert_eq!(u.wish(NOW + 70, NOW + 60), Wish::Set(NOW + 70));
        // A stale read (the pending alarm is in the past) is replaced.
        let mut v = Upkeep::default();
        assert_eq!(v.known(Some(NOW - 1), NOW + 5, NOW), Some(NOW + 5));
        assert_eq!(v.known(None, NOW + 5, NOW), Some(NOW + 5));
    }

    #[test]
    fn a_burst_of_changes_asks_for_the_alarm_once_per_run() {
        let mut u = Upkeep::default();
        let versions = Intervals {
            assets_ms: u64::MAX,
            ..INTERVALS
        };
        let interval = versions.version_ms;
        assert_eq!(u.after_change(false, versions, NOW), Some(NOW + interval));
        assert_eq!(u.after_change(false, versions, NOW + 1), None);
        // A checkpoint comes due: asked for once, at once.
        assert_eq!(u.after_change(true, versions, NOW + 2), Some(NOW + 2));
        assert_eq!(u.after_change(true, versions, NOW + 3), None);
        assert!(!u.fired());
        assert_eq!(
            u.after_change(false, versions, NOW + 10),
            Some(NOW + 10 + interval)
        );
    }

    #[test]
    fn the_asset_scan_follows_the_first_change_since_the_last_scan() {
        let mut u = Upkeep::default();
        let a = INTERVALS.assets_ms;
        // A woken instance knows of no scan: the alarm that runs does it.
        assert!(u.assets_due(NOW, false));
        // The first change asks for it, the burst after it does not.
        assert_eq!(u.after_change(false, INTERVALS, NOW), Some(NOW + a));
        assert_eq!(u.after_change(false, INTERVALS, NOW + 1), None);
        // An alarm run before then (a webhook window) leaves it for later, and comes back.
        assert!(!u.fired());
        assert!(!u.assets_due(NOW + 2_000, false));
        assert_eq!(u.assets_pending(), Some(NOW + a));
        assert_eq!(
            u.after_change(false, INTERVALS, NOW + 2_001),
            Some(NOW + 2_001 + 300_000)
        );
        // The last connection left: scanned at once.
        assert!(u.assets_due(NOW + 3_000, true));
        assert!(u.assets_due(NOW + a, false));
        u.assets_scanned();
        assert_eq!(u.assets_pending(), None);
        // A change during the recording asks for the next scan.
        assert_eq!(
            u.after_change(false, INTERVALS, NOW + a + 5),
            Some(NOW + 2 * a + 5)
        );
        u.assets_recorded();
    }

    #[test]
    fn a_failed_recording_is_retried_a_few_times_then_waits() {
        let mut u = Upkeep::default();
        let a = INTERVALS.assets_ms;
        u.assets_scanned();
        assert_eq!(u.assets_failed(INTERVALS, NOW), Some(NOW + a));
        u.assets_scanned();
        assert_eq!(u.assets_failed(INTERVALS, NOW), Some(NOW + 2 * a));
        u.assets_scanned();
        assert_eq!(u.assets_failed(INTERVALS, NOW), Some(NOW + 4 * a));
        u.assets_scanned();
        // No more alarms of its own: the next change or alarm run tries again.
        assert_eq!(u.assets_failed(INTERVALS, NOW), None);
        assert!(u.assets_due(NOW + 1, false));
        u.assets_recorded();
        u.assets_scanned();
        assert_eq!(u.assets_failed(INTERVALS, NOW), Some(NOW + a));
        // A change during the write asked for an earlier scan: that one stays.
        let mut v = Upkeep::default();
        v.assets_scanned();
        assert_eq!(v.after_change(false, INTERVALS, NOW), Some(NOW + a));
        assert_eq!(v.assets_failed(INTERVALS, NOW + 10), Some(NOW + a));
    }

    #[test]
    fn an_emptied_room_is_told_to_the_next_run_only() {
        let mut u = Upkeep::default();
        assert_eq!(u.emptied(NOW), NOW);
        assert!(u.fired());
        assert!(!u.fired());
    }

    #[test]
    fn expiry_times_saturate() {
        assert_eq!(expiry_alarm_ms(10), 10_050);
        assert_eq!(expiry_alarm_ms(u64::MAX), u64::MAX);
        assert_eq!(
            expiry_alarm_ms(u64::MAX / 1000),
            (u64::MAX / 1000) * 1000 + 50
        );
        assert_eq!(Upkeep::earliest([None, Some(5), Some(3), None]), Some(3));
        assert_eq!(Upkeep::earliest([None, None]), None);
    }
}
