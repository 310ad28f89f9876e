//! The `file` provisioner: uploads files, folders or inline `content` to
//! the VM, or downloads from it (`direction: "download"`).
//!
//! Folders follow Packer's trailing-slash rule: `source: "conf"` lands as
//! `destination/conf/…`, `source: "conf/"` puts the folder's contents in
//! `destination/…`.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde::Deserialize;

use super::session::Session;
use super::{Context, ProvisionError, local_path};
use crate::template::weak;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct File {
    source: Option<String>,
    sources: Vec<String>,
    content: Option<String>,
    destination: String,
    direction: Option<String>,
    /// The source is made by an earlier step: it need not exist at plan
    /// time (and the digest cannot cover it).
    #[serde(deserialize_with = "weak::bool")]
    generated: bool,
}

impl File {
    pub fn check(self, at: &str) -> Result<File, ProvisionError> {
        let config = |message: String| {
            Err(ProvisionError::Config {
                at: at.to_string(),
                message,
            })
        };
        if self.destination.is_empty() {
            return config("destination: missing (where the file goes)".into());
        }
        super::exactly_one(
            &[
                self.source.is_some(),
                !self.sources.is_empty(),
                self.content.is_some(),
            ],
            &["source", "sources", "content"],
            at,
        )?;
        match self.direction.as_deref() {
            None | Some("upload") => {}
            Some("download") => {
                if self.content.is_some() {
                    return config("content: only for uploads".into());
                }
            }
            Some(other) => {
                return config(format!(
                    "direction: `{other}` is not `upload` or `download`"
                ));
            }
        }
        if self.sources.len() > 1 && !self.destination.ends_with('/') {
            return config(
                "destination: with several sources it is a folder and must end with `/`".into(),
            );
        }
        Ok(self)
    }

    fn download(&self) -> bool {
        self.direction.as_deref() == Some("download")
    }

    fn source_list(&self) -> Vec<String> {
        self.source.iter().chain(&self.sources).cloned().collect()
    }

    pub fn local_files(&self) -> Vec<String> {
        if self.download() || self.generated {
            Vec::new()
        } else {
            self.source_list()
        }
    }

    pub async fn run(
        &self,
        session: &Session,
        ctx: &Context<'_>,
        at: &str,
    ) -> Result<(), ProvisionError> {
        let ssh = super::ssh_failed(at);
        if let Some(content) = &self.content {
            (ctx.output)(&format!("uploading content to {}", self.destination));
            return session
                .upload(&self.destination, content.as_bytes(), 0o644)
                .await
                .map_err(ssh);
        }
        for source in self.source_list() {
            if self.download() {
                self.fetch(session, ctx, &source, at).await?;
                continue;
            }
            let local = local_path(ctx.base_dir, &source);
            let files = super::files_under(&local).map_err(|e| ProvisionError::Failed {
                at: at.to_string(),
                message: format!("reading {}: {e}", local.display()),
            })?;
            let dest = self.destination.trim_end_matches('/');
            if local.is_dir() {
                // `dir` lands as dest/dir, `dir/` as dest.
                let root = if source.ends_with('/') {
                    dest.to_string()
                } else {
                    format!("{dest}/{}", base_name(&source))
                };
                (ctx.output)(&format!("uploading {source} => {root}/"));
                session.mkdir(&root).await.map_err(ssh)?;
                for (relative, path) in files {
                    let (bytes, mode) = read(&path, at)?;
                    session
                        .upload(&format!("{root}/{relative}"), &bytes, mode)
                        .await
                        .map_err(ssh)?;
                }
            } else {
                let target = if self.destination.ends_with('/') {
                    format!("{dest}/{}", base_name(&source))
                } else {
                    self.destination.clone()
                };
                (ctx.output)(&format!("uploading {source} => {target}"));
                let (bytes, mode) = read(&local, at)?;
                session.upload(&target, &bytes, mode).await.map_err(ssh)?;
            }
        }
        Ok(())
    }

    /// Downloads `source` (a folder if it ends with `/`) from the VM.
    async fn fetch(
        &self,
        session: &Session,
        ctx: &Context<'_>,
        source: &str,
        at: &str,
    ) -> Result<(), ProvisionError> {
        let ssh = super::ssh_failed(at);
        let local = local_path(ctx.base_dir, &self.destination);
        let write = |path: &Path, bytes: &[u8]| {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(path, bytes)
        };
        let failed = |path: &Path, e: std::io::Error| ProvisionError::Failed {
            at: at.to_string(),
            message: format!("writing {}: {e}", path.display()),
        };
        (ctx.output)(&format!("downloading {source} => {}", self.destination));
        if source.ends_with('/') {
            for relative in session.list_files(source).await.map_err(ssh)? {
                let bytes = session
                    .download(&format!("{}/{relative}", source.trim_end_matches('/')))
                    .await
                    .map_err(ssh)?;
                let path = local.join(&relative);
                write(&path, &bytes).map_err(|e| failed(&path, e))?;
            }
            return Ok(());
        }
        let bytes = session.download(source).await.map_err(ssh)?;
        let path = if self.destination.ends_with('/') {
            local.join(base_name(source))
        } else {
            local
        };
        write(&path, &bytes).map_err(|e| failed(&path, e))
    }
}

fn base_name(path: &str) -> &str {
    path.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(path)
}

fn read(path: &Path, at: &str) -> Result<(Vec<u8>, u32), ProvisionError> {
    let failed = |e: std::io::Error| ProvisionError::Failed {
        at: at.to_string(),
        message: format!("reading {}: {e}", path.display()),
    };
    let bytes = std::fs::read(path).map_err(failed)?;
    let mode = std::fs::metadata(path)
        .map_err(failed)?
        .permissions()
        .mode()
        & 0o7777;
    Ok((bytes, mode))
}
