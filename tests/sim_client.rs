//! The client against the simulator, operation by operation: what succeeds
//! does what the API promises, and what must fail fails with the real code.

mod common;

use base64::Engine;
use common::{api_error, assert_code, client_for, fast_wait, in_process};
use osci::oapi::model::*;
use osci::oapi::wait::Waiters;
use osci::oapi::{Client, Secret};

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

async fn catalogue_image(client: &Client) -> Image {
    let images = client
        .read_all(&ReadImagesRequest {
            filters: Some(FiltersImage {
                account_aliases: Some(vec!["Outscale".into()]),
                image_names: Some(vec!["Ubuntu-22.04-*".into()]),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(images.len(), 2, "two seeded Ubuntu images");
    images
        .into_iter()
        .max_by(|a, b| a.creation_date.cmp(&b.creation_date))
        .unwrap()
}

async fn launch(client: &Client, image: &str, token: &str) -> Vm {
    let vms = client
        .call(&CreateVmsRequest {
            image_id: image.into(),
            vm_type: Some("tinav5.c2r4p2".into()),
            client_token: Some(token.into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .vms;
    assert_eq!(vms.len(), 1);
    vms.into_iter().next().unwrap()
}

#[tokio::test]
async fn accounts_regions_and_subregions() {
    let t = in_process();
    let accounts = t
        .client
        .call(&ReadAccountsRequest::default())
        .await
        .unwrap();
    assert_eq!(accounts.accounts.len(), 1);
    assert_eq!(
        accounts.accounts[0].account_id,
        t.sim.default_account().account_id
    );

    let regions = t.client.call(&ReadRegionsRequest::default()).await.unwrap();
    assert_eq!(regions.regions[0].region_name, "eu-west-2");

    let all = t
        .client
        .read_all(&ReadSubregionsRequest::default())
        .await
        .unwrap();
    let names: Vec<_> = all.iter().map(|s| s.subregion_name.as_str()).collect();
    assert_eq!(names, ["eu-west-2a", "eu-west-2b", "eu-west-2c"]);
    let one = t
        .client
        .call(&ReadSubregionsRequest {
            filters: Some(FiltersSubregion {
                subregion_names: Some(vec!["eu-west-2b".into()]),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(one.subregions.len(), 1);
    assert_code(
        t.client
            .call(&ReadSubregionsRequest {
                results_per_page: Some(0),
                ..Default::default()
            })
            .await,
        400,
        "4047",
    );

    // Wrong secret: 401 code 1; unsigned calls are refused except ReadRegions.
    let bad = client_for(
        &t.sim,
        Some((t.sim.default_account().access_key, Secret::new("wrong"))),
    );
    let e = api_error(bad.call(&ReadAccountsRequest::default()).await);
    assert_eq!((e.status, e.code()), (401, Some("1")));
    assert!(e.to_string().contains("clock"));
    bad.call(&ReadRegionsRequest::default()).await.unwrap();
}

#[tokio::test]
async fn four_bad_signatures_lock_the_key() {
    let t = in_process();
    let account = t.sim.default_account();
    let bad = client_for(
        &t.sim,
        Some((account.access_key.clone(), Secret::new("wrong"))),
    );
    for _ in 0..4 {
        assert_code(bad.call(&ReadAccountsRequest::default()).await, 401, "1");
    }
    // Now even the right secret is refused for a while.
    assert_code(
        t.client.call(&ReadAccountsRequest::default()).await,
        401,
        "13",
    );
}

#[tokio::test]
async fn keypairs() {
    let t = in_process();
    let created = t
        .client
        .call(&CreateKeypairRequest {
            keypair_name: "build-key".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .keypair;
    let pem = created.private_key.as_ref().unwrap().expose();
    assert!(
        pem.starts_with("-----BEGIN RSA PRIVATE KEY-----"),
        "PKCS#1 PEM"
    );
    assert!(created.keypair_id.as_ref().unwrap().starts_with("key-"));
    assert_eq!(created.keypair_id.as_ref().unwrap().len(), 4 + 32);
    assert_eq!(created.keypair_type.as_deref(), Some("ssh-rsa"));
    assert_code(
        t.client
            .call(&CreateKeypairRequest {
                keypair_name: "build-key".into(),
                ..Default::default()
            })
            .await,
        409,
        "9011",
    );

    // Import the public half of a key made here: same fingerprint on re-import.
    use rsa::pkcs8::EncodePublicKey;
    let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
    let public_pem = key
        .to_public_key()
        .to_public_key_pem(rsa::pkcs8::LineEnding::LF)
        .unwrap();
    let imported = t
        .client
        .call(&CreateKeypairRequest {
            keypair_name: "imported".into(),
            public_key: Some(b64(&public_pem)),
            ..Default::default()
        })
        .await
        .unwrap()
        .keypair;
    assert!(
        imported.private_key.is_none(),
        "no private key for an import"
    );
    assert_code(
        t.client
            .call(&CreateKeypairRequest {
                keypair_name: "bad".into(),
                public_key: Some(b64("not a key")),
                ..Default::default()
            })
            .await,
        400,
        "4033",
    );

    let read = t
        .client
        .read_all(&ReadKeypairsRequest {
            filters: Some(FiltersKeypair {
                keypair_names: Some(vec!["imported".into()]),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].keypair_fingerprint, imported.keypair_fingerprint);

    t.client
        .call(&DeleteKeypairRequest {
            keypair_name: Some("build-key".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    t.client
        .call(&DeleteKeypairRequest {
            keypair_id: imported.keypair_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        t.client
            .read_all(&ReadKeypairsRequest::default())
            .await
            .unwrap()
            .is_empty()
    );
    assert_code(
        t.client
            .call(&DeleteKeypairRequest {
                keypair_name: Some("build-key".into()),
                ..Default::default()
            })
            .await,
        400,
        "5071",
    );
}

#[tokio::test]
async fn images_are_shared_through_permissions() {
    let t = in_process();
    let waiters = Waiters::new(&t.client);
    let policy = fast_wait();
    let source = catalogue_image(&t.client).await;
    assert_eq!(source.image_name, "Ubuntu-22.04-2025.06.10-0");

    // Pagination: one image per page still finds every public image.
    let paged = t
        .client
        .read_all(&ReadImagesRequest {
            results_per_page: Some(1),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(paged.len(), 4);

    let vm = launch(&t.client, &source.image_id, "tok-image").await;
    waiters.vm(&vm.vm_id, "running", &policy).await.unwrap();
    t.client
        .call(&StopVmsRequest {
            vm_ids: vec![vm.vm_id.clone()],
            ..Default::default()
        })
        .await
        .unwrap();
    waiters.vm(&vm.vm_id, "stopped", &policy).await.unwrap();

    let image = t
        .client
        .call(&CreateImageRequest {
            vm_id: Some(vm.vm_id.clone()),
            image_name: Some("golden-1".into()),
            description: Some("built by a test".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .image;
    assert_eq!(image.state, "pending");
    let image = waiters
        .image_available(&image.image_id, &policy)
        .await
        .unwrap();
    let snapshots = image.snapshot_ids();
    assert_eq!(snapshots.len(), 1);
    assert_eq!(image.root_device_name.as_deref(), Some("/dev/sda1"));
    let snap = waiters
        .snapshot_completed(&snapshots[0], &policy)
        .await
        .unwrap();
    assert_eq!(snap.volume_size, 10);

    assert_code(
        t.client
            .call(&CreateImageRequest {
                vm_id: Some(vm.vm_id.clone()),
                image_name: Some("golden-1".into()),
                ..Default::default()
            })
            .await,
        409,
        "9015",
    );
    assert_code(
        t.client
            .call(&CreateImageRequest {
                vm_id: Some(vm.vm_id.clone()),
                image_name: Some("x!".into()),
                ..Default::default()
            })
            .await,
        400,
        "4026",
    );
    assert_code(
        t.client
            .call(&CreateImageRequest {
                vm_id: Some("i-00000000".into()),
                image_name: Some("nope".into()),
                ..Default::default()
            })
            .await,
        400,
        "5063",
    );

    // The second account sees the image only once it is shared.
    let other = t.sim.create_account().unwrap();
    let other_client = client_for(
        &t.sim,
        Some((other.access_key.clone(), other.secret_key.clone())),
    );
    let by_name = ReadImagesRequest {
        filters: Some(FiltersImage {
            image_names: Some(vec!["golden-1".into()]),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert!(other_client.read_all(&by_name).await.unwrap().is_empty());
    let updated = t
        .client
        .call(&UpdateImageRequest {
            image_id: image.image_id.clone(),
            permissions_to_launch: Some(PermissionsOnResourceCreation {
                additions: Some(PermissionsChange {
                    account_ids: Some(vec![other.account_id.clone()]),
                    global_permission: None,
                }),
                removals: None,
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .image;
    assert_eq!(
        updated.permissions_to_launch.account_ids,
        vec![other.account_id.clone()]
    );
    let seen = other_client.read_all(&by_name).await.unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].account_id, t.sim.default_account().account_id);
    // Shared is not owned: the other account cannot change or delete it.
    assert_code(
        other_client
            .call(&DeleteImageRequest {
                image_id: image.image_id.clone(),
                ..Default::default()
            })
            .await,
        400,
        "4047",
    );
    assert_code(
        t.client
            .call(&UpdateImageRequest {
                image_id: image.image_id.clone(),
                permissions_to_launch: Some(PermissionsOnResourceCreation {
                    additions: Some(PermissionsChange {
                        account_ids: Some(vec!["not-an-account".into()]),
                        global_permission: None,
                    }),
                    removals: None,
                }),
                ..Default::default()
            })
            .await,
        400,
        "4047",
    );

    // A snapshot in use by an image cannot go; after the image it can.
    assert_code(
        t.client
            .call(&DeleteSnapshotRequest {
                snapshot_id: snapshots[0].clone(),
                ..Default::default()
            })
            .await,
        424,
        "1000",
    );
    let by_owner = ReadImagesRequest {
        filters: Some(FiltersImage {
            account_ids: Some(vec![t.sim.default_account().account_id]),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_eq!(t.client.read_all(&by_owner).await.unwrap().len(), 1);
    t.client
        .call(&DeleteImageRequest {
            image_id: image.image_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(t.client.read_all(&by_owner).await.unwrap().is_empty());
    t.client
        .call(&DeleteSnapshotRequest {
            snapshot_id: snapshots[0].clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_code(
        t.client
            .call(&DeleteSnapshotRequest {
                snapshot_id: snapshots[0].clone(),
                ..Default::default()
            })
            .await,
        400,
        "5054",
    );
    // The seeded catalogue is untouched.
    assert_eq!(
        t.client
            .read_all(&ReadImagesRequest::default())
            .await
            .unwrap()
            .len(),
        4
    );

    // Copy and registration from snapshots.
    let copy = t
        .client
        .call(&CreateImageRequest {
            source_image_id: Some(source.image_id.clone()),
            source_region_name: Some("eu-west-2".into()),
            image_name: Some("copy-of-ubuntu".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .image;
    let copy = waiters
        .image_available(&copy.image_id, &policy)
        .await
        .unwrap();
    assert_ne!(copy.snapshot_ids(), source.snapshot_ids());
    let registered = t
        .client
        .call(&CreateImageRequest {
            image_name: Some("registered".into()),
            root_device_name: Some("/dev/sda1".into()),
            block_device_mappings: Some(vec![BlockDeviceMappingImage {
                device_name: Some("/dev/sda1".into()),
                virtual_device_name: None,
                bsu: Some(BsuToCreate {
                    snapshot_id: Some(copy.snapshot_ids()[0].clone()),
                    volume_size: Some(20),
                    ..Default::default()
                }),
            }]),
            ..Default::default()
        })
        .await
        .unwrap()
        .image;
    assert_eq!(
        registered.block_device_mappings[0]
            .bsu
            .as_ref()
            .unwrap()
            .volume_size,
        Some(20)
    );
    assert_code(
        t.client
            .call(&CreateImageRequest {
                source_image_id: Some(source.image_id.clone()),
                source_region_name: Some("us-east-2".into()),
                image_name: Some("elsewhere".into()),
                ..Default::default()
            })
            .await,
        400,
        "4047",
    );
}

#[tokio::test]
async fn vm_life_cycle_volumes_and_security_groups() {
    let t = in_process();
    let c = &t.client;
    let waiters = Waiters::new(c);
    let policy = fast_wait();
    let image = catalogue_image(c).await;

    let sg = c
        .call(&CreateSecurityGroupRequest {
            security_group_name: "osci-build".into(),
            description: "temporary".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .security_group;
    assert!(sg.security_group_id.starts_with("sg-"));
    assert_code(
        c.call(&CreateSecurityGroupRequest {
            security_group_name: "osci-build".into(),
            description: "again".into(),
            ..Default::default()
        })
        .await,
        409,
        "9008",
    );
    let ssh_rule = CreateSecurityGroupRuleRequest {
        security_group_id: sg.security_group_id.clone(),
        flow: "Inbound".into(),
        ip_protocol: Some("tcp".into()),
        from_port_range: Some(22),
        to_port_range: Some(22),
        ip_range: Some("127.0.0.0/8".into()),
        ..Default::default()
    };
    let with_rule = c.call(&ssh_rule).await.unwrap().security_group;
    assert_eq!(with_rule.inbound_rules.len(), 1);
    assert_eq!(
        with_rule.inbound_rules[0].ip_ranges.as_deref(),
        Some(&["127.0.0.0/8".to_string()][..])
    );
    assert_code(c.call(&ssh_rule).await, 409, "9005");
    assert_code(
        c.call(&CreateSecurityGroupRuleRequest {
            ip_range: Some("300.0.0.0/8".into()),
            ..ssh_rule.clone()
        })
        .await,
        400,
        "4047",
    );
    assert_code(
        c.call(&CreateSecurityGroupRuleRequest {
            flow: "Outbound".into(),
            ..ssh_rule.clone()
        })
        .await,
        400,
        "4047",
    );
    let found = c
        .read_all(&ReadSecurityGroupsRequest {
            filters: Some(FiltersSecurityGroup {
                inbound_rule_ip_ranges: Some(vec!["127.0.0.0/8".into()]),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(found.len(), 1);

    let vm = c
        .call(&CreateVmsRequest {
            image_id: image.image_id.clone(),
            security_group_ids: Some(vec![sg.security_group_id.clone()]),
            client_token: Some("tok-vm".into()),
            user_data: Some(b64("#!/bin/sh\necho hi\n")),
            block_device_mappings: Some(vec![BlockDeviceMappingVmCreation {
                device_name: Some("/dev/sda1".into()),
                bsu: Some(BsuToCreate {
                    volume_size: Some(15),
                    volume_type: Some("gp2".into()),
                    ..Default::default()
                }),
                ..Default::default()
            }]),
            ..Default::default()
        })
        .await
        .unwrap()
        .vms
        .remove(0);
    assert_eq!(vm.state, "pending");
    assert!(vm.vm_id.starts_with("i-"));
    // The same ClientToken gives back the same VM, not a second one.
    let again = launch(c, &image.image_id, "tok-vm").await;
    assert_eq!(again.vm_id, vm.vm_id);
    assert_code(
        c.call(&CreateVmsRequest {
            image_id: "ami-00000000".into(),
            ..Default::default()
        })
        .await,
        400,
        "5023",
    );
    assert_code(
        c.call(&CreateVmsRequest {
            image_id: image.image_id.clone(),
            vm_type: Some("enormous".into()),
            ..Default::default()
        })
        .await,
        400,
        "4047",
    );
    assert_code(
        c.call(&CreateVmsRequest {
            image_id: image.image_id.clone(),
            keypair_name: Some("missing".into()),
            ..Default::default()
        })
        .await,
        400,
        "5071",
    );

    let running = waiters
        .vm(&vm.vm_id, "running", &policy)
        .await
        .unwrap()
        .unwrap();
    let octets = |ip: Option<&str>| -> [u8; 4] {
        ip.unwrap().parse::<std::net::Ipv4Addr>().unwrap().octets()
    };
    let public = octets(running.public_ip.as_deref());
    let private = octets(running.private_ip.as_deref());
    assert!(
        public[0] == 127 && (100..=199).contains(&public[1]),
        "{public:?}"
    );
    assert!(
        private[0] == 127 && (1..=99).contains(&private[1]),
        "{private:?}"
    );
    let root = &running.block_device_mappings[0];
    assert_eq!(root.device_name, "/dev/sda1");
    let root_volume = root.bsu.volume_id.clone();

    // A malformed id is an error; a well-formed unknown one matches nothing.
    assert_code(c.call(&ReadVmsRequest::id("bogus")).await, 400, "4105");
    let none = c.read_all(&ReadVmsRequest::id("i-0000abcd")).await.unwrap();
    assert!(none.is_empty());
    let states = c.read_all(&ReadVmsStateRequest::default()).await.unwrap();
    assert!(
        states
            .iter()
            .any(|s| s.vm_id == vm.vm_id && s.vm_state == "running")
    );
    let console = c
        .call(&ReadConsoleOutputRequest {
            vm_id: vm.vm_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    let text = base64::engine::general_purpose::STANDARD
        .decode(console.console_output.unwrap())
        .unwrap();
    assert!(
        String::from_utf8(text)
            .unwrap()
            .contains("pending -> running")
    );
    let password = c
        .call(&ReadAdminPasswordRequest {
            vm_id: vm.vm_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(password.admin_password.as_deref(), Some(""));
    assert_code(
        c.call(&ReadAdminPasswordRequest {
            vm_id: "i-deadbeef".into(),
            ..Default::default()
        })
        .await,
        400,
        "5063",
    );

    // The security group is in use.
    assert_code(
        c.call(&DeleteSecurityGroupRequest {
            security_group_id: Some(sg.security_group_id.clone()),
            ..Default::default()
        })
        .await,
        424,
        "1000",
    );

    // An extra volume: create, link, unlink, delete.
    let volume = c
        .call(&CreateVolumeRequest {
            subregion_name: "eu-west-2a".into(),
            size: Some(4),
            client_token: Some("tok-vol".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .volume;
    assert_eq!(volume.state, "creating");
    let again = c
        .call(&CreateVolumeRequest {
            subregion_name: "eu-west-2a".into(),
            size: Some(4),
            client_token: Some("tok-vol".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .volume;
    assert_eq!(again.volume_id, volume.volume_id);
    assert_code(
        c.call(&CreateVolumeRequest {
            subregion_name: "mars-1a".into(),
            size: Some(4),
            ..Default::default()
        })
        .await,
        400,
        "4081",
    );
    assert_code(
        c.call(&CreateVolumeRequest {
            subregion_name: "eu-west-2a".into(),
            size: Some(20000),
            ..Default::default()
        })
        .await,
        400,
        "4078",
    );
    waiters
        .volume_available(&volume.volume_id, &policy)
        .await
        .unwrap();
    let link = LinkVolumeRequest {
        volume_id: volume.volume_id.clone(),
        vm_id: vm.vm_id.clone(),
        device_name: "/dev/xvdf".into(),
        ..Default::default()
    };
    c.call(&link).await.unwrap();
    let attached = waiters
        .volume_attached(&volume.volume_id, &policy)
        .await
        .unwrap();
    assert_eq!(attached.linked_volumes[0].vm_id, vm.vm_id);
    assert_code(c.call(&link).await, 409, "6007");
    assert_code(
        c.call(&DeleteVolumeRequest {
            volume_id: volume.volume_id.clone(),
            ..Default::default()
        })
        .await,
        424,
        "1000",
    );
    let linked = c
        .read_all(&ReadVolumesRequest {
            filters: Some(FiltersVolume {
                link_volume_vm_ids: Some(vec![vm.vm_id.clone()]),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(linked.len(), 2, "root and extra volume");
    // The root device of a running VM cannot be unlinked.
    assert_code(
        c.call(&UnlinkVolumeRequest {
            volume_id: root_volume.clone(),
            ..Default::default()
        })
        .await,
        409,
        "6006",
    );

    // Snapshot of the linked volume, idempotent on its token, then shared.
    let snap = c
        .call(&CreateSnapshotRequest {
            volume_id: Some(volume.volume_id.clone()),
            client_token: Some("tok-snap".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .snapshot;
    let again = c
        .call(&CreateSnapshotRequest {
            volume_id: Some(volume.volume_id.clone()),
            client_token: Some("tok-snap".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .snapshot;
    assert_eq!(again.snapshot_id, snap.snapshot_id);
    waiters
        .snapshot_completed(&snap.snapshot_id, &policy)
        .await
        .unwrap();
    let other = t.sim.create_account().unwrap();
    let shared = c
        .call(&UpdateSnapshotRequest {
            snapshot_id: snap.snapshot_id.clone(),
            permissions_to_create_volume: PermissionsOnResourceCreation {
                additions: Some(PermissionsChange {
                    account_ids: Some(vec![other.account_id.clone()]),
                    global_permission: None,
                }),
                removals: None,
            },
            ..Default::default()
        })
        .await
        .unwrap()
        .snapshot;
    assert_eq!(
        shared.permissions_to_create_volume.account_ids,
        vec![other.account_id.clone()]
    );
    let other_client = client_for(&t.sim, Some((other.access_key, other.secret_key)));
    let from_shared = other_client
        .call(&CreateVolumeRequest {
            subregion_name: "eu-west-2b".into(),
            snapshot_id: Some(snap.snapshot_id.clone()),
            ..Default::default()
        })
        .await
        .unwrap()
        .volume;
    assert_eq!(from_shared.size, 4);
    assert_code(
        c.call(&CreateSnapshotRequest {
            volume_id: Some("vol-00000000".into()),
            ..Default::default()
        })
        .await,
        400,
        "5064",
    );

    c.call(&UnlinkVolumeRequest {
        volume_id: volume.volume_id.clone(),
        ..Default::default()
    })
    .await
    .unwrap();
    waiters
        .volume_available(&volume.volume_id, &policy)
        .await
        .unwrap();

    // Stop and start.
    let stopped = c
        .call(&StopVmsRequest {
            vm_ids: vec![vm.vm_id.clone()],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(stopped.vms[0].previous_state, "running");
    assert_eq!(stopped.vms[0].current_state, "stopping");
    waiters.vm(&vm.vm_id, "stopped", &policy).await.unwrap();
    c.call(&StartVmsRequest {
        vm_ids: vec![vm.vm_id.clone()],
        ..Default::default()
    })
    .await
    .unwrap();
    waiters.vm(&vm.vm_id, "running", &policy).await.unwrap();
    assert_code(
        c.call(&StartVmsRequest {
            vm_ids: vec!["i-00000000".into()],
            ..Default::default()
        })
        .await,
        400,
        "5063",
    );

    // Link the extra volume again with DeleteOnVmDeletion false (the default
    // for LinkVolume), then terminate the VM: the root volume goes, the
    // extra one is freed.
    c.call(&link).await.unwrap();
    waiters
        .volume_attached(&volume.volume_id, &policy)
        .await
        .unwrap();
    let deleted = c
        .call(&DeleteVmsRequest {
            vm_ids: vec![vm.vm_id.clone()],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(deleted.vms[0].current_state, "shutting-down");
    let terminated = waiters
        .vm(&vm.vm_id, "terminated", &policy)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(terminated.state, "terminated", "terminated VMs stay listed");
    assert_code(
        c.call(&StopVmsRequest {
            vm_ids: vec![vm.vm_id.clone()],
            ..Default::default()
        })
        .await,
        409,
        "6006",
    );
    let volumes = c.read_all(&ReadVolumesRequest::default()).await.unwrap();
    assert!(
        !volumes.iter().any(|v| v.volume_id == root_volume),
        "root volume deleted with the VM"
    );
    let extra = volumes
        .iter()
        .find(|v| v.volume_id == volume.volume_id)
        .unwrap();
    assert_eq!(extra.state, "available");
    c.call(&DeleteVolumeRequest {
        volume_id: volume.volume_id.clone(),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_code(
        c.call(&DeleteVolumeRequest {
            volume_id: volume.volume_id.clone(),
            ..Default::default()
        })
        .await,
        400,
        "5064",
    );

    // With the VM terminated the group can go, rule first.
    c.call(&DeleteSecurityGroupRuleRequest {
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
    assert_code(
        c.call(&DeleteSecurityGroupRuleRequest {
            security_group_id: sg.security_group_id.clone(),
            flow: "Inbound".into(),
            ip_protocol: Some("tcp".into()),
            from_port_range: Some(22),
            to_port_range: Some(22),
            ip_range: Some("127.0.0.0/8".into()),
            ..Default::default()
        })
        .await,
        400,
        "4047",
    );
    c.call(&DeleteSecurityGroupRequest {
        security_group_id: Some(sg.security_group_id.clone()),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_code(
        c.call(&DeleteSecurityGroupRequest {
            security_group_name: Some("default".into()),
            ..Default::default()
        })
        .await,
        400,
        "4047",
    );
}

#[tokio::test]
async fn tags_on_every_kind_and_read_filters() {
    let t = in_process();
    let c = &t.client;
    let image = catalogue_image(c).await;
    let vm = launch(c, &image.image_id, "tok-tags").await;
    let volume = c
        .call(&CreateVolumeRequest {
            subregion_name: "eu-west-2a".into(),
            size: Some(1),
            ..Default::default()
        })
        .await
        .unwrap()
        .volume;
    let key = c
        .call(&CreateKeypairRequest {
            keypair_name: "k".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .keypair;
    let ids = vec![
        vm.vm_id.clone(),
        volume.volume_id.clone(),
        key.keypair_id.clone().unwrap(),
    ];
    c.call(&CreateTagsRequest {
        resource_ids: ids.clone(),
        tags: vec![
            ResourceTag::new("osci:lineage", "L1"),
            ResourceTag::new("team", "platform"),
        ],
        ..Default::default()
    })
    .await
    .unwrap();
    let tags = c
        .read_all(&ReadTagsRequest {
            filters: Some(FiltersTag {
                keys: Some(vec!["osci:lineage".into()]),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut types: Vec<_> = tags.iter().map(|t| t.resource_type.as_str()).collect();
    types.sort();
    assert_eq!(types, ["instance", "keypair", "volume"]);

    let by_tag = c
        .read_all(&ReadVmsRequest {
            filters: Some(FiltersVm {
                tags: Some(vec!["osci:lineage=L1".into()]),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(by_tag.len(), 1);
    assert_eq!(by_tag[0].tags.len(), 2);
    let by_token = c
        .read_all(&ReadVmsRequest {
            filters: Some(FiltersVm {
                client_tokens: Some(vec!["tok-tags".into()]),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(by_token.len(), 1);
    let wrong_value = c
        .read_all(&ReadVolumesRequest {
            filters: Some(FiltersVolume {
                tags: Some(vec!["team=other".into()]),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(wrong_value.is_empty());

    // DeleteTags removes only exact key and value matches.
    c.call(&DeleteTagsRequest {
        resource_ids: vec![vm.vm_id.clone()],
        tags: vec![
            ResourceTag::new("team", "other"),
            ResourceTag::new("osci:lineage", "L1"),
        ],
        ..Default::default()
    })
    .await
    .unwrap();
    let left = c
        .read_all(&ReadTagsRequest {
            filters: Some(FiltersTag {
                resource_ids: Some(vec![vm.vm_id.clone()]),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].key, "team");

    assert_code(
        c.call(&CreateTagsRequest {
            resource_ids: vec!["i-00000000".into()],
            tags: vec![ResourceTag::new("a", "b")],
            ..Default::default()
        })
        .await,
        400,
        "5063",
    );
    assert_code(
        c.call(&CreateTagsRequest {
            resource_ids: vec!["zzz-1".into()],
            tags: vec![ResourceTag::new("a", "b")],
            ..Default::default()
        })
        .await,
        400,
        "4047",
    );
    // Another account's resource is not found, not tagged.
    let other = t.sim.create_account().unwrap();
    let other_client = client_for(&t.sim, Some((other.access_key, other.secret_key)));
    assert_code(
        other_client
            .call(&CreateTagsRequest {
                resource_ids: vec![vm.vm_id.clone()],
                tags: vec![ResourceTag::new("a", "b")],
                ..Default::default()
            })
            .await,
        400,
        "5063",
    );
    assert!(
        other_client
            .read_all(&ReadVmsRequest::default())
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn public_ips_nets_and_subnets() {
    let t = in_process();
    let c = &t.client;
    let waiters = Waiters::new(c);
    let policy = fast_wait();
    let image = catalogue_image(c).await;
    let vm = launch(c, &image.image_id, "tok-ip").await;
    let vm = waiters
        .vm(&vm.vm_id, "running", &policy)
        .await
        .unwrap()
        .unwrap();
    let automatic = vm.public_ip.clone().unwrap();

    let ip = c
        .call(&CreatePublicIpRequest::default())
        .await
        .unwrap()
        .public_ip;
    assert!(ip.public_ip_id.starts_with("eipalloc-"));
    let link = c
        .call(&LinkPublicIpRequest {
            public_ip: Some(ip.public_ip.clone()),
            vm_id: Some(vm.vm_id.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    let link_id = link.link_public_ip_id.unwrap();
    let shown = c
        .read_all(&ReadVmsRequest {
            filters: Some(FiltersVm {
                public_ips: Some(vec![ip.public_ip.clone()]),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(shown.len(), 1, "the VM now shows the linked IP");
    let by_vm = c
        .read_all(&ReadPublicIpsRequest {
            filters: Some(FiltersPublicIp {
                vm_ids: Some(vec![vm.vm_id.clone()]),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(by_vm.len(), 1);
    assert_eq!(
        by_vm[0].link_public_ip_id.as_deref(),
        Some(link_id.as_str())
    );
    c.call(&UnlinkPublicIpRequest {
        link_public_ip_id: Some(link_id.clone()),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_code(
        c.call(&UnlinkPublicIpRequest {
            public_ip: Some(ip.public_ip.clone()),
            ..Default::default()
        })
        .await,
        409,
        "6003",
    );
    let vm_now = c
        .read_all(&ReadVmsRequest::id(vm.vm_id.clone()))
        .await
        .unwrap();
    assert_eq!(vm_now[0].public_ip.as_deref(), Some(automatic.as_str()));
    c.call(&DeletePublicIpRequest {
        public_ip_id: Some(ip.public_ip_id.clone()),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_code(
        c.call(&LinkPublicIpRequest {
            public_ip_id: Some(ip.public_ip_id.clone()),
            vm_id: Some(vm.vm_id.clone()),
            ..Default::default()
        })
        .await,
        400,
        "5025",
    );
    assert!(
        c.read_all(&ReadPublicIpsRequest::default())
            .await
            .unwrap()
            .is_empty()
    );

    // Nets and subnets.
    let net = c
        .call(&CreateNetRequest {
            ip_range: "10.0.0.0/16".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .net;
    assert!(net.net_id.starts_with("vpc-"));
    assert_code(
        c.call(&CreateNetRequest {
            ip_range: "10.0.0.0/8".into(),
            ..Default::default()
        })
        .await,
        400,
        "4015",
    );
    let subnet = c
        .call(&CreateSubnetRequest {
            net_id: net.net_id.clone(),
            ip_range: "10.0.1.0/24".into(),
            subregion_name: Some("eu-west-2b".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .subnet;
    assert_eq!(subnet.available_ips_count, 251);
    assert_code(
        c.call(&CreateSubnetRequest {
            net_id: net.net_id.clone(),
            ip_range: "10.0.1.128/25".into(),
            ..Default::default()
        })
        .await,
        409,
        "9058",
    );
    assert_code(
        c.call(&CreateSubnetRequest {
            net_id: net.net_id.clone(),
            ip_range: "192.168.0.0/24".into(),
            ..Default::default()
        })
        .await,
        400,
        "4047",
    );
    let subnets = c
        .read_all(&ReadSubnetsRequest {
            filters: Some(FiltersSubnet {
                net_ids: Some(vec![net.net_id.clone()]),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(subnets.len(), 1);
    assert_eq!(
        c.read_all(&ReadNetsRequest::default()).await.unwrap().len(),
        1
    );

    // A VM in the subnet gets an address of the subnet and the Net's default group.
    let in_net = c
        .call(&CreateVmsRequest {
            image_id: image.image_id.clone(),
            subnet_id: Some(subnet.subnet_id.clone()),
            ..Default::default()
        })
        .await
        .unwrap()
        .vms
        .remove(0);
    assert_eq!(in_net.private_ip.as_deref(), Some("10.0.1.4"));
    assert_eq!(in_net.net_id.as_deref(), Some(net.net_id.as_str()));
    assert!(in_net.public_ip.is_none());
    assert_code(
        c.call(&DeleteSubnetRequest {
            subnet_id: subnet.subnet_id.clone(),
            ..Default::default()
        })
        .await,
        424,
        "1000",
    );
    assert_code(
        c.call(&DeleteNetRequest {
            net_id: net.net_id.clone(),
            ..Default::default()
        })
        .await,
        424,
        "1000",
    );
    c.call(&DeleteVmsRequest {
        vm_ids: vec![in_net.vm_id.clone()],
        ..Default::default()
    })
    .await
    .unwrap();
    waiters
        .vm(&in_net.vm_id, "terminated", &policy)
        .await
        .unwrap();
    c.call(&DeleteSubnetRequest {
        subnet_id: subnet.subnet_id.clone(),
        ..Default::default()
    })
    .await
    .unwrap();
    c.call(&DeleteNetRequest {
        net_id: net.net_id.clone(),
        ..Default::default()
    })
    .await
    .unwrap();
    assert!(
        c.read_all(&ReadNetsRequest::default())
            .await
            .unwrap()
            .is_empty()
    );
    assert_code(
        c.call(&DeleteNetRequest {
            net_id: net.net_id.clone(),
            ..Default::default()
        })
        .await,
        400,
        "5065",
    );
}

#[tokio::test]
async fn unknown_parameters_and_missing_ones_are_refused() {
    let t = in_process();
    let sim = &t.sim;
    let account = sim.default_account();
    // Hand-made requests: a client with typed requests cannot send these.
    let send = |op: &str, body: &str| {
        let body = bytes::Bytes::from(body.to_string());
        let date = osci::oapi::sign::format_date(time::OffsetDateTime::now_utc());
        let sig = osci::oapi::sign::sign(&osci::oapi::sign::SigningInput {
            flavour: osci::oapi::sign::Flavour::Osc4,
            access_key: &account.access_key,
            secret_key: account.secret_key.expose(),
            region: "eu-west-2",
            service: "api",
            host: "127.0.0.1",
            path: &format!("/api/v1/{op}"),
            content_type: "application/json",
            date_iso: &date,
            body: &body,
        });
        http::Request::builder()
            .method("POST")
            .uri(format!("http://127.0.0.1/api/v1/{op}"))
            .header("host", "127.0.0.1")
            .header("content-type", "application/json")
            .header("x-osc-date", date)
            .header("authorization", sig.authorization)
            .body(body)
            .unwrap()
    };
    let status = |r: http::Response<bytes::Bytes>| {
        let v: serde_json::Value = serde_json::from_slice(r.body()).unwrap();
        (
            r.status().as_u16(),
            v["Errors"][0]["Code"].as_str().unwrap_or("").to_string(),
        )
    };
    let r = sim
        .handle(send("ReadVms", r#"{"Filters":{"NoSuchFilter":["x"]}}"#))
        .await
        .unwrap();
    assert_eq!(status(r), (400, "4045".into()));
    let r = sim.handle(send("DeleteVolume", "{}")).await.unwrap();
    assert_eq!(status(r), (400, "7000".into()));
    let r = sim.handle(send("NoSuchCall", "{}")).await.unwrap();
    assert_eq!(status(r).0, 400);
    // A dry run checks and changes nothing.
    let r = sim
        .handle(send(
            "CreateKeypair",
            r#"{"KeypairName":"dry","DryRun":true}"#,
        ))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        t.client
            .read_all(&ReadKeypairsRequest::default())
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn the_region_survives_a_restart() {
    let t = in_process();
    let image = catalogue_image(&t.client).await;
    let vm = launch(&t.client, &image.image_id, "tok-restart").await;
    let account = t.sim.default_account();
    drop(t.client);
    drop(t.sim);
    let sim = common::open(t.dir.path(), 0.0, osci::sim::Faults::none());
    assert_eq!(sim.default_account().access_key, account.access_key);
    let client = client_for(&sim, None);
    let vms = client
        .read_all(&ReadVmsRequest::id(vm.vm_id.clone()))
        .await
        .unwrap();
    assert_eq!(vms.len(), 1);
    assert_eq!(vms[0].vm_id, vm.vm_id);
    assert_eq!(
        vms[0].state, "running",
        "time-driven changes resume after a restart"
    );
}

#[tokio::test]
async fn vm_quota_and_launching_a_shared_image() {
    let t = in_process();
    let c = &t.client;
    let image = catalogue_image(c).await;
    assert_code(
        c.call(&CreateVmsRequest {
            image_id: image.image_id.clone(),
            min_vms_count: Some(21),
            max_vms_count: Some(21),
            ..Default::default()
        })
        .await,
        400,
        "10010",
    );
    // MaxVmsCount beyond the quota launches what fits.
    let vms = c
        .call(&CreateVmsRequest {
            image_id: image.image_id.clone(),
            min_vms_count: Some(1),
            max_vms_count: Some(25),
            ..Default::default()
        })
        .await
        .unwrap()
        .vms;
    // The host, the VM this machine is, is one of the account's 20.
    assert_eq!(vms.len(), 19);
    assert_code(
        c.call(&CreateVmsRequest {
            image_id: image.image_id.clone(),
            ..Default::default()
        })
        .await,
        400,
        "10010",
    );

    // Another account may launch an image only once it is shared with it.
    let waiters = Waiters::new(c);
    let policy = fast_wait();
    waiters.vm(&vms[0].vm_id, "running", &policy).await.unwrap();
    let mine = c
        .call(&CreateImageRequest {
            vm_id: Some(vms[0].vm_id.clone()),
            image_name: Some("to-share".into()),
            no_reboot: Some(true),
            ..Default::default()
        })
        .await
        .unwrap()
        .image;
    waiters
        .image_available(&mine.image_id, &policy)
        .await
        .unwrap();
    let other = t.sim.create_account().unwrap();
    let other_client = client_for(&t.sim, Some((other.access_key, other.secret_key)));
    let launch_it = CreateVmsRequest {
        image_id: mine.image_id.clone(),
        ..Default::default()
    };
    assert_code(other_client.call(&launch_it).await, 400, "5023");
    c.call(&UpdateImageRequest {
        image_id: mine.image_id.clone(),
        permissions_to_launch: Some(PermissionsOnResourceCreation {
            additions: Some(PermissionsChange {
                account_ids: None,
                global_permission: Some(true),
            }),
            removals: None,
        }),
        ..Default::default()
    })
    .await
    .unwrap();
    let launched = other_client.call(&launch_it).await.unwrap().vms;
    assert_eq!(launched.len(), 1);
    assert!(
        c.read_all(&ReadVmsRequest {
            filters: Some(FiltersVm {
                vm_ids: Some(vec![launched[0].vm_id.clone()]),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .is_empty(),
        "the other account's VM is its own"
    );
}

/// Volumes and snapshots are disk images whose bytes flow by copy: a
/// volume from a catalogue snapshot holds its partitioned ext4 root, grown
/// to the size asked; a snapshot of it holds the same bytes; deleting them
/// removes their disks.
#[tokio::test]
async fn disks_copy_grow_and_go() {
    let sim = in_process();
    let c = &sim.client;
    let image = catalogue_image(c).await;
    let snapshot = image.snapshot_ids().remove(0);
    // A VM that does not boot: its root volume is the catalogue snapshot's
    // bytes, grown, untouched by a running system.
    let vm = c
        .call(&CreateVmsRequest {
            image_id: image.image_id.clone(),
            boot_on_creation: Some(false),
            block_device_mappings: Some(vec![BlockDeviceMappingVmCreation {
                device_name: Some("/dev/sda1".into()),
                bsu: Some(BsuToCreate {
                    volume_size: Some(20),
                    ..Default::default()
                }),
                ..Default::default()
            }]),
            ..Default::default()
        })
        .await
        .unwrap()
        .vms
        .remove(0);
    let volume = c
        .read_all(&ReadVolumesRequest {
            filters: Some(FiltersVolume {
                link_volume_vm_ids: Some(vec![vm.vm_id.clone()]),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .remove(0);
    let disk = |id: &str| sim.dir.path().join("disks").join(format!("{id}.img"));
    // The head of a disk: the partition table and the filesystem's start.
    let head = |id: &str| {
        use std::io::Read;
        let mut bytes = vec![0; 32 << 20];
        std::fs::File::open(disk(id))
            .unwrap()
            .read_exact(&mut bytes)
            .unwrap();
        bytes
    };
    let source = head(&snapshot);
    assert_eq!(std::fs::metadata(disk(&snapshot)).unwrap().len(), 10 << 30);
    assert_eq!(&source[510..512], &[0x55, 0xAA], "an MBR");
    let grown = std::fs::metadata(disk(&volume.volume_id)).unwrap();
    assert_eq!(grown.len(), 20 << 30);
    // Sparse: a 20 GiB disk holding a few megabytes costs a few megabytes.
    assert!(
        std::os::unix::fs::MetadataExt::blocks(&grown) * 512 < 256 << 20,
        "{grown:?}"
    );
    assert!(head(&volume.volume_id) == source);
    // The ext4 root of partition 1 holds the userland.
    let shell = std::process::Command::new(tool("debugfs"))
        .args(["-R", "stat /usr/bin/sh"])
        .arg(format!(
            "{}?offset=1048576",
            disk(&volume.volume_id).display()
        ))
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&shell.stdout).contains("Type: regular"),
        "{}",
        String::from_utf8_lossy(&shell.stderr)
    );
    let copy = c
        .call(&CreateSnapshotRequest {
            volume_id: Some(volume.volume_id.clone()),
            ..Default::default()
        })
        .await
        .unwrap()
        .snapshot;
    let copied = std::fs::metadata(disk(&copy.snapshot_id)).unwrap();
    assert_eq!(copied.len(), 20 << 30);
    assert!(
        head(&copy.snapshot_id) == source,
        "the snapshot holds the volume's bytes"
    );
    c.call(&DeleteSnapshotRequest {
        snapshot_id: copy.snapshot_id.clone(),
        ..Default::default()
    })
    .await
    .unwrap();
    c.call(&DeleteVmsRequest {
        vm_ids: vec![vm.vm_id.clone()],
        ..Default::default()
    })
    .await
    .unwrap();
    c.read_all(&ReadVmsRequest::default()).await.unwrap();
    assert!(!disk(&copy.snapshot_id).exists());
    assert!(!disk(&volume.volume_id).exists());
}

fn tool(name: &str) -> std::path::PathBuf {
    ["/usr/sbin", "/sbin", "/usr/bin"]
        .iter()
        .map(|d| std::path::Path::new(d).join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| name.into())
}

/// An answer the client cannot decode is quoted in the error, unless the
/// operation answers a secret: a garbled CreateKeypair answer holds a
/// private key.
#[tokio::test]
async fn undecodable_secret_answers_are_not_quoted() {
    use osci::oapi::transport::{BoxFuture, Transport, TransportError};
    struct Garbled;
    impl Transport for Garbled {
        fn send(
            &self,
            _: http::Request<bytes::Bytes>,
        ) -> BoxFuture<'_, Result<http::Response<bytes::Bytes>, TransportError>> {
            Box::pin(async {
                let body = r#"{"Keypair": {"PrivateKey": "-----BEGIN RSA PRIVATE KEY-----\nMIIsecret", "KeypairName": 7}, "Vms": "MIIsecret"}"#;
                Ok(http::Response::new(bytes::Bytes::from(body)))
            })
        }
    }
    let mut config =
        osci::oapi::ClientConfig::new("http://api.eu-west-2.sim.invalid/api/v1", "eu-west-2")
            .with_keys("AK", Secret::new("SK"));
    config.rate_limit = None;
    let client = Client::new(config, std::sync::Arc::new(Garbled)).unwrap();
    let keypair = client
        .call(&CreateKeypairRequest {
            keypair_name: "k".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    let shown = format!("{keypair} {keypair:?}");
    assert!(shown.contains("CreateKeypair"), "{shown}");
    assert!(!shown.contains("MIIsecret"), "{shown}");
    let other = client.call(&ReadVmsRequest::id("i-1")).await.unwrap_err();
    assert!(
        format!("{other:?}").contains("MIIsecret"),
        "other answers are quoted"
    );
}
