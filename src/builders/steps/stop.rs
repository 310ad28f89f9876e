//! Stopping the build VM before it is captured (behaviour C14).

use std::sync::Arc;

use async_trait::async_trait;

use super::{BuildRun, Output};
use crate::builders::cloud::{failed, state_reporter, waiting};
use crate::graph::{Address, Kind, Lifetime, Node, Run, Step, StepError};
use crate::oapi::model::StopVmsRequest;

struct Stop {
    run: Arc<BuildRun>,
    vm: Address,
    /// `disable_stop_vm`: the provisioners stop it themselves.
    by_provisioners: bool,
}

pub fn node(run: &Arc<BuildRun>, vm: &Address, by_provisioners: bool) -> Node {
    let step = Stop {
        run: Arc::clone(run),
        vm: vm.clone(),
        by_provisioners,
    };
    Node::new(&run.name, Kind::Stop, None, Lifetime::Step, Arc::new(step))
}

#[async_trait]
impl Step for Stop {
    async fn run(&self, run: &Run<'_>) -> Result<(), StepError> {
        if run.recorder.cancelled() {
            return Err(StepError::Interrupted(format!(
                "interrupted before {}",
                run.address
            )));
        }
        let cloud = &self.run.cloud;
        let vm = self.run.vm(&self.vm)?;
        if !self.by_provisioners {
            cloud
                .client
                .call(&StopVmsRequest {
                    vm_ids: vec![vm.vm_id.clone()],
                    ..Default::default()
                })
                .await
                .map_err(failed)?;
        }
        // Whatever the shutdown behaviour, StopVms ends in "stopped"; the
        // plugin waited for "terminated" with terminate and hung forever.
        let report = state_reporter(run.recorder, &self.vm);
        let stopped = waiting(
            run.recorder,
            &self.vm,
            "stopped",
            cloud
                .waiters
                .vm_reporting(&vm.vm_id, "stopped", &cloud.wait, &report),
        )
        .await?
        .ok_or_else(|| StepError::Failed(format!("VM {} vanished", vm.vm_id)))?;
        self.run
            .outputs
            .put(&self.vm, Output::Vm(Box::new(stopped)));
        Ok(())
    }
}
