//! The `outscale-bsu` builder (behaviour §1.1, with the defects of §9
//! fixed), as a declaration: launch a VM from the source OMI with a
//! temporary security group, keypair and public IP as the template asks,
//! provision it, stop it, capture it as an OMI (through a capture when
//! `omi_block_device_mappings` reshape it), share and tag the OMI and its
//! snapshots. Every node's work is a step of [`super::steps`]; the engine
//! walks the graph and removes the ephemeral nodes when they are no longer
//! needed.

use serde_json::{Value, json};

use super::artifact::{self, Work};
use super::steps::image::{self, From, Omi};
use super::steps::{run, snapshot};
use super::{Builder, Declare, Declared, communicator, launch};
use crate::graph::{Graph, Lifetime};
use crate::oapi::model::Image;
use crate::secret::Secret;
use crate::template::{BsuConfig, Build, OmiConfig, RunConfig};

/// A bsu build, checked: what osci cannot honour was refused.
pub struct Bsu {
    config: BsuConfig,
    work: Work,
}

impl Bsu {
    /// Checks what osci can honour in `region`, without the cloud.
    /// `sensitive` are the template's sensitive variables' values, masked
    /// in provisioner output.
    pub fn prepare(
        build: &Build,
        config: &BsuConfig,
        sensitive: &[Secret],
        region: &str,
    ) -> Result<Bsu, String> {
        let config = config.clone();
        let (run, omi, comm) = (&config.run, &config.omi, &config.comm);
        let refuse = |what: &str| Err(what.to_string());
        if let Some(why) = communicator::unsupported(comm) {
            return refuse(&why);
        }
        // Provisioners osci lacks, and files that cannot be read, first.
        let mut work = Work::of(build, Vec::new())?;
        if config.bsu.skip_create_omi
            && let Some(p) = build.post_processors.first()
        {
            return refuse(&format!(
                "{} ({}): skip_create_omi makes no OMI to post-process; remove one or the other",
                p.at, p.kind
            ));
        }
        if comm.communicator == "none"
            && let Some(p) = build.provisioners.iter().find(|p| p.kind != "shell-local")
        {
            return refuse(&format!(
                "provisioners[{}] ({}) runs on the VM, and communicator is \"none\": set \"communicator\": \"ssh\" and ssh_username",
                p.index, p.kind
            ));
        }
        if let Some(other) = omi.omi_regions.iter().find(|r| *r != region) {
            return refuse(&format!(
                "omi_regions: copying the OMI to {other} is not supported yet (a state serves one \
                 region); build it there with a template of its own"
            ));
        }
        if run.iam_vm_profile.is_some() {
            return refuse("iam_vm_profile: OUTSCALE VMs have no IAM profile; remove the key");
        }
        if run.block_duration_minutes > 0 {
            return refuse("block_duration_minutes: OUTSCALE has no spot VMs; remove the key");
        }
        if run.enable_t2_unlimited {
            return refuse("enable_t2_unlimited: OUTSCALE has no T2 VM types; remove the key");
        }
        if run.disable_stop_vm && run.shutdown_behavior == "terminate" {
            return refuse(
                "disable_stop_vm with shutdown_behavior \"terminate\": the VM would terminate and take \
                 its volumes with it, leaving nothing to capture",
            );
        }
        let sensitive = sensitive
            .iter()
            .chain(&comm.ssh_password)
            .chain(&comm.ssh_bastion_password)
            .chain(&comm.ssh_proxy_password)
            .chain(&comm.winrm_password)
            .cloned()
            .collect();
        work.sensitive = sensitive;
        Ok(Bsu { work, config })
    }

    /// The inputs that shape the image: the build's options (except those
    /// the plan can change in place, the name, credentials and timeouts),
    /// the resolved source OMI, the provisioners, and the bytes of the
    /// scripts and files they read.
    fn digest(&self, source: &Image, region: &str) -> String {
        self.work.digest(&self.options(region), Some(source))
    }

    /// The options that shape the image, for the digest.
    pub(super) fn options(&self, region: &str) -> Value {
        let c = &self.config;
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
        json!({
            "builder": "bsu",
            "region": region,
            "vm_type": c.run.vm_type,
            "user_data": c.run.user_data.as_ref().map(|u| u.as_str()),
            "shutdown_behavior": c.run.shutdown_behavior,
            "bsu_optimized": c.run.bsu_optimized,
            "boot_mode": c.run.boot_mode,
            "omi_boot_modes": c.omi.omi_boot_modes,
            "product_codes": c.omi.product_codes,
            "omi_product_codes": c.omi.omi_product_codes,
            "omi_name": c.omi.omi_name,
            "root_device_name": c.omi.root_device_name,
            "omi_block_device_mappings": mappings(&c.block_devices.omi_block_device_mappings),
            "launch_block_device_mappings": mappings(&c.block_devices.launch_block_device_mappings),
            "skip_create_omi": c.bsu.skip_create_omi,
            "communicator": c.comm.communicator,
        })
    }

    /// The work of the build: provisioners, post-processors.
    pub(super) fn work(&self) -> &Work {
        &self.work
    }
}

impl Builder for Bsu {
    fn name(&self) -> &str {
        &self.work.name
    }

    fn source(&self) -> Option<&RunConfig> {
        Some(&self.config.run)
    }

    fn network(&self) -> Option<&RunConfig> {
        Some(&self.config.run)
    }

    fn omi(&self) -> Option<&OmiConfig> {
        (!self.config.bsu.skip_create_omi).then_some(&self.config.omi)
    }

    fn named_snapshots(&self) -> Vec<String> {
        let devices = &self.config.block_devices;
        devices
            .launch_block_device_mappings
            .iter()
            .chain(&devices.omi_block_device_mappings)
            .filter_map(|m| m.snapshot_id.clone())
            .collect()
    }

    fn declare(&self, input: Declare<'_>, graph: &mut Graph) -> Result<Declared, String> {
        let c = &self.config;
        let src = input.source.ok_or("a bsu build starts from a source OMI")?;
        let region = input.cloud.region().to_string();
        let vars = artifact::build_vars(Some(src), &region);
        let devices = launch::devices(src, &c.block_devices.launch_block_device_mappings);
        let device_names: Vec<String> = devices.keys().cloned().collect();
        let omi_mappings = &c.block_devices.omi_block_device_mappings;
        if !c.bsu.skip_create_omi {
            image::check_mappings(
                &device_names,
                omi_mappings,
                c.omi.root_device_name.as_deref(),
            )?;
        }
        let run = self
            .work
            .run(&input, self.digest(src, &region), vars.clone());
        let add = |graph: &mut Graph, node| graph.add(node).map_err(|e| e.to_string());

        let launched = launch::declare(
            &run,
            c,
            src,
            input.placement,
            &devices,
            &self.work,
            "outscale-bsu",
            &Default::default(),
            graph,
        )?;
        let (vm_address, stopped) = (launched.vm_address, launched.stopped);
        if c.bsu.skip_create_omi {
            let record = add(graph, run::node(&run))?;
            graph.needs(record, stopped);
            return Ok(Declared { run, image: None });
        }

        let omi = Omi {
            name: c.omi.omi_name.clone(),
            description: crate::template::render_build_vars(&c.omi.omi_description, &vars)?,
            boot_modes: c.omi.omi_boot_modes.clone(),
            product_codes: artifact::product_codes(&c.omi),
            root_device_name: c.omi.root_device_name.clone(),
            mappings: omi_mappings.clone(),
        };
        let mut own_snapshots = Vec::new();
        let image = if omi_mappings.is_empty() {
            let image = add(graph, image::node(&run, From::Vm(vm_address.clone()), omi))?;
            graph.needs(image, stopped);
            let image_address = graph.node(image).address.clone();
            for device in &device_names {
                let s = add(
                    graph,
                    snapshot::node(&run, &image_address, device, Lifetime::Durable),
                )?;
                graph.makes(image, s);
                own_snapshots.push(s);
            }
            image
        } else {
            let kept = image::kept_devices(&device_names, omi_mappings);
            let capture = add(
                graph,
                image::capture_node(&run, &vm_address, &omi, kept.clone()),
            )?;
            graph.needs(capture, stopped);
            let capture_address = graph.node(capture).address.clone();
            let image = add(
                graph,
                image::node(&run, From::Capture(capture_address.clone()), omi),
            )?;
            graph.needs(image, capture);
            for device in &device_names {
                let lifetime = if kept.contains(device) {
                    Lifetime::Durable
                } else {
                    Lifetime::Ephemeral
                };
                let s = add(
                    graph,
                    snapshot::node(&run, &capture_address, device, lifetime),
                )?;
                graph.makes(capture, s);
                // The OMI takes over what it keeps: complete with it, and
                // removed after it.
                if lifetime == Lifetime::Durable {
                    graph.makes(image, s);
                    own_snapshots.push(s);
                }
            }
            image
        };
        artifact::declare(&run, graph, image, &own_snapshots, &c.omi, &self.work)?;
        Ok(Declared {
            run,
            image: Some(image),
        })
    }
}
