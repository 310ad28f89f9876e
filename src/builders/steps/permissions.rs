//! Who may use the OMI (`omi_account_ids`, `global_permission`,
//! `omi_groups`) and its snapshots (`snapshot_account_ids`,
//! `snapshot_users`, `snapshot_groups`, and the OMI's accounts, who need
//! them to copy it): set on a new OMI, changed in place on an existing one.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value, json};

use super::BuildRun;
use super::settings::{own_snapshots, record};
use crate::builders::cloud::failed;
use crate::graph::{Address, Kind, Lifetime, Node, Run, Step, StepError};
use crate::oapi::model::*;
use crate::state::ResourceState;

/// Account ids and the global flag, as the plan shows them.
pub fn desired(account_ids: &BTreeSet<String>, global: bool) -> BTreeMap<String, Value> {
    BTreeMap::from([
        ("account_ids".to_string(), json!(account_ids)),
        ("global_permission".to_string(), json!(global)),
    ])
}

pub fn image_attributes(image: &Image) -> BTreeMap<String, Value> {
    let ids: BTreeSet<String> = image
        .permissions_to_launch
        .account_ids
        .iter()
        .cloned()
        .collect();
    desired(&ids, image.permissions_to_launch.global_permission)
}

pub fn snapshot_attributes(
    snapshot: &Snapshot,
    snapshot_ids: &[String],
) -> BTreeMap<String, Value> {
    let p = &snapshot.permissions_to_create_volume;
    let ids: BTreeSet<String> = p.account_ids.iter().cloned().collect();
    let mut a = desired(&ids, p.global_permission);
    if !snapshot_ids.is_empty() {
        a.insert("snapshot_ids".into(), json!(snapshot_ids));
    }
    a
}

/// The snapshots a snapshot-permissions entry was last set on.
pub fn recorded_snapshot_ids(r: &ResourceState) -> Vec<String> {
    r.attributes
        .get("snapshot_ids")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default()
}

/// What the node sets.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Of {
    Image,
    Snapshots,
}

struct Set {
    run: Arc<BuildRun>,
    image: Address,
    of: Of,
    want: BTreeMap<String, Value>,
}

pub fn node(run: &Arc<BuildRun>, image: &Address, of: Of, want: BTreeMap<String, Value>) -> Node {
    let kind = match of {
        Of::Image => Kind::ImagePermissions,
        Of::Snapshots => Kind::SnapshotPermissions,
    };
    let step = Set {
        run: Arc::clone(run),
        image: image.clone(),
        of,
        want: want.clone(),
    };
    let mut node = Node::new(&run.name, kind, None, Lifetime::Durable, Arc::new(step));
    node.desired = want.into_iter().map(|(k, v)| (k, Some(v))).collect();
    node.digest = Some(run.digest.clone());
    node
}

/// Whether the image was made by this apply: the refresh did not see it,
/// so its snapshots have no permissions or tags yet and need no reading.
pub fn made_now(build: &BuildRun, image: &Image) -> bool {
    !build.refreshed.images.contains_key(&image.image_id)
}

#[async_trait]
impl Step for Set {
    async fn run(&self, run: &Run<'_>) -> Result<(), StepError> {
        let recorded = run.recorder.get(&self.image);
        let image = self.run.image(&self.image, recorded.as_ref())?;
        let client = &self.run.cloud.client;
        let fresh = made_now(&self.run, &image);
        let mut attributes = self.want.clone();
        match self.of {
            Of::Image => {
                let have = if fresh {
                    desired(&BTreeSet::new(), false)
                } else {
                    image_attributes(&image)
                };
                for change in changes(&have, &self.want) {
                    client
                        .call(&UpdateImageRequest {
                            image_id: image.image_id.clone(),
                            permissions_to_launch: Some(change),
                            ..Default::default()
                        })
                        .await
                        .map_err(failed)?;
                }
            }
            Of::Snapshots => {
                let ours = own_snapshots(run, &self.run, &image);
                for id in &ours {
                    let have = match self.run.refreshed.snapshots.get(id) {
                        Some(s) if !fresh => snapshot_attributes(s, &[]),
                        _ => desired(&BTreeSet::new(), false),
                    };
                    for change in changes(&have, &self.want) {
                        client
                            .call(&UpdateSnapshotRequest {
                                snapshot_id: id.clone(),
                                permissions_to_create_volume: change,
                                ..Default::default()
                            })
                            .await
                            .map_err(failed)?;
                    }
                }
                attributes.insert("snapshot_ids".into(), json!(ours));
            }
        }
        let kind = match self.of {
            Of::Image => Kind::ImagePermissions,
            Of::Snapshots => Kind::SnapshotPermissions,
        };
        record(run, &self.run, kind, &image.image_id, attributes).await
    }
}

/// The UpdateImage/UpdateSnapshot changes from `have` to `want`: removals,
/// then additions (the API takes one of them per call).
pub fn changes(
    have: &BTreeMap<String, Value>,
    want: &BTreeMap<String, Value>,
) -> Vec<PermissionsOnResourceCreation> {
    let ids = |m: &BTreeMap<String, Value>| -> BTreeSet<String> {
        serde_json::from_value(m.get("account_ids").cloned().unwrap_or(json!([])))
            .unwrap_or_default()
    };
    let global = |m: &BTreeMap<String, Value>| {
        m.get("global_permission")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    };
    let (have_ids, want_ids) = (ids(have), ids(want));
    let removed: Vec<String> = have_ids.difference(&want_ids).cloned().collect();
    let added: Vec<String> = want_ids.difference(&have_ids).cloned().collect();
    let mut out = Vec::new();
    let unpublish = global(have) && !global(want);
    if !removed.is_empty() || unpublish {
        out.push(PermissionsOnResourceCreation {
            additions: None,
            removals: Some(PermissionsChange {
                account_ids: (!removed.is_empty()).then_some(removed),
                global_permission: unpublish.then_some(true),
            }),
        });
    }
    let publish = !global(have) && global(want);
    if !added.is_empty() || publish {
        out.push(PermissionsOnResourceCreation {
            additions: Some(PermissionsChange {
                account_ids: (!added.is_empty()).then_some(added),
                global_permission: publish.then_some(true),
            }),
            removals: None,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_remove_then_add() {
        let m = |ids: &[&str], g: bool| {
            BTreeMap::from([
                ("account_ids".to_string(), json!(ids)),
                ("global_permission".to_string(), json!(g)),
            ])
        };
        assert!(changes(&m(&["1"], false), &m(&["1"], false)).is_empty());
        let c = changes(&m(&["1", "2"], true), &m(&["2", "3"], false));
        assert_eq!(c.len(), 2);
        let r = c[0].removals.as_ref().unwrap();
        assert_eq!(r.account_ids.as_deref(), Some(&["1".to_string()][..]));
        assert_eq!(r.global_permission, Some(true));
        let a = c[1].additions.as_ref().unwrap();
        assert_eq!(a.account_ids.as_deref(), Some(&["3".to_string()][..]));
        assert_eq!(a.global_permission, None);
    }
}
