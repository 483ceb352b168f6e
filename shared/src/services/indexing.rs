//! Keeps the search entries (`services::search`) current, in `stream-fan-out`: each stream record
//! that changes what someone finds a conversation by becomes an [`Upkeep`] (pure,
//! [`upkeeps_of`]), applied with the state read at that moment ([`apply`]): puts and deletes of
//! entries, each idempotent, so a batch handed again does no harm.
//!
//! What each costs in write units (one per entry; no index): a conversation made, one per member
//! and word of its title, plus in a small one one per member, other member and word of their
//! name; a title changed, twice that of its words per member; a member in or out of a small
//! conversation, about twice their words per member; a profile renamed, twice its words per other
//! member of each small conversation of theirs (docs/benchmarks/cost.md).

use std::collections::HashMap;

use aws_lambda_events::event::dynamodb::{Event, EventRecord};

use crate::adapters::store::keys::{self, prefix};
use crate::adapters::store::{Consistency, DynamoStore, Key};
use crate::domain::DisplayName;
use crate::domain::error::ApiError;
use crate::domain::{ConversationId, UserId};
use crate::services::conversations::model::{MemberItem, MetaItem};
use crate::services::conversations::{inbox_entries, member_items};
use crate::services::deps::RouteDeps;
use crate::services::events::{RecordError, image, string_key};
use crate::services::profiles::Profile;
use crate::services::search::{SearchItem, Source, Texts, items_for, keys_for};

/// A change to what someone finds a conversation by.
#[derive(Debug, Clone, PartialEq)]
pub enum Upkeep {
    /// A conversation made (`META` inserted): every member's entries.
    Made(ConversationId),
    /// A group's title changed.
    Retitled {
        conversation: ConversationId,
        before: Option<String>,
        after: Option<String>,
    },
    /// A group passed 16 members: names no longer find it.
    TurnedBig(ConversationId),
    /// A member added after the conversation was made.
    Joined {
        conversation: ConversationId,
        user: UserId,
    },
    /// A member left or was removed.
    Left {
        conversation: ConversationId,
        user: UserId,
    },
    /// A user changed their display name.
    Renamed {
        user: UserId,
        before: String,
        after: String,
    },
}

/// The upkeeps a stream record calls for (none for most: messages, reads, typing).
pub fn upkeeps_of(record: &EventRecord) -> Result<Vec<Upkeep>, RecordError> {
    let fail = |reason: String| RecordError {
        event_id: record.event_id.clone(),
        reason,
    };
    let (Some(pk), Some(sk)) = (string_key(record, "PK"), string_key(record, "SK")) else {
        return Ok(Vec::new());
    };
    let (new_image, old_image) = (&record.change.new_image, &record.change.old_image);
    let event = record.event_name.as_str();
    if pk.starts_with(prefix::USER) && sk == prefix::PROFILE && event == "MODIFY" {
        let (before, after): (Profile, Profile) = (
            image(old_image).map_err(fail)?,
            image(new_image).map_err(fail)?,
        );
        if before.display_name == after.display_name {
            return Ok(Vec::new());
        }
        return Ok(vec![Upkeep::Renamed {
            user: after.user_id,
            before: before.display_name.as_str().to_owned(),
            after: after.display_name.as_str().to_owned(),
        }]);
    }
    if !pk.starts_with(prefix::CONVERSATION) {
        return Ok(Vec::new());
    }
    if sk == prefix::META {
        let after: MetaItem = match event {
            "INSERT" | "MODIFY" => image(new_image).map_err(fail)?,
            _ => return Ok(Vec::new()),
        };
        if event == "INSERT" {
            return Ok(vec![Upkeep::Made(after.id)]);
        }
        let before: MetaItem = image(old_image).map_err(fail)?;
        let mut upkeeps = Vec::new();
        if before.title != after.title {
            upkeeps.push(Upkeep::Retitled {
                conversation: after.id.clone(),
                before: before.title.map(|t| t.as_str().to_owned()),
                after: after.title.map(|t| t.as_str().to_owned()),
            });
        }
        if after.big && !before.big {
            upkeeps.push(Upkeep::TurnedBig(after.id));
        }
        return Ok(upkeeps);
    }
    if sk.starts_with(prefix::MEMBER) {
        return Ok(match event {
            "INSERT" => {
                let joined: MemberItem = image(new_image).map_err(fail)?;
                // The first members come with `META`: `Made` enters them.
                joined
                    .added_by
                    .map(|_| Upkeep::Joined {
                        conversation: joined.conversation_id,
                        user: joined.user_id,
                    })
                    .into_iter()
                    .collect()
            }
            "REMOVE" => {
                let gone: MemberItem = image(old_image).map_err(fail)?;
                vec![Upkeep::Left {
                    conversation: gone.conversation_id,
                    user: gone.user_id,
                }]
            }
            _ => Vec::new(),
        });
    }
    Ok(Vec::new())
}

/// The entries to put and delete.
#[derive(Debug, Default)]
struct Changes {
    puts: Vec<SearchItem>,
    deletes: Vec<Key>,
}

impl Changes {
    /// Each key once: a `BatchWriteItem` naming a key twice is refused whole, and a refused upkeep
    /// would hold the stream's shard for good.
    fn once_each(self) -> (Vec<Key>, Vec<SearchItem>) {
        let mut seen = std::collections::HashSet::new();
        let deletes = self
            .deletes
            .into_iter()
            .filter(|k| seen.insert(k.clone()))
            .collect();
        let mut seen = std::collections::HashSet::new();
        let puts = self
            .puts
            .into_iter()
            .filter(|i| seen.insert((i.pk.clone(), i.sk.clone())))
            .collect();
        (deletes, puts)
    }
}

/// Current display names of these users, from their profiles (one consistent batch per 100; no
/// cache: the fan-out runs without Redis, and a rename must be seen at once).
async fn display_names<'a>(
    store: &DynamoStore,
    users: impl Iterator<Item = &'a UserId>,
) -> Result<HashMap<UserId, DisplayName>, ApiError> {
    let keys: Vec<Key> = users.map(keys::profile).collect();
    let found: HashMap<Key, Profile> = store.batch_get(&keys, Consistency::Strong).await?;
    Ok(found
        .into_values()
        .map(|p| (p.user_id, p.display_name))
        .collect())
}

/// What a conversation is found by now, with its members (`None` when it is gone).
async fn state(
    store: &DynamoStore,
    conversation: &ConversationId,
    with_names: bool,
) -> Result<Option<(MetaItem, Vec<UserId>, Texts)>, ApiError> {
    let Some(meta) = store
        .get::<MetaItem>(&keys::conversation_meta(conversation), Consistency::Strong)
        .await?
    else {
        return Ok(None);
    };
    let members = member_ids(store, conversation).await?;
    let names = if with_names && !meta.big {
        let found = display_names(store, members.iter()).await?;
        members
            .iter()
            .filter_map(|u| Some((u.clone(), found.get(u)?.as_str().to_owned())))
            .collect()
    } else {
        Vec::new()
    };
    let texts = Texts {
        title: meta.title.as_ref().map(|t| t.as_str().to_owned()),
        names,
    };
    Ok(Some((meta, members, texts)))
}

/// Applies one upkeep: reads what it needs, then deletes and puts (deletes first, so a text that
/// normalises to the same entry stays). `Made` of a conversation already entered writes the same
/// entries again, which is how `tools/migrate-inbox` enters conversations made before them.
pub async fn apply(store: &DynamoStore, upkeep: &Upkeep) -> Result<(), ApiError> {
    let changes = match upkeep {
        Upkeep::Made(conversation) => match state(store, conversation, true).await? {
            Some((_, members, texts)) => Changes {
                puts: members
                    .iter()
                    .flat_map(|v| texts.items(v, conversation))
                    .collect(),
                deletes: Vec::new(),
            },
            None => Changes::default(),
        },
        Upkeep::Retitled {
            conversation,
            before,
            after,
        } => {
            let members = member_ids(store, conversation).await?;
            Changes {
                deletes: members
                    .iter()
                    .flat_map(|v| {
                        before
                            .iter()
                            .flat_map(|t| keys_for(v, conversation, &Source::Title, t))
                    })
                    .collect(),
                puts: members
                    .iter()
                    .flat_map(|v| {
                        after
                            .iter()
                            .flat_map(|t| items_for(v, conversation, &Source::Title, t))
                    })
                    .collect(),
            }
        }
        Upkeep::TurnedBig(conversation) => {
            let members = member_ids(store, conversation).await?;
            let names = display_names(store, members.iter()).await?;
            Changes {
                deletes: every_name_key(&members, conversation, &names),
                puts: Vec::new(),
            }
        }
        Upkeep::Joined { conversation, user } => match state(store, conversation, true).await? {
            Some((_, members, texts)) => {
                let mut puts = texts.items(user, conversation);
                if let Some((_, name)) = texts.names.iter().find(|(u, _)| u == user) {
                    for other in members.iter().filter(|m| *m != user) {
                        puts.extend(items_for(
                            other,
                            conversation,
                            &Source::Member(user.clone()),
                            name,
                        ));
                    }
                }
                Changes {
                    puts,
                    deletes: Vec::new(),
                }
            }
            None => Changes::default(),
        },
        Upkeep::Left { conversation, user } => match state(store, conversation, true).await? {
            Some((meta, members, texts)) => {
                let mut deletes: Vec<Key> = texts
                    .title
                    .iter()
                    .flat_map(|t| keys_for(user, conversation, &Source::Title, t))
                    .collect();
                if !meta.big {
                    let mine = display_names(store, std::iter::once(user)).await?;
                    // They may be back already (removed, then added again): once each.
                    let mut everyone = members.clone();
                    if !everyone.contains(user) {
                        everyone.push(user.clone());
                    }
                    let mut names: HashMap<UserId, String> = texts.names.into_iter().collect();
                    names.extend(mine.into_iter().map(|(u, n)| (u, n.as_str().to_owned())));
                    deletes.extend(
                        every_name_key(&everyone, conversation, &names)
                            .into_iter()
                            .filter(|k| {
                                k.pk == keys::user_pk(user) || k.sk.ends_with(&member_suffix(user))
                            }),
                    );
                }
                Changes {
                    puts: Vec::new(),
                    deletes,
                }
            }
            None => Changes::default(),
        },
        Upkeep::Renamed {
            user,
            before,
            after,
        } => renamed(store, user, before, after).await?,
    };
    let (deletes, puts) = changes.once_each();
    store.batch_delete(&deletes).await?;
    store.batch_put(&puts).await?;
    Ok(())
}

/// Applies a batch's upkeeps in order. The sequence number of the first record whose upkeep
/// failed (the mapping hands the batch again from there; the ones before are done); unreadable
/// records are logged and skipped, as the pushes do.
pub async fn keep(deps: &RouteDeps, batch: &Event) -> Option<String> {
    for record in &batch.records {
        let upkeeps = match upkeeps_of(record) {
            Ok(upkeeps) => upkeeps,
            Err(error) => {
                tracing::error!(%error, "skipped an unreadable stream record");
                continue;
            }
        };
        for upkeep in &upkeeps {
            if let Err(error) = apply(&deps.store, upkeep).await {
                error.log();
                return Some(record.change.sequence_number.clone().unwrap_or_default());
            }
        }
    }
    None
}

fn member_suffix(user: &UserId) -> String {
    format!("#m:{}", keys::escape(user.as_str()))
}

async fn member_ids(
    store: &DynamoStore,
    conversation: &ConversationId,
) -> Result<Vec<UserId>, ApiError> {
    Ok(member_items(store, conversation, None)
        .await?
        .into_iter()
        .map(|m| m.user_id)
        .collect())
}

/// Every member's entries for every other member's name.
fn every_name_key<N: AsRef<str>>(
    members: &[UserId],
    conversation: &ConversationId,
    names: &HashMap<UserId, N>,
) -> Vec<Key> {
    members
        .iter()
        .flat_map(|viewer| {
            members
                .iter()
                .filter(move |m| *m != viewer)
                .filter_map(|m| Some((m, names.get(m)?)))
                .flat_map(move |(m, name)| {
                    keys_for(
                        viewer,
                        conversation,
                        &Source::Member(m.clone()),
                        name.as_ref(),
                    )
                })
        })
        .collect()
}

/// Member reads of a rename's upkeep at once.
const RENAME_READS_IN_FLIGHT: usize = 16;

/// A rename: in each small conversation of the user's (one query of their inbox entries, then
/// each conversation's members), every other member's entries for the old name go and for the
/// new one come.
async fn renamed(
    store: &DynamoStore,
    user: &UserId,
    before: &str,
    after: &str,
) -> Result<Changes, ApiError> {
    use futures::stream::{self, StreamExt, TryStreamExt};
    let entries = inbox_entries(store, user).await?;
    // Each small conversation's members, [`RENAME_READS_IN_FLIGHT`] reads at once: a user in
    // 500 conversations is 500 queries, which one after another would hold the shard.
    // Collected first: a stream over borrowing closures is not `Send` for every lifetime.
    let small: Vec<ConversationId> = entries
        .into_iter()
        .filter(|e| !e.big)
        .map(|e| e.conversation_id)
        .collect();
    let memberships: Vec<(ConversationId, Vec<UserId>)> = stream::iter(small)
        .map(|conversation| async move {
            let members = member_ids(store, &conversation).await?;
            Ok::<_, ApiError>((conversation, members))
        })
        .buffer_unordered(RENAME_READS_IN_FLIGHT)
        .try_collect()
        .await?;
    let mut changes = Changes::default();
    let source = Source::Member(user.clone());
    for (conversation, members) in &memberships {
        for other in members.iter().filter(|m| *m != user) {
            changes
                .deletes
                .extend(keys_for(other, conversation, &source, before));
            changes
                .puts
                .extend(items_for(other, conversation, &source, after));
        }
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A member removed and added again before the removal is handled is listed twice otherwise.
    #[test]
    fn changes_name_each_key_once() {
        let ada: UserId = "ada".parse().unwrap();
        let id = ConversationId::generate();
        let twice = [
            items_for(&ada, &id, &Source::Title, "Trip"),
            items_for(&ada, &id, &Source::Title, "Trip"),
        ]
        .concat();
        let keys: Vec<Key> = twice.iter().map(|i| Key::new(&i.pk, &i.sk)).collect();
        let (deletes, puts) = Changes {
            puts: twice,
            deletes: keys,
        }
        .once_each();
        assert_eq!((deletes.len(), puts.len()), (1, 1));
    }

    #[test]
    fn every_member_has_an_entry_for_every_other_name() {
        let users: Vec<UserId> = ["ada", "bob", "cy"].map(|u| u.parse().unwrap()).to_vec();
        let names: HashMap<UserId, &str> =
            users.iter().cloned().zip(["Ada L", "Bob", "Cy"]).collect();
        let id = ConversationId::generate();
        let keys = every_name_key(&users, &id, &names);
        // Ada: bob, cy; Bob: ada l, l, cy; Cy: ada l, l, bob.
        assert_eq!(keys.len(), 2 + 3 + 3);
        assert!(
            keys.iter()
                .filter(|k| k.pk == "USER#ada")
                .all(|k| !k.sk.contains("#m:ada"))
        );
    }
}
