//! Images: made from a VM (snapshotting its volumes), copied, or registered
//! from snapshots; shared through launch permissions.

use super::{Ctx, change_permissions, check_len};
use crate::oapi::model::*;
use crate::sim::error::{Kind, SimError, SimResult};
use crate::sim::filters;
use crate::sim::world::{ImageRecord, Latency, Millis, SnapshotRecord, World, iso};

/// Whether `account` may see and launch the image.
pub fn visible(image: &Image, account: &str) -> bool {
    image.account_id == account
        || image.permissions_to_launch.global_permission
        || image
            .permissions_to_launch
            .account_ids
            .iter()
            .any(|a| a == account)
}

fn render(world: &World, rec: &ImageRecord) -> Image {
    let mut image = rec.image.clone();
    image.tags = world.tags_of(&image.image_id);
    image
}

/// 3 to 128 letters, digits, spaces and `( ) . / _ -`.
fn check_name(name: &str) -> SimResult<()> {
    let ok = (3..=128).contains(&name.chars().count())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || " ()./_-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(SimError::invalid_code(
            "4026",
            format!("ImageName `{name}` must be 3 to 128 letters, digits, spaces or ( ) . / _ -"),
        ))
    }
}

/// A new snapshot of `size` GiB, filling up over time.
pub fn new_snapshot(
    world: &mut World,
    account: &str,
    size: i64,
    volume_id: Option<String>,
    description: String,
    now: Millis,
    latency: Latency,
) -> String {
    let id = world.new_id(Kind::Snapshot);
    let alias = world.account(account).and_then(|a| a.alias.clone());
    let done_at = latency.after(
        now,
        Latency::SNAPSHOT_BASE + Latency::SNAPSHOT_PER_GIB * size as f64,
    );
    world.snapshots.insert(
        id.clone(),
        SnapshotRecord {
            snapshot: Snapshot {
                snapshot_id: id.clone(),
                state: "pending".into(),
                progress: 0,
                volume_id,
                volume_size: size,
                account_id: account.to_string(),
                account_alias: alias,
                description: Some(description),
                creation_date: Some(iso(now)),
                ..Default::default()
            },
            started_at: now,
            done_at,
            copied_from: None,
        },
    );
    id
}

pub fn create(ctx: &mut Ctx<'_>, req: CreateImageRequest) -> SimResult<ImageResponse> {
    let account = ctx.account.clone();
    let modes = [
        req.vm_id.is_some(),
        req.source_image_id.is_some(),
        req.file_location.is_some(),
        req.root_device_name.is_some() || req.block_device_mappings.is_some(),
    ];
    if modes.iter().filter(|m| **m).count() != 1 {
        return Err(SimError::invalid_value(
            "give exactly one of VmId, SourceImageId, FileLocation, or RootDeviceName with BlockDeviceMappings",
        ));
    }
    if req.file_location.is_some() {
        return Err(SimError::invalid_value(
            "FileLocation imports read a manifest from object storage (OOS), which the simulator does not have",
        ));
    }
    if let Some(d) = &req.description {
        check_len("Description", d, 0, 255)?;
    }
    let source = match &req.source_image_id {
        Some(id) => Some(
            ctx.world
                .images
                .get(id)
                .map(|r| r.image.clone())
                .filter(|i| visible(i, &account))
                .ok_or_else(|| SimError::not_found(Kind::Image, id))?,
        ),
        None => None,
    };
    let name = match (&req.image_name, &source) {
        (Some(n), _) => n.clone(),
        (None, Some(s)) => s.image_name.clone(),
        (None, None) => return Err(SimError::missing_parameter("ImageName")),
    };
    check_name(&name)?;
    if ctx
        .world
        .images
        .values()
        .any(|r| r.image.account_id == account && r.image.image_name == name)
    {
        return Err(SimError::conflict(
            "9015",
            format!("the account already has an image named `{name}`"),
        ));
    }
    let now = ctx.now;
    let latency = ctx.latency;
    let image_id = ctx.world.new_id(Kind::Image);
    let mut image = Image {
        image_id: image_id.clone(),
        image_name: name,
        state: "pending".into(),
        description: req.description.clone(),
        account_id: account.clone(),
        account_alias: ctx.world.account(&account).and_then(|a| a.alias.clone()),
        creation_date: Some(iso(now)),
        architecture: Some(req.architecture.clone().unwrap_or_else(|| "x86_64".into())),
        boot_modes: req
            .boot_modes
            .clone()
            .unwrap_or_else(|| vec!["legacy".into()]),
        root_device_type: Some("bsu".into()),
        image_type: Some("machine".into()),
        product_codes: req
            .product_codes
            .clone()
            .unwrap_or_else(|| vec!["0001".into()]),
        secure_boot: Some(false),
        tpm_mandatory: Some(req.tpm_mandatory.unwrap_or(false)),
        ..Default::default()
    };
    let mut ready_at = latency.after(now, Latency::IMAGE_REGISTER);

    if let Some(vm_id) = &req.vm_id {
        ctx.own(Kind::Vm, vm_id)?;
        let vm = ctx.world.vms[vm_id].vm.clone();
        if !matches!(vm.state.as_str(), "running" | "stopped") {
            return Err(SimError::invalid_state(
                "6006",
                format!("VM {vm_id} is {}: it must be running or stopped", vm.state),
            ));
        }
        let mut links: Vec<(LinkedVolume, Volume)> = ctx
            .world
            .volumes
            .values()
            .flat_map(|v| {
                v.volume
                    .linked_volumes
                    .iter()
                    .map(move |l| (l.clone(), v.volume.clone()))
            })
            .filter(|(l, _)| l.vm_id == *vm_id)
            .collect();
        links.sort_by(|a, b| a.0.device_name.cmp(&b.0.device_name));
        for (link, volume) in links {
            let snap = new_snapshot(
                ctx.world,
                &account,
                volume.size,
                Some(volume.volume_id.clone()),
                format!("Created by CreateImage({image_id}) from {vm_id}"),
                now,
                latency,
            );
            ready_at = ready_at.max(ctx.world.snapshots[&snap].done_at);
            image.block_device_mappings.push(BlockDeviceMappingImage {
                device_name: Some(link.device_name.clone()),
                virtual_device_name: None,
                bsu: Some(BsuToCreate {
                    delete_on_vm_deletion: Some(true),
                    iops: volume.iops,
                    snapshot_id: Some(snap),
                    volume_size: Some(volume.size),
                    volume_type: Some(volume.volume_type.clone()),
                }),
            });
        }
        image.root_device_name = vm.root_device_name.clone();
        image.architecture = vm.architecture.clone().or(image.architecture);
        if vm.state == "running"
            && req.no_reboot != Some(true)
            && let Some(rec) = ctx.world.vms.get_mut(vm_id)
        {
            rec.console.push(format!(
                "[{}] rebooted for CreateImage {image_id}",
                iso(now)
            ));
        }
    } else if let Some(source) = source {
        if req.source_region_name.as_deref() != Some(ctx.world.region.as_str()) {
            return Err(SimError::invalid_value(format!(
                "SourceRegionName must be this region ({}): a copy stays in the region",
                ctx.world.region
            )));
        }
        for m in &source.block_device_mappings {
            let mut m = m.clone();
            if let Some(bsu) = m.bsu.as_mut() {
                let size = bsu.volume_size.unwrap_or(1);
                let snap = new_snapshot(
                    ctx.world,
                    &account,
                    size,
                    None,
                    format!(
                        "Copied for CreateImage({image_id}) from {}",
                        source.image_id
                    ),
                    now,
                    latency,
                );
                ready_at = ready_at.max(ctx.world.snapshots[&snap].done_at);
                if let Some(rec) = ctx.world.snapshots.get_mut(&snap) {
                    rec.copied_from = bsu.snapshot_id.clone();
                }
                bsu.snapshot_id = Some(snap);
            }
            image.block_device_mappings.push(m);
        }
        image.root_device_name = source.root_device_name.clone();
        image.architecture = source.architecture.clone();
        image.description = req.description.clone().or(source.description.clone());
    } else {
        let root = req
            .root_device_name
            .clone()
            .ok_or_else(|| SimError::missing_parameter("RootDeviceName"))?;
        let mappings = req
            .block_device_mappings
            .clone()
            .ok_or_else(|| SimError::missing_parameter("BlockDeviceMappings"))?;
        for mut m in mappings {
            let device = m
                .device_name
                .clone()
                .ok_or_else(|| SimError::missing_parameter("BlockDeviceMappings.DeviceName"))?;
            if let Some(bsu) = m.bsu.as_mut() {
                let snap_id = bsu.snapshot_id.clone().ok_or_else(|| {
                    SimError::missing_parameter("BlockDeviceMappings.Bsu.SnapshotId")
                })?;
                let snap = ctx
                    .world
                    .snapshots
                    .get(&snap_id)
                    .map(|r| r.snapshot.clone())
                    .filter(|s| super::snapshots::visible(s, &account))
                    .ok_or_else(|| SimError::not_found(Kind::Snapshot, &snap_id))?;
                let size = bsu.volume_size.unwrap_or(snap.volume_size);
                if size < snap.volume_size {
                    return Err(SimError::invalid_code(
                        "4078",
                        format!("{device}: VolumeSize {size} is smaller than snapshot {snap_id}"),
                    ));
                }
                bsu.volume_size = Some(size);
                bsu.delete_on_vm_deletion.get_or_insert(true);
                bsu.volume_type.get_or_insert_with(|| "standard".into());
                ready_at = ready_at.max(ctx.world.snapshots[&snap_id].done_at);
            }
            image.block_device_mappings.push(m);
        }
        if !image
            .block_device_mappings
            .iter()
            .any(|m| m.device_name.as_deref() == Some(root.as_str()))
        {
            return Err(SimError::invalid_value(format!(
                "RootDeviceName {root} is not one of the BlockDeviceMappings"
            )));
        }
        image.root_device_name = Some(root);
    }
    let rec = ImageRecord {
        image,
        ready_at,
        fails: ctx.fail_later,
    };
    let response = render(ctx.world, &rec);
    ctx.world.images.insert(image_id, rec);
    Ok(ImageResponse {
        image: response,
        ..Default::default()
    })
}

fn matches(world: &World, i: &Image, f: &FiltersImage) -> bool {
    filters::any(&f.image_ids, &i.image_id)
        && filters::any_wildcard(&f.image_names, &i.image_name)
        && filters::any(&f.account_ids, &i.account_id)
        && filters::any_opt(&f.account_aliases, i.account_alias.as_deref())
        && filters::any(&f.states, &i.state)
        && filters::any_opt(&f.architectures, i.architecture.as_deref())
        && filters::any_opt(&f.descriptions, i.description.as_deref())
        && filters::any_opt(&f.root_device_names, i.root_device_name.as_deref())
        && filters::any_opt(&f.root_device_types, i.root_device_type.as_deref())
        && filters::any_of_many(
            &f.block_device_mapping_snapshot_ids,
            i.block_device_mappings
                .iter()
                .filter_map(|m| m.bsu.as_ref()?.snapshot_id.as_deref()),
        )
        && f.block_device_mapping_delete_on_vm_deletion.is_none_or(|want| {
            i.block_device_mappings
                .iter()
                .filter_map(|m| m.bsu.as_ref()?.delete_on_vm_deletion)
                .any(|d| d == want)
        })
        && filters::any_of_many(
            &f.block_device_mapping_device_names,
            i.block_device_mappings
                .iter()
                .filter_map(|m| m.device_name.as_deref()),
        )
        && f.block_device_mapping_volume_sizes.as_ref().is_none_or(|sizes| {
            i.block_device_mappings
                .iter()
                .filter_map(|m| m.bsu.as_ref()?.volume_size)
                .any(|s| sizes.contains(&s))
        })
        && filters::any_of_many(
            &f.block_device_mapping_volume_types,
            i.block_device_mappings
                .iter()
                .filter_map(|m| m.bsu.as_ref()?.volume_type.as_deref()),
        )
        && filters::any_of_many(&f.boot_modes, i.boot_modes.iter().map(String::as_str))
        && filters::any_opt(&f.file_locations, i.file_location.as_deref())
        && filters::any(&f.hypervisors, &"xen".to_string())
        && filters::any_of_many(&f.product_codes, i.product_codes.iter().map(String::as_str))
        // The simulator's product codes have no names.
        && f.product_code_names.as_ref().is_none_or(|n| n.is_empty())
        && f.secure_boot.is_none_or(|s| i.secure_boot == Some(s))
        && f.tpm_mandatory.is_none_or(|t| i.tpm_mandatory == Some(t))
        && filters::any_of_many(
            &f.permissions_to_launch_account_ids,
            i.permissions_to_launch
                .account_ids
                .iter()
                .map(String::as_str),
        )
        && filters::flag(
            f.permissions_to_launch_global_permission,
            i.permissions_to_launch.global_permission,
        )
        && filters::any(&f.virtualization_types, &"hvm".to_string())
        && filters::tags(f, world.tags.get(&i.image_id))
}

pub fn read(ctx: &mut Ctx<'_>, req: ReadImagesRequest) -> SimResult<ReadImagesResponse> {
    let f = req.filters.unwrap_or_default();
    filters::well_formed(&f.image_ids, "ami")?;
    let images: Vec<Image> = ctx
        .world
        .images
        .values()
        .filter(|r| visible(&r.image, &ctx.account))
        .map(|r| render(ctx.world, r))
        .filter(|i| matches(ctx.world, i, &f))
        .collect();
    let (images, next_page_token) =
        filters::paginate(images, req.next_page_token.as_deref(), req.results_per_page)?;
    Ok(ReadImagesResponse {
        images,
        next_page_token,
        ..Default::default()
    })
}

/// Errors unless the caller owns the image (sharing lets others launch it,
/// not change it).
fn own(ctx: &Ctx<'_>, id: &str) -> SimResult<()> {
    match ctx.world.images.get(id) {
        Some(r) if r.image.account_id == ctx.account => Ok(()),
        Some(r) if visible(&r.image, &ctx.account) => Err(SimError::invalid_value(format!(
            "image {id} belongs to account {}: only its owner can change or delete it",
            r.image.account_id
        ))),
        _ => Err(SimError::not_found(Kind::Image, id)),
    }
}

pub fn update(ctx: &mut Ctx<'_>, req: UpdateImageRequest) -> SimResult<ImageResponse> {
    own(ctx, &req.image_id)?;
    if let Some(d) = &req.description {
        check_len("Description", d, 0, 255)?;
    }
    let rec = ctx
        .world
        .images
        .get_mut(&req.image_id)
        .expect("checked above");
    let mut image = rec.image.clone();
    if let Some(change) = &req.permissions_to_launch {
        change_permissions(&mut image.permissions_to_launch, change)?;
    }
    if let Some(d) = req.description {
        image.description = Some(d);
    }
    if let Some(codes) = req.product_codes {
        image.product_codes = codes;
    }
    rec.image = image;
    let response = render(ctx.world, &ctx.world.images[&req.image_id]);
    Ok(ImageResponse {
        image: response,
        ..Default::default()
    })
}

pub fn delete(ctx: &mut Ctx<'_>, req: DeleteImageRequest) -> SimResult<EmptyResponse> {
    own(ctx, &req.image_id)?;
    ctx.world.images.remove(&req.image_id);
    ctx.world.tags.remove(&req.image_id);
    Ok(EmptyResponse::default())
}
