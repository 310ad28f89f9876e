//! One module per kind of node. Each knows, for every builder, how to make
//! its kind (bracketed by the write-ahead `pending` record), find it again
//! after a crash (name, ClientToken, tags), read what it looks like now,
//! change it in place, and destroy it. Builders only arrange these steps.
//!
//! Values known only once the apply runs (ids, the VM, the temporary private
//! key) pass from node to node through [`Outputs`], in memory: they are
//! never written anywhere.

pub mod deregister;
pub mod image;
pub mod keypair;
pub mod permissions;
pub mod provision;
pub mod public_ip;
pub mod run;
pub mod security_group;
pub mod snapshot;
pub mod source;
pub mod stop;
pub mod tags;
pub mod vm;
pub mod volume;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::Value;

use super::cloud::{Cloud, failed};
use crate::graph::{Address, DestroyError, Destroyed, Destroyer, Kind, Pending, Run, StepError};
use crate::oapi::model::{
    FiltersImage, FiltersSnapshot, Image, ReadImagesRequest, ReadSnapshotsRequest, Snapshot, Vm,
};
use crate::oapi::{Error, Operation, Paginated};
use crate::plan::Observed;
use crate::secret::Secret;
use crate::state::{Lookup, ResourceState, State};
use crate::template::{BuildVars, render_build_vars};

/// A value one node hands to those after it.
#[derive(Clone)]
pub enum Output {
    /// A security group or public IP.
    Id(String),
    /// The temporary keypair: its private key lives here and nowhere else.
    Keypair {
        name: String,
        private_key: Secret,
    },
    Vm(Box<Vm>),
    Image(Box<Image>),
}

/// What the nodes of an apply have handed on so far.
#[derive(Default)]
pub struct Outputs(Mutex<HashMap<Address, Output>>);

impl Outputs {
    pub fn put(&self, address: &Address, output: Output) {
        self.0
            .lock()
            .expect("outputs lock")
            .insert(address.clone(), output);
    }

    pub fn get(&self, address: &Address) -> Option<Output> {
        self.0.lock().expect("outputs lock").get(address).cloned()
    }
}

/// The images and snapshots the plan's refresh read, for steps that change
/// them in place without reading them again.
#[derive(Default)]
pub struct Refreshed {
    pub images: HashMap<String, Image>,
    pub snapshots: HashMap<String, Snapshot>,
}

/// What the steps of one build share.
pub struct BuildRun {
    pub name: String,
    pub cloud: Arc<Cloud>,
    pub outputs: Outputs,
    pub refreshed: Arc<Refreshed>,
    /// What the build variables (`{{ .SourceOMI }}`…) stand for.
    pub vars: BuildVars,
    /// The digest of everything that shapes the build's artifact.
    pub digest: String,
    /// Values never shown: sensitive variables and passwords.
    pub sensitive: Vec<Secret>,
    /// The OMIs `force_deregister` removes before the new one is made, as
    /// the plan found them.
    pub deregistered: Mutex<Vec<String>>,
}

impl BuildRun {
    pub fn address(&self, kind: Kind, key: Option<&str>) -> Address {
        Address::new(&self.name, kind, key)
    }

    pub fn output(&self, address: &Address) -> Option<Output> {
        self.outputs.get(address)
    }

    /// The VM as the node at `address` last saw it.
    pub fn vm(&self, address: &Address) -> Result<Vm, StepError> {
        match self.output(address) {
            Some(Output::Vm(vm)) => Ok(*vm),
            _ => Err(StepError::Failed(format!("{address} has not run"))),
        }
    }

    /// The image the node at `address` made, or, when it did not run in
    /// this apply, the one the state holds as the refresh saw it.
    pub fn image(
        &self,
        address: &Address,
        recorded: Option<&ResourceState>,
    ) -> Result<Image, StepError> {
        if let Some(Output::Image(image)) = self.output(address) {
            return Ok(*image);
        }
        recorded
            .and_then(|r| r.id.as_ref())
            .and_then(|id| self.refreshed.images.get(id))
            .cloned()
            .ok_or_else(|| StepError::Failed(format!("the OMI of {address} is gone")))
    }

    /// Renders the build variables left in tag maps.
    pub fn render(
        &self,
        map: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, StepError> {
        map.iter()
            .map(|(k, v)| {
                Ok((
                    render_build_vars(k, &self.vars).map_err(StepError::Failed)?,
                    render_build_vars(v, &self.vars).map_err(StepError::Failed)?,
                ))
            })
            .collect()
    }

    pub fn render_text(&self, text: &str) -> Result<String, StepError> {
        render_build_vars(text, &self.vars).map_err(StepError::Failed)
    }

    /// `line` with every sensitive value replaced, as Packer does.
    pub fn mask(&self, line: &str) -> String {
        let mut line = line.to_string();
        for secret in &self.sensitive {
            if !secret.expose().is_empty() {
                line = line.replace(secret.expose(), "<sensitive>");
            }
        }
        line
    }
}

/// The write-ahead bracket of every create: the pending record (with the
/// name or ClientToken that finds the resource if the answer is lost), the
/// call, and the id right after.
pub(crate) async fn create<T>(
    run: &Run<'_>,
    kind: Kind,
    ephemeral: bool,
    lookup: Lookup,
    call: impl Future<Output = Result<T, Error>>,
    id_of: impl Fn(&T) -> String,
) -> Result<T, StepError> {
    if run.recorder.cancelled() {
        return Err(StepError::Interrupted);
    }
    run.recorder
        .pending(Pending {
            address: run.address.clone(),
            kind,
            ephemeral,
            lookup,
        })
        .await?;
    let made = match call.await {
        Ok(made) => made,
        Err(e) => {
            // A definite refusal made nothing: no pending entry to chase
            // (and nothing of another's to find by our name). A conflict
            // may be our own lost answer coming back on a retry: kept.
            let refused = e
                .api()
                .is_some_and(|a| (400..500).contains(&a.status) && !matches!(a.status, 409 | 429));
            if refused {
                run.recorder
                    .forget(std::slice::from_ref(run.address))
                    .await?;
            }
            return Err(failed(e));
        }
    };
    run.recorder.created(run.address, &id_of(&made)).await?;
    Ok(made)
}

/// Reads the images and snapshots the state holds, one call per kind for
/// the whole state, and reports, per address, their current attributes, or
/// `None` for what is gone.
pub async fn refresh(cloud: &Cloud, state: &State) -> Result<(Observed, Refreshed), Error> {
    let ids_of = |kinds: &[Kind]| -> Vec<String> {
        let ids: BTreeSet<String> = state
            .resources
            .iter()
            .filter(|r| kinds.contains(&r.kind))
            .filter_map(|r| r.id.clone())
            .collect();
        ids.into_iter().collect()
    };
    let image_ids = ids_of(&[
        Kind::Image,
        Kind::ImagePermissions,
        Kind::SnapshotPermissions,
        Kind::Tags,
    ]);
    let mut refreshed = Refreshed::default();
    if !image_ids.is_empty() {
        refreshed.images = cloud
            .client
            .read_all(&ReadImagesRequest {
                filters: Some(FiltersImage {
                    image_ids: Some(image_ids),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await?
            .into_iter()
            .map(|i| (i.image_id.clone(), i))
            .collect();
    }
    // The snapshots the state holds, and those of its images (their
    // settings are read from them).
    let mut snapshot_ids: BTreeSet<String> = ids_of(&[Kind::Snapshot]).into_iter().collect();
    snapshot_ids.extend(refreshed.images.values().flat_map(|i| i.snapshot_ids()));
    if !snapshot_ids.is_empty() {
        refreshed.snapshots = cloud
            .client
            .read_all(&ReadSnapshotsRequest {
                filters: Some(FiltersSnapshot {
                    snapshot_ids: Some(snapshot_ids.into_iter().collect()),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await?
            .into_iter()
            .map(|s| (s.snapshot_id.clone(), s))
            .collect();
    }
    let mut observed = Observed::new();
    for r in &state.resources {
        let Some(id) = &r.id else { continue };
        let image = || refreshed.images.get(id);
        let seen: Option<BTreeMap<String, Value>> = match r.kind {
            Kind::Image => image().map(image::attributes),
            Kind::Snapshot => refreshed.snapshots.get(id).map(snapshot::attributes),
            Kind::ImagePermissions => image().map(permissions::image_attributes),
            Kind::SnapshotPermissions => {
                let ids = permissions::recorded_snapshot_ids(r);
                let first = ids.first().and_then(|s| refreshed.snapshots.get(s));
                match (image(), first) {
                    (Some(_), Some(s)) => Some(permissions::snapshot_attributes(s, &ids)),
                    (Some(_), None) if ids.is_empty() => Some(r.attributes.clone()),
                    _ => None,
                }
            }
            Kind::Tags => image().map(|i| {
                let snaps: Vec<&Snapshot> = i
                    .snapshot_ids()
                    .iter()
                    .filter_map(|s| refreshed.snapshots.get(s))
                    .collect();
                tags::attributes(i, &snaps)
            }),
            _ => continue,
        };
        observed.insert(r.address.clone(), seen);
    }
    Ok((observed, refreshed))
}

/// Deletes what the state holds, kind by kind, each kind in its module.
pub struct OutscaleDestroyer {
    pub cloud: Arc<Cloud>,
    pub lineage: String,
    /// VMs this destroyer saw terminated: their volumes marked to go with
    /// them are gone without asking.
    terminated: Mutex<HashSet<String>>,
}

impl OutscaleDestroyer {
    pub fn new(cloud: Arc<Cloud>, lineage: String) -> OutscaleDestroyer {
        OutscaleDestroyer {
            cloud,
            lineage,
            terminated: Mutex::new(HashSet::new()),
        }
    }

    pub(crate) fn saw_terminated(&self, vm_id: &str) {
        self.terminated
            .lock()
            .expect("terminated lock")
            .insert(vm_id.to_string());
    }

    pub(crate) fn was_terminated(&self, vm_id: &str) -> bool {
        self.terminated
            .lock()
            .expect("terminated lock")
            .contains(vm_id)
    }

    /// The id of a resource whose create answer may have been lost: by its
    /// ClientToken or name, or by the tags it was given.
    async fn find(&self, r: &ResourceState) -> Result<Option<String>, Error> {
        if let Some(id) = &r.id {
            return Ok(Some(id.clone()));
        }
        match r.kind {
            Kind::Vm => vm::find(&self.cloud, r).await,
            Kind::Keypair => keypair::find(&self.cloud, r).await,
            Kind::SecurityGroup => security_group::find(&self.cloud, r).await,
            Kind::Image => image::find(&self.cloud, r, &self.lineage).await,
            Kind::PublicIp => public_ip::find(&self.cloud, r, &self.lineage).await,
            _ => Ok(None),
        }
    }
}

/// A delete's error: a dependency error is worth trying again later.
pub(crate) fn destroy_error(e: Error) -> DestroyError {
    if e.api().is_some_and(|a| a.is_dependency()) {
        DestroyError::InUse(e.to_string())
    } else {
        DestroyError::Failed(e.to_string())
    }
}

/// Sends the delete of `id`; "no such resource" means it is gone, which is
/// what we want.
pub(crate) async fn delete<O: Operation>(
    cloud: &Cloud,
    request: O,
    id: &str,
) -> Result<Destroyed, DestroyError> {
    match cloud.client.call(&request).await {
        Ok(_) => Ok(Destroyed::Deleted(id.to_string())),
        Err(e) if e.is_not_found() => Ok(Destroyed::AlreadyGone),
        Err(e) => Err(destroy_error(e)),
    }
}

/// The id of the first resource a read returns: what a crashed run made,
/// found again by the name or token it was given.
pub(crate) async fn first_id<O: Paginated + Clone>(
    cloud: &Cloud,
    read: O,
    id_of: impl Fn(O::Item) -> Option<String>,
) -> Result<Option<String>, Error> {
    Ok(cloud
        .client
        .read_all(&read)
        .await?
        .into_iter()
        .find_map(id_of))
}

#[async_trait]
impl Destroyer for OutscaleDestroyer {
    async fn destroy(&self, r: &ResourceState) -> Result<Destroyed, DestroyError> {
        if r.kind.is_setting() || !r.kind.is_recorded() {
            return Ok(Destroyed::AlreadyGone);
        }
        let Some(id) = self.find(r).await.map_err(destroy_error)? else {
            return Ok(Destroyed::AlreadyGone);
        };
        self.cloud.tagger.forget(&id);
        match r.kind {
            Kind::Vm => vm::destroy(self, &id).await,
            Kind::Volume => volume::destroy(self, r, &id).await,
            Kind::Image => image::destroy(&self.cloud, &id).await,
            Kind::Snapshot => snapshot::destroy(&self.cloud, &id).await,
            Kind::SecurityGroup => security_group::destroy(&self.cloud, &id).await,
            Kind::Keypair => keypair::destroy(&self.cloud, &id).await,
            Kind::PublicIp => public_ip::destroy(&self.cloud, &id).await,
            _ => Ok(Destroyed::AlreadyGone),
        }
    }

    async fn dependents(
        &self,
        resources: &[ResourceState],
    ) -> Result<Vec<(Address, ResourceState)>, DestroyError> {
        let mut vms = Vec::new();
        let mut images = Vec::new();
        for r in resources {
            let target = match r.kind {
                Kind::Vm => &mut vms,
                Kind::Image => &mut images,
                _ => continue,
            };
            if let Some(id) = self.find(r).await.map_err(destroy_error)? {
                target.push((r, id));
            }
        }
        let mut found = vm::dependents(&self.cloud, &vms)
            .await
            .map_err(destroy_error)?;
        found.extend(
            image::dependents(&self.cloud, &images)
                .await
                .map_err(destroy_error)?,
        );
        Ok(found)
    }
}
