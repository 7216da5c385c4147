//! What one account may hold: quotas, and a balance that covers everything it runs. Found on a
//! running default: an account with $0.005 created six machines at once.

use super::*;

/// Six creates at once with $0.005: the balance covers one nano machine's first hour ($0.0042),
/// so exactly one is made and the others are refused (402), however they interleave.
#[tokio::test]
async fn parallel_creates_cannot_all_slip_past_the_balance() {
    let app = TestApp::spawn().await;
    let (_, token) = app.funded_user("thin", 0.005).await;
    let creates = (0..6).map(|i| {
        let (app, token) = (&app, token.clone());
        async move {
            app.post(
                "/api/vps",
                Some(&token),
                json!({"name": format!("m{i}"), "plan_id": "nano"}),
            )
            .await
            .status()
        }
    });
    let statuses = futures::future::join_all(creates).await;
    let made = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    assert_eq!(made, 1, "{statuses:?}");
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::CREATED || *s == StatusCode::PAYMENT_REQUIRED),
        "{statuses:?}"
    );
    let listed = expect_json(app.get("/api/vps", Some(&token)).await, StatusCode::OK).await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
}

/// The balance must cover the first hour of everything running after a create or a start, not
/// just the new machine; a start (which bills again) is checked too.
#[tokio::test]
async fn creating_or_starting_needs_the_balance_for_everything_running() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin("ops").await;
    let (uid, token) = app.funded_user("runner", 0.01).await;
    let first = expect_json(
        app.post(
            "/api/vps",
            Some(&token),
            json!({"name": "a", "plan_id": "nano"}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let first = first["id"].as_str().unwrap().to_owned();
    app.run_jobs().await;
    // $0.01 covers one nano hour ($0.0042) and two ($0.0084); a third would need $0.0126.
    expect_json(
        app.post(
            "/api/vps",
            Some(&token),
            json!({"name": "b", "plan_id": "nano"}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    app.run_jobs().await;
    let refused = expect_error(
        app.post(
            "/api/vps",
            Some(&token),
            json!({"name": "c", "plan_id": "nano"}),
        )
        .await,
        StatusCode::PAYMENT_REQUIRED,
        "insufficient balance",
    )
    .await;
    assert!(
        refused.text.contains("\"required\":0.0126"),
        "the first hour of all three: {}",
        refused.text
    );

    // Stopped, the first no longer counts; the balance then drops, and starting it again
    // needs the first hour of both.
    let stop = app
        .post(&format!("/api/vps/{first}/stop"), Some(&token), json!({}))
        .await;
    assert_eq!(stop.status(), StatusCode::ACCEPTED);
    app.run_jobs().await;
    app.credit(&admin, &uid, -0.005).await;
    expect_error(
        app.post(&format!("/api/vps/{first}/start"), Some(&token), json!({}))
            .await,
        StatusCode::PAYMENT_REQUIRED,
        "insufficient balance",
    )
    .await;
    app.credit(&admin, &uid, 0.01).await;
    let start = app
        .post(&format!("/api/vps/{first}/start"), Some(&token), json!({}))
        .await;
    assert_eq!(start.status(), StatusCode::ACCEPTED);
}

/// Quotas: an operator's default and a per-account override; a refusal names the limit and
/// how to ask for more; the account sees usage against each limit.
#[tokio::test]
async fn quotas_bound_what_an_account_holds_and_say_so() {
    let app = TestApp::builder().config("quota_vcpu", "3").spawn().await;
    let (_, admin) = app.admin("ops").await;
    let (uid, token) = app.funded_user("quota", 50.0).await;
    let create = |name: &'static str, plan: &'static str| {
        let (app, token) = (&app, token.clone());
        async move {
            app.post(
                "/api/vps",
                Some(&token),
                json!({"name": name, "plan_id": plan}),
            )
            .await
        }
    };
    assert_eq!(create("one", "nano").await.status(), StatusCode::CREATED);
    // `medium` has 2 vCPUs: 1 + 2 = 3 fits the default of 3; a third nano does not.
    assert_eq!(create("two", "medium").await.status(), StatusCode::CREATED);
    expect_error(
        create("three", "nano").await,
        StatusCode::FORBIDDEN,
        "limit of 3 vCPUs",
    )
    .await;
    let q = expect_json(app.get("/api/quotas", Some(&token)).await, StatusCode::OK).await;
    let item = |name: &str| {
        q["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(item("vcpu")["used"], 3);
    assert_eq!(item("vcpu")["limit"], 3);
    assert_eq!(item("machines")["used"], 2);
    assert_eq!(item("machines")["limit"], 10);

    // The operator raises vCPUs and caps machines at 2 for this account only.
    let set = expect_json(
        app.put(
            &format!("/api/admin/users/{uid}/quotas"),
            Some(&admin),
            json!({"vcpu": 16, "machines": 2}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(set["overrides"]["machines"], 2);
    expect_error(
        create("three", "nano").await,
        StatusCode::FORBIDDEN,
        "limit of 2 machines",
    )
    .await;
    expect_error(
        app.put(
            &format!("/api/admin/users/{uid}/quotas"),
            Some(&admin),
            json!({"vcpu": -1}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "Quota values",
    )
    .await;
    expect_error(
        app.put(
            &format!("/api/admin/users/{uid}/quotas"),
            Some(&token),
            json!({"vcpu": 99}),
        )
        .await,
        StatusCode::FORBIDDEN,
        "",
    )
    .await;

    // Background commands: none allowed, so one is refused before it is queued.
    app.put(
        &format!("/api/admin/users/{uid}/quotas"),
        Some(&admin),
        json!({"background_commands": 0}),
    )
    .await;
    app.run_jobs().await;
    let listed = expect_json(app.get("/api/vps", Some(&token)).await, StatusCode::OK).await;
    let id = listed[0]["id"].as_str().unwrap();
    expect_error(
        app.post(
            &format!("/api/vps/{id}/exec"),
            Some(&token),
            json!({"command": "uptime", "background": true}),
        )
        .await,
        StatusCode::FORBIDDEN,
        "background commands",
    )
    .await;
}
