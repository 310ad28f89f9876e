//! The `outscale-bsusurrogate` builder (behaviour §1.2, with the defects of
//! §9 fixed), as a declaration: the bsu builder's VM, launched with
//! `launch_block_device_mappings` and provisioned (typically installing a
//! system into an extra volume), stopped; then every launch volume's
//! snapshot taken at once, and the OMI registered from them, its root the
//! snapshot of `omi_root_device.source_device_name` with every field of
//! `omi_root_device` honoured (the plugin ignored its size, iops and
//! deletion flag), the source's architecture (it hard-coded x86_64) and
//! `boot_mode`. The launch volumes go with the VM.

use serde_json::json;

use super::artifact::{self, Work};
use super::bsu::Bsu;
use super::steps::image::{self, Base, From, Omi, Taken};
use super::steps::snapshot;
use super::{Builder, Declare, Declared, launch};
use crate::graph::Graph;
use crate::secret::Secret;
use crate::template::{Build, OmiConfig, RunConfig, SurrogateConfig};

/// A bsusurrogate build, checked: what osci cannot honour was refused.
pub struct Surrogate {
    config: SurrogateConfig,
    /// The bsu build it extends, for its checks, options and work.
    bsu: Bsu,
}

impl Surrogate {
    pub fn prepare(
        build: &Build,
        config: &SurrogateConfig,
        sensitive: &[Secret],
        region: &str,
    ) -> Result<Surrogate, String> {
        Ok(Surrogate {
            bsu: Bsu::prepare(build, &config.bsu, sensitive, region)?,
            config: config.clone(),
        })
    }

    fn work(&self) -> &Work {
        self.bsu.work()
    }

    /// The OMI's boot modes: `omi_boot_modes`, else the VM's `boot_mode`
    /// (which the plugin did not pass), else the source's.
    fn boot_modes(&self, source: &crate::oapi::model::Image) -> Vec<String> {
        let c = &self.config.bsu;
        if !c.omi.omi_boot_modes.is_empty() {
            return c.omi.omi_boot_modes.clone();
        }
        match &c.run.boot_mode {
            Some(mode) => vec![mode.clone()],
            None => source.boot_modes.clone(),
        }
    }
}

impl Builder for Surrogate {
    // The VM, its source and its network are the bsu build's.
    fn name(&self) -> &str {
        self.bsu.name()
    }

    fn source(&self) -> Option<&RunConfig> {
        self.bsu.source()
    }

    fn network(&self) -> Option<&RunConfig> {
        self.bsu.network()
    }

    fn omi(&self) -> Option<&OmiConfig> {
        Some(&self.config.bsu.omi)
    }

    fn named_snapshots(&self) -> Vec<String> {
        self.bsu.named_snapshots()
    }

    fn declare(&self, input: Declare<'_>, graph: &mut Graph) -> Result<Declared, String> {
        let c = &self.config.bsu;
        let root = &self.config.omi_root_device;
        let src = input
            .source
            .ok_or("a bsusurrogate build starts from a source OMI")?;
        let region = input.cloud.region().to_string();
        let vars = artifact::build_vars(Some(src), &region);
        let options = json!({
            "bsu": self.bsu.options(&region),
            "builder": "bsusurrogate",
            "omi_root_device": {
                "source_device_name": root.source_device_name, "device_name": root.device_name,
                "delete_on_vm_deletion": root.delete_on_vm_deletion, "iops": root.iops,
                "volume_type": root.volume_type, "volume_size": root.volume_size,
            },
        });
        let run = self
            .work()
            .run(&input, self.work().digest(&options, Some(src)), vars);
        let launch_mappings = &c.block_devices.launch_block_device_mappings;
        let devices = launch::devices(src, launch_mappings);
        let launched = launch::declare(
            &run,
            c,
            src,
            input.placement,
            &devices,
            self.work(),
            "outscale-bsusurrogate",
            &Default::default(),
            graph,
        )?;
        let add = |graph: &mut Graph, node| graph.add(node).map_err(|e| e.to_string());
        // Every launch volume's snapshot, all at once; the root under its
        // name in the OMI.
        let mut taken = Vec::new();
        let mut snapshots = Vec::new();
        // A launch device under the name the root takes in the OMI (the
        // build VM's own system disk, typically) is not part of the OMI.
        let in_omi = |m: &&crate::template::BlockDevice| {
            !m.no_device
                && (m.device_name == root.source_device_name || m.device_name != root.device_name)
        };
        for m in launch_mappings.iter().filter(in_omi) {
            let volume = launched.volumes[&m.device_name];
            let is_root = m.device_name == root.source_device_name;
            let device = if is_root {
                root.device_name.clone()
            } else {
                m.device_name.clone()
            };
            let volume_address = graph.node(volume).address.clone();
            let s = add(graph, snapshot::take_node(&run, &volume_address, &device))?;
            graph.needs(s, volume);
            graph.needs(s, launched.stopped);
            taken.push(if is_root {
                Taken {
                    device,
                    snapshot: graph.node(s).address.clone(),
                    volume_size: root.volume_size.or(m.volume_size),
                    volume_type: root.volume_type.clone().or(m.volume_type.clone()),
                    iops: root.iops.or(m.iops),
                    delete_on_vm_deletion: root.delete_on_vm_deletion.or(m.delete_on_vm_deletion),
                }
            } else {
                Taken {
                    device,
                    snapshot: graph.node(s).address.clone(),
                    volume_size: m.volume_size,
                    volume_type: m.volume_type.clone(),
                    iops: m.iops,
                    delete_on_vm_deletion: m.delete_on_vm_deletion,
                }
            });
            snapshots.push(s);
        }
        let omi = Omi {
            name: c.omi.omi_name.clone(),
            description: crate::template::render_build_vars(&c.omi.omi_description, &run.vars)?,
            boot_modes: self.boot_modes(src),
            product_codes: artifact::product_codes(&c.omi),
            root_device_name: Some(root.device_name.clone()),
            mappings: c.block_devices.omi_block_device_mappings.clone(),
        };
        let from = From::Snapshots {
            taken,
            root_device: Some(root.device_name.clone()),
            base: Base::Mappings {
                mappings: c.block_devices.omi_block_device_mappings.clone(),
                architecture: src
                    .architecture
                    .clone()
                    .unwrap_or_else(|| "x86_64".to_string()),
            },
        };
        let image = add(graph, image::node(&run, from, omi))?;
        for s in &snapshots {
            graph.needs(image, *s);
        }
        artifact::declare(&run, graph, image, &snapshots, &c.omi, self.work())?;
        Ok(Declared {
            run,
            image: Some(image),
        })
    }
}
