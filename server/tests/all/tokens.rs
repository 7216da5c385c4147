//! The `/api` dialect "Access Tokens": create (value once), list, revoke, authenticate.

use crate::common;

use common::{expect_error, expect_json, TestApp};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn a_token_works_like_a_jwt_until_revoked() {
    let app = TestApp::spawn().await;
    let (user_id, jwt) = app.user("ci_owner").await;

    let res = app
        .post(
            "/api/tokens",
            Some(&jwt),
            json!({"name": "ci-deploy", "spend_limit": 25}),
        )
        .await;
    let created = expect_json(res, StatusCode::CREATED).await;
    let value = created["token"].as_str().unwrap().to_owned();
    assert!(value.starts_with("vtk_") && value.len() == 44);
    assert_eq!(created["name"], "ci-deploy");
    assert_eq!(created.raw("spend_limit"), "25.0000");
    let id = created["id"].as_str().unwrap().to_owned();

    // The token authenticates API routes, and answers carry the balance header.
    let res = app.get("/api/me", Some(&value)).await;
    assert_eq!(res.headers()["x-balance-remaining"], "0.0000");
    let me = expect_json(res, StatusCode::OK).await;
    assert_eq!(me["id"], user_id.as_str());

    // Listing never shows the value, only a hint. A token itself cannot list tokens.
    expect_error(
        app.get("/api/tokens", Some(&value)).await,
        StatusCode::FORBIDDEN,
        "Access tokens cannot manage tokens",
    )
    .await;
    let res = app.get("/api/tokens", Some(&jwt)).await;
    let text = res.text().await.unwrap();
    assert!(
        !text.contains(&value[4..]),
        "the value must never be listed"
    );
    let list = common::Body {
        value: serde_json::from_str(&text).unwrap(),
        text: text.clone(),
    };
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(list[0]["hint"], &value[value.len() - 4..]);
    assert_eq!(list.raw("spend_limit"), "25.0000");
    assert_eq!(list.raw("spent"), "0.0000");
    assert!(list[0]["last_used_at"].is_string(), "use is recorded");

    // Stored hashed.
    let stored: String = sqlx::query_scalar("SELECT token_hash FROM access_tokens WHERE id = $1")
        .bind(&id)
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(stored, domain::accounts::tokens::hash(&value));

    // Revoked: 401 at once, gone from the list.
    let res = app.delete(&format!("/api/tokens/{id}"), Some(&jwt)).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    expect_error(
        app.get("/api/me", Some(&value)).await,
        StatusCode::UNAUTHORIZED,
        "Invalid or expired token",
    )
    .await;
    let list = expect_json(app.get("/api/tokens", Some(&jwt)).await, StatusCode::OK).await;
    assert_eq!(list.as_array().unwrap().len(), 0);
    // Revoking twice: not found.
    expect_error(
        app.delete(&format!("/api/tokens/{id}"), Some(&jwt)).await,
        StatusCode::NOT_FOUND,
        "Token not found",
    )
    .await;
}

#[tokio::test]
async fn tokens_of_others_are_invisible() {
    let app = TestApp::spawn().await;
    let (_, alice) = app.user("alice").await;
    let (_, bob) = app.user("bob").await;
    let created = expect_json(
        app.post("/api/tokens", Some(&alice), json!({"name": "mine"}))
            .await,
        StatusCode::CREATED,
    )
    .await;
    let id = created["id"].as_str().unwrap();
    let bobs = expect_json(app.get("/api/tokens", Some(&bob)).await, StatusCode::OK).await;
    assert_eq!(bobs.as_array().unwrap().len(), 0);
    expect_error(
        app.delete(&format!("/api/tokens/{id}"), Some(&bob)).await,
        StatusCode::NOT_FOUND,
        "not found",
    )
    .await;
    // Alice's token still works.
    let value = created["token"].as_str().unwrap();
    assert_eq!(
        app.get("/api/me", Some(value)).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn bad_token_requests_are_refused() {
    let app = TestApp::spawn().await;
    let (_, jwt) = app.user("tok").await;
    let cases = [
        (
            json!({"name": ""}),
            StatusCode::BAD_REQUEST,
            "name is required",
        ),
        (
            json!({"name": "x".repeat(101)}),
            StatusCode::BAD_REQUEST,
            "at most 100",
        ),
        (
            json!({"name": "ok", "spend_limit": -1}),
            StatusCode::BAD_REQUEST,
            "negative",
        ),
        (
            json!({"name": "ok", "spend_limit": "ten"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid type",
        ),
        (
            json!({}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "missing field `name`",
        ),
        (
            json!({"name": "ok", "scopes": ["read", "admin"]}),
            StatusCode::BAD_REQUEST,
            "Unknown scope `admin`",
        ),
    ];
    for (body, status, needle) in cases {
        expect_error(
            app.post("/api/tokens", Some(&jwt), body).await,
            status,
            needle,
        )
        .await;
    }
    expect_error(
        app.post("/api/tokens", None, json!({"name": "x"})).await,
        StatusCode::UNAUTHORIZED,
        "Authentication",
    )
    .await;
    let list = expect_json(app.get("/api/tokens", Some(&jwt)).await, StatusCode::OK).await;
    assert_eq!(list.as_array().unwrap().len(), 0, "nothing was created");
    // Wrong method on an API path: JSON 405, and unknown API paths: JSON 404.
    let res = app
        .client
        .put(app.url("/api/tokens"))
        .bearer_auth(&jwt)
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::METHOD_NOT_ALLOWED, "Method not allowed").await;
    expect_error(
        app.get("/api/nope", Some(&jwt)).await,
        StatusCode::NOT_FOUND,
        "Not found",
    )
    .await;
}

/// Tokens that cannot grow. Found on a running default: a token with a $0.01 spend limit made a
/// new token with no limit (which then rented a $3.23 server), and a limited token started
/// two-factor setup for its owner (which could lock them out). Now no token manages tokens,
/// two-factor or operator routes, and each reaches only what its scopes allow.
#[tokio::test]
async fn a_token_reaches_only_what_its_scopes_allow_and_never_mints_another() {
    let app = TestApp::spawn().await;
    let (_, jwt) = app.funded_user("scoped", 20.0).await;
    let make = |body: serde_json::Value| {
        let (app, jwt) = (&app, jwt.clone());
        async move {
            let created = expect_json(
                app.post("/api/tokens", Some(&jwt), body).await,
                StatusCode::CREATED,
            )
            .await;
            created["token"].as_str().unwrap().to_owned()
        }
    };
    let limited = make(json!({"name": "tiny", "spend_limit": 0.01})).await;

    // The confirmed findings: no new token, no two-factor setup, no operator route.
    expect_error(
        app.post("/api/tokens", Some(&limited), json!({"name": "bigger"}))
            .await,
        StatusCode::FORBIDDEN,
        "Access tokens cannot manage tokens",
    )
    .await;
    expect_error(
        app.post("/api/auth/2fa/setup", Some(&limited), json!({}))
            .await,
        StatusCode::FORBIDDEN,
        "two-factor",
    )
    .await;
    let live: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM access_tokens WHERE revoked_at IS NULL")
            .fetch_one(&app.state.db)
            .await
            .unwrap();
    assert_eq!(live, 1, "no token was minted");
    let secret: Option<String> =
        sqlx::query_scalar("SELECT totp_secret FROM users WHERE username = 'scoped'")
            .fetch_one(&app.state.db)
            .await
            .unwrap_or(None);
    assert!(secret.is_none(), "no two-factor setup was started");

    // Read-only: sees, changes nothing, cannot look inside.
    let reader = make(json!({"name": "monitor", "scopes": ["read"]})).await;
    let listed = expect_json(app.get("/api/tokens", Some(&jwt)).await, StatusCode::OK).await;
    let monitor = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "monitor")
        .unwrap()
        .clone();
    assert_eq!(monitor["scopes"], json!(["read"]));
    assert_eq!(
        app.get("/api/vps", Some(&reader)).await.status(),
        StatusCode::OK
    );
    expect_error(
        app.post(
            "/api/vps",
            Some(&reader),
            json!({"name": "x", "plan_id": "c-micro"}),
        )
        .await,
        StatusCode::FORBIDDEN,
        "lacks the `spend` scope",
    )
    .await;

    // Machines but not spend: may power and delete, may not create or rent.
    let operator_of_machines = make(json!({"name": "ops", "scopes": ["machines"]})).await;
    let vps = expect_json(
        app.post(
            "/api/vps",
            Some(&jwt),
            json!({"name": "box", "plan_id": "nano"}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let id = vps["id"].as_str().unwrap().to_owned();
    app.run_jobs().await;
    expect_error(
        app.post(
            "/api/vps",
            Some(&operator_of_machines),
            json!({"name": "y", "plan_id": "nano"}),
        )
        .await,
        StatusCode::FORBIDDEN,
        "spend",
    )
    .await;
    expect_error(
        app.post(
            &format!("/api/vps/{id}/exec"),
            Some(&operator_of_machines),
            json!({"command": "id"}),
        )
        .await,
        StatusCode::FORBIDDEN,
        "lacks the `inside` scope",
    )
    .await;
    expect_error(
        app.get(
            &format!("/api/vps/{id}/files?path=/etc/hostname"),
            Some(&reader),
        )
        .await,
        StatusCode::FORBIDDEN,
        "inside",
    )
    .await;
    expect_error(
        app.post(&format!("/api/vps/{id}/stop"), Some(&reader), json!({}))
            .await,
        StatusCode::FORBIDDEN,
        "lacks the `machines` scope",
    )
    .await;
    let stopped = app
        .post(
            &format!("/api/vps/{id}/stop"),
            Some(&operator_of_machines),
            json!({}),
        )
        .await;
    assert_eq!(
        stopped.status(),
        StatusCode::ACCEPTED,
        "{:?}",
        stopped.text().await
    );

    // An operator's token does not reach operator routes (their two-factor sign-in would be
    // skipped); the operator's JWT does.
    let (_, admin_jwt) = app.admin("boss").await;
    let admin_token = expect_json(
        app.post(
            "/api/tokens",
            Some(&admin_jwt),
            json!({"name": "ops-script"}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    expect_error(
        app.get(
            "/api/admin/nodes",
            Some(admin_token["token"].as_str().unwrap()),
        )
        .await,
        StatusCode::FORBIDDEN,
        "operator routes",
    )
    .await;
    assert_eq!(
        app.get("/api/admin/nodes", Some(&admin_jwt)).await.status(),
        StatusCode::OK
    );

    // Under `/api/v1`, refusals come in its envelope like any of its errors.
    let refused = app
        .post("/api/v1/pools", Some(&reader), json!({"name": "Team"}))
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["statusCode"], 403, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("`machines`"),
        "{body}"
    );
    let expired = app.get("/api/v1/pools", Some("not-a-valid-jwt")).await;
    assert_eq!(expired.status(), StatusCode::UNAUTHORIZED);
    let body: serde_json::Value = expired.json().await.unwrap();
    assert_eq!(body["statusCode"], 401, "{body}");
}

/// Every route in the API document is in the scope table (`server::http::scopes`): one a token
/// may never reach is a token, two-factor, password or operator route, or one that takes no
/// credential at all. A new customer route left out of the table would refuse every token.
#[tokio::test]
async fn every_route_is_classified() {
    use hangar_server::http::scopes::{need, Need};
    let app = TestApp::spawn().await;
    let doc = expect_json(app.get("/openapi.json", None).await, StatusCode::OK).await;
    let person_only = [
        "/api/tokens",
        "/api/auth/2fa",
        "/api/auth/password",
        "/api/auth/email",
        "/api/auth/account",
        "/api/auth/sessions",
        "/api/admin",
    ];
    let no_credential = [
        "/api/auth/login",
        "/api/auth/register",
        "/api/billing/webhook",
    ];
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let Ok(method) = method.to_uppercase().parse::<axum::http::Method>() else {
                continue;
            };
            if method == axum::http::Method::OPTIONS {
                continue;
            }
            checked += 1;
            if need(&method, path) == Need::Person {
                assert!(
                    person_only.iter().any(|p| path.starts_with(p))
                        || no_credential.contains(&path.as_str()),
                    "{method} {path} is not in the scope table"
                );
            }
        }
    }
    assert!(checked > 100, "the document lists the routes ({checked})");
}
