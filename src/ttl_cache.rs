//! A small map whose entries expire: what the worker last read from D1 about who may connect,
//! kept for a few seconds so that a client reconnecting (or a room's many clients joining)
//! does not pay a database round trip each time. The caller passes `now`.

use std::collections::HashMap;
use std::hash::Hash;

/// Entries valid for `ttl_ms` after they were read, at most `capacity` of them (when full, the
/// expired ones go; if none had, everything goes: the cache only ever saves reads).
#[derive(Debug)]
pub struct TtlCache<K, V> {
    entries: HashMap<K, (u64, V)>,
    ttl_ms: u64,
    capacity: usize,
    /// Counts [`TtlCache::clear`]s: a value read before a clear is not kept after it.
    generation: u64,
}

impl<K: Eq + Hash, V: Clone> TtlCache<K, V> {
    /// A cache keeping entries for `ttl_ms` (0: keeps nothing).
    pub fn new(ttl_ms: u64, capacity: usize) -> Self {
        TtlCache {
            entries: HashMap::new(),
            ttl_ms,
            capacity,
            generation: 0,
        }
    }

    /// Pass to [`TtlCache::put`] what this returned before the value was read.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// With the time to live set to `ttl_ms` (a setting read per request): the value read at
    /// most that long before `now_ms`, if any, and the generation to pass to
    /// [`TtlCache::put`] with a value read now.
    pub fn lookup<Q>(&mut self, key: &Q, now_ms: u64, ttl_ms: u64) -> (Option<V>, u64)
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        self.set_ttl(ttl_ms);
        (self.get(key, now_ms), self.generation)
    }

    /// The value read at most `ttl_ms` before `now_ms`, if any.
    pub fn get<Q>(&self, key: &Q, now_ms: u64) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let (read_at, value) = self.entries.get(key)?;
        (now_ms.saturating_sub(*read_at) < self.ttl_ms && *read_at <= now_ms).then(|| value.clone())
    }

    /// Keeps `value`, read at `read_ms` after [`TtlCache::generation`] returned `generation`;
    /// nothing is kept if the cache was cleared since (the value may predate the change).
    pub fn put(&mut self, key: K, value: V, read_ms: u64, generation: u64) {
        if self.ttl_ms == 0 || self.capacity == 0 || generation != self.generation {
            return;
        }
        if self.entries.len() >= self.capacity && !self.entries.contains_key(&key) {
            let ttl = self.ttl_ms;
            self.entries
                .retain(|_, (at, _)| read_ms.saturating_sub(*at) < ttl);
            if self.entries.len() >= self.capacity {
                self.entries.clear();
            }
        }
        self.entries.insert(key, (read_ms, value));
    }

    /// Forgets everything (something it may hold was changed).
    pub fn clear(&mut self) {
        self.entries.clear();
        self.generation += 1;
    }

    /// How many entries it holds (expired ones included until they are pushed out).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Changes how long entries stay valid (the setting is read per request).
    fn set_ttl(&mut self, ttl_ms: u64) {
        if ttl_ms != self.ttl_ms {
            self.ttl_ms = ttl_ms;
            if ttl_ms == 0 {
                self.entries.clear();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::TtlCache;

    #[test]
    fn an_entry_is_served_until_its_time_is_up() {
        let mut c = TtlCache::new(5_000, 10);
        c.put("a", 1, 1_000, 0);
        assert_eq!(c.get(&"a", 1_000), Some(1));
        assert_eq!(c.get(&"a", 5_999), Some(1));
        assert_eq!(c.get(&"a", 6_000), None);
        assert_eq!(c.get(&"b", 1_000), None);
        // A clock that went back does not stretch an entry's life.
        assert_eq!(c.get(&"a", 999), None);
    }

    #[test]
    fn a_lookup_applies_the_ttl_it_is_given_and_returns_the_generation_to_put_with() {
        let mut c: TtlCache<String, u32> = TtlCache::new(5_000, 10);
        let (none, generation) = c.lookup("a", 0, 5_000);
        assert_eq!(none, None);
        c.put("a".to_owned(), 1, 0, generation);
        assert_eq!(c.lookup("a", 1_000, 5_000).0, Some(1));
        // A shorter setting applies to what is held already.
        assert_eq!(c.lookup("a", 1_000, 500).0, None);
        // Switched off: nothing held.
        c.lookup("a", 0, 0);
        assert!(c.is_empty());
    }

    #[test]
    fn a_zero_ttl_keeps_nothing_and_clear_forgets_everything() {
        let mut off = TtlCache::new(0, 10);
        off.put("a", 1, 0, 0);
        assert!(off.is_empty());
        assert_eq!(off.get(&"a", 0), None);
        let mut c = TtlCache::new(1_000, 10);
        c.put("a", 1, 0, 0);
        c.put("b", 2, 0, 0);
        c.clear();
        assert_eq!((c.get(&"a", 0), c.len()), (None, 0));
        // Read before the clear: not kept.
        c.put("a", 1, 0, 0);
        assert!(c.is_empty());
        c.put("a", 1, 0, c.generation());
        assert_eq!(c.get(&"a", 0), Some(1));
        c.set_ttl(0);
        assert!(c.is_empty());
    }

    #[test]
    fn a_full_cache_drops_expired_entries_first_and_never_grows_past_capacity() {
        let mut c = TtlCache::new(1_000, 3);
        c.put(1, "old", 0, 0);
        c.put(2, "new", 900, 0);
        c.put(3, "new", 900, 0);
        // Full: the expired entry goes, the live ones stay.
        c.put(4, "new", 1_500, 0);
        assert_eq!(c.len(), 3);
        assert_eq!(c.get(&1, 1_500), None);
        assert_eq!(c.get(&2, 1_500), Some("new"));
        // Full of live entries: all go.
        c.put(5, "newest", 1_600, 0);
        assert_eq!(c.len(), 1);
        assert_eq!(c.get(&5, 1_600), Some("newest"));
        // Replacing a key in a full cache keeps the others.
        let mut d = TtlCache::new(1_000, 2);
        d.put(1, "a", 0, 0);
        d.put(2, "b", 0, 0);
        d.put(2, "c", 10, 0);
        assert_eq!(
            (d.len(), d.get(&1, 10), d.get(&2, 10)),
            (2, Some("a"), Some("c"))
        );
    }
}
