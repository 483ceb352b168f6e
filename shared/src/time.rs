//! Timestamps as the contract writes them: RFC 3339, UTC, milliseconds (`2026-11-25T13:14:50.123Z`).
//!
//! Fixed-width strings sort like the instants they name, which the inbox index relies on.

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

impl Timestamp {
    pub fn now() -> Self {
        Self::from_unix_millis(unix_millis(OffsetDateTime::now_utc()))
    }

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
    fn ttl_seconds_and_addition() {
        let t = Timestamp::from_unix_millis(10_500);
        assert_eq!(t.unix_seconds(), 10);
        assert_eq!(t.plus_seconds(60).unix_millis(), 70_500);
    }
}
