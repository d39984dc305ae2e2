//! The changes a room gathers for its next `document.updated` webhook event: a window opens at
//! the first change and closes `coalesce_ms` later, and the event says who changed the document
//! and how (a summary of the document before and after, as JSON). Platform-free, with the clock
//! passed in.
//!
//! Rendering the document costs time on the message path, so only rooms of projects with
//! webhook subscriptions pay it, once per window: the rendering after one event is kept as the
//! "before" of the next, as long as nothing changed in between.

use serde_json::Value;
use std::collections::BTreeSet;

/// How long a room trusts what it learned about its project's webhook subscriptions. A
/// subscription added later reaches a busy room within this time (or at its next connection,
/// which brings a fresh answer); until then the room tracks no changes for it.
pub const SUBSCRIPTIONS_TTL_MS: u64 = 30_000;

/// The changes of one window.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    /// When its first change was made (unix ms).
    pub since_ms: u64,
    /// The document as JSON before that change.
    pub before: Value,
    /// Who changed it since.
    pub authors: BTreeSet<String>,
}

/// What the alarm finds.
#[derive(Debug, Clone, PartialEq)]
pub enum Due {
    /// No window is open.
    Nothing,
    /// The window ends at this time.
    Later(u64),
    /// The window has ended: send its event.
    Now(Window),
}

/// A room's change tracking for webhooks.
#[derive(Debug, Clone)]
pub struct Changes {
    coalesce_ms: u64,
    window: Option<Window>,
    /// The document as JSON as it is now, when known (the last event's "after").
    rendered: Option<Value>,
    /// Whether the project has subscriptions, and when that was learned.
    subscribed: Option<(bool, u64)>,
}

impl Changes {
    /// No window, nothing known; windows last `coalesce_ms`.
    pub fn new(coalesce_ms: u64) -> Self {
        Changes {
            coalesce_ms,
            window: None,
            rendered: None,
            subscribed: None,
        }
    }

    /// Remembers whether the project has webhook subscriptions, as learned at `now`.
    pub fn learn(&mut self, subscribed: bool, now: u64) {
        self.subscribed = Some((subscribed, now));
    }

    /// Whether what the room knows about the subscriptions is recent.
    pub fn fresh(&self, now: u64) -> bool {
        self.subscribed
            .is_some_and(|(_, at)| now.saturating_sub(at) < SUBSCRIPTIONS_TTL_MS)
    }

    /// Whether changes are tracked at `now`: unless the project is known, recently, to have
    /// no subscription.
    pub fn tracking(&self, now: u64) -> bool {
        !matches!(self.subscribed, Some((false, _))) || !self.fresh(now)
    }

    /// Whether a change about to be applied needs the document rendered first: a window's
    /// first change needs the document before it, unless the last rendering still holds.
    pub fn wants_before(&self, now: u64) -> bool {
        self.tracking(now) && self.window.is_none() && self.rendered.is_none()
    }

    /// A change was applied (`before`: the rendering taken before it, if any). The kept
    /// rendering is stale from now on. Returns when the alarm must end the window, if this
    /// change opened it.
    pub fn changed(&mut self, author: &str, before: Option<Value>, now: u64) -> Option<u64> {
        let before = self.rendered.take().or(before);
        if !self.tracking(now) {
            return None;
        }
        match &mut self.window {
            Some(w) => {
                w.authors.insert(author.to_owned());
                None
            }
            None => {
                self.window = Some(Window {
                    since_ms: now,
                    before: before?,
                    authors: BTreeSet::from([author.to_owned()]),
                });
                Some(now.saturating_add(self.coalesce_ms))
            }
        }
    }

    /// Nothing changed: a rendering taken before the frame still describes the document.
    pub fn unchanged(&mut self, rendered: Option<Value>) {
        if rendered.is_some() {
            self.rendered = rendered;
        }
    }

    /// The rendering a change about to be made needs, for a change made outside the socket
    /// (the HTTP API): the kept one, else `render()`, when a window would open.
    pub fn before(&mut self, now: u64, render: impl FnOnce() -> Value) -> Option<Value> {
        let kept = self.rendered.take();
        if !self.tracking(now) || self.window.is_some() {
            return None;
        }
        kept.or_else(|| Some(render()))
    }

    /// Whether the open window has ended at `now`; an ended window is taken.
    pub fn due(&mut self, now: u64) -> Due {
        match &self.window {
            None => Due::Nothing,
            Some(w) if w.since_ms.saturating_add(self.coalesce_ms) > now => {
                Due::Later(w.since_ms.saturating_add(self.coalesce_ms))
            }
            Some(_) => self.window.take().map_or(Due::Nothing, Due::Now),
        }
    }

    /// Keeps the rendering the event was made with: the next window's "before", unless a
    /// change comes first.
    pub fn keep(&mut self, after: Value) {
        self.rendered = Some(after);
    }

    /// Forgets everything (the room was deleted).
    pub fn clear(&mut self) {
        self.window = None;
        self.rendered = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: u64 = 1_800_000_000_000;

    #[test]
    fn a_window_opens_at_the_first_change_and_gathers_authors() {
        let mut c = Changes::new(2000);
        assert!(c.wants_before(NOW));
        assert_eq!(
            c.changed("user:a", Some(json!({"t": ""})), NOW),
            Some(NOW + 2000)
        );
        assert!(!c.wants_before(NOW), "one rendering per window");
        assert_eq!(c.changed("user:b", None, NOW + 10), None);
        assert_eq!(c.due(NOW + 1999), Due::Later(NOW + 2000));
        let Due::Now(w) = c.due(NOW + 2000) else {
            panic!("the window ended")
        };
        assert_eq!(w.before, json!({"t": ""}));
        assert_eq!(
            w.authors.into_iter().collect::<Vec<_>>(),
            vec!["user:a", "user:b"]
        );
        assert_eq!(c.due(NOW + 3000), Due::Nothing);
    }

    #[test]
    fn the_last_rendering_serves_as_the_next_before_until_a_change() {
        let mut c = Changes::new(2000);
        c.keep(json!({"t": "after"}));
        assert!(!c.wants_before(NOW), "the kept rendering will do");
        c.changed("user:a", None, NOW);
        let Due::Now(w) = c.due(NOW + 2000) else {
            panic!()
        };
        assert_eq!(w.before, json!({"t": "after"}));
        // A change made while nothing is tracked still makes the kept rendering stale.
        c.keep(json!({"t": "x"}));
        c.learn(false, NOW);
        assert_eq!(c.changed("user:a", None, NOW), None);
        c.learn(true, NOW);
        assert!(c.wants_before(NOW));
        // An unchanged frame keeps what was rendered for it.
        c.unchanged(Some(json!({"t": "y"})));
        assert!(!c.wants_before(NOW));
    }

    #[test]
    fn rooms_of_projects_without_subscriptions_track_nothing_while_that_is_fresh() {
        let mut c = Changes::new(2000);
        assert!(c.tracking(NOW), "unknown: tracked");
        c.learn(false, NOW);
        assert!(!c.tracking(NOW + SUBSCRIPTIONS_TTL_MS - 1));
        assert!(!c.wants_before(NOW));
        assert_eq!(c.before(NOW, || json!({})), None);
        assert!(
            c.tracking(NOW + SUBSCRIPTIONS_TTL_MS),
            "stale: tracked again"
        );
        c.learn(true, NOW);
        assert_eq!(c.before(NOW, || json!({"r": 1})), Some(json!({"r": 1})));
        c.changed("key_1", Some(json!({"r": 1})), NOW);
        assert_eq!(c.before(NOW, || json!({"r": 2})), None, "a window is open");
    }
}
