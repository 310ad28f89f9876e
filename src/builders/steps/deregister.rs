//! `force_deregister` and `force_delete_snapshot` (behaviour C13): the OMIs
//! of this account named like the new one, found at plan time, each a node
//! of its own with the exact id it removes. The planner orders them after
//! what the new OMI is made from (the stopped VM, or the capture) and
//! before the OMI itself.

use std::sync::Arc;

use async_trait::async_trait;

use super::BuildRun;
use crate::builders::cloud::failed;
use crate::graph::{Action, Address, Event, Kind, Lifetime, Node, Run, Step, StepError};
use crate::oapi::model::{DeleteImageRequest, DeleteSnapshotRequest};

struct Deregister {
    run: Arc<BuildRun>,
    image_id: String,
}

struct DeleteSnapshot {
    run: Arc<BuildRun>,
    snapshot_id: String,
}

fn removal(run: &Arc<BuildRun>, kind: Kind, id: &str, option: &str, step: Arc<dyn Step>) -> Node {
    Node {
        address: Address::from_text(id),
        build: run.name.clone(),
        kind,
        lifetime: Lifetime::Removal,
        desired: Default::default(),
        digest: None,
        id: Some(id.to_string()),
        reason: Some(format!("{option} (build \"{}\")", run.name)),
        action: Some(Action::Destroy),
        step,
    }
}

pub fn image_node(run: &Arc<BuildRun>, image_id: &str) -> Node {
    let step = Deregister {
        run: Arc::clone(run),
        image_id: image_id.to_string(),
    };
    removal(
        run,
        Kind::ForceDeregister,
        image_id,
        "force_deregister",
        Arc::new(step),
    )
}

pub fn snapshot_node(run: &Arc<BuildRun>, snapshot_id: &str) -> Node {
    let step = DeleteSnapshot {
        run: Arc::clone(run),
        snapshot_id: snapshot_id.to_string(),
    };
    removal(
        run,
        Kind::ForceDeleteSnapshot,
        snapshot_id,
        "force_delete_snapshot",
        Arc::new(step),
    )
}

#[async_trait]
impl Step for Deregister {
    async fn run(&self, _: &Run<'_>) -> Result<(), StepError> {
        let cloud = &self.run.cloud;
        // Own account only, checked again: never another's OMI.
        let image = cloud
            .waiters
            .image_now(&self.image_id)
            .await
            .map_err(failed)?;
        if image.is_none_or(|i| i.account_id != cloud.account_id) {
            return Ok(());
        }
        match cloud
            .client
            .call(&DeleteImageRequest {
                image_id: self.image_id.clone(),
                ..Default::default()
            })
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(failed(e)),
        }
    }
}

#[async_trait]
impl Step for DeleteSnapshot {
    async fn run(&self, run: &Run<'_>) -> Result<(), StepError> {
        let request = DeleteSnapshotRequest {
            snapshot_id: self.snapshot_id.clone(),
            ..Default::default()
        };
        match self.run.cloud.client.call(&request).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            // Another image registered from it: not this OMI's to take.
            Err(e) if e.api().is_some_and(|a| a.is_dependency()) => {
                run.recorder.event(Event::Note {
                    build: self.run.name.clone(),
                    text: format!(
                        "snapshot {} is kept: another OMI still uses it",
                        self.snapshot_id
                    ),
                });
                Ok(())
            }
            Err(e) => Err(failed(e)),
        }
    }
}
