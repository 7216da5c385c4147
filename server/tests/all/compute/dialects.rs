//! One machine seen through all three APIs (`/api`, `/v1/servers`, `/v1/instances`), and `/v1/instances`' labels and operations.

use super::*;

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
    assert_eq!(
        s["ram_gb"],
        json!(2),
        "an integer, as the `/v1/servers` dialect shows it"
    );
    assert!(s["ram_gb"].is_i64());
    assert_eq!(s["memory_mb"], 2048);
    assert_eq!(s["disk_gb"], 25);
    assert_eq!(s["price_per_hour"], "0.012");
    assert_eq!(s["backups"], true);
    assert_eq!(s["main_ip"], Value::Null);
    let id = s["id"].as_str().unwrap().to_owned();

    let vps = get_vps(&app, &token, &id).await;
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
        "user data shown base64 in /v1/instances"
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
    assert_eq!(get_vps(&app, &token, &id).await["state"], "running");

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
