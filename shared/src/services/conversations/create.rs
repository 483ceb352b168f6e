//! `POST /conversations`.
//!
//! - `direct` and `self` are unique: a claim item (`DIRECT#a#b` or `SELF#u`) is written with
//!   `attribute_not_exists` in the same transaction as the conversation, so concurrent creates of
//!   the same pair end with one conversation; the losers read the winner's and answer 200.
//! - A group is always new. With `clientRequestId` a claim item (`CREQ#u#id`, 24 h) is written
//!   first; a retry finds it, finishes what may be unfinished, and answers 200 with the same group.
//! - Up to 48 other members fit one transaction with `META`. A larger group writes its members and
//!   inbox entries first, in batches, and `META` last with `attribute_not_exists`: readers ignore
//!   what has no `META`, so the group appears whole or not at all.

use std::collections::HashMap;

use serde::Deserialize;

use super::model::{
    ClaimItem, Conversation, InboxItem, Kind, MAX_MEMBERS, MemberItem, MetaItem, Role,
    SMALL_GROUP_MEMBERS,
};
use super::read::load_member_view;
use crate::adapters::store::keys;
use crate::adapters::store::retry::{Attempt, lost_race, retrying};
use crate::adapters::store::{Consistency, DynamoStore, Expr, Key, StoreError, Write};
use crate::domain::error::ApiError;
use crate::domain::input::Caller;
use crate::domain::limits::{LimitKind, Quota};
use crate::domain::{ClientRequestId, ConversationId, Title, UserId, ValidationError};
use crate::platform::time::Timestamp;
use crate::services::deps::RouteDeps;
use crate::services::profiles::{self, Profile};

/// How long a `clientRequestId` finds its group.
const REQUEST_ID_SECONDS: i64 = 24 * 3600;
/// Other members that fit one transaction with `META`: with the creator, 1 + 2 × (48 + 1) = 99
/// writes of at most 100 (a membership and an inbox entry each).
const ONE_TRANSACTION_MEMBERS: usize = 48;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateConversation {
    pub participant_ids: Vec<UserId>,
    #[serde(default, deserialize_with = "crate::domain::input::not_null")]
    pub kind: Option<Kind>,
    #[serde(default, deserialize_with = "crate::domain::input::not_null")]
    pub title: Option<Title>,
    #[serde(default, deserialize_with = "crate::domain::input::not_null")]
    pub client_request_id: Option<ClientRequestId>,
}

/// The kind the request asks for, from `kind` or from the number of other participants.
fn decide_kind(asked: Option<Kind>, others: usize) -> Result<Kind, ApiError> {
    let refuse = |m: &str| {
        Err(ApiError::Validation(
            ValidationError::new(m).at("participantIds"),
        ))
    };
    match (asked, others) {
        (None | Some(Kind::SelfNote), 0) => Ok(Kind::SelfNote),
        (Some(Kind::SelfNote), _) => refuse("a self conversation has no other participant"),
        (None | Some(Kind::Direct), 1) => Ok(Kind::Direct),
        (Some(Kind::Direct), _) => {
            refuse("a direct conversation has exactly one other participant")
        }
        (Some(Kind::Group), 0) => refuse("a group needs at least one other participant"),
        (None | Some(Kind::Group), _) => Ok(Kind::Group),
    }
}

/// The outcome: the conversation, whether this request made it (201) or found it (200), and the
/// caller's allowance it counted against (creation's, or the default limit's for a lookup).
#[derive(Debug)]
pub struct Created {
    pub conversation: Conversation,
    pub new: bool,
    pub quota: Quota,
}

/// `POST /conversations`, under the creation limit. Every request that tries to create counts
/// against it, refused ones too (a 400, a 409, 422 `unknown_users`): otherwise a refused creation
/// would probe which user ids exist for free. A lookup (the direct or self conversation exists,
/// or a retried `clientRequestId` finds its group) counts against the default limit instead, so
/// reaching the creation limit never stops anyone opening a chat they have. A request refused by
/// the limit (429) counts nothing; neither does one that fails on the server's side (5xx).
///
/// A direct or self request refused by the creation limit first waits briefly for a concurrent
/// creation of the same conversation to land, and is a lookup if it does.
pub async fn create(
    deps: &RouteDeps,
    caller: &Caller,
    request: Result<CreateConversation, ApiError>,
) -> Result<Created, ApiError> {
    let me = &caller.user_id;
    let refused = |error: ApiError| async move {
        // Counted as a creation; when none is left, the limit is the answer.
        match deps
            .limiter
            .acquire(LimitKind::CreateConversation, me.as_str())
            .await
        {
            Ok(_) => error,
            Err(limited) => limited,
        }
    };
    let (others, kind, request) = match request.and_then(|r| plan_shape(me, r)) {
        Ok(shape) => shape,
        Err(error) => return Err(refused(error).await),
    };
    let store = &deps.store;
    let claim_key = match kind {
        Kind::SelfNote => Some(keys::self_conversation(me)),
        Kind::Direct => Some(keys::direct_pair(me, &others[0])),
        Kind::Group => None,
    };
    if let Some(key) = &claim_key
        && let Some(existing) = store.get::<ClaimItem>(key, Consistency::Strong).await?
    {
        return lookup(deps, me, &existing.conversation_id).await;
    }
    let grant = match deps
        .limiter
        .take(LimitKind::CreateConversation, me.as_str())
        .await
    {
        Ok(grant) => grant,
        Err(limited) => {
            let Some(key) = &claim_key else {
                return Err(limited);
            };
            let Some(existing) = landed_claim(store, key).await? else {
                return Err(limited);
            };
            return lookup(deps, me, &existing).await;
        }
    };
    let made = async {
        // Every member needs a profile: mine is made from my token like GET /me does.
        profiles::ensure_profile(store, caller).await?;
        require_profiles(store, &others).await?;
        let plan = NewConversation {
            creator: me.clone(),
            others,
            kind,
            title: request.title,
        };
        let made = match claim_key {
            Some(key) => unique(store, &plan, key).await,
            None => group(store, &plan, request.client_request_id.as_ref()).await,
        }?;
        Ok::<_, ApiError>((made, plan))
    }
    .await;
    let ((id, new), plan) = match made {
        Ok(made) => made,
        Err(error) => {
            if error.status() >= 500 {
                deps.limiter.give_back(grant).await;
            }
            return Err(error);
        }
    };
    if !new {
        // The loser of a race, or a retried clientRequestId: it found the conversation.
        deps.limiter.give_back(grant).await;
        return lookup(deps, me, &id).await;
    }
    let everyone: Vec<UserId> = std::iter::once(me)
        .chain(plan.others.iter())
        .cloned()
        .collect();
    deps.cache.bump_generations(everyone.iter()).await;
    // Everyone hears of it from `stream-fan-out` (`conversation.created`, from the new `META`).
    Ok(Created {
        conversation: load_member_view(deps, me, &id).await?,
        new: true,
        quota: grant.quota,
    })
}

/// The others (deduplicated, without me), the kind, and the request: the checks that need no I/O.
fn plan_shape(
    me: &UserId,
    request: CreateConversation,
) -> Result<(Vec<UserId>, Kind, CreateConversation), ApiError> {
    let mut others: Vec<UserId> = Vec::new();
    for id in &request.participant_ids {
        if id != me && !others.contains(id) {
            others.push(id.clone());
        }
    }
    if others.len() + 1 > MAX_MEMBERS {
        return Err(ApiError::validation(
            "participantIds",
            format!("at most {} other participants", MAX_MEMBERS - 1),
        ));
    }
    let kind = decide_kind(request.kind, others.len())?;
    if kind != Kind::Group && request.title.is_some() {
        return Err(ApiError::Conflict("only a group has a title"));
    }
    Ok((others, kind, request))
}

/// An existing conversation, found: it counts against the default limit.
async fn lookup(deps: &RouteDeps, me: &UserId, id: &ConversationId) -> Result<Created, ApiError> {
    let quota = deps
        .limiter
        .acquire(LimitKind::Default, me.as_str())
        .await?;
    Ok(Created {
        conversation: load_member_view(deps, me, id).await?,
        new: false,
        quota,
    })
}

/// Waits up to a second for a concurrent creation of this direct or self conversation to land.
async fn landed_claim(store: &DynamoStore, key: &Key) -> Result<Option<ConversationId>, ApiError> {
    for _ in 0..20 {
        if let Some(claim) = store.get::<ClaimItem>(key, Consistency::Strong).await? {
            return Ok(Some(claim.conversation_id));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    Ok(None)
}

/// Every other participant has a profile; any without one is 422 `unknown_users`.
async fn require_profiles(store: &DynamoStore, users: &[UserId]) -> Result<(), ApiError> {
    let keys: Vec<Key> = users.iter().map(keys::profile).collect();
    let found: HashMap<Key, Profile> = store.batch_get(&keys, Consistency::Strong).await?;
    let unknown: Vec<UserId> = users
        .iter()
        .filter(|u| !found.contains_key(&keys::profile(u)))
        .cloned()
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(ApiError::UnknownUsers(unknown))
    }
}

/// What a creation writes, decided from the request and the profiles read: pure, so that its
/// items are tested without a table.
struct NewConversation {
    creator: UserId,
    others: Vec<UserId>,
    kind: Kind,
    title: Option<Title>,
}

impl NewConversation {
    fn meta(&self, id: &ConversationId, at: Timestamp) -> MetaItem {
        let key = keys::conversation_meta(id);
        MetaItem {
            pk: key.pk,
            sk: key.sk,
            id: id.clone(),
            kind: self.kind,
            title: self.title.clone(),
            created_by: self.creator.clone(),
            created_at: at,
            updated_at: at,
            last_activity_at: at,
            last_seq: 0,
            rev: 0,
            last_message: None,
            member_count: self.member_count(),
            issued_at: None,
            settled_rev: None,
            void_seqs: Vec::new(),
            big: self.big(),
            legacy_member_names: None,
        }
    }

    fn member_count(&self) -> u32 {
        u32::try_from(self.others.len() + 1).unwrap_or(u32::MAX)
    }

    /// A group made with more than 16 members is ordered on read from the start.
    fn big(&self) -> bool {
        self.member_count() > SMALL_GROUP_MEMBERS
    }

    /// Memberships and inbox entries: the creator owns a group; in direct and self nobody does
    /// anything an owner could, so everyone is a member with the creator as owner for uniformity.
    fn members(&self, id: &ConversationId, at: Timestamp) -> (Vec<MemberItem>, Vec<InboxItem>) {
        let everyone = std::iter::once((&self.creator, Role::Owner))
            .chain(self.others.iter().map(|u| (u, Role::Member)));
        everyone
            .map(|(user, role)| {
                (
                    MemberItem::new(id, user, role, at, 0),
                    InboxItem::new(user, id, at, 0, self.big()),
                )
            })
            .unzip()
    }

    fn writes(&self, id: &ConversationId, at: Timestamp) -> Result<Vec<Write>, StoreError> {
        let (members, inbox) = self.members(id, at);
        let mut writes = vec![Write::put(&self.meta(id, at), Some(Expr::item_absent()))?];
        for m in &members {
            writes.push(Write::put(m, None)?);
        }
        for e in &inbox {
            writes.push(Write::put(e, None)?);
        }
        Ok(writes)
    }
}

/// Direct and self: one transaction with the claim, so there is only ever one.
/// The caller has just found no claim, so the first attempt writes at once; later attempts (after
/// a lost race) read the claim first, since the winner's conversation is the answer.
async fn unique(
    store: &DynamoStore,
    plan: &NewConversation,
    claim_key: Key,
) -> Result<(ConversationId, bool), ApiError> {
    let first = std::sync::atomic::AtomicBool::new(true);
    retrying(|| async {
        let first_attempt = first.swap(false, std::sync::atomic::Ordering::Relaxed);
        if !first_attempt
            && let Some(claim) = store
                .get::<ClaimItem>(&claim_key, Consistency::Strong)
                .await?
        {
            return Ok(Attempt::Done((claim.conversation_id, false)));
        }
        let id = ConversationId::generate();
        let now = store.now();
        let claim = ClaimItem::new(claim_key.clone(), &id, now, None);
        let mut writes = vec![Write::put(&claim, Some(Expr::item_absent()))?];
        writes.extend(plan.writes(&id, now)?);
        match store.transact(writes).await {
            Ok(()) => Ok(Attempt::Done((id, true))),
            Err(e) if lost_race(&e) => Ok(Attempt::Retry),
            Err(e) => Err(e.into()),
        }
    })
    .await
}

/// A group: claimed first when the client gave a request id, then written whole.
async fn group(
    store: &DynamoStore,
    plan: &NewConversation,
    request_id: Option<&ClientRequestId>,
) -> Result<(ConversationId, bool), ApiError> {
    let now = store.now();
    let (id, at, retry) = match request_id {
        None => (ConversationId::generate(), now, false),
        Some(request_id) => claim_request(store, &plan.creator, request_id, now).await?,
    };
    let meta_key = keys::conversation_meta(&id);
    if retry
        && store
            .get::<MetaItem>(&meta_key, Consistency::Strong)
            .await?
            .is_some()
    {
        return Ok((id, false));
    }
    if plan.others.len() <= ONE_TRANSACTION_MEMBERS {
        let done = retrying(|| async {
            match store.transact(plan.writes(&id, at)?).await {
                Ok(()) => Ok(Attempt::Done(())),
                // A retry racing its original: whoever wrote META first made the group.
                Err(e) if lost_race(&e) => {
                    let exists = store
                        .get::<MetaItem>(&meta_key, Consistency::Strong)
                        .await?;
                    Ok(if exists.is_some() {
                        Attempt::Done(())
                    } else {
                        Attempt::Retry
                    })
                }
                Err(e) => Err(e.into()),
            }
        });
        done.await?;
    } else {
        let (members, inbox) = plan.members(&id, at);
        store.batch_put(&members).await?;
        store.batch_put(&inbox).await?;
        match store
            .put(&plan.meta(&id, at), Some(Expr::item_absent()))
            .await
        {
            Ok(()) | Err(StoreError::ConditionFailed) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok((id, !retry))
}

/// Claims a `clientRequestId` for a new group id, or finds the group an earlier request with it
/// claimed (`retry` = true). An expired claim (TTL passed, not yet deleted) is replaced.
async fn claim_request(
    store: &DynamoStore,
    user: &UserId,
    request_id: &ClientRequestId,
    now: Timestamp,
) -> Result<(ConversationId, Timestamp, bool), ApiError> {
    let key = keys::group_request(user, request_id);
    let id = ConversationId::generate();
    let claim = ClaimItem::new(
        key.clone(),
        &id,
        now,
        Some(now.unix_seconds() + REQUEST_ID_SECONDS),
    );
    let unclaimed = Expr::absent_or_expired(now.unix_seconds());
    match store.put(&claim, Some(unclaimed)).await {
        Ok(()) => Ok((id, now, false)),
        Err(StoreError::ConditionFailed) => {
            let existing: ClaimItem = store
                .get(&key, Consistency::Strong)
                .await?
                .ok_or_else(|| ApiError::internal("a request claim vanished"))?;
            Ok((existing.conversation_id, existing.created_at, true))
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_inferred_from_the_other_participants() {
        assert_eq!(decide_kind(None, 0).unwrap(), Kind::SelfNote);
        assert_eq!(decide_kind(None, 1).unwrap(), Kind::Direct);
        assert_eq!(decide_kind(None, 2).unwrap(), Kind::Group);
        assert_eq!(decide_kind(Some(Kind::Group), 1).unwrap(), Kind::Group);
        assert!(decide_kind(Some(Kind::Direct), 2).is_err());
        assert!(decide_kind(Some(Kind::Direct), 0).is_err());
        assert!(decide_kind(Some(Kind::SelfNote), 1).is_err());
        assert!(decide_kind(Some(Kind::Group), 0).is_err());
    }

    fn user(raw: &str) -> UserId {
        raw.parse().unwrap()
    }

    fn request(
        participants: &[&str],
        kind: Option<Kind>,
        title: Option<&str>,
    ) -> CreateConversation {
        CreateConversation {
            participant_ids: participants.iter().map(|p| user(p)).collect(),
            kind,
            title: title.map(|t| t.parse().unwrap()),
            client_request_id: None,
        }
    }

    #[test]
    fn the_others_are_deduplicated_without_the_creator_and_bounded() {
        let me = user("ada");
        let (others, kind, _) =
            plan_shape(&me, request(&["bob", "ada", "bob", "cy"], None, None)).unwrap();
        assert_eq!(others, [user("bob"), user("cy")]);
        assert_eq!(kind, Kind::Group);
        let many: Vec<String> = (0..MAX_MEMBERS).map(|i| format!("u{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert!(matches!(
            plan_shape(&me, request(&many, None, None)),
            Err(ApiError::Validation(_))
        ));
        assert!(plan_shape(&me, request(&many[1..], None, None)).is_ok());
        assert!(matches!(
            plan_shape(&me, request(&["bob"], None, Some("Hi"))),
            Err(ApiError::Conflict(_))
        ));
    }

    #[test]
    fn a_new_group_writes_meta_once_and_every_member_with_an_inbox_entry() {
        let plan = NewConversation {
            creator: user("ada"),
            others: vec![user("bob"), user("cy")],
            kind: Kind::Group,
            title: Some("Trip".parse().unwrap()),
        };
        let id = ConversationId::generate();
        let at = Timestamp::from_unix_millis(1_700_000_000_000);
        let meta = plan.meta(&id, at);
        assert_eq!((meta.member_count, meta.last_seq, meta.rev), (3, 0, 0));
        let (members, inbox) = plan.members(&id, at);
        let roles: Vec<(String, Role)> = members
            .iter()
            .map(|m| (m.user_id.to_string(), m.role))
            .collect();
        assert_eq!(
            roles,
            [
                ("ada".to_owned(), Role::Owner),
                ("bob".to_owned(), Role::Member),
                ("cy".to_owned(), Role::Member)
            ]
        );
        assert_eq!(inbox.len(), 3);
        let writes = plan.writes(&id, at).unwrap();
        assert_eq!(writes.len(), 1 + 2 * 3);
        let Write::Put { condition, .. } = &writes[0] else {
            panic!("META first");
        };
        assert_eq!(condition, &Some(Expr::item_absent()));
    }
}
