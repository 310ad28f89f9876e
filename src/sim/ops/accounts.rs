//! The caller's account and the region list.

use super::Ctx;
use crate::oapi::model::*;
use crate::sim::error::{SimError, SimResult};

pub fn read_accounts(
    ctx: &mut Ctx<'_>,
    _req: ReadAccountsRequest,
) -> SimResult<ReadAccountsResponse> {
    let account = ctx
        .world
        .account(&ctx.account)
        .ok_or_else(|| SimError::internal("the signed-in account vanished"))?;
    Ok(ReadAccountsResponse {
        accounts: vec![Account {
            account_id: account.account_id.clone(),
            email: Some(account.email.clone()),
            customer_id: Some(account.account_id[6..].to_string()),
            company_name: Some("osci simulator".into()),
            first_name: Some("Sim".into()),
            last_name: Some(account.alias.clone().unwrap_or_else(|| "User".into())),
            outscale_login_allowed: Some(false),
        }],
        ..Default::default()
    })
}

pub fn read_regions(ctx: &mut Ctx<'_>, _req: ReadRegionsRequest) -> SimResult<ReadRegionsResponse> {
    Ok(ReadRegionsResponse {
        regions: vec![Region {
            region_name: ctx.world.region.clone(),
            endpoint: format!("api.{}.outscale.com", ctx.world.region),
        }],
        ..Default::default()
    })
}
