//! Replacing a file so that a reader (or a crash) sees the old content or the
//! new, never a mix: write a temporary file beside it, fsync, rename over, and
//! fsync the directory so the rename itself is durable.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

pub fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    replace(path, bytes, None)
}

/// Like [`write`], and what `path` held before becomes `backup`. The backup
/// is a hard link to the old file, whose content was made durable when it
/// was written: two fsyncs in all, one for the new content and one for the
/// directory holding both renames.
pub fn write_keeping(path: &Path, bytes: &[u8], backup: &Path) -> std::io::Result<()> {
    replace(path, bytes, Some(backup))
}

fn beside(path: &Path, what: &str) -> std::io::Result<(PathBuf, PathBuf)> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other(format!("{} names no file", path.display())))?;
    let tmp = dir.join(format!(
        ".{}.{what}-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    Ok((dir, tmp))
}

fn replace(path: &Path, bytes: &[u8], backup: Option<&Path>) -> std::io::Result<()> {
    let (dir, tmp) = beside(path, "tmp")?;
    let mut temporaries = vec![tmp.clone()];
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        if let Some(backup) = backup
            && fs::symlink_metadata(path).is_ok()
        {
            let (_, link) = beside(backup, "link")?;
            temporaries.push(link.clone());
            let _ = fs::remove_file(&link);
            if fs::hard_link(path, &link).is_err() {
                // A filesystem without hard links: copy, and make it durable.
                fs::copy(path, &link)?;
                File::open(&link)?.sync_all()?;
            }
            fs::rename(&link, backup)?;
        }
        fs::rename(&tmp, path)?;
        File::open(&dir)?.sync_all()
    })();
    if result.is_err() {
        for t in temporaries {
            let _ = fs::remove_file(t);
        }
    }
    result
}

#[cfg(test)]
mod tests {
    #[test]
    fn replaces_content_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.json");
        super::write(&p, b"one").unwrap();
        super::write(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("f.json")]);
    }

    #[test]
    fn the_previous_content_becomes_the_backup() {
        let dir = tempfile::tempdir().unwrap();
        let (p, b) = (dir.path().join("f.json"), dir.path().join("f.json.backup"));
        super::write_keeping(&p, b"one", &b).unwrap();
        assert!(!b.exists(), "nothing to keep the first time");
        super::write_keeping(&p, b"two", &b).unwrap();
        let two = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&p).unwrap());
        super::write_keeping(&p, b"three", &b).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"three");
        assert_eq!(std::fs::read(&b).unwrap(), b"two");
        // Kept by a link to the file written before: not copied, not
        // written again.
        let backup = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&b).unwrap());
        assert_eq!(backup, two);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn failure_leaves_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.json");
        super::write(&p, b"old").unwrap();
        // A directory in the way of the rename makes the write fail.
        let blocked = dir.path().join("d");
        std::fs::create_dir(&blocked).unwrap();
        std::fs::write(blocked.join("x"), b"").unwrap();
        assert!(super::write(&blocked, b"new").is_err());
        assert_eq!(std::fs::read(&p).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }
}
