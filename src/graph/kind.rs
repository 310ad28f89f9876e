//! What a node of the graph stands for.

use serde::{Deserialize, Serialize};

/// The kinds of nodes builders declare. The first ones are things osci makes
/// and records in the state; the others exist only in a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Keypair,
    SecurityGroup,
    PublicIp,
    Vm,
    Volume,
    /// The host-wide lock and the device name a chroot build chose with it.
    Device,
    /// A volume linked to the host at a device (its id is the volume's).
    Link,
    /// A mount on the host (its id is the mount folder).
    Mount,
    Image,
    Snapshot,
    /// Who may launch the image (its id is the image's).
    ImagePermissions,
    /// Who may create volumes from the image's snapshots.
    SnapshotPermissions,
    /// The tags of the image and its snapshots.
    Tags,
    /// The record that a build which keeps nothing (`skip_create_omi`) ran,
    /// with which inputs.
    Run,
    /// The source OMI, read at plan time.
    Source,
    /// The provisioners, run on the build VM.
    Provision,
    /// Stopping the build VM before it is captured.
    Stop,
    /// `pre_mount_commands` or `post_mount_commands`, run on the host.
    HostCommands,
    /// Host files copied into the chroot, and put back as they were.
    CopyFiles,
    /// The record that the post-processors ran on the OMI, with which
    /// options: they run again when either changes.
    PostProcess,
    /// An OMI `force_deregister` removes (not one the state holds).
    ForceDeregister,
    /// A snapshot `force_delete_snapshot` removes with its OMI.
    ForceDeleteSnapshot,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Keypair => "keypair",
            Kind::SecurityGroup => "security_group",
            Kind::PublicIp => "public_ip",
            Kind::Vm => "vm",
            Kind::Volume => "volume",
            Kind::Device => "device",
            Kind::Link => "link",
            Kind::Mount => "mount",
            Kind::Image => "image",
            Kind::Snapshot => "snapshot",
            Kind::ImagePermissions => "image_permissions",
            Kind::SnapshotPermissions => "snapshot_permissions",
            Kind::Tags => "tags",
            Kind::Run => "run",
            Kind::Source => "source",
            Kind::Provision => "provision",
            Kind::Stop => "stop",
            Kind::HostCommands => "host_commands",
            Kind::CopyFiles => "copy_files",
            Kind::PostProcess => "post_process",
            Kind::ForceDeregister => "force_deregister",
            Kind::ForceDeleteSnapshot => "force_delete_snapshot",
        }
    }

    /// Whether the state records nodes of this kind.
    pub fn is_recorded(self) -> bool {
        !matches!(
            self,
            Kind::Source
                | Kind::Provision
                | Kind::Stop
                | Kind::HostCommands
                | Kind::CopyFiles
                | Kind::ForceDeregister
                | Kind::ForceDeleteSnapshot
        )
    }

    /// Settings of another resource, or records, rather than resources of
    /// their own: destroying them means nothing once their owner is gone.
    pub fn is_setting(self) -> bool {
        matches!(
            self,
            Kind::ImagePermissions
                | Kind::SnapshotPermissions
                | Kind::Tags
                | Kind::Run
                | Kind::PostProcess
        )
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
