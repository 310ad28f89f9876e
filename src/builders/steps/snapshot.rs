//! The OMI's snapshots: made by CreateImage (of the OMI, or of its capture),
//! recorded by the node that called it, or taken of a volume (the chroot
//! builder's); complete in the same write as the OMI; removed after it. A
//! capture's snapshot the OMI does not keep goes with the capture.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value, json};

use super::{BuildRun, Output, create, delete};
use crate::builders::cloud::{Cloud, failed, ownership_tags, waiting};
use crate::graph::{Address, DestroyError, Destroyed, Kind, Lifetime, Node, Run, Step, StepError};
use crate::oapi::model::*;
use crate::state::{Lookup, Status};

pub fn attributes(snapshot: &Snapshot) -> BTreeMap<String, Value> {
    BTreeMap::from([
        ("id".to_string(), json!(snapshot.snapshot_id)),
        ("volume_size".to_string(), json!(snapshot.volume_size)),
    ])
}

/// Checks that the snapshot was recorded as its image's nodes say.
struct Complete {
    maker: Address,
}

/// The node of the snapshot of `device`, made by the image at `maker`; an
/// ephemeral one goes with a capture the OMI does not keep it from.
pub fn node(run: &Arc<BuildRun>, maker: &Address, device: &str, lifetime: Lifetime) -> Node {
    let step = Complete {
        maker: maker.clone(),
    };
    let mut node = Node::new(
        &run.name,
        Kind::Snapshot,
        Some(device),
        lifetime,
        Arc::new(step),
    )
    .with("id", None);
    if lifetime == Lifetime::Durable {
        node.digest = Some(run.digest.clone());
    }
    node
}

#[async_trait]
impl Step for Complete {
    async fn run(&self, run: &Run<'_>) -> Result<(), StepError> {
        match run.recorder.get(run.address) {
            Some(r) if r.id.is_some() && (r.ephemeral || r.status == Status::Created) => Ok(()),
            Some(r) if r.id.is_some() => Err(StepError::Failed(format!(
                "{} is not part of the OMI {} made",
                run.address, self.maker
            ))),
            _ => Err(StepError::Failed(format!(
                "{} made no snapshot for {}",
                self.maker, run.address
            ))),
        }
    }
}

pub async fn destroy(cloud: &Cloud, id: &str) -> Result<Destroyed, DestroyError> {
    let request = DeleteSnapshotRequest {
        snapshot_id: id.to_string(),
        ..Default::default()
    };
    delete(cloud, request, id).await
}

struct Take {
    run: Arc<BuildRun>,
    volume: Address,
}

/// The node of a snapshot taken of the volume at `volume` (the chroot
/// builder's, behaviour §6 StepSnapshot), for `device` of the OMI. It is
/// the OMI's once the OMI is registered; until then a new apply takes
/// another.
pub fn take_node(run: &Arc<BuildRun>, volume: &Address, device: &str) -> Node {
    let step = Take {
        run: Arc::clone(run),
        volume: volume.clone(),
    };
    let mut node = Node::new(
        &run.name,
        Kind::Snapshot,
        Some(device),
        Lifetime::Durable,
        Arc::new(step),
    )
    .with("id", None);
    node.digest = Some(run.digest.clone());
    node
}

#[async_trait]
impl Step for Take {
    async fn run(&self, run: &Run<'_>) -> Result<(), StepError> {
        let cloud = &self.run.cloud;
        let Some(Output::Id(volume)) = self.run.output(&self.volume) else {
            return Err(StepError::Failed(format!("{} has not run", self.volume)));
        };
        let token = uuid::Uuid::new_v4().to_string();
        let request = CreateSnapshotRequest {
            volume_id: Some(volume),
            description: Some(format!("osci: {} of build {}", run.address, self.run.name)),
            client_token: Some(token.clone()),
            ..Default::default()
        };
        let snapshot = create(
            run,
            Kind::Snapshot,
            false,
            Lookup {
                name: None,
                client_token: Some(token),
            },
            async { Ok(cloud.client.call(&request).await?.snapshot) },
            |s: &Snapshot| s.snapshot_id.clone(),
        )
        .await?;
        let id = snapshot.snapshot_id.clone();
        let lineage = run.recorder.lineage();
        cloud.tagger.add(
            &self.run.name,
            std::slice::from_ref(&id),
            &ownership_tags(&lineage, &self.run.name),
        );
        cloud.tagger.flush(&self.run.name).await.map_err(failed)?;
        let done = waiting(
            run.recorder,
            run.address,
            "completed",
            cloud.waiters.snapshot_completed(&id, &cloud.wait),
        )
        .await?;
        run.recorder
            .update(
                run.address,
                attributes(&done),
                Some(self.run.digest.clone()),
                Status::Tainted,
            )
            .await?;
        self.run.outputs.put(run.address, Output::Id(id));
        Ok(())
    }
}

/// A snapshot whose CreateSnapshot answer was lost, by its ClientToken.
pub async fn find(
    cloud: &Cloud,
    r: &crate::state::ResourceState,
) -> Result<Option<String>, crate::oapi::Error> {
    let Some(token) = &r.lookup.client_token else {
        return Ok(None);
    };
    let read = ReadSnapshotsRequest {
        filters: Some(FiltersSnapshot {
            client_tokens: Some(vec![token.clone()]),
            ..Default::default()
        }),
        ..Default::default()
    };
    super::first_id(cloud, read, |s: Snapshot| Some(s.snapshot_id)).await
}
