//! # lunas-core
//!
//! The domain of lunas with no I/O: a transaction's record, what a provider message says about
//! it (a [`Fact`]), the transition rules that turn the two into a new record and events
//! ([`decide`]), and the JSON shapes of transactions and events.
//!
//! The store calls [`decide`] inside its write transaction, so the rules are applied to the
//! committed state and their result is committed atomically with the observation and events.

pub mod delivery;
pub mod model;
pub mod order;
pub mod rate;
pub mod transition;

pub use delivery::*;
pub use model::*;
pub use order::*;
pub use transition::{decide, give_up, resolve, Decision, Resolution};
