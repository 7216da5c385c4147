//! Public IPv4 addresses: taken from the region's ranges at create, shown in every API, given
//! back on delete or failure, never shared by concurrent creates.

use super::*;

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
        let vps = create_vps(&app, &token, json!({"name": name, "plan_id": "nano"})).await;
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
    let c = create_vps(&app, &token, json!({"name": "pub-c", "plan_id": "nano"})).await;
    let c_id = c["id"].as_str().unwrap().to_owned();
    app.run_jobs().await;
    assert_eq!(
        vps_ip(&app, &token, &c_id).await.2,
        a.0,
        "the freed address is reused"
    );

    // A machine that vanishes fails, and its address is free again at once.
    let inst = instances::get(&app.state.db, &uid, &c_id).await.unwrap();
    let driver = domain::fleet::nodes::driver_for(&app.state, inst.node_id.as_deref())
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
