//! The `outscale-bsuvolume` builder (behaviour §1.3), as a declaration: the
//! bsu builder's VM, launched with `bsu_volumes`, provisioned and stopped;
//! the VM goes and the volumes stay, tagged, as the build's durable
//! resources. The plan shows them (`~` for tags, `-/+` when what shapes
//! their content changes), and `destroy` deletes them.

use std::collections::BTreeMap;

use serde_json::json;

use super::artifact::{self, Work};
use super::bsu::Bsu;
use super::steps::run;
use super::{Builder, Declare, Declared, launch};
use crate::graph::Graph;
use crate::secret::Secret;
use crate::template::{Build, OmiConfig, RunConfig, VolumeConfig};

/// A bsuvolume build, checked: what osci cannot honour was refused.
pub struct BsuVolume {
    config: VolumeConfig,
    /// The bsu build it extends, for its checks, options and work.
    bsu: Bsu,
}

impl BsuVolume {
    pub fn prepare(
        build: &Build,
        config: &VolumeConfig,
        sensitive: &[Secret],
        region: &str,
    ) -> Result<BsuVolume, String> {
        if let Some(p) = build.post_processors.first() {
            return Err(format!(
                "{} ({}): a bsuvolume build makes volumes, not an OMI to post-process",
                p.at, p.kind
            ));
        }
        Ok(BsuVolume {
            bsu: Bsu::prepare(build, &config.bsu, sensitive, region)?,
            config: config.clone(),
        })
    }

    fn work(&self) -> &Work {
        self.bsu.work()
    }
}

impl Builder for BsuVolume {
    // The VM, its source and its network are the bsu build's.
    fn name(&self) -> &str {
        self.bsu.name()
    }

    fn source(&self) -> Option<&RunConfig> {
        self.bsu.source()
    }

    fn network(&self) -> Option<&RunConfig> {
        self.bsu.network()
    }

    fn omi(&self) -> Option<&OmiConfig> {
        None
    }

    fn named_snapshots(&self) -> Vec<String> {
        Vec::new()
    }

    fn declare(&self, input: Declare<'_>, graph: &mut Graph) -> Result<Declared, String> {
        let c = &self.config.bsu;
        let src = input
            .source
            .ok_or("a bsuvolume build starts from a source OMI")?;
        let region = input.cloud.region().to_string();
        let vars = artifact::build_vars(Some(src), &region);
        // The tags change in place: not part of what shapes the volumes.
        let options = json!({
            "bsu": self.bsu.options(&region),
            "builder": "bsuvolume",
        });
        let run = self
            .work()
            .run(&input, self.work().digest(&options, Some(src)), vars);
        let kept: BTreeMap<String, BTreeMap<String, String>> = self
            .config
            .volumes
            .iter()
            .map(|v| (v.device.device_name.clone(), v.tags.clone()))
            .collect();
        let devices = launch::devices(src, &c.block_devices.launch_block_device_mappings);
        let launched = launch::declare(
            &run,
            c,
            src,
            input.placement,
            &devices,
            self.work(),
            "outscale-bsuvolume",
            &kept,
            graph,
        )?;
        let record = graph.add(run::node(&run)).map_err(|e| e.to_string())?;
        graph.needs(record, launched.stopped);
        for device in kept.keys() {
            graph.needs(record, launched.volumes[device]);
        }
        Ok(Declared { run, image: None })
    }
}
