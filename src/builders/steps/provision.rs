//! Running the provisioners (behaviour C9, C12): on the build VM (which
//! address, which credential), or in the chroot of a mounted volume; then
//! the provisioners in template order.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;

use super::{BuildRun, Output};
use crate::builders::communicator;
use crate::graph::{Address, Kind, Lifetime, Node, Run, Step, StepError};
use crate::provision;
use crate::template::{CommConfig, Provisioner};

pub struct Provisioning {
    pub comm: CommConfig,
    /// `ssh_interface`, from the run options.
    pub ssh_interface: Option<String>,
    pub provisioners: Vec<Provisioner>,
    /// Scripts and uploads are read from here.
    pub template_dir: PathBuf,
    /// What `PACKER_BUILDER_TYPE` says, e.g. `outscale-bsu`.
    pub builder_type: &'static str,
}

/// Where the provisioners run.
pub enum Target {
    /// The VM of this node, over SSH, with the temporary keypair's key.
    Vm {
        vm: Address,
        keypair: Option<Address>,
    },
    /// The folder the volume is mounted on (the output of this node),
    /// through `command_wrapper`.
    Chroot { mount: Address, wrapper: String },
}

struct Provision {
    run: Arc<BuildRun>,
    target: Target,
    what: Provisioning,
}

pub fn node(run: &Arc<BuildRun>, target: Target, what: Provisioning) -> Node {
    let step = Provision {
        run: Arc::clone(run),
        target,
        what,
    };
    Node::new(
        &run.name,
        Kind::Provision,
        None,
        Lifetime::Step,
        Arc::new(step),
    )
}

impl Provision {
    /// Runs `provisioners` with the build's context (`build` is what
    /// `{{ build `Key` }}` answers): output streamed and masked, Ctrl-C
    /// honoured.
    async fn with_context(
        &self,
        run: &Run<'_>,
        build: std::collections::BTreeMap<String, String>,
        provisioners: impl AsyncFnOnce(&provision::Context<'_>) -> Result<(), String>,
    ) -> Result<(), StepError> {
        let w = &self.what;
        self.run
            .in_context(
                run,
                "provisioning",
                w.builder_type,
                &w.template_dir,
                build,
                provisioners,
            )
            .await?;
        if run.recorder.cancelled() {
            return Err(StepError::Interrupted(format!(
                "interrupted before {}",
                run.address
            )));
        }
        Ok(())
    }

    /// In the chroot at `mount`'s folder, as the chroot communicator does.
    async fn in_chroot(
        &self,
        run: &Run<'_>,
        mount: &Address,
        wrapper: &str,
    ) -> Result<(), StepError> {
        let Some(Output::Id(root)) = self.run.output(mount) else {
            return Err(StepError::Failed(format!("{mount} has not run")));
        };
        let session = provision::Session::Chroot(provision::chroot::Chroot {
            root: root.into(),
            wrapper: wrapper.to_string(),
        });
        let build = communicator::chroot_build_data(&self.run.vars);
        let provisioners = &self.what.provisioners;
        self.with_context(run, build, async |ctx| {
            provision::run(provisioners, Some(&session), ctx)
                .await
                .map_err(|e| e.to_string())
        })
        .await
    }
}

#[async_trait]
impl Step for Provision {
    async fn run(&self, run: &Run<'_>) -> Result<(), StepError> {
        let (vm_address, keypair) = match &self.target {
            Target::Vm { vm, keypair } => (vm, keypair),
            Target::Chroot { mount, wrapper } => return self.in_chroot(run, mount, wrapper).await,
        };
        let w = &self.what;
        let ssh = w.comm.communicator == "ssh";
        if !ssh && w.provisioners.is_empty() {
            return Ok(());
        }
        let cloud = &self.run.cloud;
        let mut vm = self.run.vm(vm_address)?;
        let mut host = None;
        if ssh {
            // A VM may show its address a little after it runs (C9).
            for attempt in 0..3 {
                host = communicator::host(&w.comm, w.ssh_interface.as_deref(), &vm);
                if host.is_some() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_secs(1 + attempt)).await;
                if let Some(current) = cloud
                    .waiters
                    .vm_now(&vm.vm_id)
                    .await
                    .map_err(|e| StepError::Failed(e.to_string()))?
                {
                    vm = current;
                }
            }
            if host.is_none() {
                return Err(StepError::Failed(format!(
                    "couldn't determine the address of {} (ssh_interface {:?})",
                    vm.vm_id, w.ssh_interface
                )));
            }
        }
        let temporary = match keypair {
            Some(address) => match self.run.output(address) {
                Some(Output::Keypair { private_key, .. }) => Some(private_key),
                _ => return Err(StepError::Failed(format!("{address} has not run"))),
            },
            None => None,
        };
        let settings = match &host {
            Some(h) => Some(
                communicator::settings(&w.comm, h.clone(), temporary.as_ref())
                    .map_err(StepError::Failed)?,
            ),
            None => None,
        };
        let clear = w.comm.ssh_clear_authorized_keys && temporary.is_some();
        let build = communicator::build_data(&vm, host.as_deref(), &w.comm, &self.run.vars);
        self.with_context(run, build, async |ctx| {
            communicator::provision(&w.comm, settings, clear, &w.provisioners, ctx).await
        })
        .await?;
        self.run.outputs.put(vm_address, Output::Vm(Box::new(vm)));
        Ok(())
    }
}
