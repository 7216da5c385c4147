//! The `/api/v1` dialect "Rentals": list, detail, aliases, extend, ledger exactness, expiry.

use crate::common;

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

/// A fresh ed25519 public key line (a valid key blob around random bytes).
fn new_key(comment: &str) -> String {
    use base64::Engine;
    let mut blob = Vec::new();
    for part in [b"ssh-ed25519".to_vec(), rand::random::<[u8; 32]>().to_vec()] {
        blob.extend_from_slice(&(part.len() as u32).to_be_bytes());
        blob.extend_from_slice(&part);
    }
    format!(
        "ssh-ed25519 {} {comment}",
        base64::engine::general_purpose::STANDARD.encode(blob)
    )
}

/// Renting says which SSH keys the server gets: the renter's choice (all their keys when they
/// name none; a key not theirs is refused and nothing is charged), and pool members' keys by the
/// pool's `member_keys` setting; the operator reads the `authorized_keys` file to provision.
#[tokio::test]
async fn a_rented_server_gets_the_chosen_keys_and_the_pool_members_by_role() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin("ops").await;
    let (_, renter) = app.funded_user("keyed", 1000.0).await;
    let (_, helper) = app.user("helper").await;
    let (_, viewer) = app.user("viewer").await;
    let add_key = |token: String, name: &'static str| {
        let app = &app;
        async move {
            expect_json(
                app.post(
                    "/api/keys",
                    Some(&token),
                    json!({"name": name, "public_key": new_key(name)}),
                )
                .await,
                StatusCode::CREATED,
            )
            .await["id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let laptop = add_key(renter.clone(), "laptop").await;
    let _desktop = add_key(renter.clone(), "desktop").await;
    add_key(helper.clone(), "helper-key").await;
    add_key(viewer.clone(), "viewer-key").await;
    let (_, stranger) = app.user("stranger").await;
    let foreign = add_key(stranger.clone(), "foreign").await;

    // A team pool: helper is an admin, viewer a user.
    let pool = expect_json(
        app.post("/api/v1/pools", Some(&renter), json!({"name": "Team"}))
            .await,
        StatusCode::CREATED,
    )
    .await["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for (who, token, role) in [("helper", &helper, "admin"), ("viewer", &viewer, "user")] {
        expect_json(
            app.post(
                &format!("/api/v1/pools/{pool}/members"),
                Some(&renter),
                json!({"username": who, "role": role}),
            )
            .await,
            StatusCode::CREATED,
        )
        .await;
        let pending = expect_json(
            app.get("/api/v1/pools/invitations/pending", Some(token))
                .await,
            StatusCode::OK,
        )
        .await;
        let invitation = pending["data"][0]["id"].as_str().unwrap().to_owned();
        expect_json(
            app.post(
                &format!("/api/v1/pools/{invitation}/accept"),
                Some(token),
                json!({}),
            )
            .await,
            StatusCode::OK,
        )
        .await;
    }

    let first = app.add_server(&admin, &[]).await;
    let second = app.add_server(&admin, &[]).await;
    let before = app
        .get("/api/billing/balance", Some(&renter))
        .await
        .text()
        .await
        .unwrap();
    let refused = expect_json(
        app.post(
            &format!("/api/v1/servers/{first}/rent"),
            Some(&renter),
            json!({"rental_days": 1, "pool_id": pool, "ssh_key_ids": [foreign]}),
        )
        .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(refused["message"], "SSH key not found");
    let after = app
        .get("/api/billing/balance", Some(&renter))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(before, after, "a refused rent charges nothing");

    let rent = |server: String, body: serde_json::Value| {
        let app = &app;
        let renter = renter.clone();
        async move {
            expect_json(
                app.post(
                    &format!("/api/v1/servers/{server}/rent"),
                    Some(&renter),
                    body,
                )
                .await,
                StatusCode::CREATED,
            )
            .await["data"]["rental"]["id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let chosen = rent(
        first,
        json!({"rental_days": 1, "pool_id": pool, "ssh_key_ids": [laptop]}),
    )
    .await;
    let all = rent(second, json!({"rental_days": 1})).await;
    let keys_of = |rental: String, token: String| {
        let app = &app;
        async move {
            let detail = expect_json(
                app.get(&format!("/api/v1/rentals/{rental}"), Some(&token))
                    .await,
                StatusCode::OK,
            )
            .await;
            detail["data"]["access"]["keys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| {
                    format!(
                        "{}/{}/{}",
                        k["owner"].as_str().unwrap(),
                        k["because"].as_str().unwrap(),
                        k["name"].as_str().unwrap()
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        keys_of(chosen.clone(), renter.clone()).await,
        ["keyed/renter/laptop"]
    );
    assert_eq!(
        keys_of(all.clone(), renter.clone()).await,
        ["keyed/renter/desktop", "keyed/renter/laptop"],
        "every key of the renter's when none is named"
    );

    // The pool shares its admins' keys, then every member's; members see the list too.
    let pool_path = format!("/api/v1/pools/{pool}");
    let share = |value: &str| {
        app.patch(
            &pool_path,
            Some(&renter),
            json!({"settings": {"member_keys": value}}),
        )
    };
    let bad = expect_json(share("everyone").await, StatusCode::BAD_REQUEST).await;
    assert!(
        bad["message"].as_str().unwrap().contains("member_keys"),
        "{}",
        bad.text
    );
    expect_json(share("admins").await, StatusCode::OK).await;
    assert_eq!(
        keys_of(chosen.clone(), viewer.clone()).await,
        ["keyed/renter/laptop", "helper/admin/helper-key"]
    );
    expect_json(share("members").await, StatusCode::OK).await;
    assert_eq!(
        keys_of(chosen.clone(), renter.clone()).await,
        [
            "keyed/renter/laptop",
            "helper/admin/helper-key",
            "viewer/user/viewer-key"
        ]
    );

    // The operator's provisioning file: one key per line, saying whose and why.
    let res = app
        .get(
            &format!("/api/admin/rentals/{chosen}/authorized_keys"),
            Some(&admin),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let file = res.text().await.unwrap();
    let lines: Vec<&str> = file.lines().collect();
    assert_eq!(lines.len(), 3, "{file}");
    assert!(
        lines[0].starts_with("ssh-ed25519 AAAA") && lines[0].ends_with(" keyed:renter:laptop"),
        "{file}"
    );
    assert!(lines[1].ends_with(" helper:admin:helper-key"), "{file}");
    assert_eq!(
        app.get(
            &format!("/api/admin/rentals/{chosen}/authorized_keys"),
            Some(&renter)
        )
        .await
        .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.get(
            "/api/admin/rentals/ffffffffffffffffffffffff/authorized_keys",
            Some(&admin)
        )
        .await
        .status(),
        StatusCode::NOT_FOUND
    );
}
