//! The sandbox's in-memory world: each account's deposit, fault counters and transactions (the
//! latter kept by its family, see [`Held`]), the outbox of scheduled work, numbered sequences,
//! the random source and the log. One [`State`] sits behind one mutex, which is never held
//! across an `.await`.

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use time::OffsetDateTime;

use crate::callbacks::Delivery;
use crate::config::Account;
use crate::log::Log;
use crate::providers::Held;

/// Everything the sandbox remembers.
#[derive(Debug)]
pub(crate) struct State {
    pub rng: ChaCha8Rng,
    /// The last number each sequence gave ([`State::next_in`]).
    sequences: BTreeMap<&'static str, i64>,
    next_job: u64,
    pub accounts: Vec<AccountState>,
    /// Scheduled work, in the order it falls due.
    pub outbox: BTreeMap<(OffsetDateTime, u64), Job>,
    pub log: Log,
}

/// Work the sandbox does later, by itself.
#[derive(Debug, Clone)]
pub(crate) enum Job {
    /// A transaction reaches its outcome by itself (a production top-up), and its callbacks
    /// are planned; its account's family says how.
    Finalize { account: usize, ref_id: String },
    /// One callback attempt.
    Deliver(Delivery),
}

impl State {
    pub fn new(seed: u64, accounts: &[Account]) -> Self {
        State {
            rng: ChaCha8Rng::seed_from_u64(seed),
            sequences: BTreeMap::new(),
            next_job: 0,
            accounts: accounts
                .iter()
                .map(|a| AccountState {
                    balance: a.deposit,
                    check_status_calls: 0,
                    order_calls: 0,
                    held: a.kind.family().new_held(),
                })
                .collect(),
            outbox: BTreeMap::new(),
            log: Log::default(),
        }
    }

    pub fn schedule(&mut self, due: OffsetDateTime, job: Job) {
        self.next_job += 1;
        self.outbox.insert((due, self.next_job), job);
    }

    /// Removes and returns the jobs due at `now`, oldest first.
    pub fn take_due(&mut self, now: OffsetDateTime, finalize_only: bool) -> Vec<Job> {
        let keys: Vec<_> = self
            .outbox
            .iter()
            .take_while(|((due, _), _)| *due <= now)
            .filter(|(_, job)| !finalize_only || matches!(job, Job::Finalize { .. }))
            .map(|(k, _)| *k)
            .collect();
        keys.into_iter()
            .filter_map(|k| self.outbox.remove(&k))
            .collect()
    }

    /// When the next scheduled job falls due.
    pub fn next_due(&self) -> Option<OffsetDateTime> {
        self.outbox.keys().next().map(|(due, _)| *due)
    }

    /// The next number of the sequence `name` (a family's `tr_id`s, say): `first`, then one
    /// more each time, shared by every account.
    pub fn next_in(&mut self, name: &'static str, first: i64) -> i64 {
        let next = match self.sequences.get(name) {
            Some(last) => last.saturating_add(1),
            None => first,
        };
        self.sequences.insert(name, next);
        next
    }

    /// `n` random decimal digits.
    pub fn digits(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b'0' + self.rng.gen_range(0..10u8)))
            .collect()
    }

    /// `n` random capital letters.
    pub fn letters(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b'A' + self.rng.gen_range(0..26u8)))
            .collect()
    }

    /// `n` random capital letters and digits.
    pub fn alphanumeric(&mut self, n: usize) -> String {
        const SET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
        (0..n)
            .map(|_| char::from(SET[self.rng.gen_range(0..SET.len())]))
            .collect()
    }

    /// A version-4-shaped UUID (MCPayment's transaction ids are such).
    pub fn uuid(&mut self) -> String {
        let mut b: [u8; 16] = self.rng.gen();
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let h = hex::encode(b);
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }
}

/// One account's world.
#[derive(Debug)]
pub(crate) struct AccountState {
    /// The deposit, in rupiah.
    pub balance: i64,
    /// Check-status calls answered so far (for the check-status fault counts).
    pub check_status_calls: u32,
    /// Order requests received so far (for the order fault counts).
    pub order_calls: u32,
    /// The account's transactions, as its family keeps them.
    pub held: Box<dyn Held>,
}
