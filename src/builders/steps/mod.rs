//! One module per kind of node. Each knows, for every builder, how to make
//! its kind (bracketed by the write-ahead `pending` record), find it again
//! after a crash (name, ClientToken, tags), read what it looks like now,
//! change it in place, and destroy it. Builders only arrange these steps.
//!
//! Values known only once the apply runs (ids, the VM, the temporary private
//! key) pass from node to node through [`Outputs`], in memory: they are
//! never written anywhere.

pub mod copy_files;
pub mod deregister;
mod destroyer;
pub mod device;
pub mod host_commands;
pub mod image;
pub mod keypair;
pub mod link;
pub mod mount;
pub mod permissions;
pub mod post_process;
pub mod provision;
pub mod public_ip;
mod refresh;
pub mod run;
pub mod security_group;
mod settings;
pub mod snapshot;
pub mod source;
pub mod stop;
pub mod tags;
pub mod vm;
pub mod volume;

pub use destroyer::OutscaleDestroyer;
pub use refresh::refresh;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};

use super::cloud::{Cloud, failed};
use crate::graph::{Address, DestroyError, Destroyed, Kind, Pending, Run, StepError};
use crate::oapi::model::{Image, Snapshot, Vm};
use crate::oapi::{Error, Operation, Paginated};
use crate::secret::Secret;
use crate::state::{Lookup, ResourceState};
use crate::template::{BuildVars, render_build_vars};

/// A value one node hands to those after it.
#[derive(Clone)]
pub enum Output {
    /// A security group, public IP or volume; a device or mount folder.
    Id(String),
    /// The temporary keypair: its private key lives here and nowhere else.
    Keypair {
        name: String,
        private_key: Secret,
    },
    Vm(Box<Vm>),
    Image(Box<Image>),
    /// What the image had where `copy_files` copied host files.
    Files(Arc<Vec<(std::path::PathBuf, copy_files::Original)>>),
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

    /// Runs `work` (provisioners, post-processors) with this build's
    /// context: `build` is what `{{ build `Key` }}` answers, output is
    /// streamed as events with sensitive values masked, Ctrl-C is
    /// honoured; a failure reads `WHAT failed: …`, masked.
    pub async fn in_context(
        &self,
        run: &Run<'_>,
        what: &str,
        builder_type: &str,
        base_dir: &std::path::Path,
        build: BTreeMap<String, String>,
        work: impl AsyncFnOnce(&crate::provision::Context<'_>) -> Result<(), String>,
    ) -> Result<(), StepError> {
        let output = |line: &str| {
            run.recorder.event(crate::graph::Event::Output {
                build: self.name.clone(),
                line: self.mask(line),
            })
        };
        let cancelled = || run.recorder.cancelled();
        let ctx = crate::provision::Context {
            build_name: &self.name,
            builder_type,
            build,
            base_dir,
            output: &output,
            cancelled: &cancelled,
        };
        work(&ctx)
            .await
            .map_err(|e| StepError::Failed(self.mask(&format!("{what} failed: {e}"))))
    }

    /// `line` with every sensitive value replaced, as Packer does.
    pub fn mask(&self, line: &str) -> String {
        crate::secret::mask(line, self.sensitive.iter().map(Secret::expose))
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
        return Err(StepError::Interrupted(format!(
            "interrupted before {}",
            run.address
        )));
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
            // A definite refusal made nothing: no pending entry to chase,
            // and nothing of another's to find by our name. A conflict is
            // one, unless an earlier attempt got no answer: then it may be
            // that attempt's resource, found again by its name.
            let refused = e.api().is_some_and(|a| {
                (400..500).contains(&a.status)
                    && a.status != 429
                    && !(a.status == 409 && a.after_unanswered)
            });
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
