//! The OMI's snapshots: made by CreateImage (of the OMI, or of its capture),
//! recorded by the node that called it, complete in the same write as the
//! OMI; removed after it. A capture's snapshot the OMI does not keep goes
//! with the capture.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value, json};

use super::{BuildRun, delete};
use crate::builders::cloud::Cloud;
use crate::graph::{Address, DestroyError, Destroyed, Kind, Lifetime, Node, Run, Step, StepError};
use crate::oapi::model::{DeleteSnapshotRequest, Snapshot};
use crate::state::Status;

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
