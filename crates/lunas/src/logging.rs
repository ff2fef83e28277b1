//! Logs: `tracing` to standard error, filtered by `LUNAS_LOG` (default `info`), as text or, with
//! `LUNAS_LOG_FORMAT=json`, one JSON object per line; colours only when standard error is a
//! terminal. Nothing logs a body, a secret or customer
//! goods: handlers log ids, verdicts and timings only.
//!
//! Some logged values come from outside (a callback's ref, a path): in text logs every control
//! character in a value is written escaped (`\n`, `\u{1b}`), so a value cannot start a forged
//! log line or drive the terminal. JSON logs are escaped by JSON itself.

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
        builder.fmt_fields(escaped_fields()).try_init()
    };
}

/// Text fields as `key=value` (the message bare), control characters escaped.
pub fn escaped_fields() -> impl for<'w> tracing_subscriber::fmt::FormatFields<'w> {
    use tracing_subscriber::field::MakeExt;
    tracing_subscriber::fmt::format::debug_fn(|writer, field, value| {
        let text = format!("{value:?}");
        if field.name() == "message" {
            write!(writer, "{}", escape(&text))
        } else {
            write!(writer, "{}={}", field.name(), escape(&text))
        }
    })
    .delimited(" ")
}

/// `text` with every control character written as an escape.
pub fn escape(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return text.into();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.into()
}

#[cfg(test)]
mod tests {
    #[test]
    fn control_characters_in_values_are_escaped() {
        assert_eq!(super::escape("REF1"), "REF1");
        assert_eq!(
            super::escape("REF1\n2026-12-01 INFO forged\u{1b}[31m"),
            "REF1\\n2026-12-01 INFO forged\\u{1b}[31m"
        );
    }
}
