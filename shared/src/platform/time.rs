//! Timestamps as the contract writes them: RFC 3339, UTC, milliseconds (`2026-11-25T13:14:50.123Z`).
//!
//! Fixed-width strings sort like the instants they name, which the inbox index relies on.
//!
//! **One clock.** Every comparison with "now" (TTLs, tickets, idempotency windows, token expiry,
//! analytics windows) reads a [`Clock`], built once per process from `CHAT_CLOCK_OFFSET` and
//! handed to what needs it, so a test can move a whole process (or one service call) in time.
//! Only the application's clock moves: SDK request signing, Redis's `TIME` and the emulators keep
//! real time.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::format_description::FormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

const FORMAT: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

/// An instant with millisecond precision, always UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(OffsetDateTime);

/// The application's clock: real time moved by a fixed offset (none in production).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Clock {
    offset_ms: i64,
}

impl Clock {
    /// `CHAT_CLOCK_OFFSET`: how far the application clock runs ahead of real time (behind when
    /// negative), as seconds or with a unit: `90`, `90s`, `15m`, `2h`, `365d`, `-1d`.
    pub const OFFSET_ENV: &'static str = "CHAT_CLOCK_OFFSET";

    /// Real time.
    pub const fn system() -> Self {
        Self { offset_ms: 0 }
    }

    /// Real time moved by `offset_ms` milliseconds.
    pub const fn offset_by(offset_ms: i64) -> Self {
        Self { offset_ms }
    }

    /// The clock of this process: real time moved by `CHAT_CLOCK_OFFSET`, if set.
    pub fn from_env<F: Fn(&str) -> Option<String>>(
        env: &crate::platform::config::Env<F>,
    ) -> Result<Self, crate::platform::config::ConfigError> {
        match env.optional(Self::OFFSET_ENV) {
            None => Ok(Self::system()),
            Some(raw) => parse_offset_ms(&raw)
                .map(Self::offset_by)
                .map_err(|reason| crate::platform::config::ConfigError::Invalid {
                    name: Self::OFFSET_ENV,
                    reason,
                }),
        }
    }

    /// This clock moved `seconds` further (tests: "a minute later").
    pub const fn later_by(self, seconds: i64) -> Self {
        Self::offset_by(self.offset_ms.saturating_add(seconds.saturating_mul(1000)))
    }

    pub const fn offset_ms(self) -> i64 {
        self.offset_ms
    }

    pub fn now(self) -> Timestamp {
        Timestamp::from_unix_millis(
            unix_millis(OffsetDateTime::now_utc()).saturating_add(self.offset_ms),
        )
    }
}

/// `90`, `90s`, `15m`, `2h`, `365d`, with an optional sign, in milliseconds.
fn parse_offset_ms(raw: &str) -> Result<i64, String> {
    const FORM: &str = "seconds, or a number with s, m, h or d (e.g. 365d, -2h)";
    let (number, unit_seconds) = match raw.char_indices().last() {
        Some((i, 's')) => (&raw[..i], 1),
        Some((i, 'm')) => (&raw[..i], 60),
        Some((i, 'h')) => (&raw[..i], 3_600),
        Some((i, 'd')) => (&raw[..i], 86_400),
        _ => (raw, 1),
    };
    let count: i64 = number.trim().parse().map_err(|_| FORM.to_owned())?;
    count
        .checked_mul(unit_seconds * 1_000)
        // Beyond a thousand years the timestamps would leave the years they can hold.
        .filter(|ms| ms.unsigned_abs() <= 1_000 * 366 * 86_400_000)
        .ok_or_else(|| "an offset of at most 1000 years".to_owned())
}

impl Timestamp {
    /// From milliseconds since the Unix epoch; out-of-range values saturate to the epoch.
    pub fn from_unix_millis(millis: i64) -> Self {
        let nanos = i128::from(millis) * 1_000_000;
        Self(OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(OffsetDateTime::UNIX_EPOCH))
    }

    pub fn unix_millis(self) -> i64 {
        unix_millis(self.0)
    }

    /// Whole seconds since the epoch: the unit of DynamoDB's TTL attribute.
    pub fn unix_seconds(self) -> i64 {
        self.0.unix_timestamp()
    }

    pub fn plus_seconds(self, seconds: i64) -> Self {
        Self::from_unix_millis(
            self.unix_millis()
                .saturating_add(seconds.saturating_mul(1000)),
        )
    }

    /// Parses the contract's format (any RFC 3339 offset is accepted and converted to UTC).
    pub fn parse(raw: &str) -> Result<Self, time::error::Parse> {
        let parsed = OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339)?;
        // An offset can move the instant out of the years a timestamp holds (`to_offset` would
        // panic there): refused like any other date out of range.
        let utc = parsed
            .checked_to_offset(UtcOffset::UTC)
            .ok_or_else(out_of_range)?;
        Ok(Self::from_unix_millis(unix_millis(utc)))
    }
}

/// The parse error of a date out of range (year 10000 is one).
fn out_of_range() -> time::error::Parse {
    use time::error::{Parse, TryFromParsed};
    match time::Date::from_calendar_date(10_000, time::Month::January, 1) {
        Err(range) => Parse::TryFromParsed(TryFromParsed::ComponentRange(range)),
        // Only with the `large-dates` feature, which this crate does not use.
        Ok(_) => Parse::TryFromParsed(TryFromParsed::InsufficientInformation),
    }
}

fn unix_millis(t: OffsetDateTime) -> i64 {
    // i128 nanoseconds of any representable date fit in i64 milliseconds.
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.format(FORMAT) {
            Ok(s) => f.write_str(&s),
            Err(_) => Err(fmt::Error),
        }
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_with_milliseconds() {
        let t = Timestamp::from_unix_millis(1_795_612_490_123);
        assert_eq!(t.to_string(), "2026-11-25T13:14:50.123Z");
        assert_eq!(
            Timestamp::from_unix_millis(0).to_string(),
            "1970-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn parses_other_offsets_into_utc_and_round_trips() {
        let t = Timestamp::parse("2026-11-25T14:14:50.123+01:00").unwrap();
        assert_eq!(t.to_string(), "2026-11-25T13:14:50.123Z");
        assert_eq!(Timestamp::parse(&t.to_string()).unwrap(), t);
        assert!(Timestamp::parse("yesterday").is_err());
    }

    #[test]
    fn an_offset_that_leaves_the_years_is_refused_not_a_panic() {
        let late = "9999-12-31T23:59:59.999-01:00";
        let parsed =
            OffsetDateTime::parse(late, &time::format_description::well_known::Rfc3339).unwrap();
        assert!(
            parsed.checked_to_offset(UtcOffset::UTC).is_none(),
            "to_offset would panic"
        );
        assert!(Timestamp::parse(late).is_err());
        let last = Timestamp::parse("9999-12-31T23:59:59.999Z").unwrap();
        assert_eq!(last.to_string(), "9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn string_order_is_time_order() {
        let a = Timestamp::from_unix_millis(999);
        let b = Timestamp::from_unix_millis(1_000);
        assert!(a < b);
        assert!(a.to_string() < b.to_string());
    }

    #[test]
    fn the_clock_runs_ahead_by_its_offset() {
        let env = |value: &'static str| {
            crate::platform::config::Env::new(move |name: &str| {
                (name == Clock::OFFSET_ENV).then(|| value.to_owned())
            })
        };
        let real = Clock::system().now();
        let year = Clock::from_env(&env("365d")).unwrap();
        assert_eq!(year.offset_ms(), 365 * 86_400_000);
        let ahead = year.now().unix_millis() - real.unix_millis();
        assert!(
            (365 * 86_400_000..366 * 86_400_000).contains(&ahead),
            "{ahead}"
        );
        assert_eq!(Clock::from_env(&env("-90")).unwrap().offset_ms(), -90_000);
        assert_eq!(Clock::from_env(&env("15m")).unwrap().offset_ms(), 900_000);
        assert_eq!(Clock::from_env(&env("2h")).unwrap().offset_ms(), 7_200_000);
        assert_eq!(Clock::from_env(&env(" ")).unwrap(), Clock::system());
        for bad in ["soon", "1y", "d", "400000d", "1.5h"] {
            assert!(Clock::from_env(&env(bad)).is_err(), "{bad}");
        }
        assert_eq!(year.later_by(60).offset_ms(), year.offset_ms() + 60_000);
    }

    #[test]
    fn ttl_seconds_and_addition() {
        let t = Timestamp::from_unix_millis(10_500);
        assert_eq!(t.unix_seconds(), 10);
        assert_eq!(t.plus_seconds(60).unix_millis(), 70_500);
    }
}
