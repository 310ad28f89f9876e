//! A volume linked to the host (behaviour §6, StepLinkVolume): LinkVolume
//! to the VM osci runs on at the device the build chose (by the device's
//! job, under the host-wide lock), then a wait for the link and for the
//! block device to appear. Removing it unlinks the volume (by its id: never
//! another build's device) and waits until it is free again.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;

use super::{BuildRun, create, destroy_error};
use crate::builders::cloud::{Cloud, failed, waiting};
use crate::builders::host;
use crate::graph::{Address, DestroyError, Destroyed, Kind, Lifetime, Node, Run, Step, StepError};
use crate::oapi::model::*;
use crate::state::{Lookup, ResourceState};

/// Checks that the device's job linked the volume.
struct Linked {
    device: Address,
}

/// The node of the link the device's job makes.
pub fn node(run: &Arc<BuildRun>, device: &Address) -> Node {
    let step = Linked {
        device: device.clone(),
    };
    Node::new(
        &run.name,
        Kind::Link,
        None,
        Lifetime::Ephemeral,
        Arc::new(step),
    )
}

#[async_trait]
impl Step for Linked {
    async fn run(&self, run: &Run<'_>) -> Result<(), StepError> {
        match run.recorder.get(run.address).and_then(|r| r.id) {
            Some(_) => Ok(()),
            None => Err(StepError::Failed(format!(
                "{} did not link {}",
                self.device, run.address
            ))),
        }
    }
}

/// Links `volume` to the VM osci runs on at `device`, recorded at
/// `run.address` before the call, and waits for the link and (unless
/// `nvme_device_path` names the device) for the block device.
pub async fn make(
    run: &Run<'_>,
    build: &BuildRun,
    volume: &str,
    device: &str,
    wait_for_device: bool,
) -> Result<(), StepError> {
    let cloud = &build.cloud;
    let vm = cloud
        .metadata
        .get("instance-id")
        .await
        .map_err(StepError::Failed)?;
    let request = LinkVolumeRequest {
        volume_id: volume.to_string(),
        vm_id: vm.clone(),
        device_name: device.to_string(),
        ..Default::default()
    };
    create(
        run,
        Kind::Link,
        true,
        Lookup::name(volume),
        async { cloud.client.call(&request).await },
        |_| volume.to_string(),
    )
    .await?;
    run.recorder
        .update(
            run.address,
            [
                ("device".to_string(), json!(device)),
                ("vm".to_string(), json!(vm)),
            ]
            .into(),
            None,
            crate::state::Status::Created,
        )
        .await?;
    waiting(
        run.recorder,
        run.address,
        "attached",
        cloud.waiters.volume_attached(volume, &cloud.wait),
    )
    .await?;
    if wait_for_device {
        host::wait_for_device(device)
            .await
            .map_err(StepError::Failed)?;
    }
    Ok(())
}

/// The volume of a link whose answer was lost: the one it was asked for,
/// if it is linked now.
pub async fn find(cloud: &Cloud, r: &ResourceState) -> Result<Option<String>, crate::oapi::Error> {
    let Some(volume) = &r.lookup.name else {
        return Ok(None);
    };
    Ok(cloud
        .waiters
        .volume_now(volume)
        .await?
        .filter(|v| !v.linked_volumes.is_empty())
        .map(|v| v.volume_id))
}

pub async fn destroy(cloud: &Cloud, volume: &str) -> Result<Destroyed, DestroyError> {
    let Some(v) = cloud
        .waiters
        .volume_now(volume)
        .await
        .map_err(destroy_error)?
    else {
        return Ok(Destroyed::AlreadyGone);
    };
    if v.linked_volumes.is_empty() {
        return Ok(Destroyed::AlreadyGone);
    }
    if v.linked_volumes.iter().any(|l| l.state != "detaching") {
        let request = UnlinkVolumeRequest {
            volume_id: volume.to_string(),
            ..Default::default()
        };
        match cloud.client.call(&request).await {
            Ok(_) => {}
            Err(e) if e.is_not_found() => return Ok(Destroyed::AlreadyGone),
            Err(e) => return Err(destroy_error(e)),
        }
    }
    cloud
        .waiters
        .volume_available(volume, &cloud.wait)
        .await
        .map_err(|e| DestroyError::Failed(failed(e).to_string()))?;
    Ok(Destroyed::Deleted(volume.to_string()))
}
