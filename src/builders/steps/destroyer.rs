//! Removing what the state holds, whatever the builder that made it: each
//! kind's module finds and deletes its own.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::{
    destroy_error, image, keypair, link, mount, public_ip, security_group, snapshot, vm, volume,
};
use crate::builders::cloud::Cloud;
use crate::builders::host;
use crate::graph::{Address, DestroyError, Destroyed, Destroyer, Kind};
use crate::oapi::Error;
use crate::state::ResourceState;

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
            Kind::Volume => volume::find(&self.cloud, r).await,
            Kind::Snapshot => snapshot::find(&self.cloud, r).await,
            Kind::Link => link::find(&self.cloud, r).await,
            Kind::Mount => Ok(mount::find(r)),
            _ => Ok(None),
        }
    }
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
            Kind::Link => link::destroy(&self.cloud, &id).await,
            Kind::Mount => mount::destroy(r, &id).await,
            Kind::Device => {
                // The lock, if this process holds it; the device name goes
                // with the link.
                host::unlock(r.address.as_str());
                Ok(Destroyed::Deleted(id))
            }
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
