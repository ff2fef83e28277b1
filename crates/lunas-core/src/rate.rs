//! Token buckets: how many calls a provider is asked per minute, and rate limits keyed by who
//! or what (refusals kept as evidence per provider and kind, login attempts per client address,
//! bodies kept of messages that change nothing per provider). The keyed table is bounded, so
//! many keys cannot grow it without limit.

use std::collections::HashMap;
use std::sync::Mutex;

use time::OffsetDateTime;

/// A token bucket, in thousandths of a call: `per_minute` calls a minute, with a burst of as many.
pub struct Bucket {
    milli: u64,
    capacity: u64,
    per_minute: u64,
    last: OffsetDateTime,
}

impl Bucket {
    pub fn new(per_minute: u32, now: OffsetDateTime) -> Self {
        let capacity = u64::from(per_minute) * 1000;
        Bucket {
            milli: capacity,
            capacity,
            per_minute: u64::from(per_minute),
            last: now,
        }
    }

    /// Whole calls available at `now`.
    pub fn available(&mut self, now: OffsetDateTime) -> usize {
        if now > self.last {
            let elapsed_ms = (now - self.last).whole_milliseconds().max(0) as u64;
            self.milli = (self.milli + elapsed_ms * self.per_minute / 60).min(self.capacity);
            self.last = now;
        }
        (self.milli / 1000) as usize
    }

    pub fn take(&mut self, n: usize) {
        self.milli = self.milli.saturating_sub(n as u64 * 1000);
    }
}

/// The most keys a table holds; when full, keys whose buckets are full again are forgotten
/// (forgetting them changes nothing), and if none is, the table starts over.
const MAX_KEYS: usize = 10_000;

pub struct KeyedBuckets {
    per_minute: u32,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl KeyedBuckets {
    /// `per_minute` per key, with a burst of as many.
    pub fn new(per_minute: u32) -> Self {
        KeyedBuckets {
            per_minute,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one from `key`'s bucket; `false` when it is empty.
    pub fn allow(&self, key: &str, now: OffsetDateTime) -> bool {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if !buckets.contains_key(key) && buckets.len() >= MAX_KEYS {
            let per_minute = self.per_minute as usize;
            buckets.retain(|_, b| b.available(now) < per_minute);
            if buckets.len() >= MAX_KEYS {
                buckets.clear();
            }
        }
        let bucket = buckets
            .entry(key.to_owned())
            .or_insert_with(|| Bucket::new(self.per_minute, now));
        if bucket.available(now) == 0 {
            return false;
        }
        bucket.take(1);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_gets_its_burst_then_waits_while_other_keys_go_on() {
        let limits = KeyedBuckets::new(3);
        let t0 = OffsetDateTime::UNIX_EPOCH;
        assert!((0..3).all(|_| limits.allow("a", t0)));
        assert!(!limits.allow("a", t0));
        assert!(limits.allow("b", t0));
        // One more every 20 s at 3 per minute.
        assert!(limits.allow("a", t0 + time::Duration::seconds(20)));
        assert!(!limits.allow("a", t0 + time::Duration::seconds(20)));
    }
}
