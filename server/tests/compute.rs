//! Compute through the three APIs (references 002, 000, 004) on libvirt's test driver: the
//! lifecycle a customer goes through, every route with good and bad input, isolation between
//! users, capacity under concurrent creates, restart in the middle of a job, the reconciler, TTLs
//! and batches. Containers on the real Podman engine are covered at the end.

mod common;

use std::collections::HashSet;

use common::{expect_error, expect_json, TestApp};
use domain::compute::driver::machine_name;
use domain::compute::{executor, instances, nodes, reconcile};
use domain::infra::queue;
use reqwest::StatusCode;
use serde_json::{json, Value};

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOpGf6s4Zz2qR1b3l7M9m8xH0d7lq1fK2Z8v2wG4bY1c me@laptop";

async fn plan_id(app: &TestApp, slug: &str) -> String {
    let plans = expect_json(app.get("/api/pricing", None).await, StatusCode::OK).await;
    plans
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["slug"] == slug)
        .unwrap_or_else(|| panic!("no plan {slug} in {}", plans.text))["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn vm_node(app: &TestApp) -> nodes::NodeRow {
    nodes::list(&app.state.db)
        .await
        .unwrap()
        .into_iter()
        .find(|n| n.kind == domain::compute::driver::Kind::Vm)
        .unwrap()
}

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
async fn creating_needs_the_minimum_runtime_in_balance() {
    let app = TestApp::spawn().await;
    let (_, poor) = app.user("poor").await;
    let plan = plan_id(&app, "small").await;
    let res = app
        .post(
            "/api/vps",
            Some(&poor),
            json!({"name": "web-01", "plan_id": plan}),
        )
        .await;
    let body = expect_error(res, StatusCode::PAYMENT_REQUIRED, "insufficient balance").await;
    assert_eq!(body.raw("balance"), "0.0000");
    assert_eq!(body.raw("required"), "0.0120", "one hour of the small plan");
    assert_eq!(
        expect_json(app.get("/api/vps", Some(&poor)).await, StatusCode::OK)
            .await
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(vm_node(&app).await.used_vcpu, 0, "nothing reserved");

    // The same 402 through the other two APIs.
    expect_error(
        app.post(
            "/v1/servers",
            Some(&poor),
            json!({"plan": "small", "label": "x"}),
        )
        .await,
        StatusCode::PAYMENT_REQUIRED,
        "insufficient",
    )
    .await;
    expect_error(
        app.post(
            "/v1/instances",
            Some(&poor),
            json!({"metadata": {"name": "x"}, "spec": {"type": "small", "image": "debian-12"}}),
        )
        .await,
        StatusCode::PAYMENT_REQUIRED,
        "insufficient",
    )
    .await;
}

#[tokio::test]
async fn a_token_spend_limit_stops_creates_beyond_it() {
    let app = TestApp::spawn().await;
    let (_, jwt) = app.funded_user("ci", 20.0).await;
    let tok = expect_json(
        app.post(
            "/api/tokens",
            Some(&jwt),
            json!({"name": "ci", "spend_limit": 0.01}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let vtk = tok["token"].as_str().unwrap();
    let res = app
        .post(
            "/api/vps",
            Some(vtk),
            json!({"name": "ci-1", "plan_id": "small"}),
        )
        .await;
    expect_error(res, StatusCode::PAYMENT_REQUIRED, "token spend limit").await;
    expect_json(
        app.post(
            "/api/vps",
            Some(vtk),
            json!({"name": "ci-1", "plan_id": "nano"}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
}

#[tokio::test]
async fn vps_lifecycle_from_create_to_delete() {
    let app = TestApp::spawn().await;
    let (uid, token) = app.funded_user("vera", 10.0).await;
    let key = expect_json(
        app.post(
            "/api/keys",
            Some(&token),
            json!({"name": "k", "public_key": KEY}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let key_id = key["id"].as_str().unwrap();
    let plan = plan_id(&app, "small").await;

    let vps = expect_json(
        app.post("/api/vps", Some(&token), json!({"name": "web-01", "plan_id": plan, "ssh_key_ids": [key_id], "user_data": "#cloud-config\n"})).await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(vps["state"], "creating");
    assert_eq!(vps["transition"], "create");
    assert_eq!(vps["ssh_key_ids"], json!([key_id]));
    let id = vps["id"].as_str().unwrap().to_owned();
    let node = vm_node(&app).await;
    assert_eq!(
        (node.used_vcpu, node.used_memory_mb, node.used_disk_gb),
        (1, 2048, 25),
        "capacity reserved at create"
    );

    // A power action while creating is refused with the reason.
    expect_error(
        app.post(&format!("/api/vps/{id}/stop"), Some(&token), json!({}))
            .await,
        StatusCode::CONFLICT,
        "create is in progress",
    )
    .await;

    app.run_jobs().await;
    let vps = expect_json(
        app.get(&format!("/api/vps/{id}"), Some(&token)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(vps["state"], "running");
    assert_eq!(vps["transition"], Value::Null);

    // The machine really exists on the node, with the plan's size.
    let inst = instances::get(&app.state.db, &uid, &id).await.unwrap();
    let driver = executor::driver_for(&app.state, &inst)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        driver.power(&machine_name(&id)).await.unwrap(),
        Some(domain::compute::driver::Power::Running)
    );
    assert!(
        inst.metered_until.is_some(),
        "billing started when it became running"
    );

    // cloud-init seed: meta-data with the key, user-data as given; a wrong key is 404.
    let meta = app
        .client
        .get(app.url(&format!("/cloud-init/{id}/{}/meta-data", inst.seed_key)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        meta.contains(&format!("instance-id: {id}"))
            && meta.contains("local-hostname: web-01")
            && meta.contains("ssh-ed25519 AAAA"),
        "{meta}"
    );
    let ud = app
        .client
        .get(app.url(&format!("/cloud-init/{id}/{}/user-data", inst.seed_key)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(ud, "#cloud-config\n");
    assert_eq!(
        app.client
            .get(app.url(&format!("/cloud-init/{id}/wrong/meta-data")))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );

    let vnc = expect_json(
        app.get(&format!("/api/vps/{id}/vnc-port"), Some(&token))
            .await,
        StatusCode::OK,
    )
    .await;
    assert!(vnc["port"].as_u64().unwrap() >= 5900);

    // Rename (name only).
    let renamed = expect_json(
        app.put(
            &format!("/api/vps/{id}"),
            Some(&token),
            json!({"name": "web-02"}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(renamed["name"], "web-02");
    expect_json(
        app.put(
            &format!("/api/vps/{id}"),
            Some(&token),
            json!({"name": "x", "plan_id": "nano"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    expect_error(
        app.put(
            &format!("/api/vps/{id}"),
            Some(&token),
            json!({"name": "bad name!"}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "name",
    )
    .await;

    // Snapshot while running; restoring needs a stopped VPS.
    let snap = expect_json(
        app.post(
            &format!("/api/vps/{id}/snapshots"),
            Some(&token),
            json!({"name": "before"}),
        )
        .await,
        StatusCode::ACCEPTED,
    )
    .await;
    assert_eq!(snap["state"], "creating");
    app.run_jobs().await;
    let snaps = expect_json(
        app.get(&format!("/api/vps/{id}/snapshots"), Some(&token))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(snaps[0]["name"], "before");
    assert_eq!(snaps[0]["state"], "ready");
    expect_error(
        app.post(
            &format!("/api/vps/{id}/snapshots"),
            Some(&token),
            json!({"name": "before"}),
        )
        .await,
        StatusCode::CONFLICT,
        "exists",
    )
    .await;
    expect_error(
        app.post(
            &format!("/api/vps/{id}/snapshots"),
            Some(&token),
            json!({"name": "../x"}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "name",
    )
    .await;
    expect_error(
        app.post(
            &format!("/api/vps/{id}/snapshots/before/restore"),
            Some(&token),
            json!({}),
        )
        .await,
        StatusCode::CONFLICT,
        "Stop the instance",
    )
    .await;
    expect_error(
        app.post(&format!("/api/vps/{id}/start"), Some(&token), json!({}))
            .await,
        StatusCode::CONFLICT,
        "only a stopped",
    )
    .await;

    let stopping = expect_json(
        app.post(&format!("/api/vps/{id}/stop"), Some(&token), json!({}))
            .await,
        StatusCode::ACCEPTED,
    )
    .await;
    assert_eq!(stopping["transition"], "stop");
    app.run_jobs().await;
    let stopped = expect_json(
        app.get(&format!("/api/vps/{id}"), Some(&token)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(stopped["state"], "stopped");
    assert!(
        instances::get(&app.state.db, &uid, &id)
            .await
            .unwrap()
            .metered_until
            .is_none(),
        "billing ended at the stop"
    );
    expect_error(
        app.get(&format!("/api/vps/{id}/vnc-port"), Some(&token))
            .await,
        StatusCode::CONFLICT,
        "not running",
    )
    .await;
    expect_error(
        app.post(&format!("/api/vps/{id}/restart"), Some(&token), json!({}))
            .await,
        StatusCode::CONFLICT,
        "start it instead",
    )
    .await;

    let restore = expect_json(
        app.post(
            &format!("/api/vps/{id}/snapshots/before/restore"),
            Some(&token),
            json!({}),
        )
        .await,
        StatusCode::ACCEPTED,
    )
    .await;
    assert!(restore["operation_id"].is_string());
    expect_error(
        app.post(
            &format!("/api/vps/{id}/snapshots/nope/restore"),
            Some(&token),
            json!({}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "Snapshot",
    )
    .await;
    app.run_jobs().await;
    assert_eq!(
        expect_json(
            app.get(&format!("/api/vps/{id}"), Some(&token)).await,
            StatusCode::OK
        )
        .await["state"],
        "stopped"
    );

    expect_json(
        app.post(&format!("/api/vps/{id}/start"), Some(&token), json!({}))
            .await,
        StatusCode::ACCEPTED,
    )
    .await;
    app.run_jobs().await;
    expect_json(
        app.post(&format!("/api/vps/{id}/restart"), Some(&token), json!({}))
            .await,
        StatusCode::ACCEPTED,
    )
    .await;
    app.run_jobs().await;
    assert_eq!(
        expect_json(
            app.get(&format!("/api/vps/{id}"), Some(&token)).await,
            StatusCode::OK
        )
        .await["state"],
        "running"
    );

    assert_eq!(
        app.delete(&format!("/api/vps/{id}/snapshots/before"), Some(&token))
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    expect_error(
        app.delete(&format!("/api/vps/{id}/snapshots/before"), Some(&token))
            .await,
        StatusCode::NOT_FOUND,
        "Snapshot",
    )
    .await;
    app.run_jobs().await;
    assert!(
        driver
            .snapshot_list(&machine_name(&id))
            .await
            .unwrap()
            .is_empty(),
        "the node forgot it too"
    );

    expect_json(
        app.delete(&format!("/api/vps/{id}"), Some(&token)).await,
        StatusCode::ACCEPTED,
    )
    .await;
    app.run_jobs().await;
    expect_error(
        app.get(&format!("/api/vps/{id}"), Some(&token)).await,
        StatusCode::NOT_FOUND,
        "Instance",
    )
    .await;
    assert_eq!(
        expect_json(app.get("/api/vps", Some(&token)).await, StatusCode::OK)
            .await
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        driver.power(&machine_name(&id)).await.unwrap(),
        None,
        "the domain and its disk are gone"
    );
    let node = vm_node(&app).await;
    assert_eq!(
        (node.used_vcpu, node.used_memory_mb, node.used_disk_gb),
        (0, 0, 0),
        "capacity released"
    );
    let (cached, sum) = app.money(&uid).await;
    assert_eq!(cached, sum, "the ledger still adds up");
}

#[tokio::test]
async fn bad_create_requests_are_refused_and_change_nothing() {
    let app = TestApp::spawn().await;
    let (_, token) = app.funded_user("bea", 10.0).await;
    let (_, other) = app.user("other").await;
    let other_key = expect_json(
        app.post(
            "/api/keys",
            Some(&other),
            json!({"name": "k", "public_key": KEY}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let cases = [
        (json!({"name": "x"}), "plan_id"),
        (json!({"name": "x", "plan_id": "nope"}), "no active plan"),
        (json!({"name": "", "plan_id": "nano"}), "name"),
        (
            json!({"name": "x", "plan_id": "nano", "image": "busybox"}),
            "container",
        ),
        (
            json!({"name": "x", "plan_id": "nano", "image": "nope"}),
            "no image",
        ),
        (json!({"name": "x", "plan_id": "nano", "vcpu": 64}), "vcpu"),
        (
            json!({"name": "x", "plan_id": "nano", "ttl_minutes": 0}),
            "ttl_minutes",
        ),
        (
            json!({"name": "x", "plan_id": "nano", "template": "nope"}),
            "template",
        ),
        (
            json!({"name": "x", "plan_id": "nano", "ssh_key_ids": [other_key["id"]]}),
            "no SSH key",
        ),
        (
            json!({"name": "x", "plan_id": "nano", "region": "mars"}),
            "region mars",
        ),
    ];
    for (body, needle) in cases {
        let status = if needle == "region mars" {
            StatusCode::CONFLICT
        } else {
            StatusCode::BAD_REQUEST
        };
        expect_error(
            app.post("/api/vps", Some(&token), body.clone()).await,
            status,
            needle,
        )
        .await;
    }
    expect_json(
        app.post(
            "/api/vps",
            Some(&token),
            json!({"name": "x", "plan_id": "nano", "unknown": 1}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        expect_json(app.get("/api/vps", Some(&token)).await, StatusCode::OK)
            .await
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(vm_node(&app).await.used_vcpu, 0);
}

#[tokio::test]
async fn one_instance_three_apis() {
    let app = TestApp::spawn().await;
    let (_, token) = app.funded_user("tri", 10.0).await;
    let (_, eve) = app.funded_user("eve", 10.0).await;

    let created = expect_json(
        app.post("/v1/servers", Some(&token), json!({"region": "local", "plan": "small", "os": "ubuntu-22-04", "label": "ml-01", "backups": true, "user_data": "#!/bin/sh\necho hi"})).await,
        StatusCode::CREATED,
    )
    .await;
    let s = &created["data"];
    assert_eq!(s["status"], "starting");
    assert_eq!(s["plan"], "small");
    assert_eq!(s["os"], "ubuntu-22-04");
    assert_eq!(s["region"], "local");
    assert_eq!(s["vcpus"], 1);
    assert_eq!(s["ram_gb"], 2.0);
    assert_eq!(s["disk_gb"], 25);
    assert_eq!(s["price_per_hour"], "0.012");
    assert_eq!(s["backups"], true);
    assert_eq!(s["main_ip"], Value::Null);
    let id = s["id"].as_str().unwrap().to_owned();

    let vps = expect_json(
        app.get(&format!("/api/vps/{id}"), Some(&token)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(vps["state"], "creating");
    assert_eq!(vps["name"], "ml-01");
    let inst = expect_json(
        app.get(&format!("/v1/instances/{id}"), Some(&token)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(inst["status"]["state"], "provisioning");
    assert_eq!(inst["metadata"]["name"], "ml-01");
    assert_eq!(inst["spec"]["type"], "small");
    assert_eq!(
        inst["spec"]["user_data"], "IyEvYmluL3NoCmVjaG8gaGk=",
        "user data shown base64 in 004"
    );

    app.run_jobs().await;
    assert_eq!(
        expect_json(
            app.get(&format!("/v1/servers/{id}"), Some(&token)).await,
            StatusCode::OK
        )
        .await["data"]["status"],
        "active"
    );
    assert_eq!(
        expect_json(
            app.get(&format!("/v1/instances/{id}"), Some(&token)).await,
            StatusCode::OK
        )
        .await["status"]["state"],
        "running"
    );
    assert_eq!(
        expect_json(
            app.get(&format!("/api/vps/{id}"), Some(&token)).await,
            StatusCode::OK
        )
        .await["state"],
        "running"
    );

    let stopping = expect_json(
        app.post(&format!("/v1/servers/{id}/stop"), Some(&token), json!({}))
            .await,
        StatusCode::ACCEPTED,
    )
    .await;
    assert_eq!(stopping["data"]["status"], "stopping");
    app.run_jobs().await;
    assert_eq!(
        expect_json(app.get("/v1/servers", Some(&token)).await, StatusCode::OK).await["data"][0]
            ["status"],
        "stopped"
    );
    expect_json(
        app.post(&format!("/v1/servers/{id}/start"), Some(&token), json!({}))
            .await,
        StatusCode::ACCEPTED,
    )
    .await;
    app.run_jobs().await;
    let rebooting = expect_json(
        app.post(&format!("/v1/servers/{id}/reboot"), Some(&token), json!({}))
            .await,
        StatusCode::ACCEPTED,
    )
    .await;
    assert_eq!(rebooting["data"]["status"], "rebooting");
    app.run_jobs().await;
    let relabeled = expect_json(
        app.patch(
            &format!("/v1/servers/{id}"),
            Some(&token),
            json!({"label": "ml-02"}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(relabeled["data"]["label"], "ml-02");
    expect_json(
        app.patch(
            &format!("/v1/servers/{id}"),
            Some(&token),
            json!({"plan": "x"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;

    // Someone else sees none of it, through any API.
    for path in [
        format!("/api/vps/{id}"),
        format!("/v1/servers/{id}"),
        format!("/v1/instances/{id}"),
        format!("/api/vps/{id}/snapshots"),
    ] {
        expect_error(
            app.get(&path, Some(&eve)).await,
            StatusCode::NOT_FOUND,
            "not found",
        )
        .await;
    }
    expect_error(
        app.post(&format!("/v1/servers/{id}/stop"), Some(&eve), json!({}))
            .await,
        StatusCode::NOT_FOUND,
        "not found",
    )
    .await;
    assert_eq!(
        app.delete(&format!("/v1/servers/{id}"), Some(&eve))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        expect_json(app.get("/v1/instances", Some(&eve)).await, StatusCode::OK).await["items"]
            .as_array()
            .unwrap()
            .len(),
        0
    );

    assert_eq!(
        app.delete(&format!("/v1/servers/{id}"), Some(&token))
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    app.run_jobs().await;
    expect_error(
        app.get(&format!("/v1/servers/{id}"), Some(&token)).await,
        StatusCode::NOT_FOUND,
        "not found",
    )
    .await;
}

#[tokio::test]
async fn instances_api_labels_operations_and_validation() {
    let app = TestApp::spawn().await;
    let (_, token) = app.funded_user("ivy", 10.0).await;
    let spec = |name: &str, env: &str| {
        json!({"metadata": {"name": name, "labels": {"env": env, "team": "platform"}},
               "spec": {"type": "nano", "image": "debian-12", "vpc_id": "vpc-abc123", "subnet_id": "subnet-def456",
                        "security_groups": ["sg-web", "sg-ssh"], "user_data": "IyEvYmluL2Jhc2gKYXB0IHVwZGF0ZQ=="}})
    };
    let a = expect_json(
        app.post("/v1/instances", Some(&token), spec("web-1", "production"))
            .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(a["status"]["state"], "provisioning");
    assert_eq!(a["spec"]["vpc_id"], "vpc-abc123");
    assert_eq!(a["spec"]["security_groups"], json!(["sg-web", "sg-ssh"]));
    assert_eq!(a["spec"]["user_data"], "IyEvYmluL2Jhc2gKYXB0IHVwZGF0ZQ==");
    assert_eq!(a["metadata"]["labels"]["env"], "production");
    assert!(a["metadata"]["created_at"].as_str().unwrap().ends_with('Z'));
    let op = a["operation_id"].as_str().unwrap().to_owned();
    let pending = expect_json(
        app.get(&format!("/v1/operations/{op}"), Some(&token)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(pending["status"], "pending");
    assert_eq!(pending["type"], "create");
    expect_json(
        app.post("/v1/instances", Some(&token), spec("web-2", "staging"))
            .await,
        StatusCode::CREATED,
    )
    .await;
    app.run_jobs().await;
    let done = expect_json(
        app.get(&format!("/v1/operations/{op}"), Some(&token)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(done["status"], "succeeded");
    assert_eq!(done["target_id"], a["id"]);

    let prod = expect_json(
        app.get(
            "/v1/instances?label_selector=env%3Dproduction",
            Some(&token),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(prod["items"].as_array().unwrap().len(), 1);
    assert_eq!(prod["items"][0]["metadata"]["name"], "web-1");
    let both = expect_json(
        app.get("/v1/instances?labelSelector=team%3Dplatform", Some(&token))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(both["items"].as_array().unwrap().len(), 2);
    let not_prod = expect_json(
        app.get(
            "/v1/instances?label_selector=env!%3Dproduction",
            Some(&token),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(not_prod["items"][0]["metadata"]["name"], "web-2");
    expect_error(
        app.get("/v1/instances?label_selector=%3Dx", Some(&token))
            .await,
        StatusCode::BAD_REQUEST,
        "label_selector",
    )
    .await;

    let mut bad = spec("web-3", "x");
    bad["spec"]["user_data"] = json!("not base64 !!");
    expect_error(
        app.post("/v1/instances", Some(&token), bad).await,
        StatusCode::BAD_REQUEST,
        "base64",
    )
    .await;
    let mut bad = spec("web-3", "x");
    bad["spec"]["vpc_id"] = Value::Null;
    expect_error(
        app.post("/v1/instances", Some(&token), bad).await,
        StatusCode::BAD_REQUEST,
        "vpc_id",
    )
    .await;
    let mut bad = spec("web-3", "x");
    bad["spec"]["type"] = json!("nope");
    expect_error(
        app.post("/v1/instances", Some(&token), bad).await,
        StatusCode::BAD_REQUEST,
        "plan",
    )
    .await;
    expect_json(
        app.post(
            "/v1/instances",
            Some(&token),
            json!({"metadata": {"name": "x"}}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;

    let id = a["id"].as_str().unwrap();
    let del = expect_json(
        app.delete(&format!("/v1/instances/{id}"), Some(&token))
            .await,
        StatusCode::ACCEPTED,
    )
    .await;
    let del_op = del["operation_id"].as_str().unwrap().to_owned();
    app.run_jobs().await;
    let d = expect_json(
        app.get(&format!("/v1/operations/{del_op}"), Some(&token))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        (d["type"].as_str(), d["status"].as_str()),
        (Some("delete"), Some("succeeded"))
    );
    let (_, eve) = app.user("eve").await;
    expect_error(
        app.get(&format!("/v1/operations/{del_op}"), Some(&eve))
            .await,
        StatusCode::NOT_FOUND,
        "Operation",
    )
    .await;
}

#[tokio::test]
async fn concurrent_creates_never_overcommit_a_node() {
    let app = TestApp::builder()
        .config("cpu_overcommit", "1")
        .spawn()
        .await;
    let (_, admin) = app.admin("ops").await;
    // Only one small node: 4 vCPUs, nothing else.
    let local = vm_node(&app).await;
    expect_json(
        app.client
            .patch(app.url(&format!("/api/admin/nodes/{}", local.id)))
            .bearer_auth(&admin)
            .json(&json!({"status": "draining"}))
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    let uri = local.uri.clone();
    let tiny = expect_json(
        app.post("/api/admin/nodes", Some(&admin), json!({"name": "tiny", "kind": "vm", "region": "eu", "uri": uri, "vcpu": 4, "memory_mb": 65536, "disk_gb": 1000})).await,
        StatusCode::CREATED,
    )
    .await;
    let (_, token) = app.funded_user("rush", 50.0).await;
    let tasks = (0..10).map(|i| {
        let app = &app;
        let token = token.clone();
        async move {
            app.post(
                "/api/vps",
                Some(&token),
                json!({"name": format!("r{i}"), "plan_id": "nano"}),
            )
            .await
            .status()
        }
    });
    let statuses = futures::future::join_all(tasks).await;
    let ok = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    let full = statuses
        .iter()
        .filter(|s| **s == StatusCode::CONFLICT)
        .count();
    assert_eq!((ok, full), (4, 6), "{statuses:?}");
    let node = nodes::get(&app.state.db, tiny["id"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(node.used_vcpu, 4);
    expect_error(
        app.post(
            "/api/vps",
            Some(&token),
            json!({"name": "late", "plan_id": "nano"}),
        )
        .await,
        StatusCode::CONFLICT,
        "No capacity",
    )
    .await;
}

#[tokio::test]
async fn a_job_cut_off_by_a_restart_is_finished_by_the_next_server() {
    let app = TestApp::builder()
        .config("job_lease_secs", "5")
        .spawn()
        .await;
    let (uid, token) = app.funded_user("rex", 10.0).await;
    let vps = expect_json(
        app.post(
            "/api/vps",
            Some(&token),
            json!({"name": "crashy", "plan_id": "nano"}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let id = vps["id"].as_str().unwrap().to_owned();
    // A worker takes the job and the server dies before it does anything.
    let claimed = queue::claim(&app.state.db, domain::infra::db::now_ms(), 5_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.instance_id.as_deref(), Some(id.as_str()));
    let (db_url, dir) = app.stop().await;

    let again = TestApp::builder()
        .database(db_url)
        .config("job_lease_secs", "5")
        .spawn()
        .await;
    assert_eq!(
        again.run_jobs().await,
        0,
        "the lease still holds: nobody runs it twice"
    );
    assert_eq!(
        instances::get(&again.state.db, &uid, &id)
            .await
            .unwrap()
            .state,
        instances::InstanceState::Provisioning
    );
    // Once the lease runs out, the new server's worker takes it over.
    let later = domain::infra::db::now_ms() + 6_000;
    let job = queue::claim(&again.state.db, later, 5_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.id, claimed.id);
    assert_eq!(job.attempts, 2);
    sqlx::query("UPDATE jobs SET state = 'queued', run_at = 0 WHERE id = $1")
        .bind(&job.id)
        .execute(&again.state.db)
        .await
        .unwrap();
    again.run_jobs().await;
    let token = again.login("rex").await;
    assert_eq!(
        expect_json(
            again.get(&format!("/api/vps/{id}"), Some(&token)).await,
            StatusCode::OK
        )
        .await["state"],
        "running"
    );
    drop(dir);
}

#[tokio::test]
async fn the_reconciler_fails_vanished_machines_and_removes_orphans() {
    let app = TestApp::spawn().await;
    let (uid, token) = app.funded_user("recon", 10.0).await;
    let a = expect_json(
        app.post(
            "/api/vps",
            Some(&token),
            json!({"name": "a", "plan_id": "nano"}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let b = expect_json(
        app.post(
            "/api/vps",
            Some(&token),
            json!({"name": "b", "plan_id": "nano"}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let c = expect_json(
        app.post(
            "/api/vps",
            Some(&token),
            json!({"name": "c", "plan_id": "nano"}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    app.run_jobs().await;
    let (a, b, c) = (
        a["id"].as_str().unwrap().to_owned(),
        b["id"].as_str().unwrap().to_owned(),
        c["id"].as_str().unwrap().to_owned(),
    );
    // c's guest took its DHCP lease after the create job had finished (as real guests do).
    sqlx::query("UPDATE instances SET private_ip = NULL WHERE id = $1")
        .bind(&c)
        .execute(&app.state.db)
        .await
        .unwrap();
    let inst = instances::get(&app.state.db, &uid, &a).await.unwrap();
    let driver = executor::driver_for(&app.state, &inst)
        .await
        .unwrap()
        .unwrap();

    // Behind Hangar's back: a's machine is destroyed, b's guest powers off, and a stray
    // hangar-... domain appears.
    driver.destroy(&machine_name(&a)).await.unwrap();
    driver.kill(&machine_name(&b)).await.unwrap();
    let mut stray = domain::compute::executor::machine_spec(&app.state, &inst)
        .await
        .unwrap();
    stray.name = machine_name("000000000000000000000000");
    driver.create(&stray).await.unwrap();

    let report = reconcile::run(&app.state).await.unwrap();
    assert_eq!(report.failed, vec![a.clone()]);
    assert_eq!(report.stopped, vec![b.clone()]);
    assert_eq!(report.destroyed, vec![stray.name.clone()]);
    assert_eq!(
        report.addressed,
        vec![c.clone()],
        "a late address is recorded"
    );
    let vc = expect_json(
        app.get(&format!("/v1/servers/{c}"), Some(&token)).await,
        StatusCode::OK,
    )
    .await;
    assert!(
        vc["data"]["main_ip"]
            .as_str()
            .is_some_and(|ip| ip.parse::<std::net::Ipv4Addr>().is_ok()),
        "{}",
        vc.text
    );

    let va = expect_json(
        app.get(&format!("/api/vps/{a}"), Some(&token)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(va["state"], "error");
    assert!(va["reason"].as_str().unwrap().contains("disappeared"));
    assert!(
        instances::get(&app.state.db, &uid, &a)
            .await
            .unwrap()
            .metered_until
            .is_none(),
        "a ghost does not bill"
    );
    assert_eq!(
        expect_json(
            app.get(&format!("/api/vps/{b}"), Some(&token)).await,
            StatusCode::OK
        )
        .await["state"],
        "stopped"
    );
    assert_eq!(
        vm_node(&app).await.used_vcpu,
        2,
        "the failed one's capacity is back"
    );
    assert_eq!(
        reconcile::run(&app.state).await.unwrap(),
        reconcile::Report::default(),
        "converged"
    );

    // A failed instance can still be deleted.
    expect_json(
        app.delete(&format!("/api/vps/{a}"), Some(&token)).await,
        StatusCode::ACCEPTED,
    )
    .await;
    app.run_jobs().await;
    expect_error(
        app.get(&format!("/api/vps/{a}"), Some(&token)).await,
        StatusCode::NOT_FOUND,
        "Instance",
    )
    .await;
    assert_eq!(vm_node(&app).await.used_vcpu, 2, "released once, not twice");
}

#[tokio::test]
async fn templates_fill_defaults_and_ttls_delete() {
    let app = TestApp::spawn().await;
    let (uid, token) = app.funded_user("tina", 10.0).await;
    let vps = expect_json(
        app.post(
            "/api/vps",
            Some(&token),
            json!({"name": "tmp", "template": "scratch-1h"}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert!(vps["expires_at"].is_string());
    assert_eq!(vps["image"], "debian-12");
    let small = expect_json(
        app.post(
            "/api/vps",
            Some(&token),
            json!({"name": "u", "template": "ubuntu-22-small", "memory_mb": 1024}),
        )
        .await,
        StatusCode::CREATED,
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
async fn batches_answer_per_item() {
    let app = TestApp::builder()
        .config("max_batch_size", "3")
        .spawn()
        .await;
    let (_, token) = app.funded_user("bat", 10.0).await;
    let res = app
        .post(
            "/api/vps/batch",
            Some(&token),
            json!({"vms": [
                {"name": "w1", "template": "ubuntu-22-small"},
                {"name": "w2", "plan_id": "nope"},
                {"name": "w3", "template": "ubuntu-22-small", "bogus": true}
            ]}),
        )
        .await;
    let body = expect_json(res, StatusCode::MULTI_STATUS).await;
    let r = body["results"].as_array().unwrap();
    assert_eq!(r.len(), 3);
    assert_eq!(
        (r[0]["index"].as_u64(), r[0]["status"].as_u64()),
        (Some(0), Some(201))
    );
    assert_eq!(r[0]["vps"]["state"], "creating");
    assert_eq!(r[1]["status"], 400);
    assert!(r[1]["error"].as_str().unwrap().contains("plan"));
    assert_eq!(r[2]["status"], 400);
    expect_error(
        app.post(
            "/api/vps/batch",
            Some(&token),
            json!({"vms": [{}, {}, {}, {}]}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "1 to 3",
    )
    .await;
    expect_error(
        app.post("/api/vps/batch", Some(&token), json!({"vms": []}))
            .await,
        StatusCode::BAD_REQUEST,
        "1 to 3",
    )
    .await;
    app.run_jobs().await;

    let id = r[0]["vps"]["id"].as_str().unwrap();
    let res = app
        .delete_json(
            "/api/vps/batch",
            Some(&token),
            json!({"ids": [id, "000000000000000000000000"]}),
        )
        .await;
    let body = expect_json(res, StatusCode::MULTI_STATUS).await;
    let statuses: HashSet<u64> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, HashSet::from([202, 404]));
    app.run_jobs().await;
    assert_eq!(
        expect_json(app.get("/api/vps", Some(&token)).await, StatusCode::OK)
            .await
            .as_array()
            .unwrap()
            .len(),
        0
    );
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
    expect_json(
        app.post(
            "/api/vps",
            Some(&nina_token),
            json!({"name": "n1", "plan_id": "nano"}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    expect_error(
        app.delete(&format!("/api/admin/nodes/{local_id}"), Some(&admin))
            .await,
        StatusCode::CONFLICT,
        "still holds",
    )
    .await;
}

#[tokio::test]
async fn containers_run_on_the_docker_engine_through_the_api() {
    let Ok(docker) = std::env::var("HANGAR_TEST_DOCKER_HOST") else {
        assert_eq!(
            std::env::var("HANGAR_TEST_SKIP_DOCKER").as_deref(),
            Ok("1"),
            "HANGAR_TEST_DOCKER_HOST is not set: run scripts/test (it starts Podman)"
        );
        return;
    };
    let app = TestApp::builder()
        .config("docker_host", &docker)
        .config("stop_timeout_secs", "5")
        .spawn()
        .await;
    let (uid, token) = app.funded_user("cody", 10.0).await;
    let vps = expect_json(
        app.post(
            "/api/vps",
            Some(&token),
            json!({"name": "box-1", "plan_id": "c-micro"}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(vps["kind"], "container");
    assert_eq!(vps["image"], "busybox");
    let id = vps["id"].as_str().unwrap().to_owned();
    app.run_jobs().await;
    assert_eq!(
        expect_json(
            app.get(&format!("/api/vps/{id}"), Some(&token)).await,
            StatusCode::OK
        )
        .await["state"],
        "running"
    );
    let inst = instances::get(&app.state.db, &uid, &id).await.unwrap();
    let driver = executor::driver_for(&app.state, &inst)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(driver.kind(), domain::compute::driver::Kind::Container);
    expect_error(
        app.get(&format!("/api/vps/{id}/vnc-port"), Some(&token))
            .await,
        StatusCode::CONFLICT,
        "no VNC",
    )
    .await;

    expect_json(
        app.post(
            &format!("/api/vps/{id}/snapshots"),
            Some(&token),
            json!({"name": "s1"}),
        )
        .await,
        StatusCode::ACCEPTED,
    )
    .await;
    app.run_jobs().await;
    expect_json(
        app.post(&format!("/api/vps/{id}/stop"), Some(&token), json!({}))
            .await,
        StatusCode::ACCEPTED,
    )
    .await;
    app.run_jobs().await;
    expect_json(
        app.post(
            &format!("/api/vps/{id}/snapshots/s1/restore"),
            Some(&token),
            json!({}),
        )
        .await,
        StatusCode::ACCEPTED,
    )
    .await;
    app.run_jobs().await;
    expect_json(
        app.post(&format!("/api/vps/{id}/start"), Some(&token), json!({}))
            .await,
        StatusCode::ACCEPTED,
    )
    .await;
    app.run_jobs().await;
    assert_eq!(
        expect_json(
            app.get(&format!("/api/vps/{id}"), Some(&token)).await,
            StatusCode::OK
        )
        .await["state"],
        "running"
    );
    expect_json(
        app.delete(&format!("/api/vps/{id}"), Some(&token)).await,
        StatusCode::ACCEPTED,
    )
    .await;
    app.run_jobs().await;
    assert_eq!(
        driver.power(&machine_name(&id)).await.unwrap(),
        None,
        "container removed"
    );
    assert!(
        driver.snapshot_list(&machine_name(&id)).await.is_err(),
        "and its snapshots with it"
    );
}

async fn vps_ip(app: &TestApp, token: &str, id: &str) -> (String, String, String) {
    let vps = expect_json(
        app.get(&format!("/api/vps/{id}"), Some(token)).await,
        StatusCode::OK,
    )
    .await;
    let server = expect_json(
        app.get(&format!("/v1/servers/{id}"), Some(token)).await,
        StatusCode::OK,
    )
    .await;
    let instance = expect_json(
        app.get(&format!("/v1/instances/{id}"), Some(token)).await,
        StatusCode::OK,
    )
    .await;
    (
        vps["ip"].as_str().unwrap_or_default().to_owned(),
        server["data"]["main_ip"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        instance["status"]["public_ip"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

async fn ip_pool_used(app: &TestApp, admin: &str) -> i64 {
    let pools = expect_json(
        app.get("/api/admin/ip-pools", Some(admin)).await,
        StatusCode::OK,
    )
    .await;
    pools[0]["used"].as_i64().unwrap()
}

#[tokio::test]
async fn public_addresses_come_from_the_regions_ranges_and_go_back() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin("ops").await;
    let (uid, token) = app.funded_user("pia", 20.0).await;

    // Operators only; bad ranges are refused with the reason.
    expect_json(
        app.post("/api/admin/ip-pools", Some(&token), json!({"region": "local", "first": "192.168.122.200", "last": "192.168.122.201", "prefix_len": 24})).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    for (body, needle) in [
        (
            json!({"region": "local", "first": "192.168.122.300", "last": "192.168.122.201", "prefix_len": 24}),
            "not an IPv4 address",
        ),
        (
            json!({"region": "local", "first": "192.168.122.201", "last": "192.168.122.200", "prefix_len": 24}),
            "must not come after",
        ),
        (
            json!({"region": "local", "first": "192.168.122.200", "last": "192.168.122.201", "prefix_len": 40}),
            "prefix_len",
        ),
        (
            json!({"region": "local", "first": "10.0.0.0", "last": "10.1.0.0", "prefix_len": 8}),
            "at most 65536",
        ),
        (
            json!({"region": "local", "first": "127.0.0.1", "last": "127.0.0.9", "prefix_len": 8}),
            "loopback",
        ),
        (
            json!({"region": "local", "first": "192.168.122.200", "last": "192.168.122.201", "prefix_len": 24, "gateway": "192.168.122.201"}),
            "gateway",
        ),
        (
            json!({"region": "", "first": "192.168.122.200", "last": "192.168.122.201", "prefix_len": 24}),
            "region",
        ),
    ] {
        expect_error(
            app.post("/api/admin/ip-pools", Some(&admin), body).await,
            StatusCode::BAD_REQUEST,
            needle,
        )
        .await;
    }
    let pool = expect_json(
        app.post("/api/admin/ip-pools", Some(&admin), json!({"region": "local", "first": "192.168.122.200", "last": "192.168.122.201", "prefix_len": 24, "gateway": "192.168.122.1"})).await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(
        (pool["total"].as_i64(), pool["used"].as_i64()),
        (Some(2), Some(0))
    );
    expect_error(
        app.post("/api/admin/ip-pools", Some(&admin), json!({"region": "other", "first": "192.168.122.201", "last": "192.168.122.210", "prefix_len": 24})).await,
        StatusCode::CONFLICT,
        "already in a range",
    )
    .await;

    // Two VMs take the two addresses; all three APIs show each its own.
    let mut ids = Vec::new();
    for name in ["pub-a", "pub-b"] {
        let vps = expect_json(
            app.post(
                "/api/vps",
                Some(&token),
                json!({"name": name, "plan_id": "nano"}),
            )
            .await,
            StatusCode::CREATED,
        )
        .await;
        ids.push(vps["id"].as_str().unwrap().to_owned());
    }
    app.run_jobs().await;
    let a = vps_ip(&app, &token, &ids[0]).await;
    let b = vps_ip(&app, &token, &ids[1]).await;
    assert_eq!(a.0, a.1);
    assert_eq!(a.1, a.2);
    assert_eq!(b.0, b.2);
    let mut got = [a.0.clone(), b.0.clone()];
    got.sort();
    assert_eq!(got, ["192.168.122.200", "192.168.122.201"]);
    assert_eq!(ip_pool_used(&app, &admin).await, 2);

    // The range is exhausted: the next create is a 409 that changes nothing.
    let node_before = vm_node(&app).await;
    let money_before = app.money(&uid).await;
    expect_error(
        app.post(
            "/api/vps",
            Some(&token),
            json!({"name": "pub-c", "plan_id": "nano"}),
        )
        .await,
        StatusCode::CONFLICT,
        "No public IPv4 address is free in region local",
    )
    .await;
    let listed = expect_json(app.get("/api/vps", Some(&token)).await, StatusCode::OK).await;
    assert_eq!(
        listed.as_array().unwrap().len(),
        2,
        "no instance was left behind"
    );
    assert_eq!(
        vm_node(&app).await.used_vcpu,
        node_before.used_vcpu,
        "capacity untouched"
    );
    assert_eq!(app.money(&uid).await, money_before);
    expect_error(
        app.delete(
            &format!("/api/admin/ip-pools/{}", pool["id"].as_str().unwrap()),
            Some(&admin),
        )
        .await,
        StatusCode::CONFLICT,
        "held by instances",
    )
    .await;

    // Deleting a VM gives its address back; it rests for the cooldown (an hour by default, the
    // node's DHCP lease time), then the next VM gets it.
    expect_json(
        app.delete(&format!("/api/vps/{}", ids[0]), Some(&token))
            .await,
        StatusCode::ACCEPTED,
    )
    .await;
    app.run_jobs().await;
    assert_eq!(ip_pool_used(&app, &admin).await, 1);
    expect_error(
        app.post(
            "/api/vps",
            Some(&token),
            json!({"name": "pub-c", "plan_id": "nano"}),
        )
        .await,
        StatusCode::CONFLICT,
        "1 released recently; each is free again 60 minutes after its release",
    )
    .await;
    sqlx::query("UPDATE ip_addresses SET released_at = released_at - 3600000")
        .execute(&app.state.db)
        .await
        .unwrap();
    let c = expect_json(
        app.post(
            "/api/vps",
            Some(&token),
            json!({"name": "pub-c", "plan_id": "nano"}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let c_id = c["id"].as_str().unwrap().to_owned();
    app.run_jobs().await;
    assert_eq!(
        vps_ip(&app, &token, &c_id).await.2,
        a.0,
        "the freed address is reused"
    );

    // A machine that vanishes fails, and its address is free again at once.
    let inst = instances::get(&app.state.db, &uid, &c_id).await.unwrap();
    let driver = executor::driver_for(&app.state, &inst)
        .await
        .unwrap()
        .unwrap();
    driver.destroy(&machine_name(&c_id)).await.unwrap();
    reconcile::run(&app.state).await.unwrap();
    assert_eq!(ip_pool_used(&app, &admin).await, 1);
    assert_eq!(
        vps_ip(&app, &token, &c_id).await.2,
        "",
        "a failed machine holds no address"
    );

    // The address's history names both holders, newest first, and survives them; `at` picks the
    // holder of a moment (abuse reports).
    let hist = expect_json(
        app.get(&format!("/api/admin/ip-addresses/{}", a.0), Some(&admin))
            .await,
        StatusCode::OK,
    )
    .await;
    let holders: Vec<&str> = hist["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["instance_id"].as_str().unwrap())
        .collect();
    assert_eq!(holders, [c_id.as_str(), ids[0].as_str()], "{}", hist.text);
    assert_eq!(hist["history"][1]["username"], "pia");
    assert_eq!(hist["history"][1]["instance_name"], "pub-a");
    assert!(
        hist["history"][0]["released_at"].is_string(),
        "c failed: released"
    );
    let first_from = hist["history"][1]["assigned_at"]
        .as_str()
        .unwrap()
        .to_owned();
    let then = expect_json(
        app.get(
            &format!("/api/admin/ip-addresses/{}?at={first_from}", a.0),
            Some(&admin),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(then["history"].as_array().unwrap().len(), 1);
    assert_eq!(then["history"][0]["instance_id"], ids[0].as_str());
    expect_error(
        app.get(
            &format!("/api/admin/ip-addresses/{}?at=yesterday", a.0),
            Some(&admin),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "RFC 3339",
    )
    .await;
    expect_error(
        app.get("/api/admin/ip-addresses/10.1.2.3", Some(&admin))
            .await,
        StatusCode::NOT_FOUND,
        "Address",
    )
    .await;
    expect_error(
        app.get("/api/admin/ip-addresses/not-an-ip", Some(&admin))
            .await,
        StatusCode::BAD_REQUEST,
        "not an IPv4 address",
    )
    .await;
    expect_json(
        app.get(&format!("/api/admin/ip-addresses/{}", a.0), Some(&token))
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;

    // Another user never sees the range through their machines; unknown ranges are 404.
    expect_error(
        app.delete("/api/admin/ip-pools/nope", Some(&admin)).await,
        StatusCode::NOT_FOUND,
        "IP pool",
    )
    .await;
}

#[tokio::test]
async fn concurrent_creates_never_share_an_address() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin("ops").await;
    expect_json(
        app.post("/api/admin/ip-pools", Some(&admin), json!({"region": "local", "first": "192.168.122.210", "last": "192.168.122.212", "prefix_len": 24})).await,
        StatusCode::CREATED,
    )
    .await;
    let (_, token) = app.funded_user("crowd", 50.0).await;
    let tasks = (0..8).map(|i| {
        let app = &app;
        let token = token.clone();
        async move {
            let res = app
                .post(
                    "/api/vps",
                    Some(&token),
                    json!({"name": format!("c{i}"), "plan_id": "nano"}),
                )
                .await;
            let status = res.status();
            let body: Value = res.json().await.unwrap();
            (status, body["id"].as_str().map(str::to_owned))
        }
    });
    let results = futures::future::join_all(tasks).await;
    let created: Vec<String> = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .filter_map(|(_, id)| id.clone())
        .collect();
    let refused = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::CONFLICT)
        .count();
    assert_eq!((created.len(), refused), (3, 5), "{results:?}");
    let mut addresses = HashSet::new();
    for id in &created {
        let ip = vps_ip(&app, &token, id).await.2;
        assert!(ip.starts_with("192.168.122.21"), "{ip}");
        assert!(addresses.insert(ip), "every address once");
    }
    assert_eq!(
        vm_node(&app).await.used_vcpu,
        3,
        "the refused creates hold no capacity"
    );
}

#[tokio::test]
async fn a_fractional_overcommit_limit_is_the_same_on_every_database() {
    // 3 vCPUs × 1.2 = 3.6: three 1-vCPU machines fit, a fourth does not (PostgreSQL's CAST
    // would have rounded to 4, SQLite's truncated to 3).
    let app = TestApp::builder()
        .config("cpu_overcommit", "1.2")
        .spawn()
        .await;
    let (_, admin) = app.admin("ops").await;
    let local = vm_node(&app).await;
    expect_json(
        app.patch(
            &format!("/api/admin/nodes/{}", local.id),
            Some(&admin),
            json!({"status": "draining"}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    expect_json(
        app.post("/api/admin/nodes", Some(&admin), json!({"name": "three", "kind": "vm", "region": "eu", "uri": local.uri, "vcpu": 3, "memory_mb": 65536, "disk_gb": 1000})).await,
        StatusCode::CREATED,
    )
    .await;
    let (_, token) = app.funded_user("frac", 50.0).await;
    for i in 0..3 {
        expect_json(
            app.post(
                "/api/vps",
                Some(&token),
                json!({"name": format!("f{i}"), "plan_id": "nano"}),
            )
            .await,
            StatusCode::CREATED,
        )
        .await;
    }
    expect_error(
        app.post(
            "/api/vps",
            Some(&token),
            json!({"name": "f3", "plan_id": "nano"}),
        )
        .await,
        StatusCode::CONFLICT,
        "No capacity left",
    )
    .await;
}
