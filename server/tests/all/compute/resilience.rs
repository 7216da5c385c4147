//! What keeps the database and the nodes honest: concurrent creates against capacity, a job cut
//! off by a restart, the reconciler, and the over-commit rule on every database.

use super::*;

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
        "has room for",
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
    let vps = create_vps(&app, &token, json!({"name": "crashy", "plan_id": "nano"})).await;
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
    let a = create_vps(&app, &token, json!({"name": "a", "plan_id": "nano"})).await;
    let b = create_vps(&app, &token, json!({"name": "b", "plan_id": "nano"})).await;
    let c = create_vps(&app, &token, json!({"name": "c", "plan_id": "nano"})).await;
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
    let driver = domain::fleet::nodes::driver_for(&app.state, inst.node_id.as_deref())
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

    let va = get_vps(&app, &token, &a).await;
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
    assert_eq!(get_vps(&app, &token, &b).await["state"], "stopped");
    assert_eq!(
        vm_node(&app).await.used_vcpu,
        1,
        "the failed one's capacity is back, and the stopped one's vCPU"
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
    assert_eq!(vm_node(&app).await.used_vcpu, 1, "released once, not twice");
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
        create_vps(
            &app,
            &token,
            json!({"name": format!("f{i}"), "plan_id": "nano"}),
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
        "has room for 1 vCPU",
    )
    .await;
}
