//! The temporary security group (behaviour C7): made when the template
//! names none, open on the SSH port to `temporary_security_group_source_cidr`
//! when the communicator needs it.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;

use super::{BuildRun, Output, create, delete, first_id};
use crate::builders::cloud::{Cloud, failed, ownership_tags, temporary_name};
use crate::graph::{DestroyError, Destroyed, Kind, Lifetime, Node, Run, Step, StepError};
use crate::oapi::Error;
use crate::oapi::model::*;
use crate::state::{Lookup, ResourceState};

struct Make {
    run: Arc<BuildRun>,
    net_id: Option<String>,
    /// The inbound rule for the communicator: port and source range.
    rule: Option<(u16, String)>,
}

/// The node of a build's temporary security group.
pub fn node(
    run: &Arc<BuildRun>,
    net_id: Option<String>,
    rule: Option<(u16, String)>,
    cidr: &str,
) -> Node {
    let step = Make {
        run: Arc::clone(run),
        net_id,
        rule,
    };
    Node::new(
        &run.name,
        Kind::SecurityGroup,
        None,
        Lifetime::Ephemeral,
        Arc::new(step),
    )
    .with("source_cidr", Some(json!(cidr)))
}

#[async_trait]
impl Step for Make {
    async fn run(&self, run: &Run<'_>) -> Result<(), StepError> {
        let cloud = &self.run.cloud;
        let name = temporary_name(&run.recorder.lineage(), &self.run.name);
        let request = CreateSecurityGroupRequest {
            security_group_name: name.clone(),
            description: format!("Temporary group for osci build {}", self.run.name),
            net_id: self.net_id.clone(),
            ..Default::default()
        };
        let id = create(
            run,
            Kind::SecurityGroup,
            true,
            Lookup::name(name),
            async {
                let answer = cloud.client.call(&request).await?;
                Ok(answer.security_group.security_group_id)
            },
            String::clone,
        )
        .await?;
        if let Some((port, cidr)) = &self.rule {
            cloud
                .client
                .call(&CreateSecurityGroupRuleRequest {
                    security_group_id: id.clone(),
                    flow: "Inbound".into(),
                    ip_protocol: Some("tcp".into()),
                    from_port_range: Some(i64::from(*port)),
                    to_port_range: Some(i64::from(*port)),
                    ip_range: Some(cidr.clone()),
                    ..Default::default()
                })
                .await
                .map_err(failed)?;
        }
        // Found again by its name: its tags can wait for the VM's.
        cloud.tagger.add(
            &self.run.name,
            std::slice::from_ref(&id),
            &ownership_tags(&run.recorder.lineage(), &self.run.name),
        );
        self.run.outputs.put(run.address, Output::Id(id));
        Ok(())
    }
}

pub async fn find(cloud: &Cloud, r: &ResourceState) -> Result<Option<String>, Error> {
    let Some(name) = &r.lookup.name else {
        return Ok(None);
    };
    let read = ReadSecurityGroupsRequest {
        filters: Some(FiltersSecurityGroup {
            security_group_names: Some(vec![name.clone()]),
            ..Default::default()
        }),
        ..Default::default()
    };
    first_id(cloud, read, |g| Some(g.security_group_id)).await
}

pub async fn destroy(cloud: &Cloud, id: &str) -> Result<Destroyed, DestroyError> {
    let request = DeleteSecurityGroupRequest {
        security_group_id: Some(id.to_string()),
        ..Default::default()
    };
    delete(cloud, request, id).await
}
