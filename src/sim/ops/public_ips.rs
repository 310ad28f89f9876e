//! Public IPs: allocated to the account, linked to one VM at a time.

use super::Ctx;
use crate::oapi::model::*;
use crate::sim::error::{Kind, SimError, SimResult};
use crate::sim::filters;
use crate::sim::world::{PublicIpRecord, World, random_id};

const PUBLIC_IP_QUOTA: usize = 10;

fn render(world: &World, rec: &PublicIpRecord) -> PublicIp {
    let mut ip = rec.ip.clone();
    ip.tags = world.tags_of(&ip.public_ip_id);
    ip
}

pub fn create(ctx: &mut Ctx<'_>, _req: CreatePublicIpRequest) -> SimResult<CreatePublicIpResponse> {
    let owned = ctx
        .world
        .public_ips
        .values()
        .filter(|r| r.owner == ctx.account)
        .count();
    if owned >= PUBLIC_IP_QUOTA {
        return Err(SimError::quota(
            "10011",
            format!("the account may keep {PUBLIC_IP_QUOTA} public IPs"),
        ));
    }
    let id = ctx.world.new_id(Kind::PublicIp);
    let address = ctx.world.allocate_ip(true);
    let rec = PublicIpRecord {
        ip: PublicIp {
            public_ip_id: id.clone(),
            public_ip: address,
            ..Default::default()
        },
        owner: ctx.account.clone(),
    };
    let public_ip = render(ctx.world, &rec);
    ctx.world.public_ips.insert(id, rec);
    Ok(CreatePublicIpResponse {
        public_ip,
        ..Default::default()
    })
}

/// Finds an own public IP by id or by address.
fn find(ctx: &Ctx<'_>, id: &Option<String>, address: &Option<String>) -> SimResult<String> {
    match (id, address) {
        (Some(id), _) => {
            ctx.own(Kind::PublicIp, id)?;
            Ok(id.clone())
        }
        (None, Some(ip)) => ctx
            .world
            .public_ips
            .iter()
            .find(|(_, r)| r.owner == ctx.account && r.ip.public_ip == *ip)
            .map(|(id, _)| id.clone())
            .ok_or_else(|| SimError::not_found(Kind::PublicIp, ip)),
        (None, None) => Err(SimError::missing_parameter("PublicIp or PublicIpId")),
    }
}

pub fn link(ctx: &mut Ctx<'_>, req: LinkPublicIpRequest) -> SimResult<LinkPublicIpResponse> {
    let id = find(ctx, &req.public_ip_id, &req.public_ip)?;
    if req.nic_id.is_some() {
        return Err(SimError::invalid_value(
            "NicId: the simulator links public IPs to VMs (VmId), not to NICs",
        ));
    }
    let vm_id = req
        .vm_id
        .clone()
        .ok_or_else(|| SimError::missing_parameter("VmId"))?;
    ctx.own(Kind::Vm, &vm_id)?;
    let vm = &ctx.world.vms[&vm_id].vm;
    if matches!(vm.state.as_str(), "shutting-down" | "terminated") {
        return Err(SimError::invalid_state(
            "6006",
            format!("VM {vm_id} is {}", vm.state),
        ));
    }
    let private_ip = vm.private_ip.clone();
    let in_net = vm.net_id.is_some();
    let current = ctx.world.public_ips[&id].ip.vm_id.clone();
    if let Some(other) = &current
        && *other != vm_id
        && !req.allow_relink.unwrap_or(!in_net)
    {
        return Err(SimError::conflict(
            "9000",
            format!("public IP {id} is linked to {other}; set AllowRelink to move it"),
        ));
    }
    // A VM has one public IP: linking a new one unlinks the previous.
    let address = ctx.world.public_ips[&id].ip.public_ip.clone();
    ctx.world.unlink_public_ips(&vm_id, Some(&address));
    if let Some(other) = current {
        ctx.world.unlink_public_ips(&other, None);
    }
    let link_id = random_id("eipassoc", 8);
    let account = ctx.account.clone();
    let rec = ctx.world.public_ips.get_mut(&id).expect("found above");
    rec.ip.vm_id = Some(vm_id.clone());
    rec.ip.link_public_ip_id = Some(link_id.clone());
    rec.ip.private_ip = private_ip;
    rec.ip.nic_account_id = Some(account);
    ctx.world.refresh_vm_public_ip(&vm_id);
    Ok(LinkPublicIpResponse {
        link_public_ip_id: Some(link_id),
        ..Default::default()
    })
}

pub fn unlink(ctx: &mut Ctx<'_>, req: UnlinkPublicIpRequest) -> SimResult<EmptyResponse> {
    let id = match (&req.link_public_ip_id, &req.public_ip) {
        (Some(link), _) => ctx
            .world
            .public_ips
            .iter()
            .find(|(_, r)| {
                r.owner == ctx.account && r.ip.link_public_ip_id.as_deref() == Some(link.as_str())
            })
            .map(|(id, _)| id.clone())
            .ok_or_else(|| SimError::not_found(Kind::PublicIp, link))?,
        (None, address) => find(ctx, &None, address)?,
    };
    let rec = ctx.world.public_ips.get_mut(&id).expect("found above");
    let Some(vm_id) = rec.ip.vm_id.clone() else {
        return Err(SimError::invalid_state(
            "6003",
            format!("public IP {} is not linked", rec.ip.public_ip),
        ));
    };
    rec.clear_link();
    ctx.world.refresh_vm_public_ip(&vm_id);
    Ok(EmptyResponse::default())
}

pub fn delete(ctx: &mut Ctx<'_>, req: DeletePublicIpRequest) -> SimResult<EmptyResponse> {
    let id = find(ctx, &req.public_ip_id, &req.public_ip)?;
    let vm = ctx.world.public_ips[&id].ip.vm_id.clone();
    ctx.world.public_ips.remove(&id);
    ctx.world.tags.remove(&id);
    if let Some(vm) = vm {
        ctx.world.refresh_vm_public_ip(&vm);
    }
    Ok(EmptyResponse::default())
}

pub fn read(ctx: &mut Ctx<'_>, req: ReadPublicIpsRequest) -> SimResult<ReadPublicIpsResponse> {
    let f = req.filters.unwrap_or_default();
    let ips: Vec<PublicIp> = ctx
        .world
        .public_ips
        .values()
        .filter(|r| r.owner == ctx.account)
        .map(|r| render(ctx.world, r))
        .filter(|ip| {
            filters::any(&f.public_ip_ids, &ip.public_ip_id)
                && filters::any(&f.public_ips, &ip.public_ip)
                && filters::any_opt(&f.vm_ids, ip.vm_id.as_deref())
                && filters::any_opt(&f.link_public_ip_ids, ip.link_public_ip_id.as_deref())
                && filters::any_opt(&f.nic_ids, ip.nic_id.as_deref())
                && filters::any_opt(&f.private_ips, ip.private_ip.as_deref())
                && filters::tags(&f, ctx.world.tags.get(&ip.public_ip_id))
        })
        .collect();
    let (public_ips, next_page_token) =
        filters::paginate(ips, req.next_page_token.as_deref(), req.results_per_page)?;
    Ok(ReadPublicIpsResponse {
        public_ips,
        next_page_token,
        ..Default::default()
    })
}
