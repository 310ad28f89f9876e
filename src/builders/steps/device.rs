//! The device a chroot build links its volume at (behaviour §6, StepFlock
//! and StepPrepareDevice): the host-wide lock is taken, a free device name
//! chosen (or `device_path`), and the lock is held until the volume is
//! linked there, so that parallel builds on one host, of osci or Packer,
//! pick distinct devices. Its removal gives the lock up; a lock of a run
//! that ended went with its process.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;

use super::{BuildRun, Output};
use crate::builders::host;
use crate::graph::{Kind, Lifetime, Node, Pending, Run, Step, StepError};
use crate::state::Lookup;

struct Choose {
    run: Arc<BuildRun>,
    /// `device_path`, else the first free name.
    device_path: Option<String>,
}

pub fn node(run: &Arc<BuildRun>, device_path: Option<String>) -> Node {
    let shown = device_path.clone().map(|d| json!(d));
    let step = Choose {
        run: Arc::clone(run),
        device_path,
    };
    Node::new(
        &run.name,
        Kind::Device,
        None,
        Lifetime::Held,
        Arc::new(step),
    )
    .with("device", shown)
}

#[async_trait]
impl Step for Choose {
    async fn run(&self, run: &Run<'_>) -> Result<(), StepError> {
        run.recorder
            .pending(Pending {
                address: run.address.clone(),
                kind: Kind::Device,
                ephemeral: true,
                lookup: Lookup::default(),
            })
            .await?;
        host::lock(run.address.as_str())
            .await
            .map_err(|e| StepError::Failed(format!("the host's device lock: {e}")))?;
        let device = match &self.device_path {
            Some(d) => d.clone(),
            None => host::free_device().map_err(StepError::Failed)?,
        };
        if std::path::Path::new(&device).exists() {
            host::unlock(run.address.as_str());
            return Err(StepError::Failed(format!(
                "{device} is in use on this host: choose another device_path"
            )));
        }
        run.recorder.created(run.address, &device).await?;
        self.run.outputs.put(run.address, Output::Id(device));
        Ok(())
    }
}
