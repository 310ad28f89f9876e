//! The record that a build which keeps nothing (`skip_create_omi`) ran,
//! with which inputs: what lets the next plan say "No changes".

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
        run.recorder.settled(vec![entry]).await?;
        Ok(())
    }
}
