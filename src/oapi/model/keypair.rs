//! Keypairs: CreateKeypair (generate or import), ReadKeypairs, DeleteKeypair.

use serde::{Deserialize, Serialize};

use super::{EmptyResponse, ResourceTag, ResponseContext, tag_filter};
use crate::oapi::Secret;
use crate::oapi::operation::{operation, paginated};

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Keypair {
    pub keypair_name: String,
    pub keypair_id: Option<String>,
    pub keypair_fingerprint: Option<String>,
    pub keypair_type: Option<String>,
    pub tags: Vec<ResourceTag>,
}

/// A keypair as CreateKeypair returns it: with the private key when OUTSCALE
/// generated it (RSA 2048, PKCS#1 PEM).
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct KeypairCreated {
    pub keypair_name: String,
    pub keypair_id: Option<String>,
    pub keypair_fingerprint: Option<String>,
    pub keypair_type: Option<String>,
    /// The wire carries it in the clear; nothing else does.
    #[serde(serialize_with = "crate::secret::serialize_exposed")]
    pub private_key: Option<Secret>,
    pub tags: Vec<ResourceTag>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct CreateKeypairRequest {
    pub keypair_name: String,
    /// Base64 of a public key to import instead of generating one.
    pub public_key: Option<String>,
    pub dry_run: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CreateKeypairResponse {
    pub keypair: KeypairCreated,
    pub response_context: ResponseContext,
}
operation!(CreateKeypairRequest => CreateKeypairResponse, "CreateKeypair", secret_answer);

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct FiltersKeypair {
    pub keypair_names: Option<Vec<String>>,
    pub keypair_ids: Option<Vec<String>>,
    pub keypair_fingerprints: Option<Vec<String>>,
    pub keypair_types: Option<Vec<String>>,
    pub tag_keys: Option<Vec<String>>,
    pub tag_values: Option<Vec<String>>,
    pub tags: Option<Vec<String>>,
}
tag_filter!(FiltersKeypair);

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ReadKeypairsRequest {
    pub filters: Option<FiltersKeypair>,
    pub next_page_token: Option<String>,
    pub results_per_page: Option<i64>,
    pub dry_run: Option<bool>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ReadKeypairsResponse {
    pub keypairs: Vec<Keypair>,
    pub next_page_token: Option<String>,
    pub response_context: ResponseContext,
}
paginated!(ReadKeypairsRequest => ReadKeypairsResponse, "ReadKeypairs", keypairs: Keypair);

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct DeleteKeypairRequest {
    pub keypair_name: Option<String>,
    pub keypair_id: Option<String>,
    pub dry_run: Option<bool>,
}
operation!(DeleteKeypairRequest => EmptyResponse, "DeleteKeypair");
