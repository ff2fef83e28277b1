//! Rate limits keyed by who or what: refusals kept as evidence per provider and kind, login
//! attempts per client address. Each key has a token bucket ([`crate::reconcile::Bucket`]);
//! the table is bounded, so many keys cannot grow it without limit.

use std::collections::HashMap;
use std::sync::Mutex;

use time::OffsetDateTime;

use crate::reconcile::Bucket;

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
