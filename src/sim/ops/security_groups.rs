//! Security groups and their rules; a group cannot go while a VM or another
//! group's rule uses it.

use super::{Ctx, check_len, parse_cidr};
use crate::oapi::model::*;
use crate::sim::error::{Kind, SimError, SimResult};
use crate::sim::filters;
use crate::sim::world::{World, random_id};

const GROUP_QUOTA: usize = 100;

fn render(world: &World, g: &SecurityGroup) -> SecurityGroup {
    let mut g = g.clone();
    g.tags = world.tags_of(&g.security_group_id);
    g
}

/// A new group; in a Net it starts with the rule that lets everything out.
pub fn new_group(
    world: &mut World,
    account: &str,
    name: &str,
    description: &str,
    net_id: Option<String>,
) -> String {
    let id = world.new_id(Kind::SecurityGroup);
    let outbound_rules = if net_id.is_some() {
        vec![SecurityGroupRule {
            ip_protocol: Some("-1".into()),
            from_port_range: Some(-1),
            to_port_range: Some(-1),
            ip_ranges: Some(vec!["0.0.0.0/0".into()]),
            security_group_rule_id: Some(random_id("sgr", 8)),
            ..Default::default()
        }]
    } else {
        Vec::new()
    };
    world.security_groups.insert(
        id.clone(),
        SecurityGroup {
            security_group_id: id.clone(),
            security_group_name: name.into(),
            description: description.into(),
            account_id: account.into(),
            net_id,
            inbound_rules: Vec::new(),
            outbound_rules,
            tags: Vec::new(),
        },
    );
    id
}

pub fn create(
    ctx: &mut Ctx<'_>,
    req: CreateSecurityGroupRequest,
) -> SimResult<SecurityGroupResponse> {
    check_len("SecurityGroupName", &req.security_group_name, 1, 255)?;
    if req.security_group_name.starts_with("sg-") {
        return Err(SimError::invalid_value(
            "SecurityGroupName must not start with sg-",
        ));
    }
    check_len("Description", &req.description, 1, 255)?;
    if let Some(net) = &req.net_id {
        ctx.own(Kind::Net, net)?;
    }
    let account = ctx.account.clone();
    let groups = ctx
        .world
        .security_groups
        .values()
        .filter(|g| g.account_id == account);
    if groups
        .clone()
        .any(|g| g.security_group_name == req.security_group_name && g.net_id == req.net_id)
    {
        return Err(SimError::conflict(
            "9008",
            format!(
                "a security group named `{}` already exists here",
                req.security_group_name
            ),
        ));
    }
    if groups.count() >= GROUP_QUOTA {
        return Err(SimError::quota(
            "10038",
            format!("the account may keep {GROUP_QUOTA} security groups"),
        ));
    }
    let id = new_group(
        ctx.world,
        &account,
        &req.security_group_name,
        &req.description,
        req.net_id,
    );
    Ok(SecurityGroupResponse {
        security_group: render(ctx.world, &ctx.world.security_groups[&id]),
        ..Default::default()
    })
}

/// The rules a Create/DeleteSecurityGroupRule request names, in the form
/// the group keeps them.
#[allow(clippy::too_many_arguments)]
fn requested_rules(
    ctx: &Ctx<'_>,
    protocol: &Option<String>,
    from: Option<i64>,
    to: Option<i64>,
    ip_range: &Option<String>,
    link_account: &Option<String>,
    link_name: &Option<String>,
    rules: &Option<Vec<SecurityGroupRule>>,
) -> SimResult<Vec<SecurityGroupRule>> {
    let inline = protocol.is_some() || ip_range.is_some() || from.is_some() || to.is_some();
    let link = link_name.is_some() || link_account.is_some();
    let rules = match (inline, link, rules) {
        (false, false, Some(rules)) if !rules.is_empty() => rules.clone(),
        (true, false, None) => vec![SecurityGroupRule {
            ip_protocol: protocol.clone(),
            from_port_range: from,
            to_port_range: to,
            ip_ranges: Some(vec![
                ip_range
                    .clone()
                    .ok_or_else(|| SimError::missing_parameter("IpRange"))?,
            ]),
            ..Default::default()
        }],
        (_, true, None) => {
            let name = link_name
                .clone()
                .ok_or_else(|| SimError::missing_parameter("SecurityGroupNameToLink"))?;
            let account = link_account.clone().unwrap_or_else(|| ctx.account.clone());
            let group = ctx
                .world
                .security_groups
                .values()
                .find(|g| g.account_id == account && g.security_group_name == name)
                .ok_or_else(|| SimError::not_found(Kind::SecurityGroup, &name))?;
            vec![SecurityGroupRule {
                ip_protocol: Some(protocol.clone().unwrap_or_else(|| "-1".into())),
                from_port_range: from.or(Some(-1)),
                to_port_range: to.or(Some(-1)),
                security_groups_members: Some(vec![SecurityGroupsMember {
                    account_id: Some(account),
                    security_group_id: Some(group.security_group_id.clone()),
                    security_group_name: Some(name),
                }]),
                ..Default::default()
            }]
        }
        _ => {
            return Err(SimError::invalid_value(
                "give one inline rule (IpProtocol, ports, IpRange), a group to link, or Rules",
            ));
        }
    };
    rules.into_iter().map(normalise).collect()
}

/// Checks a rule and fills what the platform fills.
fn normalise(mut rule: SecurityGroupRule) -> SimResult<SecurityGroupRule> {
    let protocol = rule
        .ip_protocol
        .clone()
        .ok_or_else(|| SimError::missing_parameter("IpProtocol"))?;
    let (min, max) = match protocol.as_str() {
        "tcp" | "udp" => (0, 65535),
        "icmp" => (-1, 255),
        "-1" => (-1, 65535),
        p if p.parse::<u8>().is_ok() => (-1, 65535),
        p => {
            return Err(SimError::invalid_value(format!(
                "IpProtocol must be tcp, udp, icmp, -1 or a protocol number, not `{p}`"
            )));
        }
    };
    if matches!(protocol.as_str(), "tcp" | "udp")
        && (rule.from_port_range.is_none() || rule.to_port_range.is_none())
    {
        return Err(SimError::missing_parameter(
            "FromPortRange and ToPortRange (for tcp and udp)",
        ));
    }
    let from = rule.from_port_range.unwrap_or(-1);
    let to = rule.to_port_range.unwrap_or(-1);
    if from < min || to > max || from > to {
        return Err(SimError::invalid_value(format!(
            "the port range {from}-{to} is not valid for protocol {protocol}"
        )));
    }
    rule.from_port_range = Some(from);
    rule.to_port_range = Some(to);
    for range in rule.ip_ranges.iter().flatten() {
        parse_cidr("IpRange", range)?;
    }
    if rule.ip_ranges.as_ref().is_none_or(Vec::is_empty)
        && rule
            .security_groups_members
            .as_ref()
            .is_none_or(Vec::is_empty)
    {
        return Err(SimError::missing_parameter(
            "IpRanges or SecurityGroupsMembers",
        ));
    }
    Ok(rule)
}

fn same_ports(a: &SecurityGroupRule, b: &SecurityGroupRule) -> bool {
    a.ip_protocol == b.ip_protocol
        && a.from_port_range == b.from_port_range
        && a.to_port_range == b.to_port_range
}

fn member_key(m: &SecurityGroupsMember) -> Option<&str> {
    m.security_group_id.as_deref()
}

fn flow_rules<'a>(
    g: &'a mut SecurityGroup,
    flow: &str,
) -> SimResult<&'a mut Vec<SecurityGroupRule>> {
    match flow {
        "Inbound" => Ok(&mut g.inbound_rules),
        "Outbound" if g.net_id.is_some() => Ok(&mut g.outbound_rules),
        "Outbound" => Err(SimError::invalid_value(
            "Outbound rules exist only for security groups in a Net",
        )),
        f => Err(SimError::invalid_value(format!(
            "Flow must be Inbound or Outbound, not `{f}`"
        ))),
    }
}

pub fn create_rule(
    ctx: &mut Ctx<'_>,
    req: CreateSecurityGroupRuleRequest,
) -> SimResult<SecurityGroupResponse> {
    ctx.own(Kind::SecurityGroup, &req.security_group_id)?;
    let wanted = requested_rules(
        ctx,
        &req.ip_protocol,
        req.from_port_range,
        req.to_port_range,
        &req.ip_range,
        &req.security_group_account_id_to_link,
        &req.security_group_name_to_link,
        &req.rules,
    )?;
    let mut group = ctx.world.security_groups[&req.security_group_id].clone();
    let rules = flow_rules(&mut group, &req.flow)?;
    for new in wanted {
        match rules.iter_mut().find(|r| same_ports(r, &new)) {
            Some(existing) => {
                let ranges = existing.ip_ranges.get_or_insert_with(Vec::new);
                for range in new.ip_ranges.iter().flatten() {
                    if ranges.contains(range) {
                        return Err(SimError::conflict(
                            "9005",
                            format!("the rule for {range} already exists"),
                        ));
                    }
                    ranges.push(range.clone());
                }
                let members = existing
                    .security_groups_members
                    .get_or_insert_with(Vec::new);
                for m in new.security_groups_members.iter().flatten() {
                    if members.iter().any(|x| member_key(x) == member_key(m)) {
                        return Err(SimError::conflict(
                            "9005",
                            "the rule for that group already exists",
                        ));
                    }
                    members.push(m.clone());
                }
            }
            None => {
                let mut new = new;
                new.security_group_rule_id = Some(random_id("sgr", 8));
                rules.push(new);
            }
        }
    }
    ctx.world
        .security_groups
        .insert(req.security_group_id.clone(), group);
    Ok(SecurityGroupResponse {
        security_group: render(
            ctx.world,
            &ctx.world.security_groups[&req.security_group_id],
        ),
        ..Default::default()
    })
}

pub fn delete_rule(
    ctx: &mut Ctx<'_>,
    req: DeleteSecurityGroupRuleRequest,
) -> SimResult<SecurityGroupResponse> {
    ctx.own(Kind::SecurityGroup, &req.security_group_id)?;
    let unwanted = requested_rules(
        ctx,
        &req.ip_protocol,
        req.from_port_range,
        req.to_port_range,
        &req.ip_range,
        &req.security_group_account_id_to_unlink,
        &req.security_group_name_to_unlink,
        &req.rules,
    )?;
    let mut group = ctx.world.security_groups[&req.security_group_id].clone();
    let rules = flow_rules(&mut group, &req.flow)?;
    for gone in unwanted {
        let Some(existing) = rules.iter_mut().find(|r| same_ports(r, &gone)) else {
            return Err(SimError::invalid_value(
                "no such rule in the security group",
            ));
        };
        for range in gone.ip_ranges.iter().flatten() {
            let ranges = existing.ip_ranges.get_or_insert_with(Vec::new);
            let before = ranges.len();
            ranges.retain(|r| r != range);
            if ranges.len() == before {
                return Err(SimError::invalid_value(format!(
                    "no rule for {range} in the security group"
                )));
            }
        }
        for m in gone.security_groups_members.iter().flatten() {
            let members = existing
                .security_groups_members
                .get_or_insert_with(Vec::new);
            members.retain(|x| member_key(x) != member_key(m));
        }
        rules.retain(|r| {
            r.ip_ranges.as_ref().is_some_and(|v| !v.is_empty())
                || r.security_groups_members
                    .as_ref()
                    .is_some_and(|v| !v.is_empty())
        });
    }
    ctx.world
        .security_groups
        .insert(req.security_group_id.clone(), group);
    Ok(SecurityGroupResponse {
        security_group: render(
            ctx.world,
            &ctx.world.security_groups[&req.security_group_id],
        ),
        ..Default::default()
    })
}

fn matches(world: &World, g: &SecurityGroup, f: &FiltersSecurityGroup) -> bool {
    let inbound = || g.inbound_rules.iter();
    filters::any(&f.security_group_ids, &g.security_group_id)
        && filters::any(&f.security_group_names, &g.security_group_name)
        && filters::any_opt(&f.net_ids, g.net_id.as_deref())
        && filters::any(&f.descriptions, &g.description)
        && filters::any_of_many(
            &f.inbound_rule_ip_ranges,
            inbound().flat_map(|r| r.ip_ranges.iter().flatten().map(String::as_str)),
        )
        && filters::any_of_many(
            &f.inbound_rule_protocols,
            inbound().filter_map(|r| r.ip_protocol.as_deref()),
        )
        && f.inbound_rule_from_port_ranges
            .as_ref()
            .is_none_or(|p| inbound().any(|r| r.from_port_range.is_some_and(|x| p.contains(&x))))
        && f.inbound_rule_to_port_ranges
            .as_ref()
            .is_none_or(|p| inbound().any(|r| r.to_port_range.is_some_and(|x| p.contains(&x))))
        && filters::tags(f, world.tags.get(&g.security_group_id))
}

pub fn read(
    ctx: &mut Ctx<'_>,
    req: ReadSecurityGroupsRequest,
) -> SimResult<ReadSecurityGroupsResponse> {
    let f = req.filters.unwrap_or_default();
    let groups: Vec<SecurityGroup> = ctx
        .world
        .security_groups
        .values()
        .filter(|g| g.account_id == ctx.account)
        .map(|g| render(ctx.world, g))
        .filter(|g| matches(ctx.world, g, &f))
        .collect();
    let (security_groups, next_page_token) =
        filters::paginate(groups, req.next_page_token.as_deref(), req.results_per_page)?;
    Ok(ReadSecurityGroupsResponse {
        security_groups,
        next_page_token,
        ..Default::default()
    })
}

pub fn delete(ctx: &mut Ctx<'_>, req: DeleteSecurityGroupRequest) -> SimResult<EmptyResponse> {
    let id = match (&req.security_group_id, &req.security_group_name) {
        (Some(id), _) => {
            ctx.own(Kind::SecurityGroup, id)?;
            id.clone()
        }
        (None, Some(name)) => ctx
            .world
            .security_groups
            .values()
            .find(|g| {
                g.account_id == ctx.account && g.security_group_name == *name && g.net_id.is_none()
            })
            .map(|g| g.security_group_id.clone())
            .ok_or_else(|| SimError::not_found(Kind::SecurityGroup, name))?,
        (None, None) => {
            return Err(SimError::missing_parameter(
                "SecurityGroupId or SecurityGroupName",
            ));
        }
    };
    let group = &ctx.world.security_groups[&id];
    if group.security_group_name == "default" {
        return Err(SimError::invalid_value(
            "the default security group cannot be deleted",
        ));
    }
    if let Some(vm) = ctx.world.vms.values().find(|r| {
        r.vm.state != "terminated"
            && r.vm
                .security_groups
                .iter()
                .any(|g| g.security_group_id == id)
    }) {
        return Err(SimError::dependency(format!(
            "security group {id} is used by VM {} ({}): wait for it to be terminated",
            vm.vm.vm_id, vm.vm.state
        )));
    }
    if let Some(other) = ctx.world.security_groups.values().find(|g| {
        g.security_group_id != id
            && g.inbound_rules
                .iter()
                .chain(&g.outbound_rules)
                .flat_map(|r| r.security_groups_members.iter().flatten())
                .any(|m| m.security_group_id.as_deref() == Some(id.as_str()))
    }) {
        return Err(SimError::dependency(format!(
            "security group {id} is named in a rule of {}",
            other.security_group_id
        )));
    }
    ctx.world.security_groups.remove(&id);
    ctx.world.tags.remove(&id);
    Ok(EmptyResponse::default())
}
