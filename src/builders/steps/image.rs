//! Images: the OMI a build registers (behaviour C15), captured from the
//! stopped VM, or registered from a capture with `omi_block_device_mappings`
//! laid over it (the plugin registered from the mappings alone and lost the
//! provisioned disks); and the ephemeral capture itself.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value, json};

use super::{BuildRun, Output, create, delete, destroy_error};
use crate::builders::cloud::{Cloud, failed, foreign, ownership_tags, state_reporter, waiting};
use crate::graph::{
    Action, Address, DestroyError, Destroyed, Event, Kind, Lifetime, Node, Run, Step, StepError,
};
use crate::oapi::Error;
use crate::oapi::model::*;
use crate::state::{Lookup, ResourceState, Status};
use crate::template::BlockDevice;

/// The key of the ephemeral image captured before registering the OMI with
/// `omi_block_device_mappings`.
pub const CAPTURE: &str = "capture";

/// An image's attributes as the state keeps them.
pub fn attributes(image: &Image) -> BTreeMap<String, Value> {
    BTreeMap::from([
        ("name".to_string(), json!(image.image_name)),
        (
            "description".to_string(),
            json!(image.description.clone().unwrap_or_default()),
        ),
        ("id".to_string(), json!(image.image_id)),
        ("state".to_string(), json!(image.state)),
    ])
}

/// What the OMI is made from.
pub enum From {
    /// The stopped VM of this node.
    Vm(Address),
    /// The capture image of this node, with the OMI's mappings laid over.
    Capture(Address),
    /// Snapshots taken of volumes (the chroot and bsusurrogate builders'),
    /// laid over `base`'s mappings.
    Snapshots {
        taken: Vec<Taken>,
        /// The OMI's root device; `None`: `base`'s.
        root_device: Option<String>,
        base: Base,
    },
}

/// A device of the OMI made from the snapshot a node took.
pub struct Taken {
    /// Its name in the OMI.
    pub device: String,
    pub snapshot: Address,
    /// At least this size.
    pub volume_size: Option<i64>,
    pub volume_type: Option<String>,
    /// `io1` only.
    pub iops: Option<i64>,
    pub delete_on_vm_deletion: Option<bool>,
}

/// The mappings an OMI registered from snapshots takes the others from.
pub enum Base {
    /// The source OMI, this account's.
    Source(Box<Image>),
    /// The copy of the source OMI made by this node.
    Copy(Address),
    /// The template's mappings, for an architecture.
    Mappings {
        mappings: Vec<BlockDevice>,
        architecture: String,
    },
}

/// How a device's snapshot made by CreateImage is recorded: under which
/// key, whether ephemeral, with which status; `None`: not at all.
type SnapshotRecord<'a> = dyn Fn(&str) -> Option<(String, bool, Status)> + Sync + 'a;

/// The key of the ephemeral copy of a source OMI another account owns.
pub const SOURCE_COPY: &str = "source_copy";

/// The key of the snapshot of `device` a capture makes: the copy of a
/// source OMI keeps its snapshots apart from those the build takes.
fn snapshot_key(captured: &Captured, device: &str) -> String {
    match captured {
        Captured::Vm(_) => device.to_string(),
        Captured::Image { .. } => copy_snapshot_key(device),
    }
}

/// The key of the snapshot of `device` in the copy of a source OMI.
pub fn copy_snapshot_key(device: &str) -> String {
    format!("{SOURCE_COPY}{device}")
}

/// The OMI's options.
pub struct Omi {
    pub name: String,
    /// Rendered.
    pub description: String,
    pub boot_modes: Vec<String>,
    pub product_codes: Option<Vec<String>>,
    pub root_device_name: Option<String>,
    pub mappings: Vec<BlockDevice>,
}

struct Make {
    run: Arc<BuildRun>,
    from: From,
    omi: Omi,
}

pub fn node(run: &Arc<BuildRun>, from: From, omi: Omi) -> Node {
    let (name, description) = (omi.name.clone(), omi.description.clone());
    let step = Make {
        run: Arc::clone(run),
        from,
        omi,
    };
    let mut node = Node::new(
        &run.name,
        Kind::Image,
        None,
        Lifetime::Durable,
        Arc::new(step),
    )
    .with("description", Some(json!(description)))
    .with("id", None)
    .with("name", Some(json!(name)));
    node.digest = Some(run.digest.clone());
    node
}

/// What a capture copies.
enum Captured {
    Vm(Address),
    /// An OMI of another account (which cannot make volumes here), in
    /// this region.
    Image {
        id: String,
        region: String,
    },
}

struct Capture {
    run: Arc<BuildRun>,
    captured: Captured,
    omi_name: String,
    boot_modes: Vec<String>,
    product_codes: Option<Vec<String>>,
    /// The captured devices the OMI keeps; the others' snapshots go with
    /// the capture.
    kept: BTreeSet<String>,
}

/// The node of the capture an OMI with `omi_block_device_mappings` is
/// registered from.
pub fn capture_node(run: &Arc<BuildRun>, vm: &Address, omi: &Omi, kept: BTreeSet<String>) -> Node {
    let step = Capture {
        run: Arc::clone(run),
        captured: Captured::Vm(vm.clone()),
        omi_name: omi.name.clone(),
        boot_modes: omi.boot_modes.clone(),
        product_codes: omi.product_codes.clone(),
        kept,
    };
    Node::new(
        &run.name,
        Kind::Image,
        Some(CAPTURE),
        Lifetime::Ephemeral,
        Arc::new(step),
    )
    .with("id", None)
}

/// The node of the copy of `source`, an OMI of another account, that a
/// chroot build makes its volume from (behaviour §6): the copy's snapshot
/// of `root` goes with it, the others are the OMI's, which keeps them.
pub fn copy_node(run: &Arc<BuildRun>, source: &Image, root: &str, region: &str) -> Node {
    let kept = source
        .block_device_mappings
        .iter()
        .filter_map(|m| m.device_name.clone())
        .filter(|d| d != root)
        .collect();
    let step = Capture {
        run: Arc::clone(run),
        captured: Captured::Image {
            id: source.image_id.clone(),
            region: region.to_string(),
        },
        omi_name: source.image_name.clone(),
        boot_modes: Vec::new(),
        product_codes: None,
        kept,
    };
    Node::new(
        &run.name,
        Kind::Image,
        Some(SOURCE_COPY),
        Lifetime::Ephemeral,
        Arc::new(step),
    )
    .with("source_omi", Some(json!(source.image_id)))
}

/// A unique name for the capture image, within OUTSCALE's 128 characters.
fn capture_name(omi_name: &str) -> String {
    let suffix = format!(
        "-capture-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let keep = omi_name
        .char_indices()
        .map(|(i, c)| i + c.len_utf8())
        .take_while(|end| end + suffix.len() <= 128)
        .last()
        .unwrap_or(0);
    format!("{}{suffix}", &omi_name[..keep])
}

/// Creates an image and waits for it; its snapshots are recorded as soon
/// as CreateImage names them, so a crash during the wait finds them.
/// `snapshot` says how each device's snapshot is recorded: under which key,
/// whether ephemeral, with which status (`None`: not at all, it is not
/// this build's).
async fn make_image(
    run: &Run<'_>,
    build: &BuildRun,
    ephemeral: bool,
    request: CreateImageRequest,
    snapshot: &SnapshotRecord<'_>,
) -> Result<Image, StepError> {
    let cloud = &build.cloud;
    let name = request.image_name.clone().unwrap_or_default();
    let first: Image = create(
        run,
        Kind::Image,
        ephemeral,
        Lookup::name(name),
        async { Ok(cloud.client.call(&request).await?.image) },
        |i: &Image| i.image_id.clone(),
    )
    .await?;
    // Only what the build keeps is tagged: not a capture (found by its
    // name and removed by this apply) nor a snapshot the template named.
    let (snapshots, kept) = record_snapshots(run, build, &first, snapshot).await?;
    let mut ids = kept;
    if !ephemeral {
        ids.push(first.image_id.clone());
    }
    let lineage = run.recorder.lineage();
    // The tags wait for the next moment the build sends tags.
    cloud
        .tagger
        .add(&build.name, &ids, &ownership_tags(&lineage, &build.name));
    let report = state_reporter(run.recorder, run.address);
    let image = waiting(
        run.recorder,
        run.address,
        "available",
        cloud
            .waiters
            .image_reporting(&first.image_id, &snapshots, &cloud.wait, &report),
    )
    .await?;
    let (_, late) = record_snapshots(run, build, &image, snapshot).await?;
    cloud
        .tagger
        .add(&build.name, &late, &ownership_tags(&lineage, &build.name));
    Ok(image)
}

/// Records the snapshots of `image` the state lacks; answers their ids,
/// and those of the ones the build keeps.
async fn record_snapshots(
    run: &Run<'_>,
    build: &BuildRun,
    image: &Image,
    snapshot: &SnapshotRecord<'_>,
) -> Result<(Vec<String>, Vec<String>), StepError> {
    let mut entries = Vec::new();
    for m in &image.block_device_mappings {
        let (Some(device), Some(bsu)) = (m.device_name.as_deref(), m.bsu.as_ref()) else {
            continue;
        };
        let (Some(id), Some((key, ephemeral, status))) =
            (bsu.snapshot_id.clone(), snapshot(device))
        else {
            continue;
        };
        let address = build.address(Kind::Snapshot, Some(&key));
        if run.recorder.get(&address).and_then(|r| r.id).as_deref() == Some(id.as_str()) {
            continue;
        }
        entries.push(ResourceState {
            input_digest: (!ephemeral).then(|| build.digest.clone()),
            attributes: BTreeMap::from([
                ("id".to_string(), json!(id)),
                ("volume_size".to_string(), json!(bsu.volume_size)),
            ]),
            ..ResourceState::made(address, &build.name, Kind::Snapshot, ephemeral, id, status)
        });
    }
    let ids = entries.iter().filter_map(|e| e.id.clone()).collect();
    let kept = entries
        .iter()
        .filter(|e| !e.ephemeral)
        .filter_map(|e| e.id.clone())
        .collect();
    if !entries.is_empty() {
        run.recorder.made_with(run.address, entries).await?;
    }
    Ok((ids, kept))
}

impl Make {
    /// The previous OMI makes room for the new one: on replace it was
    /// removed by force_deregister, or it stays in the account, no longer
    /// managed, as the plan said; its entries leave the state.
    async fn retire(&self, run: &Run<'_>) -> Result<(), StepError> {
        let Some(previous) = run.recorder.get(run.address) else {
            return Ok(());
        };
        // The previous artifact: this address, its settings, and its
        // snapshots (as the refresh saw the OMI; else those that were
        // complete, which a capture's new ones are not yet).
        let previous_snapshots: Option<Vec<String>> = previous
            .id
            .as_ref()
            .and_then(|id| self.run.refreshed.images.get(id))
            .map(|i| i.snapshot_ids());
        let old: Vec<ResourceState> = run
            .recorder
            .build_entries(&self.run.name)
            .into_iter()
            .filter(|r| !r.ephemeral)
            .filter(|r| match r.kind {
                Kind::Snapshot => match (&previous_snapshots, &r.id) {
                    (Some(ids), Some(id)) => ids.contains(id),
                    _ => r.status == Status::Created,
                },
                Kind::Image => r.address == *run.address,
                k => k.is_setting(),
            })
            .collect();
        if let Some(id) = previous
            .id
            .as_ref()
            .filter(|_| run.action == Action::Replace)
        {
            let removed = self
                .run
                .deregistered
                .lock()
                .expect("deregistered lock")
                .contains(id);
            if !removed {
                // Its ownership tags go too: nothing osci does later (a
                // destroy, a search after a crash) takes it for its own.
                let ids: Vec<String> = old
                    .iter()
                    .filter(|r| matches!(r.kind, Kind::Image | Kind::Snapshot))
                    .filter_map(|r| r.id.clone())
                    .collect();
                self.run
                    .cloud
                    .client
                    .call(&DeleteTagsRequest {
                        resource_ids: ids,
                        tags: ownership_tags(&run.recorder.lineage(), &self.run.name),
                        ..Default::default()
                    })
                    .await
                    .map_err(failed)?;
                run.recorder.event(Event::Note {
                    build: self.run.name.clone(),
                    text: format!(
                        "the previous OMI {id} is kept in the account and no longer managed \
                         (force_deregister removes an OMI only when the new one takes its name)"
                    ),
                });
            }
        }
        let addresses: Vec<Address> = old.into_iter().map(|r| r.address).collect();
        run.recorder.forget(&addresses).await?;
        Ok(())
    }

    fn request(&self) -> Result<CreateImageRequest, StepError> {
        let omi = &self.omi;
        let common = CreateImageRequest {
            image_name: Some(omi.name.clone()),
            description: (!omi.description.is_empty()).then(|| omi.description.clone()),
            boot_modes: (!omi.boot_modes.is_empty()).then(|| omi.boot_modes.clone()),
            product_codes: omi.product_codes.clone(),
            ..Default::default()
        };
        Ok(match &self.from {
            From::Vm(vm) => CreateImageRequest {
                vm_id: Some(self.run.vm(vm)?.vm_id),
                no_reboot: Some(true),
                ..common
            },
            From::Capture(capture) => {
                let Some(Output::Image(captured)) = self.run.output(capture) else {
                    return Err(StepError::Failed(format!("{capture} has not run")));
                };
                CreateImageRequest {
                    root_device_name: omi.root_device_name.clone(),
                    block_device_mappings: Some(omi_mappings(&captured, &omi.mappings)),
                    architecture: captured.architecture.clone(),
                    ..common
                }
            }
            From::Snapshots {
                taken,
                root_device,
                base,
            } => {
                let (mut mappings, base_root, architecture, modes) = match base {
                    Base::Source(image) => (
                        image.block_device_mappings.clone(),
                        image.root_device_name.clone(),
                        image.architecture.clone(),
                        image.boot_modes.clone(),
                    ),
                    Base::Copy(copy) => {
                        let Some(Output::Image(image)) = self.run.output(copy) else {
                            return Err(StepError::Failed(format!("{copy} has not run")));
                        };
                        (
                            image.block_device_mappings.clone(),
                            image.root_device_name.clone(),
                            image.architecture.clone(),
                            image.boot_modes.clone(),
                        )
                    }
                    Base::Mappings {
                        mappings,
                        architecture,
                    } => (
                        omi_mappings(&Image::default(), mappings),
                        omi.root_device_name.clone(),
                        Some(architecture.clone()),
                        Vec::new(),
                    ),
                };
                for t in taken {
                    let Some(Output::Id(snapshot_id)) = self.run.output(&t.snapshot) else {
                        return Err(StepError::Failed(format!("{} has not run", t.snapshot)));
                    };
                    let at = match mappings
                        .iter()
                        .position(|m| m.device_name.as_deref() == Some(t.device.as_str()))
                    {
                        Some(at) => at,
                        None => {
                            mappings.push(BlockDeviceMappingImage {
                                device_name: Some(t.device.clone()),
                                ..Default::default()
                            });
                            mappings.len() - 1
                        }
                    };
                    let bsu = mappings[at].bsu.get_or_insert_with(BsuToCreate::default);
                    bsu.snapshot_id = Some(snapshot_id);
                    bsu.volume_size = match (bsu.volume_size, t.volume_size) {
                        (Some(a), Some(b)) => Some(a.max(b)),
                        (a, b) => a.or(b),
                    };
                    if t.volume_type.is_some() {
                        bsu.volume_type = t.volume_type.clone();
                    }
                    if t.iops.is_some() {
                        bsu.iops = t.iops;
                    }
                    bsu.iops = bsu
                        .iops
                        .filter(|_| bsu.volume_type.as_deref() == Some("io1"));
                    if t.delete_on_vm_deletion.is_some() {
                        bsu.delete_on_vm_deletion = t.delete_on_vm_deletion;
                    }
                }
                let root_device = root_device
                    .clone()
                    .or(base_root)
                    .ok_or_else(|| StepError::Failed("the OMI has no root device name".into()))?;
                CreateImageRequest {
                    root_device_name: Some(root_device),
                    block_device_mappings: Some(mappings),
                    architecture,
                    boot_modes: common
                        .boot_modes
                        .clone()
                        .or((!modes.is_empty()).then_some(modes)),
                    ..common
                }
            }
        })
    }

    /// The OMI and the snapshots of it this build made are complete, in one
    /// write: no crash leaves the one complete and the others half-made.
    async fn complete(&self, run: &Run<'_>, image: &Image) -> Result<(), StepError> {
        let digest = Some(self.run.digest.clone());
        let ids = image.snapshot_ids();
        let mut entries: Vec<ResourceState> = run
            .recorder
            .build_entries(&self.run.name)
            .into_iter()
            .filter(|r| r.kind == Kind::Snapshot && !r.ephemeral)
            .filter(|r| r.id.as_ref().is_some_and(|id| ids.contains(id)))
            .map(|r| ResourceState {
                status: Status::Created,
                input_digest: digest.clone(),
                ..r
            })
            .collect();
        let recorded = run.recorder.get(run.address).ok_or_else(|| {
            StepError::Failed(format!("{} left the state while being made", run.address))
        })?;
        entries.push(ResourceState {
            attributes: attributes(image),
            input_digest: digest,
            status: Status::Created,
            ..recorded
        });
        run.recorder.settled(entries).await?;
        Ok(())
    }

    /// The description, the one attribute an OMI changes in place.
    async fn update(&self, run: &Run<'_>) -> Result<(), StepError> {
        let recorded = run.recorder.get(run.address);
        let image = self.run.image(run.address, recorded.as_ref())?;
        if image.description.clone().unwrap_or_default() != self.omi.description {
            self.run
                .cloud
                .client
                .call(&UpdateImageRequest {
                    image_id: image.image_id.clone(),
                    description: Some(self.omi.description.clone()),
                    ..Default::default()
                })
                .await
                .map_err(failed)?;
        }
        let image = Image {
            description: Some(self.omi.description.clone()),
            ..image
        };
        run.recorder
            .update(run.address, attributes(&image), None, Status::Created)
            .await?;
        self.run
            .outputs
            .put(run.address, Output::Image(Box::new(image)));
        Ok(())
    }
}

#[async_trait]
impl Step for Make {
    async fn run(&self, run: &Run<'_>) -> Result<(), StepError> {
        if run.action == Action::Update {
            return self.update(run).await;
        }
        if run.recorder.cancelled() {
            return Err(StepError::Interrupted(format!(
                "interrupted before {}",
                run.address
            )));
        }
        self.retire(run).await?;
        let request = self.request()?;
        let from_vm = matches!(self.from, From::Vm(_));
        // Snapshots of the captured VM are this OMI's; an OMI registered
        // from a capture uses the capture's, recorded by it.
        let snapshot = |device: &str| from_vm.then(|| (device.to_string(), false, Status::Tainted));
        let image = make_image(run, &self.run, false, request, &snapshot).await?;
        self.complete(run, &image).await?;
        self.run
            .outputs
            .put(run.address, Output::Image(Box::new(image)));
        Ok(())
    }
}

#[async_trait]
impl Step for Capture {
    async fn run(&self, run: &Run<'_>) -> Result<(), StepError> {
        if run.recorder.cancelled() {
            return Err(StepError::Interrupted(format!(
                "interrupted before {}",
                run.address
            )));
        }
        let common = CreateImageRequest {
            image_name: Some(capture_name(&self.omi_name)),
            boot_modes: (!self.boot_modes.is_empty()).then(|| self.boot_modes.clone()),
            product_codes: self.product_codes.clone(),
            ..Default::default()
        };
        let request = match &self.captured {
            Captured::Vm(vm) => CreateImageRequest {
                vm_id: Some(self.run.vm(vm)?.vm_id),
                no_reboot: Some(true),
                ..common
            },
            Captured::Image { id, region } => CreateImageRequest {
                source_image_id: Some(id.clone()),
                source_region_name: Some(region.clone()),
                ..common
            },
        };
        // What the OMI keeps becomes the OMI's; the rest goes with the capture.
        let snapshot = |device: &str| {
            let key = snapshot_key(&self.captured, device);
            Some(if self.kept.contains(device) {
                (key, false, Status::Tainted)
            } else {
                (key, true, Status::Created)
            })
        };
        let image = make_image(run, &self.run, true, request, &snapshot).await?;
        self.run
            .outputs
            .put(run.address, Output::Image(Box::new(image)));
        Ok(())
    }
}

/// The OMI's mappings: the captured ones, with `omi_block_device_mappings`
/// laid over them by device name (`no_device` drops one).
fn omi_mappings(captured: &Image, overlay: &[BlockDevice]) -> Vec<BlockDeviceMappingImage> {
    let mut mappings: BTreeMap<String, BlockDeviceMappingImage> = captured
        .block_device_mappings
        .iter()
        .filter_map(|m| Some((m.device_name.clone()?, m.clone())))
        .collect();
    for m in overlay {
        if m.no_device {
            mappings.remove(&m.device_name);
            continue;
        }
        let entry =
            mappings
                .entry(m.device_name.clone())
                .or_insert_with(|| BlockDeviceMappingImage {
                    device_name: Some(m.device_name.clone()),
                    ..Default::default()
                });
        if m.virtual_name.is_some() {
            entry.virtual_device_name = m.virtual_name.clone();
        }
        let bsu = entry.bsu.get_or_insert_with(BsuToCreate::default);
        if m.snapshot_id.is_some() {
            bsu.snapshot_id = m.snapshot_id.clone();
        }
        if let Some(size) = m.volume_size.filter(|s| *s > 0) {
            bsu.volume_size = Some(size);
        }
        if m.volume_type.is_some() {
            bsu.volume_type = m.volume_type.clone();
        }
        bsu.iops = m.iops.filter(|_| bsu.volume_type.as_deref() == Some("io1"));
        // Unlike the plugin (false), what a VM launched from the OMI gets
        // goes with it unless the template keeps it.
        bsu.delete_on_vm_deletion = Some(m.delete_on_vm_deletion.unwrap_or(true));
    }
    mappings.into_values().collect()
}

/// The captured devices an OMI registered with `overlay` keeps as its own:
/// not dropped (`no_device`) and not replaced by a snapshot of the user's.
pub fn kept_devices(captured: &[String], overlay: &[BlockDevice]) -> BTreeSet<String> {
    captured
        .iter()
        .filter(|d| {
            !overlay
                .iter()
                .any(|m| m.device_name == **d && (m.no_device || m.snapshot_id.is_some()))
        })
        .cloned()
        .collect()
}

/// What `omi_block_device_mappings` asks that cannot be done, found at plan
/// time: a new device needs a snapshot, and the root must be one of the
/// OMI's devices.
pub fn check_mappings(
    captured: &[String],
    overlay: &[BlockDevice],
    root_device_name: Option<&str>,
) -> Result<(), String> {
    if overlay.is_empty() {
        return Ok(());
    }
    let mut devices: BTreeSet<String> = captured.iter().cloned().collect();
    for (i, m) in overlay.iter().enumerate() {
        if m.no_device {
            devices.remove(&m.device_name);
        } else if m.snapshot_id.is_none() && !devices.contains(&m.device_name) {
            return Err(format!(
                "omi_block_device_mappings[{i}] ({}): the VM has no such device to capture; give \
                 snapshot_id, or add the device to launch_block_device_mappings",
                m.device_name
            ));
        } else {
            devices.insert(m.device_name.clone());
        }
    }
    let root = root_device_name.unwrap_or_default();
    if !devices.contains(root) {
        return Err(format!(
            "root_device_name \"{root}\" is not one of the OMI's devices ({})",
            devices.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    Ok(())
}

/// An image whose CreateImage answer was lost, by its name, in this
/// account, unless another state's tags claim it.
pub async fn find(
    cloud: &Cloud,
    r: &ResourceState,
    lineage: &str,
) -> Result<Option<String>, Error> {
    let Some(name) = &r.lookup.name else {
        return Ok(None);
    };
    Ok(cloud
        .client
        .read_all(&ReadImagesRequest {
            filters: Some(FiltersImage {
                image_names: Some(vec![name.clone()]),
                account_ids: Some(vec![cloud.account_id.clone()]),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await?
        .into_iter()
        .find(|i| i.image_name == *name && !foreign(&i.tags, lineage))
        .map(|i| i.image_id))
}

pub async fn destroy(cloud: &Cloud, id: &str) -> Result<Destroyed, DestroyError> {
    // Never an image of another account, whatever the state says.
    match cloud.waiters.image_now(id).await.map_err(destroy_error)? {
        None => Ok(Destroyed::AlreadyGone),
        Some(i) if i.account_id != cloud.account_id => Err(DestroyError::Failed(format!(
            "image {id} belongs to account {}, not to {}: left alone",
            i.account_id, cloud.account_id
        ))),
        Some(_) => {
            let request = DeleteImageRequest {
                image_id: id.to_string(),
                ..Default::default()
            };
            delete(cloud, request, id).await
        }
    }
}

/// An OUTSCALE date, comparable whatever its precision.
fn parse_date(date: &str) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(date, &time::format_description::well_known::Rfc3339).ok()
}

/// The snapshots CreateImage made for these images, which a run stopped
/// before recording them leaves known only through their image. Snapshots
/// older than their image were not made by it (a `snapshot_id` of the
/// template, or a capture's that an OMI was registered from); another
/// account's never are.
pub async fn dependents(
    cloud: &Cloud,
    images: &[(&ResourceState, String)],
) -> Result<Vec<(Address, ResourceState)>, Error> {
    if images.is_empty() {
        return Ok(Vec::new());
    }
    let found = cloud
        .client
        .read_all(&ReadImagesRequest {
            filters: Some(FiltersImage {
                image_ids: Some(images.iter().map(|(_, id)| id.clone()).collect()),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await?;
    let own: Vec<&Image> = found
        .iter()
        .filter(|i| i.account_id == cloud.account_id)
        .collect();
    let snapshot_ids: Vec<String> = own.iter().flat_map(|i| i.snapshot_ids()).collect();
    if snapshot_ids.is_empty() {
        return Ok(Vec::new());
    }
    let snapshots = cloud
        .client
        .read_all(&ReadSnapshotsRequest {
            filters: Some(FiltersSnapshot {
                snapshot_ids: Some(snapshot_ids),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await?;
    let mut out = Vec::new();
    for (r, id) in images {
        let Some(image) = own.iter().find(|i| i.image_id == *id) else {
            continue;
        };
        let image_date = image.creation_date.as_deref().and_then(parse_date);
        for m in &image.block_device_mappings {
            let (Some(device), Some(snapshot_id)) = (
                m.device_name.as_deref(),
                m.bsu.as_ref().and_then(|b| b.snapshot_id.as_ref()),
            ) else {
                continue;
            };
            let made_with = snapshots.iter().any(|s| {
                let date = s.creation_date.as_deref().and_then(parse_date);
                s.snapshot_id == *snapshot_id
                    && s.account_id == cloud.account_id
                    && matches!((date, image_date), (Some(s), Some(i)) if s >= i)
            });
            if made_with {
                let key = match r.address.key().as_deref() {
                    Some(SOURCE_COPY) => copy_snapshot_key(device),
                    _ => device.to_string(),
                };
                out.push((
                    r.address.clone(),
                    ResourceState::made(
                        Address::new(&r.build, Kind::Snapshot, Some(&key)),
                        &r.build,
                        Kind::Snapshot,
                        r.ephemeral,
                        snapshot_id.clone(),
                        Status::Tainted,
                    ),
                ));
            }
        }
    }
    Ok(out)
}
