//! A machine's life through the `/api` dialect: funds and token limits at create, every state and
//! action, bad requests that change nothing, batches, and containers on the real Podman engine.

use super::*;

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
    let key = add_key(&app, &token).await;
    let key_id = key["id"].as_str().unwrap();
    let plan = plan_id(&app, "small").await;

    let vps = create_vps(&app, &token, json!({"name": "web-01", "plan_id": plan, "ssh_key_ids": [key_id], "user_data": "#cloud-config\n"})).await;
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
    let vps = get_vps(&app, &token, &id).await;
    assert_eq!(vps["state"], "running");
    assert_eq!(vps["transition"], Value::Null);

    // The machine really exists on the node, with the plan's size.
    let inst = instances::get(&app.state.db, &uid, &id).await.unwrap();
    let driver = domain::fleet::nodes::driver_for(&app.state, inst.node_id.as_deref())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        driver.power(&machine_name(&id)).await.unwrap(),
        Some(domain::fleet::driver::Power::Running)
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
    let stopped = get_vps(&app, &token, &id).await;
    assert_eq!(stopped["state"], "stopped");
    let row = instances::get(&app.state.db, &uid, &id).await.unwrap();
    let rate: i64 = sqlx::query_scalar("SELECT metered_rate_micros FROM instances WHERE id = $1")
        .bind(&id)
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert!(
        row.metered_until.is_some()
            && rate == row.held_hourly_micros
            && rate < row.price_hourly_micros,
        "at the stop, billing moved from the price to the held rate (disk and address)"
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
    assert_eq!(get_vps(&app, &token, &id).await["state"], "stopped");

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
    assert_eq!(get_vps(&app, &token, &id).await["state"], "running");

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
    let other_key = add_key(&app, &other).await;
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
        // A region that does not exist is a mistake to correct, not a lack of room: it says
        // which regions there are.
        (
            json!({"name": "x", "plan_id": "nano", "region": "mars"}),
            "There is no region mars for VMs; choose one of: local",
        ),
    ];
    for (body, needle) in cases {
        expect_error(
            app.post("/api/vps", Some(&token), body.clone()).await,
            StatusCode::BAD_REQUEST,
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
async fn containers_run_on_the_docker_engine_through_the_api() {
    let Some(docker) = common::docker_host() else {
        return;
    };
    let app = TestApp::builder()
        .config("docker_host", &docker)
        .config("stop_timeout_secs", "5")
        .spawn()
        .await;
    let (uid, token) = app.funded_user("cody", 10.0).await;
    let vps = create_vps(&app, &token, json!({"name": "box-1", "plan_id": "c-micro"})).await;
    assert_eq!(vps["kind"], "container");
    assert_eq!(vps["image"], "busybox");
    let id = vps["id"].as_str().unwrap().to_owned();
    app.run_jobs().await;
    assert_eq!(get_vps(&app, &token, &id).await["state"], "running");
    let inst = instances::get(&app.state.db, &uid, &id).await.unwrap();
    let driver = domain::fleet::nodes::driver_for(&app.state, inst.node_id.as_deref())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(driver.kind(), domain::fleet::driver::Kind::Container);
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
    assert_eq!(get_vps(&app, &token, &id).await["state"], "running");
    // The restored container is back on its account's network, with its limits.
    let engine = bollard::Docker::connect_with_unix(
        docker.trim_start_matches("unix://"),
        30,
        bollard::API_DEFAULT_VERSION,
    )
    .unwrap();
    let account_network = format!("hangar-acct-{uid}");
    let restored = engine
        .inspect_container(&machine_name(&id), None)
        .await
        .unwrap();
    assert_eq!(
        model::engine::networks_of(&restored),
        vec![account_network.clone()]
    );
    assert_eq!(restored.host_config.and_then(|h| h.pids_limit), Some(4096));
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
        engine
            .inspect_network(&account_network, None)
            .await
            .is_err(),
        "the account's network went with its last machine"
    );
    assert!(
        driver.snapshot_list(&machine_name(&id)).await.is_err(),
        "and its snapshots with it"
    );
}

#[tokio::test]
async fn a_machine_deleted_while_it_is_being_created_is_removed_in_every_api() {
    let app = TestApp::spawn().await;
    let (uid, token) = app.funded_user("hasty", 10.0).await;
    // `/api/vps`: delete right after create is accepted, not "try again later".
    let vps = create_vps(&app, &token, json!({"name": "oops", "plan_id": "nano"})).await;
    let id = vps["id"].as_str().unwrap().to_owned();
    expect_json(
        app.delete(&format!("/api/vps/{id}"), Some(&token)).await,
        StatusCode::ACCEPTED,
    )
    .await;
    // `/v1/servers` (a 512 MB plan shows as 1 GB, its exact size in memory_mb) and `/v1/instances` the same way.
    let server = expect_json(
        app.post(
            "/v1/servers",
            Some(&token),
            json!({"region": "local", "plan": "nano", "os": "debian-12", "label": "s"}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(
        (
            server["data"]["ram_gb"].as_i64(),
            server["data"]["memory_mb"].as_i64()
        ),
        (Some(1), Some(512))
    );
    let server_id = server["data"]["id"].as_str().unwrap().to_owned();
    let gone = app
        .delete(&format!("/v1/servers/{server_id}"), Some(&token))
        .await;
    assert_eq!(gone.status(), StatusCode::NO_CONTENT);
    let inst = expect_json(
        app.post(
            "/v1/instances",
            Some(&token),
            json!({"metadata": {"name": "i"}, "spec": {"type": "nano", "image": "debian-12"}}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let inst_id = inst["id"].as_str().unwrap().to_owned();
    expect_json(
        app.delete(&format!("/v1/instances/{inst_id}"), Some(&token))
            .await,
        StatusCode::ACCEPTED,
    )
    .await;

    app.run_jobs().await;
    for id in [&id, &server_id, &inst_id] {
        expect_error(
            get_vps_raw(&app, &token, id).await,
            StatusCode::NOT_FOUND,
            "not found",
        )
        .await;
        let row = instances::load(&app.state.db, id).await.unwrap().unwrap();
        assert_eq!(row.state, instances::InstanceState::Deleted);
    }
    // Nothing is left on the node, and the capacity is free again.
    let node = vm_node(&app).await;
    assert_eq!(
        (node.used_vcpu, node.used_memory_mb, node.used_disk_gb),
        (0, 0, 0)
    );
    let inst = instances::load(&app.state.db, &id).await.unwrap().unwrap();
    let driver = domain::fleet::nodes::driver_for(&app.state, inst.node_id.as_deref())
        .await
        .unwrap()
        .unwrap();
    for id in [&id, &server_id, &inst_id] {
        assert_eq!(driver.power(&machine_name(id)).await.unwrap(), None);
    }
    let (balance, ledger) = app.money(&uid).await;
    assert_eq!(balance, ledger, "nothing was billed twice or lost");
}

async fn get_vps_raw(app: &TestApp, token: &str, id: &str) -> reqwest::Response {
    app.get(&format!("/api/vps/{id}"), Some(token)).await
}

/// Operators scrape `/metrics` (Prometheus text): requests per route template, jobs by kind and
/// outcome with their durations, the meter tick, open consoles, pending jobs. Customers and
/// strangers cannot.
#[tokio::test]
async fn operators_scrape_metrics_and_nobody_else_does() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin("ops").await;
    let (_, token) = app.funded_user("metered", 10.0).await;
    assert_eq!(
        app.get("/metrics", None).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.get("/metrics", Some(&token)).await.status(),
        StatusCode::FORBIDDEN
    );
    let vps = create_vps(&app, &token, json!({"name": "counted", "plan_id": "nano"})).await;
    let id = vps["id"].as_str().unwrap();
    app.run_jobs().await;
    get_vps(&app, &token, id).await;
    hangar_server::jobs::run_meter(&app.state, domain::infra::db::now_ms()).await;

    // A Prometheus credential: an operator's token with the `metrics` scope scrapes, and can do
    // nothing else an operator can; their ordinary tokens and customers' cannot scrape.
    let token_with = |who: &str, scopes: serde_json::Value| {
        let app = &app;
        let who = who.to_owned();
        async move {
            expect_json(
                app.post(
                    "/api/tokens",
                    Some(&who),
                    json!({"name": "prom", "scopes": scopes}),
                )
                .await,
                StatusCode::CREATED,
            )
            .await["token"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let scrape = token_with(&admin, json!(["metrics"])).await;
    assert_eq!(
        app.get("/metrics", Some(&scrape)).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.get("/api/admin/users", Some(&scrape)).await.status(),
        StatusCode::FORBIDDEN
    );
    let everyday = token_with(&admin, json!(["machines"])).await;
    expect_error(
        app.get("/metrics", Some(&everyday)).await,
        StatusCode::FORBIDDEN,
        "`metrics` scope",
    )
    .await;
    let customers = token_with(&token, json!(["metrics"])).await;
    expect_error(
        app.get("/metrics", Some(&customers)).await,
        StatusCode::FORBIDDEN,
        "Operator",
    )
    .await;

    let res = app.get("/metrics", Some(&admin)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = res.text().await.unwrap();
    for line in [
        "hangar_http_requests_total{method=\"POST\",route=\"/api/vps\",status=\"2xx\"} 1",
        // The route's template, not the machine's id.
        "hangar_http_requests_total{method=\"GET\",route=\"/api/vps/{id}\",status=\"2xx\"} 1",
        "hangar_http_request_duration_seconds_count{surface=\"api\"}",
        "hangar_node_up{node=\"local-vm\",kind=\"vm\"} 1",
        "hangar_node_vcpu_used{node=\"local-vm\",kind=\"vm\"} 1",
        "hangar_machines{state=\"running\"} 1",
        "# TYPE hangar_node_up gauge",
        "hangar_jobs_total{kind=\"create\",outcome=\"done\"} 1",
        "hangar_job_duration_seconds_count{kind=\"create\"} 1",
        "hangar_meter_tick_duration_seconds_count 1",
        "hangar_consoles_open 0",
        "hangar_jobs_pending 0",
        "# TYPE hangar_http_request_duration_seconds histogram",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    assert!(!text.contains(id), "no ids in labels");
}

/// A failed job says why to the person: a snapshot whose machine vanished from its engine ends
/// `failed` with the reason on the snapshot (API and page), not a bare `failed`.
#[tokio::test]
async fn a_snapshot_that_fails_says_why() {
    let Some(docker) = common::docker_host() else {
        return;
    };
    let app = TestApp::builder()
        .config("docker_host", &docker)
        .config("stop_timeout_secs", "5")
        .spawn()
        .await;
    let (uid, token) = app.funded_user("snapper", 10.0).await;
    let vps = create_vps(
        &app,
        &token,
        json!({"name": "snap-1", "plan_id": "c-micro"}),
    )
    .await;
    let id = vps["id"].as_str().unwrap().to_owned();
    app.run_jobs().await;
    let inst = instances::get(&app.state.db, &uid, &id).await.unwrap();
    let driver = domain::fleet::nodes::driver_for(&app.state, inst.node_id.as_deref())
        .await
        .unwrap()
        .unwrap();
    // Behind Hangar's back, the container goes.
    driver.destroy(&machine_name(&id)).await.unwrap();
    expect_json(
        app.post(
            &format!("/api/vps/{id}/snapshots"),
            Some(&token),
            json!({"name": "before-upgrade"}),
        )
        .await,
        StatusCode::ACCEPTED,
    )
    .await;
    app.run_jobs().await;
    let list = expect_json(
        app.get(&format!("/api/vps/{id}/snapshots"), Some(&token))
            .await,
        StatusCode::OK,
    )
    .await;
    let snap = &list.as_array().unwrap()[0];
    assert_eq!(snap["state"], "failed", "{snap}");
    let reason = snap["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("The snapshot could not be made:") && reason.len() > 35,
        "{snap}"
    );

    // The operators trace it in one look: the failed job with its machine, owner, node, how
    // long it took and why.
    let (_, op) = app.admin("tracer").await;
    let failed = expect_json(
        app.get("/api/admin/tasks?state=failed&q=snap-1", Some(&op))
            .await,
        StatusCode::OK,
    )
    .await;
    let task = &failed.as_array().unwrap()[0];
    assert_eq!(task["kind"], "snapshot.create", "{task}");
    assert_eq!(task["machine"], "snap-1");
    assert_eq!(task["owner"], "snapper");
    assert!(task["node"].is_string(), "{task}");
    assert!(
        task["duration_ms"].as_i64().is_some_and(|d| d >= 0),
        "{task}"
    );
    assert!(
        task["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{task}"
    );
    let done = expect_json(
        app.get("/api/admin/tasks?state=done&q=snap-1", Some(&op))
            .await,
        StatusCode::OK,
    )
    .await;
    assert!(done
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["kind"] == "create"));
    expect_error(
        app.get("/api/admin/tasks?state=late", Some(&op)).await,
        StatusCode::BAD_REQUEST,
        "state is one of",
    )
    .await;
    expect_error(
        app.get("/api/admin/tasks", Some(&token)).await,
        StatusCode::FORBIDDEN,
        "perator",
    )
    .await;
}

/// A minute's record of every running machine, VMs (libvirt's domain statistics) and containers
/// (the Docker engine) alike; read back per hour, day and month; kept a day per minute.
#[tokio::test]
async fn resource_history_is_recorded_each_minute_for_vms_and_containers() {
    use domain::compute::history;
    let docker = common::docker_host();
    let mut builder = TestApp::builder();
    if let Some(docker) = &docker {
        builder = builder.config("docker_host", docker);
    }
    let app = builder.spawn().await;
    let (_, token) = app.funded_user("hist", 10.0).await;
    let vm = create_vps(&app, &token, json!({"name": "vm-1", "plan_id": "small"})).await;
    let vm = vm["id"].as_str().unwrap().to_owned();
    let container = match docker {
        Some(_) => {
            let c = create_vps(&app, &token, json!({"name": "box-1", "plan_id": "c-micro"})).await;
            Some(c["id"].as_str().unwrap().to_owned())
        }
        None => None,
    };
    app.run_jobs().await;

    // Two minutes in the last hour, then each machine has two points a minute apart.
    let now = domain::infra::db::now_ms();
    let t0 = now - now % 60_000 - 5 * 60_000;
    let expected = 1 + usize::from(container.is_some());
    assert_eq!(history::record(&app.state, t0).await.unwrap(), expected);
    assert_eq!(
        history::record(&app.state, t0 + 60_000).await.unwrap(),
        expected
    );
    // A minute already recorded is not sampled again (several replicas record at once).
    assert_eq!(history::record(&app.state, t0 + 60_000).await.unwrap(), 0);

    let read = |id: String, range: &'static str| {
        let app = &app;
        let token = token.clone();
        async move {
            expect_json(
                app.get(
                    &format!("/api/vps/{id}/history?range={range}"),
                    Some(&token),
                )
                .await,
                StatusCode::OK,
            )
            .await
        }
    };
    let vm_hour = read(vm.clone(), "1h").await;
    assert_eq!(vm_hour["step_seconds"], 60);
    let points = vm_hour["points"].as_array().unwrap();
    assert_eq!(points.len(), 2, "{}", vm_hour.text);
    assert_eq!(
        points[0]["memory_limit"].as_u64(),
        Some(2048 * 1024 * 1024),
        "a VM's memory bound is its plan's"
    );
    assert!(points[1]["cpu"].as_f64().unwrap() >= 0.0);
    let month = read(vm.clone(), "30d").await;
    assert_eq!(month["step_seconds"], 3600);
    let hours = month["points"].as_array().unwrap();
    assert!(!hours.is_empty() && hours.len() <= 2, "{}", month.text);
    let summed = |list: &[serde_json::Value], key: &str| {
        list.iter().map(|p| p[key].as_u64().unwrap()).sum::<u64>()
    };
    assert_eq!(
        summed(hours, "net_rx"),
        summed(points, "net_rx"),
        "an hour holds its minutes' bytes"
    );
    if let Some(container) = container {
        let c = read(container, "24h").await;
        let points = c["points"].as_array().unwrap();
        assert_eq!(points.len(), 2, "{}", c.text);
        assert!(
            points[1]["memory"].as_u64().unwrap() > 0,
            "a running container uses memory: {}",
            c.text
        );
    }

    // A bad range is a 400; someone else's machine a 404.
    expect_error(
        app.get(&format!("/api/vps/{vm}/history?range=7d"), Some(&token))
            .await,
        StatusCode::BAD_REQUEST,
        "1h, 24h and 30d",
    )
    .await;
    let (_, stranger) = app.funded_user("peek", 1.0).await;
    expect_error(
        app.get(&format!("/api/vps/{vm}/history"), Some(&stranger))
            .await,
        StatusCode::NOT_FOUND,
        "not found",
    )
    .await;

    // A day later the minutes are gone; the hours stay.
    history::record(&app.state, t0 + 26 * 3_600_000)
        .await
        .unwrap();
    let old: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM machine_minutes WHERE at < $1")
        .bind(t0 + 3_600_000)
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(old, 0);
    let kept: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM machine_hours WHERE at <= $1")
        .bind(t0)
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert!(kept >= 1);
}
