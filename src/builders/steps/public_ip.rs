//! The public IP of `associate_public_ip_address` (behaviour C6), linked to
//! the VM once it runs.

use std::sync::Arc;

use async_trait::async_trait;

use super::{BuildRun, Output, create, delete, first_id};
use crate::builders::cloud::{Cloud, TAG_BUILD, ours, ownership_tags};
use crate::graph::{DestroyError, Destroyed, Kind, Lifetime, Node, Run, Step, StepError};
use crate::oapi::Error;
use crate::oapi::model::*;
use crate::state::{Lookup, ResourceState};

struct Make {
    run: Arc<BuildRun>,
}

pub fn node(run: &Arc<BuildRun>) -> Node {
    let step = Make {
        run: Arc::clone(run),
    };
    Node::new(
        &run.name,
        Kind::PublicIp,
        None,
        Lifetime::Ephemeral,
        Arc::new(step),
    )
}

#[async_trait]
impl Step for Make {
    async fn run(&self, run: &Run<'_>) -> Result<(), StepError> {
        let cloud = &self.run.cloud;
        let id = create(
            run,
            Kind::PublicIp,
            true,
            Lookup::default(),
            async {
                let answer = cloud.client.call(&CreatePublicIpRequest::default()).await?;
                Ok(answer.public_ip.public_ip_id)
            },
            String::clone,
        )
        .await?;
        cloud.tagger.add(
            &self.run.name,
            std::slice::from_ref(&id),
            &ownership_tags(&run.recorder.lineage(), &self.run.name),
        );
        self.run.outputs.put(run.address, Output::Id(id));
        Ok(())
    }
}

/// A build has one public IP: this state's, of this build.
pub async fn find(
    cloud: &Cloud,
    r: &ResourceState,
    lineage: &str,
) -> Result<Option<String>, Error> {
    let read = ReadPublicIpsRequest {
        filters: Some(FiltersPublicIp {
            tags: Some(vec![format!("{TAG_BUILD}={}", r.build)]),
            ..Default::default()
        }),
        ..Default::default()
    };
    first_id(cloud, read, |p| {
        ours(&p.tags, lineage).then_some(p.public_ip_id)
    })
    .await
}

pub async fn destroy(cloud: &Cloud, id: &str) -> Result<Destroyed, DestroyError> {
    let request = DeletePublicIpRequest {
        public_ip_id: Some(id.to_string()),
        ..Default::default()
    };
    delete(cloud, request, id).await
}
