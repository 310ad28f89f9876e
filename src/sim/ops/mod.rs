//! The operations of the simulated region, one module per resource kind.
//! Every handler takes the decoded request and the caller's context and
//! answers the typed response, or the error the real API would give.

mod accounts;
mod images;
mod keypairs;
mod nets;
mod public_ips;
mod security_groups;
mod snapshots;
mod tags;
mod vms;
mod volumes;

use serde_json::Value;

pub use security_groups::new_group;

use crate::oapi::Operation;
use crate::oapi::model::*;

use super::error::{Kind, SimError, SimResult};
use super::world::{Latency, Millis, World};

/// What a handler works with: the world, who calls, and when.
pub struct Ctx<'a> {
    pub world: &'a mut World,
    pub account: String,
    pub now: Millis,
    pub latency: Latency,
    /// Set by the `fail` fault: what this call starts ends in failure.
    pub fail_later: bool,
}

impl Ctx<'_> {
    /// Errors unless `id` exists and belongs to the caller.
    pub fn own(&self, kind: Kind, id: &str) -> SimResult<()> {
        match self.world.owner_of(id) {
            Some(owner) if owner == self.account && Kind::of_id(id) == Some(kind) => Ok(()),
            _ => Err(SimError::not_found(kind, id)),
        }
    }
}

/// Operations callable without a signature (`security: []` in the spec).
pub fn is_public(operation: &str) -> bool {
    operation == "ReadRegions"
}

/// Reads change nothing worth saving (time-driven changes are recomputed
/// from timestamps after a restart).
pub fn is_read(operation: &str) -> bool {
    operation.starts_with("Read")
}

fn run<O: Operation>(
    ctx: &mut Ctx<'_>,
    body: &[u8],
    handler: fn(&mut Ctx<'_>, O) -> SimResult<O::Response>,
) -> SimResult<Value> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    let request: O = serde_json::from_slice(body).map_err(|e| {
        let msg = e.to_string();
        if msg.starts_with("missing field") {
            let field = msg.split('`').nth(1).unwrap_or("a parameter");
            SimError::missing_parameter(field)
        } else {
            SimError::invalid_parameter(format!("{}: {msg}", O::NAME))
        }
    })?;
    // A dry run checks the request and the caller's right to make it, and
    // changes nothing.
    let dry_run = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("DryRun").and_then(Value::as_bool))
        .unwrap_or(false);
    if dry_run {
        return Ok(serde_json::json!({}));
    }
    let response = handler(ctx, request)?;
    serde_json::to_value(response).map_err(|e| SimError::internal(e.to_string()))
}

/// Runs `operation` on the JSON `body`, answering the JSON response.
pub fn dispatch(ctx: &mut Ctx<'_>, operation: &str, body: &[u8]) -> SimResult<Value> {
    match operation {
        "CreateVms" => run::<CreateVmsRequest>(ctx, body, vms::create),
        "ReadVms" => run::<ReadVmsRequest>(ctx, body, vms::read),
        "ReadVmsState" => run::<ReadVmsStateRequest>(ctx, body, vms::read_state),
        "StartVms" => run::<StartVmsRequest>(ctx, body, vms::start),
        "StopVms" => run::<StopVmsRequest>(ctx, body, vms::stop),
        "DeleteVms" => run::<DeleteVmsRequest>(ctx, body, vms::delete),
        "ReadAdminPassword" => run::<ReadAdminPasswordRequest>(ctx, body, vms::admin_password),
        "ReadConsoleOutput" => run::<ReadConsoleOutputRequest>(ctx, body, vms::console_output),
        "CreateImage" => run::<CreateImageRequest>(ctx, body, images::create),
        "ReadImages" => run::<ReadImagesRequest>(ctx, body, images::read),
        "UpdateImage" => run::<UpdateImageRequest>(ctx, body, images::update),
        "DeleteImage" => run::<DeleteImageRequest>(ctx, body, images::delete),
        "CreateSnapshot" => run::<CreateSnapshotRequest>(ctx, body, snapshots::create),
        "ReadSnapshots" => run::<ReadSnapshotsRequest>(ctx, body, snapshots::read),
        "UpdateSnapshot" => run::<UpdateSnapshotRequest>(ctx, body, snapshots::update),
        "DeleteSnapshot" => run::<DeleteSnapshotRequest>(ctx, body, snapshots::delete),
        "CreateVolume" => run::<CreateVolumeRequest>(ctx, body, volumes::create),
        "ReadVolumes" => run::<ReadVolumesRequest>(ctx, body, volumes::read),
        "LinkVolume" => run::<LinkVolumeRequest>(ctx, body, volumes::link),
        "UnlinkVolume" => run::<UnlinkVolumeRequest>(ctx, body, volumes::unlink),
        "DeleteVolume" => run::<DeleteVolumeRequest>(ctx, body, volumes::delete),
        "CreateKeypair" => run::<CreateKeypairRequest>(ctx, body, keypairs::create),
        "ReadKeypairs" => run::<ReadKeypairsRequest>(ctx, body, keypairs::read),
        "DeleteKeypair" => run::<DeleteKeypairRequest>(ctx, body, keypairs::delete),
        "CreateSecurityGroup" => {
            run::<CreateSecurityGroupRequest>(ctx, body, security_groups::create)
        }
        "ReadSecurityGroups" => run::<ReadSecurityGroupsRequest>(ctx, body, security_groups::read),
        "DeleteSecurityGroup" => {
            run::<DeleteSecurityGroupRequest>(ctx, body, security_groups::delete)
        }
        "CreateSecurityGroupRule" => {
            run::<CreateSecurityGroupRuleRequest>(ctx, body, security_groups::create_rule)
        }
        "DeleteSecurityGroupRule" => {
            run::<DeleteSecurityGroupRuleRequest>(ctx, body, security_groups::delete_rule)
        }
        "CreateTags" => run::<CreateTagsRequest>(ctx, body, tags::create),
        "DeleteTags" => run::<DeleteTagsRequest>(ctx, body, tags::delete),
        "ReadTags" => run::<ReadTagsRequest>(ctx, body, tags::read),
        "CreatePublicIp" => run::<CreatePublicIpRequest>(ctx, body, public_ips::create),
        "ReadPublicIps" => run::<ReadPublicIpsRequest>(ctx, body, public_ips::read),
        "LinkPublicIp" => run::<LinkPublicIpRequest>(ctx, body, public_ips::link),
        "UnlinkPublicIp" => run::<UnlinkPublicIpRequest>(ctx, body, public_ips::unlink),
        "DeletePublicIp" => run::<DeletePublicIpRequest>(ctx, body, public_ips::delete),
        "CreateNet" => run::<CreateNetRequest>(ctx, body, nets::create_net),
        "ReadNets" => run::<ReadNetsRequest>(ctx, body, nets::read_nets),
        "DeleteNet" => run::<DeleteNetRequest>(ctx, body, nets::delete_net),
        "CreateSubnet" => run::<CreateSubnetRequest>(ctx, body, nets::create_subnet),
        "ReadSubnets" => run::<ReadSubnetsRequest>(ctx, body, nets::read_subnets),
        "DeleteSubnet" => run::<DeleteSubnetRequest>(ctx, body, nets::delete_subnet),
        "ReadSubregions" => run::<ReadSubregionsRequest>(ctx, body, nets::read_subregions),
        "ReadRegions" => run::<ReadRegionsRequest>(ctx, body, accounts::read_regions),
        "ReadAccounts" => run::<ReadAccountsRequest>(ctx, body, accounts::read_accounts),
        other => Err(SimError::unknown_operation(other)),
    }
}

/// Checks a `length` is within `min..=max` characters.
pub fn check_len(name: &str, value: &str, min: usize, max: usize) -> SimResult<()> {
    let n = value.chars().count();
    if n < min || n > max {
        return Err(SimError::invalid_value(format!(
            "{name} must have {min} to {max} characters, not {n}"
        )));
    }
    Ok(())
}

/// Applies a permission change (one of additions or removals per call).
pub fn change_permissions(
    current: &mut PermissionsOnResource,
    change: &PermissionsOnResourceCreation,
) -> SimResult<()> {
    let (change, add) = match (&change.additions, &change.removals) {
        (Some(a), None) => (a, true),
        (None, Some(r)) => (r, false),
        _ => {
            return Err(SimError::invalid_value(
                "give exactly one of Additions or Removals",
            ));
        }
    };
    for id in change.account_ids.iter().flatten() {
        if id.len() != 12 || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SimError::invalid_value(format!(
                "AccountIds: `{id}` is not an account id (12 digits)"
            )));
        }
        if add {
            if !current.account_ids.contains(id) {
                current.account_ids.push(id.clone());
            }
        } else {
            current.account_ids.retain(|x| x != id);
        }
    }
    if let Some(global) = change.global_permission
        && global
    {
        current.global_permission = add;
    }
    Ok(())
}

/// Parses an IPv4 CIDR into (network, prefix length).
pub fn parse_cidr(name: &str, cidr: &str) -> SimResult<(u32, u8)> {
    let bad = || SimError::invalid_value(format!("{name}: `{cidr}` is not an IPv4 CIDR block"));
    let (ip, len) = cidr.split_once('/').ok_or_else(bad)?;
    let ip: std::net::Ipv4Addr = ip.parse().map_err(|_| bad())?;
    let len: u8 = len.parse().map_err(|_| bad())?;
    if len > 32 {
        return Err(bad());
    }
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    Ok((u32::from(ip) & mask, len))
}
