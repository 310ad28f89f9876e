//! The build VM (behaviour C8): launched from the source OMI with its
//! security groups, keypair, user data and block devices; its volumes are
//! recorded as soon as the launch names them, and it is running (with its
//! public IP linked) when the node is done.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;

use super::{BuildRun, Output, OutscaleDestroyer, create, delete, first_id, volume};
use crate::builders::cloud::{Cloud, failed, ownership_tags, state_reporter, to_tags, waiting};
use crate::graph::{Address, DestroyError, Destroyed, Kind, Lifetime, Node, Run, Step, StepError};
use crate::oapi::Error;
use crate::oapi::model::*;
use crate::state::{Lookup, ResourceState, Status};
use crate::template::{BlockDevice, RunConfig};

/// Where the launch takes its security groups and keypair from.
pub struct Launch {
    pub source_omi: String,
    /// The run options, with the network filters resolved to ids.
    pub config: RunConfig,
    pub mappings: Vec<BlockDevice>,
    /// The temporary security group's node, else `config.security_group_ids`.
    pub security_group: Option<Address>,
    /// The temporary keypair's node, else `keypair_name` (the user's).
    pub keypair: Option<Address>,
    pub keypair_name: Option<String>,
    pub public_ip: Option<Address>,
    /// The devices whose volumes the build keeps (bsuvolume's): recorded
    /// as durable, and complete once the build is.
    pub kept: std::collections::BTreeSet<String>,
}

struct Make {
    run: Arc<BuildRun>,
    launch: Launch,
}

pub fn node(run: &Arc<BuildRun>, launch: Launch) -> Node {
    let attributes = [
        ("source_omi", json!(launch.source_omi)),
        ("vm_type", json!(launch.config.vm_type)),
    ];
    let step = Make {
        run: Arc::clone(run),
        launch,
    };
    let mut node = Node::new(
        &run.name,
        Kind::Vm,
        None,
        Lifetime::Ephemeral,
        Arc::new(step),
    );
    for (k, v) in attributes {
        node = node.with(k, Some(v));
    }
    node
}

/// The attributes a VM's volume is recorded with: destroy needs to know
/// whether it goes with its VM.
pub fn volume_attributes(
    vm_id: &str,
    m: &BlockDeviceMappingCreated,
) -> BTreeMap<String, serde_json::Value> {
    BTreeMap::from([
        ("device".to_string(), json!(m.device_name)),
        ("vm".to_string(), json!(vm_id)),
        (
            "delete_on_vm_deletion".to_string(),
            json!(m.bsu.delete_on_vm_deletion),
        ),
    ])
}

impl Make {
    fn request(&self, token: &str) -> Result<CreateVmsRequest, StepError> {
        let l = &self.launch;
        let c = &l.config;
        let groups = match &l.security_group {
            Some(address) => match self.run.output(address) {
                Some(Output::Id(id)) => vec![id],
                _ => return Err(StepError::Failed(format!("{address} has not run"))),
            },
            None => c.security_group_ids.clone(),
        };
        let keypair = match &l.keypair {
            Some(address) => match self.run.output(address) {
                Some(Output::Keypair { name, .. }) => Some(name),
                _ => return Err(StepError::Failed(format!("{address} has not run"))),
            },
            None => l.keypair_name.clone(),
        };
        let mappings: Vec<BlockDeviceMappingVmCreation> = l
            .mappings
            .iter()
            .map(|m| {
                if m.no_device {
                    BlockDeviceMappingVmCreation {
                        device_name: Some(m.device_name.clone()),
                        no_device: Some(String::new()),
                        ..Default::default()
                    }
                } else {
                    BlockDeviceMappingVmCreation {
                        device_name: Some(m.device_name.clone()),
                        bsu: Some(BsuToCreate {
                            // Unlike the plugin, volumes go with the VM unless the
                            // template keeps them: nothing is left behind.
                            delete_on_vm_deletion: Some(m.delete_on_vm_deletion.unwrap_or(true)),
                            iops: m.iops.filter(|_| m.volume_type.as_deref() == Some("io1")),
                            snapshot_id: m.snapshot_id.clone(),
                            volume_size: m.volume_size.filter(|s| *s > 0),
                            volume_type: m.volume_type.clone(),
                        }),
                        ..Default::default()
                    }
                }
            })
            .collect();
        Ok(CreateVmsRequest {
            image_id: l.source_omi.clone(),
            vm_type: Some(c.vm_type.clone()),
            keypair_name: keypair,
            security_group_ids: Some(groups),
            subnet_id: c.subnet_id.clone(),
            placement: c.subregion_name.as_ref().map(|s| Placement {
                subregion_name: Some(s.clone()),
                tenancy: None,
            }),
            user_data: c.user_data.as_ref().map(|d| d.to_base64()),
            block_device_mappings: (!mappings.is_empty()).then_some(mappings),
            client_token: Some(token.to_string()),
            min_vms_count: Some(1),
            max_vms_count: Some(1),
            vm_initiated_shutdown_behavior: Some(c.shutdown_behavior.clone()),
            boot_mode: c.boot_mode.clone(),
            bsu_optimized: Some(c.bsu_optimized),
            ..Default::default()
        })
    }

    /// Records the volumes of `vm` the state lacks, and asks for their tags
    /// (every volume gets run_volume_tags; the plugin tagged only the first).
    async fn record_volumes(&self, run: &Run<'_>, vm: &Vm) -> Result<(), StepError> {
        let new: Vec<&BlockDeviceMappingCreated> = vm
            .block_device_mappings
            .iter()
            .filter(|m| {
                let address = self.run.address(Kind::Volume, Some(&m.device_name));
                run.recorder.get(&address).and_then(|r| r.id).as_deref()
                    != Some(m.bsu.volume_id.as_str())
            })
            .collect();
        if new.is_empty() {
            return Ok(());
        }
        let mut entries: Vec<ResourceState> = Vec::new();
        for m in &new {
            let address = self.run.address(Kind::Volume, Some(&m.device_name));
            let kept = self.launch.kept.contains(&m.device_name);
            // A kept volume made anew: the one it replaces stays in the
            // state, under another key, until the new one is complete.
            let previous_address = self
                .run
                .address(Kind::Volume, Some(&volume::previous_key(&m.device_name)));
            if let Some(previous) = run
                .recorder
                .get(&address)
                .filter(|r| !r.ephemeral && r.id.is_some() && r.status == Status::Created)
                && run.recorder.get(&previous_address).is_none()
            {
                entries.push(ResourceState {
                    address: previous_address,
                    ..previous
                });
            }
            entries.push(ResourceState {
                attributes: volume_attributes(&vm.vm_id, m),
                input_digest: kept.then(|| self.run.digest.clone()),
                ..ResourceState::made(
                    address,
                    &self.run.name,
                    Kind::Volume,
                    !kept,
                    m.bsu.volume_id.clone(),
                    if kept {
                        Status::Tainted
                    } else {
                        Status::Created
                    },
                )
            });
        }
        run.recorder.made_with(run.address, entries).await?;
        let ids: Vec<String> = new.iter().map(|m| m.bsu.volume_id.clone()).collect();
        let mut tags = ownership_tags(&run.recorder.lineage(), &self.run.name);
        tags.extend(to_tags(
            &self.run.render(&self.launch.config.run_volume_tags)?,
        ));
        self.run.cloud.tagger.add(&self.run.name, &ids, &tags);
        Ok(())
    }
}

#[async_trait]
impl Step for Make {
    async fn run(&self, run: &Run<'_>) -> Result<(), StepError> {
        let cloud = &self.run.cloud;
        // One token per launch: retries of this call are idempotent, and the
        // pending entry keeps it so a crashed run's VM is found again. It is
        // never reused, or a later build would get back an old (terminated) VM.
        let token = format!("osci-{}", uuid::Uuid::new_v4());
        let request = self.request(&token)?;
        let vm = create(
            run,
            Kind::Vm,
            true,
            Lookup::client_token(token),
            async {
                let vms = cloud.client.call(&request).await?.vms;
                vms.into_iter().next().ok_or_else(|| Error::Decode {
                    operation: "CreateVms",
                    message: "the answer holds no VM".into(),
                    body: String::new(),
                })
            },
            |vm: &Vm| vm.vm_id.clone(),
        )
        .await?;
        let mut run_tags = self.run.render(&self.launch.config.run_tags)?;
        run_tags
            .entry("Name".into())
            .or_insert_with(|| format!("osci builder {}", self.run.name));
        let mut tags = ownership_tags(&run.recorder.lineage(), &self.run.name);
        tags.extend(to_tags(&run_tags));
        cloud
            .tagger
            .add(&self.run.name, std::slice::from_ref(&vm.vm_id), &tags);
        self.record_volumes(run, &vm).await?;
        // The VM's tags, its volumes', and those of what it was launched
        // with, in as few calls as their tags allow, while it boots.
        let report = state_reporter(run.recorder, run.address);
        let (tagged, running) = tokio::join!(
            cloud.tagger.flush(&self.run.name),
            waiting(
                run.recorder,
                run.address,
                "running",
                cloud
                    .waiters
                    .vm_reporting(&vm.vm_id, "running", &cloud.wait, &report),
            )
        );
        tagged.map_err(failed)?;
        let vm = running?.ok_or_else(|| StepError::Failed(format!("VM {} vanished", vm.vm_id)))?;
        // Volumes the launch answer did not name yet.
        self.record_volumes(run, &vm).await?;
        cloud.tagger.flush(&self.run.name).await.map_err(failed)?;
        let mut vm = vm;
        if let Some(address) = &self.launch.public_ip {
            let Some(Output::Id(ip)) = self.run.output(address) else {
                return Err(StepError::Failed(format!("{address} has not run")));
            };
            cloud
                .client
                .call(&LinkPublicIpRequest {
                    public_ip_id: Some(ip),
                    vm_id: Some(vm.vm_id.clone()),
                    ..Default::default()
                })
                .await
                .map_err(failed)?;
            // The link changed its addresses.
            if let Some(current) = cloud.waiters.vm_now(&vm.vm_id).await.map_err(failed)? {
                vm = current;
            }
        }
        self.run.outputs.put(run.address, Output::Vm(Box::new(vm)));
        Ok(())
    }
}

/// A VM whose CreateVms answer was lost, by the ClientToken it was given.
pub async fn find(cloud: &Cloud, r: &ResourceState) -> Result<Option<String>, Error> {
    let Some(token) = &r.lookup.client_token else {
        return Ok(None);
    };
    let read = ReadVmsRequest {
        filters: Some(FiltersVm {
            client_tokens: Some(vec![token.clone()]),
            ..Default::default()
        }),
        ..Default::default()
    };
    first_id(cloud, read, |v| {
        (v.state != "terminated").then_some(v.vm_id)
    })
    .await
}

pub async fn destroy(d: &OutscaleDestroyer, id: &str) -> Result<Destroyed, DestroyError> {
    let cloud = &d.cloud;
    let request = DeleteVmsRequest {
        vm_ids: vec![id.to_string()],
        ..Default::default()
    };
    let result = delete(cloud, request, id).await?;
    if result == Destroyed::AlreadyGone {
        return Ok(result);
    }
    cloud
        .waiters
        .vm(id, "terminated", &cloud.wait)
        .await
        .map_err(|e| DestroyError::Failed(e.to_string()))?;
    d.saw_terminated(id);
    Ok(result)
}

/// The volumes of these VMs, which a run stopped before recording them
/// leaves known only through their VM.
pub async fn dependents(
    cloud: &Cloud,
    vms: &[(&ResourceState, String)],
) -> Result<Vec<(Address, ResourceState)>, Error> {
    if vms.is_empty() {
        return Ok(Vec::new());
    }
    let found = cloud
        .client
        .read_all(&ReadVmsRequest {
            filters: Some(FiltersVm {
                vm_ids: Some(vms.iter().map(|(_, id)| id.clone()).collect()),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await?;
    let mut out = Vec::new();
    for (r, id) in vms {
        for vm in found.iter().filter(|v| v.vm_id == *id) {
            for m in &vm.block_device_mappings {
                out.push((
                    r.address.clone(),
                    ResourceState {
                        attributes: volume_attributes(&vm.vm_id, m),
                        ..ResourceState::made(
                            Address::new(&r.build, Kind::Volume, Some(&m.device_name)),
                            &r.build,
                            Kind::Volume,
                            true,
                            m.bsu.volume_id.clone(),
                            Status::Created,
                        )
                    },
                ));
            }
        }
    }
    Ok(out)
}
