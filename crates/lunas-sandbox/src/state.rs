//! The sandbox's in-memory world: each account's deposit and transactions, the outbox of
//! scheduled work, the random source and the log. One [`State`] sits behind one mutex, which is
//! never held across an `.await`.

use std::collections::{BTreeMap, HashMap};

use lunas_protocol::iak::postpaid::PostpaidStatus;
use lunas_protocol::iak::prepaid::PrepaidStatus;
use lunas_protocol::mcp::{Address, CustomerDetails, ItemDetail, PaymentSystem, TransactionStatus};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use time::OffsetDateTime;

use crate::callbacks::Delivery;
use crate::catalogue::Biller;
use crate::config::Account;
use crate::log::Log;
use crate::scenario::{PaymentOutcome, PrepaidOutcome};

/// Everything the sandbox remembers.
#[derive(Debug)]
pub(crate) struct State {
    pub rng: ChaCha8Rng,
    pub next_prepaid_tr_id: i64,
    pub next_postpaid_tr_id: i64,
    next_job: u64,
    next_payment: u64,
    pub accounts: Vec<AccountState>,
    /// Scheduled work, in the order it falls due.
    pub outbox: BTreeMap<(OffsetDateTime, u64), Job>,
    pub log: Log,
}

/// Work the sandbox does later, by itself.
#[derive(Debug, Clone)]
pub(crate) enum Job {
    /// A production top-up reaches its outcome (and its callbacks are planned).
    Finalize { account: usize, ref_id: String },
    /// One callback attempt.
    Deliver(Delivery),
}

impl State {
    pub fn new(seed: u64, accounts: &[Account]) -> Self {
        State {
            rng: ChaCha8Rng::seed_from_u64(seed),
            next_prepaid_tr_id: 6_159_301,
            next_postpaid_tr_id: 9_732_795,
            next_job: 0,
            next_payment: 0,
            accounts: accounts
                .iter()
                .map(|a| AccountState {
                    balance: a.deposit,
                    ..AccountState::default()
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

    pub fn next_prepaid_tr_id(&mut self) -> i64 {
        let id = self.next_prepaid_tr_id;
        self.next_prepaid_tr_id += 1;
        id
    }

    pub fn next_postpaid_tr_id(&mut self) -> i64 {
        let id = self.next_postpaid_tr_id;
        self.next_postpaid_tr_id += 1;
        id
    }

    /// A payment reference, unique within the sandbox.
    pub fn next_payment_reference(&mut self) -> String {
        self.next_payment += 1;
        let noise: u32 = self.rng.gen_range(0..10_000);
        format!("SBX{:08}{noise:04}", self.next_payment)
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

    /// A version-4-shaped UUID, as MCPayment's transaction ids are.
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
#[derive(Debug, Default)]
pub(crate) struct AccountState {
    /// The deposit, in rupiah.
    pub balance: i64,
    /// Prepaid top-ups by `ref_id`.
    pub prepaid: HashMap<String, PrepaidTx>,
    /// Postpaid inquiries by `ref_id`.
    pub postpaid: HashMap<String, PostpaidTx>,
    /// Postpaid `tr_id` → `ref_id`.
    pub postpaid_by_tr: HashMap<i64, String>,
    /// Virtual accounts by `external_id`.
    pub vas: HashMap<String, Va>,
    /// Check-status calls answered so far (for the check-status fault counts).
    pub check_status_calls: u32,
    /// Order requests received so far (for the order fault counts).
    pub order_calls: u32,
}

/// What a successful top-up delivered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Delivered {
    pub sn: Option<String>,
    pub pin: Option<String>,
    pub activation_code: Option<String>,
}

/// A prepaid top-up.
#[derive(Debug, Clone)]
pub(crate) struct PrepaidTx {
    pub ref_id: String,
    pub customer_id: String,
    pub product_code: String,
    pub price: i64,
    pub tr_id: i64,
    pub status: PrepaidStatus,
    pub rc: String,
    /// How it ends when nobody intervenes.
    pub outcome: PrepaidOutcome,
    pub delivered: Delivered,
    /// When the top-up was received.
    pub created_at: OffsetDateTime,
}

/// One period of a postpaid bill.
#[derive(Debug, Clone)]
pub(crate) struct BillPeriod {
    /// `YYYYMM`.
    pub yyyymm: String,
    /// `MAR 2021`.
    pub label: String,
}

/// A postpaid inquiry and, once made, its payment.
#[derive(Debug, Clone)]
pub(crate) struct PostpaidTx {
    pub ref_id: String,
    pub tr_id: i64,
    pub biller: &'static Biller,
    pub hp: String,
    pub tr_name: String,
    pub periods: Vec<BillPeriod>,
    pub payment: PaymentOutcome,
    pub status: PostpaidStatus,
    pub response_code: String,
    pub paid_at: Option<OffsetDateTime>,
    pub noref: Option<String>,
    /// When the inquiry was made.
    pub created_at: OffsetDateTime,
}

impl PostpaidTx {
    pub fn bills(&self) -> i64 {
        i64::try_from(self.periods.len()).unwrap_or(i64::MAX)
    }

    pub fn nominal(&self) -> i64 {
        self.biller.bill.saturating_mul(self.bills())
    }

    pub fn admin(&self) -> i64 {
        self.biller.admin.saturating_mul(self.bills())
    }

    /// What the customer pays: `nominal + admin`.
    pub fn price(&self) -> i64 {
        self.nominal().saturating_add(self.admin())
    }

    /// What the deposit is debited: `price` less the commission.
    pub fn selling_price(&self) -> i64 {
        self.price()
            .saturating_sub(self.biller.commission.saturating_mul(self.bills()))
    }
}

/// One payment into a virtual account.
#[derive(Debug, Clone)]
pub(crate) struct VaPayment {
    pub amount: i64,
    pub at: OffsetDateTime,
    pub reference_id: String,
}

/// An MCPayment virtual account.
#[derive(Debug, Clone)]
pub(crate) struct Va {
    pub transaction_id: String,
    pub external_id: String,
    pub order_id: String,
    pub channel: String,
    pub system: PaymentSystem,
    pub multi_use: bool,
    /// The amount due (CLOSED: each payment; PARTIAL: the total; OPEN: 0).
    pub amount: i64,
    pub billing_name: String,
    pub va_number: String,
    pub description: String,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub status: TransactionStatus,
    pub payments: Vec<VaPayment>,
    pub customer: CustomerDetails,
    pub items: Option<Vec<ItemDetail>>,
    pub billing_address: Option<Address>,
    pub callback_url: Option<String>,
    pub additional_data: Option<String>,
}

impl Va {
    pub fn total_paid(&self) -> i64 {
        self.payments
            .iter()
            .fold(0i64, |acc, p| acc.saturating_add(p.amount))
    }

    /// Whether a payment can still be made (time aside).
    pub fn payable(&self) -> bool {
        match self.status {
            TransactionStatus::Active => true,
            TransactionStatus::Paid => self.multi_use && self.system != PaymentSystem::Partial,
            _ => false,
        }
    }
}
