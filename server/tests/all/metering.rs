//! Per-minute metering over simulated hours (the tick takes its clock as an argument), the
//! running-out rules, and the balance mails, delivered through a real SMTP server (aiosmtpd,
//! started by `scripts/test`, writing a maildir the test reads).

use crate::common;

use common::{expect_error, expect_json, mails_to, smtp, TestApp};
use domain::compute::meter::{self, Rules, MINUTE_MS};
use domain::infra::db;
use reqwest::StatusCode;
use serde_json::json;

/// A fixed origin for simulated time, far from the real clock.
const T0: i64 = 1_900_000_000_000;

const RULES: Rules = Rules {
    grace_minutes: 30,
    runway_hours: 24,
    min_runtime_minutes: 60,
    retention_days: 14,
};

/// Creates a VPS on `plan` and runs its create job; returns its id.
async fn running(app: &TestApp, token: &str, name: &str, plan: &str) -> String {
    let vps = expect_json(
        app.post(
            "/api/vps",
            Some(token),
            json!({"name": name, "plan_id": plan}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    app.run_jobs().await;
    vps["id"].as_str().unwrap().to_owned()
}

/// Puts the meter of running instances at the simulated origin.
async fn start_clock(app: &TestApp, ids: &[&str], at: i64) {
    for id in ids {
        sqlx::query("UPDATE instances SET metered_until = $1, metered_minutes = 0 WHERE id = $2")
            .bind(at)
            .bind(*id)
            .execute(&app.state.db)
            .await
            .unwrap();
    }
}

async fn usage_total(app: &TestApp, uid: &str) -> i64 {
    sqlx::query_scalar::<_, i64>("SELECT CAST(COALESCE(SUM(amount_micros), 0) AS BIGINT) FROM ledger WHERE user_id = $1 AND kind = 'usage'")
        .bind(uid)
        .fetch_one(&app.state.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn running_instances_pay_each_minute_once() {
    let app = TestApp::spawn().await;
    let (uid, token) = app.funded_user("mia", 20.0).await;
    // nano: $0.0042/h = 70 µUSD a minute; small: $0.012/h = 200 µUSD a minute.
    let nano = running(&app, &token, "n", "nano").await;
    let small = running(&app, &token, "s", "small").await;
    let stopped = running(&app, &token, "off", "nano").await;
    expect_json(
        app.post(&format!("/api/vps/{stopped}/stop"), Some(&token), json!({}))
            .await,
        StatusCode::ACCEPTED,
    )
    .await;
    app.run_jobs().await;
    // One still provisioning (its job not run) and one failed: neither pays.
    let provisioning = expect_json(
        app.post(
            "/api/vps",
            Some(&token),
            json!({"name": "prov", "plan_id": "nano"}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    // The stopped one pays for what it keeps: 10 GB of disk at $0.00006 per GB-hour, plus its
    // public IPv4 address at $0.0008 an hour when it has one (the defaults), shown on the API.
    let off = expect_json(
        app.get(&format!("/api/vps/{stopped}"), Some(&token)).await,
        StatusCode::OK,
    )
    .await;
    let held = 10 * 60 + if off["ip"].is_string() { 800 } else { 0 };
    assert_eq!(
        off["stopped_hourly"].as_f64().unwrap(),
        held as f64 / 1e6,
        "{off:?}"
    );
    // What `minutes` of it cost (cumulative rounding, as for running machines).
    let held_for = |minutes: i64| held * minutes / 60;
    start_clock(&app, &[&nano, &small, &stopped], T0).await;
    let before = app.money(&uid).await.0;
    let stopped_usage = usage_total(&app, &uid).await;

    meter::tick(&app.state.db, T0 + 59_999, RULES)
        .await
        .unwrap();
    assert_eq!(
        usage_total(&app, &uid).await,
        stopped_usage,
        "no whole minute yet"
    );

    meter::tick(&app.state.db, T0 + 90 * MINUTE_MS, RULES)
        .await
        .unwrap();
    assert_eq!(
        usage_total(&app, &uid).await - stopped_usage,
        -90 * (70 + 200) - held_for(90)
    );
    // The same tick again, a tick a moment later, and two at once charge nothing more.
    meter::tick(&app.state.db, T0 + 90 * MINUTE_MS, RULES)
        .await
        .unwrap();
    meter::tick(&app.state.db, T0 + 90 * MINUTE_MS + 30_000, RULES)
        .await
        .unwrap();
    let (a, b) = tokio::join!(
        meter::tick(&app.state.db, T0 + 90 * MINUTE_MS + 59_000, RULES),
        meter::tick(&app.state.db, T0 + 90 * MINUTE_MS + 59_000, RULES)
    );
    a.unwrap();
    b.unwrap();
    assert_eq!(
        usage_total(&app, &uid).await - stopped_usage,
        -90 * 270 - held_for(90)
    );

    // A tick that comes hours late catches up exactly; two replicas racing do it once.
    let (a, b) = tokio::join!(
        meter::tick(&app.state.db, T0 + 5 * 60 * MINUTE_MS + 10, RULES),
        meter::tick(&app.state.db, T0 + 5 * 60 * MINUTE_MS + 10, RULES)
    );
    a.unwrap();
    b.unwrap();
    assert_eq!(
        usage_total(&app, &uid).await - stopped_usage,
        -300 * 270 - held_for(300)
    );
    assert_eq!(before - app.money(&uid).await.0, 300 * 270 + held_for(300));

    let minutes: Vec<(String, i64, Option<i64>)> = sqlx::query_as("SELECT name, metered_minutes, metered_until FROM instances WHERE user_id = $1 ORDER BY name")
        .bind(&uid)
        .fetch_all(&app.state.db)
        .await
        .unwrap();
    for (name, m, until) in &minutes {
        match name.as_str() {
            "n" | "s" => assert_eq!((*m, *until), (300, Some(T0 + 300 * MINUTE_MS)), "{name}"),
            "prov" => assert_eq!((*m, *until), (0, None), "provisioning is not billed"),
            "off" => assert_eq!(
                (*m, *until),
                (300, Some(T0 + 300 * MINUTE_MS)),
                "a stopped instance pays its held rate"
            ),
            _ => {}
        }
    }
    let _ = provisioning;

    // Stopping settles the started minute and ends billing.
    let mut tx = app.state.db.begin().await.unwrap();
    meter::settle(&mut tx, &nano, T0 + 300 * MINUTE_MS + 30_000)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        usage_total(&app, &uid).await - stopped_usage,
        -300 * 270 - 70 - held_for(300)
    );
    meter::tick(&app.state.db, T0 + 400 * MINUTE_MS, RULES)
        .await
        .unwrap();
    assert_eq!(
        usage_total(&app, &uid).await - stopped_usage,
        -300 * 270 - 70 - 100 * 200 - held_for(400),
        "small and the stopped one still pay"
    );

    let (cached, sum) = app.money(&uid).await;
    assert_eq!(cached, sum, "cached balance equals the ledger");
}

#[tokio::test]
async fn an_hour_costs_exactly_the_hourly_price_whatever_it_is() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin("ops").await;
    // $0.0001/h = 100 µUSD an hour: 1.67 µUSD a minute, which no per-minute rounding gets right.
    expect_json(app.put("/api/admin/plans", Some(&admin), json!({"slug": "odd", "name": "Odd", "kind": "vm", "vcpu": 1, "memory_mb": 256, "disk_gb": 1, "price_hourly": 0.0001})).await, StatusCode::OK).await;
    let (uid, token) = app.user("oda").await;
    app.credit(&admin, &uid, 1.0).await;
    let id = running(&app, &token, "odd-1", "odd").await;
    start_clock(&app, &[&id], T0).await;
    let mut charged = Vec::new();
    for minute in 1..=60 {
        meter::tick(&app.state.db, T0 + minute * MINUTE_MS, RULES)
            .await
            .unwrap();
        charged.push(-usage_total(&app, &uid).await);
    }
    assert_eq!(charged[29], 50, "half an hour");
    assert_eq!(charged[59], 100, "the hour, to the micro-dollar");
    assert!(
        charged.windows(2).all(|w| w[1] - w[0] <= 2),
        "no minute pays for another"
    );
}

/// The messages aiosmtpd stored that were sent to `addr`: their full text.
#[tokio::test]
async fn running_out_warns_then_stops_after_the_grace_period() {
    let Some(smtp_url) = smtp() else { return };
    let app = TestApp::builder()
        .config("smtp_url", &smtp_url)
        .config("mail_from", "Hangar <billing@hangar.test>")
        .spawn()
        .await;
    let tag = db::new_id();
    let (_, admin) = app.admin(&format!("op{tag}")).await;
    let name = format!("low{}", &tag[..8]);
    let (uid, token) = app.user(&name).await;
    app.credit(&admin, &uid, 0.05).await;
    let ops = format!("ops-{tag}@example.com");
    expect_json(
        app.post(
            "/api/billing/notify-emails",
            Some(&token),
            json!({"email": ops}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let id = running(&app, &token, "lean", "nano").await;
    start_clock(&app, &[&id], T0).await;

    // $0.05 at $0.0042/h is under 24 h of runway: one warning, to both addresses.
    let r = meter::tick(&app.state.db, T0 + MINUTE_MS, RULES)
        .await
        .unwrap();
    assert_eq!(r.warned, vec![uid.clone()]);
    let r = meter::tick(&app.state.db, T0 + 2 * MINUTE_MS, RULES)
        .await
        .unwrap();
    assert!(r.warned.is_empty(), "once per crossing");
    app.run_jobs().await;
    let account = format!("{name}@example.com");
    let to_ops = mails_to(&ops);
    assert_eq!(to_ops.len(), 1, "one warning");
    let mail = &to_ops[0];
    assert!(
        mail.contains(&account),
        "the account address is a recipient too: {mail}"
    );
    assert!(
        mail.contains("Subject: Your Hangar balance is running low"),
        "{mail}"
    );
    assert!(mail.contains("$0.0042 per hour"), "{mail}");
    assert!(mail.contains("billing@hangar.test"), "{mail}");

    // 714 minutes drain $0.05; at 800 the charge stops at zero, never below.
    let r = meter::tick(&app.state.db, T0 + 800 * MINUTE_MS, RULES)
        .await
        .unwrap();
    assert_eq!(r.exhausted, vec![uid.clone()]);
    assert_eq!(
        app.money(&uid).await,
        (0, 0),
        "balance is zero, not negative, and the ledger agrees"
    );
    let r = meter::tick(&app.state.db, T0 + 829 * MINUTE_MS, RULES)
        .await
        .unwrap();
    assert!(r.stopped.is_empty(), "still inside the grace period");
    assert_eq!(
        expect_json(
            app.get(&format!("/api/vps/{id}"), Some(&token)).await,
            StatusCode::OK
        )
        .await["state"],
        "running"
    );
    let r = meter::tick(&app.state.db, T0 + 830 * MINUTE_MS, RULES)
        .await
        .unwrap();
    assert_eq!(r.stopped, vec![id.clone()]);
    app.run_jobs().await;
    let vps = expect_json(
        app.get(&format!("/api/vps/{id}"), Some(&token)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(vps["state"], "stopped", "stopped, not deleted");
    assert!(vps["reason"].as_str().unwrap().contains("balance ran out"));
    let subjects: Vec<String> = mails_to(&account)
        .iter()
        .filter_map(|m| {
            m.lines()
                .find(|l| l.starts_with("Subject:"))
                .map(str::to_owned)
        })
        .collect();
    assert!(
        subjects.contains(&"Subject: Your Hangar balance has run out".to_owned()),
        "{subjects:?}"
    );
    assert!(
        subjects.contains(&"Subject: Your Hangar machines were stopped".to_owned()),
        "{subjects:?}"
    );

    // A top-up ends the running-out state; the stopped machine pays only for its disk from
    // then on (its held rate began when the stop job ran: on the simulated clock, at 830).
    sqlx::query("UPDATE instances SET metered_until = $1, metered_minutes = 0 WHERE id = $2")
        .bind(T0 + 830 * MINUTE_MS)
        .bind(&id)
        .execute(&app.state.db)
        .await
        .unwrap();
    app.credit(&admin, &uid, 5.0).await;
    meter::tick(&app.state.db, T0 + 900 * MINUTE_MS, RULES)
        .await
        .unwrap();
    let exhausted: Option<i64> = sqlx::query_scalar("SELECT exhausted_at FROM users WHERE id = $1")
        .bind(&uid)
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(exhausted, None);
    // 70 minutes of 10 GB at $0.00006 per GB-hour (no address ranges here, so no IPv4).
    assert_eq!(app.money(&uid).await.0, 5_000_000 - 600 * 70 / 60);
}

#[tokio::test]
async fn a_token_limit_caps_what_its_machines_may_use() {
    let app = TestApp::spawn().await;
    let (uid, jwt) = app.funded_user("tok", 10.0).await;
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
    let vtk = tok["token"].as_str().unwrap().to_owned();
    let by_token = running(&app, &vtk, "ci-1", "nano").await;
    let by_jwt = running(&app, &jwt, "mine", "nano").await;
    start_clock(&app, &[&by_token, &by_jwt], T0).await;

    // $0.0042/h = 70 µUSD a minute: an hour is $0.0042 of the token's $0.01.
    let r = meter::tick(&app.state.db, T0 + 60 * MINUTE_MS, RULES)
        .await
        .unwrap();
    assert!(r.stopped.is_empty());
    let spent = |app: &TestApp| {
        let db = app.state.db.clone();
        let id = tok["id"].as_str().unwrap().to_owned();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT spent_micros FROM access_tokens WHERE id = $1")
                .bind(id)
                .fetch_one(&db)
                .await
                .unwrap()
        }
    };
    assert_eq!(
        spent(&app).await,
        4_200,
        "only the token's machine counts against it"
    );
    let tokens = expect_json(app.get("/api/tokens", Some(&jwt)).await, StatusCode::OK).await;
    assert!(tokens.text.contains("\"spent\":0.0042"), "{}", tokens.text);

    // 143 minutes = $0.01001: past the limit, so the token's machine stops; the other runs on.
    let r = meter::tick(&app.state.db, T0 + 143 * MINUTE_MS, RULES)
        .await
        .unwrap();
    assert_eq!(r.stopped, vec![by_token.clone()]);
    app.run_jobs().await;
    let vps = expect_json(
        app.get(&format!("/api/vps/{by_token}"), Some(&jwt)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(vps["state"], "stopped");
    assert!(vps["reason"].as_str().unwrap().contains("spend limit"));
    assert_eq!(
        expect_json(
            app.get(&format!("/api/vps/{by_jwt}"), Some(&jwt)).await,
            StatusCode::OK
        )
        .await["state"],
        "running"
    );
    let (cached, sum) = app.money(&uid).await;
    assert_eq!(cached, sum);
}

/// The grace period after a balance runs out is once per exhaustion: a top-up too small to pay
/// for an hour of what runs (here a tenth of a cent) does not start a new free grace period,
/// and the machine stops when the first one ends. Before, any positive balance ended the
/// running-out state, and each cent bought another free half hour for every machine.
#[tokio::test]
async fn a_cent_of_top_up_does_not_start_a_new_grace_period() {
    let app = TestApp::spawn().await;
    let tag = db::new_id();
    let (_, admin) = app.admin(&format!("op{tag}")).await;
    let (uid, token) = app.user(&format!("cent{}", &tag[..8])).await;
    app.credit(&admin, &uid, 0.05).await;
    let id = running(&app, &token, "lean", "nano").await;
    start_clock(&app, &[&id], T0).await;
    let r = meter::tick(&app.state.db, T0 + 800 * MINUTE_MS, RULES)
        .await
        .unwrap();
    assert_eq!(r.exhausted, vec![uid.clone()]);
    app.credit(&admin, &uid, 0.001).await;
    let r = meter::tick(&app.state.db, T0 + 811 * MINUTE_MS, RULES)
        .await
        .unwrap();
    assert!(r.stopped.is_empty(), "inside the first grace period");
    let r = meter::tick(&app.state.db, T0 + 830 * MINUTE_MS, RULES)
        .await
        .unwrap();
    assert_eq!(
        r.stopped,
        vec![id],
        "stopped when the first grace period ended"
    );
}

/// The vCPU and memory a machine's node counts for it, and the disk.
async fn node_use(app: &TestApp, vps: &str) -> (i64, i64, i64) {
    sqlx::query_as(
        "SELECT n.used_vcpu, n.used_memory_mb, n.used_disk_gb FROM nodes n JOIN instances i ON i.node_id = n.id WHERE i.id = $1",
    )
    .bind(vps)
    .fetch_one(&app.state.db)
    .await
    .unwrap()
}

async fn act(app: &TestApp, token: &str, id: &str, action: &str) -> reqwest::Response {
    app.post(&format!("/api/vps/{id}/{action}"), Some(token), json!({}))
        .await
}

/// Holding a node's capacity is never free: a stopped machine gives its vCPU and memory back to
/// its node (keeping its disk), a start takes them again or is refused with a 409 that says why
/// when others took them, and the plan shows what a stopped machine pays. Before, a stopped
/// machine kept its whole share and paid nothing.
#[tokio::test]
async fn a_stopped_machine_gives_back_its_cpu_and_memory_and_a_start_needs_them_again() {
    let app = TestApp::builder()
        .config("cpu_overcommit", "1")
        .spawn()
        .await;
    let (_, token) = app.funded_user("stopper", 5.0).await;
    let pricing = expect_json(app.get("/api/pricing", None).await, StatusCode::OK).await;
    let nano = pricing
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["slug"] == "nano")
        .unwrap();
    // 10 GB at $0.00006 per GB-hour and a VM's IPv4 address at $0.0008 an hour.
    assert_eq!(nano["stopped_hourly"].as_f64(), Some(0.0014), "{nano}");

    let a = running(&app, &token, "a", "nano").await;
    let (vcpu0, mem0, disk0) = node_use(&app, &a).await;
    // The node has exactly room for what runs now (no overcommit in this test).
    sqlx::query("UPDATE nodes SET vcpu = $1, memory_mb = $2 WHERE id = (SELECT node_id FROM instances WHERE id = $3)")
        .bind(vcpu0)
        .bind(mem0)
        .bind(&a)
        .execute(&app.state.db)
        .await
        .unwrap();
    assert_eq!(
        act(&app, &token, &a, "stop").await.status(),
        StatusCode::ACCEPTED
    );
    app.run_jobs().await;
    assert_eq!(
        node_use(&app, &a).await,
        (vcpu0 - 1, mem0 - 512, disk0),
        "the stopped machine's vCPU and memory went back; its disk is kept"
    );

    // Another machine takes what it gave back; the stopped one cannot start now.
    let b = running(&app, &token, "b", "nano").await;
    assert_eq!(node_use(&app, &b).await, (vcpu0, mem0, disk0 + 10));
    let refused = expect_error(
        act(&app, &token, &a, "start").await,
        StatusCode::CONFLICT,
        "no free CPU or memory",
    )
    .await;
    assert!(
        refused["error"].as_str().unwrap().contains("disk"),
        "{refused:?}"
    );
    let still = expect_json(
        app.get(&format!("/api/vps/{a}"), Some(&token)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        (still["state"].as_str(), &still["transition"]),
        (Some("stopped"), &json!(null))
    );

    // Once the other stops, it starts, and counts again.
    assert_eq!(
        act(&app, &token, &b, "stop").await.status(),
        StatusCode::ACCEPTED
    );
    app.run_jobs().await;
    assert_eq!(
        act(&app, &token, &a, "start").await.status(),
        StatusCode::ACCEPTED
    );
    app.run_jobs().await;
    assert_eq!(node_use(&app, &a).await, (vcpu0, mem0, disk0 + 10));
    // Deleting gives back what each holds: all of the running one, the disk of the stopped one.
    for id in [&a, &b] {
        let deleted = app.delete(&format!("/api/vps/{id}"), Some(&token)).await;
        assert_eq!(deleted.status(), StatusCode::ACCEPTED);
    }
    app.run_jobs().await;
    assert_eq!(
        node_use(&app, &a).await,
        (vcpu0 - 1, mem0 - 512, disk0 - 10),
        "back to what the node held before either machine"
    );
}

/// A stopped machine of an account whose balance ran out is not kept for free for ever: it is
/// deleted `retention_days` after the balance ran out (the exhaustion notice says when), and its
/// disk goes back to the node.
#[tokio::test]
async fn stopped_machines_of_an_account_out_of_money_are_deleted_after_the_retention() {
    let app = TestApp::spawn().await;
    let (uid, token) = app.funded_user("lapsed", 0.01).await;
    let id = running(&app, &token, "kept", "nano").await;
    assert_eq!(
        act(&app, &token, &id, "stop").await.status(),
        StatusCode::ACCEPTED
    );
    app.run_jobs().await;
    let (_, _, disk) = node_use(&app, &id).await;
    start_clock(&app, &[&id], T0).await;
    // Its 10 GB at $0.0006 an hour (no address ranges here, so no IPv4) empty what is left of
    // $0.01 within a day.
    let out = T0 + 24 * 60 * MINUTE_MS;
    let r = meter::tick(&app.state.db, out, RULES).await.unwrap();
    assert_eq!(
        r.exhausted,
        vec![uid.clone()],
        "held charges ran the balance out"
    );
    assert_eq!(app.money(&uid).await, (0, 0));
    let day = 24 * 60 * MINUTE_MS;
    let r = meter::tick(&app.state.db, out + 13 * day, RULES)
        .await
        .unwrap();
    assert!(r.deleted.is_empty(), "kept within the retention");
    let r = meter::tick(&app.state.db, out + 14 * day + MINUTE_MS, RULES)
        .await
        .unwrap();
    assert_eq!(r.deleted, vec![id.clone()]);
    app.run_jobs().await;
    let gone = app.get(&format!("/api/vps/{id}"), Some(&token)).await;
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    let (_, _, after) = sqlx::query_as::<_, (i64, i64, i64)>(
        "SELECT n.used_vcpu, n.used_memory_mb, n.used_disk_gb FROM nodes n JOIN instances i ON i.node_id = n.id WHERE i.id = $1",
    )
    .bind(&id)
    .fetch_one(&app.state.db)
    .await
    .unwrap();
    assert_eq!(after, disk - 10, "its disk went back to the node");
    let notices: Vec<String> = sqlx::query_scalar(
        "SELECT payload FROM jobs WHERE kind = 'mail' AND user_id = $1 ORDER BY created_at",
    )
    .bind(&uid)
    .fetch_all(&app.state.db)
    .await
    .unwrap();
    assert!(
        notices.iter().any(|p| p.contains("\"deleted\"")),
        "the owner is told: {notices:?}"
    );
}

/// Statements a person can check: the history itemizes usage per machine and hour, and a month's
/// statement adds up to the ledger exactly, including the minutes capped at a balance that ran
/// out (shown as such, not spread over machines).
#[tokio::test]
async fn statements_itemize_usage_per_machine_and_add_up_to_the_ledger() {
    use domain::money::billing;
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin("ops").await;
    let (uid, token) = app.user("stella").await;
    app.credit(&admin, &uid, 0.05).await;
    let web = running(&app, &token, "web", "small").await;
    let db_ = running(&app, &token, "db", "nano").await;
    start_clock(&app, &[&web, &db_], T0).await;

    // 90 minutes: $0.012/h × 1.5 h and $0.0042/h × 1.5 h, each the machine's own line.
    meter::tick(&app.state.db, T0 + 90 * MINUTE_MS, RULES)
        .await
        .unwrap();
    let (lines, total) = billing::statement_lines(&app.state.db, &uid, 100, 0)
        .await
        .unwrap();
    let machine = |name: &str| {
        lines
            .iter()
            .find(|l| l.machine.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("a line for {name}: {lines:?}"))
            .clone()
    };
    assert_eq!(
        (machine("web").minutes, machine("web").amount_micros),
        (Some(90), -18_000)
    );
    assert_eq!(
        (machine("db").minutes, machine("db").amount_micros),
        (Some(90), -6_300)
    );
    assert_eq!(
        total, 3,
        "the operator's credit and one line per machine: {lines:?}"
    );
    assert!(
        !lines.iter().any(|l| l.description == "Compute usage"),
        "no unitemized usage while the balance covers it: {lines:?}"
    );
    assert_eq!(usage_total(&app, &uid).await, -24_300);

    // Far past what $0.05 covers: the last charge is capped at the balance and stays unitemized.
    meter::tick(&app.state.db, T0 + 400 * MINUTE_MS, RULES)
        .await
        .unwrap();
    assert_eq!(app.money(&uid).await.0, 0);
    let month = billing::Month::of(T0);
    let st = billing::statement(&app.state.db, &uid, month, T0 + 400 * MINUTE_MS)
        .await
        .unwrap();
    let names: Vec<(&str, i64, i64)> = st
        .machines
        .iter()
        .map(|m| (m.name.as_str(), m.minutes, m.amount_micros))
        .collect();
    assert_eq!(
        names,
        vec![("web", 90, 18_000), ("db", 90, 6_300)],
        "the most expensive first"
    );
    assert_eq!(st.other_usage_micros, 50_000 - 24_300, "the capped charge");
    // The credit was made on the real clock, months before the simulated one.
    assert_eq!(st.opening_micros, 50_000);
    assert!(st.credits.is_empty());
    let machines: i64 = st.machines.iter().map(|m| m.amount_micros).sum();
    let rentals: i64 = st.rentals.iter().map(|e| e.amount_micros).sum();
    let credits: i64 = st.credits.iter().map(|e| e.amount_micros).sum();
    assert_eq!(
        st.opening_micros + credits + rentals - machines - st.other_usage_micros,
        st.closing_micros,
        "the statement adds up"
    );
    assert_eq!(st.closing_micros, app.money(&uid).await.0);

    // Another month is another statement; months outside the account's life are not pages.
    let next = billing::statement(
        &app.state.db,
        &uid,
        month.next(),
        month.next().start_ms() + 1,
    )
    .await
    .unwrap();
    assert_eq!((next.opening_micros, next.closing_micros), (0, 0));
    assert!(next.machines.is_empty() && next.credits.is_empty());
    assert!(matches!(
        billing::statement(&app.state.db, &uid, month.next(), T0).await,
        Err(domain::infra::error::ServiceError::NotFound(_))
    ));
    assert!(matches!(
        billing::statement(&app.state.db, &uid, "2001-01".parse().unwrap(), T0).await,
        Err(domain::infra::error::ServiceError::NotFound(_))
    ));
    assert!("2026-13".parse::<billing::Month>().is_err());
}
