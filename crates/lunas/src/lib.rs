//! lunas: the transaction-outcome gateway for IAK, IDSL and MCPayment.
//!
//! The binary is a thin shell over this library; see `ARCHITECTURE.md` for the map.

#![recursion_limit = "256"]

pub mod app;
pub mod cli;
pub mod config;
pub mod delivery;
pub mod demo;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod orders;
pub mod providers;
pub mod reconcile;
pub mod retention;
pub mod secrets;
