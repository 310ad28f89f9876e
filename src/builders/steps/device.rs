//! The device a chroot build links its volume at (behaviour §6, StepFlock,
//! StepPrepareDevice, StepLinkVolume and StepEarlyUnflock in one job): the
//! host-wide lock is taken, a free device name chosen (or `device_path`)
//! and recorded, the volume linked there and the device waited for, and
//! the lock given up, so that parallel builds on one host, of osci or
//! Packer, pick distinct devices. One job, so that no job waits for the
//! lock while holding a place another build's link needs.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;

use super::{BuildRun, Output, link};
use crate::builders::host;
use crate::graph::{Address, Kind, Lifetime, Node, Pending, Run, Step, StepError};
use crate::state::Lookup;

struct Choose {
    run: Arc<BuildRun>,
    /// `device_path`, else the first free name.
    device_path: Option<String>,
    volume: Address,
    link: Address,
    /// Whether the linked device shows under its name (not with
    /// `nvme_device_path`).
    wait_for_device: bool,
}

pub fn node(
    run: &Arc<BuildRun>,
    device_path: Option<String>,
    volume: &Address,
    wait_for_device: bool,
) -> Node {
    let shown = device_path.clone().map(|d| json!(d));
    let step = Choose {
        run: Arc::clone(run),
        device_path,
        volume: volume.clone(),
        link: run.address(Kind::Link, None),
        wait_for_device,
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

/// The lock, given up whichever way the job ends.
struct Locked<'a>(&'a str);

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        host::unlock(self.0);
    }
}

#[async_trait]
impl Step for Choose {
    async fn run(&self, run: &Run<'_>) -> Result<(), StepError> {
        let Some(Output::Id(volume)) = self.run.output(&self.volume) else {
            return Err(StepError::Failed(format!("{} has not run", self.volume)));
        };
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
        let _locked = Locked(run.address.as_str());
        let device = match &self.device_path {
            Some(d) => d.clone(),
            None => host::free_device().map_err(StepError::Failed)?,
        };
        if std::path::Path::new(&device).exists() {
            return Err(StepError::Failed(format!(
                "{device} is in use on this host: choose another device_path"
            )));
        }
        run.recorder.created(run.address, &device).await?;
        self.run
            .outputs
            .put(run.address, Output::Id(device.clone()));
        let linking = Run {
            address: &self.link,
            ..*run
        };
        link::make(&linking, &self.run, &volume, &device, self.wait_for_device).await
    }
}
