//! When a room's alarm must fire: a platform-free planner the Durable Object asks after every
//! change and every alarm, with the clock passed in (as tldraw tests its alarm scheduler with a
//! fake). A room has one alarm; it wakes the room for the earliest of its upkeep tasks:
//! writing a due checkpoint, taking an automatic version, closing connections whose tokens
//! expire, ending a webhook event's coalescing window, and the daily retention run.
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
}

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
    /// for a checkpoint; the version is due `version_interval_ms` after the first change since
    /// the last alarm). `None` once both are asked for, until the alarm runs.
    pub fn after_change(
        &mut self,
        checkpoint_due: bool,
        version_interval_ms: u64,
        now: u64,
    ) -> Option<u64> {
        let checkpoint =
            (checkpoint_due && !std::mem::replace(&mut self.checkpoint_asked, true)).then_some(now);
        let version = (!std::mem::replace(&mut self.version_asked, true))
            .then(|| now.saturating_add(version_interval_ms));
        Self::earliest([checkpoint, version])
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
        let interval = 300_000;
        assert_eq!(u.after_change(false, interval, NOW), Some(NOW + interval));
        assert_eq!(u.after_change(false, interval, NOW + 1), None);
        // A checkpoint comes due: asked for once, at once.
        assert_eq!(u.after_change(true, interval, NOW + 2), Some(NOW + 2));
        assert_eq!(u.after_change(true, interval, NOW + 3), None);
        assert!(!u.fired());
        assert_eq!(
            u.after_change(false, interval, NOW + 10),
            Some(NOW + 10 + interval)
        );
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
