//! Where a template problem is (file, build, key, line, column) and what it is.

use std::fmt;
use std::path::{Path, PathBuf};

use super::interpolate::RenderError;
use super::json::Positions;

/// A template that cannot be used, located as precisely as the loader knows.
///
/// Displays as `FILE:LINE:COL: build "web": key "omi_name": message`, leaving
/// out the parts that are unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub file: PathBuf,
    /// The HCL2 block at fault, e.g. `variable "region"`.
    pub block: Option<String>,
    pub build: Option<String>,
    pub key: Option<String>,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        f.write_str(": ")?;
        if let Some(block) = &self.block {
            write!(f, "{block}: ")?;
        }
        if let Some(build) = &self.build {
            write!(f, "build {build:?}: ")?;
        }
        if let Some(key) = &self.key {
            write!(f, "key {key:?}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for TemplateError {}

impl TemplateError {
    /// A problem of the file as a whole (or of the command line about it).
    pub fn of_file(file: &Path, message: impl Into<String>) -> TemplateError {
        TemplateError {
            file: file.to_path_buf(),
            block: None,
            build: None,
            key: None,
            line: None,
            column: None,
            message: message.into(),
        }
    }
}

/// What is wrong, before it is placed in a file.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Problem {
    #[error("{0}")]
    Syntax(String),
    #[error("given more than once in the same object (JSON would keep only the last)")]
    DuplicateKey,
    #[error("unknown key{}", did_you_mean(.0.as_deref()))]
    UnknownKey(Option<String>),
    #[error("required: {0}")]
    Missing(&'static str),
    #[error("cannot be used together with `{0}`")]
    Conflict(&'static str),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error("cannot read {}: {error}", .path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
}

/// `; did you mean `x`?` when there is a close candidate.
pub(crate) fn did_you_mean(suggestion: Option<&str>) -> String {
    suggestion
        .map(|s| format!("; did you mean `{s}`?"))
        .unwrap_or_default()
}

/// One step into a JSON document.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Seg {
    Key(String),
    Index(usize),
}

/// A path into a JSON document, displayed as `launch_block_device_mappings[0].iops`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct KeyPath(pub Vec<Seg>);

impl KeyPath {
    pub fn root() -> KeyPath {
        KeyPath::default()
    }

    pub fn of(key: &str) -> KeyPath {
        KeyPath(vec![Seg::Key(key.to_string())])
    }

    pub fn key(&self, key: &str) -> KeyPath {
        let mut p = self.clone();
        p.0.push(Seg::Key(key.to_string()));
        p
    }

    pub fn index(&self, index: usize) -> KeyPath {
        let mut p = self.clone();
        p.0.push(Seg::Index(index));
        p
    }

    pub fn join(&self, other: &KeyPath) -> KeyPath {
        let mut p = self.clone();
        p.0.extend(other.0.iter().cloned());
        p
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The first key, which for a builder entry names the option.
    pub fn head(&self) -> Option<&str> {
        match self.0.first() {
            Some(Seg::Key(k)) => Some(k),
            _ => None,
        }
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if i == 0 => f.write_str(k)?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// A part of a file errors are reported against: the file, the positions of
/// its keys, where the part starts (e.g. `builders[1]`) and the build it
/// belongs to. Keys in errors are shown relative to `base`.
pub(crate) struct Site<'a> {
    pub file: &'a Path,
    pub positions: &'a Positions,
    pub base: KeyPath,
    pub build: Option<String>,
}

impl Site<'_> {
    pub fn error(&self, key: &KeyPath, problem: impl Into<Problem>) -> TemplateError {
        let position = self.positions.find(&self.base.join(key).0);
        let file = position
            .as_ref()
            .and_then(|p| p.file.as_deref())
            .map_or_else(|| self.file.to_path_buf(), |f| f.clone());
        TemplateError {
            file,
            block: None,
            build: self.build.clone(),
            key: (!key.is_empty()).then(|| key.to_string()),
            line: position.as_ref().map(|p| p.line),
            column: position.as_ref().map(|p| p.column),
            message: problem.into().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_leaves_out_unknown_parts() {
        let mut e = TemplateError {
            file: "web.json".into(),
            block: None,
            build: Some("web".into()),
            key: Some("omi_name".into()),
            line: Some(3),
            column: Some(7),
            message: "required".into(),
        };
        assert_eq!(
            e.to_string(),
            r#"web.json:3:7: build "web": key "omi_name": required"#
        );
        e.line = None;
        e.build = None;
        assert_eq!(e.to_string(), r#"web.json: key "omi_name": required"#);
    }

    #[test]
    fn key_paths() {
        let p = KeyPath::of("launch_block_device_mappings")
            .index(0)
            .key("iops");
        assert_eq!(p.to_string(), "launch_block_device_mappings[0].iops");
        assert_eq!(p.head(), Some("launch_block_device_mappings"));
    }
}
