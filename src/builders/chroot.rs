//! The `outscale-chroot` builder (behaviour §1.4 and §6, with the defects
//! fixed), as a declaration over the same steps as every builder: a volume
//! from the source OMI's root snapshot (from a copy when another account
//! owns the source; blank from scratch), linked to the VM osci runs on at
//! a device chosen under the host-wide lock, mounted with the chroot's
//! mounts, provisioned in a chroot, then unmounted and unlinked; its
//! snapshot becomes the OMI's root. No build VM.
//!
//! The mounts, the device and the link are nodes the state records, so a
//! crash at any point leaves enough for `destroy` to unmount (innermost
//! first), unlink and delete what the build made on this host.

use serde_json::{Value, json};

use super::artifact::{self, Work};
use super::steps::image::{self, Base, From, Omi, Taken};
use super::steps::mount::{Extra, Root};
use super::steps::provision::{Provisioning, Target};
use super::steps::volume::{NewVolume, Start};
use super::steps::{
    copy_files, device, host_commands, link, mount, provision, snapshot, source, volume,
};
use super::{Builder, Declare, Declared};
use crate::graph::{Graph, Lifetime, NodeIndex};
use crate::oapi::model::Image;
use crate::secret::Secret;
use crate::template::{Build, ChrootConfig, DEFAULT_MOUNT_PATH, OmiConfig, RunConfig};

/// A chroot build, checked: what osci cannot honour was refused.
pub struct Chroot {
    config: ChrootConfig,
    /// The source options, as the planner reads them for every builder.
    source: RunConfig,
    work: Work,
}

impl Chroot {
    pub fn prepare(
        build: &Build,
        config: &ChrootConfig,
        sensitive: &[Secret],
    ) -> Result<Chroot, String> {
        Ok(Chroot {
            source: config.chroot.source(),
            config: config.clone(),
            work: Work::of(build, sensitive.to_vec())?,
        })
    }

    fn wrapper(&self) -> String {
        self.config
            .chroot
            .command_wrapper
            .clone()
            .unwrap_or_else(|| "{{.Command}}".into())
    }

    /// What shapes the image: the options that make the volume and what
    /// runs on it, the source, the provisioners and the files they read.
    /// Not `copy_files`: the image gets its own files back.
    fn digest(&self, source: Option<&Image>, region: &str) -> String {
        let c = &self.config.chroot;
        let o = &self.config.omi;
        let mappings: Vec<Value> = c
            .omi_block_device_mappings
            .iter()
            .map(|m| {
                json!({
                    "device_name": m.device_name, "delete_on_vm_deletion": m.delete_on_vm_deletion,
                    "volume_type": m.volume_type, "volume_size": m.volume_size, "iops": m.iops,
                    "snapshot_id": m.snapshot_id, "no_device": m.no_device,
                })
            })
            .collect();
        let options = json!({
            "builder": "chroot",
            "region": region,
            "from_scratch": c.from_scratch,
            "root_volume_size": c.root_volume_size,
            "root_volume_type": c.root_volume_type,
            "mount_partition": c.partition(),
            "mount_options": c.mount_options,
            "chroot_mounts": c.mounts(),
            "pre_mount_commands": c.pre_mount_commands,
            "post_mount_commands": c.post_mount_commands,
            "command_wrapper": c.command_wrapper,
            "omi_name": o.omi_name,
            "omi_boot_modes": o.omi_boot_modes,
            "product_codes": artifact::product_codes(o),
            "root_device_name": o.root_device_name,
            "omi_block_device_mappings": mappings,
        });
        self.work.digest(&options, source)
    }

    /// The volume the chroot is built on, and the device it stands for in
    /// the OMI.
    fn volume(
        &self,
        source: Option<&Image>,
        copy: Option<&crate::graph::Address>,
    ) -> Result<(String, NewVolume), String> {
        let c = &self.config.chroot;
        let tags = c.root_volume_tags.clone();
        let Some(source) = source else {
            let root = self
                .config
                .omi
                .root_device_name
                .clone()
                .ok_or("root_device_name: required from scratch")?;
            let new = NewVolume {
                start: Start::Blank,
                size: c.root_volume_size,
                volume_type: c.root_volume_type.clone(),
                iops: None,
                tags,
            };
            return Ok((root, new));
        };
        let root = source
            .root_device_name
            .clone()
            .ok_or_else(|| format!("the source OMI {} names no root device", source.image_id))?;
        let bsu = source
            .block_device_mappings
            .iter()
            .find(|m| m.device_name.as_deref() == Some(root.as_str()))
            .and_then(|m| m.bsu.clone())
            .filter(|b| b.snapshot_id.is_some())
            .ok_or_else(|| {
                format!(
                    "the source OMI {} has no snapshot at its root device {root}",
                    source.image_id
                )
            })?;
        let source_type = bsu.volume_type.clone().unwrap_or_else(|| "standard".into());
        let volume_type = c.root_volume_type.clone().unwrap_or(source_type.clone());
        if volume_type == "io1" && source_type != "io1" {
            return Err(format!(
                "root_volume_type: io1 needs an io1 source, and the root of {} is {source_type}",
                source.image_id
            ));
        }
        let start = match copy {
            Some(copy) => Start::CopyOf {
                copy: copy.clone(),
                device: root.clone(),
            },
            None => Start::Snapshot {
                id: bsu.snapshot_id.clone().unwrap_or_default(),
                size: bsu.volume_size.unwrap_or(0),
            },
        };
        let new = NewVolume {
            start,
            size: c.root_volume_size,
            iops: bsu.iops.filter(|_| volume_type == source_type),
            volume_type: Some(volume_type),
            tags,
        };
        Ok((root, new))
    }
}

impl Builder for Chroot {
    fn name(&self) -> &str {
        &self.work.name
    }

    fn source(&self) -> Option<&RunConfig> {
        (!self.config.chroot.from_scratch).then_some(&self.source)
    }

    fn network(&self) -> Option<&RunConfig> {
        None
    }

    fn omi(&self) -> Option<&OmiConfig> {
        Some(&self.config.omi)
    }

    fn named_snapshots(&self) -> Vec<String> {
        self.config
            .chroot
            .omi_block_device_mappings
            .iter()
            .filter_map(|m| m.snapshot_id.clone())
            .collect()
    }

    fn declare(&self, input: Declare<'_>, graph: &mut Graph) -> Result<Declared, String> {
        let c = &self.config.chroot;
        let o = &self.config.omi;
        let src = input.source;
        let region = input.cloud.region().to_string();
        let vars = artifact::build_vars(src, &region);
        let run = self.work.run(&input, self.digest(src, &region), vars);
        let add = |graph: &mut Graph, node| graph.add(node).map_err(|e| e.to_string());
        let address = |graph: &Graph, i: NodeIndex| graph.node(i).address.clone();
        let wrapper = self.wrapper();

        let source = src.map(|s| add(graph, source::node(&run, s))).transpose()?;
        let foreign = src.filter(|s| s.account_id != input.cloud.account_id);
        let mut copy_snapshots = Vec::new();
        let copy = match foreign {
            Some(s) => {
                let root = s.root_device_name.clone().unwrap_or_default();
                let copy = add(graph, image::copy_node(&run, s, &root, &region))?;
                graph.needs(copy, source.expect("a copied source was read"));
                let copy_address = address(graph, copy);
                for device in s
                    .block_device_mappings
                    .iter()
                    .filter(|m| m.bsu.as_ref().is_some_and(|b| b.snapshot_id.is_some()))
                    .filter_map(|m| m.device_name.clone())
                {
                    let lifetime = if device == root {
                        Lifetime::Ephemeral
                    } else {
                        Lifetime::Durable
                    };
                    let key = image::copy_snapshot_key(&device);
                    let s = add(graph, snapshot::node(&run, &copy_address, &key, lifetime))?;
                    graph.makes(copy, s);
                    if lifetime == Lifetime::Durable {
                        copy_snapshots.push(s);
                    }
                }
                Some(copy)
            }
            None => None,
        };
        let copy_address = copy.map(|i| address(graph, i));
        let (root_device, new) = self.volume(src, copy_address.as_ref())?;
        let volume = add(graph, volume::create_node(&run, &root_device, new))?;
        for before in [source, copy].into_iter().flatten() {
            graph.needs(volume, before);
        }
        let volume_address = address(graph, volume);

        let device = add(
            graph,
            device::node(
                &run,
                c.device_path.clone(),
                &volume_address,
                c.nvme_device_path.is_none(),
            ),
        )?;
        graph.needs(device, volume);
        let device_address = address(graph, device);
        let linked = add(graph, link::node(&run, &device_address))?;
        graph.makes(device, linked);
        graph.needs(linked, volume);
        // What the snapshot waits to be gone: every mount, then the link.
        let mut held = vec![linked];
        let mut last = linked;
        if !c.pre_mount_commands.is_empty() {
            let pre = add(
                graph,
                host_commands::node(
                    &run,
                    host_commands::PRE_MOUNT,
                    c.pre_mount_commands.clone(),
                    wrapper.clone(),
                    &device_address,
                    None,
                ),
            )?;
            graph.needs(pre, last);
            last = pre;
        }
        let root = Root {
            device: device_address.clone(),
            partition: c.partition(),
            nvme_device_path: c.nvme_device_path.clone(),
            mount_path: c
                .mount_path
                .clone()
                .unwrap_or_else(|| DEFAULT_MOUNT_PATH.into()),
            options: c.mount_options.clone(),
            wrapper: wrapper.clone(),
        };
        let root_mount = add(graph, mount::root_node(&run, root))?;
        graph.needs(root_mount, last);
        graph.needs(root_mount, linked);
        held.push(root_mount);
        let root_address = address(graph, root_mount);
        last = root_mount;
        if !c.post_mount_commands.is_empty() {
            let post = add(
                graph,
                host_commands::node(
                    &run,
                    host_commands::POST_MOUNT,
                    c.post_mount_commands.clone(),
                    wrapper.clone(),
                    &device_address,
                    Some(&root_address),
                ),
            )?;
            graph.needs(post, last);
            last = post;
        }
        // Each mount sits in the one before it (devpts in /dev): removed
        // the other way round.
        let mut previous_mount = root_mount;
        for [fstype, source, target] in c.mounts() {
            let extra = Extra {
                root: root_address.clone(),
                fstype,
                source,
                target,
                wrapper: wrapper.clone(),
            };
            let m = add(graph, mount::extra_node(&run, extra))?;
            graph.needs(m, last);
            graph.needs(m, previous_mount);
            held.push(m);
            previous_mount = m;
            last = m;
        }
        let files = c.copied_files();
        let copied = if files.is_empty() {
            None
        } else {
            let node = add(graph, copy_files::node(&run, files, &root_address))?;
            graph.needs(node, last);
            last = node;
            Some(node)
        };
        let provisioning = Provisioning {
            comm: Default::default(),
            ssh_interface: None,
            provisioners: self.work.provisioners.clone(),
            template_dir: self.work.template_dir.clone(),
            builder_type: "outscale-chroot",
        };
        let target = Target::Chroot {
            mount: root_address.clone(),
            wrapper,
        };
        let prov = add(graph, provision::node(&run, target, provisioning))?;
        graph.needs(prov, last);
        last = prov;
        if let Some(copied) = copied {
            let copied_address = address(graph, copied);
            let restore = add(graph, copy_files::restore_node(&run, &copied_address))?;
            graph.needs(restore, last);
            last = restore;
        }
        let taken = add(
            graph,
            snapshot::take_node(&run, &volume_address, &root_device),
        )?;
        graph.needs(taken, volume);
        graph.needs(taken, last);
        for h in held {
            graph.after_removal(taken, h);
        }
        let base = match (src, &copy_address) {
            (_, Some(copy)) => Base::Copy(copy.clone()),
            (Some(s), None) => Base::Source(Box::new(s.clone())),
            (None, None) => Base::Mappings {
                mappings: c.omi_block_device_mappings.clone(),
                // From scratch, the image holds what this machine runs.
                architecture: std::env::consts::ARCH.to_string(),
            },
        };
        let omi = Omi {
            name: o.omi_name.clone(),
            description: crate::template::render_build_vars(&o.omi_description, &run.vars)?,
            boot_modes: o.omi_boot_modes.clone(),
            product_codes: artifact::product_codes(o),
            root_device_name: o.root_device_name.clone(),
            mappings: c.omi_block_device_mappings.clone(),
        };
        let from = From::Snapshots {
            taken: vec![Taken {
                device: root_device.clone(),
                snapshot: address(graph, taken),
                volume_size: c.root_volume_size,
                volume_type: None,
                iops: None,
                delete_on_vm_deletion: None,
            }],
            root_device: None,
            base,
        };
        let image = add(graph, image::node(&run, from, omi))?;
        graph.needs(image, taken);
        if let Some(copy) = copy {
            graph.needs(image, copy);
        }
        for s in &copy_snapshots {
            graph.makes(image, *s);
        }
        let mut own = vec![taken];
        own.extend(copy_snapshots);
        artifact::declare(&run, graph, image, &own, o, &self.work)?;
        Ok(Declared {
            run,
            image: Some(image),
        })
    }
}
