//! The `outscale-bsu` builder (behaviour §1.1, with the defects of §9
//! fixed): launch a VM from the source OMI, provision it, stop it, capture
//! it as an OMI, share and tag the OMI and its snapshots, and remove the VM,
//! keypair, security group and public IP it used.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use base64::Engine;
use serde_json::{Value, json};

use super::outscale::{OutscaleDestroyer, ownership_tags, read_image};
use super::{communicator, network};
use crate::graph::{
    BuildAction, BuildRunner, Deregister, Destroyer, Digest, Event, Recorder, Resource, address,
};
use crate::oapi::Secret;
use crate::oapi::model::*;
use crate::oapi::wait::{WaitPolicy, Waiters};
use crate::oapi::{Client, Error};
use crate::provision;
use crate::state::{Kind, Lookup, Status};
use crate::template::{BsuConfig, Build, BuildVars, Provisioner, render_build_vars};

/// A bsu build, resolved against the cloud (source OMI, account).
pub struct Bsu {
    name: String,
    config: BsuConfig,
    client: Client,
    waiters: Arc<Waiters>,
    wait: WaitPolicy,
    account_id: String,
    source: Image,
    digest: String,
    vars: BuildVars,
    provisioners: Vec<Provisioner>,
    template_dir: std::path::PathBuf,
    /// Values never shown: sensitive variables and passwords.
    sensitive: Vec<Secret>,
    /// Set by the plan: the OMIs force_deregister removes.
    pub deregister: Vec<Deregister>,
}

/// What a create call answers; the state needs its id.
trait Made {
    fn id(&self) -> &str;
}

impl Made for String {
    fn id(&self) -> &str {
        self
    }
}

impl Made for Vm {
    fn id(&self) -> &str {
        &self.vm_id
    }
}

impl Made for Image {
    fn id(&self) -> &str {
        &self.image_id
    }
}

impl Made for KeypairCreated {
    fn id(&self) -> &str {
        self.keypair_id.as_deref().unwrap_or(&self.keypair_name)
    }
}

/// The key of the ephemeral image captured before registering the OMI
/// with `omi_block_device_mappings`.
const CAPTURE: &str = "capture";

/// A unique name for the capture image, within OUTSCALE's 128 characters.
fn capture_name(omi_name: &str) -> String {
    let suffix = format!(
        "-capture-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let keep = omi_name
        .char_indices()
        .map(|(i, c)| i + c.len_utf8())
        .take_while(|end| end + suffix.len() <= 128)
        .last()
        .unwrap_or(0);
    format!("{}{suffix}", &omi_name[..keep])
}

/// How often a long wait tells the user it is still waiting.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(15);

fn err(e: Error) -> String {
    e.to_string()
}

impl Bsu {
    /// Checks what osci can honour, finds the source OMI and computes the
    /// input digest. `sensitive` are the template's sensitive variables'
    /// values, masked in provisioner output.
    pub async fn prepare(
        build: &Build,
        sensitive: &[Secret],
        client: Client,
        waiters: Arc<Waiters>,
        wait: WaitPolicy,
        account_id: String,
    ) -> Result<Bsu, String> {
        let config = build.config.clone();
        let name = build.name.clone();
        let refuse = |what: &str| Err(format!("build \"{name}\": {what}"));
        if let Some(why) = communicator::unsupported(&config) {
            return refuse(&why);
        }
        let inputs = provision::inputs(&build.provisioners, &build.template_dir)
            .map_err(|e| format!("build \"{name}\": {e}"))?;
        if config.communicator == "none"
            && let Some(p) = build.provisioners.iter().find(|p| p.kind != "shell-local")
        {
            return refuse(&format!(
                "provisioners[{}] ({}) runs on the VM, and communicator is \"none\": set \"communicator\": \"ssh\" and ssh_username",
                p.index, p.kind
            ));
        }
        let region = client.region().to_string();
        if let Some(other) = config.omi_regions.iter().find(|r| **r != region) {
            return refuse(&format!(
                "omi_regions: copying the OMI to {other} is not supported yet (a state serves one \
                 region); build it there with a template of its own"
            ));
        }
        if config.iam_vm_profile.is_some() {
            return refuse("iam_vm_profile: OUTSCALE VMs have no IAM profile; remove the key");
        }
        if config.block_duration_minutes > 0 {
            return refuse("block_duration_minutes: OUTSCALE has no spot VMs; remove the key");
        }
        if config.enable_t2_unlimited {
            return refuse("enable_t2_unlimited: OUTSCALE has no T2 VM types; remove the key");
        }
        if config.disable_stop_vm && config.shutdown_behavior == "terminate" {
            return refuse(
                "disable_stop_vm with shutdown_behavior \"terminate\": the VM would terminate and take \
                 its volumes with it, leaving nothing to capture",
            );
        }
        // Filters become ids once, at plan time, so the apply launches where
        // the plan said.
        let placement = network::resolve(&client, &config)
            .await
            .map_err(|e| format!("build \"{name}\": {e}"))?;
        let mut config = config;
        config.net_id = placement.net_id;
        config.subnet_id = placement.subnet_id;
        config.subregion_name = placement.subregion_name;
        config.security_group_ids = placement.security_group_ids;
        let source = find_source(&client, &config, &account_id)
            .await
            .map_err(|e| format!("build \"{name}\": {e}"))?;
        let vars = BuildVars {
            build_region: region.clone(),
            source_omi: source.image_id.clone(),
            source_omi_name: source.image_name.clone(),
            source_omi_tags: source
                .tags
                .iter()
                .map(|t| (t.key.clone(), t.value.clone()))
                .collect(),
        };
        let digest = digest(build, &source, &region, &inputs);
        let sensitive = sensitive
            .iter()
            .chain(&config.ssh_password)
            .chain(&config.ssh_bastion_password)
            .cloned()
            .collect();
        let bsu = Bsu {
            name,
            config,
            client,
            waiters,
            wait,
            account_id,
            source,
            digest,
            vars,
            provisioners: build.provisioners.clone(),
            template_dir: build.template_dir.clone(),
            sensitive,
            deregister: Vec::new(),
        };
        bsu.check_omi_mappings()
            .map_err(|e| format!("build \"{}\": {e}", bsu.name))?;
        Ok(bsu)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn digest(&self) -> &str {
        &self.digest
    }

    pub fn omi_name(&self) -> &str {
        &self.config.omi_name
    }

    pub fn source(&self) -> &Image {
        &self.source
    }

    pub fn force_deregister(&self) -> bool {
        self.config.force_deregister
    }

    pub fn force_delete_snapshot(&self) -> bool {
        self.config.force_delete_snapshot
    }

    pub fn skip_create_omi(&self) -> bool {
        self.config.skip_create_omi
    }

    fn addr(&self, kind: Kind, key: Option<&str>) -> String {
        address(&self.name, kind, key)
    }

    fn render(&self, map: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>, String> {
        map.iter()
            .map(|(k, v)| {
                Ok((
                    render_build_vars(k, &self.vars)?,
                    render_build_vars(v, &self.vars)?,
                ))
            })
            .collect()
    }

    fn needs_security_group(&self) -> bool {
        self.config.security_group_ids.is_empty()
    }

    /// The devices the VM boots with, hence the snapshots of the OMI.
    fn devices(&self) -> Vec<String> {
        let mut devices: BTreeSet<String> = self
            .source
            .block_device_mappings
            .iter()
            .filter_map(|m| m.device_name.clone())
            .collect();
        for m in &self.config.launch_block_device_mappings {
            if m.no_device {
                devices.remove(&m.device_name);
            } else {
                devices.insert(m.device_name.clone());
            }
        }
        devices.into_iter().collect()
    }

    fn image_desired(&self) -> Result<BTreeMap<String, Value>, String> {
        Ok(BTreeMap::from([(
            "description".to_string(),
            json!(render_build_vars(&self.config.omi_description, &self.vars)?),
        )]))
    }

    /// `product_codes` and `omi_product_codes` (inert in the plugin) alike.
    fn product_codes(&self) -> Option<Vec<String>> {
        let codes: BTreeSet<&String> = self
            .config
            .product_codes
            .iter()
            .chain(&self.config.omi_product_codes)
            .collect();
        (!codes.is_empty()).then(|| codes.into_iter().cloned().collect())
    }

    /// `omi_groups: ["all"]` (inert in the plugin) is `global_permission`.
    fn image_permissions_desired(&self) -> BTreeMap<String, Value> {
        let ids: BTreeSet<&String> = self.config.omi_account_ids.iter().collect();
        let global =
            self.config.global_permission || self.config.omi_groups.iter().any(|g| g == "all");
        BTreeMap::from([
            ("account_ids".to_string(), json!(ids)),
            ("global_permission".to_string(), json!(global)),
        ])
    }

    /// Snapshots are shared with `snapshot_account_ids` and `snapshot_users`
    /// (which the plugin ignored or rejected), and with the OMI's accounts,
    /// who need them to copy it; `snapshot_groups: ["all"]` makes them public.
    fn snapshot_permissions_desired(&self) -> BTreeMap<String, Value> {
        let ids: BTreeSet<&String> = self
            .config
            .snapshot_account_ids
            .iter()
            .chain(&self.config.snapshot_users)
            .chain(&self.config.omi_account_ids)
            .collect();
        let global = self.config.snapshot_groups.iter().any(|g| g == "all");
        BTreeMap::from([
            ("account_ids".to_string(), json!(ids)),
            ("global_permission".to_string(), json!(global)),
        ])
    }

    fn tags_desired(&self) -> Result<BTreeMap<String, Value>, String> {
        let tags = self.render(&self.config.tags)?;
        let mut snapshot_tags = tags.clone();
        snapshot_tags.extend(self.render(&self.config.snapshot_tags)?);
        Ok(BTreeMap::from([
            ("tags".to_string(), json!(tags)),
            ("snapshot_tags".to_string(), json!(snapshot_tags)),
        ]))
    }

    /// The resources this build wants, with what the template decides of
    /// them.
    pub fn resources(&self) -> Result<Vec<Resource>, String> {
        let known = |m: BTreeMap<String, Value>| -> BTreeMap<String, Option<Value>> {
            m.into_iter().map(|(k, v)| (k, Some(v))).collect()
        };
        let resource = |kind, key: Option<&str>, ephemeral, attributes| Resource {
            address: self.addr(kind, key),
            build: self.name.clone(),
            kind,
            ephemeral,
            attributes,
        };
        let mut out = Vec::new();
        if self.needs_security_group() {
            let cidr = json!(self.config.temporary_security_group_source_cidr);
            let attributes = known(BTreeMap::from([("source_cidr".to_string(), cidr)]));
            out.push(resource(Kind::SecurityGroup, None, true, attributes));
        }
        if self.config.associate_public_ip_address {
            out.push(resource(Kind::PublicIp, None, true, BTreeMap::new()));
        }
        if communicator::needs_temporary_keypair(&self.config) {
            out.push(resource(Kind::Keypair, None, true, BTreeMap::new()));
        }
        let vm = known(BTreeMap::from([
            ("source_omi".to_string(), json!(self.source.image_id)),
            ("vm_type".to_string(), json!(self.config.vm_type)),
        ]));
        out.push(resource(Kind::Vm, None, true, vm));
        if self.config.skip_create_omi {
            return Ok(out);
        }
        let mut image = known(self.image_desired()?);
        image.insert("name".into(), Some(json!(self.config.omi_name)));
        image.insert("id".into(), None);
        out.push(resource(Kind::Image, None, false, image));
        for device in self.devices() {
            let id = BTreeMap::from([("id".to_string(), None)]);
            out.push(resource(Kind::Snapshot, Some(&device), false, id));
        }
        let image_permissions = known(self.image_permissions_desired());
        out.push(resource(
            Kind::ImagePermissions,
            None,
            false,
            image_permissions,
        ));
        let snapshot_permissions = known(self.snapshot_permissions_desired());
        out.push(resource(
            Kind::SnapshotPermissions,
            None,
            false,
            snapshot_permissions,
        ));
        out.push(resource(
            Kind::Tags,
            None,
            false,
            known(self.tags_desired()?),
        ));
        Ok(out)
    }

    async fn tag(&self, ids: Vec<String>, tags: Vec<ResourceTag>) -> Result<(), String> {
        if ids.is_empty() || tags.is_empty() {
            return Ok(());
        }
        self.client
            .call(&CreateTagsRequest {
                resource_ids: ids,
                tags,
                ..Default::default()
            })
            .await
            .map(|_| ())
            .map_err(err)
    }

    fn record_error(e: String) -> String {
        format!("recording state: {e}")
    }

    /// Runs `create` for the address of `kind` between a pending and a created record,
    /// tagging the result with the ownership tags right away.
    async fn create<T, F, Fut>(
        &self,
        rec: &dyn Recorder,
        kind: Kind,
        key: Option<&str>,
        lookup: Lookup,
        dependencies: Vec<String>,
        create: F,
    ) -> Result<T, String>
    where
        T: Made,
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<T, Error>>,
    {
        if rec.cancelled() {
            return Err("interrupted".into());
        }
        let address = self.addr(kind, key);
        // Only the OMI outlives the apply; the capture image (keyed) does not.
        let ephemeral = kind != Kind::Image || key.is_some();
        rec.event(Event::Start {
            address: address.clone(),
            action: "create",
        });
        let started = Instant::now();
        rec.pending(&address, &self.name, kind, ephemeral, lookup, dependencies)
            .map_err(Self::record_error)?;
        let made = match create().await {
            Ok(made) => made,
            Err(e) => {
                // A definite refusal made nothing: no pending entry to chase
                // (and nothing of another's to find by our name). A conflict
                // may be our own lost answer coming back on a retry: kept.
                let refused = e.api().is_some_and(|a| {
                    (400..500).contains(&a.status) && !matches!(a.status, 409 | 429)
                });
                if refused {
                    rec.forget(&address).map_err(Self::record_error)?;
                }
                return Err(err(e));
            }
        };
        let id = made.id().to_string();
        rec.created(&address, &id).map_err(Self::record_error)?;
        self.tag(
            vec![id.clone()],
            ownership_tags(&rec.lineage(), &self.name, &address),
        )
        .await?;
        rec.event(Event::Done {
            address,
            action: "create",
            id: Some(id),
            elapsed: started.elapsed(),
        });
        Ok(made)
    }

    /// A unique name for a temporary resource: `osci-LINEAGE-BUILD-RANDOM`.
    fn temporary_name(&self, rec: &dyn Recorder) -> String {
        format!(
            "osci-{}-{}-{}",
            rec.lineage().chars().take(8).collect::<String>(),
            self.name,
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        )
    }

    async fn make_security_group(&self, rec: &dyn Recorder) -> Result<String, String> {
        let name = self.temporary_name(rec);
        let lookup = Lookup {
            name: Some(name.clone()),
            client_token: None,
        };
        let id = self
            .create(rec, Kind::SecurityGroup, None, lookup, vec![], || async {
                self.client
                    .call(&CreateSecurityGroupRequest {
                        security_group_name: name.clone(),
                        description: format!("Temporary group for osci build {}", self.name),
                        net_id: self.config.net_id.clone(),
                        ..Default::default()
                    })
                    .await
                    .map(|r| r.security_group.security_group_id)
            })
            .await?;
        self.client
            .call(&CreateSecurityGroupRuleRequest {
                security_group_id: id.clone(),
                flow: "Inbound".into(),
                ip_protocol: Some("tcp".into()),
                from_port_range: Some(i64::from(self.config.ssh_port)),
                to_port_range: Some(i64::from(self.config.ssh_port)),
                ip_range: Some(self.config.temporary_security_group_source_cidr.clone()),
                ..Default::default()
            })
            .await
            .map_err(err)?;
        Ok(id)
    }

    async fn make_public_ip(&self, rec: &dyn Recorder) -> Result<String, String> {
        self.create(
            rec,
            Kind::PublicIp,
            None,
            Lookup::default(),
            vec![],
            || async {
                self.client
                    .call(&CreatePublicIpRequest::default())
                    .await
                    .map(|r| r.public_ip.public_ip_id)
            },
        )
        .await
    }

    /// The temporary keypair (C5): OUTSCALE generates it; its private key
    /// stays in memory, never in the state or the output.
    async fn make_keypair(&self, rec: &dyn Recorder) -> Result<(String, Secret), String> {
        let name = self
            .config
            .temporary_key_pair_name
            .clone()
            .unwrap_or_else(|| self.temporary_name(rec));
        let lookup = Lookup {
            name: Some(name.clone()),
            client_token: None,
        };
        let made = self
            .create(rec, Kind::Keypair, None, lookup, vec![], || async {
                self.client
                    .call(&CreateKeypairRequest {
                        keypair_name: name.clone(),
                        ..Default::default()
                    })
                    .await
                    .map(|r| r.keypair)
            })
            .await?;
        let key = made
            .private_key
            .ok_or_else(|| format!("CreateKeypair gave no private key for {name}"))?;
        Ok((name, key))
    }

    /// `line` with every sensitive value replaced, as Packer does.
    fn mask(&self, line: &str) -> String {
        let mut line = line.to_string();
        for secret in &self.sensitive {
            if !secret.expose().is_empty() {
                line = line.replace(secret.expose(), "<sensitive>");
            }
        }
        line
    }

    /// Connects to the VM and runs the provisioners (C9, C12).
    async fn provision(
        &self,
        rec: &dyn Recorder,
        vm: &Vm,
        temporary: Option<&Secret>,
    ) -> Result<(), String> {
        let ssh = self.config.communicator == "ssh";
        if !ssh && self.provisioners.is_empty() {
            return Ok(());
        }
        let mut vm = vm.clone();
        let mut host = None;
        if ssh {
            // Linking a public IP changed the VM's addresses: read it again,
            // a few times if it shows none yet (C9).
            for attempt in 0..3 {
                if attempt > 0 {
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
                if let Some(current) = self
                    .waiters
                    .vm(&vm.vm_id, "running", &self.wait)
                    .await
                    .map_err(err)?
                {
                    vm = current;
                }
                host = communicator::host(&self.config, &vm);
                if host.is_some() {
                    break;
                }
            }
            if host.is_none() {
                return Err(format!(
                    "couldn't determine the address of {} (ssh_interface {:?})",
                    vm.vm_id, self.config.ssh_interface
                ));
            }
        }
        let settings = match &host {
            Some(h) => Some(communicator::settings(&self.config, h.clone(), temporary)?),
            None => None,
        };
        let clear = self.config.ssh_clear_authorized_keys && temporary.is_some();
        let build = communicator::build_data(&vm, host.as_deref(), &self.config, &self.vars);
        let output = |line: &str| {
            rec.event(Event::Output {
                build: self.name.clone(),
                line: self.mask(line),
            })
        };
        let cancelled = || rec.cancelled();
        let ctx = provision::Context {
            build_name: &self.name,
            builder_type: "outscale-bsu",
            build,
            base_dir: &self.template_dir,
            output: &output,
            cancelled: &cancelled,
        };
        communicator::provision(&self.config, settings, clear, &self.provisioners, &ctx)
            .await
            .map_err(|e| self.mask(&format!("provisioning failed: {e}")))
    }

    /// Runs a wait for `address` to be `target`, telling the user when it
    /// starts, every [`PROGRESS_EVERY`] while it lasts, and when it ends.
    async fn waiting<T>(
        &self,
        rec: &dyn Recorder,
        address: &str,
        target: &str,
        wait: impl std::future::Future<Output = Result<T, Error>>,
    ) -> Result<T, String> {
        let started = Instant::now();
        let event = |state: String| {
            rec.event(Event::Wait {
                address: address.to_string(),
                state,
                elapsed: started.elapsed(),
            })
        };
        event(format!("waiting to be {target}"));
        // The first Ctrl-C ends a wait at once: what it waits for is
        // recorded, so cleanup can start.
        let mut ticks = tokio::time::interval(std::time::Duration::from_millis(250));
        let mut told = Instant::now();
        tokio::pin!(wait);
        let result = loop {
            tokio::select! {
                result = &mut wait => break result.map_err(err)?,
                _ = ticks.tick() => {
                    if rec.cancelled() {
                        return Err(format!("interrupted while waiting for {address} to be {target}"));
                    }
                    if told.elapsed() >= PROGRESS_EVERY {
                        told = Instant::now();
                        event(format!("still waiting to be {target}"));
                    }
                }
            }
        };
        event(target.to_string());
        Ok(result)
    }

    /// Launches the VM and records its volumes, all of which go with it
    /// unless the template says otherwise (then teardown deletes them).
    async fn launch(
        &self,
        rec: &dyn Recorder,
        groups: Vec<String>,
        keypair: Option<String>,
        deps: Vec<String>,
    ) -> Result<Vm, String> {
        // One token per launch: retries of this call are idempotent, and the
        // pending entry keeps it so a crashed run's VM is found again. It is
        // never reused, or a later build would get back an old (terminated) VM.
        let token = format!("osci-{}", uuid::Uuid::new_v4());
        let mappings: Vec<BlockDeviceMappingVmCreation> = self
            .config
            .launch_block_device_mappings
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
        let user_data = self
            .config
            .user_data
            .as_ref()
            .map(|d| base64::engine::general_purpose::STANDARD.encode(d));
        let request = CreateVmsRequest {
            image_id: self.source.image_id.clone(),
            vm_type: Some(self.config.vm_type.clone()),
            keypair_name: keypair.or_else(|| self.config.ssh_keypair_name.clone()),
            security_group_ids: Some(groups),
            subnet_id: self.config.subnet_id.clone(),
            placement: self.config.subregion_name.as_ref().map(|s| Placement {
                subregion_name: Some(s.clone()),
                tenancy: None,
            }),
            user_data,
            block_device_mappings: (!mappings.is_empty()).then_some(mappings),
            client_token: Some(token.clone()),
            min_vms_count: Some(1),
            max_vms_count: Some(1),
            vm_initiated_shutdown_behavior: Some(self.config.shutdown_behavior.clone()),
            boot_mode: self.config.boot_mode.clone(),
            bsu_optimized: Some(self.config.bsu_optimized),
            ..Default::default()
        };
        let lookup = Lookup {
            name: None,
            client_token: Some(token),
        };
        let vm_id = self
            .create(rec, Kind::Vm, None, lookup, deps, || async {
                let vms = self.client.call(&request).await?.vms;
                vms.into_iter().next().ok_or_else(|| Error::Decode {
                    operation: "CreateVms",
                    message: "the answer holds no VM".into(),
                    body: String::new(),
                })
            })
            .await?
            .vm_id;
        let vm_address = self.addr(Kind::Vm, None);
        let mut run_tags = self.render(&self.config.run_tags)?;
        run_tags
            .entry("Name".into())
            .or_insert_with(|| format!("osci builder {}", self.name));
        self.tag(vec![vm_id.clone()], to_tags(&run_tags)).await?;
        let vm = self
            .waiting(
                rec,
                &vm_address,
                "running",
                self.waiters.vm(&vm_id, "running", &self.wait),
            )
            .await?
            .ok_or_else(|| format!("VM {vm_id} vanished"))?;
        // Every volume of the VM: recorded (so teardown and destroy find it)
        // and tagged with run_volume_tags (the plugin tagged only the first).
        let volume_tags = self.render(&self.config.run_volume_tags)?;
        for m in &vm.block_device_mappings {
            let address = self.addr(Kind::Volume, Some(&m.device_name));
            rec.pending(
                &address,
                &self.name,
                Kind::Volume,
                true,
                Lookup::default(),
                vec![vm_address.clone()],
            )
            .map_err(Self::record_error)?;
            rec.created(&address, &m.bsu.volume_id)
                .map_err(Self::record_error)?;
            let mut tags = ownership_tags(&rec.lineage(), &self.name, &address);
            tags.extend(to_tags(&volume_tags));
            self.tag(vec![m.bsu.volume_id.clone()], tags).await?;
        }
        Ok(vm)
    }

    async fn stop(&self, rec: &dyn Recorder, vm_id: &str) -> Result<(), String> {
        let address = self.addr(Kind::Vm, None);
        if !self.config.disable_stop_vm {
            self.client
                .call(&StopVmsRequest {
                    vm_ids: vec![vm_id.to_string()],
                    ..Default::default()
                })
                .await
                .map_err(err)?;
        }
        // Whatever the shutdown behaviour, StopVms ends in "stopped"; the
        // plugin waited for "terminated" with terminate and hung forever.
        self.waiting(
            rec,
            &address,
            "stopped",
            self.waiters.vm(vm_id, "stopped", &self.wait),
        )
        .await?;
        Ok(())
    }

    /// Removes the OMIs the plan listed for force_deregister (own account
    /// only, checked again here) and, with force_delete_snapshot, their
    /// snapshots.
    async fn deregister(&self, rec: &dyn Recorder) -> Result<(), String> {
        for target in &self.deregister {
            let image = read_image(&self.client, &target.image_id)
                .await
                .map_err(err)?;
            // Own account only, checked again: never another's OMI.
            if image.is_none_or(|i| i.account_id != self.account_id) {
                continue;
            }
            let address = format!("{} (force_deregister)", target.image_id);
            rec.event(Event::Start {
                address: address.clone(),
                action: "destroy",
            });
            let started = Instant::now();
            match self
                .client
                .call(&DeleteImageRequest {
                    image_id: target.image_id.clone(),
                    ..Default::default()
                })
                .await
            {
                Ok(_) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(err(e)),
            }
            for snapshot in &target.snapshot_ids {
                let request = DeleteSnapshotRequest {
                    snapshot_id: snapshot.clone(),
                    ..Default::default()
                };
                match self.client.call(&request).await {
                    Ok(_) => {}
                    Err(e) if e.is_not_found() => {}
                    // Another image registered from it: not this OMI's to take.
                    Err(e) if e.api().is_some_and(|a| a.is_dependency()) => {
                        rec.event(Event::Note {
                            build: self.name.clone(),
                            text: format!("snapshot {snapshot} is kept: another OMI still uses it"),
                        })
                    }
                    Err(e) => return Err(err(e)),
                }
            }
            rec.event(Event::Done {
                address,
                action: "destroy",
                id: Some(target.image_id.clone()),
                elapsed: started.elapsed(),
            });
        }
        Ok(())
    }

    /// Makes the OMI from the stopped VM: captured directly, or, with
    /// `omi_block_device_mappings`, captured as an ephemeral image first and
    /// registered from its snapshots with the mappings applied (the plugin
    /// registered from the mappings alone and lost the provisioned disks).
    async fn capture(&self, rec: &dyn Recorder, vm_id: &str) -> Result<Image, String> {
        let name = self.config.omi_name.clone();
        let description = render_build_vars(&self.config.omi_description, &self.vars)?;
        let from_vm = CreateImageRequest {
            vm_id: Some(vm_id.to_string()),
            no_reboot: Some(true),
            boot_modes: (!self.config.omi_boot_modes.is_empty())
                .then(|| self.config.omi_boot_modes.clone()),
            product_codes: self.product_codes(),
            ..Default::default()
        };
        let request = if self.config.omi_block_device_mappings.is_empty() {
            from_vm
        } else {
            let captured = self
                .make_image(rec, Some(CAPTURE), &capture_name(&name), from_vm)
                .await?;
            CreateImageRequest {
                root_device_name: self.config.root_device_name.clone(),
                block_device_mappings: Some(self.omi_mappings(&captured)),
                architecture: captured.architecture.clone(),
                boot_modes: (!self.config.omi_boot_modes.is_empty())
                    .then(|| self.config.omi_boot_modes.clone()),
                product_codes: self.product_codes(),
                ..Default::default()
            }
        };
        let request = CreateImageRequest {
            description: (!description.is_empty()).then(|| description.clone()),
            ..request
        };
        let image = self.make_image(rec, None, &name, request).await?;
        // Captured snapshots the mappings dropped (no_device, or another
        // snapshot_id for the device) are of no use: they become ephemeral,
        // removed with the capture image that still holds them.
        let kept = image.snapshot_ids();
        for device in self.devices() {
            let address = self.addr(Kind::Snapshot, Some(&device));
            let Some(id) = rec.get(&address).and_then(|r| r.id) else {
                continue;
            };
            if kept.contains(&id) {
                continue;
            }
            let capture = vec![self.addr(Kind::Image, Some(CAPTURE))];
            rec.pending(
                &address,
                &self.name,
                Kind::Snapshot,
                true,
                Lookup::default(),
                capture,
            )
            .map_err(Self::record_error)?;
            rec.created(&address, &id).map_err(Self::record_error)?;
        }
        Ok(image)
    }

    /// Creates an image (the OMI, or with `key` the ephemeral capture) and
    /// waits for it. It stays tainted until available, shared and tagged;
    /// the snapshots of the stopped VM are recorded as soon as CreateImage
    /// names them, so a crash during the wait finds them.
    async fn make_image(
        &self,
        rec: &dyn Recorder,
        key: Option<&str>,
        name: &str,
        request: CreateImageRequest,
    ) -> Result<Image, String> {
        let address = self.addr(Kind::Image, key);
        let lookup = Lookup {
            name: Some(name.to_string()),
            client_token: None,
        };
        let request = CreateImageRequest {
            image_name: Some(name.to_string()),
            ..request
        };
        let from_vm = request.vm_id.is_some();
        let first: Image = self
            .create(rec, Kind::Image, key, lookup, vec![], || async {
                Ok(self.client.call(&request).await?.image)
            })
            .await?;
        let image_id = first.image_id.clone();
        if key.is_none() {
            let description = request.description.clone().unwrap_or_default();
            rec.update(
                &address,
                image_attributes_named(name, &description),
                Some(self.digest.clone()),
                true,
            )
            .map_err(Self::record_error)?;
        }
        if from_vm {
            self.record_snapshots(rec, &first).await?;
        }
        let image = self
            .waiting(
                rec,
                &address,
                "available",
                self.waiters.image_available(&image_id, &self.wait),
            )
            .await?;
        if from_vm {
            self.record_snapshots(rec, &image).await?;
        }
        Ok(image)
    }

    /// The OMI's mappings: the captured ones, with `omi_block_device_mappings`
    /// laid over them by device name (`no_device` drops one).
    fn omi_mappings(&self, captured: &Image) -> Vec<BlockDeviceMappingImage> {
        let mut mappings: BTreeMap<String, BlockDeviceMappingImage> = captured
            .block_device_mappings
            .iter()
            .filter_map(|m| Some((m.device_name.clone()?, m.clone())))
            .collect();
        for m in &self.config.omi_block_device_mappings {
            if m.no_device {
                mappings.remove(&m.device_name);
                continue;
            }
            let entry =
                mappings
                    .entry(m.device_name.clone())
                    .or_insert_with(|| BlockDeviceMappingImage {
                        device_name: Some(m.device_name.clone()),
                        ..Default::default()
                    });
            if m.virtual_name.is_some() {
                entry.virtual_device_name = m.virtual_name.clone();
            }
            let bsu = entry.bsu.get_or_insert_with(BsuToCreate::default);
            if m.snapshot_id.is_some() {
                bsu.snapshot_id = m.snapshot_id.clone();
            }
            if let Some(size) = m.volume_size.filter(|s| *s > 0) {
                bsu.volume_size = Some(size);
            }
            if m.volume_type.is_some() {
                bsu.volume_type = m.volume_type.clone();
            }
            bsu.iops = m.iops.filter(|_| bsu.volume_type.as_deref() == Some("io1"));
            // Unlike the plugin (false), what a VM launched from the OMI gets
            // goes with it unless the template keeps it.
            bsu.delete_on_vm_deletion = Some(m.delete_on_vm_deletion.unwrap_or(true));
        }
        mappings.into_values().collect()
    }

    /// What `omi_block_device_mappings` asks that cannot be done, found at
    /// plan time: a new device needs a snapshot, and the root must be one of
    /// the OMI's devices.
    fn check_omi_mappings(&self) -> Result<(), String> {
        let omi = &self.config.omi_block_device_mappings;
        if omi.is_empty() {
            return Ok(());
        }
        let mut devices: BTreeSet<String> = self.devices().into_iter().collect();
        for (i, m) in omi.iter().enumerate() {
            if m.no_device {
                devices.remove(&m.device_name);
            } else if m.snapshot_id.is_none() && !devices.contains(&m.device_name) {
                return Err(format!(
                    "omi_block_device_mappings[{i}] ({}): the VM has no such device to capture; give \
                     snapshot_id, or add the device to launch_block_device_mappings",
                    m.device_name
                ));
            } else {
                devices.insert(m.device_name.clone());
            }
        }
        let root = self.config.root_device_name.as_deref().unwrap_or_default();
        if !devices.contains(root) {
            return Err(format!(
                "root_device_name \"{root}\" is not one of the OMI's devices ({})",
                devices.into_iter().collect::<Vec<_>>().join(", ")
            ));
        }
        Ok(())
    }

    async fn record_snapshots(&self, rec: &dyn Recorder, image: &Image) -> Result<(), String> {
        for m in &image.block_device_mappings {
            let (Some(device), Some(snapshot)) = (
                m.device_name.as_deref(),
                m.bsu.as_ref().and_then(|b| b.snapshot_id.clone()),
            ) else {
                continue;
            };
            let address = self.addr(Kind::Snapshot, Some(device));
            if rec.get(&address).and_then(|r| r.id).as_deref() == Some(snapshot.as_str()) {
                continue;
            }
            rec.pending(
                &address,
                &self.name,
                Kind::Snapshot,
                false,
                Lookup::default(),
                vec![self.addr(Kind::Image, None)],
            )
            .map_err(Self::record_error)?;
            rec.created(&address, &snapshot)
                .map_err(Self::record_error)?;
            // Tainted with their image until it is settled: a build that
            // fails before then has them cleaned up with it.
            rec.update(&address, BTreeMap::new(), Some(self.digest.clone()), true)
                .map_err(Self::record_error)?;
            self.tag(
                vec![snapshot],
                ownership_tags(&rec.lineage(), &self.name, &address),
            )
            .await?;
        }
        Ok(())
    }

    /// Brings permissions and tags of the OMI and its snapshots to what the
    /// template says, from what the state last saw (additions and removals).
    async fn settle(&self, rec: &dyn Recorder, image: &Image) -> Result<(), String> {
        let snapshots = image.snapshot_ids();
        let image_address = self.addr(Kind::Image, None);

        // Image description.
        let want = self.image_desired()?;
        let description = want["description"].as_str().unwrap_or_default().to_string();
        if image.description.clone().unwrap_or_default() != description {
            self.client
                .call(&UpdateImageRequest {
                    image_id: image.image_id.clone(),
                    description: Some(description.clone()),
                    ..Default::default()
                })
                .await
                .map_err(err)?;
        }

        // Launch permissions.
        let want = self.image_permissions_desired();
        let have = image_permission_attributes(image);
        for change in permission_changes(&have, &want) {
            self.client
                .call(&UpdateImageRequest {
                    image_id: image.image_id.clone(),
                    permissions_to_launch: Some(change),
                    ..Default::default()
                })
                .await
                .map_err(err)?;
        }
        self.settled(
            rec,
            Kind::ImagePermissions,
            &image.image_id,
            want,
            json!(null),
        )?;

        // Snapshot permissions.
        let want = self.snapshot_permissions_desired();
        // Only the snapshots this build made: one the template named with
        // snapshot_id is someone's own, never re-shared or re-tagged.
        let ours: Vec<String> = image
            .block_device_mappings
            .iter()
            .filter_map(|m| m.device_name.as_deref())
            .filter_map(|d| {
                rec.get(&self.addr(Kind::Snapshot, Some(d)))
                    .and_then(|r| r.id)
            })
            .filter(|id| snapshots.contains(id))
            .collect();
        let current = if ours.is_empty() {
            Vec::new()
        } else {
            self.client
                .read_all(&ReadSnapshotsRequest {
                    filters: Some(FiltersSnapshot {
                        snapshot_ids: Some(ours.clone()),
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .await
                .map_err(err)?
        };
        for snapshot in &current {
            let have = snapshot_permission_attributes(snapshot, &[]);
            for change in permission_changes(&have, &want) {
                self.client
                    .call(&UpdateSnapshotRequest {
                        snapshot_id: snapshot.snapshot_id.clone(),
                        permissions_to_create_volume: change,
                        ..Default::default()
                    })
                    .await
                    .map_err(err)?;
            }
        }
        self.settled(
            rec,
            Kind::SnapshotPermissions,
            &image.image_id,
            want,
            json!(ours),
        )?;

        // Tags: the template's on the OMI and its snapshots, snapshot_tags
        // over them on the snapshots; tags no longer wanted are removed.
        let want = self.tags_desired()?;
        let image_tags = as_map(&want["tags"]);
        let snapshot_tags = as_map(&want["snapshot_tags"]);
        self.sync_tags(
            vec![image.image_id.clone()],
            &user_tags(&image.tags),
            &image_tags,
        )
        .await?;
        for snapshot in &current {
            self.sync_tags(
                vec![snapshot.snapshot_id.clone()],
                &user_tags(&snapshot.tags),
                &snapshot_tags,
            )
            .await?;
        }
        self.settled(rec, Kind::Tags, &image.image_id, want, json!(null))?;

        let fresh = read_image(&self.client, &image.image_id)
            .await
            .map_err(err)?;
        if let Some(image) = &fresh {
            for device in image
                .block_device_mappings
                .iter()
                .filter_map(|m| m.device_name.as_deref())
            {
                let address = self.addr(Kind::Snapshot, Some(device));
                if let Some(snapshot) = rec.get(&address).filter(|r| r.status == Status::Tainted) {
                    rec.update(
                        &address,
                        snapshot.attributes,
                        Some(self.digest.clone()),
                        false,
                    )
                    .map_err(Self::record_error)?;
                }
            }
            rec.update(
                &image_address,
                image_attributes(image),
                Some(self.digest.clone()),
                false,
            )
            .map_err(Self::record_error)?;
        }
        Ok(())
    }

    /// Records a settings entry as done, with what it now holds.
    fn settled(
        &self,
        rec: &dyn Recorder,
        kind: Kind,
        image_id: &str,
        mut attributes: BTreeMap<String, Value>,
        snapshot_ids: Value,
    ) -> Result<(), String> {
        let address = self.addr(kind, None);
        if rec.get(&address).and_then(|r| r.id).as_deref() != Some(image_id) {
            rec.pending(
                &address,
                &self.name,
                kind,
                false,
                Lookup::default(),
                vec![self.addr(Kind::Image, None)],
            )
            .map_err(Self::record_error)?;
            rec.created(&address, image_id)
                .map_err(Self::record_error)?;
        }
        if !snapshot_ids.is_null() {
            attributes.insert("snapshot_ids".into(), snapshot_ids);
        }
        rec.update(&address, attributes, Some(self.digest.clone()), false)
            .map_err(Self::record_error)
    }

    async fn sync_tags(
        &self,
        ids: Vec<String>,
        have: &BTreeMap<String, String>,
        want: &BTreeMap<String, String>,
    ) -> Result<(), String> {
        let stale: Vec<ResourceTag> = have
            .iter()
            .filter(|(k, _)| !want.contains_key(*k))
            .map(|(k, v)| ResourceTag::new(k, v))
            .collect();
        if !stale.is_empty() {
            self.client
                .call(&DeleteTagsRequest {
                    resource_ids: ids.clone(),
                    tags: stale,
                    ..Default::default()
                })
                .await
                .map_err(err)?;
        }
        let changed: BTreeMap<String, String> = want
            .iter()
            .filter(|(k, v)| have.get(*k) != Some(*v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        self.tag(ids, to_tags(&changed)).await
    }

    /// Removes the ephemeral resources of this build that the state holds,
    /// VM first (and its kept volumes), then security group, keypair and
    /// public IP.
    async fn teardown(&self, rec: &dyn Recorder) -> Result<(), String> {
        let destroyer = OutscaleDestroyer::new(
            self.client.clone(),
            Arc::clone(&self.waiters),
            self.account_id.clone(),
            rec.lineage(),
        );
        let order = [
            Kind::Image,
            Kind::Snapshot,
            Kind::Vm,
            Kind::Volume,
            Kind::SecurityGroup,
            Kind::Keypair,
            Kind::PublicIp,
        ];
        for kind in order {
            let addresses: Vec<String> = match kind {
                Kind::Volume => self.devices_recorded(rec),
                Kind::Image => vec![self.addr(kind, Some(CAPTURE))],
                Kind::Snapshot => self
                    .devices()
                    .iter()
                    .map(|d| self.addr(kind, Some(d)))
                    .filter(|a| rec.get(a).is_some_and(|r| r.ephemeral))
                    .collect(),
                _ => vec![self.addr(kind, None)],
            };
            for address in addresses {
                let Some(resource) = rec.get(&address) else {
                    continue;
                };
                rec.event(Event::Start {
                    address: address.clone(),
                    action: "destroy",
                });
                let started = Instant::now();
                let mut attempt = 0;
                let outcome = loop {
                    match destroyer.destroy(&resource).await {
                        Err(crate::graph::DestroyError::InUse(_)) if attempt < 20 => {
                            attempt += 1;
                            tokio::time::sleep(std::time::Duration::from_millis(250 * attempt))
                                .await;
                        }
                        other => break other,
                    }
                };
                let id = match outcome {
                    Ok(crate::graph::Destroyed::Deleted(id)) => Some(id),
                    Ok(crate::graph::Destroyed::AlreadyGone) => None,
                    Err(e) => return Err(format!("removing {address}: {e}")),
                };
                rec.forget(&address).map_err(Self::record_error)?;
                rec.event(Event::Done {
                    address,
                    action: "destroy",
                    id,
                    elapsed: started.elapsed(),
                });
            }
        }
        Ok(())
    }

    /// The volume addresses recorded for this build.
    fn devices_recorded(&self, rec: &dyn Recorder) -> Vec<String> {
        let mut devices: BTreeSet<String> = self.devices().into_iter().collect();
        devices.extend(
            self.config
                .launch_block_device_mappings
                .iter()
                .map(|m| m.device_name.clone()),
        );
        devices
            .into_iter()
            .map(|d| self.addr(Kind::Volume, Some(&d)))
            .filter(|a| rec.get(a).is_some())
            .collect()
    }

    async fn create_all(&self, rec: &dyn Recorder, action: BuildAction) -> Result<(), String> {
        let (group, ip, key) = tokio::join!(
            async {
                if self.needs_security_group() {
                    self.make_security_group(rec).await.map(Some)
                } else {
                    Ok(None)
                }
            },
            async {
                if self.config.associate_public_ip_address {
                    self.make_public_ip(rec).await.map(Some)
                } else {
                    Ok(None)
                }
            },
            async {
                if communicator::needs_temporary_keypair(&self.config) {
                    self.make_keypair(rec).await.map(Some)
                } else {
                    Ok(None)
                }
            }
        );
        let (group, ip, key) = (group?, ip?, key?);
        let mut deps = Vec::new();
        let groups = match group {
            Some(g) => {
                deps.push(self.addr(Kind::SecurityGroup, None));
                vec![g]
            }
            None => self.config.security_group_ids.clone(),
        };
        if ip.is_some() {
            deps.push(self.addr(Kind::PublicIp, None));
        }
        let (keypair, private_key) = match key {
            Some((name, pem)) => {
                deps.push(self.addr(Kind::Keypair, None));
                (Some(name), Some(pem))
            }
            None => (None, None),
        };
        let vm = self.launch(rec, groups, keypair, deps).await?;
        if let Some(ip) = ip {
            self.client
                .call(&LinkPublicIpRequest {
                    public_ip_id: Some(ip),
                    vm_id: Some(vm.vm_id.clone()),
                    ..Default::default()
                })
                .await
                .map_err(err)?;
        }
        self.provision(rec, &vm, private_key.as_ref()).await?;
        if rec.cancelled() {
            return Err("interrupted".into());
        }
        self.stop(rec, &vm.vm_id).await?;
        if self.config.skip_create_omi {
            return Ok(());
        }
        if rec.cancelled() {
            return Err("interrupted".into());
        }
        self.deregister(rec).await?;
        self.forget_replaced(rec, action == BuildAction::Replace)
            .await?;
        let image = self.capture(rec, &vm.vm_id).await?;
        self.settle(rec, &image).await
    }

    /// The previous OMI's entries make room for the new one: on replace it
    /// was removed by force_deregister, or it stays in the account, no longer
    /// managed, as the plan said; otherwise it was deleted outside osci.
    async fn forget_replaced(&self, rec: &dyn Recorder, replacing: bool) -> Result<(), String> {
        let image = self.addr(Kind::Image, None);
        let Some(previous) = rec.get(&image) else {
            return Ok(());
        };
        let snapshots: Vec<String> = self
            .devices()
            .iter()
            .map(|d| self.addr(Kind::Snapshot, Some(d)))
            .collect();
        if let Some(id) = previous.id.as_ref().filter(|_| replacing) {
            let removed = self.deregister.iter().any(|d| d.image_id == *id);
            if !removed {
                // Its ownership tags go too: nothing osci does later (a
                // destroy, a search after a crash) takes it for its own.
                for address in std::iter::once(&image).chain(&snapshots) {
                    let Some(id) = rec.get(address).and_then(|r| r.id) else {
                        continue;
                    };
                    self.client
                        .call(&DeleteTagsRequest {
                            resource_ids: vec![id],
                            tags: ownership_tags(&rec.lineage(), &self.name, address),
                            ..Default::default()
                        })
                        .await
                        .map_err(err)?;
                }
                rec.event(Event::Note {
                    build: self.name.clone(),
                    text: format!(
                        "the previous OMI {id} is kept in the account and no longer managed \
                         (set force_deregister to remove replaced OMIs)"
                    ),
                });
            }
        }
        let addresses: Vec<String> = [
            Kind::Image,
            Kind::ImagePermissions,
            Kind::SnapshotPermissions,
            Kind::Tags,
        ]
        .into_iter()
        .map(|k| self.addr(k, None))
        .chain(snapshots)
        .collect();
        for address in addresses {
            if rec.get(&address).is_some() {
                rec.forget(&address).map_err(Self::record_error)?;
            }
        }
        Ok(())
    }

    async fn update_in_place(&self, rec: &dyn Recorder) -> Result<(), String> {
        let id = rec
            .get(&self.addr(Kind::Image, None))
            .and_then(|r| r.id)
            .ok_or_else(|| "the state holds no OMI id to update".to_string())?;
        let image = read_image(&self.client, &id)
            .await
            .map_err(err)?
            .ok_or_else(|| format!("OMI {id} is gone"))?;
        for address in [
            Kind::ImagePermissions,
            Kind::SnapshotPermissions,
            Kind::Tags,
        ]
        .map(|k| self.addr(k, None))
        {
            rec.event(Event::Start {
                address,
                action: "update",
            });
        }
        let started = Instant::now();
        self.settle(rec, &image).await?;
        for address in [
            Kind::ImagePermissions,
            Kind::SnapshotPermissions,
            Kind::Tags,
        ]
        .map(|k| self.addr(k, None))
        {
            rec.event(Event::Done {
                address,
                action: "update",
                id: Some(id.clone()),
                elapsed: started.elapsed(),
            });
        }
        Ok(())
    }
}

#[async_trait]
impl BuildRunner for Bsu {
    fn name(&self) -> &str {
        &self.name
    }

    async fn apply(&self, rec: &dyn Recorder, action: BuildAction) -> Result<(), String> {
        match action {
            BuildAction::Update => self.update_in_place(rec).await,
            BuildAction::Create | BuildAction::Replace => {
                let made = self.create_all(rec, action).await;
                // Ephemerals go whether the build succeeded or not; on failure
                // the engine decides about the rest (--on-error).
                if made.is_ok() {
                    self.teardown(rec).await?;
                }
                made
            }
        }
    }
}

/// Finds the source OMI: `source_omi` and `source_omi_filter` together
/// narrow the search (the plugin dropped `source_omi` when filters were
/// set); owners split into account ids and aliases, `self` is this account.
pub async fn find_source(
    client: &Client,
    config: &BsuConfig,
    account_id: &str,
) -> Result<Image, String> {
    let mut filters = FiltersImage::default();
    if let Some(id) = &config.source_omi {
        filters.image_ids = Some(vec![id.clone()]);
    }
    let mut most_recent = false;
    if let Some(f) = &config.source_omi_filter {
        most_recent = f.most_recent;
        for (key, value) in &f.filters {
            let v = Some(vec![value.clone()]);
            match key.as_str() {
                "account-alias" => filters.account_aliases = v,
                "account-id" => filters.account_ids = v,
                "architecture" => filters.architectures = v,
                "image-id" => filters.image_ids = v,
                "image-name" | "name" => filters.image_names = v,
                "virtualization-type" => filters.virtualization_types = v,
                "root-device-type" => filters.root_device_types = v,
                other => return Err(format!("source_omi_filter: unknown filter key `{other}`")),
            }
        }
        let (ids, aliases): (Vec<String>, Vec<String>) = f
            .owners
            .iter()
            .map(|o| {
                if o == "self" {
                    account_id.to_string()
                } else {
                    o.clone()
                }
            })
            .partition(|o| o.bytes().all(|b| b.is_ascii_digit()));
        if !ids.is_empty() {
            filters.account_ids = Some(ids);
        }
        if !aliases.is_empty() {
            filters.account_aliases = Some(aliases);
        }
    }
    let mut images = client
        .read_all(&ReadImagesRequest {
            filters: Some(filters),
            ..Default::default()
        })
        .await
        .map_err(err)?;
    images.retain(|i| i.state == "available");
    match images.len() {
        0 => Err("no available source OMI matches source_omi / source_omi_filter".into()),
        1 => Ok(images.remove(0)),
        n if most_recent => {
            images.sort_by(|a, b| {
                a.creation_date
                    .cmp(&b.creation_date)
                    .then(a.image_id.cmp(&b.image_id))
            });
            let _ = n;
            Ok(images.pop().expect("non-empty"))
        }
        n => Err(format!(
            "{n} source OMIs match ({}): narrow source_omi_filter or set most_recent",
            images
                .iter()
                .map(|i| i.image_id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// The inputs that shape the image: the build's options (except those the
/// plan can change in place, the name, credentials and timeouts), the
/// resolved source OMI, the provisioners, and the bytes of the scripts and
/// files they read.
fn digest(build: &Build, source: &Image, region: &str, inputs: &[(String, Vec<u8>)]) -> String {
    let c = &build.config;
    let mappings = |list: &[crate::template::BlockDevice]| -> Vec<Value> {
        list.iter()
            .map(|m| {
                json!({
                    "device_name": m.device_name, "delete_on_vm_deletion": m.delete_on_vm_deletion,
                    "volume_type": m.volume_type, "volume_size": m.volume_size, "iops": m.iops,
                    "snapshot_id": m.snapshot_id, "no_device": m.no_device,
                    "virtual_name": m.virtual_name,
                })
            })
            .collect()
    };
    let devices = mappings(&c.launch_block_device_mappings);
    let omi_devices = mappings(&c.omi_block_device_mappings);
    let options = json!({
        "builder": "bsu",
        "region": region,
        "vm_type": c.vm_type,
        "user_data": c.user_data,
        "shutdown_behavior": c.shutdown_behavior,
        "bsu_optimized": c.bsu_optimized,
        "boot_mode": c.boot_mode,
        "omi_boot_modes": c.omi_boot_modes,
        "product_codes": c.product_codes,
        "omi_product_codes": c.omi_product_codes,
        "omi_name": c.omi_name,
        "root_device_name": c.root_device_name,
        "omi_block_device_mappings": omi_devices,
        "launch_block_device_mappings": devices,
        "skip_create_omi": c.skip_create_omi,
        "communicator": c.communicator,
    });
    let provisioners: Vec<Value> = build
        .provisioners
        .iter()
        .map(|p| json!({"type": p.kind, "config": p.config}))
        .collect();
    let mut digest = Digest::new();
    digest
        .json("options", &options)
        .part("source_omi", source.image_id.as_bytes())
        .json("provisioners", &Value::Array(provisioners));
    for (name, bytes) in inputs {
        digest.part(&format!("file {name}"), bytes);
    }
    digest.finish()
}

fn to_tags(map: &BTreeMap<String, String>) -> Vec<ResourceTag> {
    map.iter().map(|(k, v)| ResourceTag::new(k, v)).collect()
}

fn as_map(v: &Value) -> BTreeMap<String, String> {
    serde_json::from_value(v.clone()).unwrap_or_default()
}

/// Tags the user manages: everything but osci's own.
fn user_tags(tags: &[ResourceTag]) -> BTreeMap<String, String> {
    tags.iter()
        .filter(|t| !t.key.starts_with("osci:"))
        .map(|t| (t.key.clone(), t.value.clone()))
        .collect()
}

fn image_attributes_named(name: &str, description: &str) -> BTreeMap<String, Value> {
    BTreeMap::from([
        ("name".to_string(), json!(name)),
        ("description".to_string(), json!(description)),
    ])
}

/// An image's attributes as state keeps them.
pub fn image_attributes(image: &Image) -> BTreeMap<String, Value> {
    let mut a = image_attributes_named(
        &image.image_name,
        image.description.as_deref().unwrap_or_default(),
    );
    a.insert("id".into(), json!(image.image_id));
    a.insert("state".into(), json!(image.state));
    a
}

pub fn snapshot_attributes(snapshot: &Snapshot) -> BTreeMap<String, Value> {
    BTreeMap::from([
        ("id".to_string(), json!(snapshot.snapshot_id)),
        ("volume_size".to_string(), json!(snapshot.volume_size)),
    ])
}

pub fn image_permission_attributes(image: &Image) -> BTreeMap<String, Value> {
    let ids: BTreeSet<&String> = image.permissions_to_launch.account_ids.iter().collect();
    BTreeMap::from([
        ("account_ids".to_string(), json!(ids)),
        (
            "global_permission".to_string(),
            json!(image.permissions_to_launch.global_permission),
        ),
    ])
}

pub fn snapshot_permission_attributes(
    snapshot: &Snapshot,
    snapshot_ids: &[Value],
) -> BTreeMap<String, Value> {
    let ids: BTreeSet<&String> = snapshot
        .permissions_to_create_volume
        .account_ids
        .iter()
        .collect();
    let mut a = BTreeMap::from([
        ("account_ids".to_string(), json!(ids)),
        (
            "global_permission".to_string(),
            json!(snapshot.permissions_to_create_volume.global_permission),
        ),
    ]);
    if !snapshot_ids.is_empty() {
        a.insert("snapshot_ids".into(), Value::Array(snapshot_ids.to_vec()));
    }
    a
}

pub fn tag_attributes(image: &Image, snapshots: &[&Snapshot]) -> BTreeMap<String, Value> {
    let snapshot_tags = snapshots
        .first()
        .map(|s| user_tags(&s.tags))
        .unwrap_or_default();
    BTreeMap::from([
        ("tags".to_string(), json!(user_tags(&image.tags))),
        ("snapshot_tags".to_string(), json!(snapshot_tags)),
    ])
}

/// The UpdateImage/UpdateSnapshot changes from `have` to `want`: removals,
/// then additions (the API takes one of them per call).
fn permission_changes(
    have: &BTreeMap<String, Value>,
    want: &BTreeMap<String, Value>,
) -> Vec<PermissionsOnResourceCreation> {
    let ids = |m: &BTreeMap<String, Value>| -> BTreeSet<String> {
        serde_json::from_value(m.get("account_ids").cloned().unwrap_or(json!([])))
            .unwrap_or_default()
    };
    let global = |m: &BTreeMap<String, Value>| {
        m.get("global_permission")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    };
    let (have_ids, want_ids) = (ids(have), ids(want));
    let removed: Vec<String> = have_ids.difference(&want_ids).cloned().collect();
    let added: Vec<String> = want_ids.difference(&have_ids).cloned().collect();
    let mut changes = Vec::new();
    let unpublish = global(have) && !global(want);
    if !removed.is_empty() || unpublish {
        changes.push(PermissionsOnResourceCreation {
            additions: None,
            removals: Some(PermissionsChange {
                account_ids: (!removed.is_empty()).then_some(removed),
                global_permission: unpublish.then_some(true),
            }),
        });
    }
    let publish = !global(have) && global(want);
    if !added.is_empty() || publish {
        changes.push(PermissionsOnResourceCreation {
            additions: Some(PermissionsChange {
                account_ids: (!added.is_empty()).then_some(added),
                global_permission: publish.then_some(true),
            }),
            removals: None,
        });
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builders::outscale::TAG_LINEAGE;

    #[test]
    fn permission_changes_remove_then_add() {
        let m = |ids: &[&str], g: bool| {
            BTreeMap::from([
                ("account_ids".to_string(), json!(ids)),
                ("global_permission".to_string(), json!(g)),
            ])
        };
        assert!(permission_changes(&m(&["1"], false), &m(&["1"], false)).is_empty());
        let c = permission_changes(&m(&["1", "2"], true), &m(&["2", "3"], false));
        assert_eq!(c.len(), 2);
        let r = c[0].removals.as_ref().unwrap();
        assert_eq!(r.account_ids.as_deref(), Some(&["1".to_string()][..]));
        assert_eq!(r.global_permission, Some(true));
        let a = c[1].additions.as_ref().unwrap();
        assert_eq!(a.account_ids.as_deref(), Some(&["3".to_string()][..]));
        assert_eq!(a.global_permission, None);
    }

    #[test]
    fn user_tags_hide_osci_tags() {
        let t = vec![
            ResourceTag::new(TAG_LINEAGE, "x"),
            ResourceTag::new("team", "a"),
        ];
        assert_eq!(
            user_tags(&t),
            BTreeMap::from([("team".to_string(), "a".to_string())])
        );
    }
}
