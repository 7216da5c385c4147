//! The `/api` dialect "Billing": balance, history with pagination, notify emails.

use crate::common;

use common::{expect_error, expect_json, TestApp};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn balance_and_history_follow_the_ledger() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin("ops").await;
    let (uid, user) = app.user("payer").await;
    let body = expect_json(
        app.get("/api/billing/balance", Some(&user)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(body.raw("balance"), "0.0000");
    for amount in [10.0, 5.25, 0.0042] {
        app.credit(&admin, &uid, amount).await;
    }
    let server = app
        .add_server(&admin, &[("/prices", json!({"1": 3}))])
        .await;
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
    let res = app.get("/api/billing/balance", Some(&user)).await;
    assert_eq!(res.headers()["x-balance-remaining"], "12.2542");
    assert_eq!(
        expect_json(res, StatusCode::OK).await.raw("balance"),
        "12.2542"
    );

    // Newest first, default page 20, total counts everything.
    let page = expect_json(
        app.get("/api/billing/history", Some(&user)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(page["total"], 4);
    assert_eq!(page["limit"], 20);
    assert_eq!(page["offset"], 0);
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 4);
    assert_eq!(items[0]["kind"], "rental");
    assert!(page.text.contains("\"amount\":-3.0000"), "{}", page.text);
    assert_eq!(items[3]["kind"], "credit");
    let second = expect_json(
        app.get("/api/billing/history?limit=2&offset=2", Some(&user))
            .await,
        StatusCode::OK,
    )
    .await;
    let ids: Vec<_> = second["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].clone())
        .collect();
    assert_eq!(ids, vec![items[2]["id"].clone(), items[3]["id"].clone()]);
    for bad in ["limit=0", "limit=101", "offset=-1", "limit=ten"] {
        let res = app
            .get(&format!("/api/billing/history?{bad}"), Some(&user))
            .await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
    // Only one's own movements.
    let (_, other) = app.user("other").await;
    let theirs = expect_json(
        app.get("/api/billing/history", Some(&other)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(theirs["total"], 0);
    assert_eq!(
        app.get("/api/billing/balance", None).await.status(),
        StatusCode::UNAUTHORIZED
    );

    // This month's statement: the same movements, grouped, adding up to the balance.
    let month = domain::money::billing::Month::of(domain::infra::db::now_ms());
    let path = format!("/api/billing/statements/{month}");
    let st = expect_json(app.get(&path, Some(&user)).await, StatusCode::OK).await;
    assert_eq!(st.raw("opening_balance"), "0.0000");
    assert_eq!(st.raw("closing_balance"), "12.2542");
    assert_eq!(st["credits"].as_array().unwrap().len(), 3);
    assert_eq!(st["rentals"].as_array().unwrap().len(), 1);
    assert!(st.text.contains("\"amount\":-3.0000"), "{}", st.text);
    let theirs = expect_json(app.get(&path, Some(&other)).await, StatusCode::OK).await;
    assert_eq!(theirs.raw("closing_balance"), "0.0000", "one's own only");
    expect_error(
        app.get("/api/billing/statements/2001-01", Some(&user))
            .await,
        StatusCode::NOT_FOUND,
        "not found",
    )
    .await;
    expect_error(
        app.get("/api/billing/statements/december", Some(&user))
            .await,
        StatusCode::BAD_REQUEST,
        "YYYY-MM",
    )
    .await;
    assert_eq!(
        app.get(&path, None).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn notify_emails_are_validated_unique_bounded_and_private() {
    let app = TestApp::spawn().await;
    let (_, user) = app.user("alerts").await;
    let created = expect_json(
        app.post(
            "/api/billing/notify-emails",
            Some(&user),
            json!({"email": "Ops@Example.com"}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(created["email"], "ops@example.com");
    let id = created["id"].as_str().unwrap().to_owned();
    expect_error(
        app.post(
            "/api/billing/notify-emails",
            Some(&user),
            json!({"email": "ops@example.com"}),
        )
        .await,
        StatusCode::CONFLICT,
        "already",
    )
    .await;
    expect_error(
        app.post(
            "/api/billing/notify-emails",
            Some(&user),
            json!({"email": "not-an-email"}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "Email",
    )
    .await;
    expect_error(
        app.post("/api/billing/notify-emails", Some(&user), json!({}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "email",
    )
    .await;
    for i in 1..10 {
        expect_json(
            app.post(
                "/api/billing/notify-emails",
                Some(&user),
                json!({"email": format!("a{i}@example.com")}),
            )
            .await,
            StatusCode::CREATED,
        )
        .await;
    }
    expect_error(
        app.post(
            "/api/billing/notify-emails",
            Some(&user),
            json!({"email": "eleven@example.com"}),
        )
        .await,
        StatusCode::CONFLICT,
        "At most 10",
    )
    .await;
    let list = expect_json(
        app.get("/api/billing/notify-emails", Some(&user)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(list.as_array().unwrap().len(), 10);

    let (_, other) = app.user("snoop").await;
    assert_eq!(
        expect_json(
            app.get("/api/billing/notify-emails", Some(&other)).await,
            StatusCode::OK
        )
        .await
        .as_array()
        .unwrap()
        .len(),
        0
    );
    assert_eq!(
        app.delete(&format!("/api/billing/notify-emails/{id}"), Some(&other))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.delete(&format!("/api/billing/notify-emails/{id}"), Some(&user))
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.delete(&format!("/api/billing/notify-emails/{id}"), Some(&user))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let list = expect_json(
        app.get("/api/billing/notify-emails", Some(&user)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(list.as_array().unwrap().len(), 9);
}

#[tokio::test]
async fn twenty_parallel_purchases_on_a_balance_for_three() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin("ops").await;
    let (uid, user) = app.user("spender").await;
    app.credit(&admin, &uid, 30.0).await;
    let mut servers = Vec::new();
    for i in 0..20 {
        servers.push(
            app.add_server(
                &admin,
                &[
                    ("/name", json!(format!("p{i}"))),
                    ("/prices", json!({"1": 10})),
                ],
            )
            .await,
        );
    }
    let paths: Vec<String> = servers
        .iter()
        .map(|s| format!("/api/v1/servers/{s}/rent"))
        .collect();
    let results = futures::future::join_all(
        paths
            .iter()
            .map(|p| app.post(p, Some(&user), json!({"rental_days": 1}))),
    )
    .await;
    let mut created = 0;
    for res in results {
        match res.status() {
            StatusCode::CREATED => created += 1,
            StatusCode::PAYMENT_REQUIRED => {}
            other => panic!("unexpected {other}: {}", res.text().await.unwrap()),
        }
    }
    assert_eq!(created, 3, "exactly the three the balance covers");
    assert_eq!(
        app.money(&uid).await,
        (0, 0),
        "nothing overspent, cache equals ledger"
    );
    let rentals: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM rentals")
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(rentals, 3, "no rental without its payment");
}

/// The billing page's chart: per-day spending, machines apart from rentals, zeros on quiet days,
/// top-ups and credits not counted, nothing before the window.
#[tokio::test]
async fn daily_spend_sums_machines_and_rentals_per_utc_day() {
    let app = TestApp::spawn().await;
    let (uid, _) = app.user("spender").await;
    let (other, _) = app.user("neighbour").await;
    const DAY: i64 = 86_400_000;
    let now = 20_000 * DAY + 3_600_000; // 01:00 UTC on day 20000
    let rows: [(&str, i64, &str, i64); 8] = [
        (&uid, -1_000, "usage", now - 60_000),        // today
        (&uid, -2_000, "usage", now - 120_000),       // today
        (&uid, -70_000_000, "rental", now - 2 * DAY), // two days ago
        (&uid, -10_000_000, "extension", now - 2 * DAY + 1),
        (&uid, 50_000_000, "topup", now - DAY), // money in: not spending
        (&uid, -5_000, "usage", now - 3 * DAY), // outside a 3-day window
        (&other, -9_000, "usage", now - 60_000), // someone else's
        (&uid, -3_000, "usage", 20_000 * DAY),  // today, at midnight sharp
    ];
    for (i, (user, amount, kind, at)) in rows.iter().enumerate() {
        sqlx::query("INSERT INTO ledger (id, user_id, amount_micros, kind, description, created_at) VALUES ($1, $2, $3, $4, 'x', $5)")
            .bind(format!("spend-{i}"))
            .bind(user)
            .bind(amount)
            .bind(kind)
            .bind(at)
            .execute(&app.state.db)
            .await
            .unwrap();
    }
    let days = domain::money::billing::daily_spend(&app.state.db, &uid, 3, now)
        .await
        .unwrap();
    let seen: Vec<(i64, i64, i64)> = days
        .iter()
        .map(|d| (d.day, d.machines, d.rentals))
        .collect();
    assert_eq!(
        seen,
        vec![(19_998, 0, 80_000_000), (19_999, 0, 0), (20_000, 6_000, 0),]
    );
}
