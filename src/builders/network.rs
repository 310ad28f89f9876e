//! Where a build's VM goes: `net_filter`, `subnet_filter` and
//! `security_group_filter` resolved to ids at plan time (plugin step C4 and
//! the filter half of C7).
//!
//! Unlike the plugin, the subnet search is constrained to the chosen Net and
//! subregion (it sent AWS filter names the API ignored), and a subnet given
//! by id that does not exist is an error rather than a crash.

use std::collections::BTreeMap;

use crate::oapi::Client;
use crate::oapi::model::*;
use crate::template::RunConfig;

/// Whether the build's placement needs reading at all.
pub fn needs_lookup(config: &RunConfig) -> bool {
    config.net_filter.is_some()
        || config.subnet_filter.is_some()
        || config.security_group_filter.is_some()
        || (config.subnet_id.is_some()
            && (config.net_id.is_none() || config.subregion_name.is_none()))
}

/// The network ids a build launches with; empty where the template leaves
/// the choice to OUTSCALE.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Placement {
    pub net_id: Option<String>,
    pub subnet_id: Option<String>,
    pub subregion_name: Option<String>,
    pub security_group_ids: Vec<String>,
}

fn one(value: &str) -> Option<Vec<String>> {
    Some(vec![value.to_string()])
}

fn parse<T: std::str::FromStr>(key: &str, filter: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("{key}: filter `{filter}` = `{value}` is not a valid value"))
}

/// Resolves the filters of `config` against the account.
pub async fn resolve(client: &Client, config: &RunConfig) -> Result<Placement, String> {
    let mut placement = Placement {
        net_id: config.net_id.clone(),
        subnet_id: config.subnet_id.clone(),
        subregion_name: config.subregion_name.clone(),
        security_group_ids: config.security_group_ids.clone(),
    };
    if placement.net_id.is_none()
        && let Some(filter) = &config.net_filter
    {
        placement.net_id = Some(find_net(client, &filter.filters).await?);
    }
    if placement.subnet_id.is_none()
        && let Some(filter) = &config.subnet_filter
    {
        let subnet = find_subnet(
            client,
            &placement,
            &filter.filters,
            filter.most_free,
            filter.random,
        )
        .await?;
        placement.subnet_id = Some(subnet);
    }
    if let Some(subnet_id) = placement.subnet_id.clone()
        && (placement.net_id.is_none() || placement.subregion_name.is_none())
    {
        let subnets = client
            .read_all(&ReadSubnetsRequest {
                filters: Some(FiltersSubnet {
                    subnet_ids: one(&subnet_id),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .map_err(|e| e.to_string())?;
        let subnet = subnets.first().ok_or_else(|| {
            format!("subnet_id: subnet {subnet_id} does not exist in this account")
        })?;
        placement
            .net_id
            .get_or_insert_with(|| subnet.net_id.clone());
        placement
            .subregion_name
            .get_or_insert_with(|| subnet.subregion_name.clone());
    }
    if placement.security_group_ids.is_empty()
        && let Some(filter) = &config.security_group_filter
    {
        placement.security_group_ids =
            find_security_groups(client, &placement, &filter.filters).await?;
    }
    Ok(placement)
}

async fn find_net(client: &Client, filters: &BTreeMap<String, String>) -> Result<String, String> {
    let key = "net_filter";
    let mut f = FiltersNet::default();
    let mut dhcp = None;
    for (name, value) in filters {
        match name.as_str() {
            "ip-range" => f.ip_ranges = one(value),
            "dhcp-options-set-id" => dhcp = Some(value.clone()),
            "is-default" => f.is_default = Some(parse(key, name, value)?),
            "state" => f.states = one(value),
            "tag-key" => f.tag_keys = one(value),
            "tag-value" => f.tag_values = one(value),
            other => return Err(format!("{key}: unknown filter `{other}`")),
        }
    }
    let nets: Vec<Net> = client
        .read_all(&ReadNetsRequest {
            filters: Some(f),
            ..Default::default()
        })
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|n| dhcp.is_none() || n.dhcp_options_set_id == dhcp)
        .collect();
    match nets.as_slice() {
        [net] => Ok(net.net_id.clone()),
        [] => Err(format!("{key}: no Net matches {filters:?}")),
        many => Err(format!(
            "{key}: {} Nets match ({}); narrow the filters to one",
            many.len(),
            many.iter()
                .map(|n| n.net_id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

async fn find_subnet(
    client: &Client,
    placement: &Placement,
    filters: &BTreeMap<String, String>,
    most_free: bool,
    random: bool,
) -> Result<String, String> {
    let key = "subnet_filter";
    let mut f = FiltersSubnet {
        net_ids: placement.net_id.as_deref().and_then(one),
        subregion_names: placement.subregion_name.as_deref().and_then(one),
        ..Default::default()
    };
    for (name, value) in filters {
        match name.as_str() {
            "available-ips-counts" => f.available_ips_counts = Some(vec![parse(key, name, value)?]),
            "ip-ranges" => f.ip_ranges = one(value),
            "net-ids" => f.net_ids = one(value),
            "states" => f.states = one(value),
            "subnet-ids" => f.subnet_ids = one(value),
            "sub-region-names" => f.subregion_names = one(value),
            other => return Err(format!("{key}: unknown filter `{other}`")),
        }
    }
    let mut subnets = client
        .read_all(&ReadSubnetsRequest {
            filters: Some(f),
            ..Default::default()
        })
        .await
        .map_err(|e| e.to_string())?;
    match subnets.len() {
        0 => Err(format!("{key}: no subnet matches {filters:?}")),
        1 => Ok(subnets.remove(0).subnet_id),
        _ if most_free => {
            // Ties go to the first id, so that plans stay deterministic.
            subnets.sort_by(|a, b| {
                b.available_ips_count
                    .cmp(&a.available_ips_count)
                    .then_with(|| a.subnet_id.cmp(&b.subnet_id))
            });
            Ok(subnets.remove(0).subnet_id)
        }
        n if random => {
            use rand::Rng;
            Ok(subnets.remove(rand::thread_rng().gen_range(0..n)).subnet_id)
        }
        n => Err(format!(
            "{key}: {n} subnets match ({}); narrow the filters, or set most_free or random",
            subnets
                .iter()
                .map(|s| s.subnet_id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

async fn find_security_groups(
    client: &Client,
    placement: &Placement,
    filters: &BTreeMap<String, String>,
) -> Result<Vec<String>, String> {
    let key = "security_group_filter";
    let mut f = FiltersSecurityGroup {
        net_ids: placement.net_id.as_deref().and_then(one),
        ..Default::default()
    };
    for (name, value) in filters {
        match name.as_str() {
            "security_group_ids" => f.security_group_ids = one(value),
            "security_group_names" => f.security_group_names = one(value),
            "tag_keys" => f.tag_keys = one(value),
            "tag_values" => f.tag_values = one(value),
            "tags" => f.tags = one(value),
            other => return Err(format!("{key}: unknown filter `{other}`")),
        }
    }
    let groups = client
        .read_all(&ReadSecurityGroupsRequest {
            filters: Some(f),
            ..Default::default()
        })
        .await
        .map_err(|e| e.to_string())?;
    if groups.is_empty() {
        return Err(format!("{key}: no security group matches {filters:?}"));
    }
    let mut ids: Vec<String> = groups.into_iter().map(|g| g.security_group_id).collect();
    ids.sort();
    Ok(ids)
}
