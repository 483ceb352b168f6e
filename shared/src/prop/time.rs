//! Timestamps (`shared/src/platform/time.rs`): any text parses or is refused without a panic, any number of
//! milliseconds makes a timestamp, and in the years the contract writes (0000 to 9999) the text
//! round-trips and sorts as the instant does.

use proptest::prelude::*;

use super::{CASES, cases, text_near};
use crate::platform::time::Timestamp;

/// The first and last millisecond of years 0000 to 9999.
const MIN_MILLIS: i64 = -62_167_219_200_000;
const MAX_MILLIS: i64 = 253_402_300_799_999;

fn contract_form(raw: &str) -> bool {
    // `YYYY-MM-DDTHH:MM:SS.mmmZ`
    let b = raw.as_bytes();
    b.len() == 24
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'.',
            23 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

proptest! {
    #![proptest_config(cases(CASES))]

    #[test]
    fn any_text_parses_or_is_refused(raw in prop_oneof![
        text_near(24),
        // At the ends of the range an offset moves the instant past year 9999 or before 0000.
        ("(9999-12-31T2[0-3]|0000-01-01T0[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{3})?", "[+-]", 0..24u8, 0..60u8)
            .prop_map(|(t, sign, h, m)| format!("{t}{sign}{h:02}:{m:02}")),
        "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})",
        any::<String>(),
    ]) {
        if let Ok(t) = Timestamp::parse(&raw) {
            // Whatever was parsed is written in the contract's form, and reads back as itself.
            let text = t.to_string();
            prop_assert!(contract_form(&text) || text.starts_with(['-', '+']), "{}", text);
            if contract_form(&text) {
                prop_assert_eq!(Timestamp::parse(&text).unwrap(), t);
            }
        }
    }

    #[test]
    fn any_millis_make_a_timestamp(millis in any::<i64>(), seconds in any::<i64>()) {
        let t = Timestamp::from_unix_millis(millis);
        let _ = t.to_string();
        let later = t.plus_seconds(seconds);
        let _ = later.to_string();
        let _ = (t.unix_seconds(), later.unix_millis());
        if (MIN_MILLIS..=MAX_MILLIS).contains(&millis) {
            prop_assert_eq!(t.unix_millis(), millis);
        } else {
            // Past what a timestamp can hold, it saturates to the epoch.
            prop_assert!(t.unix_millis() == millis || t.unix_millis() == 0);
        }
    }

    #[test]
    fn contract_text_round_trips_and_sorts_as_time(a in 0..=MAX_MILLIS, b in 0..=MAX_MILLIS) {
        let (ta, tb) = (Timestamp::from_unix_millis(a), Timestamp::from_unix_millis(b));
        let (sa, sb) = (ta.to_string(), tb.to_string());
        prop_assert!(contract_form(&sa), "{}", sa);
        prop_assert_eq!(Timestamp::parse(&sa).unwrap(), ta);
        prop_assert_eq!(a.cmp(&b), sa.cmp(&sb));
        let json = serde_json::to_string(&ta).unwrap();
        prop_assert_eq!(serde_json::from_str::<Timestamp>(&json).unwrap(), ta);
    }
}
