//! The account behind the credentials, and the regions.

use serde::{Deserialize, Serialize};

use super::ResponseContext;
use crate::oapi::operation::operation;

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Account {
    pub account_id: String,
    pub email: Option<String>,
    pub customer_id: Option<String>,
    pub company_name: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub outscale_login_allowed: Option<bool>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ReadAccountsRequest {
    pub dry_run: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ReadAccountsResponse {
    pub accounts: Vec<Account>,
    pub response_context: ResponseContext,
}
operation!(ReadAccountsRequest => ReadAccountsResponse, "ReadAccounts");

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Region {
    pub region_name: String,
    pub endpoint: String,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ReadRegionsRequest {
    pub dry_run: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ReadRegionsResponse {
    pub regions: Vec<Region>,
    pub response_context: ResponseContext,
}
operation!(ReadRegionsRequest => ReadRegionsResponse, "ReadRegions");
