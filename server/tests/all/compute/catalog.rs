//! Plans, images and templates as customers and operators see them, and SSH keys.

use super::*;

#[tokio::test]
async fn pricing_and_templates_are_served() {
    let app = TestApp::spawn().await;
    let plans = expect_json(app.get("/api/pricing", None).await, StatusCode::OK).await;
    let nano = plans
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["slug"] == "nano")
        .unwrap();
    assert_eq!(nano["vcpu"], 1);
    assert_eq!(nano["memory_mb"], 512);
    assert_eq!(nano["disk_gb"], 10);
    assert!(
        plans.text.contains("\"price_hourly\":0.0042"),
        "{}",
        plans.text
    );
    assert_eq!(nano["kind"], "vm");

    let (_, token) = app.user("tess").await;
    expect_error(
        app.get("/api/templates", None).await,
        StatusCode::UNAUTHORIZED,
        "",
    )
    .await;
    let list = expect_json(
        app.get("/api/templates", Some(&token)).await,
        StatusCode::OK,
    )
    .await;
    let slugs: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["slug"].as_str().unwrap())
        .collect();
    assert!(slugs.contains(&"ubuntu-22-small"), "{slugs:?}");
    let one = expect_json(
        app.get("/api/templates/scratch-1h", Some(&token)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(one["ttl_minutes"], 60);
    assert_eq!(one["vcpu"], 1, "template sizes default to the plan's");
    expect_error(
        app.get("/api/templates/nope", Some(&token)).await,
        StatusCode::NOT_FOUND,
        "Template",
    )
    .await;
}

#[tokio::test]
async fn ssh_keys_are_validated_and_private() {
    let app = TestApp::spawn().await;
    let (_, alice) = app.user("alice").await;
    let (_, bob) = app.user("bob").await;
    let key = expect_json(
        app.post(
            "/api/keys",
            Some(&alice),
            json!({"name": "laptop", "public_key": KEY}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(
        key["fingerprint"],
        "SHA256:4uf+6DwhZDUQsZzPNJ+Gr41UFGn2qW2UKXd4wUVjUwE"
    );
    expect_error(
        app.post(
            "/api/keys",
            Some(&alice),
            json!({"name": "again", "public_key": KEY}),
        )
        .await,
        StatusCode::CONFLICT,
        "already",
    )
    .await;
    expect_error(
        app.post(
            "/api/keys",
            Some(&alice),
            json!({"name": "bad", "public_key": "ssh-ed25519 nope"}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "OpenSSH",
    )
    .await;
    expect_error(
        app.post(
            "/api/keys",
            Some(&alice),
            json!({"name": "", "public_key": KEY}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "name",
    )
    .await;
    expect_json(
        app.post("/api/keys", Some(&alice), json!({"name": 5}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;

    let id = key["id"].as_str().unwrap();
    let bobs = expect_json(app.get("/api/keys", Some(&bob)).await, StatusCode::OK).await;
    assert_eq!(bobs.as_array().unwrap().len(), 0, "keys are per user");
    expect_error(
        app.delete(&format!("/api/keys/{id}"), Some(&bob)).await,
        StatusCode::NOT_FOUND,
        "SSH key",
    )
    .await;
    assert_eq!(
        app.delete(&format!("/api/keys/{id}"), Some(&alice))
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        expect_json(app.get("/api/keys", Some(&alice)).await, StatusCode::OK)
            .await
            .as_array()
            .unwrap()
            .len(),
        0
    );
}

#[tokio::test]
async fn templates_fill_defaults_and_ttls_delete() {
    let app = TestApp::spawn().await;
    let (uid, token) = app.funded_user("tina", 10.0).await;
    let vps = create_vps(
        &app,
        &token,
        json!({"name": "tmp", "template": "scratch-1h"}),
    )
    .await;
    assert!(vps["expires_at"].is_string());
    assert_eq!(vps["image"], "debian-12");
    let small = create_vps(
        &app,
        &token,
        json!({"name": "u", "template": "ubuntu-22-small", "memory_mb": 1024}),
    )
    .await;
    assert_eq!(
        small["memory_mb"], 1024,
        "explicit fields override the template"
    );
    assert_eq!(small["image"], "ubuntu-22-04");
    let list = expect_json(
        app.get("/api/templates", Some(&token)).await,
        StatusCode::OK,
    )
    .await;
    let uses: Vec<(String, i64)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["slug"].as_str().unwrap().to_owned(),
                t["popularity"].as_i64().unwrap(),
            )
        })
        .collect();
    assert!(
        uses[0].1 >= 1 && uses[1].1 >= 1 && uses[2].1 == 0,
        "most used first: {uses:?}"
    );
    app.run_jobs().await;

    let id = vps["id"].as_str().unwrap();
    let expires = instances::get(&app.state.db, &uid, id)
        .await
        .unwrap()
        .expires_at
        .unwrap();
    assert_eq!(
        instances::expire_due(&app.state.db, expires - 1)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        instances::expire_due(&app.state.db, expires).await.unwrap(),
        1
    );
    assert_eq!(
        instances::expire_due(&app.state.db, expires).await.unwrap(),
        0,
        "once"
    );
    app.run_jobs().await;
    expect_error(
        app.get(&format!("/api/vps/{id}"), Some(&token)).await,
        StatusCode::NOT_FOUND,
        "Instance",
    )
    .await;
}

#[tokio::test]
async fn operators_manage_nodes_plans_images_and_templates() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin("root").await;
    let (_, user) = app.user("joe").await;
    expect_error(
        app.get("/api/admin/nodes", Some(&user)).await,
        StatusCode::FORBIDDEN,
        "",
    )
    .await;
    let plan = expect_json(app.put("/api/admin/plans", Some(&admin), json!({"slug": "big", "name": "Big", "kind": "vm", "vcpu": 8, "memory_mb": 16384, "disk_gb": 200, "price_hourly": 0.1})).await, StatusCode::OK).await;
    assert!(plan.text.contains("\"price_hourly\":0.1"));
    expect_error(app.put("/api/admin/plans", Some(&admin), json!({"slug": "Bad Slug", "name": "x", "kind": "vm", "vcpu": 1, "memory_mb": 512, "disk_gb": 1, "price_hourly": 0.1})).await, StatusCode::BAD_REQUEST, "slug").await;
    expect_error(app.put("/api/admin/plans", Some(&admin), json!({"slug": "x", "name": "x", "kind": "lxc", "vcpu": 1, "memory_mb": 512, "disk_gb": 1, "price_hourly": 0.1})).await, StatusCode::BAD_REQUEST, "kind").await;
    expect_json(app.put("/api/admin/images", Some(&admin), json!({"slug": "alpine", "name": "Alpine", "kind": "vm", "source": "/var/lib/images/alpine.qcow2"})).await, StatusCode::OK).await;
    expect_error(
        app.put(
            "/api/admin/templates",
            Some(&admin),
            json!({"slug": "t", "name": "T", "plan": "big", "image": "busybox"}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "different kinds",
    )
    .await;
    expect_json(app.put("/api/admin/templates", Some(&admin), json!({"slug": "big-alpine", "name": "Big Alpine", "plan": "big", "image": "alpine", "ttl_minutes": 30})).await, StatusCode::OK).await;
    let pricing = expect_json(app.get("/api/pricing", None).await, StatusCode::OK).await;
    assert!(pricing
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["slug"] == "big"));

    expect_error(app.post("/api/admin/nodes", Some(&admin), json!({"name": "n", "kind": "container", "region": "eu", "uri": "ftp://x", "vcpu": 1, "memory_mb": 1, "disk_gb": 1})).await, StatusCode::BAD_REQUEST, "uri").await;
    expect_error(app.post("/api/admin/nodes", Some(&admin), json!({"name": "local-vm", "kind": "vm", "region": "eu", "uri": "qemu:///system", "vcpu": 1, "memory_mb": 1, "disk_gb": 1})).await, StatusCode::CONFLICT, "exists").await;
    // One engine, one node: the same address again (with a trailing slash) is refused.
    let far = expect_json(app.post("/api/admin/nodes", Some(&admin), json!({"name": "far", "kind": "container", "region": "eu", "uri": "tcp://192.0.2.10:2375", "vcpu": 1, "memory_mb": 1, "disk_gb": 1})).await, StatusCode::CREATED).await;
    expect_error(app.post("/api/admin/nodes", Some(&admin), json!({"name": "far-again", "kind": "container", "region": "eu", "uri": "tcp://192.0.2.10:2375/", "vcpu": 1, "memory_mb": 1, "disk_gb": 1})).await, StatusCode::CONFLICT, "already drives this engine").await;
    assert_eq!(
        app.delete(
            &format!("/api/admin/nodes/{}", far["id"].as_str().unwrap()),
            Some(&admin)
        )
        .await
        .status(),
        StatusCode::NO_CONTENT
    );
    // Both are in the audit log as the operator's.
    let log = expect_json(
        app.get("/api/admin/audit?action=node.", Some(&admin)).await,
        StatusCode::OK,
    )
    .await;
    let actions: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"node.add") && actions.contains(&"node.remove"),
        "{actions:?}"
    );
    assert!(log.text.contains("\"name\":\"far\""), "{}", log.text);
    let nodes = expect_json(
        app.get("/api/admin/nodes", Some(&admin)).await,
        StatusCode::OK,
    )
    .await;
    let local = nodes
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "local-vm")
        .unwrap();
    let local_id = local["id"].as_str().unwrap().to_owned();

    // A node with instances cannot be removed.
    let (nina, nina_token) = app.user("nina").await;
    app.credit(&admin, &nina, 5.0).await;
    create_vps(&app, &nina_token, json!({"name": "n1", "plan_id": "nano"})).await;
    expect_error(
        app.delete(&format!("/api/admin/nodes/{local_id}"), Some(&admin))
            .await,
        StatusCode::CONFLICT,
        "still holds",
    )
    .await;
}

#[tokio::test]
async fn a_hypervisor_configured_later_becomes_a_node_and_drains_the_simulated_one() {
    let app = TestApp::spawn().await;
    let (url, _dir) = app.stop().await;
    // The same database, started again with a real libvirt URI and a container engine (both
    // connect lazily, so nothing needs to answer there for this).
    let uri = "qemu+unix:///system?socket=/nonexistent/libvirt-sock";
    let start = || {
        TestApp::builder()
            .database(url.clone())
            .config("libvirt_uri", uri)
            .config("docker_host", "unix:///nonexistent/podman.sock")
            .spawn()
    };
    let app = start().await;
    let (_, admin) = app.admin("ops").await;
    let nodes = expect_json(
        app.get("/api/admin/nodes", Some(&admin)).await,
        StatusCode::OK,
    )
    .await;
    let by_name = |name: &str| {
        nodes
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no node {name}: {}", nodes.text))
    };
    assert_eq!(by_name("local-qemu")["uri"], uri);
    assert_eq!(by_name("local-qemu")["status"], "active");
    assert_eq!(
        by_name("local-vm")["status"],
        "draining",
        "new VMs go to the real hypervisor"
    );
    assert_eq!(by_name("local-containers")["status"], "active");
    let (url, _dir2) = app.stop().await;

    // Starting again adds nothing more; the operator's command line sets the default image.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hangar"))
        .args([
            "admin",
            "put-image",
            "--slug",
            "tiny-linux",
            "--name",
            "Tiny Linux",
            "--kind",
            "vm",
            "--source",
            "kernel=/guest/vmlinuz initrd=/guest/initrd.gz append=console=ttyS0",
            "--default",
        ])
        .env("DATABASE_URL", &url)
        .env("HANGAR_LIBVIRT_URI", uri)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let app = start().await;
    let (_, admin) = app.admin("ops2").await;
    let nodes = expect_json(
        app.get("/api/admin/nodes", Some(&admin)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(nodes.as_array().unwrap().len(), 3, "{}", nodes.text);
    let (_, token) = app.funded_user("tina", 5.0).await;
    // Nothing answers at this URI, so no survey found the image there, and no VM is offered.
    expect_error(
        app.post(
            "/api/vps",
            Some(&token),
            json!({"name": "t", "plan_id": "nano"}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "no node holds a vm image",
    )
    .await;
    // As a survey of a node that holds it would record.
    sqlx::query(
        "INSERT INTO node_images (node_id, image_slug, checked_at)
         SELECT id, 'tiny-linux', 0 FROM nodes WHERE name = 'local-qemu'",
    )
    .execute(&app.state.db)
    .await
    .unwrap();
    let vps = expect_json(
        app.post(
            "/api/vps",
            Some(&token),
            json!({"name": "t", "plan_id": "nano"}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(vps["image"], "tiny-linux", "the default VM image now");
}

/// A catalog image is offered, accepted and placed only where some node holds it: on a real VM
/// node without the demo's Ubuntu disk, `{"os":"ubuntu-22-04"}` was accepted and the machine
/// then failed on the node ("Image ubuntu-22.04 is not on this node").
#[tokio::test]
async fn images_no_node_holds_are_neither_offered_nor_accepted_nor_placed() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin("ops").await;
    let (_, token) = app.funded_user("imogen", 20.0).await;
    // An image whose disk is on no node, and a template using it.
    expect_json(
        app.put(
            "/api/admin/images",
            Some(&admin),
            json!({"slug": "centos-9", "name": "CentOS 9", "kind": "vm", "source": "centos-9"}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    expect_json(
        app.put(
            "/api/admin/templates",
            Some(&admin),
            json!({"slug": "centos-small", "name": "CentOS small", "plan": "nano", "image": "centos-9"}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let offered = expect_json(app.get("/api/images", None).await, StatusCode::OK).await;
    let slugs: Vec<&str> = offered
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["slug"].as_str().unwrap())
        .collect();
    assert!(slugs.contains(&"debian-12"), "{slugs:?}");
    assert!(
        !slugs.contains(&"busybox"),
        "no container node here: {slugs:?}"
    );
    assert!(
        !slugs.contains(&"centos-9"),
        "an image no node holds is not offered: {slugs:?}"
    );
    let templates = expect_json(
        app.get("/api/templates", Some(&token)).await,
        StatusCode::OK,
    )
    .await;
    assert!(
        !templates.text.contains("centos-small"),
        "nor a template of it: {}",
        templates.text
    );
    // The operator sees which nodes hold what.
    let admin_list = expect_json(
        app.get("/api/admin/images", Some(&admin)).await,
        StatusCode::OK,
    )
    .await;
    let held = |slug: &str| -> Vec<String> {
        admin_list
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["slug"] == slug)
            .unwrap()["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(held("debian-12"), vec!["local-vm".to_owned()]);
    assert!(held("centos-9").is_empty());

    // Refused at create in every dialect, naming what works; nothing is charged or made.
    let refused = expect_error(
        app.post(
            "/api/vps",
            Some(&token),
            json!({"name": "c9", "plan_id": "nano", "image": "centos-9"}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "not on any node",
    )
    .await;
    assert!(refused.text.contains("debian-12"), "{}", refused.text);
    expect_error(
        app.post(
            "/v1/servers",
            Some(&token),
            json!({"label": "c9", "plan": "nano", "os": "centos-9"}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "not on any node",
    )
    .await;
    expect_error(
        app.post(
            "/v1/instances",
            Some(&token),
            json!({"metadata": {"name": "c9"}, "spec": {"type": "nano", "image": "centos-9"}}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "not on any node",
    )
    .await;
    let listed = expect_json(app.get("/api/vps", Some(&token)).await, StatusCode::OK).await;
    assert_eq!(listed.as_array().unwrap().len(), 0, "nothing was created");

    // A second VM node that holds none of the images (libvirt's built-in test host has no
    // `default` pool) and sorts first: machines still go where their image is.
    expect_json(
        app.post(
            "/api/admin/nodes",
            Some(&admin),
            json!({"name": "a-bare", "kind": "vm", "region": "local", "uri": "test:///default",
                   "vcpu": 64, "memory_mb": 262144, "disk_gb": 4000}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let vps = expect_json(
        app.post(
            "/api/vps",
            Some(&token),
            json!({"name": "deb", "plan_id": "nano", "image": "debian-12"}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let node: String = sqlx::query_scalar(
        "SELECT n.name FROM instances i JOIN nodes n ON n.id = i.node_id WHERE i.id = $1",
    )
    .bind(vps["id"].as_str().unwrap())
    .fetch_one(&app.state.db)
    .await
    .unwrap();
    assert_eq!(node, "local-vm", "placed on the node that holds debian-12");

    // Replicas starting together survey the same nodes at the same moment (CI caught the second
    // one failing to start with "Already exists"): every pass succeeds and the offer is unchanged.
    let passes = (0..6).map(|_| domain::fleet::survey::all(&app.state.db, &app.state.drivers));
    for pass in futures::future::join_all(passes).await {
        pass.expect("a survey beside others");
    }
    let again = expect_json(app.get("/api/images", None).await, StatusCode::OK).await;
    assert_eq!(again.text, offered.text, "the same images are offered");
}

/// The operator's `hangar admin put-image --url U --sha256 S`: the disk is fetched into
/// `data_dir/images/<slug>.qcow2` and the image saved with that path, only when the checksum
/// matches; a wrong one fails the command and leaves neither a file nor an image.
// Several threads: the command below blocks its thread while this test's file server answers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_image_fetches_a_disk_by_url_and_keeps_it_only_when_its_checksum_matches() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const DISK: &[u8] = b"QFI\xfb a disk image, as far as this test is concerned";
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/disk.qcow2", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let mut request = [0u8; 4096];
            let _ = conn.read(&mut request).await;
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                DISK.len()
            );
            let _ = conn.write_all(head.as_bytes()).await;
            let _ = conn.write_all(DISK).await;
        }
    });
    let scratch = std::env::temp_dir().join(format!("hangar-put-image-{}", rand::random::<u64>()));
    std::fs::create_dir_all(&scratch).unwrap();
    std::fs::write(scratch.join("disk"), DISK).unwrap();
    // The checksum as an operator takes it, with sha256sum.
    let sum = std::process::Command::new("sha256sum")
        .arg(scratch.join("disk"))
        .output()
        .unwrap();
    let sum = String::from_utf8(sum.stdout).unwrap()[..64].to_owned();

    let app = TestApp::spawn().await;
    let (database, _dir) = app.stop().await;
    let data_dir = scratch.join("data");
    let put_image = |sha: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_hangar"))
            .args([
                "admin",
                "put-image",
                "--slug",
                "my-disk",
                "--name",
                "My disk",
            ])
            .args(["--kind", "vm", "--url", &url, "--sha256", sha])
            .env("DATABASE_URL", &database)
            .env("HANGAR_DATA_DIR", &data_dir)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let disk = data_dir.join("images/my-disk.qcow2");

    let wrong = "0".repeat(64);
    let (ok, stderr) = put_image(&wrong);
    assert!(!ok, "a wrong checksum fails the command");
    assert!(stderr.contains("SHA-256"), "{stderr}");
    assert!(
        !disk.exists(),
        "nothing is kept from a download that does not match"
    );

    let (ok, stderr) = put_image(&sum);
    assert!(ok, "{stderr}");
    assert_eq!(std::fs::read(&disk).unwrap(), DISK);

    let app = TestApp::builder().database(database.clone()).spawn().await;
    let (_, admin) = app.admin("ops").await;
    let images = expect_json(
        app.get("/api/admin/images", Some(&admin)).await,
        StatusCode::OK,
    )
    .await;
    let mine = images
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["slug"] == "my-disk")
        .unwrap_or_else(|| panic!("the image is saved: {}", images.text));
    assert_eq!(mine["kind"], "vm");
    let (source,): (String,) = sqlx::query_as("SELECT source FROM images WHERE slug = 'my-disk'")
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(
        source,
        disk.display().to_string(),
        "the VM node reads the fetched disk"
    );
    std::fs::remove_dir_all(&scratch).unwrap();
}

/// The catalog as an operator manages it: every plan, image and template listed with what uses
/// it (retired ones too), changes that never wipe what they do not name — a `PUT` on an
/// existing entry and a `PATCH` alike — retiring and offering again, deleting an image only once
/// nothing uses it, and the marketplace inventory with who rents what.
#[tokio::test]
async fn operators_list_change_and_retire_the_catalog_without_wiping_what_they_leave_out() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin("root").await;
    let (uid, user) = app.user("joe").await;
    app.credit(&admin, &uid, 200.0).await;
    expect_error(
        app.get("/api/admin/plans", Some(&user)).await,
        StatusCode::FORBIDDEN,
        "",
    )
    .await;
    create_vps(
        &app,
        &user,
        json!({"name": "web", "plan_id": "nano", "image": "debian-12"}),
    )
    .await;
    let plan_of = |plans: &common::Body, slug: &str| {
        plans
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["slug"] == slug)
            .cloned()
            .unwrap_or_else(|| panic!("no plan {slug} in {}", plans.text))
    };
    let plans = expect_json(
        app.get("/api/admin/plans", Some(&admin)).await,
        StatusCode::OK,
    )
    .await;
    let nano = plan_of(&plans, "nano");
    assert_eq!(nano["machines"], 1);
    assert_eq!(nano["active"], true);

    // A PUT naming only the price reprices; the rest of the plan stays.
    expect_json(
        app.put(
            "/api/admin/plans",
            Some(&admin),
            json!({"slug": "nano", "price_hourly": 0.5}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let after = plan_of(
        &expect_json(
            app.get("/api/admin/plans", Some(&admin)).await,
            StatusCode::OK,
        )
        .await,
        "nano",
    );
    assert_eq!(after["price_hourly"], 0.5);
    for kept in ["name", "kind", "vcpu", "memory_mb", "disk_gb"] {
        assert_eq!(after[kept], nano[kept], "{kept} kept");
    }
    // PATCH: the same, under the method that says so; bad changes change nothing.
    let renamed = expect_json(
        app.patch(
            "/api/admin/plans/nano",
            Some(&admin),
            json!({"name": "Nano II"}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(renamed["name"], "Nano II");
    assert_eq!(renamed["price_hourly"], 0.5);
    expect_error(
        app.patch(
            "/api/admin/plans/nano",
            Some(&admin),
            json!({"vcpu": "two"}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "would not be valid",
    )
    .await;
    expect_error(
        app.patch(
            "/api/admin/plans/nano",
            Some(&admin),
            json!({"slug": "pico"}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "slug cannot change",
    )
    .await;
    expect_error(
        app.put(
            "/api/admin/plans",
            Some(&admin),
            json!({"slug": "nano", "kind": "container"}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "kind cannot change",
    )
    .await;
    expect_error(
        app.patch("/api/admin/plans/nope", Some(&admin), json!({"name": "x"}))
            .await,
        StatusCode::NOT_FOUND,
        "",
    )
    .await;
    assert_eq!(
        plan_of(
            &expect_json(
                app.get("/api/admin/plans", Some(&admin)).await,
                StatusCode::OK
            )
            .await,
            "nano"
        )["vcpu"],
        nano["vcpu"]
    );

    // Retired: listed for the operator, gone from pricing; offered again by a PATCH.
    assert_eq!(
        app.delete("/api/admin/plans/nano", Some(&admin))
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    let offered = |body: &common::Body, slug: &str| {
        body.as_array().unwrap().iter().any(|p| p["slug"] == slug)
    };
    let pricing = expect_json(app.get("/api/pricing", None).await, StatusCode::OK).await;
    assert!(!offered(&pricing, "nano"), "{}", pricing.text);
    let listed = plan_of(
        &expect_json(
            app.get("/api/admin/plans", Some(&admin)).await,
            StatusCode::OK,
        )
        .await,
        "nano",
    );
    assert_eq!(listed["active"], false);
    expect_json(
        app.patch(
            "/api/admin/plans/nano",
            Some(&admin),
            json!({"active": true}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let pricing = expect_json(app.get("/api/pricing", None).await, StatusCode::OK).await;
    assert!(offered(&pricing, "nano"));

    // Images: a PUT naming only the name keeps the source.
    expect_json(app.put("/api/admin/images", Some(&admin), json!({"slug": "spare", "name": "Spare", "kind": "vm", "source": "/var/lib/images/spare.qcow2"})).await, StatusCode::OK).await;
    expect_json(
        app.put(
            "/api/admin/images",
            Some(&admin),
            json!({"slug": "spare", "name": "Spare II"}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let image_of = |images: &common::Body, slug: &str| {
        images
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["slug"] == slug)
            .cloned()
    };
    let images = expect_json(
        app.get("/api/admin/images", Some(&admin)).await,
        StatusCode::OK,
    )
    .await;
    let spare = image_of(&images, "spare").unwrap();
    assert_eq!(spare["name"], "Spare II");
    assert_eq!(spare["source"], "/var/lib/images/spare.qcow2");
    let debian = image_of(&images, "debian-12").unwrap();
    assert_eq!(debian["machines"], 1, "{}", images.text);
    assert!(
        !debian["nodes"].as_array().unwrap().is_empty(),
        "the test node holds it"
    );

    // Retiring an image: not offered, not accepted; the machine made from it is untouched.
    assert_eq!(
        app.delete("/api/admin/images/debian-12", Some(&admin))
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    let public = expect_json(app.get("/api/images", None).await, StatusCode::OK).await;
    assert!(!offered(&public, "debian-12"), "{}", public.text);
    let refused = app
        .post(
            "/api/vps",
            Some(&user),
            json!({"name": "db", "plan_id": "nano", "image": "debian-12"}),
        )
        .await;
    assert!(
        refused.status().is_client_error(),
        "a retired image is refused: {}",
        refused.status()
    );
    // In use: it cannot be deleted, only retired.
    expect_error(
        app.delete("/api/admin/images/debian-12?purge=true", Some(&admin))
            .await,
        StatusCode::CONFLICT,
        "retire it instead",
    )
    .await;
    expect_json(
        app.patch(
            "/api/admin/images/debian-12",
            Some(&admin),
            json!({"active": true}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let public = expect_json(app.get("/api/images", None).await, StatusCode::OK).await;
    assert!(offered(&public, "debian-12"));
    assert_eq!(
        app.delete("/api/admin/images/spare?purge=true", Some(&admin))
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    let images = expect_json(
        app.get("/api/admin/images", Some(&admin)).await,
        StatusCode::OK,
    )
    .await;
    assert!(image_of(&images, "spare").is_none(), "deleted for good");

    // Templates: a PUT naming only the name keeps its lifetime; retired ones stay listed.
    expect_json(app.put("/api/admin/templates", Some(&admin), json!({"slug": "short", "name": "Short", "plan": "nano", "image": "debian-12", "ttl_minutes": 30})).await, StatusCode::OK).await;
    let renamed = expect_json(
        app.put(
            "/api/admin/templates",
            Some(&admin),
            json!({"slug": "short", "name": "Short-lived"}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(renamed["ttl_minutes"], 30, "{}", renamed.text);
    assert_eq!(
        app.delete("/api/admin/templates/short", Some(&admin))
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    let templates = expect_json(
        app.get("/api/admin/templates", Some(&admin)).await,
        StatusCode::OK,
    )
    .await;
    let short = templates
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["slug"] == "short")
        .unwrap();
    assert_eq!(short["active"], false);
    assert_eq!(short["plan"], "nano");

    // The inventory: who rents what, what is retired, found by the renter's name.
    let rented = app
        .add_server(&admin, &[("/name", json!("rented-one"))])
        .await;
    let retired = app
        .add_server(&admin, &[("/name", json!("retired-one"))])
        .await;
    expect_json(
        app.post(
            &format!("/api/v1/servers/{rented}/rent"),
            Some(&user),
            json!({"rental_days": 7}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(
        app.delete(
            &format!("/api/admin/marketplace/servers/{retired}"),
            Some(&admin)
        )
        .await
        .status(),
        StatusCode::NO_CONTENT
    );
    let by_renter = expect_json(
        app.get(
            "/api/admin/marketplace/servers?q=JOE&status=rented",
            Some(&admin),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(by_renter["total"], 1, "{}", by_renter.text);
    assert_eq!(by_renter["servers"][0]["id"], rented);
    assert_eq!(by_renter["servers"][0]["rental"]["username"], "joe");
    let gone = expect_json(
        app.get(
            "/api/admin/marketplace/servers?status=retired",
            Some(&admin),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(gone["total"], 1);
    assert_eq!(gone["servers"][0]["status"], "retired");
    expect_error(
        app.get("/api/admin/marketplace/servers?status=sold", Some(&admin))
            .await,
        StatusCode::BAD_REQUEST,
        "status",
    )
    .await;

    // Each change is the operator's, in the audit log.
    let log = expect_json(
        app.get("/api/admin/audit", Some(&admin)).await,
        StatusCode::OK,
    )
    .await;
    for action in [
        "plan.put",
        "plan.patch",
        "plan.retire",
        "image.retire",
        "image.patch",
        "image.delete",
        "template.retire",
    ] {
        assert!(
            log.text.contains(&format!("\"action\":\"{action}\"")),
            "{action} audited"
        );
    }
}

/// Nodes as an operator edits them: a change names only what changes, capacity cannot go below
/// what machines hold, an address another node drives is refused, only a node daemon has a
/// token to rotate; an unreachable node says why; each node's load is read back over a range.
#[tokio::test]
async fn operators_edit_nodes_see_why_one_is_unreachable_and_read_their_load() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin("root").await;
    let (uid, user) = app.user("joe").await;
    app.credit(&admin, &uid, 20.0).await;
    create_vps(&app, &user, json!({"name": "web", "plan_id": "nano"})).await;
    app.run_jobs().await;
    let node_named = |nodes: &common::Body, name: &str| {
        nodes
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no node {name} in {}", nodes.text))
    };
    let nodes = expect_json(
        app.get("/api/admin/nodes", Some(&admin)).await,
        StatusCode::OK,
    )
    .await;
    let vm = node_named(&nodes, "local-vm");
    let id = vm["id"].as_str().unwrap().to_owned();

    let changed = expect_json(
        app.patch(
            &format!("/api/admin/nodes/{id}"),
            Some(&admin),
            json!({"name": "vm-1", "vcpu": 64}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(changed["name"], "vm-1");
    assert_eq!(changed["vcpu"], 64);
    for kept in ["uri", "region", "memory_mb", "disk_gb", "status"] {
        assert_eq!(changed[kept], vm[kept], "{kept} kept");
    }
    expect_error(
        app.patch(
            &format!("/api/admin/nodes/{id}"),
            Some(&admin),
            json!({"vcpu": 0}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "positive",
    )
    .await;
    expect_error(
        app.patch(
            &format!("/api/admin/nodes/{id}"),
            Some(&admin),
            json!({"vcpu": 1_000_000}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "at most",
    )
    .await;
    // One vCPU hands out four with the default over-commit: enough for the nano machine.
    let small = expect_json(
        app.patch(
            &format!("/api/admin/nodes/{id}"),
            Some(&admin),
            json!({"vcpu": 1}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(small["vcpu"], 1);
    expect_error(
        app.patch(
            &format!("/api/admin/nodes/{id}"),
            Some(&admin),
            json!({"memory_mb": 1}),
        )
        .await,
        StatusCode::CONFLICT,
        "cannot go below",
    )
    .await;
    expect_error(
        app.post(
            &format!("/api/admin/nodes/{id}/rotate-secret"),
            Some(&admin),
            json!({}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "Only node daemons",
    )
    .await;

    // Two container nodes at addresses where nothing answers: one cannot take the other's.
    for (name, uri) in [
        ("gone-a", "unix:///nonexistent/a.sock"),
        ("gone-b", "unix:///nonexistent/b.sock"),
    ] {
        expect_json(app.post("/api/admin/nodes", Some(&admin), json!({"name": name, "kind": "container", "region": "eu", "uri": uri, "vcpu": 2, "memory_mb": 2048, "disk_gb": 20})).await, StatusCode::CREATED).await;
    }
    let nodes = expect_json(
        app.get("/api/admin/nodes", Some(&admin)).await,
        StatusCode::OK,
    )
    .await;
    let b = node_named(&nodes, "gone-b")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    expect_error(
        app.patch(
            &format!("/api/admin/nodes/{b}"),
            Some(&admin),
            json!({"uri": "unix:///nonexistent/a.sock"}),
        )
        .await,
        StatusCode::CONFLICT,
        "already drives this engine",
    )
    .await;

    // A pass: the lost nodes are unreachable, each saying why; the VM node's load is recorded.
    domain::compute::reconcile::run(&app.state).await.unwrap();
    let nodes = expect_json(
        app.get("/api/admin/nodes", Some(&admin)).await,
        StatusCode::OK,
    )
    .await;
    let gone = node_named(&nodes, "gone-a");
    assert!(gone["unreachable_since"].is_i64(), "{gone}");
    let why = gone["unreachable_reason"].as_str().unwrap_or_default();
    assert!(!why.is_empty(), "an unreachable node says why: {gone}");
    assert!(node_named(&nodes, "vm-1")["unreachable_reason"].is_null());
    let history = expect_json(
        app.get(
            &format!("/api/admin/nodes/{id}/history?range=1h"),
            Some(&admin),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let last = history.as_array().unwrap().last().cloned().unwrap();
    // nano: 1 of 64 vCPU × the default over-commit.
    assert!(
        last["allocated_cpu_percent"].as_f64().unwrap() > 0.0,
        "{last}"
    );
    expect_error(
        app.get(
            &format!("/api/admin/nodes/{id}/history?range=2d"),
            Some(&admin),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "range",
    )
    .await;
    let log = expect_json(
        app.get("/api/admin/audit?action=node.", Some(&admin)).await,
        StatusCode::OK,
    )
    .await;
    assert!(
        log.text.contains("\"action\":\"node.change\""),
        "{}",
        log.text
    );
}

#[test]
fn a_panel_drives_node_daemons_of_its_own_minor_version_only() {
    use domain::compute::reconcile::compatible;
    let ours = env!("CARGO_PKG_VERSION");
    assert!(compatible(ours).is_ok());
    let (major, rest) = ours.split_once('.').unwrap();
    let minor: u64 = rest.split('.').next().unwrap().parse().unwrap();
    assert!(
        compatible(&format!("{major}.{minor}.999")).is_ok(),
        "patches mix"
    );
    let newer = format!("{major}.{}.0", minor + 1);
    let why = compatible(&newer).unwrap_err();
    assert!(why.contains(&newer) && why.contains("upgrade"), "{why}");
    assert!(compatible("99.0.0").is_err());
}
