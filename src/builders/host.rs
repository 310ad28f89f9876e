//! The machine osci runs on, as the chroot builder uses it (behaviour §6):
//! the host-wide device lock, the choice of a free device name, commands
//! run through `command_wrapper`, mounts, and waiting for a device (and
//! the partitions its table names) to appear.
//!
//! Everything here acts on this machine only, and only on what it is
//! given: a device name this build chose, a mount folder this build made.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Packer's lock: osci and Packer builds on one host pick distinct
/// devices.
pub const LOCK_PATH: &str = "/var/lock/packer-chroot/lock";

/// How long a device may take to appear after its link, or its partitions
/// after a command wrote its table.
const DEVICE_TIMEOUT: Duration = Duration::from_secs(60);

/// The locks this process holds, by the address of the node that took
/// them: given up by that node's removal.
static HELD: Mutex<Option<HashMap<String, File>>> = Mutex::new(None);

fn held() -> std::sync::MutexGuard<'static, Option<HashMap<String, File>>> {
    HELD.lock().unwrap_or_else(|e| e.into_inner())
}

/// Takes the host-wide device lock for `holder`, waiting for another build
/// (of this process or another) to give it up.
pub async fn lock(holder: &str) -> Result<(), String> {
    let path = PathBuf::from(std::env::var("OSCI_CHROOT_LOCK").unwrap_or(LOCK_PATH.into()));
    let file = tokio::task::spawn_blocking(move || -> Result<File, String> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        file.lock()
            .map_err(|e| format!("locking {}: {e}", path.display()))?;
        Ok(file)
    })
    .await
    .map_err(|e| e.to_string())??;
    held()
        .get_or_insert_with(HashMap::new)
        .insert(holder.to_string(), file);
    Ok(())
}

/// Gives up `holder`'s lock, if this process holds it (a lock of a process
/// that ended was given up with it).
pub fn unlock(holder: &str) {
    if let Some(locks) = held().as_mut() {
        locks.remove(holder);
    }
}

/// A free device name, as Packer finds one: the first disk prefix of
/// `/sys/block` (`sd`, `xvd` or `vd`), letters `f` to `p`, free when
/// neither the device nor its first partition exists; `/dev/vd` becomes
/// `/dev/xvd`, which the API accepts.
pub fn free_device() -> Result<String, String> {
    let mut names: Vec<String> = std::fs::read_dir("/sys/block")
        .map_err(|e| format!("/sys/block: {e}"))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let prefix = names
        .iter()
        .find_map(|n| {
            ["xvd", "sd", "vd"]
                .into_iter()
                .find(|p| n.starts_with(p) && n.len() == p.len() + 1)
        })
        .unwrap_or("xvd");
    for letter in 'f'..='p' {
        let candidate = format!("/dev/{prefix}{letter}");
        let named = candidate.replacen("/dev/vd", "/dev/xvd", 1);
        let taken = |d: &str| Path::new(d).exists() || Path::new(&format!("{d}1")).exists();
        if !taken(&candidate) && !taken(&named) {
            return Ok(named);
        }
    }
    Err(format!(
        "no free device from /dev/{prefix}f to /dev/{prefix}p; set device_path"
    ))
}

/// Whether `path` is a block device now.
fn is_block_device(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_block_device())
}

/// Where the block device at `path` lies on its disk, in bytes: its
/// offset (when sysfs tells: a kernel partition's start, a loop device's
/// offset) and its size.
fn window(path: &Path) -> Option<(Option<u64>, u64)> {
    let (major, minor) = crate::blockdev::numbers(std::fs::metadata(path).ok()?.rdev());
    let read = |what: &str| -> Option<u64> {
        std::fs::read_to_string(format!("/sys/dev/block/{major}:{minor}/{what}"))
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    let offset = read("start")
        .map(|s| s * 512)
        .or_else(|| read("loop/offset"));
    Some((offset, read("size")? * 512))
}

/// Waits for `device` to be a block device, as a careful builder does
/// after linking a volume.
pub async fn wait_for_device(device: &str) -> Result<(), String> {
    let start = Instant::now();
    while !is_block_device(Path::new(device)) {
        if start.elapsed() > DEVICE_TIMEOUT {
            return Err(format!(
                "{device} did not appear within {}s",
                DEVICE_TIMEOUT.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Waits until every data partition of `device`'s table has its device,
/// where the table puts it (`udevadm settle`, for a host whose device
/// manager is not udev).
pub async fn settle(device: &str) -> Result<(), String> {
    let start = Instant::now();
    loop {
        let mut sector = [0u8; 512];
        let table = std::fs::File::open(device)
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut sector))
            .map(|()| crate::blockdev::read(&sector))
            .unwrap_or_default();
        let pending: Vec<String> = table
            .iter()
            .filter(|p| p.is_data())
            .filter(|p| {
                let path = format!("{device}{}", p.number);
                !matches!(window(Path::new(&path)),
                    Some((offset, len)) if len == p.len && offset.is_none_or(|o| o == p.offset))
            })
            .map(|p| format!("{device}{}", p.number))
            .collect();
        if pending.is_empty() {
            return Ok(());
        }
        if start.elapsed() > DEVICE_TIMEOUT {
            return Err(format!(
                "the partitions {} did not appear within {}s",
                pending.join(", "),
                DEVICE_TIMEOUT.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether `dir` is a mount point now, by `/proc/mounts`.
pub fn is_mounted(dir: &str) -> bool {
    let escaped = dir
        .replace('\\', "\\134")
        .replace(' ', "\\040")
        .replace('\t', "\\011")
        .replace('\n', "\\012");
    std::fs::read_to_string("/proc/mounts").is_ok_and(|m| {
        m.lines()
            .any(|l| l.split(' ').nth(1) == Some(escaped.as_str()))
    })
}

/// What is mounted on `dir` now (the last mount there), by
/// `/proc/mounts`.
pub fn mounted_source(dir: &str) -> Option<String> {
    std::fs::read_to_string("/proc/mounts")
        .ok()?
        .lines()
        .filter_map(|l| {
            let mut fields = l.split(' ');
            let source = fields.next()?;
            (fields.next()? == dir).then(|| source.to_string())
        })
        .next_back()
}

pub use crate::provision::ssh::quote;

/// Runs `command` through `sh -c` on the host, wrapped by `wrapper` (its
/// `{{.Command}}`), handing each line of output to `output`; fails with
/// the exit status unless it is 0.
pub async fn run(
    command: &str,
    wrapper: &str,
    output: &(dyn Fn(&str) + Sync),
) -> Result<(), String> {
    use crate::provision::ssh::{Exit, Stream};
    let mut pending: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    let mut lines = |stream: Stream, data: &[u8]| {
        let buffer = &mut pending[matches!(stream, Stream::Stderr) as usize];
        buffer.extend_from_slice(data);
        while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=end).collect();
            output(String::from_utf8_lossy(&line[..end]).trim_end_matches('\r'));
        }
    };
    let exit = crate::provision::chroot::run_wrapped(command, wrapper, &[], &mut lines).await?;
    for rest in pending.iter().filter(|b| !b.is_empty()) {
        output(&String::from_utf8_lossy(rest));
    }
    match exit {
        Exit::Status(0) => Ok(()),
        Exit::Status(code) => Err(format!("`{command}` failed (exit status: {code})")),
        Exit::Disconnected => Err(format!("`{command}` was killed")),
    }
}

/// Ends the processes whose root or working folder is in `dir`: what a
/// provisioner left running in the chroot, or the commands of a run that
/// was killed, which would keep the volume busy forever.
fn end_processes_in(dir: &str) {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    let inside = |link: PathBuf| link.starts_with(dir);
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let path = entry.path();
        let held = ["root", "cwd"]
            .iter()
            .any(|l| std::fs::read_link(path.join(l)).is_ok_and(inside));
        if held && pid != std::process::id() as i32 {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}

/// Unmounts `dir` if it is mounted; a busy mount is tried again for a
/// while, then the processes still in it are ended (what a provisioner or
/// a killed run left there).
pub async fn unmount(dir: &str) -> Result<(), String> {
    let start = Instant::now();
    let mut ended = false;
    while is_mounted(dir) {
        if !ended && start.elapsed() > Duration::from_secs(2) {
            end_processes_in(dir);
            ended = true;
        }
        let out = tokio::process::Command::new("umount")
            .arg(dir)
            .output()
            .await
            .map_err(|e| format!("running umount: {e}"))?;
        if !out.status.success() && start.elapsed() > Duration::from_secs(10) {
            return Err(format!(
                "umount {dir}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        if !out.status.success() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_is_chosen_among_free_names() {
        let device = free_device().unwrap();
        assert!(device.starts_with("/dev/xvd") || device.starts_with("/dev/sd"));
        assert!(!Path::new(&device).exists());
    }

    #[test]
    fn the_root_is_mounted_and_a_fresh_folder_is_not() {
        assert!(is_mounted("/"));
        assert!(!is_mounted("/no/such/osci/folder"));
    }
}
