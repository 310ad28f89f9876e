//! What every builder that launches a build VM declares (behaviour C3 to
//! C13): the source, the temporary security group, public IP and keypair
//! the template asks for, the VM with its volumes, the provisioning over
//! SSH, and the stop before its volumes are captured.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::artifact::Work;
use super::network::Placement;
use super::steps::provision::{self, Provisioning};
use super::steps::vm::Launch;
use super::steps::{BuildRun, keypair, public_ip, security_group, source, stop, vm, volume};
use crate::graph::{Address, Graph, NodeIndex};
use crate::oapi::model::Image;
use crate::template::{BlockDevice, BsuConfig};

/// The nodes of a launched build VM.
pub struct Launched {
    pub vm_address: Address,
    /// Its volumes, by device.
    pub volumes: BTreeMap<String, NodeIndex>,
    /// The provisioned VM, stopped.
    pub stopped: NodeIndex,
}

/// The devices the VM boots with volumes on, hence its volumes and the
/// snapshots of an OMI of it, with the size the plan knows of each. A
/// source mapping with no volume (a virtual device) makes neither.
pub fn devices(source: &Image, launch: &[BlockDevice]) -> BTreeMap<String, Option<i64>> {
    let mut devices: BTreeMap<String, Option<i64>> = source
        .block_device_mappings
        .iter()
        .filter_map(|m| Some((m.device_name.clone()?, m.bsu.as_ref()?.volume_size)))
        .collect();
    for m in launch {
        if m.no_device {
            devices.remove(&m.device_name);
        } else {
            let size = m.volume_size.filter(|s| *s > 0);
            let entry = devices.entry(m.device_name.clone()).or_insert(None);
            if size.is_some() {
                *entry = size;
            }
        }
    }
    devices
}

/// Declares the VM of a build from `src`, placed as `placement` says, with
/// volumes at `devices` (those of `kept` the build keeps, with their tags),
/// provisioned and stopped.
#[allow(clippy::too_many_arguments)]
pub fn declare(
    run: &Arc<BuildRun>,
    c: &BsuConfig,
    src: &Image,
    placement: &Placement,
    devices: &BTreeMap<String, Option<i64>>,
    work: &Work,
    builder_type: &'static str,
    kept: &BTreeMap<String, BTreeMap<String, String>>,
    graph: &mut Graph,
) -> Result<Launched, String> {
    let run = Arc::clone(run);
    let add = |graph: &mut Graph, node| graph.add(node).map_err(|e| e.to_string());
    // Placement resolved at plan time, so the apply launches where the
    // plan said.
    let mut placed = c.run.clone();
    placed.net_id = placement.net_id.clone();
    placed.subnet_id = placement.subnet_id.clone();
    placed.subregion_name = placement.subregion_name.clone();
    placed.security_group_ids = placement.security_group_ids.clone();

    let source = add(graph, source::node(&run, src))?;
    let group = if placed.security_group_ids.is_empty() {
        let rule = (c.comm.communicator != "none").then(|| {
            (
                c.comm.ssh_port,
                c.run.temporary_security_group_source_cidr.clone(),
            )
        });
        let node = security_group::node(
            &run,
            placed.net_id.clone(),
            rule,
            &c.run.temporary_security_group_source_cidr,
        );
        Some(add(graph, node)?)
    } else {
        None
    };
    let ip = match c.run.associate_public_ip_address {
        true => Some(add(graph, public_ip::node(&run))?),
        false => None,
    };
    let key = match c.comm.needs_temporary_keypair() {
        true => Some(add(
            graph,
            keypair::node(&run, c.comm.temporary_key_pair_name.clone()),
        )?),
        false => None,
    };
    let address_of = |i: Option<crate::graph::NodeIndex>, graph: &Graph| {
        i.map(|i| graph.node(i).address.clone())
    };
    let launch = Launch {
        source_omi: src.image_id.clone(),
        config: placed,
        mappings: c.block_devices.launch_block_device_mappings.clone(),
        security_group: address_of(group, graph),
        keypair: address_of(key, graph),
        keypair_name: c.comm.ssh_keypair_name.clone(),
        public_ip: address_of(ip, graph),
        kept: kept.keys().cloned().collect(),
    };
    let vm = add(graph, vm::node(&run, launch))?;
    let vm_address = graph.node(vm).address.clone();
    for used in [Some(source), group, ip, key].into_iter().flatten() {
        graph.needs(vm, used);
    }
    let mut volumes = BTreeMap::new();
    for (device, size) in devices {
        let node = match kept.get(device) {
            Some(tags) => volume::kept_node(&run, &vm_address, device, *size, tags.clone()),
            None => volume::node(&run, &vm_address, device, *size),
        };
        let volume = add(graph, node)?;
        graph.makes(vm, volume);
        volumes.insert(device.clone(), volume);
    }
    let key_address = address_of(key, graph);
    let provisioning = Provisioning {
        comm: c.comm.clone(),
        ssh_interface: c.run.ssh_interface.clone(),
        provisioners: work.provisioners.clone(),
        template_dir: work.template_dir.clone(),
        builder_type,
    };
    let prov = add(
        graph,
        provision::node(
            &run,
            provision::Target::Vm {
                vm: vm_address.clone(),
                keypair: key_address.clone(),
            },
            provisioning,
        ),
    )?;
    graph.needs(prov, vm);
    let stopped = add(graph, stop::node(&run, &vm_address, c.run.disable_stop_vm))?;
    graph.needs(stopped, prov);
    Ok(Launched {
        vm_address,
        volumes,
        stopped,
    })
}
