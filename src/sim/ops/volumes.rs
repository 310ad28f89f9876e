//! Volumes: created empty or from a snapshot, linked to a VM at a device
//! name, unlinked, and deleted only when free.

use super::Ctx;
use crate::oapi::model::*;
use crate::sim::error::{Kind, SimError, SimResult};
use crate::sim::filters;
use crate::sim::world::{Latency, Next, VolumeRecord, World, iso};

const VOLUME_QUOTA: usize = 100;

fn render(world: &World, rec: &VolumeRecord) -> Volume {
    let mut v = rec.volume.clone();
    v.tags = world.tags_of(&v.volume_id);
    v
}

pub fn create(ctx: &mut Ctx<'_>, req: CreateVolumeRequest) -> SimResult<VolumeResponse> {
    let account = ctx.account.clone();
    if let Some(token) = &req.client_token
        && let Some(rec) = ctx
            .world
            .volumes
            .values()
            .find(|r| r.owner == account && r.volume.client_token.as_deref() == Some(token))
    {
        return Ok(VolumeResponse {
            volume: render(ctx.world, rec),
            ..Default::default()
        });
    }
    let subregions = ctx.world.subregions();
    if !subregions.contains(&req.subregion_name) {
        return Err(SimError::invalid_code(
            "4081",
            format!(
                "SubregionName `{}` is not one of {}",
                req.subregion_name,
                subregions.join(", ")
            ),
        ));
    }
    let snapshot_size = match &req.snapshot_id {
        Some(id) => {
            let s = ctx
                .world
                .snapshots
                .get(id)
                .map(|r| &r.snapshot)
                .filter(|s| super::snapshots::visible(s, &account))
                .ok_or_else(|| SimError::not_found(Kind::Snapshot, id))?;
            if s.state != "completed" {
                return Err(SimError::invalid_state(
                    "6003",
                    format!("snapshot {id} is {}", s.state),
                ));
            }
            Some(s.volume_size)
        }
        None => None,
    };
    let size = match (req.size, snapshot_size) {
        (Some(size), Some(min)) if size < min => {
            return Err(SimError::invalid_code(
                "4078",
                format!("Size {size} is smaller than the {min} GiB of the snapshot"),
            ));
        }
        (Some(size), _) => size,
        (None, Some(min)) => min,
        (None, None) => return Err(SimError::missing_parameter("Size (or SnapshotId)")),
    };
    let volume_type = req.volume_type.clone().unwrap_or_else(|| "standard".into());
    let bsu = BsuToCreate {
        volume_size: Some(size),
        volume_type: Some(volume_type.clone()),
        iops: req.iops,
        ..Default::default()
    };
    super::vms::validate_bsu(&bsu, "the volume")?;
    if let Some(iops) = req.iops
        && iops > 300 * size
    {
        return Err(SimError::invalid_value(format!(
            "Iops {iops} is more than 300 per GiB of a {size} GiB volume"
        )));
    }
    let owned = ctx
        .world
        .volumes
        .values()
        .filter(|r| r.owner == account)
        .count();
    if owned >= VOLUME_QUOTA {
        return Err(SimError::quota(
            "10018",
            format!("the account may keep {VOLUME_QUOTA} volumes"),
        ));
    }
    let id = ctx.world.new_id(Kind::Volume);
    let rec = VolumeRecord {
        volume: Volume {
            volume_id: id.clone(),
            state: "creating".into(),
            size,
            subregion_name: req.subregion_name,
            volume_type,
            iops: req.iops,
            snapshot_id: req.snapshot_id,
            creation_date: Some(iso(ctx.now)),
            client_token: req.client_token,
            ..Default::default()
        },
        owner: account,
        next: Some(Next {
            to: "available".into(),
            at: ctx.latency.after(ctx.now, Latency::VOLUME_CREATE),
        }),
        link_settles_at: None,
    };
    let volume = render(ctx.world, &rec);
    ctx.world.volumes.insert(id, rec);
    Ok(VolumeResponse {
        volume,
        ..Default::default()
    })
}

fn matches(world: &World, v: &Volume, f: &FiltersVolume) -> bool {
    let links = || v.linked_volumes.iter();
    filters::any(&f.volume_ids, &v.volume_id)
        && filters::any(&f.volume_states, &v.state)
        && filters::any(&f.volume_types, &v.volume_type)
        && filters::any(&f.volume_sizes, &v.size)
        && filters::any(&f.subregion_names, &v.subregion_name)
        && filters::any_opt(&f.snapshot_ids, v.snapshot_id.as_deref())
        && filters::any_opt(&f.client_tokens, v.client_token.as_deref())
        && filters::any_of_many(&f.link_volume_vm_ids, links().map(|l| l.vm_id.as_str()))
        && filters::any_of_many(
            &f.link_volume_device_names,
            links().map(|l| l.device_name.as_str()),
        )
        && filters::any_of_many(
            &f.link_volume_link_states,
            links().map(|l| l.state.as_str()),
        )
        && f.link_volume_delete_on_vm_deletion
            .is_none_or(|d| links().any(|l| l.delete_on_vm_deletion == d))
        && filters::tags(f, world.tags.get(&v.volume_id))
}

pub fn read(ctx: &mut Ctx<'_>, req: ReadVolumesRequest) -> SimResult<ReadVolumesResponse> {
    let f = req.filters.unwrap_or_default();
    filters::well_formed(&f.volume_ids, "vol")?;
    let volumes: Vec<Volume> = ctx
        .world
        .volumes
        .values()
        .filter(|r| r.owner == ctx.account)
        .map(|r| render(ctx.world, r))
        .filter(|v| matches(ctx.world, v, &f))
        .collect();
    let (volumes, next_page_token) = filters::paginate(
        volumes,
        req.next_page_token.as_deref(),
        req.results_per_page,
    )?;
    Ok(ReadVolumesResponse {
        volumes,
        next_page_token,
        ..Default::default()
    })
}

/// `/dev/sdX` or `/dev/xvdX`, X from b to z (a is the root disk's).
fn valid_device(name: &str) -> bool {
    let letter = name
        .strip_prefix("/dev/xvd")
        .or_else(|| name.strip_prefix("/dev/sd"));
    matches!(letter, Some(l) if l.len() == 1 && ('b'..='z').contains(&l.chars().next().unwrap_or('a')))
}

pub fn link(ctx: &mut Ctx<'_>, req: LinkVolumeRequest) -> SimResult<EmptyResponse> {
    ctx.own(Kind::Volume, &req.volume_id)?;
    ctx.own(Kind::Vm, &req.vm_id)?;
    let vm = &ctx.world.vms[&req.vm_id].vm;
    if !matches!(vm.state.as_str(), "running" | "stopped") {
        return Err(SimError::invalid_state(
            "6006",
            format!(
                "VM {} is {}: a volume links to a running or stopped VM",
                vm.vm_id, vm.state
            ),
        ));
    }
    let vm_subregion = vm.placement.as_ref().and_then(|p| p.subregion_name.clone());
    let volume = &ctx.world.volumes[&req.volume_id].volume;
    if volume.state != "available" {
        return Err(SimError::invalid_state(
            "6007",
            format!(
                "volume {} is {}, not available",
                volume.volume_id, volume.state
            ),
        ));
    }
    if vm_subregion.as_deref() != Some(volume.subregion_name.as_str()) {
        return Err(SimError::conflict(
            "9071",
            format!(
                "volume {} is in {} and VM {} in {}: they must be in the same subregion",
                volume.volume_id,
                volume.subregion_name,
                req.vm_id,
                vm_subregion.unwrap_or_default()
            ),
        ));
    }
    if !valid_device(&req.device_name) {
        return Err(SimError::invalid_code(
            "4019",
            format!(
                "DeviceName `{}` must be /dev/sdX or /dev/xvdX with X from b to z",
                req.device_name
            ),
        ));
    }
    if crate::sim::host::is_host(ctx.world, &req.vm_id)
        && let Some(why) = crate::sim::host::refuse_link(&req.device_name)
    {
        return Err(SimError::conflict("9004", why));
    }
    let taken = ctx
        .world
        .volumes
        .values()
        .flat_map(|v| v.volume.linked_volumes.iter())
        .any(|l| l.vm_id == req.vm_id && l.device_name == req.device_name);
    if taken {
        return Err(SimError::conflict(
            "9004",
            format!(
                "VM {} already has a volume at {}",
                req.vm_id, req.device_name
            ),
        ));
    }
    let settles = ctx.latency.after(ctx.now, Latency::VOLUME_LINK);
    let rec = ctx
        .world
        .volumes
        .get_mut(&req.volume_id)
        .expect("checked above");
    rec.volume.state = "in-use".into();
    rec.volume.linked_volumes.push(LinkedVolume {
        volume_id: req.volume_id.clone(),
        vm_id: req.vm_id,
        device_name: req.device_name,
        state: "attaching".into(),
        delete_on_vm_deletion: false,
    });
    rec.link_settles_at = Some(settles);
    Ok(EmptyResponse::default())
}

pub fn unlink(ctx: &mut Ctx<'_>, req: UnlinkVolumeRequest) -> SimResult<EmptyResponse> {
    ctx.own(Kind::Volume, &req.volume_id)?;
    let volume = &ctx.world.volumes[&req.volume_id].volume;
    let Some(link) = volume.linked_volumes.first().cloned() else {
        return Err(SimError::invalid_state(
            "6007",
            format!("volume {} is not linked to a VM", req.volume_id),
        ));
    };
    if let Some(vm) = ctx.world.vms.get(&link.vm_id).map(|r| &r.vm)
        && vm.root_device_name.as_deref() == Some(link.device_name.as_str())
        && vm.state != "stopped"
    {
        return Err(SimError::invalid_state(
            "6006",
            format!(
                "{} is the root device of VM {}: stop the VM first",
                link.device_name, vm.vm_id
            ),
        ));
    }
    let settles = ctx.latency.after(ctx.now, Latency::VOLUME_LINK);
    let rec = ctx
        .world
        .volumes
        .get_mut(&req.volume_id)
        .expect("checked above");
    for l in &mut rec.volume.linked_volumes {
        l.state = "detaching".into();
    }
    rec.link_settles_at = Some(settles);
    Ok(EmptyResponse::default())
}

pub fn delete(ctx: &mut Ctx<'_>, req: DeleteVolumeRequest) -> SimResult<EmptyResponse> {
    ctx.own(Kind::Volume, &req.volume_id)?;
    let volume = &ctx.world.volumes[&req.volume_id].volume;
    if let Some(link) = volume.linked_volumes.first() {
        return Err(SimError::dependency(format!(
            "volume {} is linked to VM {} at {}: unlink it first",
            req.volume_id, link.vm_id, link.device_name
        )));
    }
    ctx.world.volumes.remove(&req.volume_id);
    ctx.world.tags.remove(&req.volume_id);
    Ok(EmptyResponse::default())
}

#[cfg(test)]
mod tests {
    #[test]
    fn device_names() {
        assert!(super::valid_device("/dev/xvdf"));
        assert!(super::valid_device("/dev/sdb"));
        assert!(!super::valid_device("/dev/sda"));
        assert!(!super::valid_device("/dev/xvdff"));
        assert!(!super::valid_device("xvdf"));
    }
}
