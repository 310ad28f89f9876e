//! The temporary keypair (behaviour C5): OUTSCALE generates it; its private
//! key stays in memory, never in the state or the output.

use std::sync::Arc;

use async_trait::async_trait;

use super::{BuildRun, Output, create, delete, first_id};
use crate::builders::cloud::{Cloud, ownership_tags, temporary_name};
use crate::graph::{DestroyError, Destroyed, Kind, Lifetime, Node, Run, Step, StepError};
use crate::oapi::Error;
use crate::oapi::model::*;
use crate::state::{Lookup, ResourceState};

struct Make {
    run: Arc<BuildRun>,
    /// `temporary_key_pair_name`, else a name of osci's.
    name: Option<String>,
}

pub fn node(run: &Arc<BuildRun>, name: Option<String>) -> Node {
    let step = Make {
        run: Arc::clone(run),
        name,
    };
    Node::new(
        &run.name,
        Kind::Keypair,
        None,
        Lifetime::Ephemeral,
        Arc::new(step),
    )
}

#[async_trait]
impl Step for Make {
    async fn run(&self, run: &Run<'_>) -> Result<(), StepError> {
        let cloud = &self.run.cloud;
        let lineage = run.recorder.lineage();
        let name = self
            .name
            .clone()
            .unwrap_or_else(|| temporary_name(&lineage, &self.run.name));
        let request = CreateKeypairRequest {
            keypair_name: name.clone(),
            ..Default::default()
        };
        let made = create(
            run,
            Kind::Keypair,
            true,
            Lookup::name(name.clone()),
            async { Ok(cloud.client.call(&request).await?.keypair) },
            |k: &KeypairCreated| {
                k.keypair_id
                    .clone()
                    .unwrap_or_else(|| k.keypair_name.clone())
            },
        )
        .await?;
        let private_key = made.private_key.ok_or_else(|| {
            StepError::Failed(format!("CreateKeypair gave no private key for {name}"))
        })?;
        if let Some(id) = &made.keypair_id {
            cloud.tagger.add(
                &self.run.name,
                std::slice::from_ref(id),
                &ownership_tags(&lineage, &self.run.name),
            );
        }
        self.run
            .outputs
            .put(run.address, Output::Keypair { name, private_key });
        Ok(())
    }
}

pub async fn find(cloud: &Cloud, r: &ResourceState) -> Result<Option<String>, Error> {
    let Some(name) = &r.lookup.name else {
        return Ok(None);
    };
    let read = ReadKeypairsRequest {
        filters: Some(FiltersKeypair {
            keypair_names: Some(vec![name.clone()]),
            ..Default::default()
        }),
        ..Default::default()
    };
    first_id(cloud, read, |k| k.keypair_id).await
}

pub async fn destroy(cloud: &Cloud, id: &str) -> Result<Destroyed, DestroyError> {
    let request = DeleteKeypairRequest {
        keypair_id: Some(id.to_string()),
        ..Default::default()
    };
    delete(cloud, request, id).await
}
