//! Nets, subnets and subregions.

use super::security_groups::new_group;
use super::{Ctx, parse_cidr};
use crate::oapi::model::*;
use crate::sim::error::{Kind, SimError, SimResult};
use crate::sim::filters;
use crate::sim::world::{NetRecord, SubnetRecord};

const NET_QUOTA: usize = 5;

fn check_prefix(name: &str, len: u8) -> SimResult<()> {
    if (16..=28).contains(&len) {
        Ok(())
    } else {
        Err(SimError::invalid_code(
            "4015",
            format!("{name} must be a /16 to /28 block, not /{len}"),
        ))
    }
}

pub fn create_net(ctx: &mut Ctx<'_>, req: CreateNetRequest) -> SimResult<NetResponse> {
    let (_, len) = parse_cidr("IpRange", &req.ip_range)?;
    check_prefix("IpRange", len)?;
    let tenancy = req.tenancy.unwrap_or_else(|| "default".into());
    if !matches!(
        tenancy.as_str(),
        "default" | "dedicated" | "dedicated group"
    ) {
        return Err(SimError::invalid_value(
            "Tenancy must be default, dedicated or dedicated group",
        ));
    }
    let account = ctx.account.clone();
    if ctx
        .world
        .nets
        .values()
        .filter(|n| n.owner == account)
        .count()
        >= NET_QUOTA
    {
        return Err(SimError::quota(
            "10022",
            format!("the account may keep {NET_QUOTA} Nets"),
        ));
    }
    let id = ctx.world.new_id(Kind::Net);
    let net = Net {
        net_id: id.clone(),
        ip_range: req.ip_range,
        state: "available".into(),
        tenancy: Some(tenancy),
        dhcp_options_set_id: Some("dopt-00000000".into()),
        tags: Vec::new(),
    };
    ctx.world.nets.insert(
        id.clone(),
        NetRecord {
            net: net.clone(),
            owner: account.clone(),
        },
    );
    // Every Net comes with its default security group.
    new_group(ctx.world, &account, "default", "default group", Some(id));
    Ok(NetResponse {
        net,
        ..Default::default()
    })
}

pub fn delete_net(ctx: &mut Ctx<'_>, req: DeleteNetRequest) -> SimResult<EmptyResponse> {
    ctx.own(Kind::Net, &req.net_id)?;
    if let Some(s) = ctx
        .world
        .subnets
        .values()
        .find(|s| s.subnet.net_id == req.net_id)
    {
        return Err(SimError::dependency(format!(
            "Net {} still has subnet {}",
            req.net_id, s.subnet.subnet_id
        )));
    }
    let groups: Vec<String> = ctx
        .world
        .security_groups
        .values()
        .filter(|g| g.net_id.as_deref() == Some(req.net_id.as_str()))
        .map(|g| g.security_group_id.clone())
        .collect();
    if let Some(g) = groups
        .iter()
        .find(|g| ctx.world.security_groups[*g].security_group_name != "default")
    {
        return Err(SimError::dependency(format!(
            "Net {} still has security group {g}",
            req.net_id
        )));
    }
    for g in groups {
        ctx.world.security_groups.remove(&g);
        ctx.world.tags.remove(&g);
    }
    ctx.world.nets.remove(&req.net_id);
    ctx.world.tags.remove(&req.net_id);
    Ok(EmptyResponse::default())
}

pub fn read_nets(ctx: &mut Ctx<'_>, req: ReadNetsRequest) -> SimResult<ReadNetsResponse> {
    let f = req.filters.unwrap_or_default();
    let nets: Vec<Net> = ctx
        .world
        .nets
        .values()
        .filter(|r| r.owner == ctx.account)
        .map(|r| {
            let mut n = r.net.clone();
            n.tags = ctx.world.tags_of(&n.net_id);
            n
        })
        .filter(|n| {
            filters::any(&f.net_ids, &n.net_id)
                && filters::any(&f.states, &n.state)
                && filters::any(&f.ip_ranges, &n.ip_range)
                && filters::flag(f.is_default, false)
                && filters::tags(&f, ctx.world.tags.get(&n.net_id))
        })
        .collect();
    let (nets, next_page_token) =
        filters::paginate(nets, req.next_page_token.as_deref(), req.results_per_page)?;
    Ok(ReadNetsResponse {
        nets,
        next_page_token,
        ..Default::default()
    })
}

pub fn create_subnet(ctx: &mut Ctx<'_>, req: CreateSubnetRequest) -> SimResult<SubnetResponse> {
    ctx.own(Kind::Net, &req.net_id)?;
    let (base, len) = parse_cidr("IpRange", &req.ip_range)?;
    check_prefix("IpRange", len)?;
    let (net_base, net_len) = parse_cidr("IpRange", &ctx.world.nets[&req.net_id].net.ip_range)?;
    let inside =
        |b: u32, l: u8, outer: u32, ol: u8| l >= ol && (b & (u32::MAX << (32 - ol))) == outer;
    if !inside(base, len, net_base, net_len) {
        return Err(SimError::invalid_value(format!(
            "IpRange {} is not inside the Net's {}",
            req.ip_range, ctx.world.nets[&req.net_id].net.ip_range
        )));
    }
    for s in ctx
        .world
        .subnets
        .values()
        .filter(|s| s.subnet.net_id == req.net_id)
    {
        let (b, l) = parse_cidr("IpRange", &s.subnet.ip_range)?;
        if inside(base, len, b, l) || inside(b, l, base, len) {
            return Err(SimError::conflict(
                "9058",
                format!(
                    "IpRange {} overlaps subnet {}",
                    req.ip_range, s.subnet.subnet_id
                ),
            ));
        }
    }
    let subregions = ctx.world.subregions();
    let subregion = req.subregion_name.unwrap_or_else(|| subregions[0].clone());
    if !subregions.contains(&subregion) {
        return Err(SimError::invalid_code(
            "4081",
            format!("SubregionName `{subregion}` does not exist"),
        ));
    }
    let id = ctx.world.new_id(Kind::Subnet);
    let subnet = Subnet {
        subnet_id: id.clone(),
        net_id: req.net_id,
        subregion_name: subregion,
        ip_range: req.ip_range,
        state: "available".into(),
        available_ips_count: (1i64 << (32 - u32::from(len))) - 5,
        map_public_ip_on_launch: false,
        tags: Vec::new(),
    };
    ctx.world.subnets.insert(
        id,
        SubnetRecord {
            subnet: subnet.clone(),
            owner: ctx.account.clone(),
        },
    );
    Ok(SubnetResponse {
        subnet,
        ..Default::default()
    })
}

pub fn delete_subnet(ctx: &mut Ctx<'_>, req: DeleteSubnetRequest) -> SimResult<EmptyResponse> {
    ctx.own(Kind::Subnet, &req.subnet_id)?;
    if let Some(vm) = ctx.world.vms.values().find(|r| {
        r.vm.subnet_id.as_deref() == Some(req.subnet_id.as_str()) && r.vm.state != "terminated"
    }) {
        return Err(SimError::dependency(format!(
            "subnet {} still has VM {}",
            req.subnet_id, vm.vm.vm_id
        )));
    }
    ctx.world.subnets.remove(&req.subnet_id);
    ctx.world.tags.remove(&req.subnet_id);
    Ok(EmptyResponse::default())
}

pub fn read_subnets(ctx: &mut Ctx<'_>, req: ReadSubnetsRequest) -> SimResult<ReadSubnetsResponse> {
    let f = req.filters.unwrap_or_default();
    let subnets: Vec<Subnet> = ctx
        .world
        .subnets
        .values()
        .filter(|r| r.owner == ctx.account)
        .map(|r| {
            let mut s = r.subnet.clone();
            s.tags = ctx.world.tags_of(&s.subnet_id);
            s
        })
        .filter(|s| {
            filters::any(&f.subnet_ids, &s.subnet_id)
                && filters::any(&f.net_ids, &s.net_id)
                && filters::any(&f.subregion_names, &s.subregion_name)
                && filters::any(&f.states, &s.state)
                && filters::any(&f.ip_ranges, &s.ip_range)
                && filters::any(&f.available_ips_counts, &s.available_ips_count)
                && filters::tags(&f, ctx.world.tags.get(&s.subnet_id))
        })
        .collect();
    let (subnets, next_page_token) = filters::paginate(
        subnets,
        req.next_page_token.as_deref(),
        req.results_per_page,
    )?;
    Ok(ReadSubnetsResponse {
        subnets,
        next_page_token,
        ..Default::default()
    })
}

pub fn read_subregions(
    ctx: &mut Ctx<'_>,
    req: ReadSubregionsRequest,
) -> SimResult<ReadSubregionsResponse> {
    let f = req.filters.unwrap_or_default();
    let region = ctx.world.region.clone();
    let subregions: Vec<Subregion> = ctx
        .world
        .subregions()
        .into_iter()
        .map(|name| Subregion {
            location_code: format!(
                "PAR{}",
                name.chars().last().unwrap_or('a').to_ascii_uppercase()
            ),
            subregion_name: name,
            region_name: region.clone(),
            state: "available".into(),
        })
        .filter(|s| {
            filters::any(&f.subregion_names, &s.subregion_name)
                && filters::any(&f.region_names, &s.region_name)
                && filters::any(&f.states, &s.state)
        })
        .collect();
    let (subregions, next_page_token) = filters::paginate(
        subregions,
        req.next_page_token.as_deref(),
        req.results_per_page,
    )?;
    Ok(ReadSubregionsResponse {
        subregions,
        next_page_token,
        ..Default::default()
    })
}
