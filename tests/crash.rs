//! The crash sweep: an apply killed right after its k-th API call, before
//! the answer reaches it, for every k in turn; then `osci destroy` must
//! leave the account as it was. The simulator runs in osci's process
//! (`sim://`), so its `crash:k` fault ends osci exactly there. Every builder
//! runs through the same sweep; the chroot builder's must also leave no
//! mount, loop device or device name on this machine.

mod common;

use common::workspace::*;
use osci::oapi::model::ReadImagesRequest;
use serde_json::{Value, json};

/// The templates the sweep runs: a builder's changes to the workspace's
/// bsu build. Over SSH (a temporary keypair, the rule for port 22, and the
/// provisioning step) only as root, as simulated VMs answer SSH only then.
fn builds() -> Vec<(&'static str, Value)> {
    let mut builds = vec![("bsu", json!({}))];
    if osci::sim::privileged() {
        builds.push((
            "bsu over ssh",
            json!({"communicator": "ssh", "ssh_username": "outscale", "ssh_timeout": "20s"}),
        ));
        // Its launch volumes' snapshots make the OMI.
        builds.push((
            "bsusurrogate",
            json!({
                "type": "osc-bsusurrogate",
                "launch_block_device_mappings": [
                    {"device_name": "/dev/sda1", "volume_size": 10},
                    {"device_name": "/dev/xvdf", "volume_size": 2}
                ],
                "omi_root_device": {"source_device_name": "/dev/xvdf", "device_name": "/dev/sda1"},
            }),
        ));
        // The volumes are the product.
        builds.push((
            "bsuvolume",
            json!({
                "type": "osc-bsuvolume", "omi_name": null, "omi_description": null, "tags": null,
                "bsu_volumes": [{"device_name": "/dev/xvdf", "volume_size": 2, "tags": {"Name": "data"}}],
            }),
        ));
        // On this machine's block devices, mounted under the workspace.
        builds.push((
            "chroot",
            json!({
                "type": "outscale-chroot", "vm_type": null, "communicator": null,
                "mount_path": "mnt/{{.Device}}",
                "root_volume_tags": {"Name": "chroot"},
            }),
        ));
    } else {
        eprintln!(
            "skipped the sweep of bsu over ssh and of chroot: simulated VMs answer SSH, and \
             volumes link to this machine, only as root"
        );
    }
    builds
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destroy_after_a_crash_at_any_call_leaves_the_account_as_it_was() {
    for (builder, changes) in builds() {
        let mut figures = Vec::new();
        for k in 1.. {
            let w = Workspace::new();
            w.template(changes.clone());
            let out = w.run_with_faults(
                &format!("crash:{k}"),
                &["apply", "t.json", "--auto-approve"],
            );
            if out.status.success() {
                // The apply made fewer than k calls: every call was tried.
                assert!(k > 10, "{builder}: an apply of only {} calls?", k - 1);
                break;
            }
            assert_eq!(
                out.status.code(),
                Some(137),
                "{builder}, call {k}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            // The killed apply's lock goes with its last open descriptor;
            // seen once to outlive its process by a moment (a child it was
            // starting): a destroy run then is refused, so wait for it.
            let mut destroyed = w.run(&["destroy", "t.json", "--auto-approve"]);
            for _ in 0..50 {
                if !String::from_utf8_lossy(&destroyed.stderr).contains("is locked by") {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
                destroyed = w.run(&["destroy", "t.json", "--auto-approve"]);
            }
            let stderr = ok(&destroyed);
            assert!(!stderr.contains("secret"), "{stderr}");
            let (sim, client) = w.client();
            let account = sim.default_account();
            let left = leftovers(&client, &account.account_id).await;
            let catalogue = client
                .read_all(&ReadImagesRequest::default())
                .await
                .unwrap()
                .len();
            for file in ["state/t.json", "state/t.json.backup"] {
                if let Ok(text) = std::fs::read_to_string(w.path().join(file)) {
                    assert!(
                        !text.contains(account.secret_key.expose()),
                        "{builder}, call {k}: the secret key is in {file}"
                    );
                }
            }
            assert!(
                left.is_empty(),
                "{builder}, crash after call {k}: destroy left {left:?}"
            );
            let on_host = host_leftovers(&w);
            assert!(
                on_host.is_empty(),
                "{builder}, crash after call {k}: destroy left on this machine {on_host:?}"
            );
            assert_eq!(
                catalogue, 4,
                "{builder}, call {k}: the catalogue is untouched"
            );
            if w.path().join("state/t.json").exists() {
                assert!(w.addresses().is_empty(), "{:?}", w.addresses());
            }
            figures.push(left.len() + catalogue);
        }
        println!(
            "{builder}: crashed after each of {} calls; resources in the account after destroy: {figures:?}",
            figures.len()
        );
        assert!(figures.iter().all(|f| *f == figures[0]));
    }
}
