//! The small Linux userland of the catalogue images, assembled from this
//! machine's own programs and the libraries they load, so that it needs no
//! network and runs on the host's kernel under `chroot`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What a provisioning script expects to find: a POSIX shell, bash, and
/// the core utilities. Programs the host lacks are left out.
const PROGRAMS: &[&str] = &[
    "sh",
    "bash",
    "cat",
    "ls",
    "mkdir",
    "rm",
    "rmdir",
    "cp",
    "mv",
    "ln",
    "chmod",
    "chown",
    "env",
    "test",
    "true",
    "false",
    "sleep",
    "touch",
    "head",
    "tail",
    "wc",
    "grep",
    "sed",
    "tr",
    "cut",
    "sort",
    "uniq",
    "uname",
    "id",
    "whoami",
    "hostname",
    "stat",
    "find",
    "tar",
    "gzip",
    "printf",
    "echo",
    "dirname",
    "basename",
    "mktemp",
    "date",
    "sync",
    "md5sum",
    "sha256sum",
    "tee",
    "readlink",
    "realpath",
    "xargs",
    "du",
    "df",
    "install",
    "awk",
    "diff",
    "cmp",
    "seq",
    "yes",
    // Block devices, for builds that partition and fill a volume of their
    // VM (bsusurrogate); those this machine lacks are left out.
    "mount",
    "umount",
    "mkfs.ext4",
    "mke2fs",
    "parted",
    "partprobe",
    "blkid",
];

/// Fills `root` with the userland of an image named `image_name`.
pub fn build(root: &Path, image_name: &str) -> Result<(), String> {
    let io = |what: &str, e: std::io::Error| format!("building the image userland ({what}): {e}");
    for dir in [
        "usr/bin", "etc", "root", "tmp", "home", "var/lib", "dev", "run",
    ] {
        std::fs::create_dir_all(root.join(dir)).map_err(|e| io(dir, e))?;
    }
    // Merged /usr, as on current Debian and Ubuntu.
    for (link, target) in [("bin", "usr/bin"), ("sbin", "usr/bin")] {
        std::os::unix::fs::symlink(target, root.join(link)).map_err(|e| io(link, e))?;
    }
    set_mode(&root.join("tmp"), 0o1777).map_err(|e| io("tmp", e))?;
    set_mode(&root.join("root"), 0o700).map_err(|e| io("root", e))?;
    let mut libraries = BTreeSet::new();
    for program in PROGRAMS {
        let Some(path) = super::disk::find_program(program) else {
            continue;
        };
        let dest = root.join("usr/bin").join(program);
        std::fs::copy(&path, &dest).map_err(|e| io(program, e))?;
        libraries.extend(libraries_of(&path));
    }
    for lib in libraries {
        let dest = root.join(lib.strip_prefix("/").unwrap_or(&lib));
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io("libraries", e))?;
        }
        std::fs::copy(&lib, &dest).map_err(|e| io(&lib.display().to_string(), e))?;
    }
    let distribution = image_name.split('-').next().unwrap_or(image_name);
    let files = [
        (
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\noutscale:x:1000:1000::/home/outscale:/bin/sh\n"
                .to_string(),
        ),
        ("etc/group", "root:x:0:\noutscale:x:1000:\n".to_string()),
        ("etc/hostname", "localhost\n".to_string()),
        (
            "etc/os-release",
            format!(
                "NAME=\"{distribution}\"\nPRETTY_NAME=\"{image_name} (osci simulator)\"\nID={}\n",
                distribution.to_lowercase()
            ),
        ),
    ];
    for (path, content) in files {
        std::fs::write(root.join(path), content).map_err(|e| io(path, e))?;
    }
    std::fs::create_dir_all(root.join("home/outscale")).map_err(|e| io("home", e))?;
    // As on systemd images: name resolution is resolved's, at boot.
    std::os::unix::fs::symlink(
        "../run/systemd/resolve/stub-resolv.conf",
        root.join("etc/resolv.conf"),
    )
    .map_err(|e| io("etc/resolv.conf", e))?;
    // Commands already run as root; templates written for real images
    // still say `sudo`, which then just runs what it is given.
    // `reboot` asks the simulator, which restarts the VM's processes and
    // sessions (see `sshd`).
    let reboot = format!(
        "#!/bin/sh\n: > /{}\nsleep 60\n",
        super::sshd::REBOOT_REQUEST
    );
    for (name, script) in [("sudo", SUDO), ("reboot", reboot.as_str())] {
        let path = root.join("usr/bin").join(name);
        std::fs::write(&path, script).map_err(|e| io(name, e))?;
        set_mode(&path, 0o755).map_err(|e| io(name, e))?;
    }
    Ok(())
}

const SUDO: &str = r#"#!/bin/sh
# osci simulator: everything runs as root already; run the command given.
while [ $# -gt 0 ]; do
    case "$1" in
        -u|-g|-p|-C|-r|-t|-U) [ $# -ge 2 ] && shift 2 || shift ;;
        --) shift; break ;;
        -*) shift ;;
        *) break ;;
    esac
done
[ $# -eq 0 ] && exec /bin/sh
exec "$@"
"#;

fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// The shared libraries (and the loader) `program` needs, as `ldd` names
/// them: the loader looks them up at those paths inside the image.
fn libraries_of(program: &Path) -> Vec<PathBuf> {
    let Ok(out) = Command::new("ldd").arg(program).output() else {
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter(|word| word.starts_with('/'))
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .collect()
}
