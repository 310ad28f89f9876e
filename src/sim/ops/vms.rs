//! VMs: launching from an image with its volumes, the life cycle
//! (pending → running → stopping → stopped → … → terminated), and what a
//! terminated VM releases.

use base64::Engine;

use super::{Ctx, parse_cidr};
use crate::oapi::model::*;
use crate::sim::error::{Kind, SimError, SimResult};
use crate::sim::filters;
use crate::sim::world::{Latency, Next, VmRecord, VolumeRecord, World, iso};

/// VMs an account may have at once (terminated ones excepted).
const VM_QUOTA: usize = 20;
const USER_DATA_MAX: usize = 500 * 1024;
const VM_TYPES: &[&str] = &[
    "t2.nano",
    "t2.micro",
    "t2.small",
    "t2.medium",
    "t2.large",
    "m4.large",
    "m4.xlarge",
    "c4.large",
    "c4.xlarge",
    "r4.large",
    "r4.xlarge",
];

/// `tinavW.cXrYpZ` or one of the AWS names OUTSCALE converts.
fn valid_vm_type(t: &str) -> bool {
    if VM_TYPES.contains(&t) {
        return true;
    }
    let Some(rest) = t.strip_prefix("tinav") else {
        return false;
    };
    let Some((generation, spec)) = rest.split_once('.') else {
        return false;
    };
    let numbers = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !numbers(generation) {
        return false;
    }
    let Some(spec) = spec.strip_prefix('c') else {
        return false;
    };
    let Some((c, spec)) = spec.split_once('r') else {
        return false;
    };
    let Some((r, p)) = spec.split_once('p') else {
        return false;
    };
    numbers(c) && numbers(r) && numbers(p)
}

/// The VM as the API shows it: block devices from the volumes linked to it,
/// tags from the tag table.
pub fn render(world: &World, rec: &VmRecord) -> Vm {
    let mut vm = rec.vm.clone();
    vm.tags = world.tags_of(&vm.vm_id);
    if rec.terminated_at.is_none() {
        vm.block_device_mappings = world
            .volumes
            .values()
            .flat_map(|v| v.volume.linked_volumes.iter())
            .filter(|l| l.vm_id == vm.vm_id)
            .map(|l| BlockDeviceMappingCreated {
                device_name: l.device_name.clone(),
                bsu: BsuCreated {
                    volume_id: l.volume_id.clone(),
                    state: l.state.clone(),
                    delete_on_vm_deletion: l.delete_on_vm_deletion,
                    link_date: vm.creation_date.clone(),
                },
            })
            .collect();
        vm.block_device_mappings
            .sort_by(|a, b| a.device_name.cmp(&b.device_name));
    }
    vm
}

pub(super) fn validate_bsu(bsu: &BsuToCreate, device: &str) -> SimResult<()> {
    let kind = bsu.volume_type.as_deref().unwrap_or("standard");
    if !matches!(kind, "standard" | "gp2" | "io1") {
        return Err(SimError::invalid_value(format!(
            "{device}: VolumeType must be standard, gp2 or io1, not {kind}"
        )));
    }
    if let Some(size) = bsu.volume_size
        && !(1..=14901).contains(&size)
    {
        return Err(SimError::invalid_code(
            "4078",
            format!("{device}: VolumeSize must be 1 to 14901 GiB, not {size}"),
        ));
    }
    match (kind, bsu.iops) {
        ("io1", None) => Err(SimError::missing_parameter("Iops (for io1 volumes)")),
        ("io1", Some(iops)) if !(100..=13000).contains(&iops) => Err(SimError::invalid_value(
            format!("{device}: Iops must be 100 to 13000, not {iops}"),
        )),
        ("io1", _) => Ok(()),
        (_, Some(_)) => Err(SimError::invalid_value(format!(
            "{device}: Iops is only for io1 volumes"
        ))),
        _ => Ok(()),
    }
}

/// The devices a VM starts with: the image's, changed by the request's.
fn block_devices(
    world: &World,
    image: &Image,
    requested: &[BlockDeviceMappingVmCreation],
) -> SimResult<Vec<(String, BsuToCreate)>> {
    let mut devices: Vec<(String, BsuToCreate)> = image
        .block_device_mappings
        .iter()
        .filter_map(|m| Some((m.device_name.clone()?, m.bsu.clone()?)))
        .collect();
    for m in requested {
        let device = m
            .device_name
            .clone()
            .ok_or_else(|| SimError::missing_parameter("BlockDeviceMappings.DeviceName"))?;
        if m.no_device.is_some() {
            devices.retain(|(d, _)| *d != device);
            continue;
        }
        let Some(bsu) = &m.bsu else { continue };
        validate_bsu(bsu, &device)?;
        match devices.iter_mut().find(|(d, _)| *d == device) {
            Some((_, existing)) => {
                let min = snapshot_size(world, existing.snapshot_id.as_deref())
                    .max(existing.volume_size.unwrap_or(1));
                if let Some(size) = bsu.volume_size {
                    if size < min {
                        return Err(SimError::invalid_code(
                            "4078",
                            format!(
                                "{device}: VolumeSize {size} is smaller than the {min} GiB of its snapshot"
                            ),
                        ));
                    }
                    existing.volume_size = Some(size);
                }
                if bsu.volume_type.is_some() {
                    existing.volume_type = bsu.volume_type.clone();
                    existing.iops = bsu.iops;
                }
                if bsu.delete_on_vm_deletion.is_some() {
                    existing.delete_on_vm_deletion = bsu.delete_on_vm_deletion;
                }
            }
            None => {
                if let Some(snap) = &bsu.snapshot_id
                    && !world.snapshots.contains_key(snap)
                {
                    return Err(SimError::not_found(Kind::Snapshot, snap));
                }
                if bsu.volume_size.is_none() && bsu.snapshot_id.is_none() {
                    return Err(SimError::missing_parameter(
                        "BlockDeviceMappings.Bsu.VolumeSize (or SnapshotId)",
                    ));
                }
                devices.push((device, bsu.clone()));
            }
        }
    }
    Ok(devices)
}

fn snapshot_size(world: &World, snapshot: Option<&str>) -> i64 {
    snapshot
        .and_then(|s| world.snapshots.get(s))
        .map_or(1, |s| s.snapshot.volume_size)
}

pub fn create(ctx: &mut Ctx<'_>, req: CreateVmsRequest) -> SimResult<CreateVmsResponse> {
    let account = ctx.account.clone();
    if let Some(token) = &req.client_token {
        let existing: Vec<Vm> = ctx
            .world
            .vms
            .values()
            .filter(|r| r.owner == account && r.vm.client_token.as_deref() == Some(token))
            .map(|r| render(ctx.world, r))
            .collect();
        if !existing.is_empty() {
            return Ok(CreateVmsResponse {
                vms: existing,
                ..Default::default()
            });
        }
    }
    let world = &*ctx.world;
    let image = world
        .images
        .get(&req.image_id)
        .map(|r| &r.image)
        .filter(|i| super::images::visible(i, &account))
        .ok_or_else(|| SimError::not_found(Kind::Image, &req.image_id))?
        .clone();
    if image.state != "available" {
        return Err(SimError::invalid_state(
            "6001",
            format!("image {} is {}, not available", image.image_id, image.state),
        ));
    }
    let vm_type = req.vm_type.clone().unwrap_or_else(|| "t2.small".into());
    if !valid_vm_type(&vm_type) {
        return Err(SimError::invalid_value(format!(
            "VmType `{vm_type}` is neither a tinavW.cXrYpZ type nor a known AWS name"
        )));
    }
    let min = req.min_vms_count.unwrap_or(1);
    let max = req.max_vms_count.unwrap_or(min.max(1));
    if min < 1 || max < min {
        return Err(SimError::invalid_value(
            "MinVmsCount and MaxVmsCount must satisfy 1 <= MinVmsCount <= MaxVmsCount",
        ));
    }
    let running = world
        .vms
        .values()
        .filter(|r| r.owner == account && r.vm.state != "terminated")
        .count();
    let room = VM_QUOTA.saturating_sub(running) as i64;
    if room < min {
        return Err(SimError::quota(
            "10010",
            format!("the account may run {VM_QUOTA} VMs and already has {running}"),
        ));
    }
    let count = max.min(room);
    if let Some(name) = &req.keypair_name
        && !world
            .keypairs
            .values()
            .any(|k| k.owner == account && k.keypair.keypair_name == *name)
    {
        return Err(SimError::not_found(Kind::Keypair, name));
    }
    let subnet = match &req.subnet_id {
        Some(id) => {
            ctx.own(Kind::Subnet, id)?;
            Some(world.subnets[id].subnet.clone())
        }
        None => None,
    };
    let net_id = subnet.as_ref().map(|s| s.net_id.clone());
    let subregions = world.subregions();
    let subregion = match (
        req.placement
            .as_ref()
            .and_then(|p| p.subregion_name.clone()),
        &subnet,
    ) {
        (Some(s), _) if !subregions.contains(&s) => {
            return Err(SimError::invalid_code(
                "4081",
                format!(
                    "Placement.SubregionName `{s}` is not one of {}",
                    subregions.join(", ")
                ),
            ));
        }
        (Some(s), Some(sub)) if s != sub.subregion_name => {
            return Err(SimError::conflict(
                "9071",
                format!(
                    "subnet {} is in {}, not {s}",
                    sub.subnet_id, sub.subregion_name
                ),
            ));
        }
        (_, Some(sub)) => sub.subregion_name.clone(),
        (Some(s), None) => s,
        (None, None) => subregions[0].clone(),
    };
    let mut groups = Vec::new();
    for id in req.security_group_ids.iter().flatten() {
        ctx.own(Kind::SecurityGroup, id)?;
        groups.push(world.security_groups[id].clone());
    }
    for name in req.security_groups.iter().flatten() {
        let sg = world
            .security_groups
            .values()
            .find(|g| {
                g.account_id == account && g.security_group_name == *name && g.net_id == net_id
            })
            .ok_or_else(|| SimError::not_found(Kind::SecurityGroup, name))?;
        groups.push(sg.clone());
    }
    if groups.is_empty() {
        let default = world
            .security_groups
            .values()
            .find(|g| {
                g.account_id == account && g.security_group_name == "default" && g.net_id == net_id
            })
            .ok_or_else(|| {
                SimError::missing_parameter("SecurityGroupIds (no default group here)")
            })?;
        groups.push(default.clone());
    }
    if let Some(g) = groups.iter().find(|g| g.net_id != net_id) {
        return Err(SimError::invalid_value(format!(
            "security group {} is not in the same network as the VM",
            g.security_group_id
        )));
    }
    if let Some(data) = &req.user_data {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(data)
            .map_err(|_| SimError::invalid_value("UserData must be base64"))?;
        if decoded.len() > USER_DATA_MAX {
            return Err(SimError::invalid_value("UserData is larger than 500 KiB"));
        }
    }
    let behaviour = req
        .vm_initiated_shutdown_behavior
        .clone()
        .unwrap_or_else(|| "stop".into());
    if !matches!(behaviour.as_str(), "stop" | "restart" | "terminate") {
        return Err(SimError::invalid_value(
            "VmInitiatedShutdownBehavior must be stop, restart or terminate",
        ));
    }
    if let Some(perf) = &req.performance
        && !matches!(perf.as_str(), "medium" | "high" | "highest")
    {
        return Err(SimError::invalid_value(
            "Performance must be medium, high or highest",
        ));
    }
    let devices = block_devices(
        world,
        &image,
        req.block_device_mappings.as_deref().unwrap_or(&[]),
    )?;
    let root = image
        .root_device_name
        .clone()
        .unwrap_or_else(|| "/dev/sda1".into());
    if !devices.iter().any(|(d, _)| *d == root) {
        return Err(SimError::invalid_value(format!(
            "the root device {root} cannot be removed"
        )));
    }

    let now = ctx.now;
    let latency = ctx.latency;
    let mut created = Vec::new();
    let reservation = ctx.world.new_id(Kind::Vm).replace("i-", "r-");
    for n in 0..count {
        let world = &mut *ctx.world;
        let vm_id = world.new_id(Kind::Vm);
        let private_ip = match &subnet {
            Some(s) => subnet_address(world, s)?,
            None => world.allocate_ip(false),
        };
        let auto_public_ip = subnet.is_none().then(|| world.allocate_ip(true));
        for (device, bsu) in &devices {
            let volume_id = world.new_id(Kind::Volume);
            let size = bsu
                .volume_size
                .unwrap_or_else(|| snapshot_size(world, bsu.snapshot_id.as_deref()));
            world.volumes.insert(
                volume_id.clone(),
                VolumeRecord {
                    volume: Volume {
                        volume_id: volume_id.clone(),
                        state: "in-use".into(),
                        size,
                        subregion_name: subregion.clone(),
                        volume_type: bsu.volume_type.clone().unwrap_or_else(|| "standard".into()),
                        iops: bsu.iops,
                        snapshot_id: bsu.snapshot_id.clone(),
                        linked_volumes: vec![LinkedVolume {
                            volume_id: volume_id.clone(),
                            vm_id: vm_id.clone(),
                            device_name: device.clone(),
                            state: "attached".into(),
                            delete_on_vm_deletion: bsu.delete_on_vm_deletion.unwrap_or(true),
                        }],
                        creation_date: Some(iso(now)),
                        ..Default::default()
                    },
                    owner: account.clone(),
                    next: None,
                    link_settles_at: None,
                },
            );
        }
        let target = if req.boot_on_creation == Some(false) {
            "stopped"
        } else {
            "running"
        };
        let vm = Vm {
            vm_id: vm_id.clone(),
            state: "pending".into(),
            image_id: image.image_id.clone(),
            vm_type: vm_type.clone(),
            keypair_name: req.keypair_name.clone(),
            private_ip: Some(private_ip.clone()),
            public_ip: auto_public_ip.clone(),
            private_dns_name: Some(format!(
                "ip-{}.{}.compute.internal",
                private_ip.replace('.', "-"),
                world.region
            )),
            public_dns_name: auto_public_ip.as_ref().map(|ip| {
                format!(
                    "ows-{}.{}.compute.outscale.com",
                    ip.replace('.', "-"),
                    world.region
                )
            }),
            subnet_id: req.subnet_id.clone(),
            net_id: net_id.clone(),
            placement: Some(Placement {
                subregion_name: Some(subregion.clone()),
                tenancy: Some("default".into()),
            }),
            security_groups: groups
                .iter()
                .map(|g| SecurityGroupLight {
                    security_group_id: g.security_group_id.clone(),
                    security_group_name: g.security_group_name.clone(),
                })
                .collect(),
            root_device_name: Some(root.clone()),
            root_device_type: Some("ebs".into()),
            client_token: req.client_token.clone(),
            creation_date: Some(iso(now)),
            os_family: Some("linux".into()),
            architecture: image.architecture.clone().or(Some("x86_64".into())),
            boot_mode: req.boot_mode.clone().or(Some("legacy".into())),
            user_data: req.user_data.clone(),
            vm_initiated_shutdown_behavior: Some(behaviour.clone()),
            performance: Some(req.performance.clone().unwrap_or_else(|| "high".into())),
            deletion_protection: Some(req.deletion_protection.unwrap_or(false)),
            launch_number: Some(n),
            reservation_id: Some(reservation.clone()),
            hypervisor: Some("xen".into()),
            is_source_dest_checked: Some(true),
            bsu_optimized: Some(req.bsu_optimized.unwrap_or(false)),
            ..Default::default()
        };
        world.vms.insert(
            vm_id.clone(),
            VmRecord {
                vm,
                owner: account.clone(),
                next: Some(Next {
                    to: target.into(),
                    at: latency.after(now, Latency::VM_BOOT),
                }),
                terminated_at: None,
                console: vec![format!("[{}] launched from {}", iso(now), image.image_id)],
                auto_public_ip,
            },
        );
        created.push(render(world, &world.vms[&vm_id]));
    }
    Ok(CreateVmsResponse {
        vms: created,
        ..Default::default()
    })
}

/// The first free address of a subnet, after the four the platform keeps.
fn subnet_address(world: &World, subnet: &Subnet) -> SimResult<String> {
    let (base, len) = parse_cidr("IpRange", &subnet.ip_range)?;
    let size = 1u32 << (32 - u32::from(len));
    let used: Vec<&str> = world
        .vms
        .values()
        .filter(|r| {
            r.vm.subnet_id.as_deref() == Some(&subnet.subnet_id) && r.vm.state != "terminated"
        })
        .filter_map(|r| r.vm.private_ip.as_deref())
        .collect();
    (4..size.saturating_sub(1))
        .map(|i| std::net::Ipv4Addr::from(base + i).to_string())
        .find(|ip| !used.contains(&ip.as_str()))
        .ok_or_else(|| {
            SimError::quota(
                "10021",
                format!("subnet {} has no free address", subnet.subnet_id),
            )
        })
}

fn matches(world: &World, vm: &Vm, f: &FiltersVm) -> bool {
    filters::any(&f.vm_ids, &vm.vm_id)
        && filters::any(&f.vm_state_names, &vm.state)
        && filters::any(&f.vm_state_codes, &state_code(&vm.state))
        && filters::any(&f.vm_types, &vm.vm_type)
        && filters::any_opt(&f.client_tokens, vm.client_token.as_deref())
        && filters::any(&f.image_ids, &vm.image_id)
        && filters::any_opt(&f.keypair_names, vm.keypair_name.as_deref())
        && filters::any_opt(&f.subnet_ids, vm.subnet_id.as_deref())
        && filters::any_opt(&f.net_ids, vm.net_id.as_deref())
        && filters::any_opt(
            &f.subregion_names,
            vm.placement
                .as_ref()
                .and_then(|p| p.subregion_name.as_deref()),
        )
        && filters::any_of_many(
            &f.security_group_ids,
            vm.security_groups
                .iter()
                .map(|g| g.security_group_id.as_str()),
        )
        && filters::any_of_many(
            &f.security_group_names,
            vm.security_groups
                .iter()
                .map(|g| g.security_group_name.as_str()),
        )
        && filters::any_opt(&f.public_ips, vm.public_ip.as_deref())
        && filters::any_opt(&f.private_ips, vm.private_ip.as_deref())
        && filters::any_of_many(
            &f.block_device_mapping_volume_ids,
            vm.block_device_mappings
                .iter()
                .map(|m| m.bsu.volume_id.as_str()),
        )
        && filters::tags(f, world.tags.get(&vm.vm_id))
}

/// The numeric state codes of EC2 heritage.
fn state_code(state: &str) -> i64 {
    match state {
        "pending" => 0,
        "running" => 16,
        "shutting-down" => 32,
        "terminated" => 48,
        "stopping" => 64,
        "stopped" => 80,
        _ => -1,
    }
}

pub fn read(ctx: &mut Ctx<'_>, req: ReadVmsRequest) -> SimResult<ReadVmsResponse> {
    let f = req.filters.unwrap_or_default();
    filters::well_formed(&f.vm_ids, "i")?;
    let vms: Vec<Vm> = ctx
        .world
        .vms
        .values()
        .filter(|r| r.owner == ctx.account)
        .map(|r| render(ctx.world, r))
        .filter(|vm| matches(ctx.world, vm, &f))
        .collect();
    let (vms, next_page_token) =
        filters::paginate(vms, req.next_page_token.as_deref(), req.results_per_page)?;
    Ok(ReadVmsResponse {
        vms,
        next_page_token,
        ..Default::default()
    })
}

pub fn read_state(ctx: &mut Ctx<'_>, req: ReadVmsStateRequest) -> SimResult<ReadVmsStateResponse> {
    let f = req.filters.unwrap_or_default();
    let all = req.all_vms.unwrap_or(false);
    let states: Vec<VmStates> = ctx
        .world
        .vms
        .values()
        .filter(|r| r.owner == ctx.account)
        .filter(|r| all || r.vm.state == "running")
        .map(|r| VmStates {
            vm_id: r.vm.vm_id.clone(),
            vm_state: r.vm.state.clone(),
            subregion_name: r
                .vm
                .placement
                .as_ref()
                .and_then(|p| p.subregion_name.clone()),
            maintenance_events: Vec::new(),
        })
        .filter(|s| {
            filters::any(&f.vm_ids, &s.vm_id)
                && filters::any(&f.vm_states, &s.vm_state)
                && filters::any_opt(&f.subregion_names, s.subregion_name.as_deref())
        })
        .collect();
    let (vm_states, next_page_token) =
        filters::paginate(states, req.next_page_token.as_deref(), req.results_per_page)?;
    Ok(ReadVmsStateResponse {
        vm_states,
        next_page_token,
        ..Default::default()
    })
}

/// Checks every id first so a call with one bad id changes nothing.
fn own_vms(ctx: &Ctx<'_>, ids: &[String]) -> SimResult<()> {
    if ids.is_empty() {
        return Err(SimError::missing_parameter("VmIds"));
    }
    ids.iter().try_for_each(|id| ctx.own(Kind::Vm, id))
}

/// Moves each VM through `transitions` (from-state → (intermediate, final,
/// seconds)); states not listed are left as they are when `keep` accepts
/// them, refused otherwise.
fn change_states(
    ctx: &mut Ctx<'_>,
    ids: &[String],
    plan: impl Fn(&str) -> SimResult<Option<(&'static str, &'static str, f64)>>,
) -> SimResult<VmStateChangeResponse> {
    own_vms(ctx, ids)?;
    for id in ids {
        plan(&ctx.world.vms[id].vm.state)?;
    }
    let mut vms = Vec::new();
    for id in ids {
        let rec = ctx.world.vms.get_mut(id).expect("checked above");
        let previous = rec.vm.state.clone();
        if let Some((now_state, final_state, secs)) = plan(&previous)? {
            rec.vm.state = now_state.into();
            rec.next = Some(Next {
                to: final_state.into(),
                at: ctx.latency.after(ctx.now, secs),
            });
            rec.console
                .push(format!("[{}] {previous} -> {now_state}", iso(ctx.now)));
        }
        vms.push(VmState {
            vm_id: id.clone(),
            previous_state: previous,
            current_state: rec.vm.state.clone(),
        });
    }
    Ok(VmStateChangeResponse {
        vms,
        ..Default::default()
    })
}

fn gone(state: &str) -> SimError {
    SimError::invalid_state("6006", format!("the VM is {state}"))
}

pub fn start(ctx: &mut Ctx<'_>, req: StartVmsRequest) -> SimResult<VmStateChangeResponse> {
    change_states(ctx, &req.vm_ids, |state| match state {
        "stopped" => Ok(Some(("pending", "running", Latency::VM_BOOT))),
        "pending" | "running" => Ok(None),
        s => Err(gone(s)),
    })
}

pub fn stop(ctx: &mut Ctx<'_>, req: StopVmsRequest) -> SimResult<VmStateChangeResponse> {
    refuse_host(ctx, &req.vm_ids)?;
    change_states(ctx, &req.vm_ids, |state| match state {
        "pending" | "running" => Ok(Some(("stopping", "stopped", Latency::VM_STOP))),
        "stopping" | "stopped" => Ok(None),
        s => Err(gone(s)),
    })
}

pub fn delete(ctx: &mut Ctx<'_>, req: DeleteVmsRequest) -> SimResult<VmStateChangeResponse> {
    own_vms(ctx, &req.vm_ids)?;
    refuse_host(ctx, &req.vm_ids)?;
    if let Some(id) = req
        .vm_ids
        .iter()
        .find(|id| ctx.world.vms[*id].vm.deletion_protection == Some(true))
    {
        return Err(SimError::invalid_value(format!(
            "VM {id} has DeletionProtection: turn it off before deleting the VM"
        )));
    }
    change_states(ctx, &req.vm_ids, |state| match state {
        "shutting-down" | "terminated" => Ok(None),
        _ => Ok(Some(("shutting-down", "terminated", Latency::VM_TERMINATE))),
    })
}

pub fn admin_password(
    ctx: &mut Ctx<'_>,
    req: ReadAdminPasswordRequest,
) -> SimResult<ReadAdminPasswordResponse> {
    ctx.own(Kind::Vm, &req.vm_id)?;
    // Only Windows VMs generate a password; the simulator runs Linux images.
    Ok(ReadAdminPasswordResponse {
        vm_id: req.vm_id,
        admin_password: Some(String::new()),
        ..Default::default()
    })
}

pub fn console_output(
    ctx: &mut Ctx<'_>,
    req: ReadConsoleOutputRequest,
) -> SimResult<ReadConsoleOutputResponse> {
    ctx.own(Kind::Vm, &req.vm_id)?;
    let text = ctx.world.vms[&req.vm_id].console.join("\n");
    let tail = &text.as_bytes()[text.len().saturating_sub(64 * 1024)..];
    Ok(ReadConsoleOutputResponse {
        vm_id: req.vm_id,
        console_output: Some(base64::engine::general_purpose::STANDARD.encode(tail)),
        ..Default::default()
    })
}

/// The host VM is the machine the simulator runs on: it stays up.
fn refuse_host(ctx: &Ctx<'_>, ids: &[String]) -> SimResult<()> {
    match ids
        .iter()
        .find(|id| crate::sim::host::is_host(ctx.world, id))
    {
        Some(id) => Err(SimError::invalid_state(
            "6006",
            format!(
                "VM {id} is the machine the simulator runs on: it cannot be stopped or deleted"
            ),
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_types() {
        assert!(valid_vm_type("tinav5.c2r4p2"));
        assert!(valid_vm_type("t2.small"));
        assert!(!valid_vm_type("tinav5.c2r4"));
        assert!(!valid_vm_type("huge"));
        assert!(super::super::check_len("x", "abc", 1, 3).is_ok());
    }
}
