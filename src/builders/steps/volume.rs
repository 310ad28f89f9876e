//! Volumes: the build VM's, made by its launch, recorded by the VM's node,
//! removed with the VM when marked so, or after it; and the chroot
//! builder's, made on their own from a snapshot or blank.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value, json};

use super::{BuildRun, OutscaleDestroyer, create, delete, destroy_error};
use crate::builders::cloud::{Cloud, failed, ownership_tags, to_tags, waiting};
use crate::graph::{Address, DestroyError, Destroyed, Kind, Lifetime, Node, Run, Step, StepError};
use crate::oapi::model::*;
use crate::state::{Lookup, ResourceState, Status};

/// Checks that the VM's launch recorded the volume, and hands its id on.
struct Recorded {
    run: Arc<BuildRun>,
    vm: Address,
}

/// The node of the volume at `device`; `size` in GiB when the plan knows it.
pub fn node(run: &Arc<BuildRun>, vm: &Address, device: &str, size: Option<i64>) -> Node {
    let step = Recorded {
        run: Arc::clone(run),
        vm: vm.clone(),
    };
    Node::new(
        &run.name,
        Kind::Volume,
        Some(device),
        Lifetime::Ephemeral,
        Arc::new(step),
    )
    .with("size", size.map(|s| json!(s)))
}

#[async_trait]
impl Step for Recorded {
    async fn run(&self, run: &Run<'_>) -> Result<(), StepError> {
        match run.recorder.get(run.address).and_then(|r| r.id) {
            Some(id) => {
                self.run.outputs.put(run.address, super::Output::Id(id));
                Ok(())
            }
            _ => Err(StepError::Failed(format!(
                "{} was launched without {}",
                self.vm, run.address
            ))),
        }
    }
}

pub async fn destroy(
    d: &OutscaleDestroyer,
    r: &ResourceState,
    id: &str,
) -> Result<Destroyed, DestroyError> {
    // Its VM's termination took it: no need to ask.
    let with_vm = r.attributes.get("delete_on_vm_deletion") == Some(&Value::Bool(true));
    if with_vm
        && r.attributes
            .get("vm")
            .and_then(Value::as_str)
            .is_some_and(|vm| d.was_terminated(vm))
    {
        return Ok(Destroyed::AlreadyGone);
    }
    let cloud = &d.cloud;
    match cloud.waiters.volume_now(id).await.map_err(destroy_error)? {
        None => Ok(Destroyed::AlreadyGone),
        Some(v) if !v.linked_volumes.is_empty() => Err(DestroyError::InUse(format!(
            "volume {id} is still linked to {}",
            v.linked_volumes[0].vm_id
        ))),
        Some(_) => {
            let request = DeleteVolumeRequest {
                volume_id: id.to_string(),
                ..Default::default()
            };
            delete(cloud, request, id).await
        }
    }
}

/// What a volume made on its own (the chroot builder's) starts from.
pub enum Start {
    /// A snapshot of this account's (the source OMI's root).
    Snapshot { id: String, size: i64 },
    /// The snapshot of `device` in the copy of the source OMI made by the
    /// node at this address.
    CopyOf { copy: Address, device: String },
    /// Nothing: `from_scratch`.
    Blank,
}

/// A volume made on its own, in the host's subregion.
pub struct NewVolume {
    pub start: Start,
    /// `root_volume_size`: the volume is at least as large as its snapshot.
    pub size: Option<i64>,
    /// `root_volume_type`, else the source's (else `gp2`).
    pub volume_type: Option<String>,
    /// The source's, when the type stays `io1`.
    pub iops: Option<i64>,
    /// `root_volume_tags`, with build variables left.
    pub tags: BTreeMap<String, String>,
}

struct Create {
    run: Arc<BuildRun>,
    new: NewVolume,
}

/// The node of a volume made on its own (behaviour §6, StepCreateVolume),
/// for the device it stands for in the OMI.
pub fn create_node(run: &Arc<BuildRun>, device: &str, new: NewVolume) -> Node {
    let size = match &new.start {
        Start::Snapshot { size, .. } => Some(new.size.unwrap_or(0).max(*size)),
        _ => new.size,
    };
    let kind = new.volume_type.clone();
    let step = Create {
        run: Arc::clone(run),
        new,
    };
    Node::new(
        &run.name,
        Kind::Volume,
        Some(device),
        Lifetime::Ephemeral,
        Arc::new(step),
    )
    .with("size", size.map(|s| json!(s)))
    .with("volume_type", kind.map(|k| json!(k)))
}

#[async_trait]
impl Step for Create {
    async fn run(&self, run: &Run<'_>) -> Result<(), StepError> {
        let cloud = &self.run.cloud;
        let n = &self.new;
        let (snapshot, snapshot_size) = match &n.start {
            Start::Snapshot { id, size } => (Some(id.clone()), *size),
            Start::CopyOf { copy, device } => {
                let Some(super::Output::Image(image)) = self.run.output(copy) else {
                    return Err(StepError::Failed(format!("{copy} has not run")));
                };
                let bsu = image
                    .block_device_mappings
                    .iter()
                    .find(|m| m.device_name.as_deref() == Some(device.as_str()))
                    .and_then(|m| m.bsu.clone())
                    .ok_or_else(|| {
                        StepError::Failed(format!("the copy {} has no {device}", image.image_id))
                    })?;
                (bsu.snapshot_id, bsu.volume_size.unwrap_or(0))
            }
            Start::Blank => (None, 0),
        };
        let subregion = cloud
            .metadata
            .get("placement/availability-zone")
            .await
            .map_err(StepError::Failed)?;
        let token = uuid::Uuid::new_v4().to_string();
        let volume_type = n.volume_type.clone().unwrap_or_else(|| "gp2".to_string());
        let request = CreateVolumeRequest {
            subregion_name: subregion,
            size: Some(n.size.unwrap_or(0).max(snapshot_size)).filter(|s| *s > 0),
            snapshot_id: snapshot,
            iops: n.iops.filter(|_| volume_type == "io1"),
            volume_type: Some(volume_type),
            client_token: Some(token.clone()),
            ..Default::default()
        };
        let volume = create(
            run,
            Kind::Volume,
            true,
            Lookup {
                name: None,
                client_token: Some(token),
            },
            async { Ok(cloud.client.call(&request).await?.volume) },
            |v: &Volume| v.volume_id.clone(),
        )
        .await?;
        let lineage = run.recorder.lineage();
        let mut tags = ownership_tags(&lineage, &self.run.name);
        tags.extend(to_tags(&self.run.render(&n.tags)?));
        let ids = [volume.volume_id.clone()];
        cloud.tagger.add(&self.run.name, &ids, &tags);
        cloud.tagger.flush(&self.run.name).await.map_err(failed)?;
        waiting(
            run.recorder,
            run.address,
            "available",
            cloud
                .waiters
                .volume_available(&volume.volume_id, &cloud.wait),
        )
        .await?;
        self.run
            .outputs
            .put(run.address, super::Output::Id(volume.volume_id));
        Ok(())
    }
}

/// A volume whose CreateVolume answer was lost, by its ClientToken.
pub async fn find(cloud: &Cloud, r: &ResourceState) -> Result<Option<String>, crate::oapi::Error> {
    let Some(token) = &r.lookup.client_token else {
        return Ok(None);
    };
    let read = ReadVolumesRequest {
        filters: Some(FiltersVolume {
            client_tokens: Some(vec![token.clone()]),
            ..Default::default()
        }),
        ..Default::default()
    };
    super::first_id(cloud, read, |v: Volume| Some(v.volume_id)).await
}

/// The key a kept volume's previous volume has while the one replacing it
/// is being made.
pub fn previous_key(device: &str) -> String {
    format!("{device}{PREVIOUS}")
}

const PREVIOUS: &str = " previous";

/// Deletes the volumes kept volumes replaced (recorded under
/// [`previous_key`]), now that the build that replaced them is complete.
pub async fn remove_replaced(run: &Run<'_>, build: &BuildRun) -> Result<(), StepError> {
    let replaced: Vec<ResourceState> = run
        .recorder
        .build_entries(&build.name)
        .into_iter()
        .filter(|r| {
            r.kind == Kind::Volume && r.address.key().is_some_and(|k| k.ends_with(PREVIOUS))
        })
        .collect();
    for r in replaced {
        if let Some(id) = &r.id {
            let request = DeleteVolumeRequest {
                volume_id: id.clone(),
                ..Default::default()
            };
            match build.cloud.client.call(&request).await {
                Ok(_) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(failed(e)),
            }
        }
        run.recorder
            .forget(std::slice::from_ref(&r.address))
            .await?;
    }
    Ok(())
}

/// A volume the build keeps (bsuvolume's), made by its VM's launch, and
/// its tags, changed in place. The volume it replaces goes once the build
/// is complete (its `run` record).
struct Kept {
    run: Arc<BuildRun>,
    vm: Address,
    /// GiB, when the plan knows it.
    size: Option<i64>,
    /// With build variables left.
    tags: BTreeMap<String, String>,
}

/// The node of a kept volume at `device`.
pub fn kept_node(
    run: &Arc<BuildRun>,
    vm: &Address,
    device: &str,
    size: Option<i64>,
    tags: BTreeMap<String, String>,
) -> Node {
    let shown = run.render(&tags).ok().map(|t| json!(t));
    let step = Kept {
        run: Arc::clone(run),
        vm: vm.clone(),
        size,
        tags,
    };
    let mut node = Node::new(
        &run.name,
        Kind::Volume,
        Some(device),
        Lifetime::Durable,
        Arc::new(step),
    )
    .with("id", None)
    .with("size", size.map(|s| json!(s)))
    .with("tags", shown);
    node.digest = Some(run.digest.clone());
    node
}

impl Kept {
    /// Sends what changes between the tags `before` and the tags now
    /// asked for.
    async fn retag(
        &self,
        id: &str,
        before: &BTreeMap<String, String>,
        now: &BTreeMap<String, String>,
    ) -> Result<(), StepError> {
        let cloud = &self.run.cloud;
        let gone: Vec<ResourceTag> = before
            .iter()
            .filter(|(k, _)| !now.contains_key(*k))
            .map(|(k, v)| ResourceTag::new(k, v))
            .collect();
        if !gone.is_empty() {
            cloud
                .client
                .call(&DeleteTagsRequest {
                    resource_ids: vec![id.to_string()],
                    tags: gone,
                    ..Default::default()
                })
                .await
                .map_err(failed)?;
        }
        let changed: BTreeMap<String, String> = now
            .iter()
            .filter(|(k, v)| before.get(*k) != Some(*v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !changed.is_empty() {
            cloud
                .client
                .call(&CreateTagsRequest {
                    resource_ids: vec![id.to_string()],
                    tags: to_tags(&changed),
                    ..Default::default()
                })
                .await
                .map_err(failed)?;
        }
        Ok(())
    }
}

#[async_trait]
impl Step for Kept {
    async fn run(&self, run: &Run<'_>) -> Result<(), StepError> {
        let recorded = run.recorder.get(run.address);
        let Some((id, entry)) = recorded.and_then(|r| Some((r.id.clone()?, r))) else {
            return Err(StepError::Failed(format!(
                "{} was launched without {}",
                self.vm, run.address
            )));
        };
        let now = self.run.render(&self.tags)?;
        let before: BTreeMap<String, String> = entry
            .attributes
            .get("tags")
            .and_then(|t| serde_json::from_value(t.clone()).ok())
            .unwrap_or_default();
        self.retag(&id, &before, &now).await?;
        let mut attributes = entry.attributes.clone();
        attributes.insert("id".into(), json!(id));
        attributes.insert("tags".into(), json!(now));
        if let Some(size) = self.size {
            attributes.insert("size".into(), json!(size));
        }
        let (digest, status) = match run.action {
            // Complete with the build, by its record.
            crate::graph::Action::Update => (entry.input_digest.clone(), Status::Created),
            _ => (Some(self.run.digest.clone()), entry.status),
        };
        run.recorder
            .update(run.address, attributes, digest, status)
            .await?;
        self.run.outputs.put(run.address, super::Output::Id(id));
        Ok(())
    }
}
