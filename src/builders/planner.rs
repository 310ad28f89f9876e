//! Planning a template against the cloud: refresh the state and read every
//! build's source and network (one read per kind for the whole template),
//! let each builder declare its nodes, diff the graph against the state, and
//! turn OMI name clashes into `force_deregister` nodes or an error before
//! anything is made.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::cloud::Cloud;
use super::metadata::Metadata;
use super::steps::{self, BuildRun, deregister};
use super::{Builder, Declare, Declared, network, prepare};
use crate::graph::{Action, Address, Graph, GraphError, Kind};
use crate::oapi::model::{FiltersImage, ReadAccountsRequest, ReadImagesRequest};
use crate::oapi::wait::WaitPolicy;
use crate::oapi::{Client, Error};
use crate::plan::{self, BuildPlan, Deregister, Observed, Plan, Schedule};
use crate::state::{State, Status};
use crate::template::{RunConfig, Template};

/// A template planned against the cloud: the plan, and the schedule of jobs
/// that carries it out.
pub struct Planned {
    pub plan: Plan,
    pub schedule: Schedule,
    /// What refresh saw of each durable state entry (`None`: gone).
    pub observed: Observed,
    /// What each recorded node depends on, for the state.
    pub dependencies: BTreeMap<Address, Vec<Address>>,
    pub cloud: Arc<Cloud>,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Api(#[from] Error),
    /// A build osci cannot carry out, or a clash found while planning.
    #[error("{0}")]
    Build(String),
    #[error(transparent)]
    Graph(#[from] GraphError),
}

impl From<crate::graph::Cycle> for PlanError {
    fn from(c: crate::graph::Cycle) -> Self {
        PlanError::Graph(GraphError::Cycle(c))
    }
}

/// The cloud the client reaches: who the credentials belong to.
pub async fn connect(
    client: Client,
    wait: WaitPolicy,
    metadata: Metadata,
) -> Result<Arc<Cloud>, PlanError> {
    let account_id = client
        .call(&ReadAccountsRequest::default())
        .await?
        .accounts
        .into_iter()
        .next()
        .map(|a| a.account_id)
        .ok_or_else(|| PlanError::Build("ReadAccounts answered no account".into()))?;
    Ok(Arc::new(Cloud::new(client, wait, account_id, metadata)))
}

/// Plans `template` against the cloud and the `state`. The builds
/// `-only`/`-except` leave out are not part of the plan: their state
/// entries (and those of builds gone from the template that the selection
/// does not name) are neither refreshed nor removed.
pub async fn plan(
    cloud: &Arc<Cloud>,
    template: &Template,
    state: &State,
) -> Result<Planned, PlanError> {
    let selected;
    let state = if template.selection.is_none() {
        state
    } else {
        selected = state.of_builds(|b| template.touches(b));
        &selected
    };
    let in_build = |name: &str, e: String| PlanError::Build(format!("build \"{name}\": {e}"));
    let builders: Vec<Box<dyn Builder>> = template
        .builds
        .iter()
        .map(|b| {
            prepare(b, &template.sensitive_values, cloud.region()).map_err(|e| in_build(&b.name, e))
        })
        .collect::<Result<_, _>>()?;
    let (observed, refreshed) = steps::refresh(cloud, state).await?;
    let refreshed = Arc::new(refreshed);
    let runs: Vec<&RunConfig> = builders.iter().filter_map(|b| b.source()).collect();
    let mut resolved = steps::source::resolve(cloud, &runs).await?.into_iter();
    let sources: Vec<Option<Result<_, String>>> = builders
        .iter()
        .map(|b| b.source().and_then(|_| resolved.next()))
        .collect();

    let mut graph = Graph::new();
    let mut declared = Vec::new();
    for (builder, source) in builders.iter().zip(sources) {
        let name = builder.name();
        let source = source.transpose().map_err(|e| in_build(name, e))?;
        let placement = match builder.network() {
            Some(run) => network::resolve(&cloud.client, run)
                .await
                .map_err(|e| in_build(name, e))?,
            None => network::Placement::default(),
        };
        let input = Declare {
            cloud,
            refreshed: &refreshed,
            source: source.as_ref(),
            placement: &placement,
        };
        declared.push(
            builder
                .declare(input, &mut graph)
                .map_err(|e| in_build(name, e))?,
        );
    }
    graph.order()?;
    let diff = plan::diff(&mut graph, state, &observed);
    let removals = clashes(cloud, &builders, &declared, &mut graph, state).await?;
    graph.order()?;
    let schedule = plan::schedule(&graph, &diff, state);
    let builds = builders
        .iter()
        .zip(&declared)
        .map(|(b, d)| BuildPlan {
            name: b.name().to_string(),
            action: plan::build_action(&graph, b.name()),
            digest: d.run.digest.clone(),
            source_omi: d.run.vars.source_omi.clone(),
            deregister: removals.get(b.name()).cloned().unwrap_or_default(),
        })
        .collect();
    let plan = plan::summarize(&graph, &schedule, &diff, state, &observed, builds);
    Ok(Planned {
        plan,
        schedule,
        observed,
        dependencies: graph.recorded_dependencies(),
        cloud: Arc::clone(cloud),
    })
}

/// The OMIs of this account named like a new one, other than the build's
/// current OMI when it stays, all read at once: with force_deregister they
/// go (and their snapshots with force_delete_snapshot), as nodes the new
/// OMI waits for; without, it is an error now rather than a failed
/// CreateImage later.
async fn clashes(
    cloud: &Cloud,
    builders: &[Box<dyn Builder>],
    declared: &[Declared],
    graph: &mut Graph,
    state: &State,
) -> Result<BTreeMap<String, Vec<Deregister>>, PlanError> {
    let new: Vec<(&dyn Builder, &Arc<BuildRun>, crate::graph::NodeIndex)> = builders
        .iter()
        .zip(declared)
        .filter_map(|(b, d)| {
            let image = d.image?;
            graph
                .node(image)
                .action
                .is_some_and(Action::makes)
                .then_some((b.as_ref(), &d.run, image))
        })
        .collect();
    let mut out = BTreeMap::new();
    let names: BTreeSet<String> = new
        .iter()
        .filter_map(|(b, _, _)| b.omi().map(|o| o.omi_name.clone()))
        .collect();
    if names.is_empty() {
        return Ok(out);
    }
    let images = cloud
        .client
        .read_all(&ReadImagesRequest {
            filters: Some(FiltersImage {
                image_names: Some(names.into_iter().collect()),
                account_ids: Some(vec![cloud.account_id.clone()]),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await?;
    for (builder, run, image_node) in new {
        let Some(omi) = builder.omi() else { continue };
        let name = builder.name();
        let address = Address::new(name, Kind::Image, None);
        let current = state
            .get(address.as_str())
            .filter(|r| r.input_digest.as_deref() == Some(run.digest.as_str()))
            .and_then(|r| r.id.clone());
        let mut clashing: Vec<_> = images
            .iter()
            .filter(|i| i.image_name == omi.omi_name && Some(&i.image_id) != current.as_ref())
            // Half-made images of this state are removed as leftovers.
            .filter(|i| {
                !state
                    .resources
                    .iter()
                    .any(|r| r.id.as_deref() == Some(&i.image_id) && r.status != Status::Created)
            })
            .collect();
        if clashing.is_empty() {
            continue;
        }
        clashing.sort_by(|a, b| a.image_id.cmp(&b.image_id));
        let ids = clashing
            .iter()
            .map(|i| i.image_id.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        if !omi.force_deregister {
            let replaced = state
                .get(address.as_str())
                .and_then(|r| r.id.as_ref())
                .is_some_and(|id| clashing.iter().any(|i| i.image_id == *id));
            return Err(PlanError::Build(if replaced {
                format!(
                    "build \"{name}\" must be replaced, but its current OMI {ids} holds the name \"{}\": set \
                     force_deregister to remove it just before the new one is captured, or give omi_name a \
                     new value (for example with {{{{timestamp}}}}) to keep both",
                    omi.omi_name,
                )
            } else {
                format!(
                    "build \"{name}\": an OMI named \"{}\" already exists in account {} ({ids}): set \
                     force_deregister to replace it, or choose another omi_name",
                    omi.omi_name, cloud.account_id
                )
            }));
        }
        // Removed at the last moment: once what the new OMI is made from
        // is ready, so that a build failing before then loses nothing.
        let ready: Vec<_> = graph
            .before(image_node)
            .map(|(p, _)| p)
            .filter(|p| graph.node(*p).lifetime != crate::graph::Lifetime::Removal)
            .collect();
        let mut removals = Vec::new();
        for image in clashing {
            let removal = match graph.find(&image.image_id) {
                Some(i) => i,
                None => graph.add(deregister::image_node(run, &image.image_id))?,
            };
            graph.needs(image_node, removal);
            for p in &ready {
                graph.needs(removal, *p);
            }
            let mut snapshot_ids = Vec::new();
            if omi.force_delete_snapshot {
                let named = builder.named_snapshots();
                snapshot_ids = image.snapshot_ids();
                snapshot_ids.retain(|s| !named.contains(s));
                snapshot_ids.sort();
                for s in &snapshot_ids {
                    let node = match graph.find(s) {
                        Some(i) => i,
                        None => graph.add(deregister::snapshot_node(run, s))?,
                    };
                    graph.needs(node, removal);
                }
            }
            removals.push(Deregister {
                image_id: image.image_id.clone(),
                snapshot_ids,
            });
        }
        *run.deregistered.lock().expect("deregistered lock") =
            removals.iter().map(|d| d.image_id.clone()).collect();
        out.insert(name.to_string(), removals);
    }
    Ok(out)
}
