//! The slow tier (`HANGAR_TEST_QEMU=1`): a customer's VM on a real QEMU guest under libvirtd,
//! driven only through Hangar's API, checked by what the guest itself prints on its serial
//! console and by reaching it over the network. The guest (see `scripts/qemu-tier`) takes its
//! address by DHCP (where Hangar reserved the public address it allocated), fetches its NoCloud
//! seed from Hangar, takes the hostname and prints the SSH keys it was given, answers on port 80,
//! runs commands and takes files over SSH with the platform key (the same story as containers,
//! `common::inside`), and powers off on the ACPI power button.

use crate::common;

use std::{sync::Arc, time::Duration};

use common::{console, expect_error, expect_json, qemu::Tier, TestApp};
use domain::compute::reconcile;
use domain::fleet::driver::guest::{GuestKeys, Guests};
use domain::fleet::driver::{machine_name, ExecRequest};
use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt};

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOpGf6s4Zz2qR1b3l7M9m8xH0d7lq1fK2Z8v2wG4bY1c gina@laptop";
const BOOT: Duration = Duration::from_secs(180);

async fn state(app: &TestApp, token: &str, id: &str) -> String {
    expect_json(
        app.get(&format!("/api/vps/{id}"), Some(token)).await,
        StatusCode::OK,
    )
    .await["state"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn instance_private_ip(app: &TestApp, token: &str, id: &str) -> String {
    expect_json(
        app.get(&format!("/v1/instances/{id}"), Some(token)).await,
        StatusCode::OK,
    )
    .await["status"]["private_ip"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn a_real_guest_boots_with_its_keys_and_obeys_the_power_buttons() {
    let Some(tier) = Tier::from_env() else {
        return;
    };
    // Hangar listens where the guests can reach it: the host's address on their network.
    let port = {
        let probe = std::net::TcpListener::bind((tier.host.as_str(), 0)).unwrap();
        probe.local_addr().unwrap().port()
    };
    let app = TestApp::builder()
        .config("libvirt_uri", &tier.uri)
        .config("libvirt_domain_type", "qemu")
        .config("listen", &format!("{}:{port}", tier.host))
        .config("public_url", &format!("http://{}:{port}", tier.host))
        .config("stop_timeout_secs", "60")
        .config("file_max_bytes", common::inside::FILE_MAX_BYTES)
        .spawn()
        .await;
    let (_, admin) = app.admin("ops").await;
    expect_json(
        app.put(
            "/api/admin/images",
            Some(&admin),
            json!({"slug": "tiny-linux", "name": "Tiny Linux", "kind": "vm", "source": tier.image_source()}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    // The region's public range: addresses the node's network serves but does not hand out.
    // Each database backend's run gets its own range, because the node's DHCP keeps the previous
    // run's lease on an address for an hour (what `public_ip_cooldown_minutes` covers in
    // production, but each run starts with a fresh database).
    let base = if common::backend() == "postgres" {
        210
    } else {
        200
    };
    expect_json(
        app.post(
            "/api/admin/ip-pools",
            Some(&admin),
            json!({"region": "local", "first": format!("192.168.150.{base}"), "last": format!("192.168.150.{}", base + 9), "prefix_len": 24, "gateway": tier.host}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;

    let (_, token) = app.funded_user("gina", 10.0).await;
    let key = expect_json(
        app.post(
            "/api/keys",
            Some(&token),
            json!({"name": "laptop", "public_key": KEY}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let vps = expect_json(
        app.post(
            "/api/vps",
            Some(&token),
            json!({"name": "guest-1", "plan_id": "nano", "image": "tiny-linux", "ssh_key_ids": [key["id"]]}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let id = vps["id"].as_str().unwrap().to_owned();
    let name = machine_name(&id);
    app.run_jobs().await;
    assert_eq!(state(&app, &token, &id).await, "running");
    // "running" means usable (the `/api` dialect's quick start: poll for `running`, then exec): the
    // first command works at once. It answered 409 "SSH is not reachable yet" for the minute
    // or two a software-emulated guest takes to boot, when `running` meant "domain started".
    let first = common::inside::run_ok(&app, &token, &id, "hostname").await;
    assert_eq!(first["stdout"], "guest-1\n", "{first:?}");

    // The guest booted, fetched its seed from Hangar, and took its name and key from it.
    let log = tier
        .wait_serial(&name, 0, "hangar-guest: ready on guest-1", BOOT)
        .await;
    assert!(
        log.contains(&format!("hangar-seed: instance-id: {id}")),
        "{log}"
    );
    assert!(log.contains(KEY), "the guest received the SSH key: {log}");

    // It got its public address, Hangar shows it in all three APIs, and it answers there.
    let server = expect_json(
        app.get(&format!("/v1/servers/{id}"), Some(&token)).await,
        StatusCode::OK,
    )
    .await;
    let ip = server["data"]["main_ip"].as_str().unwrap().to_owned();
    assert!(
        ip.starts_with(&format!("192.168.150.{}", base / 10)),
        "{}",
        server.text
    );
    assert!(
        log.contains(&format!("hangar-guest: address {ip}")),
        "the guest's DHCP handed it {ip}: {log}"
    );
    let instance = expect_json(
        app.get(&format!("/v1/instances/{id}"), Some(&token)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(instance["status"]["public_ip"], ip.as_str());
    let mut line = String::new();
    // The guest's listener starts in the background as it reports ready: allow it a moment.
    let mut conn = None;
    for _ in 0..100 {
        match tokio::net::TcpStream::connect((ip.as_str(), 80)).await {
            Ok(c) => {
                conn = Some(c);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    let conn = conn.expect("the guest is reachable at its public address");
    tokio::time::timeout(
        Duration::from_secs(20),
        tokio::io::BufReader::new(conn).read_line(&mut line),
    )
    .await
    .expect("the guest answers")
    .unwrap();
    assert_eq!(line.trim(), "hangar-guest guest-1");
    // The reconciler records the node's view of the address as the private one.
    reconcile::run(&app.state).await.unwrap();
    assert_eq!(instance_private_ip(&app, &token, &id).await, ip);

    // The VNC port answers with the RFB handshake.
    let vnc = expect_json(
        app.get(&format!("/api/vps/{id}/vnc-port"), Some(&token))
            .await,
        StatusCode::OK,
    )
    .await;
    let port = vnc["port"].as_u64().unwrap() as u16;
    let mut screen = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut hello = [0u8; 12];
    screen.read_exact(&mut hello).await.unwrap();
    assert_eq!(&hello[..4], b"RFB ", "{hello:?}");
    drop(screen);

    // Inside the machine over SSH with the platform key: the same story as in a container.
    assert!(
        log.contains("hangar-guest: ssh up"),
        "the guest's SSH server started with the host key Hangar gave it: {log}"
    );
    common::inside::story(&app, &token, &id).await;
    // The host key is checked: keys from another secret expect another host key, and are
    // refused before any command is sent.
    let stranger = Guests::new(Arc::new(GuestKeys::new(b"another deployment")));
    let refused = stranger
        .exec(
            &name,
            &ip,
            &ExecRequest {
                command: "touch /root/should-not-exist".into(),
                timeout: Duration::from_secs(10),
                max_output: 1024,
                tag: "x".into(),
            },
        )
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("host key"), "{refused}");
    let absent = common::inside::run_ok(&app, &token, &id, "ls /root/should-not-exist").await;
    assert_ne!(absent["exit_code"], 0, "nothing ran for the stranger");

    // The serial console through Hangar's relay answers a keystroke; it stays open across the
    // stop and start below and shows the next boot.
    let mut serial = console::console(&app, &token, &id).await;
    console::read_until(&mut serial, "\"state\":\"running\"", BOOT).await;
    console::type_in(&mut serial, "echo ser''ial-ok\n").await;
    console::read_until(&mut serial, "serial-ok", BOOT).await;
    // The screen through the relay: the VNC server's RFB greeting.
    let screen = console::ticket(&app, &token, &id, "screen").await;
    let mut rfb = console::open(
        &app,
        screen["path"].as_str().unwrap(),
        screen["ticket"].as_str().unwrap(),
        Some(&token),
        None,
    )
    .await
    .expect("the screen opens");
    let greeting = console::read_until(&mut rfb, "RFB 003.", Duration::from_secs(20)).await;
    assert!(greeting.starts_with("RFB 003."), "{greeting}");
    drop(rfb);

    // Stop is graceful: the guest sees the ACPI power button and powers itself off.
    let before = tier.serial(&name).len();
    expect_json(
        app.post(&format!("/api/vps/{id}/stop"), Some(&token), json!({}))
            .await,
        StatusCode::ACCEPTED,
    )
    .await;
    app.run_jobs().await;
    assert_eq!(state(&app, &token, &id).await, "stopped");
    assert!(
        tier.serial(&name)[before..].contains("hangar-guest: power button"),
        "stopped through ACPI, not forced: {}",
        tier.serial(&name)
    );
    console::read_until(&mut serial, "\"state\":\"stopped\"", BOOT).await;

    // Snapshot while stopped, boot again, restore needs it stopped, restore, boot once more.
    expect_json(
        app.post(
            &format!("/api/vps/{id}/snapshots"),
            Some(&token),
            json!({"name": "clean"}),
        )
        .await,
        StatusCode::ACCEPTED,
    )
    .await;
    app.run_jobs().await;
    let snaps = expect_json(
        app.get(&format!("/api/vps/{id}/snapshots"), Some(&token))
            .await,
        StatusCode::OK,
    )
    .await;
    assert!(snaps.text.contains("clean"), "{}", snaps.text);
    for round in 0..2 {
        let before = tier.serial(&name).len();
        expect_json(
            app.post(&format!("/api/vps/{id}/start"), Some(&token), json!({}))
                .await,
            StatusCode::ACCEPTED,
        )
        .await;
        app.run_jobs().await;
        assert_eq!(state(&app, &token, &id).await, "running");
        tier.wait_serial(&name, before, "hangar-guest: ready on guest-1", BOOT)
            .await;
        if round == 0 {
            // The console picked up again when the machine started, and shows its boot. (It
            // connects within a couple of seconds of the start: the guest's first lines may come
            // before that, its later ones after.)
            console::read_until(&mut serial, "hangar-guest: ready on guest-1", BOOT).await;
            console::type_in(&mut serial, "\necho bo''ot-ok\n").await;
            console::read_until(&mut serial, "boot-ok", BOOT).await;
        }
        if round == 1 {
            break;
        }
        expect_error(
            app.post(
                &format!("/api/vps/{id}/snapshots/clean/restore"),
                Some(&token),
                json!({}),
            )
            .await,
            StatusCode::CONFLICT,
            "Stop the instance",
        )
        .await;
        let before = tier.serial(&name).len();
        expect_json(
            app.post(&format!("/api/vps/{id}/stop"), Some(&token), json!({}))
                .await,
            StatusCode::ACCEPTED,
        )
        .await;
        app.run_jobs().await;
        assert!(tier.serial(&name)[before..].contains("power button"));
        expect_json(
            app.post(
                &format!("/api/vps/{id}/snapshots/clean/restore"),
                Some(&token),
                json!({}),
            )
            .await,
            StatusCode::ACCEPTED,
        )
        .await;
        app.run_jobs().await;
        assert_eq!(state(&app, &token, &id).await, "stopped");
    }

    // Delete removes the domain, its disk and its address reservation from the node, and gives
    // the address back to the range.
    let disk = tier.pool.join(format!("{name}.qcow2"));
    assert!(disk.exists(), "the machine's disk is in the pool");
    let reservation = format!("ip='{ip}'");
    assert!(tier.network_xml().contains(&reservation));
    expect_json(
        app.delete(&format!("/api/vps/{id}"), Some(&token)).await,
        StatusCode::ACCEPTED,
    )
    .await;
    app.run_jobs().await;
    expect_error(
        app.get(&format!("/api/vps/{id}"), Some(&token)).await,
        StatusCode::NOT_FOUND,
        "",
    )
    .await;
    assert!(!disk.exists(), "the disk went with the machine");
    assert!(
        !tier.network_xml().contains(&reservation),
        "{}",
        tier.network_xml()
    );
    let pools = expect_json(
        app.get("/api/admin/ip-pools", Some(&admin)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(pools[0]["used"], 0);
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err(),
        "nothing listens on its VNC port any more"
    );
}
