//! The `/api/v1` dialect "Server Marketplace": inventory, browse filters, renting, the race.

use crate::common;

use std::collections::BTreeSet;

use common::{expect_json, ids, TestApp};
use reqwest::StatusCode;
use serde_json::json;

fn set(items: &[&String]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).clone()).collect()
}

#[tokio::test]
async fn every_filter_filters() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin("ops").await;
    // Five servers that differ on every filtered attribute.
    let a = app
        .add_server(&admin, &[("/name", json!("a")), ("/featured", json!(true))])
        .await; // US, compute, EPYC 64c, 256 DDR5, NVMe 92TB, 10G, 100TB
    let b = app.add_server(&admin, &[
        ("/name", json!("b")), ("/country", json!("DE")), ("/region", json!("eu-central")), ("/category", json!("storage")),
        ("/specs/cpu/cores", json!(8)), ("/specs/cpu/threads", json!(16)), ("/specs/cpu/score", json!(9000)),
        ("/specs/ram/capacity_gb", json!(32)), ("/specs/ram/type", json!("DDR4")),
        ("/specs/disks/config", json!([{"count": 12, "capacity_gb": 16000, "type": "HDD", "interface": "SATA"}])),
        ("/specs/network/bandwidth_mbps", json!(1000)), ("/specs/network/traffic_tb", json!(null)), ("/specs/network/traffic_unlimited", json!(true)),
        ("/prices", json!({"30": 150})),
    ]).await;
    let c = app
        .add_server(
            &admin,
            &[
                ("/name", json!("c")),
                ("/country", json!("SG")),
                ("/region", json!("ap-southeast")),
                ("/category", json!("gpu")),
                ("/specs/cpu/score", json!(2900)),
                ("/specs/cpu/score_type", json!("geekbench_single")),
                ("/specs/ram/capacity_gb", json!(512)),
                (
                    "/specs/disks/config",
                    json!([{"count": 1, "capacity_gb": 480, "type": "SSD", "interface": "SATA"}]),
                ),
                ("/specs/network/bandwidth_mbps", json!(25000)),
                ("/specs/network/traffic_tb", json!(20)),
                ("/prices", json!({"1": 90, "7": 560})),
            ],
        )
        .await;
    let d = app
        .add_server(
            &admin,
            &[
                ("/name", json!("d")),
                ("/category", json!("memory")),
                ("/is_vm", json!(true)),
                ("/prices", json!({"1": 3, "7": 14})),
            ],
        )
        .await;
    let e = app
        .add_server(
            &admin,
            &[
                ("/name", json!("e")),
                ("/category", json!("general")),
                ("/region", json!("us-west")),
            ],
        )
        .await;
    let all = set(&[&a, &b, &c, &d, &e]);

    let cases: Vec<(&str, BTreeSet<String>)> = vec![
        ("", all.clone()),
        ("country=DE", set(&[&b])),
        ("country=us", set(&[&a, &d, &e])),
        ("region=us-west", set(&[&e])),
        ("max_price_per_day=5", set(&[&b, &d])), // b: 150/30 = 5.00, d: 14/7 = 2.00
        ("max_price_per_day=4.99", set(&[&d])),
        ("available_durations=30", set(&[&a, &b, &e])),
        (
            "available_durations=1&available_durations=7",
            set(&[&a, &c, &d, &e]),
        ),
        ("available_durations=1,7,30", set(&[&a, &e])),
        ("min_cpu_cores=32", set(&[&a, &c, &d, &e])),
        ("min_cpu_score=10000", set(&[&a, &d, &e])),
        (
            "min_cpu_score=2000&cpu_score_type=geekbench_single",
            set(&[&c]),
        ),
        ("min_ram_gb=500", set(&[&c])),
        ("ram_types=DDR4", set(&[&b])),
        ("ram_types=ddr4,ecc%20ddr5", all.clone()),
        ("min_total_storage_gb=100000", set(&[&b])),
        ("disk_types=HDD", set(&[&b])),
        ("disk_types[]=SSD&disk_types[]=HDD", set(&[&b, &c])),
        ("min_bandwidth_mbps=20000", set(&[&c])),
        ("min_traffic_tb=50", set(&[&a, &b, &d, &e])), // unlimited qualifies
        ("unlimited_traffic_only=true", set(&[&b])),
        ("category=gpu", set(&[&c])),
        ("featured_only=true", set(&[&a])),
        (
            "country=US&category=memory&max_price_per_day=10",
            set(&[&d]),
        ),
    ];
    for (query, expected) in cases {
        let body = expect_json(
            app.get(&format!("/api/v1/servers/available?{query}"), None)
                .await,
            StatusCode::OK,
        )
        .await;
        assert_eq!(ids(&body), expected, "filter {query:?}");
        assert_eq!(
            body["pagination"]["total"],
            expected.len() as i64,
            "{query}"
        );
        assert_eq!(body["statusCode"], 200);
    }
}

#[tokio::test]
async fn browse_shape_sort_and_pagination() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin("ops").await;
    for (i, price) in [30, 10, 20].iter().enumerate() {
        app.add_server(
            &admin,
            &[
                ("/name", json!(format!("s{i}"))),
                ("/prices", json!({"1": price})),
                ("/popularity_rank", json!(i)),
            ],
        )
        .await;
    }
    let body = expect_json(
        app.get("/api/v1/servers/available?sort=price_asc&limit=2", None)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(body["message"], "Available servers retrieved successfully");
    let names: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["s1", "s2"]);
    assert_eq!(
        body["pagination"],
        json!({"total": 3, "limit": 2, "offset": 0, "next_offset": 2})
    );
    let page2 = expect_json(
        app.get(
            "/api/v1/servers/available?sort=price_asc&limit=2&offset=2",
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(page2["data"][0]["name"], "s0");
    assert_eq!(page2["pagination"]["next_offset"], serde_json::Value::Null);

    // The full structure of the `/api/v1` dialect.
    let s = &body["data"][0];
    assert_eq!(
        s["specs"]["cpu"],
        json!({"model": "AMD EPYC 7763", "cores": 64, "threads": 128, "score": 48500, "score_type": "passmark"})
    );
    assert_eq!(
        s["specs"]["ram"],
        json!({"capacity_gb": 256, "type": "ECC DDR5", "speed_mhz": 4800})
    );
    assert_eq!(s["specs"]["disks"]["total_gb"], 92000);
    assert_eq!(s["specs"]["disks"]["summary"], "2x1TB NVMe + 6x15TB NVMe");
    assert_eq!(s["specs"]["network"]["bandwidth_formatted"], "10 Gbps");
    assert_eq!(
        s["specs"]["additional"],
        json!({"ipv4_count": 5, "ipv6_enabled": true})
    );
    assert_eq!(s["pricing"]["prices"], json!({"1": "10.00"}));
    assert_eq!(s["pricing"]["price_tiers"], json!({"1": "10.00"}));
    for key in [
        "country",
        "region",
        "city",
        "datacenter",
        "model",
        "is_vm",
        "category",
        "featured",
        "popularity_rank",
        "setup_time_minutes",
    ] {
        assert!(!s[key].is_null(), "{key} present");
    }

    for bad in [
        "min_cpu_cores=many",
        "category=toaster",
        "limit=500",
        "sort=random",
        "max_price_per_day=-1",
    ] {
        let res = app
            .get(&format!("/api/v1/servers/available?{bad}"), None)
            .await;
        let body = expect_json(res, StatusCode::BAD_REQUEST).await;
        assert_eq!(body["statusCode"], 400, "{bad}");
        assert!(body["message"].is_string());
    }
}

#[tokio::test]
async fn renting_debits_the_balance_and_takes_the_server_off_the_market() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin("ops").await;
    let (uid, user) = app.user("renter").await;
    let server = app.add_server(&admin, &[]).await;
    app.credit(&admin, &uid, 100.0).await;

    // Unsupported duration: 400 naming the durations, nothing moves.
    let res = app
        .post(
            &format!("/api/v1/servers/{server}/rent"),
            Some(&user),
            json!({"rental_days": 3}),
        )
        .await;
    let body = expect_json(res, StatusCode::BAD_REQUEST).await;
    assert!(
        body["message"].as_str().unwrap().contains("1, 7, 30"),
        "{}",
        body.text
    );
    // Malformed input.
    for (payload, status) in [
        (json!({}), StatusCode::UNPROCESSABLE_ENTITY),
        (
            json!({"rental_days": "7"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (json!({"rental_days": 0}), StatusCode::BAD_REQUEST),
        (
            json!({"rental_days": 7, "pool_id": "not-hex"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"rental_days": 7, "pool_id": "507f1f77bcf86cd799439300"}),
            StatusCode::NOT_FOUND,
        ),
    ] {
        let res = app
            .post(
                &format!("/api/v1/servers/{server}/rent"),
                Some(&user),
                payload.clone(),
            )
            .await;
        assert_eq!(res.status(), status, "{payload}");
    }
    let res = app
        .post(
            "/api/v1/servers/507f1f77bcf86cd799439014/rent",
            Some(&user),
            json!({"rental_days": 7}),
        )
        .await;
    assert_eq!(
        expect_json(res, StatusCode::NOT_FOUND).await["message"],
        "Server not found"
    );
    assert_eq!(
        app.post(
            &format!("/api/v1/servers/{server}/rent"),
            None,
            json!({"rental_days": 7})
        )
        .await
        .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.money(&uid).await, (100_000_000, 100_000_000));

    let res = app
        .post(
            &format!("/api/v1/servers/{server}/rent"),
            Some(&user),
            json!({"rental_days": 7}),
        )
        .await;
    assert_eq!(res.headers()["x-balance-remaining"], "30.0000");
    let body = expect_json(res, StatusCode::CREATED).await;
    assert_eq!(body["message"], "Server rented successfully");
    assert_eq!(body["data"]["rental"]["status"], "active");
    assert_eq!(body["data"]["rental"]["server_id"], server.as_str());
    assert_eq!(body["data"]["rental"]["actual_usage_days"], 0);
    assert_eq!(body["data"]["transaction"]["amount"], 70);
    assert_eq!(body["data"]["transaction"]["currency"], "USD");
    let start = body["data"]["rental"]["rental_start"].as_str().unwrap();
    let end = body["data"]["rental"]["rental_end"].as_str().unwrap();
    assert!(start.ends_with('Z') && end > start);
    assert_eq!(
        app.money(&uid).await,
        (30_000_000, 30_000_000),
        "cached balance equals the ledger"
    );

    // Off the market, and a second rent is a conflict that moves no money.
    let browse = expect_json(
        app.get("/api/v1/servers/available", None).await,
        StatusCode::OK,
    )
    .await;
    assert!(!ids(&browse).contains(&server));
    assert_eq!(
        app.get(&format!("/api/v1/servers/available/{server}"), None)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let (uid2, other) = app.user("other").await;
    app.credit(&admin, &uid2, 100.0).await;
    let res = app
        .post(
            &format!("/api/v1/servers/{server}/rent"),
            Some(&other),
            json!({"rental_days": 1}),
        )
        .await;
    assert_eq!(
        expect_json(res, StatusCode::CONFLICT).await["statusCode"],
        409
    );
    assert_eq!(app.money(&uid2).await, (100_000_000, 100_000_000));
}

#[tokio::test]
async fn not_enough_balance_is_402_with_the_amounts_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin("ops").await;
    let (uid, user) = app.user("poor").await;
    let server = app.add_server(&admin, &[]).await;
    app.credit(&admin, &uid, 10.5).await;
    let res = app
        .post(
            &format!("/api/v1/servers/{server}/rent"),
            Some(&user),
            json!({"rental_days": 7}),
        )
        .await;
    let body = expect_json(res, StatusCode::PAYMENT_REQUIRED).await;
    assert_eq!(body["statusCode"], 402);
    assert_eq!(body["message"], "insufficient balance");
    assert!(body.text.contains("\"balance\":10.5000"), "{}", body.text);
    assert!(body.text.contains("\"required\":70.0000"), "{}", body.text);
    let rentals: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM rentals")
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(rentals, 0, "no rental without payment");
    assert_eq!(app.money(&uid).await, (10_500_000, 10_500_000));
    // Still on the market.
    assert_eq!(
        app.get(&format!("/api/v1/servers/available/{server}"), None)
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_token_spend_limit_caps_rentals() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin("ops").await;
    let (uid, user) = app.user("ci").await;
    app.credit(&admin, &uid, 500.0).await;
    let cheap = app
        .add_server(
            &admin,
            &[("/name", json!("cheap")), ("/prices", json!({"1": 12}))],
        )
        .await;
    let dear = app
        .add_server(
            &admin,
            &[("/name", json!("dear")), ("/prices", json!({"1": 20}))],
        )
        .await;
    let token = expect_json(
        app.post(
            "/api/tokens",
            Some(&user),
            json!({"name": "ci", "spend_limit": 25}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let token = token["token"].as_str().unwrap().to_owned();
    expect_json(
        app.post(
            &format!("/api/v1/servers/{cheap}/rent"),
            Some(&token),
            json!({"rental_days": 1}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let res = app
        .post(
            &format!("/api/v1/servers/{dear}/rent"),
            Some(&token),
            json!({"rental_days": 1}),
        )
        .await;
    let body = expect_json(res, StatusCode::PAYMENT_REQUIRED).await;
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("token spend limit"),
        "{}",
        body.text
    );
    assert!(body.text.contains("\"required\":20.0000"));
    assert_eq!(
        app.money(&uid).await.0,
        488_000_000,
        "only the first rental was charged"
    );
    let list = expect_json(app.get("/api/tokens", Some(&user)).await, StatusCode::OK).await;
    assert_eq!(list.raw("spent"), "12.0000");
    // The same user's JWT has no token limit.
    expect_json(
        app.post(
            &format!("/api/v1/servers/{dear}/rent"),
            Some(&user),
            json!({"rental_days": 1}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
}

#[tokio::test]
async fn two_customers_racing_for_one_server_one_wins_the_other_pays_nothing() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin("ops").await;
    for round in 0..5 {
        let server = app
            .add_server(&admin, &[("/name", json!(format!("race-{round}")))])
            .await;
        let (u1, t1) = app.user(&format!("racer_a{round}")).await;
        let (u2, t2) = app.user(&format!("racer_b{round}")).await;
        app.credit(&admin, &u1, 100.0).await;
        app.credit(&admin, &u2, 100.0).await;
        let path = format!("/api/v1/servers/{server}/rent");
        let (r1, r2) = tokio::join!(
            app.post(&path, Some(&t1), json!({"rental_days": 7})),
            app.post(&path, Some(&t2), json!({"rental_days": 7})),
        );
        let mut statuses = [r1.status(), r2.status()];
        statuses.sort();
        assert_eq!(
            statuses,
            [StatusCode::CREATED, StatusCode::CONFLICT],
            "round {round}"
        );
        let (m1, m2) = (app.money(&u1).await, app.money(&u2).await);
        let mut balances = [m1.0, m2.0];
        balances.sort();
        assert_eq!(balances, [30_000_000, 100_000_000], "only the winner paid");
        assert_eq!(m1.0, m1.1);
        assert_eq!(m2.0, m2.1);
    }
}

#[tokio::test]
async fn operators_manage_inventory_and_others_cannot() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin("ops").await;
    let (_, user) = app.user("plain").await;
    assert_eq!(
        app.post(
            "/api/admin/marketplace/servers",
            Some(&user),
            common::server_json(&[])
        )
        .await
        .status(),
        StatusCode::FORBIDDEN
    );
    let id = app.add_server(&admin, &[]).await;
    for (pointer, value, needle) in [
        ("/category", json!("toaster"), "category"),
        ("/country", json!("usa"), "country"),
        ("/prices", json!({}), "prices"),
        ("/prices", json!({"zero": 5}), "duration"),
        ("/specs/cpu/score_type", json!("cinebench"), "score_type"),
        ("/name", json!("x".repeat(101)), "at most 100"),
    ] {
        let res = app
            .post(
                "/api/admin/marketplace/servers",
                Some(&admin),
                common::server_json(&[(pointer, value)]),
            )
            .await;
        common::expect_error(res, StatusCode::BAD_REQUEST, needle).await;
    }
    let res = app
        .client
        .put(app.url(&format!("/api/admin/marketplace/servers/{id}")))
        .bearer_auth(&admin)
        .json(&common::server_json(&[
            ("/name", json!("renamed")),
            ("/prices", json!({"1": 5})),
        ]))
        .send()
        .await
        .unwrap();
    let body = expect_json(res, StatusCode::OK).await;
    assert_eq!(body["name"], "renamed");
    assert_eq!(body["pricing"]["min_price_per_day"], "5.00");

    // Updates never wipe what they do not mention: a server with an access point, repriced by
    // a body that names only the prices, keeps it (the renter's rental shows it), its name and
    // its other durations; `null` drops a duration.
    let reach = app
        .add_server(
            &admin,
            &[(
                "/access",
                json!({"address": "203.0.113.7", "port": 2222, "user": "root"}),
            )],
        )
        .await;
    let (_, renter) = app.funded_user("renter", 100.0).await;
    let rented = expect_json(
        app.post(
            &format!("/api/v1/servers/{reach}/rent"),
            Some(&renter),
            json!({"rental_days": 1}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let rental = rented["data"]["rental"]["id"].as_str().unwrap().to_owned();
    for method in ["PUT", "PATCH"] {
        let res = app
            .client
            .request(
                method.parse().unwrap(),
                app.url(&format!("/api/admin/marketplace/servers/{reach}")),
            )
            .bearer_auth(&admin)
            .json(&json!({"prices": {"1": 11, "30": null}}))
            .send()
            .await
            .unwrap();
        let body = expect_json(res, StatusCode::OK).await;
        assert_eq!(body["name"], "node-test-1", "{method}");
    }
    let prices: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT days, price FROM marketplace_prices WHERE server_id = $1 ORDER BY days",
    )
    .bind(&reach)
    .fetch_all(&app.state.db)
    .await
    .unwrap();
    assert_eq!(prices, vec![(1, 11_000_000), (7, 70_000_000)]);
    let seen = expect_json(
        app.get(&format!("/api/v1/rentals/{rental}"), Some(&renter))
            .await,
        StatusCode::OK,
    )
    .await;
    assert!(
        seen.text.contains("203.0.113.7"),
        "the rental keeps its address: {}",
        seen.text
    );
    common::expect_error(
        app.patch(
            &format!("/api/admin/marketplace/servers/{reach}"),
            Some(&admin),
            json!({"specs": {"cpu": {"cores": "many"}}}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "would not be valid",
    )
    .await;
    assert_eq!(
        app.delete(
            &format!("/api/admin/marketplace/servers/{id}"),
            Some(&admin)
        )
        .await
        .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.get(&format!("/api/v1/servers/available/{id}"), None)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.delete(
            &format!("/api/admin/marketplace/servers/{id}"),
            Some(&admin)
        )
        .await
        .status(),
        StatusCode::NOT_FOUND
    );
}

/// The browse index (on by default) and SQL give the same page and the same `total` for the
/// same filters, on a generated catalog, through rents, an extension, the expiry sweep, price
/// edits, new servers and retirements: the index is never a step behind the database.
#[tokio::test]
async fn the_browse_index_answers_exactly_as_sql_through_every_change() {
    use domain::market::{browse, demo, inventory, rentals};

    let app = TestApp::spawn().await;
    let db = &app.state.db;
    let index = app
        .state
        .browse_index
        .as_deref()
        .expect("the index is on by default");
    inventory::load(db, demo::demo_servers(600, 42))
        .await
        .unwrap();
    // Every sort, single filters, three-filter mixes, pages past the first, names no server has.
    let mut queries: Vec<String> = browse::Sort::ALL
        .iter()
        .map(|(s, _)| format!("sort={s}&limit=50"))
        .collect();
    queries.extend(
        [
            "",
            "country=DE",
            "country=ZZ",
            "region=eu-central",
            "category=gpu&sort=price_asc",
            "available_durations=1,30",
            "available_durations=2",
            "min_cpu_score=20000",
            "min_cpu_score=2000&cpu_score_type=geekbench_single",
            "ram_types=ddr4,DDR5",
            "ram_types=sdram",
            "disk_types=hdd&sort=storage_desc",
            "disk_types=nvme,ssd&offset=24",
            "min_traffic_tb=50&sort=newest",
            "unlimited_traffic_only=true&featured_only=true",
            "min_bandwidth_mbps=10000&min_total_storage_gb=4000",
            "offset=590&limit=20",
            "offset=5000",
        ]
        .map(String::from),
    );
    for c in ["US", "DE", "SG"] {
        for ram in [32, 128] {
            for price in [5, 20] {
                for offset in [0, 24] {
                    queries.push(format!(
                        "country={c}&min_ram_gb={ram}&max_price_per_day={price}&offset={offset}"
                    ));
                }
            }
        }
    }
    let same = |stage: &'static str| {
        let queries = &queries;
        async move {
            for q in queries {
                let f = browse::Filters::parse(q).unwrap();
                let (fast, fast_page) = index.browse(db, &f).await.unwrap();
                let (sql, sql_page) = browse::browse_uncached(db, &f).await.unwrap();
                assert_eq!(fast_page, sql_page, "{stage}: total/page of {q:?}");
                assert_eq!(
                    serde_json::to_value(&fast).unwrap(),
                    serde_json::to_value(&sql).unwrap(),
                    "{stage}: servers of {q:?}"
                );
            }
        }
    };
    same("loaded").await;

    // Rent the first page's servers of one query; they leave both answers at once.
    let (_, user) = app.funded_user("indexed", 5000.0).await;
    let first = browse::Filters::parse("country=US&sort=price_asc&limit=5").unwrap();
    let (cheap, _) = index.browse(db, &first).await.unwrap();
    let mut rental = String::new();
    for s in &cheap {
        let body = expect_json(
            app.post(
                &format!("/api/v1/servers/{}/rent", s.id),
                Some(&user),
                json!({"rental_days": s.pricing.durations[0]}),
            )
            .await,
            StatusCode::CREATED,
        )
        .await;
        rental = body["data"]["rental"]["id"].as_str().unwrap().to_owned();
    }
    let (after, _) = index.browse(db, &first).await.unwrap();
    assert!(
        after.iter().all(|s| cheap.iter().all(|c| c.id != s.id)),
        "a rented server is still listed"
    );
    same("rented").await;

    expect_json(
        app.post(
            &format!("/api/v1/rentals/{rental}/extend"),
            Some(&user),
            json!({"additional_days": cheap.last().unwrap().pricing.durations[0]}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    // The server stays reserved to the rental's new end, not the first term's: otherwise it
    // would be back on the market (and rentable by someone else) while still rented.
    let (reserved, ends): (Option<i64>, i64) = sqlx::query_as(
        "SELECT s.rented_until, r.expires_at FROM rentals r
         JOIN marketplace_servers s ON s.id = r.server_id WHERE r.id = $1",
    )
    .bind(&rental)
    .fetch_one(db)
    .await
    .unwrap();
    assert_eq!(reserved, Some(ends), "extension moves the reservation");
    same("extended").await;

    // Operators edit prices, add servers and retire some.
    let mut edited = demo::demo_servers(1, 7).remove(0);
    edited.prices = [("1".to_string(), 0.01)].into_iter().collect();
    let target = &after[0].id;
    let (operator, _) = app.admin("catalog-ops").await;
    inventory::update(db, &operator, target, edited.clone())
        .await
        .unwrap();
    inventory::load(db, demo::demo_servers(40, 43))
        .await
        .unwrap();
    inventory::retire(db, &operator, &after[1].id)
        .await
        .unwrap();
    same("edited").await;
    let (cheapest, _) = index
        .browse(
            db,
            &browse::Filters::parse("sort=price_asc&limit=1").unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(&cheapest[0].id, target, "the repriced server leads at once");

    // Everything rented runs out: the sweep frees the servers again.
    let later = domain::infra::db::now_ms() + 400 * rentals::DAY_MS;
    assert!(rentals::expire_due(db, later).await.unwrap() > 0);
    same("expired").await;
}
