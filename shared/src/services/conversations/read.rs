//! Reading conversations (one, or the caller's inbox page by page) and the caller's own changes
//! to one: the title of a group, and my settings.

use std::collections::{HashMap, HashSet};

use futures::future::try_join_all;
use serde::{Deserialize, Serialize};

use super::model::{
    ARCHIVED_PREFIX, BIG_PREFIX, Conversation, InboxItem, LIST_MEMBERS, Member, MemberItem,
    MetaItem, SHOWN_BOUND, activity_key,
};
use crate::adapters::cache::{
    self, CONVERSATION_TTL_SECONDS, LIST_PAGE_TTL_SECONDS, PROFILE_TTL_SECONDS,
};
use crate::adapters::store::keys::{self, attr, index};
use crate::adapters::store::{Consistency, DynamoStore, Expr, Key, Query, StartKey};
use crate::domain::error::ApiError;
use crate::domain::{ConversationId, DisplayName, Limit, UserId};
use crate::platform::time::Timestamp;
use crate::services::deps::RouteDeps;
use crate::services::profiles::Profile;

/// The caller's access to a conversation: its `META`, their membership, their inbox entry.
pub struct Access {
    pub meta: MetaItem,
    pub mine: MemberItem,
    pub inbox: Option<InboxItem>,
}

/// Reads `META`, my membership and my inbox entry in one consistent batch. No `META` (absent, or a
/// large group still being created) or no membership is 404: existence is not revealed.
pub async fn access(
    store: &DynamoStore,
    user: &UserId,
    id: &ConversationId,
) -> Result<Access, ApiError> {
    let (meta, mine, inbox) = access_with(store, user, id, &keys::inbox_entry(user, id)).await?;
    Ok(Access { meta, mine, inbox })
}

/// The membership check every route makes, with one more item the route needs (my inbox entry,
/// an idempotency key, a message) read in the same consistent batch.
pub(crate) async fn access_with<T: serde::de::DeserializeOwned>(
    store: &DynamoStore,
    user: &UserId,
    id: &ConversationId,
    extra: &Key,
) -> Result<(MetaItem, MemberItem, Option<T>), ApiError> {
    let meta_key = keys::conversation_meta(id);
    let member_key = keys::membership(id, user);
    let mut items: HashMap<Key, serde_json::Value> = store
        .batch_get(
            &[meta_key.clone(), member_key.clone(), extra.clone()],
            Consistency::Strong,
        )
        .await?;
    let (Some(meta), Some(mine)) = (items.remove(&meta_key), items.remove(&member_key)) else {
        return Err(ApiError::NotFound);
    };
    fn parse<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> Result<T, ApiError> {
        serde_json::from_value(v).map_err(ApiError::internal)
    }
    Ok((
        parse(meta)?,
        parse(mine)?,
        items.remove(extra).map(parse).transpose()?,
    ))
}

/// The members of a conversation, in key order: all of them, or the first `limit`.
pub async fn member_items(
    store: &DynamoStore,
    id: &ConversationId,
    limit: Option<usize>,
) -> Result<Vec<MemberItem>, ApiError> {
    let query = Query {
        page_size: limit.and_then(|l| i32::try_from(l).ok()),
        ..Query::prefix(keys::conversation_pk(id), keys::member_prefix())
    };
    Ok(match limit {
        Some(_) => store.query_page(&query, None).await?.items,
        None => store.query_all(&query).await?,
    })
}

/// Display names for these users: from the profile cache, the misses from one batch (then cached).
async fn display_names(
    deps: &RouteDeps,
    users: impl Iterator<Item = &UserId>,
) -> Result<HashMap<UserId, DisplayName>, ApiError> {
    let users: Vec<&UserId> = users.collect::<HashSet<_>>().into_iter().collect();
    let cache_keys: Vec<String> = users.iter().map(|u| cache::profile_key(u)).collect();
    let cached: Vec<Option<Profile>> = deps.cache.get_many(&cache_keys).await;
    let mut names = HashMap::new();
    let mut missing = Vec::new();
    for (user, hit) in users.iter().zip(cached) {
        match hit {
            Some(profile) => {
                names.insert(profile.user_id, profile.display_name);
            }
            None => missing.push(keys::profile(user)),
        }
    }
    let fetched: HashMap<Key, Profile> = deps
        .store
        .batch_get(&missing, Consistency::Eventual)
        .await?;
    let fill: Vec<(String, &Profile)> = fetched
        .values()
        .map(|p| (cache::profile_key(&p.user_id), p))
        .collect();
    deps.cache.put_many(&fill, PROFILE_TTL_SECONDS).await;
    names.extend(fetched.into_values().map(|p| (p.user_id, p.display_name)));
    Ok(names)
}

/// A conversation's member list as cached, with the version of `META` it was read at.
#[derive(Serialize, Deserialize)]
struct CachedMembers {
    updated_at: Timestamp,
    member_count: u32,
    members: Vec<MemberItem>,
}

impl CachedMembers {
    fn fresh_for(self, meta: &MetaItem) -> Option<Vec<MemberItem>> {
        (self.updated_at == meta.updated_at && self.member_count == meta.member_count)
            .then_some(self.members)
    }
}

/// Every member: from the cache when it was filled at this version of `META` (every member
/// change moves `updatedAt`), else from the table, then cached.
async fn all_members(deps: &RouteDeps, meta: &MetaItem) -> Result<Vec<MemberItem>, ApiError> {
    let key = cache::members_key(&meta.id);
    if let Some(members) = deps
        .cache
        .get::<CachedMembers>(&key)
        .await
        .and_then(|c| c.fresh_for(meta))
    {
        return Ok(members);
    }
    let members = member_items(&deps.store, &meta.id, None).await?;
    let entry = CachedMembers {
        updated_at: meta.updated_at,
        member_count: meta.member_count,
        members: members.clone(),
    };
    deps.cache.put(&key, &entry, CONVERSATION_TTL_SECONDS).await;
    Ok(members)
}

/// The first members for a list entry: from a fresh cache entry, else the first 10 from the table.
async fn preview_members(deps: &RouteDeps, meta: &MetaItem) -> Result<Vec<MemberItem>, ApiError> {
    let key = cache::members_key(&meta.id);
    if let Some(mut members) = deps
        .cache
        .get::<CachedMembers>(&key)
        .await
        .and_then(|c| c.fresh_for(meta))
    {
        members.truncate(LIST_MEMBERS);
        return Ok(members);
    }
    member_items(&deps.store, &meta.id, Some(LIST_MEMBERS)).await
}

fn as_members(items: Vec<MemberItem>, names: &HashMap<UserId, DisplayName>) -> Vec<Member> {
    items
        .into_iter()
        .map(|m| Member {
            display_name: names
                .get(&m.user_id)
                .cloned()
                .unwrap_or_else(DisplayName::fallback),
            user_id: m.user_id,
            role: m.role,
            joined_at: m.joined_at,
            last_read_seq: m.last_read_seq,
        })
        .collect()
}

/// One conversation as the caller sees it, with every member.
pub async fn load_member_view(
    deps: &RouteDeps,
    user: &UserId,
    id: &ConversationId,
) -> Result<Conversation, ApiError> {
    let Access { meta, mine, inbox } = access(&deps.store, user, id).await?;
    let items = all_members(deps, &meta).await?;
    let names = display_names(deps, items.iter().map(|m| &m.user_id)).await?;
    let archived = inbox.is_some_and(|i| i.archived);
    Ok(Conversation::render(
        meta,
        as_members(items, &names),
        &mine,
        archived,
    ))
}

/// `GET /conversations/{id}`.
pub async fn get(
    deps: &RouteDeps,
    user: &UserId,
    id: &ConversationId,
) -> Result<Conversation, ApiError> {
    load_member_view(deps, user, id).await
}

/// `GET /conversations` parameters.
#[derive(Debug, Clone, Default)]
pub struct ListParams {
    pub limit: Limit,
    pub cursor: Option<String>,
    /// Lower-cased search text; empty is none.
    pub q: Option<String>,
    pub archived: bool,
}

impl ListParams {
    /// Reads `limit`, `cursor`, `q` and `archived` from the query string.
    pub fn parse(get: impl Fn(&str) -> Option<String>) -> Result<Self, ApiError> {
        let limit = Limit::parse_optional(get("limit").as_deref())?;
        let archived = match get("archived").as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => return Err(ApiError::validation("archived", "true or false")),
        };
        let q = get("q");
        // Counted as sent: trimming would let 101 characters with a space through, and lower
        // case can be longer than the text (`İ` is two characters in lower case).
        if q.as_ref().is_some_and(|q| q.chars().count() > 100) {
            return Err(ApiError::validation("q", "at most 100 characters"));
        }
        let q = q.map(|q| q.trim().to_lowercase()).filter(|q| !q.is_empty());
        Ok(Self {
            limit,
            cursor: get("cursor"),
            q,
            archived,
        })
    }

    /// What a cursor is bound to besides its user: the list and its filters.
    fn scope(&self) -> String {
        format!(
            "inbox:archived={}:q={}",
            self.archived,
            self.q.as_deref().unwrap_or("")
        )
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationPage {
    pub items: Vec<Conversation>,
    pub next_cursor: Option<String>,
}

/// `GET /conversations`: my conversations, most recent activity first, shown or archived. A
/// page merges two reads of the `ByActivity` local index, both consistent: the range of small
/// conversations' entries (moved by each send; the archived ones under `~archived#`), from the
/// cursor's position down, and every big conversation's entry (`~big#`), placed by its `META`'s
/// `lastActivityAt` (read consistently with the others). So a page holds `limit` conversations
/// unless it is the last, and one read after a send's answer shows that conversation at its place.
/// With `q`, the conversations are those my search entries find (`services::search`), placed and
/// paged the same way.
pub async fn list(
    deps: &RouteDeps,
    user: &UserId,
    params: &ListParams,
) -> Result<ConversationPage, ApiError> {
    let store = &deps.store;
    let scope = params.scope();
    let cursor_keys = deps.cursor_keys.ring(store).await?;
    let after = params
        .cursor
        .as_deref()
        .map(|c| {
            cursor_keys
                .open(c, user, &scope)
                .and_then(|k| position_of(&k))
        })
        .transpose()?;
    let want = params.limit.get();
    let (placed, more, mut metas) = match params.q.as_deref() {
        Some(q) => {
            let (found, metas) =
                found_by(store, user, q, params.archived, after.as_deref()).await?;
            let (placed, more) = merge(SmallPage::default(), found, want);
            (placed, more, metas)
        }
        None => {
            let (small, big) = tokio::try_join!(
                small_page(deps, user, params, after.as_deref()),
                big_entries(store, user, params.archived, after.as_deref()),
            )?;
            let (placed, more) = merge(small, big.placed, want);
            (placed, more, big.metas)
        }
    };
    let next_cursor = match (more, placed.last()) {
        (true, Some(last)) => Some(cursor_keys.seal(user, &scope, position_key(&last.position))?),
        _ => None,
    };
    let items = render_page(deps, user, placed, &mut metas).await?;
    Ok(ConversationPage { items, next_cursor })
}

/// The small conversations' part of a page: from the cache (under my generation, which every
/// move of one of my entries bumps), else read and cached.
async fn small_page(
    deps: &RouteDeps,
    user: &UserId,
    params: &ListParams,
    after: Option<&str>,
) -> Result<SmallPage, ApiError> {
    let page_key = deps.cache.generation(user).await.map(|generation| {
        let request = format!(
            "{}|{}|{}",
            params.scope(),
            params.limit.get(),
            params.cursor.as_deref().unwrap_or("")
        );
        cache::inbox_page_key(user, generation, &request)
    });
    if let Some(key) = &page_key
        && let Some(page) = deps.cache.get::<SmallPage>(key).await
    {
        return Ok(page);
    }
    let page = small_entries(
        &deps.store,
        user,
        params.archived,
        after,
        params.limit.get(),
    )
    .await?;
    if let Some(key) = &page_key {
        deps.cache.put(key, &page, LIST_PAGE_TTL_SECONDS).await;
    }
    Ok(page)
}

/// A list position as a cursor carries it.
fn position_key(position: &str) -> StartKey {
    let mut key = serde_json::Map::new();
    key.insert("after".to_owned(), position.into());
    StartKey(key)
}

/// The position a cursor holds: `after`, or the `activityKey` of a `LastEvaluatedKey` sealed
/// before pages were merged (the same `<at>#<c>`, perhaps archived), so those cursors still work.
fn position_of(key: &StartKey) -> Result<String, ApiError> {
    let raw = key
        .0
        .get("after")
        .or_else(|| key.0.get(attr::ACTIVITY_KEY))
        .and_then(|v| v.as_str())
        .ok_or(ApiError::InvalidCursor)?;
    let position = raw.strip_prefix(ARCHIVED_PREFIX).unwrap_or(raw);
    if position >= SHOWN_BOUND {
        return Err(ApiError::InvalidCursor);
    }
    Ok(position.to_owned())
}

/// An entry and where it is in its list (`<lastActivityAt>#<c>`).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Placed {
    position: String,
    entry: InboxItem,
}

/// The small conversations' entries of one page (cached under the user's generation, which every
/// move of one of their entries bumps): up to `limit` below the position, and whether more follow.
#[derive(Debug, Default, Serialize, Deserialize)]
struct SmallPage {
    placed: Vec<Placed>,
    more: bool,
}

/// Reads the range of small conversations' entries below `after`, newest first, until `want`
/// are found and one more is known to follow (or the range ends). Entries archived before the
/// archived range existed sit among the shown ones: they are skipped (tools/migrate-inbox moves them).
async fn small_entries(
    store: &DynamoStore,
    user: &UserId,
    archived: bool,
    after: Option<&str>,
    want: usize,
) -> Result<SmallPage, ApiError> {
    let (condition, exclude) = match (archived, after) {
        (false, after) => (
            Expr::new("#pk = :pk AND #k < :hi").string(":hi", after.unwrap_or(SHOWN_BOUND)),
            None,
        ),
        (true, None) => (
            Expr::new("#pk = :pk AND begins_with(#k, :lo)").string(":lo", ARCHIVED_PREFIX),
            None,
        ),
        (true, Some(after)) => {
            // BETWEEN is inclusive: the entry at the cursor itself is left out below.
            let hi = format!("{ARCHIVED_PREFIX}{after}");
            (
                Expr::new("#pk = :pk AND #k BETWEEN :lo AND :hi")
                    .string(":lo", ARCHIVED_PREFIX)
                    .string(":hi", hi.clone()),
                Some(hi),
            )
        }
    };
    let query = Query {
        ascending: false,
        page_size: i32::try_from(want + 2).ok(),
        consistency: Consistency::Strong,
        ..Query::new(
            Some(index::BY_ACTIVITY),
            condition
                .name("#pk", attr::PK)
                .name("#k", attr::ACTIVITY_KEY)
                .string(":pk", keys::user_pk(user)),
        )
    };
    let mut placed = Vec::new();
    let mut start = None;
    loop {
        let page = store.query_page::<InboxItem>(&query, start).await?;
        for entry in page.items {
            if exclude.as_deref() == Some(entry.activity_key.as_str())
                || entry.archived != archived
                || entry.big
            {
                continue;
            }
            let position = activity_key(entry.last_activity_at, &entry.conversation_id);
            placed.push(Placed { position, entry });
        }
        if placed.len() > want {
            placed.truncate(want);
            return Ok(SmallPage { placed, more: true });
        }
        match page.next {
            Some(next) => start = Some(next),
            None => {
                return Ok(SmallPage {
                    placed,
                    more: false,
                });
            }
        }
    }
}

/// Every big conversation's entry of mine in this list below `after`, placed by `META`, newest
/// first; and the `META`s read, for the page to show.
struct BigEntries {
    placed: Vec<Placed>,
    metas: HashMap<Key, MetaItem>,
}

/// Reads all of my big conversations' entries (one query: a user is in few) and their `META`s
/// (one consistent batch per 100).
async fn big_entries(
    store: &DynamoStore,
    user: &UserId,
    archived: bool,
    after: Option<&str>,
) -> Result<BigEntries, ApiError> {
    let query = Query {
        consistency: Consistency::Strong,
        ..Query::new(
            Some(index::BY_ACTIVITY),
            Expr::new("#pk = :pk AND begins_with(#k, :big)")
                .name("#pk", attr::PK)
                .name("#k", attr::ACTIVITY_KEY)
                .string(":pk", keys::user_pk(user))
                .string(":big", BIG_PREFIX),
        )
    };
    let entries: Vec<InboxItem> = store
        .query_all::<InboxItem>(&query)
        .await?
        .into_iter()
        .filter(|e| e.archived == archived)
        .collect();
    let (placed, metas) = place(store, entries, after).await?;
    Ok(BigEntries { placed, metas })
}

/// The conversations `q` finds for me in this list below `after`, placed, newest first: my
/// search entries by prefix, then my inbox entries of those (one consistent batch per 100) and the
/// big ones' `META`s.
async fn found_by(
    store: &DynamoStore,
    user: &UserId,
    q: &str,
    archived: bool,
    after: Option<&str>,
) -> Result<(Vec<Placed>, HashMap<Key, MetaItem>), ApiError> {
    let found = crate::services::search::matching(store, user, q).await?;
    let entry_keys: Vec<Key> = found.iter().map(|c| keys::inbox_entry(user, c)).collect();
    let entries: HashMap<Key, InboxItem> =
        store.batch_get(&entry_keys, Consistency::Strong).await?;
    let entries: Vec<InboxItem> = entries
        .into_values()
        .filter(|e| e.archived == archived)
        .collect();
    place(store, entries, after).await
}

/// Places entries below `after`, newest first: a small conversation's by its entry, a big one's
/// by its `META` (read consistently; returned for the page to show).
async fn place(
    store: &DynamoStore,
    entries: Vec<InboxItem>,
    after: Option<&str>,
) -> Result<(Vec<Placed>, HashMap<Key, MetaItem>), ApiError> {
    let meta_keys: Vec<Key> = entries
        .iter()
        .filter(|e| e.big)
        .map(|e| keys::conversation_meta(&e.conversation_id))
        .collect();
    let metas: HashMap<Key, MetaItem> = store.batch_get(&meta_keys, Consistency::Strong).await?;
    let mut placed: Vec<Placed> = entries
        .into_iter()
        .filter_map(|entry| {
            let at = if entry.big {
                metas
                    .get(&keys::conversation_meta(&entry.conversation_id))?
                    .last_activity_at
            } else {
                entry.last_activity_at
            };
            let position = activity_key(at, &entry.conversation_id);
            after
                .is_none_or(|a| position.as_str() < a)
                .then_some(Placed { position, entry })
        })
        .collect();
    placed.sort_by(|a, b| b.position.cmp(&a.position));
    Ok((placed, metas))
}

/// The first `want` of both lists (each newest first) in one order, and whether any is left.
fn merge(small: SmallPage, big: Vec<Placed>, want: usize) -> (Vec<Placed>, bool) {
    let small_more = small.more;
    let mut small = small.placed.into_iter().peekable();
    let mut big = big.into_iter().peekable();
    let mut page = Vec::with_capacity(want);
    while page.len() < want {
        let next = match (small.peek(), big.peek()) {
            (Some(s), Some(b)) if s.position >= b.position => small.next(),
            (Some(_), Some(_)) => big.next(),
            (Some(_), None) => small.next(),
            (None, _) => big.next(),
        };
        match next {
            Some(placed) => page.push(placed),
            None => break,
        }
    }
    let left = small.peek().is_some() || big.peek().is_some();
    (page, left || small_more)
}

/// The page's conversations as I see them: `META`s not read yet and my memberships in two
/// consistent batches, then the first 10 members of each with their names. An entry whose `META`
/// or membership is gone (a large group still being created; I just left) is left out.
async fn render_page(
    deps: &RouteDeps,
    user: &UserId,
    placed: Vec<Placed>,
    metas: &mut HashMap<Key, MetaItem>,
) -> Result<Vec<Conversation>, ApiError> {
    let store = &deps.store;
    let missing: Vec<Key> = placed
        .iter()
        .map(|p| keys::conversation_meta(&p.entry.conversation_id))
        .filter(|k| !metas.contains_key(k))
        .collect();
    let member_keys: Vec<Key> = placed
        .iter()
        .map(|p| keys::membership(&p.entry.conversation_id, user))
        .collect();
    let (fetched, mine) = tokio::try_join!(
        store.batch_get::<MetaItem>(&missing, Consistency::Strong),
        store.batch_get::<MemberItem>(&member_keys, Consistency::Strong),
    )?;
    metas.extend(fetched);

    let mut shown = Vec::new();
    for Placed { entry, .. } in &placed {
        let meta = metas.get(&keys::conversation_meta(&entry.conversation_id));
        let member = mine.get(&keys::membership(&entry.conversation_id, user));
        let (Some(meta), Some(member)) = (meta, member) else {
            continue;
        };
        shown.push((meta.clone(), member.clone(), entry.archived));
    }

    let previews =
        try_join_all(shown.iter().map(|(meta, _, _)| preview_members(deps, meta))).await?;
    let names = display_names(deps, previews.iter().flatten().map(|m| &m.user_id)).await?;
    Ok(shown
        .into_iter()
        .zip(previews)
        .map(|((meta, member, archived), preview)| {
            Conversation::render(meta, as_members(preview, &names), &member, archived)
        })
        .collect())
}

/// The conversation as each of `recipients` sees it (their own `me`, at most 10 members), for the
/// `conversation.*` events: one read of the member list (or the cache), one of names, one of the
/// recipients' inbox entries.
pub(crate) async fn views_for(
    deps: &RouteDeps,
    id: &ConversationId,
    recipients: &[UserId],
) -> Result<Vec<(UserId, Conversation)>, ApiError> {
    let Some(meta) = deps
        .store
        .get::<MetaItem>(&keys::conversation_meta(id), Consistency::Strong)
        .await?
    else {
        return Ok(Vec::new());
    };
    let members = all_members(deps, &meta).await?;
    let preview: Vec<MemberItem> = members.iter().take(LIST_MEMBERS).cloned().collect();
    let names = display_names(deps, preview.iter().map(|m| &m.user_id)).await?;
    let inbox_keys: Vec<Key> = recipients
        .iter()
        .map(|u| keys::inbox_entry(u, id))
        .collect();
    let inbox: HashMap<Key, InboxItem> = deps
        .store
        .batch_get(&inbox_keys, Consistency::Strong)
        .await?;
    let mut views = Vec::new();
    for recipient in recipients {
        let Some(mine) = members.iter().find(|m| &m.user_id == recipient) else {
            continue;
        };
        let archived = inbox
            .get(&keys::inbox_entry(recipient, id))
            .is_some_and(|e| e.archived);
        let view = Conversation::render(
            meta.clone(),
            as_members(preview.clone(), &names),
            mine,
            archived,
        );
        views.push((recipient.clone(), view));
    }
    Ok(views)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(query: &[(&str, &str)]) -> Result<ListParams, ApiError> {
        ListParams::parse(|name| {
            query
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    /// A rename lands only while its author is a member (and the group exists).
    #[test]
    fn q_is_at_most_100_characters_as_sent() {
        let within = parse(&[("q", &format!("  {}  ", "É".repeat(96)))]);
        assert_eq!(within.unwrap().q, Some("é".repeat(96)));
        // Surrounding whitespace is counted: the spec's maxLength holds for the text as sent.
        let padded = parse(&[("q", &format!(" {}", "a".repeat(100)))]);
        assert!(matches!(padded, Err(ApiError::Validation(_))));
        // Lower case can be longer than the text; the limit is on what the client sent.
        let dotted = parse(&[("q", &"İ".repeat(100))]);
        assert!(dotted.unwrap().q.is_some());
        assert_eq!(parse(&[("q", "   ")]).unwrap().q, None);
    }
}
