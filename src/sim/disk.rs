//! Volumes and snapshots as real disk images: sparse files in the
//! simulator's `disks/` folder, named by resource id, holding an MBR
//! partition table with an ext4 root filesystem on partition 1 (as the
//! catalogue images are laid out).
//!
//! Bytes flow as on the platform: a volume starts as a copy of its snapshot,
//! a snapshot as a copy of its volume (or of the snapshot it copies), and a
//! VM's root filesystem is its root volume. Copies are sparse (or reflinks
//! where the filesystem has them), so a 10 GiB disk costs what it holds.
//!
//! Filesystems are read and written in user space with e2fsprogs
//! (`debugfs`, `mkfs.ext4 -d`): nothing is mounted, so a simulator that is
//! killed leaves only files behind.

use std::collections::BTreeSet;
use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

const GIB: u64 = 1 << 30;
use crate::blockdev::SECTOR;
/// Partition 1 starts at 1 MiB, where partitioning tools align it.
const FIRST_SECTOR: u64 = 2048;
/// Linux filesystem, in MBR terms.
const LINUX: u8 = 0x83;

/// The disk images of one simulator.
pub struct Disks {
    dir: PathBuf,
}

/// Where partition 1 lies in a disk image, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    pub offset: u64,
    pub len: u64,
}

fn io_error(what: &str, path: &Path, e: impl std::fmt::Display) -> String {
    format!("{what} {}: {e}", path.display())
}

/// A program of this machine: on PATH, or in the standard folders a
/// non-login root shell may leave off it (`mkfs.ext4`, `debugfs`, `chroot`
/// and `mknod` live in sbin).
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// [`find_program`], or the bare name (whose failure to run then says it
/// is missing).
pub fn tool(name: &str) -> PathBuf {
    find_program(name).unwrap_or_else(|| PathBuf::from(name))
}

/// Runs a tool, answering its error output when it fails.
fn run(command: &mut Command) -> Result<(), String> {
    let program = command.get_program().to_string_lossy().into_owned();
    let out = command
        .output()
        .map_err(|e| format!("running {program}: {e} (is it installed?)"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Disks {
    pub fn new(dir: PathBuf) -> Disks {
        Disks { dir }
    }

    pub fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.img"))
    }

    pub fn exists(&self, id: &str) -> bool {
        self.path(id).is_file()
    }

    fn ensure_dir(&self) -> Result<(), String> {
        std::fs::create_dir_all(&self.dir).map_err(|e| io_error("creating", &self.dir, e))
    }

    /// An empty disk of `gib` GiB: no partition table, all zeros.
    pub fn blank(&self, id: &str, gib: i64) -> Result<(), String> {
        self.ensure_dir()?;
        let path = self.path(id);
        let file = std::fs::File::create(&path).map_err(|e| io_error("creating", &path, e))?;
        file.set_len(gib.max(1) as u64 * GIB)
            .map_err(|e| io_error("sizing", &path, e))
    }

    /// `to` becomes a copy of `from`, grown to `gib` GiB if that is larger
    /// (the partition and filesystem keep their size, as on the platform).
    pub fn copy(&self, from: &str, to: &str, gib: i64) -> Result<(), String> {
        self.ensure_dir()?;
        let (src, dst) = (self.path(from), self.path(to));
        let partial = dst.with_extension("partial");
        run(Command::new(tool("cp"))
            .args(["--sparse=always", "--reflink=auto"])
            .arg(&src)
            .arg(&partial))?;
        let file = OpenOptions::new()
            .write(true)
            .open(&partial)
            .map_err(|e| io_error("opening", &partial, e))?;
        let want = gib.max(1) as u64 * GIB;
        let len = file
            .metadata()
            .map_err(|e| io_error("reading", &partial, e))?
            .len();
        if want > len {
            file.set_len(want)
                .map_err(|e| io_error("growing", &partial, e))?;
        }
        std::fs::rename(&partial, &dst).map_err(|e| io_error("renaming", &partial, e))
    }

    /// A catalogue image's disk: `gib` GiB with the small userland on an
    /// ext4 root partition.
    pub fn seed(&self, id: &str, gib: i64, image_name: &str) -> Result<(), String> {
        self.ensure_dir()?;
        let work = self.dir.join(format!("{id}.rootfs"));
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(&work).map_err(|e| io_error("creating", &work, e))?;
        let result = (|| {
            super::userland::build(&work, image_name)?;
            let partial = self.path(id).with_extension("partial");
            let file =
                std::fs::File::create(&partial).map_err(|e| io_error("creating", &partial, e))?;
            let size = gib.max(1) as u64 * GIB;
            file.set_len(size)
                .map_err(|e| io_error("sizing", &partial, e))?;
            drop(file);
            let partition = Partition {
                offset: FIRST_SECTOR * SECTOR,
                len: size - FIRST_SECTOR * SECTOR,
            };
            write_mbr(&partial, partition)?;
            make_filesystem(&partial, partition, &work)?;
            std::fs::rename(&partial, self.path(id)).map_err(|e| io_error("renaming", &partial, e))
        })();
        let _ = std::fs::remove_dir_all(&work);
        result
    }

    /// Deletes the disks of resources that no longer exist, and what
    /// interrupted work left (partial copies, seed trees).
    pub fn collect_garbage(&self, live: &BTreeSet<&str>) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            match name.strip_suffix(".img") {
                Some(id) if live.contains(id) => {}
                Some(_) => {
                    let _ = std::fs::remove_file(entry.path());
                }
                None if name.ends_with(".rootfs") => {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
                None => {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
    }

    /// Partition 1 of the disk `id`, if it has a partition table.
    pub fn root_partition(&self, id: &str) -> Result<Option<Partition>, String> {
        read_mbr(&self.path(id))
    }

    /// Copies the root filesystem of disk `id` out into `dir` (a booting
    /// VM's working tree).
    pub fn extract(&self, id: &str, partition: Partition, dir: &Path) -> Result<(), String> {
        std::fs::create_dir_all(dir).map_err(|e| io_error("creating", dir, e))?;
        let device = format!("{}?offset={}", self.path(id).display(), partition.offset);
        // From inside `dir`, so that no path is parsed by debugfs's command
        // line; and debugfs exits 0 when a copy fails, so its complaints
        // are the failure.
        let out = Command::new(tool("debugfs"))
            .current_dir(dir)
            .args(["-R", "rdump / ."])
            .arg(&device)
            .output()
            .map_err(|e| format!("running debugfs: {e} (is e2fsprogs installed?)"))?;
        let complaints: Vec<String> = String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with("debugfs "))
            .map(str::to_string)
            .collect();
        if !out.status.success() || !complaints.is_empty() {
            return Err(format!("unpacking {id} failed: {}", complaints.join("; ")));
        }
        Ok(())
    }

    /// Writes `dir` back as the root filesystem of disk `id`. The new
    /// filesystem is made on a copy, which replaces the disk only once
    /// complete: a failure (a tree larger than the partition) leaves the
    /// disk as it was.
    pub fn flush(&self, id: &str, partition: Partition, dir: &Path) -> Result<(), String> {
        let disk = self.path(id);
        let partial = disk.with_extension("flushing");
        let made = run(Command::new(tool("cp"))
            .args(["--sparse=always", "--reflink=auto"])
            .arg(&disk)
            .arg(&partial))
        .and_then(|()| make_filesystem(&partial, partition, dir))
        .and_then(|()| {
            std::fs::rename(&partial, &disk).map_err(|e| io_error("renaming", &partial, e))
        });
        if made.is_err() {
            let _ = std::fs::remove_file(&partial);
        }
        made
    }
}

/// Writes an MBR with one bootable Linux partition.
fn write_mbr(path: &Path, partition: Partition) -> Result<(), String> {
    let sector = crate::blockdev::one_partition(partition.offset, partition.len, LINUX);
    let mut file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| io_error("opening", path, e))?;
    file.write_all(&sector)
        .map_err(|e| io_error("writing the partition table of", path, e))
}

/// Partition 1 of an MBR disk image, or `None` if it has no table.
fn read_mbr(path: &Path) -> Result<Option<Partition>, String> {
    let mut sector = [0u8; 512];
    let mut file = std::fs::File::open(path).map_err(|e| io_error("opening", path, e))?;
    file.read_exact(&mut sector)
        .map_err(|e| io_error("reading", path, e))?;
    Ok(crate::blockdev::read(&sector)
        .into_iter()
        .find(|p| p.number == 1)
        .map(|p| Partition {
            offset: p.offset,
            len: p.len,
        }))
}

/// Makes an ext4 filesystem filling `partition`, with the contents of
/// `dir`. The journal is small: these disks hold a few megabytes.
fn make_filesystem(path: &Path, partition: Partition, dir: &Path) -> Result<(), String> {
    run(Command::new(tool("mkfs.ext4"))
        .args(["-q", "-F", "-J", "size=4", "-L", "root", "-E"])
        .arg(format!("offset={}", partition.offset))
        .arg("-d")
        .arg(dir)
        .arg(path)
        .arg(format!("{}k", partition.len / 1024)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_table_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.img");
        std::fs::File::create(&path).unwrap().set_len(GIB).unwrap();
        assert_eq!(read_mbr(&path).unwrap(), None);
        let p = Partition {
            offset: 1 << 20,
            len: GIB - (1 << 20),
        };
        write_mbr(&path, p).unwrap();
        assert_eq!(read_mbr(&path).unwrap(), Some(p));
    }
}
