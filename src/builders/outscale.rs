//! What every builder shares: ownership tags, finding resources a crash left
//! without an id, deleting each kind of resource, and refreshing state.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

use crate::graph::{DestroyError, Destroyed, Destroyer};
use crate::oapi::model::*;
use crate::oapi::wait::{WaitPolicy, Waiters};
use crate::oapi::{Client, Error};
use crate::plan::Observed;
use crate::state::{Kind, Lookup, ResourceState, State, Status};

pub const TAG_LINEAGE: &str = "osci:lineage";
pub const TAG_BUILD: &str = "osci:build";
pub const TAG_ADDRESS: &str = "osci:address";

/// The tags that mark a resource as made by this state, for this address.
pub fn ownership_tags(lineage: &str, build: &str, address: &str) -> Vec<ResourceTag> {
    vec![
        ResourceTag::new(TAG_LINEAGE, lineage),
        ResourceTag::new(TAG_BUILD, build),
        ResourceTag::new(TAG_ADDRESS, address),
    ]
}

/// The image `id`, if it still exists.
pub async fn read_image(client: &Client, id: &str) -> Result<Option<Image>, Error> {
    let images = client
        .read_all(&ReadImagesRequest {
            filters: Some(FiltersImage {
                image_ids: Some(vec![id.to_string()]),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await?;
    Ok(images.into_iter().next())
}

/// Deletes what the state holds, kind by kind.
pub struct OutscaleDestroyer {
    pub client: Client,
    pub waiters: Arc<Waiters>,
    pub account_id: String,
    pub lineage: String,
    pub wait: WaitPolicy,
}

impl OutscaleDestroyer {
    pub fn new(client: Client, waiters: Arc<Waiters>, account_id: String, lineage: String) -> Self {
        OutscaleDestroyer {
            client,
            waiters,
            account_id,
            lineage,
            wait: super::wait_policy(),
        }
    }
}

fn failed(e: Error) -> DestroyError {
    if e.api().is_some_and(|a| a.is_dependency()) {
        DestroyError::InUse(e.to_string())
    } else {
        DestroyError::Failed(e.to_string())
    }
}

/// A delete answered "no such resource": it is gone, which is what we want.
fn gone_ok(result: Result<EmptyResponse, Error>) -> Result<bool, DestroyError> {
    match result {
        Ok(_) => Ok(true),
        Err(e) if e.is_not_found() => Ok(false),
        Err(e) => Err(failed(e)),
    }
}

impl OutscaleDestroyer {
    fn address_tag(&self, r: &ResourceState) -> String {
        format!("{TAG_ADDRESS}={}", r.address)
    }

    /// Carries this state's lineage tag.
    fn ours(&self, tags: &[ResourceTag]) -> bool {
        tags.iter()
            .any(|t| t.key == TAG_LINEAGE && t.value == self.lineage)
    }

    /// Carries another state's lineage tag.
    fn foreign(&self, tags: &[ResourceTag]) -> bool {
        tags.iter()
            .any(|t| t.key == TAG_LINEAGE && t.value != self.lineage)
    }

    /// The id of a resource whose create answer may have been lost: by its
    /// ClientToken or name, or by the tags it was given.
    async fn find(&self, r: &ResourceState) -> Result<Option<String>, Error> {
        if let Some(id) = &r.id {
            return Ok(Some(id.clone()));
        }
        let c = &self.client;
        Ok(match r.kind {
            Kind::Vm => match &r.lookup.client_token {
                Some(token) => c
                    .read_all(&ReadVmsRequest {
                        filters: Some(FiltersVm {
                            client_tokens: Some(vec![token.clone()]),
                            ..Default::default()
                        }),
                        ..Default::default()
                    })
                    .await?
                    .into_iter()
                    .find(|v| v.state != "terminated")
                    .map(|v| v.vm_id),
                None => None,
            },
            Kind::Keypair => match &r.lookup.name {
                Some(name) => c
                    .read_all(&ReadKeypairsRequest {
                        filters: Some(FiltersKeypair {
                            keypair_names: Some(vec![name.clone()]),
                            ..Default::default()
                        }),
                        ..Default::default()
                    })
                    .await?
                    .into_iter()
                    .next()
                    .and_then(|k| k.keypair_id),
                None => None,
            },
            Kind::SecurityGroup => match &r.lookup.name {
                Some(name) => c
                    .read_all(&ReadSecurityGroupsRequest {
                        filters: Some(FiltersSecurityGroup {
                            security_group_names: Some(vec![name.clone()]),
                            ..Default::default()
                        }),
                        ..Default::default()
                    })
                    .await?
                    .into_iter()
                    .next()
                    .map(|g| g.security_group_id),
                None => None,
            },
            Kind::Image => match &r.lookup.name {
                Some(name) => c
                    .read_all(&ReadImagesRequest {
                        filters: Some(FiltersImage {
                            image_names: Some(vec![name.clone()]),
                            account_ids: Some(vec![self.account_id.clone()]),
                            ..Default::default()
                        }),
                        ..Default::default()
                    })
                    .await?
                    .into_iter()
                    // Tagged by another state: not ours, even by name.
                    .find(|i| i.image_name == *name && !self.foreign(&i.tags))
                    .map(|i| i.image_id),
                None => None,
            },
            Kind::PublicIp => c
                .read_all(&ReadPublicIpsRequest {
                    filters: Some(FiltersPublicIp {
                        tags: Some(vec![self.address_tag(r)]),
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .await?
                .into_iter()
                .find(|p| self.ours(&p.tags))
                .map(|p| p.public_ip_id),
            Kind::Volume => c
                .read_all(&ReadVolumesRequest {
                    filters: Some(FiltersVolume {
                        tags: Some(vec![self.address_tag(r)]),
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .await?
                .into_iter()
                .find(|v| self.ours(&v.tags))
                .map(|v| v.volume_id),
            Kind::Snapshot => c
                .read_all(&ReadSnapshotsRequest {
                    filters: Some(FiltersSnapshot {
                        account_ids: Some(vec![self.account_id.clone()]),
                        tags: Some(vec![self.address_tag(r)]),
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .await?
                .into_iter()
                .find(|s| self.ours(&s.tags))
                .map(|s| s.snapshot_id),
            Kind::ImagePermissions | Kind::SnapshotPermissions | Kind::Tags => None,
        })
    }

    /// The snapshots CreateImage made for `image`, with their devices.
    /// Snapshots older than the image were not made by it (a `snapshot_id`
    /// of the template, or a capture's that the OMI was registered from);
    /// another account's never are.
    async fn snapshots_made_with(&self, image: &Image) -> Result<Vec<(String, Snapshot)>, Error> {
        let ids = image.snapshot_ids();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let snapshots = self
            .client
            .read_all(&ReadSnapshotsRequest {
                filters: Some(FiltersSnapshot {
                    snapshot_ids: Some(ids),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await?;
        let image_date = image.creation_date.as_deref().and_then(parse_date);
        let made_with = |s: &Snapshot| {
            let date = s.creation_date.as_deref().and_then(parse_date);
            s.account_id == self.account_id
                && matches!((date, image_date), (Some(s), Some(i)) if s >= i)
        };
        Ok(image
            .block_device_mappings
            .iter()
            .filter_map(|m| {
                let id = m.bsu.as_ref()?.snapshot_id.as_ref()?;
                let snapshot = snapshots
                    .iter()
                    .find(|s| &s.snapshot_id == id && made_with(s))?;
                Some((m.device_name.clone()?, snapshot.clone()))
            })
            .collect())
    }
}

/// An OUTSCALE date, comparable whatever its precision.
fn parse_date(date: &str) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(date, &time::format_description::well_known::Rfc3339).ok()
}

#[async_trait]
impl Destroyer for OutscaleDestroyer {
    /// A VM's volumes and an image's snapshots, which a run stopped before
    /// recording them (the VM never got to running, CreateImage's answer
    /// was the last thing it saw) leaves known only through their owner.
    async fn dependents(&self, r: &ResourceState) -> Result<Vec<ResourceState>, DestroyError> {
        if !matches!(r.kind, Kind::Image | Kind::Vm) {
            return Ok(Vec::new());
        }
        let Some(id) = self.find(r).await.map_err(failed)? else {
            return Ok(Vec::new());
        };
        let entry = |kind: Kind, device: &str, id: String, status: Status| {
            let mut entry = ResourceState::pending(
                crate::graph::address(&r.build, kind, Some(device)),
                &r.build,
                kind,
                r.ephemeral || kind == Kind::Volume,
                Lookup::default(),
            );
            entry.id = Some(id);
            entry.status = status;
            entry.dependencies = vec![r.address.clone()];
            entry
        };
        if r.kind == Kind::Vm {
            let vms = self
                .client
                .read_all(&ReadVmsRequest::id(id))
                .await
                .map_err(failed)?;
            return Ok(vms
                .iter()
                .flat_map(|vm| &vm.block_device_mappings)
                .map(|m| {
                    entry(
                        Kind::Volume,
                        &m.device_name,
                        m.bsu.volume_id.clone(),
                        Status::Created,
                    )
                })
                .collect());
        }
        let Some(image) = read_image(&self.client, &id).await.map_err(failed)? else {
            return Ok(Vec::new());
        };
        if image.account_id != self.account_id {
            return Ok(Vec::new());
        }
        let snapshots = self.snapshots_made_with(&image).await.map_err(failed)?;
        Ok(snapshots
            .into_iter()
            .map(|(device, snapshot)| {
                entry(
                    Kind::Snapshot,
                    &device,
                    snapshot.snapshot_id,
                    Status::Tainted,
                )
            })
            .collect())
    }

    async fn destroy(&self, r: &ResourceState) -> Result<Destroyed, DestroyError> {
        if r.kind.is_setting() {
            return Ok(Destroyed::AlreadyGone);
        }
        let Some(id) = self.find(r).await.map_err(failed)? else {
            return Ok(Destroyed::AlreadyGone);
        };
        let c = &self.client;
        let deleted = match r.kind {
            Kind::Vm => {
                match c
                    .call(&DeleteVmsRequest {
                        vm_ids: vec![id.clone()],
                        ..Default::default()
                    })
                    .await
                {
                    Ok(_) => {}
                    Err(e) if e.is_not_found() => return Ok(Destroyed::AlreadyGone),
                    Err(e) => return Err(failed(e)),
                }
                self.waiters
                    .vm(&id, "terminated", &self.wait)
                    .await
                    .map_err(|e| DestroyError::Failed(e.to_string()))?;
                true
            }
            Kind::Volume => {
                let volume = c
                    .read_all(&ReadVolumesRequest {
                        filters: Some(FiltersVolume {
                            volume_ids: Some(vec![id.clone()]),
                            ..Default::default()
                        }),
                        ..Default::default()
                    })
                    .await
                    .map_err(failed)?;
                match volume.first() {
                    None => false,
                    Some(v) if !v.linked_volumes.is_empty() => {
                        return Err(DestroyError::InUse(format!(
                            "volume {id} is still linked to {}",
                            v.linked_volumes[0].vm_id
                        )));
                    }
                    Some(_) => gone_ok(
                        c.call(&DeleteVolumeRequest {
                            volume_id: id.clone(),
                            ..Default::default()
                        })
                        .await,
                    )?,
                }
            }
            Kind::Image => {
                // Never an image of another account, whatever the state says.
                match read_image(c, &id).await.map_err(failed)?.as_ref() {
                    None => false,
                    Some(i) if i.account_id != self.account_id => {
                        return Err(DestroyError::Failed(format!(
                            "image {id} belongs to account {}, not to {}: left alone",
                            i.account_id, self.account_id
                        )));
                    }
                    Some(_) => gone_ok(
                        c.call(&DeleteImageRequest {
                            image_id: id.clone(),
                            ..Default::default()
                        })
                        .await,
                    )?,
                }
            }
            Kind::Snapshot => gone_ok(
                c.call(&DeleteSnapshotRequest {
                    snapshot_id: id.clone(),
                    ..Default::default()
                })
                .await,
            )?,
            Kind::SecurityGroup => gone_ok(
                c.call(&DeleteSecurityGroupRequest {
                    security_group_id: Some(id.clone()),
                    ..Default::default()
                })
                .await,
            )?,
            Kind::Keypair => gone_ok(
                c.call(&DeleteKeypairRequest {
                    keypair_id: Some(id.clone()),
                    ..Default::default()
                })
                .await,
            )?,
            Kind::PublicIp => gone_ok(
                c.call(&DeletePublicIpRequest {
                    public_ip_id: Some(id.clone()),
                    ..Default::default()
                })
                .await,
            )?,
            Kind::ImagePermissions | Kind::SnapshotPermissions | Kind::Tags => false,
        };
        Ok(if deleted {
            Destroyed::Deleted(id)
        } else {
            Destroyed::AlreadyGone
        })
    }
}

/// Reads the images and snapshots the state holds, one call per kind, and
/// reports, per address, their current attributes (permissions, tags,
/// description), or `None` for what is gone.
pub async fn refresh(client: &Client, state: &State) -> Result<Observed, Error> {
    let image_ids: Vec<String> = state
        .resources
        .iter()
        .filter(|r| r.kind == Kind::Image)
        .filter_map(|r| r.id.clone())
        .collect();
    let mut out = BTreeMap::new();
    if image_ids.is_empty() {
        return Ok(out);
    }
    let images: BTreeMap<String, Image> = client
        .read_all(&ReadImagesRequest {
            filters: Some(FiltersImage {
                image_ids: Some(image_ids),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await?
        .into_iter()
        .map(|i| (i.image_id.clone(), i))
        .collect();
    let snapshot_ids: Vec<String> = state
        .resources
        .iter()
        .filter(|r| r.kind == Kind::Snapshot)
        .filter_map(|r| r.id.clone())
        .collect();
    let snapshots: BTreeMap<String, Snapshot> = if snapshot_ids.is_empty() {
        BTreeMap::new()
    } else {
        client
            .read_all(&ReadSnapshotsRequest {
                filters: Some(FiltersSnapshot {
                    snapshot_ids: Some(snapshot_ids),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await?
            .into_iter()
            .map(|s| (s.snapshot_id.clone(), s))
            .collect()
    };
    for r in &state.resources {
        let Some(id) = &r.id else { continue };
        let seen = match r.kind {
            Kind::Image => images.get(id).map(crate::builders::bsu::image_attributes),
            Kind::Snapshot => snapshots
                .get(id)
                .map(crate::builders::bsu::snapshot_attributes),
            Kind::ImagePermissions => images
                .get(id)
                .map(crate::builders::bsu::image_permission_attributes),
            Kind::SnapshotPermissions => {
                let ids = r
                    .attributes
                    .get("snapshot_ids")
                    .and_then(|v| v.as_array())
                    .cloned()
                    .unwrap_or_default();
                let first = ids
                    .first()
                    .and_then(|v| v.as_str())
                    .and_then(|s| snapshots.get(s));
                first.map(|s| crate::builders::bsu::snapshot_permission_attributes(s, &ids))
            }
            Kind::Tags => images.get(id).map(|i| {
                let snaps: Vec<&Snapshot> = i
                    .snapshot_ids()
                    .iter()
                    .filter_map(|s| snapshots.get(s))
                    .collect();
                crate::builders::bsu::tag_attributes(i, &snaps)
            }),
            _ => continue,
        };
        out.insert(r.address.clone(), seen);
    }
    Ok(out)
}
