//! Under injected throttling and lost answers, a full build-shaped scenario
//! still succeeds against `osci sim serve --faults`, and retries create no
//! duplicates.

mod common;

use std::collections::HashMap;

use common::{SimProcess, fast_wait};
use osci::oapi::Client;
use osci::oapi::model::*;
use osci::oapi::wait::Waiters;

fn client(sim: &SimProcess) -> Client {
    common::http_client(
        HashMap::from([
            ("OSC_ENDPOINT_API", sim.endpoint.clone()),
            ("OSC_ACCESS_KEY", sim.access_key.clone()),
            ("OSC_SECRET_KEY", sim.secret_key.clone()),
        ]),
        None,
        10,
    )
    .unwrap()
}

async fn count<O: osci::oapi::Paginated + Clone>(client: &Client, request: O) -> usize {
    client.read_all(&request).await.unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_percent_throttling_and_lost_answers() {
    let sim = SimProcess::start(&[
        "--faults",
        "seed=7,throttle=0.3,busy=0.05,drop@CreateVms*1,drop@CreateVolume*1,drop@CreateSnapshot*1",
    ]);
    let c = client(&sim);
    let waiters = Waiters::new(&c);
    let policy = fast_wait();

    let image = c
        .read_all(&ReadImagesRequest {
            filters: Some(FiltersImage {
                image_names: Some(vec!["Debian-12-*".into()]),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .remove(0);
    c.call(&CreateKeypairRequest {
        keypair_name: "osci-faults".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let sg = c
        .call(&CreateSecurityGroupRequest {
            security_group_name: "osci-faults".into(),
            description: "fault test".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .security_group;
    c.call(&CreateSecurityGroupRuleRequest {
        security_group_id: sg.security_group_id.clone(),
        flow: "Inbound".into(),
        ip_protocol: Some("tcp".into()),
        from_port_range: Some(22),
        to_port_range: Some(22),
        ip_range: Some("127.0.0.0/8".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    // The first CreateVms answer is lost after the VM was made: the retry
    // with the same ClientToken must find it rather than make a second.
    let vm = c
        .call(&CreateVmsRequest {
            image_id: image.image_id.clone(),
            keypair_name: Some("osci-faults".into()),
            security_group_ids: Some(vec![sg.security_group_id.clone()]),
            client_token: Some("faults-vm".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .vms
        .remove(0);
    let volume = c
        .call(&CreateVolumeRequest {
            subregion_name: "eu-west-2a".into(),
            size: Some(2),
            client_token: Some("faults-vol".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .volume;
    let (running, available) = tokio::join!(
        waiters.vm(&vm.vm_id, "running", &policy),
        waiters.volume_available(&volume.volume_id, &policy)
    );
    running.unwrap();
    available.unwrap();
    c.call(&LinkVolumeRequest {
        volume_id: volume.volume_id.clone(),
        vm_id: vm.vm_id.clone(),
        device_name: "/dev/xvdb".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    waiters
        .volume_attached(&volume.volume_id, &policy)
        .await
        .unwrap();
    let snap = c
        .call(&CreateSnapshotRequest {
            volume_id: Some(volume.volume_id.clone()),
            client_token: Some("faults-snap".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .snapshot;
    waiters
        .snapshot_completed(&snap.snapshot_id, &policy)
        .await
        .unwrap();
    c.call(&StopVmsRequest {
        vm_ids: vec![vm.vm_id.clone()],
        ..Default::default()
    })
    .await
    .unwrap();
    waiters.vm(&vm.vm_id, "stopped", &policy).await.unwrap();
    let omi = c
        .call(&CreateImageRequest {
            vm_id: Some(vm.vm_id.clone()),
            image_name: Some("faults-omi".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .image;
    let omi = waiters
        .image_available(&omi.image_id, &policy)
        .await
        .unwrap();
    c.call(&CreateTagsRequest {
        resource_ids: vec![omi.image_id.clone()],
        tags: vec![ResourceTag::new("osci:build", "faults")],
        ..Default::default()
    })
    .await
    .unwrap();

    // Exactly one of everything.
    let account = sim.account_id.clone();
    assert_eq!(
        count(
            &c,
            ReadVmsRequest {
                filters: Some(FiltersVm {
                    client_tokens: Some(vec!["faults-vm".into()]),
                    ..Default::default()
                }),
                ..Default::default()
            }
        )
        .await,
        1
    );
    // The VM launched, and the host: the VM this machine is.
    assert_eq!(count(&c, ReadVmsRequest::default()).await, 2);
    assert_eq!(
        count(
            &c,
            ReadVolumesRequest {
                filters: Some(FiltersVolume {
                    client_tokens: Some(vec!["faults-vol".into()]),
                    ..Default::default()
                }),
                ..Default::default()
            }
        )
        .await,
        1
    );
    assert_eq!(
        count(&c, ReadVolumesRequest::default()).await,
        2,
        "root and extra volume"
    );
    let own_snapshots = ReadSnapshotsRequest {
        filters: Some(FiltersSnapshot {
            account_ids: Some(vec![account.clone()]),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_eq!(
        count(&c, own_snapshots.clone()).await,
        3,
        "one made directly, two by CreateImage"
    );
    let own_images = ReadImagesRequest {
        filters: Some(FiltersImage {
            account_ids: Some(vec![account.clone()]),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_eq!(count(&c, own_images.clone()).await, 1);
    assert_eq!(count(&c, ReadKeypairsRequest::default()).await, 1);
    assert_eq!(
        count(&c, ReadSecurityGroupsRequest::default()).await,
        2,
        "default and osci-faults"
    );

    // Tear everything down.
    c.call(&DeleteVmsRequest {
        vm_ids: vec![vm.vm_id.clone()],
        ..Default::default()
    })
    .await
    .unwrap();
    waiters.vm(&vm.vm_id, "terminated", &policy).await.unwrap();
    c.call(&DeleteVolumeRequest {
        volume_id: volume.volume_id.clone(),
        ..Default::default()
    })
    .await
    .unwrap();
    c.call(&DeleteImageRequest {
        image_id: omi.image_id.clone(),
        ..Default::default()
    })
    .await
    .unwrap();
    for s in c.read_all(&own_snapshots).await.unwrap() {
        c.call(&DeleteSnapshotRequest {
            snapshot_id: s.snapshot_id,
            ..Default::default()
        })
        .await
        .unwrap();
    }
    c.call(&DeleteSecurityGroupRequest {
        security_group_id: Some(sg.security_group_id.clone()),
        ..Default::default()
    })
    .await
    .unwrap();
    c.call(&DeleteKeypairRequest {
        keypair_name: Some("osci-faults".into()),
        ..Default::default()
    })
    .await
    .unwrap();

    let live_vms = ReadVmsRequest {
        filters: Some(FiltersVm {
            vm_state_names: Some(vec![
                "pending".into(),
                "running".into(),
                "stopping".into(),
                "stopped".into(),
            ]),
            ..Default::default()
        }),
        ..Default::default()
    };
    // Only the host is running: the VM this machine is.
    assert_eq!(count(&c, live_vms).await, 1);
    assert_eq!(count(&c, ReadVolumesRequest::default()).await, 0);
    assert_eq!(count(&c, own_snapshots).await, 0);
    assert_eq!(count(&c, own_images).await, 0);
    assert_eq!(count(&c, ReadKeypairsRequest::default()).await, 0);
    assert_eq!(
        count(&c, ReadSecurityGroupsRequest::default()).await,
        1,
        "only the default group"
    );

    // The faults did happen.
    let stats: serde_json::Value = reqwest::get(sim.endpoint.replace("/api/v1", "/_sim/stats"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let throttled = stats["faults"]["throttle"].as_u64().unwrap_or(0);
    let calls: u64 = stats["calls"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert!(
        throttled * 100 >= calls * 15,
        "about 30% throttled: {throttled} of {calls}"
    );
    assert_eq!(stats["faults"]["drop"], 3);
    assert_eq!(
        stats["calls"]["CreateVms"].as_u64().unwrap()
            - stats["errors"]["CreateVms"].as_u64().unwrap_or(0),
        2
    );
}

/// A create that neither a ClientToken nor a unique name makes recognisable
/// (CreatePublicIp) is not sent again after a lost answer: the error is
/// reported and exactly one address exists, never two.
#[tokio::test]
async fn a_lost_answer_is_not_retried_when_a_retry_could_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let sim = common::open(
        dir.path(),
        0.0,
        osci::sim::Faults::parse("drop@CreatePublicIp*1,drop@CreateKeypair*1").unwrap(),
    );
    let c = common::client_for(&sim, None);
    let err = c.call(&CreatePublicIpRequest::default()).await.unwrap_err();
    assert!(matches!(err, osci::oapi::Error::Transport { .. }), "{err}");
    assert_eq!(count(&c, ReadPublicIpsRequest::default()).await, 1);
    assert_eq!(sim.stats()["calls"]["CreatePublicIp"], 1, "sent once");

    // A unique name makes the retry safe: the second attempt is refused as a
    // duplicate instead of creating a second keypair.
    let err = c
        .call(&CreateKeypairRequest {
            keypair_name: "once".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.api().and_then(|e| e.code()), Some("9011"), "{err}");
    assert_eq!(sim.stats()["calls"]["CreateKeypair"], 2, "sent again");
    assert_eq!(count(&c, ReadKeypairsRequest::default()).await, 1);
}

/// Concurrent waits on several VMs share one ReadVms per poll.
#[tokio::test]
async fn concurrent_waits_share_reads() {
    let t = common::in_process();
    let c = &t.client;
    let image = c
        .read_all(&ReadImagesRequest::default())
        .await
        .unwrap()
        .remove(0);
    let mut ids = Vec::new();
    for n in 0..3 {
        let vm = c
            .call(&CreateVmsRequest {
                image_id: image.image_id.clone(),
                client_token: Some(format!("batch-{n}")),
                ..Default::default()
            })
            .await
            .unwrap()
            .vms
            .remove(0);
        ids.push(vm.vm_id);
    }
    let before = t.sim.stats()["calls"]["ReadVms"].as_u64().unwrap_or(0);
    let waiters = Waiters::new(c);
    let policy = fast_wait();
    let (a, b, d) = tokio::join!(
        waiters.vm(&ids[0], "running", &policy),
        waiters.vm(&ids[1], "running", &policy),
        waiters.vm(&ids[2], "running", &policy),
    );
    for vm in [a, b, d] {
        assert_eq!(vm.unwrap().unwrap().state, "running");
    }
    let after = t.sim.stats()["calls"]["ReadVms"].as_u64().unwrap();
    assert_eq!(after - before, 1, "three waits, one ReadVms");
}
