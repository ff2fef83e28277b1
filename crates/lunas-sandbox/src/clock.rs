//! The sandbox's notion of "now", injectable so that callback delays, retries and VA expiry
//! can be tested by moving a manual clock instead of sleeping.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use time::format_description::FormatItem;
use time::macros::{format_description, offset};
use time::{OffsetDateTime, UtcOffset};

/// Western Indonesia Time, the offset every provider writes its times in.
pub const WIB: UtcOffset = offset!(+7);

const MCP_TIME: &[FormatItem<'static>] = format_description!(
    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3][offset_hour sign:mandatory]:[offset_minute]"
);
const IAK_DATETIME: &[FormatItem<'static>] =
    format_description!("[year][month][day][hour][minute][second]");
const DATE: &[FormatItem<'static>] = format_description!("[year]-[month]-[day]");

/// A source of the current time: the system clock, or a manual one that only moves when told.
#[derive(Clone, Debug)]
pub struct Clock(Arc<ClockKind>);

#[derive(Debug)]
enum ClockKind {
    System,
    Manual(Mutex<OffsetDateTime>),
}

impl Default for Clock {
    fn default() -> Self {
        Clock::system()
    }
}

impl Clock {
    /// The real time.
    pub fn system() -> Self {
        Clock(Arc::new(ClockKind::System))
    }

    /// A clock that stands at `start` until [`Clock::advance`] or [`Clock::set`] moves it.
    pub fn manual(start: OffsetDateTime) -> Self {
        Clock(Arc::new(ClockKind::Manual(Mutex::new(start))))
    }

    pub fn now(&self) -> OffsetDateTime {
        match &*self.0 {
            ClockKind::System => OffsetDateTime::now_utc(),
            ClockKind::Manual(t) => *t.lock().unwrap_or_else(|e| e.into_inner()),
        }
    }

    /// Moves a manual clock forward; returns `false` (and does nothing) on the system clock.
    pub fn advance(&self, by: Duration) -> bool {
        match &*self.0 {
            ClockKind::System => false,
            ClockKind::Manual(t) => {
                let mut t = t.lock().unwrap_or_else(|e| e.into_inner());
                *t += by;
                true
            }
        }
    }

    /// Sets a manual clock; returns `false` (and does nothing) on the system clock.
    pub fn set(&self, to: OffsetDateTime) -> bool {
        match &*self.0 {
            ClockKind::System => false,
            ClockKind::Manual(t) => {
                *t.lock().unwrap_or_else(|e| e.into_inner()) = to;
                true
            }
        }
    }

    pub fn is_manual(&self) -> bool {
        matches!(&*self.0, ClockKind::Manual(_))
    }
}

/// MCPayment's time format: `2021-04-28T10:06:20.592+07:00`.
pub fn mcp_time(t: OffsetDateTime) -> String {
    t.to_offset(WIB)
        .format(MCP_TIME)
        .unwrap_or_else(|_| String::new())
}

/// IAK postpaid's `datetime`: `YmdHis` in WIB, e.g. `20180803171608`.
pub fn iak_datetime(t: OffsetDateTime) -> String {
    t.to_offset(WIB)
        .format(IAK_DATETIME)
        .unwrap_or_else(|_| String::new())
}

/// A WIB calendar date, `2018-12-07`.
pub fn date(t: OffsetDateTime) -> String {
    t.to_offset(WIB)
        .format(DATE)
        .unwrap_or_else(|_| String::new())
}

/// RFC 3339 in UTC, for the inspection log.
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.to_offset(UtcOffset::UTC)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| String::new())
}

/// Parses an ISO-8601 / RFC 3339 time as MCPayment writes it.
pub fn parse_time(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text.trim(), &time::format_description::well_known::Rfc3339).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn formats_match_the_documents() {
        let t = datetime!(2021-04-28 03:06:20.592 UTC);
        assert_eq!(mcp_time(t), "2021-04-28T10:06:20.592+07:00");
        assert_eq!(iak_datetime(t), "20210428100620");
        assert_eq!(
            parse_time("2021-04-28T10:06:20.592+07:00"),
            Some(t.to_offset(WIB))
        );
        assert_eq!(parse_time("yesterday"), None);
    }

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let c = Clock::manual(datetime!(2024-01-01 00:00 UTC));
        assert_eq!(c.now(), datetime!(2024-01-01 00:00 UTC));
        assert!(c.advance(Duration::from_secs(90)));
        assert_eq!(c.now(), datetime!(2024-01-01 00:01:30 UTC));
        assert!(!Clock::system().advance(Duration::from_secs(1)));
    }
}
