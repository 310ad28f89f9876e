//! The build VM's volumes: made by its launch, recorded by the VM's node,
//! removed with the VM when marked so, or after it.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value, json};

use super::{BuildRun, OutscaleDestroyer, delete, destroy_error};
use crate::graph::{Address, DestroyError, Destroyed, Kind, Lifetime, Node, Run, Step, StepError};
use crate::oapi::model::DeleteVolumeRequest;
use crate::state::ResourceState;

/// Checks that the VM's launch recorded the volume.
struct Recorded {
    vm: Address,
}

/// The node of the volume at `device`; `size` in GiB when the plan knows it.
pub fn node(run: &Arc<BuildRun>, vm: &Address, device: &str, size: Option<i64>) -> Node {
    let step = Recorded { vm: vm.clone() };
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
        match run.recorder.get(run.address) {
            Some(r) if r.id.is_some() => Ok(()),
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
