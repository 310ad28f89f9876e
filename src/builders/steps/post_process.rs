//! Post-processing a build's OMI once it is made: the template's
//! post-processors, in order, on the machine osci runs on. The state
//! records that they ran, on which OMI and with which options, so a failed
//! run, a new OMI or new options run them again, and nothing else does.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;

use serde_json::{Value, json};

use super::BuildRun;
use crate::graph::{Address, Digest, Kind, Lifetime, Node, Run, Step, StepError};
use crate::postprocess::{self, Artifact};
use crate::state::{ResourceState, Status};
use crate::template::PostProcessor;

struct PostProcess {
    run: Arc<BuildRun>,
    image: Address,
    builder_type: String,
    post_processors: Vec<PostProcessor>,
    /// Relative script paths are read from here.
    template_dir: PathBuf,
    /// Of the OMI's inputs, the post-processors' options and scripts.
    digest: String,
}

/// `scripts` are the (name, bytes) of the scripts the post-processors
/// read, for the digest.
pub fn node(
    run: &Arc<BuildRun>,
    image: &Address,
    builder_type: &str,
    post_processors: Vec<PostProcessor>,
    scripts: &[(String, Vec<u8>)],
    template_dir: PathBuf,
) -> Node {
    let options: Vec<Value> = post_processors
        .iter()
        .map(|p| json!({"type": p.kind, "config": p.config}))
        .collect();
    let mut digest = Digest::new();
    digest
        .part("build", run.digest.as_bytes())
        .json("post_processors", &Value::Array(options));
    for (name, bytes) in scripts {
        digest.part(&format!("file {name}"), bytes);
    }
    let digest = digest.finish();
    let types: Vec<&str> = post_processors.iter().map(|p| p.kind.as_str()).collect();
    let types = json!(types);
    let step = PostProcess {
        digest: digest.clone(),
        run: Arc::clone(run),
        image: image.clone(),
        builder_type: builder_type.to_string(),
        post_processors,
        template_dir,
    };
    let mut node = Node::new(
        &run.name,
        Kind::PostProcess,
        None,
        Lifetime::Durable,
        Arc::new(step),
    )
    .with("post_processors", Some(types));
    node.digest = Some(digest);
    node
}

#[async_trait]
impl Step for PostProcess {
    async fn run(&self, run: &Run<'_>) -> Result<(), StepError> {
        let omi_id = run
            .recorder
            .get(&self.image)
            .and_then(|r| r.id)
            .ok_or_else(|| StepError::Failed(format!("{} has no OMI", self.image)))?;
        let vars = &self.run.vars;
        let artifact = Artifact {
            build_name: self.run.name.clone(),
            builder_type: self.builder_type.clone(),
            region: vars.build_region.clone(),
            omi_id: omi_id.clone(),
        };
        let build = BTreeMap::from([
            ("ID".to_string(), omi_id.clone()),
            ("ArtifactId".to_string(), artifact.id()),
            ("SourceOMI".to_string(), vars.source_omi.clone()),
            ("SourceOMIName".to_string(), vars.source_omi_name.clone()),
            ("BuildRegion".to_string(), vars.build_region.clone()),
        ]);
        self.run
            .in_context(
                run,
                "post-processing",
                &self.builder_type,
                &self.template_dir,
                build,
                async |ctx| {
                    postprocess::run(&self.post_processors, &artifact, ctx)
                        .await
                        .map_err(|e| e.to_string())
                },
            )
            .await?;
        let types: Vec<&str> = self
            .post_processors
            .iter()
            .map(|p| p.kind.as_str())
            .collect();
        let entry = ResourceState {
            attributes: BTreeMap::from([("post_processors".to_string(), json!(types))]),
            input_digest: Some(self.digest.clone()),
            ..ResourceState::made(
                run.address.clone(),
                &self.run.name,
                Kind::PostProcess,
                false,
                omi_id,
                Status::Created,
            )
        };
        run.recorder.settled(vec![entry]).await?;
        Ok(())
    }
}
