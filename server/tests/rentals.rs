//! Reference 001 "Rentals": list, detail, aliases, extend, ledger exactness, expiry.

mod common;

use common::{expect_error, expect_json, ids, TestApp};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn rent_extend_and_read_back_with_exact_money() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin("ops").await;
    let (uid, user) = app.user("tenant").await;
    let server = app.add_server(&admin, &[]).await;
    app.credit(&admin, &uid, 200.0).await;
    let rented = expect_json(
        app.post(
            &format!("/api/v1/servers/{server}/rent"),
            Some(&user),
            json!({"rental_days": 7}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let rental_id = rented["data"]["rental"]["id"].as_str().unwrap().to_owned();

    let list = expect_json(
        app.get("/api/v1/rentals", Some(&user)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(list["message"], "Rentals retrieved successfully");
    let r = &list["data"][0];
    assert_eq!(r["id"], rental_id.as_str());
    assert_eq!(r["amount"], "70.00");
    assert_eq!(r["remaining_days"], 7);
    assert_eq!(r["usage_days"], 0);
    assert_eq!(r["status"], "active");
    assert_eq!(r["server"]["specs"]["cpu"]["cores"], 64);
    let alias = expect_json(
        app.get("/api/v1/servers", Some(&user)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        alias["data"], list["data"],
        "GET /servers is an alias of GET /rentals"
    );

    let detail = expect_json(
        app.get(&format!("/api/v1/rentals/{rental_id}"), Some(&user))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(detail["data"]["transaction"]["amount"], 70);
    assert_eq!(
        detail["data"]["transaction"]["id"],
        rented["data"]["transaction"]["id"]
    );
    assert_eq!(detail["data"]["server"]["name"], "node-test-1");
    let alias = expect_json(
        app.get(&format!("/api/v1/servers/{rental_id}"), Some(&user))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(alias["data"], detail["data"]);
    assert_eq!(alias["message"], "Rental details retrieved successfully");

    // Extend by one of the server's durations.
    for (payload, status) in [
        (json!({"additional_days": 5}), StatusCode::BAD_REQUEST),
        (json!({"additional_days": 0}), StatusCode::BAD_REQUEST),
        (json!({}), StatusCode::UNPROCESSABLE_ENTITY),
    ] {
        assert_eq!(
            app.post(
                &format!("/api/v1/rentals/{rental_id}/extend"),
                Some(&user),
                payload
            )
            .await
            .status(),
            status
        );
    }
    let ext = expect_json(
        app.post(
            &format!("/api/v1/rentals/{rental_id}/extend"),
            Some(&user),
            json!({"additional_days": 7}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(ext["message"], "Rental extended successfully");
    assert_eq!(ext["data"]["rental"]["amount"], "140.00");
    assert_eq!(ext["data"]["rental"]["remaining_days"], 14);
    assert_eq!(ext["data"]["transaction"]["amount"], 70);
    let end_before = detail["data"]["rental_end"].as_str().unwrap().to_owned();
    let end_after = ext["data"]["rental"]["rental_end"].as_str().unwrap();
    assert!(end_after > end_before.as_str());
    assert_eq!(
        app.money(&uid).await,
        (60_000_000, 60_000_000),
        "200 - 70 - 70, cached equals ledger"
    );
    let detail = expect_json(
        app.get(&format!("/api/v1/rentals/{rental_id}"), Some(&user))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(detail["data"]["transactions"].as_array().unwrap().len(), 2);

    // Not enough for another extension: 402 and nothing changes.
    let res = app
        .post(
            &format!("/api/v1/rentals/{rental_id}/extend"),
            Some(&user),
            json!({"additional_days": 30}),
        )
        .await;
    expect_json(res, StatusCode::PAYMENT_REQUIRED).await;
    assert_eq!(app.money(&uid).await, (60_000_000, 60_000_000));

    // Strangers see nothing.
    let (_, stranger) = app.user("stranger").await;
    assert_eq!(
        app.get(&format!("/api/v1/rentals/{rental_id}"), Some(&stranger))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.post(
            &format!("/api/v1/rentals/{rental_id}/extend"),
            Some(&stranger),
            json!({"additional_days": 7})
        )
        .await
        .status(),
        StatusCode::NOT_FOUND
    );
    let theirs = expect_json(
        app.get("/api/v1/rentals", Some(&stranger)).await,
        StatusCode::OK,
    )
    .await;
    assert!(ids(&theirs).is_empty());
    assert_eq!(
        app.get("/api/v1/rentals/garbage", Some(&user))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn rentals_end_on_their_own_and_the_server_returns() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin("ops").await;
    let (uid, user) = app.user("short").await;
    let server = app.add_server(&admin, &[]).await;
    app.credit(&admin, &uid, 100.0).await;
    let rented = expect_json(
        app.post(
            &format!("/api/v1/servers/{server}/rent"),
            Some(&user),
            json!({"rental_days": 1}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let rental_id = rented["data"]["rental"]["id"].as_str().unwrap().to_owned();

    // A sweep before the end changes nothing.
    hangar_server::jobs::run_sweeps(&app.state, domain::infra::db::now_ms()).await;
    assert_eq!(
        app.get(&format!("/api/v1/servers/available/{server}"), None)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );

    // The sweep a day later ends it.
    let later = domain::infra::db::now_ms() + domain::market::rentals::DAY_MS + 1000;
    hangar_server::jobs::run_sweeps(&app.state, later).await;
    let status: String = sqlx::query_scalar("SELECT status FROM rentals WHERE id = $1")
        .bind(&rental_id)
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(status, "expired");
    // Running it again is harmless.
    assert_eq!(
        domain::market::rentals::expire_due(&app.state.db, later)
            .await
            .unwrap(),
        0
    );
    let detail = expect_json(
        app.get(&format!("/api/v1/rentals/{rental_id}"), Some(&user))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(detail["data"]["status"], "expired");
    assert_eq!(detail["data"]["remaining_days"], 0);
    let res = app
        .post(
            &format!("/api/v1/rentals/{rental_id}/extend"),
            Some(&user),
            json!({"additional_days": 1}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    assert_eq!(
        app.get(&format!("/api/v1/servers/available/{server}"), None)
            .await
            .status(),
        StatusCode::OK,
        "back on the market"
    );
    expect_json(
        app.post(
            &format!("/api/v1/servers/{server}/rent"),
            Some(&user),
            json!({"rental_days": 1}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
}

/// A rental's detail says how to reach the server: setup status from the operator's setup time,
/// the published address, port and user, the SSH command; the marketplace never shows the
/// address, and once the rental is over it is withheld.
#[tokio::test]
async fn a_rental_says_how_to_reach_the_server() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin("ops").await;
    let (uid, user) = app.user("reacher").await;
    app.credit(&admin, &uid, 1000.0).await;
    let ready = app
        .add_server(
            &admin,
            &[
                ("/setup_time_minutes", json!(0)),
                (
                    "/access",
                    json!({"address": "203.0.113.7", "port": 2222, "user": "admin"}),
                ),
            ],
        )
        .await;
    let slow = app
        .add_server(
            &admin,
            &[
                ("/setup_time_minutes", json!(90)),
                ("/access", json!({"address": "fra-17.example.net"})),
            ],
        )
        .await;
    let unpublished = app.add_server(&admin, &[]).await;

    // Bad access input: 400 naming the field, nothing created.
    for (access, needle) in [
        (
            json!({"address": "203.0.113.7; rm -rf /"}),
            "access.address",
        ),
        (
            json!({"address": "203.0.113.7", "port": 70000}),
            "access.port",
        ),
        (
            json!({"address": "203.0.113.7", "user": "Root User"}),
            "access.user",
        ),
    ] {
        expect_error(
            app.post(
                "/api/admin/marketplace/servers",
                Some(&admin),
                common::server_json(&[("/access", access)]),
            )
            .await,
            StatusCode::BAD_REQUEST,
            needle,
        )
        .await;
    }
    let market = app
        .get("/api/v1/servers/available", None)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        !market.contains("203.0.113.7"),
        "the address is for renters only"
    );

    let rent = |server: String| {
        let (app, user) = (&app, &user);
        async move {
            let body = expect_json(
                app.post(
                    &format!("/api/v1/servers/{server}/rent"),
                    Some(user),
                    json!({"rental_days": 1}),
                )
                .await,
                StatusCode::CREATED,
            )
            .await;
            let id = body["data"]["rental"]["id"].as_str().unwrap().to_owned();
            expect_json(
                app.get(&format!("/api/v1/rentals/{id}"), Some(user)).await,
                StatusCode::OK,
            )
            .await
        }
    };
    let r = rent(ready).await;
    let a = &r["data"]["access"];
    assert_eq!(a["status"], "ready", "{}", r.text);
    assert_eq!(a["address"], "203.0.113.7");
    assert_eq!(a["ssh_command"], "ssh -p 2222 admin@203.0.113.7");

    let r = rent(slow).await;
    let a = &r["data"]["access"];
    assert_eq!(a["status"], "setting_up");
    assert_eq!(a["ssh_command"], "ssh root@fra-17.example.net");
    let started = time::OffsetDateTime::parse(
        r["data"]["rental_start"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let ready_at = time::OffsetDateTime::parse(
        a["ready_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!((ready_at - started).whole_minutes(), 90);

    let r = rent(unpublished).await;
    let a = &r["data"]["access"];
    assert!(
        a["address"].is_null() && a["ssh_command"].is_null(),
        "{}",
        r.text
    );

    // Over: the address is withheld.
    let later = domain::infra::db::now_ms() + 2 * domain::market::rentals::DAY_MS;
    domain::market::rentals::expire_due(&app.state.db, later)
        .await
        .unwrap();
    let rentals = expect_json(
        app.get("/api/v1/rentals", Some(&user)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        rentals["data"].as_array().unwrap().len(),
        3,
        "{}",
        rentals.text
    );
    for item in rentals["data"].as_array().unwrap() {
        let id = item["id"].as_str().unwrap();
        let d = expect_json(
            app.get(&format!("/api/v1/rentals/{id}"), Some(&user)).await,
            StatusCode::OK,
        )
        .await;
        assert_eq!(d["data"]["access"]["status"], "ended");
        assert!(d["data"]["access"]["address"].is_null());
    }
}
