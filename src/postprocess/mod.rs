//! Post-processors: what runs on a build's OMI once it is made, on the
//! machine osci runs on. osci has Packer's `manifest` (a JSON record of the
//! artifacts, for the tools that come after) and `shell-local`.
//!
//! They are checked at plan time ([`check`]) and run, in template order,
//! by the build's post-processing node ([`run`]).

mod manifest;

use serde_json::{Map, Value};

use crate::provision::shell_local::ShellLocal;
use crate::provision::{self, Context, ProvisionError};
use crate::template::PostProcessor;

pub use manifest::Manifest;

/// What a build made, as post-processors see it.
#[derive(Debug, Clone)]
pub struct Artifact {
    pub build_name: String,
    /// As the template writes it, e.g. `outscale-bsu`.
    pub builder_type: String,
    pub region: String,
    pub omi_id: String,
}

impl Artifact {
    /// Packer's id of an OMI artifact: `REGION:ami-…`.
    pub fn id(&self) -> String {
        format!("{}:{}", self.region, self.omi_id)
    }
}

enum Kind {
    Manifest(Manifest),
    ShellLocal(Box<ShellLocal>),
}

/// A post-processor, checked.
pub struct Checked {
    at: String,
    kind: Kind,
}

/// Checks a post-processor's options, naming it and the key at fault.
pub fn check(p: &PostProcessor) -> Result<Checked, ProvisionError> {
    let at = format!("{} ({})", p.at, p.kind);
    let config_error = |message: String| ProvisionError::Config {
        at: at.clone(),
        message,
    };
    let Value::Object(config) = &p.config else {
        return Err(config_error("expected an object of options".into()));
    };
    let mut config: Map<String, Value> = config.clone();
    // Packer's say in whether the input artifact survives: osci keeps the
    // OMI in the state whatever it says.
    config.remove("keep_input_artifact");
    let kind = match p.kind.as_str() {
        "manifest" => Kind::Manifest(provision::options(config, &at)?),
        "shell-local" => Kind::ShellLocal(Box::new(ShellLocal::check(
            provision::options(config, &at)?,
            &at,
        )?)),
        other => {
            return Err(config_error(format!(
                "osci has no `{other}` post-processor (it has manifest and shell-local)"
            )));
        }
    };
    Ok(Checked { at, kind })
}

/// Checks `post_processors` and answers the scripts they read, as (name,
/// bytes) pairs: editing one runs the post-processors again.
pub fn inputs(
    post_processors: &[PostProcessor],
    base_dir: &std::path::Path,
) -> Result<Vec<(String, Vec<u8>)>, ProvisionError> {
    let mut out = Vec::new();
    for p in post_processors {
        let checked = check(p)?;
        if let Kind::ShellLocal(s) = &checked.kind {
            for script in s.local_files() {
                let path = base_dir.join(&script);
                let bytes = std::fs::read(&path).map_err(|e| ProvisionError::Config {
                    at: checked.at.clone(),
                    message: format!("reading {}: {e}", path.display()),
                })?;
                out.push((script, bytes));
            }
        }
    }
    Ok(out)
}

/// Runs `post_processors` on `artifact`, in order. `ctx.build` holds the
/// build variables, with `ID` the OMI's id.
pub async fn run(
    post_processors: &[PostProcessor],
    artifact: &Artifact,
    ctx: &Context<'_>,
) -> Result<(), ProvisionError> {
    for p in post_processors {
        let at = format!("{} ({})", p.at, p.kind);
        let config = provision::render_build_data(&p.config, ctx).map_err(|message| {
            ProvisionError::Config {
                at: at.clone(),
                message,
            }
        })?;
        let checked = check(&PostProcessor {
            config,
            ..p.clone()
        })?;
        match &checked.kind {
            Kind::Manifest(m) => {
                let path = m
                    .record(artifact)
                    .map_err(|message| ProvisionError::Failed {
                        at: checked.at.clone(),
                        message,
                    })?;
                (ctx.output)(&format!(
                    "{}: recorded in {}",
                    artifact.id(),
                    path.display()
                ));
            }
            Kind::ShellLocal(s) => s.run(ctx, &checked.at).await?,
        }
    }
    Ok(())
}
