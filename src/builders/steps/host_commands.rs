//! `pre_mount_commands` and `post_mount_commands` (behaviour §6): shell
//! commands on the host, rendered with `{{.Device}}` (and `{{.MountPath}}`
//! once mounted), through `command_wrapper`. After each, the device's
//! partitions are given time to appear, as `udevadm settle` would: a
//! command that partitions the device is followed by one that formats
//! the partition.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;

use super::{BuildRun, Output};
use crate::builders::host;
use crate::graph::{Address, Event, Kind, Lifetime, Node, Run, Step, StepError};

/// The key of the commands run before mounting.
pub const PRE_MOUNT: &str = "pre_mount";
/// The key of the commands run after mounting.
pub const POST_MOUNT: &str = "post_mount";

struct Commands {
    run: Arc<BuildRun>,
    commands: Vec<String>,
    wrapper: String,
    device: Address,
    /// The root mount, once there is one.
    mount: Option<Address>,
}

pub fn node(
    run: &Arc<BuildRun>,
    key: &str,
    commands: Vec<String>,
    wrapper: String,
    device: &Address,
    mount: Option<&Address>,
) -> Node {
    let shown = json!(commands.iter().map(|c| run.mask(c)).collect::<Vec<_>>());
    let step = Commands {
        run: Arc::clone(run),
        commands,
        wrapper,
        device: device.clone(),
        mount: mount.cloned(),
    };
    Node::new(
        &run.name,
        Kind::HostCommands,
        Some(key),
        Lifetime::Step,
        Arc::new(step),
    )
    .with("commands", Some(shown))
}

#[async_trait]
impl Step for Commands {
    async fn run(&self, run: &Run<'_>) -> Result<(), StepError> {
        let id = |address: &Address| match self.run.output(address) {
            Some(Output::Id(id)) => Ok(id),
            _ => Err(StepError::Failed(format!("{address} has not run"))),
        };
        let device = id(&self.device)?;
        let mut fields = BTreeMap::from([("Device".to_string(), device.clone())]);
        if let Some(mount) = &self.mount {
            fields.insert("MountPath".into(), id(mount)?);
        }
        let output = |line: &str| {
            run.recorder.event(Event::Output {
                build: self.run.name.clone(),
                line: self.run.mask(line),
            })
        };
        for (i, command) in self.commands.iter().enumerate() {
            if run.recorder.cancelled() {
                return Err(StepError::Interrupted(format!(
                    "interrupted in {}",
                    run.address
                )));
            }
            let key = run.address.key().unwrap_or_default();
            let command =
                crate::template::render_provisioner(command, &fields, &Default::default())
                    .map_err(|e| StepError::Failed(format!("{key}_commands[{i}]: {e}")))?;
            output(&format!("{key}_commands[{i}]: {command}"));
            host::run(&command, &self.wrapper, &output)
                .await
                .map_err(|e| {
                    StepError::Failed(self.run.mask(&format!("{key}_commands[{i}]: {e}")))
                })?;
            host::settle(&device).await.map_err(StepError::Failed)?;
        }
        Ok(())
    }
}
