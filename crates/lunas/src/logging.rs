//! Logs: `tracing` to standard error, filtered by `LUNAS_LOG` (default `info`), as text or, with
//! `LUNAS_LOG_FORMAT=json`, one JSON object per line; colours only when standard error is a
//! terminal. Nothing logs a body, a secret or customer
//! goods: handlers log ids, verdicts and timings only.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber once; later calls are no-ops.
pub fn init() {
    let filter = EnvFilter::try_from_env("LUNAS_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("LUNAS_LOG_FORMAT").is_ok_and(|v| v == "json");
    // Colours only for a person at a terminal, never in a file or a log shipper.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
