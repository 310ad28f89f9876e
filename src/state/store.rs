//! Reading and writing the state file safely.

use std::path::{Path, PathBuf};

use super::lock::StateLock;
use super::model::{FORMAT_VERSION, State};

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(
        "the state file {} is not valid osci state ({message}). It was left untouched: fix it, \
         or restore the previous version from {}",
        path.display(),
        backup.display()
    )]
    Corrupt {
        path: PathBuf,
        backup: PathBuf,
        message: String,
    },
    #[error(
        "the state file {} has format version {found}; this osci reads version {FORMAT_VERSION}: \
         use a newer osci",
        path.display()
    )]
    TooNew { path: PathBuf, found: u32 },
    #[error("cannot read the state file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write the state file {}: {source}; the previous version is unchanged", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Lock(#[from] super::lock::LockError),
}

/// A state file, read once and written after every change.
pub struct StateStore {
    path: PathBuf,
    /// Whether the directory is known to exist (it is made once).
    dir_made: bool,
    _lock: Option<StateLock>,
}

impl StateStore {
    /// Reads the state without locking it (plan, state list/show).
    pub fn read_only(path: &Path) -> Result<State, StateError> {
        read(path)
    }

    /// Locks the state for `command`, then reads it.
    pub fn lock(path: &Path, command: &str) -> Result<(StateStore, State), StateError> {
        let lock = StateLock::acquire(path, command)?;
        let state = read(path)?;
        Ok((
            StateStore {
                path: path.to_path_buf(),
                dir_made: false,
                _lock: Some(lock),
            },
            state,
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `state` with the next serial. The file is replaced atomically,
    /// and what it held before is kept as `<state>.backup`.
    pub fn write(&mut self, state: &mut State) -> Result<(), StateError> {
        state.serial += 1;
        state.format_version = FORMAT_VERSION;
        state.osci_version = env!("CARGO_PKG_VERSION").to_string();
        let mut bytes = serde_json::to_vec_pretty(state).expect("state serialises");
        bytes.push(b'\n');
        let werr = |source| StateError::Write {
            path: self.path.clone(),
            source,
        };
        if !self.dir_made {
            if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(werr)?;
            }
            self.dir_made = true;
        }
        crate::atomic_file::write_keeping(&self.path, &bytes, &backup_path(&self.path))
            .map_err(werr)
    }
}

pub fn backup_path(state: &Path) -> PathBuf {
    let mut name = state.as_os_str().to_owned();
    name.push(".backup");
    PathBuf::from(name)
}

fn read(path: &Path) -> Result<State, StateError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(State::new()),
        Err(source) => {
            return Err(StateError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let corrupt = |message: String| StateError::Corrupt {
        path: path.to_path_buf(),
        backup: backup_path(path),
        message,
    };
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
    let version = value
        .get("format_version")
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| corrupt("no format_version".into()))?;
    if version > u64::from(FORMAT_VERSION) {
        return Err(StateError::TooNew {
            path: path.to_path_buf(),
            found: version as u32,
        });
    }
    let mut state: State = serde_json::from_value(value).map_err(|e| corrupt(e.to_string()))?;
    // Written by hand or by an older osci: the order lookups rely on.
    state.resources.sort_by(|a, b| a.address.cmp(&b.address));
    state.upgrade();
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Kind;
    use crate::state::{Lookup, ResourceState};

    #[test]
    fn serial_grows_lineage_stays_backup_holds_previous() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state").join("web.json");
        let (mut store, mut state) = StateStore::lock(&path, "apply").unwrap();
        assert_eq!(state.serial, 0);
        let lineage = state.lineage.clone();
        state.put(ResourceState::pending(
            crate::graph::Address::from_text("build.web.vm"),
            "web",
            Kind::Vm,
            true,
            Lookup::default(),
        ));
        store.write(&mut state).unwrap();
        state.get_mut("build.web.vm").unwrap().id = Some("i-12345678".into());
        store.write(&mut state).unwrap();
        drop(store);
        let again = StateStore::read_only(&path).unwrap();
        assert_eq!(again.serial, 2);
        assert_eq!(again.lineage, lineage);
        assert_eq!(
            again.get("build.web.vm").unwrap().id.as_deref(),
            Some("i-12345678")
        );
        let backup: State =
            serde_json::from_slice(&std::fs::read(backup_path(&path)).unwrap()).unwrap();
        assert_eq!(backup.serial, 1);
        assert_eq!(backup.get("build.web.vm").unwrap().id, None);
    }

    #[test]
    fn corrupt_and_truncated_files_are_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        let (mut store, mut state) = StateStore::lock(&path, "apply").unwrap();
        store.write(&mut state).unwrap();
        drop(store);
        let good = std::fs::read(&path).unwrap();
        for bad in [
            &good[..good.len() / 2],
            b"",
            b"{\"format_version\": 1}",
            b"[]",
        ] {
            std::fs::write(&path, bad).unwrap();
            let err = StateStore::read_only(&path).err().unwrap();
            assert!(matches!(err, StateError::Corrupt { .. }), "{err}");
            assert!(err.to_string().contains("left untouched"));
            assert_eq!(std::fs::read(&path).unwrap(), bad, "not rewritten");
        }
        std::fs::write(&path, br#"{"format_version": 99}"#).unwrap();
        assert!(matches!(
            StateStore::read_only(&path).err().unwrap(),
            StateError::TooNew { .. }
        ));
    }

    #[test]
    fn a_failed_write_leaves_the_previous_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        let (mut store, mut state) = StateStore::lock(&path, "apply").unwrap();
        store.write(&mut state).unwrap();
        let before = std::fs::read(&path).unwrap();
        // A directory where the backup goes makes the next write fail.
        std::fs::create_dir(backup_path(&path)).unwrap();
        std::fs::write(backup_path(&path).join("x"), b"").unwrap();
        assert!(store.write(&mut state).is_err());
        assert_eq!(std::fs::read(&path).unwrap(), before);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.contains(".tmp-"))
            .collect();
        assert!(names.is_empty(), "no temporary files left: {names:?}");
    }
}
