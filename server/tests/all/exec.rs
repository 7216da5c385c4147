//! Inside the machine through the `/api` dialect: commands (sync and background, timeout, cancel,
//! output caps, the destructive-command guard, audit), files, batch exec, isolation, and the
//! sweep that ends commands a dead replica left behind. Containers on the real Podman engine
//! (checked inside the machine afterwards) run the shared story (`common::inside`, which the QEMU
//! tier runs in a real VM) and the container's own details; VMs on libvirt's test driver answer
//! the documented refusal.

use crate::common;

use std::time::Duration;

use common::inside::{exec, processes, run_ok, wait_job};
use common::{docker_host, expect_error, expect_json, Body, TestApp};
use domain::compute::{exec, instances};
use domain::fleet::driver::{machine_name, ExecRequest};
use domain::infra::db;
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn container_app(extra: &[(&str, &str)]) -> Option<TestApp> {
    let docker = docker_host()?;
    let mut builder = TestApp::builder()
        .config("docker_host", &docker)
        .config("stop_timeout_secs", "5");
    for (k, v) in extra {
        builder = builder.config(k, v);
    }
    Some(builder.spawn().await)
}

/// A running container machine of the user's; returns its id.
async fn running_container(app: &TestApp, token: &str, name: &str) -> String {
    let vps = expect_json(
        app.post(
            "/api/vps",
            Some(token),
            json!({"name": name, "plan_id": "c-micro"}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let id = vps["id"].as_str().unwrap().to_owned();
    app.run_jobs().await;
    let vps = expect_json(
        app.get(&format!("/api/vps/{id}"), Some(token)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(vps["state"], "running");
    id
}

async fn audit_count(app: &TestApp, action: &str, target: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = $1 AND target_id = $2")
        .bind(action)
        .bind(target)
        .fetch_one(&app.state.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_inside_story_runs_in_a_container() {
    let Some(app) = container_app(&[("file_max_bytes", common::inside::FILE_MAX_BYTES)]).await
    else {
        return;
    };
    let (_, token) = app.funded_user("sty", 10.0).await;
    let id = running_container(&app, &token, "story").await;
    common::inside::story(&app, &token, &id).await;
}

#[tokio::test]
async fn commands_run_inside_a_container_with_their_output_exit_code_and_limits() {
    let Some(app) = container_app(&[]).await else {
        return;
    };
    let (_, token) = app.funded_user("exa", 10.0).await;
    let id = running_container(&app, &token, "box").await;

    let r = run_ok(&app, &token, &id, "echo hello; echo oops >&2; exit 3").await;
    assert_eq!(
        (r["stdout"].as_str(), r["stderr"].as_str()),
        (Some("hello\n"), Some("oops\n"))
    );
    assert_eq!(r["exit_code"], 3);
    assert!(r["duration_ms"].as_i64().unwrap() >= 0);
    assert_eq!(
        (r["truncated"].as_bool(), r["timed_out"].as_bool()),
        (Some(false), Some(false))
    );
    let df = run_ok(&app, &token, &id, "df -h /").await;
    assert_eq!(df["exit_code"], 0);
    assert!(
        df["stdout"].as_str().unwrap().contains("Filesystem"),
        "{df:?}"
    );
    let whoami = run_ok(&app, &token, &id, "id -u").await;
    assert_eq!(whoami["stdout"], "0\n", "commands run as root");

    // Output beyond 1 MiB per stream is cut, and says so.
    let big = run_ok(&app, &token, &id, "yes | head -c 3000000").await;
    assert_eq!(big["truncated"], true);
    assert_eq!(big["stdout"].as_str().unwrap().len(), exec::MAX_OUTPUT);
    assert_eq!(big["exit_code"], 0);

    // Past its timeout a command is killed, and really gone from the machine.
    let slow = run_ok_body(
        &app,
        &token,
        &id,
        json!({"command": "echo started; sleep 61", "timeout_seconds": 2}),
    )
    .await;
    assert_eq!(slow["timed_out"], true);
    assert_eq!(slow["exit_code"], Value::Null);
    assert_eq!(
        slow["stdout"], "started\n",
        "what it printed before the timeout is kept"
    );
    assert!(!processes(&app, &token, &id).await.contains("sleep 61"));

    // The guard refuses destructive commands before they reach the machine, and says what.
    let refused = expect_error(
        exec(
            &app,
            &token,
            &id,
            json!({"command": "cd /tmp && sudo rm -fr /"}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "Refused `rm -fr /`",
    )
    .await;
    assert!(refused["error"].as_str().unwrap().contains("destructive"));
    assert_eq!(audit_count(&app, "exec.refused", &id).await, 1);
    assert_eq!(
        run_ok(&app, &token, &id, "ls /bin/sh").await["exit_code"],
        0,
        "nothing was deleted"
    );
    expect_error(
        exec(&app, &token, &id, json!({"command": "halt"})).await,
        StatusCode::BAD_REQUEST,
        "Refused `halt`",
    )
    .await;
    // Harmless text that mentions those words runs.
    let echo = run_ok(&app, &token, &id, "echo 'rm -rf /'").await;
    assert_eq!(echo["stdout"], "rm -rf /\n");

    // Bad requests change nothing.
    expect_error(
        exec(&app, &token, &id, json!({"command": "  "})).await,
        StatusCode::BAD_REQUEST,
        "command",
    )
    .await;
    expect_error(
        exec(
            &app,
            &token,
            &id,
            json!({"command": "true", "timeout_seconds": 100000}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "timeout_seconds",
    )
    .await;
    expect_json(
        exec(&app, &token, &id, json!({"cmd": "true"})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    // Every call that ran is in the audit log with its command and exit code.
    assert!(audit_count(&app, "exec.run", &id).await >= 7);
    let details: String = sqlx::query_scalar(
        "SELECT details FROM audit_log WHERE action = 'exec.run' AND target_id = $1 AND details LIKE '%exit 3%'",
    )
    .bind(&id)
    .fetch_one(&app.state.db)
    .await
    .unwrap();
    assert!(details.contains("\"exit_code\":3"), "{details}");

    // A stopped machine takes no commands.
    expect_json(
        app.post(&format!("/api/vps/{id}/stop"), Some(&token), json!({}))
            .await,
        StatusCode::ACCEPTED,
    )
    .await;
    app.run_jobs().await;
    expect_error(
        exec(&app, &token, &id, json!({"command": "true"})).await,
        StatusCode::CONFLICT,
        "running",
    )
    .await;
}

async fn run_ok_body(app: &TestApp, token: &str, id: &str, body: Value) -> Body {
    expect_json(exec(app, token, id, body).await, StatusCode::OK).await
}

#[tokio::test]
async fn background_jobs_are_polled_listed_and_cancelled_for_real() {
    let Some(app) = container_app(&[]).await else {
        return;
    };
    let (_, token) = app.funded_user("bgj", 10.0).await;
    let id = running_container(&app, &token, "worker").await;

    let started = expect_json(
        exec(
            &app,
            &token,
            &id,
            json!({"command": "sleep 1; echo finished", "background": true, "timeout_seconds": 20}),
        )
        .await,
        StatusCode::ACCEPTED,
    )
    .await;
    assert_eq!(started["status"], "pending");
    assert_eq!(started["timeout_seconds"], 20);
    let job = started["job_id"].as_str().unwrap().to_owned();
    let done = wait_job(&app, &token, &id, &job, &["done"]).await;
    assert_eq!(
        (done["stdout"].as_str(), done["exit_code"].as_i64()),
        (Some("finished\n"), Some(0))
    );
    assert!(done["finished_at"].is_string());

    // A long one, cancelled while it runs: its process is gone from the machine.
    let long = expect_json(
        exec(
            &app,
            &token,
            &id,
            json!({"command": "sleep 62", "background": true, "timeout_seconds": 120}),
        )
        .await,
        StatusCode::ACCEPTED,
    )
    .await;
    let long = long["job_id"].as_str().unwrap().to_owned();
    wait_job(&app, &token, &id, &long, &["running"]).await;
    for _ in 0..50 {
        if processes(&app, &token, &id).await.contains("sleep 62") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let cancelled = expect_json(
        app.delete(&format!("/api/vps/{id}/jobs/{long}"), Some(&token))
            .await,
        StatusCode::OK,
    )
    .await;
    assert!(["running", "cancelled"].contains(&cancelled["status"].as_str().unwrap()));
    let ended = wait_job(
        &app,
        &token,
        &id,
        &long,
        &["cancelled", "done", "timeout", "failed"],
    )
    .await;
    assert_eq!(ended["status"], "cancelled");
    assert!(
        !processes(&app, &token, &id).await.contains("sleep 62"),
        "the process really stopped"
    );
    expect_error(
        app.delete(&format!("/api/vps/{id}/jobs/{long}"), Some(&token))
            .await,
        StatusCode::CONFLICT,
        "already ended",
    )
    .await;

    // A job that outlives its timeout ends as `timeout`.
    let short = expect_json(
        exec(
            &app,
            &token,
            &id,
            json!({"command": "sleep 63", "background": true, "timeout_seconds": 1}),
        )
        .await,
        StatusCode::ACCEPTED,
    )
    .await;
    let short = short["job_id"].as_str().unwrap().to_owned();
    let timed = wait_job(&app, &token, &id, &short, &["timeout", "done", "cancelled"]).await;
    assert_eq!(timed["status"], "timeout");

    let listed = expect_json(
        app.get(&format!("/api/vps/{id}/jobs"), Some(&token)).await,
        StatusCode::OK,
    )
    .await;
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["job_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![short.as_str(), long.as_str(), job.as_str()],
        "newest first"
    );
}

#[tokio::test]
async fn files_keep_to_their_limits_and_text_and_machine_files_read_back() {
    let Some(app) = container_app(&[("file_max_bytes", "300000")]).await else {
        return;
    };
    let (_, token) = app.funded_user("fil", 10.0).await;
    let id = running_container(&app, &token, "files").await;
    let url = |path: &str| app.url(&format!("/api/vps/{id}/files?path={path}"));
    let client = reqwest::Client::new();

    // (Binary files up and down, missing files, directories, a machine's file over the limit:
    // the shared story.)
    let text = client
        .put(url("/root/hello.txt"))
        .bearer_auth(&token)
        .body("hi there\n")
        .send()
        .await
        .unwrap();
    assert_eq!(text.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        run_ok(&app, &token, &id, "cat /root/hello.txt").await["stdout"],
        "hi there\n"
    );
    let hostname = client
        .get(url("/etc/hostname"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        hostname.text().await.unwrap().trim(),
        "files",
        "files the machine has can be read"
    );

    let big = client
        .put(url("/root/big.bin"))
        .bearer_auth(&token)
        .body(vec![7u8; 300_001])
        .send()
        .await
        .unwrap();
    assert_eq!(big.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        run_ok(&app, &token, &id, "ls /root/big.bin").await["exit_code"],
        1,
        "nothing was written"
    );
    let relative = client
        .put(url("root/x"))
        .bearer_auth(&token)
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(relative.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn another_users_machine_and_jobs_are_404_everywhere_and_batches_answer_per_machine() {
    let Some(app) = container_app(&[]).await else {
        return;
    };
    let (_, owner) = app.funded_user("own", 10.0).await;
    let (_, other) = app.funded_user("oth", 10.0).await;
    let a = running_container(&app, &owner, "a").await;
    let b = running_container(&app, &owner, "b").await;
    let theirs = running_container(&app, &other, "theirs").await;
    let job = expect_json(
        exec(
            &app,
            &owner,
            &a,
            json!({"command": "echo mine", "background": true}),
        )
        .await,
        StatusCode::ACCEPTED,
    )
    .await;
    let job = job["job_id"].as_str().unwrap().to_owned();
    wait_job(&app, &owner, &a, &job, &["done"]).await;

    expect_error(
        exec(&app, &other, &a, json!({"command": "true"})).await,
        StatusCode::NOT_FOUND,
        "not found",
    )
    .await;
    // Even a refused command on someone else's machine is a 404, not a hint that it exists.
    expect_error(
        exec(&app, &other, &a, json!({"command": "reboot"})).await,
        StatusCode::NOT_FOUND,
        "not found",
    )
    .await;
    expect_error(
        app.get(&format!("/api/vps/{a}/jobs"), Some(&other)).await,
        StatusCode::NOT_FOUND,
        "not found",
    )
    .await;
    expect_error(
        app.get(&format!("/api/vps/{a}/jobs/{job}"), Some(&other))
            .await,
        StatusCode::NOT_FOUND,
        "not found",
    )
    .await;
    expect_error(
        app.delete(&format!("/api/vps/{a}/jobs/{job}"), Some(&other))
            .await,
        StatusCode::NOT_FOUND,
        "not found",
    )
    .await;
    expect_error(
        app.get(&format!("/api/vps/{theirs}/jobs/{job}"), Some(&other))
            .await,
        StatusCode::NOT_FOUND,
        "not found",
    )
    .await;
    let file = reqwest::Client::new()
        .get(app.url(&format!("/api/vps/{a}/files?path=/etc/hostname")))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(file.status(), StatusCode::NOT_FOUND);

    let batch = app
        .post(
            "/api/vps/batch/exec",
            Some(&owner),
            json!({"ids": [b, theirs, "000000000000000000000000", a], "command": "echo $HOSTNAME-ok"}),
        )
        .await;
    let batch = expect_json(batch, StatusCode::MULTI_STATUS).await;
    let results = batch["results"].as_array().unwrap();
    let got: Vec<(&str, i64)> = results
        .iter()
        .map(|r| (r["vps_id"].as_str().unwrap(), r["status"].as_i64().unwrap()))
        .collect();
    assert_eq!(
        got,
        vec![
            (b.as_str(), 200),
            (theirs.as_str(), 404),
            ("000000000000000000000000", 404),
            (a.as_str(), 200)
        ]
    );
    assert_eq!(results[0]["exit_code"], 0);
    assert!(results[0]["stdout"].as_str().unwrap().ends_with("-ok\n"));
    assert!(
        results[1]["stdout"].is_null()
            && results[1]["error"].as_str().unwrap().contains("not found")
    );

    let same = expect_json(
        app.post(
            "/api/vps/batch/exec",
            Some(&owner),
            json!({"ids": [a, b], "command": "true", "background": true}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    for r in same["results"].as_array().unwrap() {
        assert_eq!(r["status"], 202);
        assert_eq!(r["job_status"], "pending");
        let job = r["job_id"].as_str().unwrap();
        let vps = r["vps_id"].as_str().unwrap();
        wait_job(&app, &owner, vps, job, &["done"]).await;
    }
    expect_error(
        app.post(
            "/api/vps/batch/exec",
            Some(&owner),
            json!({"ids": [a], "command": "mkfs.ext4 /dev/vda"}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "Refused",
    )
    .await;
}

#[tokio::test]
async fn vms_answer_a_clear_refusal() {
    let app = TestApp::spawn().await;
    let (_, token) = app.funded_user("vmx", 10.0).await;
    let vps = expect_json(
        app.post(
            "/api/vps",
            Some(&token),
            json!({"name": "vm", "plan_id": "nano"}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let id = vps["id"].as_str().unwrap().to_owned();
    app.run_jobs().await;
    expect_error(
        exec(&app, &token, &id, json!({"command": "uptime"})).await,
        StatusCode::CONFLICT,
        "simulated machine",
    )
    .await;
    let file = reqwest::Client::new()
        .get(app.url(&format!("/api/vps/{id}/files?path=/etc/hostname")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(file.status(), StatusCode::CONFLICT);

    // In the background the same command is accepted (the machine is running) and then cannot
    // run: nobody cancelled it, so it ends `failed`, and says why.
    let accepted = expect_json(
        exec(
            &app,
            &token,
            &id,
            json!({"command": "uptime", "background": true}),
        )
        .await,
        StatusCode::ACCEPTED,
    )
    .await;
    let job = accepted["job_id"].as_str().unwrap();
    let ended = wait_job(
        &app,
        &token,
        &id,
        job,
        &["done", "timeout", "cancelled", "failed"],
    )
    .await;
    assert_eq!(ended["status"], "failed", "{}", ended.text);
    assert!(
        ended["reason"]
            .as_str()
            .unwrap()
            .contains("simulated machine"),
        "{}",
        ended.text
    );
}

#[tokio::test]
async fn commands_a_dead_replica_left_running_are_killed_and_ended_with_a_reason() {
    let Some(app) = container_app(&[]).await else {
        return;
    };
    let (uid, token) = app.funded_user("rst", 10.0).await;
    let id = running_container(&app, &token, "survivor").await;
    // What a replica that died mid-command leaves: a `running` row whose lease ran out, and the
    // command still running on the machine, tagged with the job's id.
    let job = db::new_id();
    let now = db::now_ms();
    sqlx::query(
        "INSERT INTO exec_jobs (id, instance_id, user_id, command, timeout_seconds, status, created_at, started_at, lease_until)
         VALUES ($1, $2, $3, 'sleep 64', 600, 'running', $4, $4, $5)",
    )
    .bind(&job)
    .bind(&id)
    .bind(&uid)
    .bind(now - 60_000)
    .bind(now - 1_000)
    .execute(&app.state.db)
    .await
    .unwrap();
    let inst = instances::get(&app.state.db, &uid, &id).await.unwrap();
    let driver = domain::fleet::nodes::driver_for(&app.state, inst.node_id.as_deref())
        .await
        .unwrap()
        .unwrap();
    let left = tokio::spawn({
        let driver = driver.clone();
        let req = ExecRequest {
            command: "sleep 64".into(),
            timeout: Duration::from_secs(120),
            max_output: 1024,
            tag: job.clone(),
        };
        let name = machine_name(&id);
        async move { driver.exec(&name, &req).await }
    });
    for _ in 0..50 {
        if processes(&app, &token, &id).await.contains("sleep 64") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(processes(&app, &token, &id).await.contains("sleep 64"));
    // A pending job nobody started (its replica died before it could).
    let waiting = db::new_id();
    sqlx::query(
        "INSERT INTO exec_jobs (id, instance_id, user_id, command, timeout_seconds, status, created_at)
         VALUES ($1, $2, $3, 'echo recovered', 30, 'pending', $4)",
    )
    .bind(&waiting)
    .bind(&id)
    .bind(&uid)
    .bind(now - 60_000)
    .execute(&app.state.db)
    .await
    .unwrap();

    // The next server's sweep.
    hangar_server::jobs::run_sweeps(&app.state, db::now_ms()).await;
    let ended = expect_json(
        app.get(&format!("/api/vps/{id}/jobs/{job}"), Some(&token))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(ended["status"], "failed", "nobody cancelled it");
    assert!(
        ended["reason"].as_str().unwrap().contains("restarted"),
        "{ended:?}"
    );
    assert!(
        !processes(&app, &token, &id).await.contains("sleep 64"),
        "its process was killed"
    );
    let _ = left.await;
    let recovered = wait_job(&app, &token, &id, &waiting, &["done"]).await;
    assert_eq!(
        recovered["stdout"], "recovered\n",
        "a job nobody had started is run to its end"
    );
}

/// What `command` run in machine `from` got back from `http://ip:8080/` (its first line), or
/// what the try printed when nothing answered.
async fn fetch_from(app: &TestApp, token: &str, from: &str, ip: &str) -> String {
    let r = run_ok(
        app,
        token,
        from,
        &format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {ip} 8080 2>&1 | head -n 1"),
    )
    .await;
    r["stdout"].as_str().unwrap_or_default().trim().to_owned()
}

/// Containers apart: each account's machines share a network of their own, so a machine reaches
/// its owner's other machines and never another account's (before, every tenant's containers sat
/// on the engine's one bridge and reached each other); a fork bomb stops at the process limit;
/// no process gains privileges (`no-new-privileges`). Checked from inside, on the real engine.
#[tokio::test]
async fn containers_of_different_accounts_cannot_reach_each_other_and_are_bounded() {
    let Some(app) = container_app(&[("container_pids_limit", "64")]).await else {
        return;
    };
    let (_, alice) = app.funded_user("iso-alice", 10.0).await;
    let (_, bob) = app.funded_user("iso-bob", 10.0).await;
    let web = running_container(&app, &alice, "web").await;
    let worker = running_container(&app, &alice, "worker").await;
    let intruder = running_container(&app, &bob, "intruder").await;
    // A web server in alice's first machine (busybox httpd, backgrounded by itself).
    run_ok(
        &app,
        &alice,
        &web,
        "mkdir -p /www && echo hi > /www/index.html && httpd -p 8080 -h /www",
    )
    .await;
    let ip = expect_json(
        app.get(&format!("/api/vps/{web}"), Some(&alice)).await,
        StatusCode::OK,
    )
    .await["ip"]
        .as_str()
        .expect("a running container has an address")
        .to_owned();

    let same = fetch_from(&app, &alice, &worker, &ip).await;
    assert!(
        same.starts_with("HTTP/1."),
        "the owner's other machine reaches it: {same:?}"
    );
    let other = fetch_from(&app, &bob, &intruder, &ip).await;
    assert!(
        !other.starts_with("HTTP/"),
        "another account's machine must not reach it: {other:?}"
    );

    let privs = run_ok(&app, &alice, &web, "grep NoNewPrivs /proc/self/status").await;
    assert_eq!(
        privs["stdout"]
            .as_str()
            .map(str::split_whitespace)
            .map(Iterator::collect::<Vec<_>>),
        Some(vec!["NoNewPrivs:", "1"])
    );

    // A hundred sleepers where 64 processes are allowed: the rest cannot fork. (Short ones: a
    // machine at its limit cannot start the next command either.)
    let bomb = run_ok(
        &app,
        &alice,
        &worker,
        "for i in $(seq 100); do sleep 3 & done",
    )
    .await;
    assert!(
        bomb["stderr"].as_str().unwrap().contains("can't fork"),
        "forks beyond the limit fail: {bomb:?}"
    );
    tokio::time::sleep(Duration::from_secs(4)).await;
    let limit = run_ok(
        &app,
        &alice,
        &worker,
        "cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max",
    )
    .await;
    assert_eq!(
        limit["stdout"], "64\n",
        "the machine's cgroup holds the limit"
    );
}

/// The plan's disk holds for containers: the engines here cannot bound a container's writable
/// layer, so each reconciler pass measures it, records it on the machine, and stops a container
/// that wrote more than its plan's disk, saying why; its owner may start it again to delete
/// files, and it is left running once under the limit. Before, a 1 GB plan could fill the host.
#[tokio::test]
async fn a_container_that_writes_past_its_disk_is_stopped_and_may_clean_up() {
    let Some(app) = container_app(&[]).await else {
        return;
    };
    let (_, token) = app.funded_user("filler", 10.0).await;
    let id = running_container(&app, &token, "filler").await; // c-micro: 1 GB of disk
    let fill = run_ok(&app, &token, &id, "head -c 1153433600 /dev/zero > /fill").await;
    assert_eq!(fill["exit_code"], 0, "{fill:?}");
    let report = domain::compute::reconcile::run(&app.state).await.unwrap();
    assert_eq!(report.over_disk, vec![id.clone()]);
    app.run_jobs().await;
    let vps = expect_json(
        app.get(&format!("/api/vps/{id}"), Some(&token)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(vps["state"], "stopped", "{vps:?}");
    assert!(
        vps["reason"]
            .as_str()
            .unwrap()
            .contains("more than its plan's 1 GB"),
        "{vps:?}"
    );
    assert!(
        vps["disk_used_bytes"].as_i64().unwrap() > 1 << 30,
        "{vps:?}"
    );

    // Started again, it cleans up and stays up.
    expect_json(
        app.post(&format!("/api/vps/{id}/start"), Some(&token), json!({}))
            .await,
        StatusCode::ACCEPTED,
    )
    .await;
    app.run_jobs().await;
    run_ok(&app, &token, &id, "rm /fill").await;
    let report = domain::compute::reconcile::run(&app.state).await.unwrap();
    assert!(report.over_disk.is_empty(), "{report:?}");
    let vps = expect_json(
        app.get(&format!("/api/vps/{id}"), Some(&token)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(vps["state"], "running");
    assert!(
        vps["disk_used_bytes"].as_i64().unwrap() < 1 << 20,
        "{vps:?}"
    );
}

/// Files through Hangar are bounded: with `file_transfers_per_account` = 1, an account with one
/// upload under way gets a 429 that says which limit for a second, while another account is not
/// held back, and the account's next upload goes in once the first has ended. The pass is taken
/// before the body is read, so a slow upload holds no more than its own pass.
#[tokio::test]
async fn an_account_may_hold_only_so_many_file_transfers_at_once() {
    let app = TestApp::builder()
        .config("file_transfers_per_account", "1")
        .spawn()
        .await;
    let (alice_id, alice) = app.funded_user("xfer-alice", 10.0).await;
    let (_, bob) = app.funded_user("xfer-bob", 10.0).await;
    let put = |token: &str, body: reqwest::Body| {
        app.client
            .put(app.url("/api/vps/000000000000000000000000/files?path=/root/a"))
            .bearer_auth(token)
            .body(body)
            .send()
    };
    // A slow upload: its body arrives only when the test says so.
    let (more, rest) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
    more.send(Ok(b"first part".to_vec())).await.unwrap();
    let chunks = futures::stream::unfold(rest, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    // On a connection of its own: a body that cannot be replayed must not meet a pooled
    // connection the server is closing.
    let slow = tokio::spawn(
        reqwest::Client::new()
            .put(app.url("/api/vps/000000000000000000000000/files?path=/root/a"))
            .bearer_auth(&alice)
            .body(reqwest::Body::wrap_stream(chunks))
            .send(),
    );
    // Once the slow one holds the account's one transfer, the next is refused.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while app.state.gates.files.held_by(&alice_id) == 0 {
        assert!(
            !slow.is_finished(),
            "the slow upload ended early: {:?}",
            slow.await
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slow upload was never let in"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let refused = put(&alice, reqwest::Body::from("x")).await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: Value = refused.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("1 file transfers"),
        "{body}"
    );
    let other = put(&bob, reqwest::Body::from("x")).await.unwrap();
    assert_eq!(
        other.status(),
        StatusCode::NOT_FOUND,
        "another account is not held back"
    );

    drop(more); // the slow upload ends: its answer comes, and its pass goes back
    let ended = slow.await.unwrap().unwrap();
    assert_eq!(ended.status(), StatusCode::NOT_FOUND);
    let next = put(&alice, reqwest::Body::from("x")).await.unwrap();
    assert_eq!(
        next.status(),
        StatusCode::NOT_FOUND,
        "the account's next upload is let in"
    );
}

/// Background commands are bounded per machine (`background_commands_per_machine`; 429 saying
/// which limit, and the slot comes back when one ends), and finished ones' records go after
/// `exec_jobs_retention_days`, so rows and output cannot pile up without end.
#[tokio::test]
async fn background_commands_are_capped_per_machine_and_old_records_are_pruned() {
    let Some(app) = container_app(&[("background_commands_per_machine", "2")]).await else {
        return;
    };
    let (_, token) = app.funded_user("bg-cap", 10.0).await;
    let id = running_container(&app, &token, "bg").await;
    let start = |command: &'static str| {
        exec(
            &app,
            &token,
            &id,
            json!({"command": command, "background": true, "timeout_seconds": 120}),
        )
    };
    let mut jobs = Vec::new();
    for _ in 0..2 {
        let job = expect_json(start("sleep 60").await, StatusCode::ACCEPTED).await;
        jobs.push(job["job_id"].as_str().unwrap().to_owned());
    }
    expect_error(
        start("sleep 60").await,
        StatusCode::TOO_MANY_REQUESTS,
        "2 background commands",
    )
    .await;
    // Cancelled once it runs, as a person would: its process is there to kill.
    wait_job(&app, &token, &id, &jobs[0], &["running"]).await;
    expect_json(
        app.delete(&format!("/api/vps/{id}/jobs/{}", jobs[0]), Some(&token))
            .await,
        StatusCode::OK,
    )
    .await;
    wait_job(
        &app,
        &token,
        &id,
        &jobs[0],
        &["cancelled", "failed", "done"],
    )
    .await;
    let third = expect_json(start("echo third").await, StatusCode::ACCEPTED).await;
    let third = third["job_id"].as_str().unwrap().to_owned();
    wait_job(&app, &token, &id, &third, &["done"]).await;

    // Records of jobs finished more than a week ago go with the next sweep; newer ones stay.
    let week_and_a_day = 8 * 24 * 60 * 60 * 1000;
    sqlx::query("UPDATE exec_jobs SET finished_at = finished_at - $1 WHERE id = $2")
        .bind(week_and_a_day)
        .bind(&jobs[0])
        .execute(&app.state.db)
        .await
        .unwrap();
    exec::sweep(&app.state, db::now_ms()).await.unwrap();
    let gone = app
        .get(&format!("/api/vps/{id}/jobs/{}", jobs[0]), Some(&token))
        .await;
    assert_eq!(
        gone.status(),
        StatusCode::NOT_FOUND,
        "the old record is gone"
    );
    let kept = app
        .get(&format!("/api/vps/{id}/jobs/{third}"), Some(&token))
        .await;
    assert_eq!(kept.status(), StatusCode::OK, "a recent record stays");
    for job in &jobs[1..] {
        app.delete(&format!("/api/vps/{id}/jobs/{job}"), Some(&token))
            .await;
    }
}

/// Files are streamed: an upload that announces more than `file_max_bytes` is refused (413) as
/// soon as its headers arrive, before any of its body is read or held (the body here never
/// ends, so an answer at all shows nothing waited for it).
#[tokio::test]
async fn an_upload_announcing_too_much_is_refused_before_its_body_is_read() {
    let app = TestApp::builder()
        .config("file_max_bytes", "1048576")
        .spawn()
        .await;
    let (_, token) = app.funded_user("big-upload", 10.0).await;
    let endless = futures::stream::unfold((), |()| async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        Some((Ok::<_, std::io::Error>(vec![0u8; 1024]), ()))
    });
    let answer = tokio::time::timeout(
        Duration::from_secs(10),
        app.client
            .put(app.url("/api/vps/000000000000000000000000/files?path=/root/big"))
            .bearer_auth(&token)
            .header(reqwest::header::CONTENT_LENGTH, (1048576 + 1).to_string())
            .body(reqwest::Body::wrap_stream(endless))
            .send(),
    )
    .await
    .expect("answered without waiting for the body")
    .unwrap();
    assert_eq!(answer.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = answer.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("1048576 bytes"),
        "{body}"
    );
}
