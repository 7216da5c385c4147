//! One story, every driver: the same lifecycle run against libvirt's test driver (with the shipped
//! fixture) and against a real Docker-API engine (Podman, started by `scripts/test`, with an image
//! built locally), and, in the optional slow tier, against a real QEMU guest under libvirtd. What
//! the story checks is what the job runner and the reconciler rely on, including each method's
//! documented behaviour when called twice.

use crate::common;

use std::{sync::Arc, time::Duration};

use domain::fleet::driver::{self, machine_name, Driver, DriverError, Kind, MachineSpec, Power};

fn libvirt_uri() -> String {
    let fixture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/libvirt-node.xml");
    format!("test://{}", fixture.display())
}

/// The Docker-API engine the tests use. `scripts/test` starts Podman and sets it; running the
/// suite without one is a mistake worth failing on, unless explicitly skipped.
fn docker_uri() -> Option<String> {
    common::docker_host()
}

/// The image each driver boots: a base volume in the fixture's pool, a locally built busybox image.
fn image_for(kind: Kind) -> String {
    match kind {
        Kind::Vm => "debian-12".into(),
        Kind::Container => std::env::var("HANGAR_TEST_CONTAINER_IMAGE")
            .unwrap_or_else(|_| "localhost/hangar-busybox:latest".into()),
    }
}

fn spec(kind: Kind, id: &str) -> MachineSpec {
    spec_with(id, image_for(kind))
}

fn spec_with(id: &str, image: String) -> MachineSpec {
    MachineSpec {
        name: machine_name(id),
        instance_id: id.into(),
        account: "test-account".into(),
        hostname: "story".into(),
        vcpu: 1,
        memory_mb: 64,
        disk_gb: 1,
        image,
        user_data: Some("#!/bin/sh\necho hi\n".into()),
        ssh_keys: vec!["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOpGf6s4Zz2qR1b3l7M9m8xH0d7lq1fK2Z8v2wG4bY1c story".into()],
        seed_url: Some("http://127.0.0.1:3000/cloud-init/x/y/".into()),
        public_ip: None,
        app: None,
    }
}

fn unique_id() -> String {
    domain::infra::db::new_id()
}

async fn story(d: Arc<dyn Driver>) {
    let id = unique_id();
    let s = spec(d.kind(), &id);
    story_of(d, s).await;
}

/// The machine's address, waited for: a real guest asks for its DHCP lease while booting.
async fn address_of(d: &dyn Driver, name: &str) -> Option<String> {
    for _ in 0..300 {
        if let Some(a) = d.address(name).await.unwrap() {
            return Some(a);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    None
}

async fn story_of(d: Arc<dyn Driver>, s: MachineSpec) {
    let name = s.name.clone();

    assert_eq!(d.power(&name).await.unwrap(), None, "nothing before create");
    d.create(&s).await.unwrap();
    assert_eq!(d.power(&name).await.unwrap(), Some(Power::Running));
    d.create(&s).await.expect("create twice keeps the machine");
    assert!(
        d.list()
            .await
            .unwrap()
            .iter()
            .any(|m| m.name == name && m.power == Power::Running),
        "list shows the machine running"
    );

    d.stop(&name).await.unwrap();
    assert_eq!(d.power(&name).await.unwrap(), Some(Power::Stopped));
    d.stop(&name)
        .await
        .expect("stop on a stopped machine is Ok");
    d.kill(&name)
        .await
        .expect("kill on a stopped machine is Ok");

    d.start(&name).await.unwrap();
    d.start(&name)
        .await
        .expect("start on a running machine is Ok");
    assert_eq!(d.power(&name).await.unwrap(), Some(Power::Running));
    d.reboot(&name).await.unwrap();
    assert_eq!(d.power(&name).await.unwrap(), Some(Power::Running));

    let address = address_of(&*d, &name).await;
    assert!(
        address
            .as_deref()
            .is_some_and(|a| a.parse::<std::net::Ipv4Addr>().is_ok()),
        "a running machine has an address (DHCP lease / container network): {address:?}"
    );
    let console = d.console(&name).await.unwrap();
    match d.kind() {
        Kind::Vm => assert!(
            console.vnc_port.is_some_and(|p| p >= 5900),
            "VMs have a VNC port"
        ),
        Kind::Container => assert_eq!(console.vnc_port, None),
    }

    // Snapshots: take, list, restore while stopped, delete (twice).
    d.snapshot_create(&name, "before").await.unwrap();
    d.snapshot_create(&name, "before")
        .await
        .expect("same snapshot twice is Ok");
    d.snapshot_create(&name, "second").await.unwrap();
    let snaps = d.snapshot_list(&name).await.unwrap();
    assert!(
        snaps.contains(&"before".to_owned()) && snaps.contains(&"second".to_owned()),
        "{snaps:?}"
    );
    d.kill(&name).await.unwrap();
    d.snapshot_restore(&name, "before").await.unwrap();
    assert_eq!(
        d.power(&name).await.unwrap(),
        Some(Power::Stopped),
        "a restored machine is left stopped"
    );
    assert!(matches!(
        d.snapshot_restore(&name, "nope").await,
        Err(DriverError::NotFound(_))
    ));
    d.start(&name).await.expect("a restored machine boots");
    d.snapshot_delete(&name, "second").await.unwrap();
    d.snapshot_delete(&name, "second")
        .await
        .expect("deleting a missing snapshot is Ok");
    assert_eq!(
        d.snapshot_list(&name).await.unwrap(),
        vec!["before".to_owned()]
    );

    d.destroy(&name).await.unwrap();
    assert_eq!(d.power(&name).await.unwrap(), None, "destroy removes it");
    d.destroy(&name).await.expect("destroy twice is Ok");
    assert!(!d.list().await.unwrap().iter().any(|m| m.name == name));
    assert!(matches!(
        d.start(&name).await,
        Err(DriverError::NotFound(_))
    ));
}

async fn bad_image_is_refused(d: Arc<dyn Driver>) {
    let mut s = spec(d.kind(), &unique_id());
    s.image = "no-such-image-anywhere".into();
    match d.create(&s).await {
        Err(DriverError::Invalid(msg)) => assert!(msg.contains("no-such-image-anywhere"), "{msg}"),
        other => panic!("expected Invalid, got {other:?}"),
    }
    assert_eq!(d.power(&s.name).await.unwrap(), None, "nothing left behind");
}

/// What the tests' drivers are built with: a short stop timeout and an installation of their
/// own (so test servers running beside them never take their machines for orphans), defaults
/// otherwise.
fn settings() -> driver::Settings {
    driver::Settings {
        stop_timeout: Duration::from_secs(5),
        installation: "drivers-tests".into(),
        ..Default::default()
    }
}

fn libvirt() -> Arc<dyn Driver> {
    driver::connect(Kind::Vm, &libvirt_uri(), None, &settings())
}

#[tokio::test]
async fn libvirt_story() {
    story(libvirt()).await;
}

#[tokio::test]
async fn libvirt_refuses_an_image_the_node_lacks() {
    bad_image_is_refused(libvirt()).await;
}

/// A machine that vanished behind Hangar's back leaves its DHCP reservation in the node's
/// network; when Hangar gives the address to the next machine, that machine still gets it.
#[tokio::test]
async fn libvirt_takes_over_a_stale_address_reservation() {
    let d = libvirt();
    let mut a = spec(Kind::Vm, &unique_id());
    a.public_ip = Some("192.168.122.250".into());
    d.create(&a).await.unwrap();
    d.create(&a)
        .await
        .expect("a retried create keeps its own reservation");
    let mut b = spec(Kind::Vm, &unique_id());
    b.public_ip = a.public_ip.clone();
    d.create(&b)
        .await
        .expect("the address's new holder replaces the stale reservation");
    for s in [&a, &b] {
        d.destroy(&s.name).await.unwrap();
    }
    let mut c = spec(Kind::Vm, &unique_id());
    c.public_ip = Some("10.9.9.9".into());
    match d.create(&c).await {
        Err(DriverError::Invalid(msg)) => {
            assert!(msg.contains("cannot hand out 10.9.9.9"), "{msg}")
        }
        other => panic!("an address outside the network's subnets is refused: {other:?}"),
    }
    assert_eq!(d.power(&c.name).await.unwrap(), None, "nothing left behind");
}

/// The same story on a real QEMU guest (slow tier, `HANGAR_TEST_QEMU=1`).
#[tokio::test]
async fn qemu_story() {
    let Some(tier) = common::qemu::Tier::from_env() else {
        return;
    };
    let d = driver::connect(
        Kind::Vm,
        &tier.uri,
        None,
        &driver::Settings {
            libvirt_domain_type: domain::config::DomainType::Qemu,
            ..settings()
        },
    );
    let mut s = spec_with(&unique_id(), tier.image_source());
    s.memory_mb = 192;
    story_of(d.clone(), s.clone()).await;
    assert!(
        !tier.serial(&s.name).is_empty(),
        "the guest wrote to its serial console log"
    );
}

#[tokio::test]
async fn docker_story() {
    if let Some(uri) = docker_uri() {
        story(driver::connect(Kind::Container, &uri, None, &settings())).await;
    }
}

#[tokio::test]
async fn docker_refuses_an_image_the_node_lacks() {
    if let Some(uri) = docker_uri() {
        bad_image_is_refused(driver::connect(Kind::Container, &uri, None, &settings())).await;
    }
}

/// Two installations on one engine (staging beside production): each lists only its own
/// machines, so neither's reconciler destroys the other's as orphans.
#[tokio::test]
async fn docker_installations_on_one_engine_see_only_their_own_machines() {
    let Some(uri) = docker_uri() else { return };
    let installation = |name: &str| {
        driver::connect(
            Kind::Container,
            &uri,
            None,
            &driver::Settings {
                installation: name.into(),
                ..settings()
            },
        )
    };
    let (production, staging) = (installation("production-1"), installation("staging-1"));
    let s = spec(Kind::Container, &unique_id());
    production.create(&s).await.unwrap();
    let names = |list: Vec<driver::Machine>| list.into_iter().map(|m| m.name).collect::<Vec<_>>();
    assert!(names(production.list().await.unwrap()).contains(&s.name));
    assert!(
        !names(staging.list().await.unwrap()).contains(&s.name),
        "staging does not see production's machine"
    );
    production.destroy(&s.name).await.unwrap();
}

#[tokio::test]
async fn docker_applies_the_plan_limits() {
    let Some(uri) = docker_uri() else { return };
    let d = driver::connect(Kind::Container, &uri, None, &settings());
    let mut s = spec(Kind::Container, &unique_id());
    s.memory_mb = 96;
    s.vcpu = 2;
    d.create(&s).await.unwrap();
    let docker = bollard::Docker::connect_with_unix(
        uri.trim_start_matches("unix://"),
        30,
        bollard::API_DEFAULT_VERSION,
    )
    .unwrap();
    let c = docker.inspect_container(&s.name, None).await.unwrap();
    let host = c.host_config.unwrap();
    assert_eq!(host.memory, Some(96 * 1024 * 1024));
    assert_eq!(host.nano_cpus, Some(2_000_000_000));
    let labels = c.config.unwrap().labels.unwrap();
    assert_eq!(labels.get("hangar.instance"), Some(&s.instance_id));
    d.destroy(&s.name).await.unwrap();
}
