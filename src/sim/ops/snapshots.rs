//! Snapshots: of a volume, or copies; shared through create-volume
//! permissions; refused deletion while an image uses them.

use super::images::new_snapshot;
use super::{Ctx, change_permissions, check_len};
use crate::oapi::model::*;
use crate::sim::error::{Kind, SimError, SimResult};
use crate::sim::filters;
use crate::sim::world::{SnapshotRecord, World};

const SNAPSHOT_QUOTA: usize = 500;

/// Whether `account` may see the snapshot and create volumes from it.
pub fn visible(s: &Snapshot, account: &str) -> bool {
    s.account_id == account
        || s.permissions_to_create_volume.global_permission
        || s.permissions_to_create_volume
            .account_ids
            .iter()
            .any(|a| a == account)
}

fn render(world: &World, rec: &SnapshotRecord) -> Snapshot {
    let mut s = rec.snapshot.clone();
    s.tags = world.tags_of(&s.snapshot_id);
    s
}

pub fn create(ctx: &mut Ctx<'_>, req: CreateSnapshotRequest) -> SimResult<SnapshotResponse> {
    let account = ctx.account.clone();
    if let Some(token) = &req.client_token
        && let Some(rec) = ctx.world.snapshots.values().find(|r| {
            r.snapshot.account_id == account && r.snapshot.client_token.as_deref() == Some(token)
        })
    {
        return Ok(SnapshotResponse {
            snapshot: render(ctx.world, rec),
            ..Default::default()
        });
    }
    if let Some(d) = &req.description {
        check_len("Description", d, 0, 255)?;
    }
    let owned = ctx
        .world
        .snapshots
        .values()
        .filter(|r| r.snapshot.account_id == account)
        .count();
    if owned >= SNAPSHOT_QUOTA {
        return Err(SimError::quota(
            "10026",
            format!("the account may keep {SNAPSHOT_QUOTA} snapshots"),
        ));
    }
    let (size, volume_id, default_description) = match (
        &req.volume_id,
        &req.source_snapshot_id,
        &req.file_location,
    ) {
        (Some(vol), None, None) => {
            ctx.own(Kind::Volume, vol)?;
            let v = &ctx.world.volumes[vol].volume;
            if !matches!(v.state.as_str(), "available" | "in-use") {
                return Err(SimError::invalid_state(
                    "6007",
                    format!("volume {vol} is {}", v.state),
                ));
            }
            (v.size, Some(vol.clone()), format!("Snapshot of {vol}"))
        }
        (None, Some(src), None) => {
            if req.source_region_name.as_deref() != Some(ctx.world.region.as_str()) {
                return Err(SimError::invalid_value(format!(
                    "SourceRegionName must be this region ({})",
                    ctx.world.region
                )));
            }
            let s = ctx
                .world
                .snapshots
                .get(src)
                .map(|r| &r.snapshot)
                .filter(|s| visible(s, &account))
                .ok_or_else(|| SimError::not_found(Kind::Snapshot, src))?;
            if s.state != "completed" {
                return Err(SimError::invalid_state(
                    "6003",
                    format!("snapshot {src} is {}", s.state),
                ));
            }
            (s.volume_size, None, format!("Copy of {src}"))
        }
        (None, None, Some(_)) => {
            return Err(SimError::invalid_value(
                "FileLocation imports read from object storage (OOS), which the simulator does not have",
            ));
        }
        _ => {
            return Err(SimError::invalid_value(
                "give exactly one of VolumeId, SourceSnapshotId, or FileLocation",
            ));
        }
    };
    let id = new_snapshot(
        ctx.world,
        &account,
        size,
        volume_id,
        req.description.clone().unwrap_or(default_description),
        ctx.now,
        ctx.latency,
    );
    let rec = ctx.world.snapshots.get_mut(&id).expect("just created");
    rec.snapshot.client_token = req.client_token;
    rec.copied_from = req.source_snapshot_id;
    Ok(SnapshotResponse {
        snapshot: render(ctx.world, &ctx.world.snapshots[&id]),
        ..Default::default()
    })
}

fn matches(world: &World, s: &Snapshot, f: &FiltersSnapshot) -> bool {
    filters::any(&f.snapshot_ids, &s.snapshot_id)
        && filters::any_opt(&f.volume_ids, s.volume_id.as_deref())
        && filters::any(&f.account_ids, &s.account_id)
        && filters::any_opt(&f.account_aliases, s.account_alias.as_deref())
        && filters::any(&f.states, &s.state)
        && filters::any(&f.progresses, &s.progress)
        && filters::any(&f.volume_sizes, &s.volume_size)
        && filters::any_opt(&f.descriptions, s.description.as_deref())
        && filters::any_opt(&f.client_tokens, s.client_token.as_deref())
        && filters::any_of_many(
            &f.permissions_to_create_volume_account_ids,
            s.permissions_to_create_volume
                .account_ids
                .iter()
                .map(String::as_str),
        )
        && filters::flag(
            f.permissions_to_create_volume_global_permission,
            s.permissions_to_create_volume.global_permission,
        )
        && filters::tags(f, world.tags.get(&s.snapshot_id))
}

pub fn read(ctx: &mut Ctx<'_>, req: ReadSnapshotsRequest) -> SimResult<ReadSnapshotsResponse> {
    let f = req.filters.unwrap_or_default();
    filters::well_formed(&f.snapshot_ids, "snap")?;
    let snapshots: Vec<Snapshot> = ctx
        .world
        .snapshots
        .values()
        .filter(|r| visible(&r.snapshot, &ctx.account))
        .map(|r| render(ctx.world, r))
        .filter(|s| matches(ctx.world, s, &f))
        .collect();
    let (snapshots, next_page_token) = filters::paginate(
        snapshots,
        req.next_page_token.as_deref(),
        req.results_per_page,
    )?;
    Ok(ReadSnapshotsResponse {
        snapshots,
        next_page_token,
        ..Default::default()
    })
}

pub fn update(ctx: &mut Ctx<'_>, req: UpdateSnapshotRequest) -> SimResult<SnapshotResponse> {
    ctx.own(Kind::Snapshot, &req.snapshot_id)?;
    let rec = ctx
        .world
        .snapshots
        .get_mut(&req.snapshot_id)
        .expect("checked above");
    let mut perms = rec.snapshot.permissions_to_create_volume.clone();
    change_permissions(&mut perms, &req.permissions_to_create_volume)?;
    rec.snapshot.permissions_to_create_volume = perms;
    Ok(SnapshotResponse {
        snapshot: render(ctx.world, &ctx.world.snapshots[&req.snapshot_id]),
        ..Default::default()
    })
}

pub fn delete(ctx: &mut Ctx<'_>, req: DeleteSnapshotRequest) -> SimResult<EmptyResponse> {
    ctx.own(Kind::Snapshot, &req.snapshot_id)?;
    if let Some(image) = ctx
        .world
        .images
        .values()
        .find(|r| r.image.snapshot_ids().contains(&req.snapshot_id))
    {
        return Err(SimError::dependency(format!(
            "snapshot {} is used by image {}: delete the image first",
            req.snapshot_id, image.image.image_id
        )));
    }
    ctx.world.snapshots.remove(&req.snapshot_id);
    ctx.world.tags.remove(&req.snapshot_id);
    Ok(EmptyResponse::default())
}
