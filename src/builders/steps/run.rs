//! The record that a build which registers no OMI ran (`skip_create_omi`;
//! bsuvolume, whose volumes it completes), with which inputs: what lets
//! the next plan say "No changes".

use std::sync::Arc;

use async_trait::async_trait;

use super::BuildRun;
use crate::graph::{Kind, Lifetime, Node, Run, Step, StepError};
use crate::state::{ResourceState, Status};

struct Record {
    run: Arc<BuildRun>,
}

pub fn node(run: &Arc<BuildRun>) -> Node {
    let step = Record {
        run: Arc::clone(run),
    };
    let mut node = Node::new(
        &run.name,
        Kind::Run,
        None,
        Lifetime::Durable,
        Arc::new(step),
    );
    node.digest = Some(run.digest.clone());
    node
}

#[async_trait]
impl Step for Record {
    async fn run(&self, run: &Run<'_>) -> Result<(), StepError> {
        // The volumes the build keeps are complete with it, in one write.
        let mut entries: Vec<ResourceState> = run
            .recorder
            .build_entries(&self.run.name)
            .into_iter()
            .filter(|r| r.kind == Kind::Volume && !r.ephemeral && r.status == Status::Tainted)
            .map(|r| ResourceState {
                status: Status::Created,
                ..r
            })
            .collect();
        let entry = ResourceState {
            input_digest: Some(self.run.digest.clone()),
            ..ResourceState::made(
                run.address.clone(),
                &self.run.name,
                Kind::Run,
                false,
                self.run.digest.clone(),
                Status::Created,
            )
        };
        entries.push(entry);
        run.recorder.settled(entries).await?;
        super::volume::remove_replaced(run, &self.run).await?;
        Ok(())
    }
}
