//! Tags asked for by a build's steps, sent together: ownership tags of what
//! a build makes, user tags of its OMI. OUTSCALE puts the same tags on every
//! resource of a CreateTags call, so the calls are one per set of tags.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use super::cloud::to_tags;
use crate::oapi::model::{CreateTagsRequest, ResourceTag};
use crate::oapi::{Client, Error};

/// Tags asked for by a build's steps, sent together at the moments the
/// build chooses: each [`Tagger::flush`] makes one CreateTags per set of
/// tags, for every resource of the build that gets that set, so the
/// ownership tags of everything a build made since its last flush cost one
/// call.
pub struct Tagger {
    client: Client,
    pending: Mutex<BTreeMap<String, Wanted>>,
}

/// Resource id → the tags it should get, for one build.
type Wanted = BTreeMap<String, BTreeMap<String, String>>;

impl Tagger {
    pub fn new(client: Client) -> Tagger {
        Tagger {
            client,
            pending: Mutex::new(BTreeMap::new()),
        }
    }

    /// Tags to put on `ids` at the build's next flush.
    pub fn add(&self, build: &str, ids: &[String], tags: &[ResourceTag]) {
        if tags.is_empty() {
            return;
        }
        let mut pending = self.pending.lock().expect("tagger lock");
        let pending = pending.entry(build.to_string()).or_default();
        for id in ids {
            let entry = pending.entry(id.clone()).or_default();
            for t in tags {
                entry.insert(t.key.clone(), t.value.clone());
            }
        }
    }

    /// Drops what was asked for `id`: it is being deleted.
    pub fn forget(&self, id: &str) {
        for pending in self.pending.lock().expect("tagger lock").values_mut() {
            pending.remove(id);
        }
    }

    /// Sends the build's pending tags.
    pub async fn flush(&self, build: &str) -> Result<(), Error> {
        let pending = self
            .pending
            .lock()
            .expect("tagger lock")
            .remove(build)
            .unwrap_or_default();
        let mut calls = calls(pending).into_iter();
        while let Some((ids, tags)) = calls.next() {
            let sent = self
                .client
                .call(&CreateTagsRequest {
                    resource_ids: ids.clone(),
                    tags: tags.clone(),
                    ..Default::default()
                })
                .await;
            if let Err(e) = sent {
                // What was not sent waits for the next flush.
                for (ids, tags) in std::iter::once((ids, tags)).chain(calls) {
                    self.add(build, &ids, &tags);
                }
                return Err(e);
            }
        }
        Ok(())
    }
}

/// The CreateTags calls for `pending` (resource id → tags): one per set of
/// tags, with every resource that gets exactly that set.
fn calls(
    pending: BTreeMap<String, BTreeMap<String, String>>,
) -> Vec<(Vec<String>, Vec<ResourceTag>)> {
    let mut by_tags: BTreeMap<BTreeMap<String, String>, BTreeSet<String>> = BTreeMap::new();
    for (id, tags) in pending {
        if !tags.is_empty() {
            by_tags.entry(tags).or_default().insert(id);
        }
    }
    by_tags
        .into_iter()
        .map(|(tags, ids)| (ids.into_iter().collect(), to_tags(&tags)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builders::cloud::{TAG_BUILD, TAG_LINEAGE};

    #[test]
    fn resources_with_the_same_tags_share_a_call() {
        let tags = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let owned = tags(&[(TAG_LINEAGE, "l"), (TAG_BUILD, "web")]);
        let mut named = owned.clone();
        named.insert("Name".into(), "osci builder web".into());
        let pending = BTreeMap::from([
            ("sg-1".to_string(), owned.clone()),
            ("i-1".to_string(), named),
            ("vol-1".to_string(), owned.clone()),
            ("vol-2".to_string(), owned),
        ]);
        let calls = calls(pending);
        assert_eq!(calls.len(), 2, "{calls:?}");
        assert!(
            calls
                .iter()
                .any(|(ids, tags)| ids == &["sg-1", "vol-1", "vol-2"] && tags.len() == 2)
        );
        assert!(
            calls
                .iter()
                .any(|(ids, tags)| ids == &["i-1"] && tags.len() == 3)
        );
    }
}
