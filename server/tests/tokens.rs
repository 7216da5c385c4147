//! Reference 002 "Access Tokens": create (value once), list, revoke, authenticate.

mod common;

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

    // Listing never shows the value, only a hint; a token can list tokens.
    let res = app.get("/api/tokens", Some(&value)).await;
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
