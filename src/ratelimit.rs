//! Token buckets for messages and bytes. Time comes in as milliseconds.

/// A token bucket: `rate` tokens per second, holding at most `burst`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last_ms: u64,
}

impl Bucket {
    /// A full bucket.
    pub fn new(rate: f64, burst: f64, now_ms: u64) -> Self {
        Bucket {
            rate,
            burst,
            tokens: burst,
            last_ms: now_ms,
        }
    }

    /// Takes `cost` tokens if the bucket holds them, after refilling for the time passed.
    pub fn take(&mut self, cost: f64, now_ms: u64) -> bool {
        let elapsed = now_ms.saturating_sub(self.last_ms) as f64 / 1000.0;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last_ms = now_ms.max(self.last_ms);
        if self.tokens >= cost {
            self.tokens -= cost;
            true
        } else {
            false
        }
    }
}

/// Rates for one connection; a user (all connections of one `sub` in a room) gets
/// [`USER_MULTIPLIER`] times as much.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rates {
    /// Messages per second, sustained.
    pub messages_per_second: f64,
    /// Messages allowed in a burst.
    pub message_burst: f64,
    /// Bytes per second, sustained.
    pub bytes_per_second: f64,
    /// Bytes allowed in a burst.
    pub byte_burst: f64,
}

/// How many connections' worth of traffic one user may send into a room.
pub const USER_MULTIPLIER: f64 = 4.0;

impl Default for Rates {
    fn default() -> Self {
        Rates {
            messages_per_second: 200.0,
            message_burst: 1000.0,
            bytes_per_second: 1024.0 * 1024.0,
            byte_burst: 16.0 * 1024.0 * 1024.0,
        }
    }
}

/// The pair of buckets (messages, bytes) of one sender.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Meter {
    messages: Bucket,
    bytes: Bucket,
}

impl Meter {
    /// A full meter at `scale` times `rates`.
    pub fn new(rates: &Rates, scale: f64, now_ms: u64) -> Self {
        Meter {
            messages: Bucket::new(
                rates.messages_per_second * scale,
                rates.message_burst * scale,
                now_ms,
            ),
            bytes: Bucket::new(
                rates.bytes_per_second * scale,
                rates.byte_burst * scale,
                now_ms,
            ),
        }
    }

    /// Charges a frame of `messages` messages and `len` bytes; false when either budget is
    /// spent. Messages are counted one by one, so a frame packing several costs as much as
    /// sending them apart.
    pub fn charge(&mut self, messages: usize, len: usize, now_ms: u64) -> bool {
        // Take from both so a refused message still costs; a flood stays refused.
        let m = self.messages.take(messages as f64, now_ms);
        let b = self.bytes.take(len as f64, now_ms);
        m && b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_burst_then_rate() {
        let mut b = Bucket::new(10.0, 5.0, 0);
        assert!((0..5).all(|_| b.take(1.0, 0)));
        assert!(!b.take(1.0, 0));
        assert!(b.take(1.0, 100), "100 ms at 10/s refills one");
        assert!(!b.take(1.0, 100));
        assert!(
            (0..5).all(|_| b.take(1.0, 10_000)),
            "refills to burst, no more"
        );
        assert!(!b.take(1.0, 10_000));
    }

    #[test]
    fn meter_limits_bytes_as_well_as_messages() {
        let rates = Rates {
            messages_per_second: 1000.0,
            message_burst: 1000.0,
            bytes_per_second: 100.0,
            byte_burst: 100.0,
        };
        let mut m = Meter::new(&rates, 1.0, 0);
        assert!(m.charge(1, 60, 0));
        assert!(!m.charge(1, 60, 0));
        let mut user = Meter::new(&rates, USER_MULTIPLIER, 0);
        assert!(user.charge(1, 350, 0));
    }

    #[test]
    fn meter_counts_every_message_of_a_frame() {
        let rates = Rates {
            messages_per_second: 1.0,
            message_burst: 10.0,
            bytes_per_second: 1e9,
            byte_burst: 1e9,
        };
        let mut m = Meter::new(&rates, 1.0, 0);
        assert!(m.charge(8, 100, 0));
        assert!(!m.charge(3, 100, 0), "11 messages over a burst of 10");
    }
}
