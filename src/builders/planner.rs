//! Planning a template against the cloud: refresh the state, prepare each
//! build (source OMI, input digest), diff, and turn OMI name clashes into
//! force_deregister removals or an error before anything is made.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::Bsu;
use super::outscale::refresh;
use crate::graph::{BuildAction, Deregister};
use crate::oapi::model::{FiltersImage, ReadAccountsRequest, ReadImagesRequest};
use crate::oapi::wait::{WaitPolicy, Waiters};
use crate::oapi::{Client, Error};
use crate::plan::{DesiredBuild, Observed, Plan, diff};
use crate::state::{Kind, State, Status};
use crate::template::Template;

/// A template planned against the cloud: the plan, and the builds ready to
/// carry it out.
pub struct Planned {
    pub plan: Plan,
    pub runners: BTreeMap<String, Arc<Bsu>>,
    pub account_id: String,
    /// What refresh saw of each durable state entry (`None`: gone).
    pub observed: Observed,
    /// Shared by the builds and the cleanup of one apply, so their waits
    /// share reads.
    pub waiters: Arc<Waiters>,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Api(#[from] Error),
    /// A build osci cannot carry out, or a clash found while planning.
    #[error("{0}")]
    Build(String),
}

/// How long and how often builds wait for OUTSCALE resources.
pub fn wait_policy() -> WaitPolicy {
    WaitPolicy {
        initial_interval: std::time::Duration::from_millis(500),
        max_interval: std::time::Duration::from_secs(5),
        ..WaitPolicy::default()
    }
}

/// The account the client's credentials belong to.
pub async fn account_id(client: &Client) -> Result<String, PlanError> {
    client
        .call(&ReadAccountsRequest::default())
        .await?
        .accounts
        .into_iter()
        .next()
        .map(|a| a.account_id)
        .ok_or_else(|| PlanError::Build("ReadAccounts answered no account".into()))
}

/// Plans `template` against the cloud `client` reaches and the `state`.
pub async fn plan(
    client: &Client,
    template: &Template,
    state: &State,
) -> Result<Planned, PlanError> {
    let account_id = account_id(client).await?;
    let observed = refresh(client, state).await?;
    let waiters = Arc::new(Waiters::new(client));
    let mut desired = Vec::new();
    let mut runners = BTreeMap::new();
    for build in &template.builds {
        let bsu = Bsu::prepare(
            build,
            &template.sensitive_values,
            client.clone(),
            Arc::clone(&waiters),
            wait_policy(),
            account_id.clone(),
        )
        .await
        .map_err(PlanError::Build)?;
        desired.push(DesiredBuild {
            name: build.name.clone(),
            resources: bsu.resources().map_err(PlanError::Build)?,
            digest: bsu.digest().to_string(),
            deregister: Vec::new(),
            source_omi: bsu.source().image_id.clone(),
        });
        runners.insert(build.name.clone(), bsu);
    }
    // Only a build that makes a new OMI can clash with an existing name.
    let first_pass = diff(&desired, state, &observed);
    for (d, b) in desired.iter_mut().zip(&first_pass.builds) {
        let bsu = runners.get_mut(&d.name).expect("one runner per build");
        if matches!(b.action, Some(BuildAction::Create | BuildAction::Replace))
            && !bsu.skip_create_omi()
        {
            bsu.deregister = same_name_images(client, bsu, &account_id, state).await?;
            d.deregister = bsu.deregister.clone();
        }
    }
    let plan = diff(&desired, state, &observed);
    let runners = runners.into_iter().map(|(k, v)| (k, Arc::new(v))).collect();
    Ok(Planned {
        plan,
        runners,
        account_id,
        observed,
        waiters,
    })
}

/// The OMIs of this account named like the new one, other than this
/// build's current OMI when it stays: with force_deregister they go (and
/// their snapshots with force_delete_snapshot); without, it is an error now
/// rather than a failed CreateImage later.
async fn same_name_images(
    client: &Client,
    bsu: &Bsu,
    account_id: &str,
    state: &State,
) -> Result<Vec<Deregister>, PlanError> {
    let images = client
        .read_all(&ReadImagesRequest {
            filters: Some(FiltersImage {
                image_names: Some(vec![bsu.omi_name().to_string()]),
                account_ids: Some(vec![account_id.to_string()]),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await?;
    let current = state
        .get(&crate::graph::address(bsu.name(), Kind::Image, None))
        .filter(|r| r.input_digest.as_deref() == Some(bsu.digest()))
        .and_then(|r| r.id.clone());
    let clashing: Vec<_> = images
        .into_iter()
        .filter(|i| i.image_name == bsu.omi_name() && Some(&i.image_id) != current.as_ref())
        .filter(|i| {
            // Half-made images of this state are removed as leftovers.
            !state
                .resources
                .iter()
                .any(|r| r.id.as_deref() == Some(&i.image_id) && r.status != Status::Created)
        })
        .collect();
    if clashing.is_empty() {
        return Ok(Vec::new());
    }
    if !bsu.force_deregister() {
        let replaced = state
            .get(&crate::graph::address(bsu.name(), Kind::Image, None))
            .and_then(|r| r.id.as_ref())
            .is_some_and(|id| clashing.iter().any(|i| i.image_id == *id));
        if replaced {
            return Err(PlanError::Build(format!(
                "build \"{}\" must be replaced, but its current OMI {} holds the name \"{}\": set \
                 force_deregister to remove it just before the new one is captured, or give omi_name a \
                 new value (for example with {{{{timestamp}}}}) to keep both",
                bsu.name(),
                clashing
                    .iter()
                    .map(|i| i.image_id.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                bsu.omi_name(),
            )));
        }
        return Err(PlanError::Build(format!(
            "build \"{}\": an OMI named \"{}\" already exists in account {account_id} ({}): set \
             force_deregister to replace it, or choose another omi_name",
            bsu.name(),
            bsu.omi_name(),
            clashing
                .iter()
                .map(|i| i.image_id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    // Sorted, so that the plan reads the same whatever order the API answers in.
    let mut clashing = clashing;
    clashing.sort_by(|a, b| a.image_id.cmp(&b.image_id));
    Ok(clashing
        .into_iter()
        .map(|i| Deregister {
            snapshot_ids: if bsu.force_delete_snapshot() {
                let mut ids = i.snapshot_ids();
                ids.sort();
                ids
            } else {
                Vec::new()
            },
            image_id: i.image_id,
        })
        .collect())
}
