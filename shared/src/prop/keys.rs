//! The key layout (`shared/src/adapters/store/keys.rs`): escaping keeps ids apart, so no two users, pairs or
//! idempotency keys can share a key, whatever their ids hold.

use proptest::prelude::*;

use super::{CASES, cases, text_near};
use crate::adapters::store::keys;
use crate::domain::{ClientMessageId, ConversationId, UserId};

fn user() -> impl Strategy<Value = UserId> {
    prop_oneof!["[a#%|2-3]{1,6}", text_near(6)].prop_filter_map("a user id", |raw| raw.parse().ok())
}

proptest! {
    #![proptest_config(cases(CASES))]

    #[test]
    fn escaping_is_injective_and_leaves_no_separator(a in "[a#%2-3]{0,8}", b in "[a#%2-3]{0,8}") {
        let (ea, eb) = (keys::escape(&a), keys::escape(&b));
        prop_assert!(!ea.contains('#'));
        prop_assert_eq!(ea == eb, a == b, "{:?} {:?}", a, b);
    }

    #[test]
    fn different_users_and_pairs_never_share_a_key(a in user(), b in user(), c in user(), d in user()) {
        prop_assert_eq!(keys::user_pk(&a) == keys::user_pk(&b), a == b);
        let id: ConversationId = "01JDQ7Z8K3M4N5P6Q7R8S9T0VW".parse().unwrap();
        prop_assert_eq!(keys::membership(&id, &a) == keys::membership(&id, &b), a == b);
        let same_pair = (a == c && b == d) || (a == d && b == c);
        prop_assert_eq!(keys::direct_pair(&a, &b) == keys::direct_pair(&c, &d), same_pair);
        let cmid: ClientMessageId = "c-1".parse().unwrap();
        prop_assert_eq!(
            keys::idempotency(&id, &a, &cmid) == keys::idempotency(&id, &b, &cmid),
            a == b
        );
        prop_assert_ne!(keys::self_conversation(&a), keys::direct_pair(&a, &b));
    }

    #[test]
    fn message_keys_sort_by_seq(a in 0..1_000_000_000_000u64, b in 0..1_000_000_000_000u64) {
        let id = ConversationId::generate();
        prop_assert_eq!(keys::message(&id, a).sk.cmp(&keys::message(&id, b).sk), a.cmp(&b));
    }
}
