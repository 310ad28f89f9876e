//! Plans saved with `plan -out`: the plan, and how to make it again, so
//! `apply PLANFILE` can check that nothing moved since.

use std::path::{Path, PathBuf};

use anyhow::Context;

use osci::plan::Plan;

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedPlan {
    pub plan: Plan,
    pub template: PathBuf,
    pub vars: Vec<String>,
    pub var_files: Vec<PathBuf>,
    /// The order of `-var` and `-var-file`.
    #[serde(default)]
    pub order: Vec<osci::template::Given>,
    #[serde(default)]
    pub only: Vec<String>,
    #[serde(default)]
    pub except: Vec<String>,
    #[serde(default)]
    pub force: bool,
    pub state: PathBuf,
}

impl SavedPlan {
    /// The saved plan at `path`, or `None` when it is something else (a
    /// template file or folder). A `.osciplan` file that does not read is an error.
    pub fn read(path: &Path) -> anyhow::Result<Option<SavedPlan>> {
        if path.is_dir() {
            // An HCL2 template folder.
            return Ok(None);
        }
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        match serde_json::from_slice(&bytes) {
            Ok(saved) => Ok(Some(saved)),
            Err(e) if path.extension().is_some_and(|x| x == "osciplan") => {
                Err(e).with_context(|| format!("{} is not a saved plan", path.display()))
            }
            Err(_) => Ok(None),
        }
    }
}
