//! The `/api` dialect "Auth": register, login, /api/me, rate limits, CAPTCHA, balance header.

use crate::common;

use std::net::SocketAddr;

use axum::{routing::post, Form, Json, Router};
use common::{expect_error, expect_json, mails_to, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

#[tokio::test]
async fn register_then_login_then_me() {
    let app = TestApp::spawn().await;
    let res = app
        .post("/api/auth/register", None, json!({"email": " Jane@Example.com ", "username": "jane_admin", "password": "s3cret-Quokka-pass"}))
        .await;
    let me = expect_json(res, StatusCode::CREATED).await;
    assert_eq!(me["email"], "jane@example.com", "emails are normalised");
    assert_eq!(me["username"], "jane_admin");
    assert_eq!(me.raw("balance"), "0.0000");
    assert_eq!(me["id"].as_str().unwrap().len(), 24);

    let res = app
        .post(
            "/api/auth/login",
            None,
            json!({"email": "jane@example.com", "password": "s3cret-Quokka-pass"}),
        )
        .await;
    let body = expect_json(res, StatusCode::OK).await;
    let jwt = body["token"].as_str().unwrap();
    assert_eq!(jwt.split('.').count(), 3, "a JWT");
    let exp = body["expires_at"].as_i64().unwrap();
    let now = domain::infra::db::now_ms() / 1000;
    assert!((exp - now - 86_400).abs() < 5, "valid for 24 h");

    let res = app.get("/api/me", Some(jwt)).await;
    assert_eq!(res.headers()["x-balance-remaining"], "0.0000");
    let me2 = expect_json(res, StatusCode::OK).await;
    assert_eq!(me2["id"], me["id"]);
    assert_eq!(me2["email"], "jane@example.com");
    assert_eq!(me2["username"], "jane_admin");
    // The `/api` dialect prints the balance with four decimals.
    assert!(me2.text.contains("\"balance\":0.0000"));
}

#[tokio::test]
async fn duplicate_email_or_username_is_a_conflict() {
    let app = TestApp::spawn().await;
    app.register("sam").await;
    let res = app
        .post(
            "/api/auth/register",
            None,
            json!({"email": "SAM@example.com", "username": "other", "password": "Quokka-lunar-Orbit-77"}),
        )
        .await;
    expect_error(res, StatusCode::CONFLICT, "email").await;
    let res = app
        .post(
            "/api/auth/register",
            None,
            json!({"email": "new@example.com", "username": "SAM", "password": "Quokka-lunar-Orbit-77"}),
        )
        .await;
    expect_error(res, StatusCode::CONFLICT, "username").await;
}

#[tokio::test]
async fn invalid_registrations_are_refused_with_a_reason() {
    let app = TestApp::builder()
        .config("auth_rate_limit_per_minute", "1000")
        .spawn()
        .await;
    let cases = [
        (
            json!({"email": "not-an-email", "username": "a", "password": "Quokka-lunar-Orbit-77"}),
            StatusCode::BAD_REQUEST,
            "Email",
        ),
        (
            json!({"email": "a@example.com", "username": "has space", "password": "Quokka-lunar-Orbit-77"}),
            StatusCode::BAD_REQUEST,
            "Username",
        ),
        (
            json!({"email": "a@example.com", "username": "x".repeat(101), "password": "Quokka-lunar-Orbit-77"}),
            StatusCode::BAD_REQUEST,
            "at most 100",
        ),
        (
            json!({"email": "a@example.com", "username": "", "password": "Quokka-lunar-Orbit-77"}),
            StatusCode::BAD_REQUEST,
            "Username is required",
        ),
        (
            json!({"email": "a@example.com", "username": "ok", "password": "short"}),
            StatusCode::BAD_REQUEST,
            "at least 8",
        ),
        // Long enough but easy to guess: a very common password, the account's own name with
        // a year, a keyboard walk.
        (
            json!({"email": "a@example.com", "username": "ok", "password": "password1"}),
            StatusCode::BAD_REQUEST,
            "very common password",
        ),
        (
            json!({"email": "samantha@example.com", "username": "samantha", "password": "samantha2026"}),
            StatusCode::BAD_REQUEST,
            "too easy to guess",
        ),
        (
            json!({"email": "a@example.com", "username": "ok", "password": "qwertyuiop"}),
            StatusCode::BAD_REQUEST,
            "too easy to guess",
        ),
        (
            json!({"email": "a@example.com", "username": "ok", "password": "p".repeat(300)}),
            StatusCode::BAD_REQUEST,
            "at most 256",
        ),
        (
            json!({"email": format!("{}@example.com", "e".repeat(300)), "username": "ok", "password": "Quokka-lunar-Orbit-77"}),
            StatusCode::BAD_REQUEST,
            "at most 254",
        ),
        (
            json!({"email": "a@example.com", "password": "Quokka-lunar-Orbit-77"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "missing field `username`",
        ),
        (
            json!({"email": "a@example.com", "username": 5, "password": "Quokka-lunar-Orbit-77"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid type",
        ),
    ];
    for (body, status, needle) in cases {
        let res = app.post("/api/auth/register", None, body.clone()).await;
        expect_error(res, status, needle).await;
    }
    // Malformed JSON and a missing content type.
    let res = app
        .client
        .post(app.url("/api/auth/register"))
        .header("content-type", "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::BAD_REQUEST, "Malformed JSON").await;
    let res = app
        .client
        .post(app.url("/api/auth/register"))
        .body("email=a")
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::UNSUPPORTED_MEDIA_TYPE, "application/json").await;
    // Nothing was created by any of it.
    let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(users, 0);
}

#[tokio::test]
async fn oversized_bodies_are_refused_as_json() {
    let app = TestApp::builder()
        .config("max_body_bytes", "4096")
        .spawn()
        .await;
    let big = "x".repeat(10_000);
    let res = app
        .post(
            "/api/auth/register",
            None,
            json!({"email": "a@example.com", "username": "u", "password": big}),
        )
        .await;
    expect_error(res, StatusCode::PAYLOAD_TOO_LARGE, "too large").await;
}

#[tokio::test]
async fn wrong_credentials_are_one_answer() {
    let app = TestApp::spawn().await;
    app.register("kim").await;
    let wrong_pw = app
        .post(
            "/api/auth/login",
            None,
            json!({"email": "kim@example.com", "password": "nope-nope"}),
        )
        .await;
    let body_a = expect_error(
        wrong_pw,
        StatusCode::UNAUTHORIZED,
        "Invalid email or password",
    )
    .await;
    let unknown = app
        .post(
            "/api/auth/login",
            None,
            json!({"email": "who@example.com", "password": "nope-nope"}),
        )
        .await;
    let body_b = expect_error(
        unknown,
        StatusCode::UNAUTHORIZED,
        "Invalid email or password",
    )
    .await;
    assert_eq!(
        body_a.value, body_b.value,
        "unknown emails are indistinguishable from wrong passwords"
    );
}

#[tokio::test]
async fn protected_routes_need_a_valid_credential() {
    let app = TestApp::spawn().await;
    let res = app.get("/api/me", None).await;
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
    expect_error(res, StatusCode::UNAUTHORIZED, "Authentication required").await;
    for bad in [
        "garbage",
        "eyJhbGciOiJIUzI1NiJ9.e30.sig",
        "vtk_doesnotexist",
    ] {
        let res = app.get("/api/me", Some(bad)).await;
        assert!(res.headers().get("x-balance-remaining").is_none());
        expect_error(res, StatusCode::UNAUTHORIZED, "Invalid or expired token").await;
    }
    // A JWT signed by another server's key is refused.
    let other =
        domain::accounts::jwt::JwtKeys::new(&domain::infra::config::Secret::new("other-key"), 3600);
    let (forged, _) = other.issue("someone", 0).unwrap();
    expect_error(
        app.get("/api/me", Some(&forged)).await,
        StatusCode::UNAUTHORIZED,
        "Invalid",
    )
    .await;
}

#[tokio::test]
async fn login_and_register_are_rate_limited_per_ip() {
    let app = TestApp::builder()
        .config("auth_rate_limit_per_minute", "10")
        .spawn()
        .await;
    for i in 0..10 {
        let res = app
            .post(
                "/api/auth/login",
                None,
                json!({"email": "x@example.com", "password": "whatever1"}),
            )
            .await;
        assert_eq!(
            res.status(),
            StatusCode::UNAUTHORIZED,
            "attempt {i} is not limited yet"
        );
    }
    let res = app
        .post(
            "/api/auth/login",
            None,
            json!({"email": "x@example.com", "password": "whatever1"}),
        )
        .await;
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    expect_error(res, StatusCode::TOO_MANY_REQUESTS, "Too many requests").await;
    // Register has its own budget, and other routes are not limited.
    let res = app
        .post(
            "/api/auth/register",
            None,
            json!({"email": "r@example.com", "username": "r", "password": "Quokka-lunar-Orbit-77"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(app.get("/health", None).await.status(), StatusCode::OK);
}

/// Guessing one account's password from many addresses gets five tries per quarter hour: the
/// sixth attempt answers 429 even with the right password, and the block lifts by itself.
#[tokio::test]
async fn an_account_refuses_sign_ins_after_five_wrong_passwords() {
    let app = TestApp::spawn().await;
    app.register("guarded").await;
    let right = "guarded-lunar-Quokka-42";
    let login = |password: &str| {
        app.post(
            "/api/auth/login",
            None,
            json!({"email": "guarded@example.com", "password": password}),
        )
    };
    // A correct password in between resets the count.
    for _ in 0..4 {
        assert_eq!(login("wrong-pass").await.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(login(right).await.status(), StatusCode::OK);
    for _ in 0..5 {
        assert_eq!(login("wrong-pass").await.status(), StatusCode::UNAUTHORIZED);
    }
    expect_error(
        login(right).await,
        StatusCode::TOO_MANY_REQUESTS,
        "Too many failed attempts for this account. Try again in 15 minutes.",
    )
    .await;
    // Other accounts are not affected.
    app.register("bystander").await;
    app.login("bystander").await;
    // A quarter hour later (moved in the database), the right password works again.
    sqlx::query("UPDATE users SET login_blocked_until = 1 WHERE email = 'guarded@example.com'")
        .execute(&app.state.db)
        .await
        .unwrap();
    assert_eq!(login(right).await.status(), StatusCode::OK);
}

/// A stand-in for Cloudflare's siteverify endpoint speaking its wire format: form fields
/// `secret`, `response`, `remoteip`; JSON `{"success": bool}`.
async fn fake_turnstile() -> SocketAddr {
    async fn verify(Form(form): Form<std::collections::HashMap<String, String>>) -> Json<Value> {
        let ok = form.get("secret").map(String::as_str) == Some("turnstile-secret")
            && form.get("response").map(String::as_str) == Some("good-token")
            && form.contains_key("remoteip");
        Json(
            json!({ "success": ok, "error-codes": if ok { json!([]) } else { json!(["invalid-input-response"]) } }),
        )
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, Router::new().route("/siteverify", post(verify)))
            .await
            .unwrap();
    });
    addr
}

#[tokio::test]
async fn captcha_is_checked_when_configured() {
    let verifier = fake_turnstile().await;
    let app = TestApp::builder()
        .config("turnstile_secret", "turnstile-secret")
        .config(
            "turnstile_verify_url",
            &format!("http://{verifier}/siteverify"),
        )
        .spawn()
        .await;
    let base =
        json!({"email": "c@example.com", "username": "cap", "password": "Quokka-lunar-Orbit-77"});
    // The sign-up page can load Turnstile's widget: its script and frame pass the page's CSP.
    let page = TestApp::builder()
        .config("turnstile_site_key", "1x00000000000000000000AA")
        .spawn()
        .await
        .get("/signup", None)
        .await;
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("'wasm-unsafe-eval' https://challenges.cloudflare.com;")
            && csp.contains("frame-src https://challenges.cloudflare.com"),
        "{csp}"
    );
    assert!(page
        .text()
        .await
        .unwrap()
        .contains("challenges.cloudflare.com/turnstile/v0/api.js"));
    let res = app.post("/api/auth/register", None, base.clone()).await;
    expect_error(res, StatusCode::BAD_REQUEST, "CAPTCHA verification failed").await;
    let mut bad = base.clone();
    bad["cf-turnstile-response"] = json!("bad-token");
    expect_error(
        app.post("/api/auth/register", None, bad).await,
        StatusCode::BAD_REQUEST,
        "CAPTCHA",
    )
    .await;
    let mut good = base.clone();
    good["cf-turnstile-response"] = json!("good-token");
    expect_json(
        app.post("/api/auth/register", None, good).await,
        StatusCode::CREATED,
    )
    .await;

    // A verifier that cannot be reached refuses registration rather than letting it through.
    let app = TestApp::builder()
        .config("turnstile_secret", "turnstile-secret")
        .config("turnstile_verify_url", "http://127.0.0.1:9/siteverify")
        .spawn()
        .await;
    let mut good = base.clone();
    good["cf-turnstile-response"] = json!("good-token");
    expect_error(
        app.post("/api/auth/register", None, good).await,
        StatusCode::BAD_REQUEST,
        "CAPTCHA",
    )
    .await;
}

#[tokio::test]
async fn passwords_are_stored_as_argon2id() {
    let app = TestApp::spawn().await;
    app.register("hash_check").await;
    let hash: String =
        sqlx::query_scalar("SELECT password_hash FROM users WHERE username = 'hash_check'")
            .fetch_one(&app.state.db)
            .await
            .unwrap();
    assert!(hash.starts_with("$argon2id$"));
    assert!(!hash.contains("password-hash_check"));
}

/// The audit log read back: each user sees their own actions (and nobody else's), filtered by
/// kind and paged; operators see everyone's, by user; customers cannot.
#[tokio::test]
async fn everyone_reads_their_own_activity_and_operators_read_all() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin("ops").await;
    let (uid, user) = app.user("actor").await;
    let (other_id, other) = app.user("someone").await;
    for name in ["ci-1", "ci-2", "ci-3"] {
        // Distinct milliseconds, so "newest first" has one answer to check.
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
        expect_json(
            app.post("/api/tokens", Some(&user), json!({"name": name}))
                .await,
            StatusCode::CREATED,
        )
        .await;
    }
    expect_json(
        app.post("/api/tokens", Some(&other), json!({"name": "theirs"}))
            .await,
        StatusCode::CREATED,
    )
    .await;
    app.credit(&admin, &uid, 5.0).await;

    let mine = expect_json(app.get("/api/audit", Some(&user)).await, StatusCode::OK).await;
    let actions: Vec<&str> = mine
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    // Newest first; only this user's own acts (the operator's credit is the operator's act).
    assert_eq!(
        actions,
        [
            "token.create",
            "token.create",
            "token.create",
            "user.sign_in",
            "user.register"
        ],
        "{}",
        mine.text
    );
    assert!(mine
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["actor_id"] == uid.as_str() && e["actor"] == "actor"));
    assert_eq!(mine[0]["details"]["name"], "ci-3", "{}", mine.text);

    // Kind filter and paging by time.
    let tokens = expect_json(
        app.get("/api/audit?action=token.&limit=2", Some(&user))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(tokens.as_array().unwrap().len(), 2);
    let before = tokens[1]["id"].as_str().unwrap();
    let next = expect_json(
        app.get(
            &format!("/api/audit?action=token.&before={before}"),
            Some(&user),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let seen: Vec<&str> = tokens
        .as_array()
        .unwrap()
        .iter()
        .chain(next.as_array().unwrap())
        .map(|e| e["details"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(seen, ["ci-3", "ci-2", "ci-1"]);
    expect_error(
        app.get("/api/audit?limit=5000", Some(&user)).await,
        StatusCode::BAD_REQUEST,
        "limit must be between 1 and 200",
    )
    .await;
    expect_error(
        app.get("/api/audit?before=yesterday", Some(&user)).await,
        StatusCode::BAD_REQUEST,
        "before must be the id of an entry",
    )
    .await;

    // Operators: anyone's, by user; the credit shows as the operator's act on the customer.
    assert_eq!(
        app.get("/api/admin/audit", Some(&user)).await.status(),
        StatusCode::FORBIDDEN
    );
    let theirs = expect_json(
        app.get(
            &format!("/api/admin/audit?user_id={other_id}"),
            Some(&admin),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert!(theirs
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["actor_id"] == other_id.as_str()));
    assert_eq!(theirs[0]["details"]["name"], "theirs");
    let credits = expect_json(
        app.get("/api/admin/audit?action=user.credit", Some(&admin))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(credits.as_array().unwrap().len(), 1, "{}", credits.text);
    assert_eq!(credits[0]["target_id"], uid.as_str());
}

/// Two-factor sign-in over the API: set-up changes nothing until a code confirms it; then a
/// password alone is refused with a request for the code, a code works once per time step, a
/// recovery code works once, wrong codes count towards the account throttle, and turning it off
/// needs the password and a code. Both changes are in the caller's audit log.
#[tokio::test]
async fn two_factor_sign_in_asks_for_a_fresh_code_after_the_password() {
    use domain::accounts::totp::code_for;
    let app = TestApp::spawn().await;
    let (_, token) = app.user("mallory2fa").await;
    let login = |code: Option<String>| {
        let mut body =
            json!({"email": "mallory2fa@example.com", "password": "mallory2fa-lunar-Quokka-42"});
        if let Some(code) = code {
            body["code"] = json!(code);
        }
        app.post("/api/auth/login", None, body)
    };

    // Enabling needs a set-up first, and a matching code.
    expect_error(
        app.post(
            "/api/auth/2fa/enable",
            Some(&token),
            json!({"code": "123456"}),
        )
        .await,
        StatusCode::CONFLICT,
        "set-up",
    )
    .await;
    let setup = expect_json(
        app.post("/api/auth/2fa/setup", Some(&token), json!({}))
            .await,
        StatusCode::OK,
    )
    .await;
    let secret = setup["secret"].as_str().unwrap().to_owned();
    assert!(setup["otpauth_uri"]
        .as_str()
        .unwrap()
        .starts_with("otpauth://totp/"));
    assert!(setup["otpauth_uri"].as_str().unwrap().contains(&secret));
    // A pending key changes nothing at sign-in.
    assert_eq!(login(None).await.status(), StatusCode::OK);
    let now = domain::infra::db::now_ms();
    let wrong = format!(
        "{:06}",
        (code_for(&secret, now).unwrap().parse::<u32>().unwrap() + 1) % 1_000_000
    );
    expect_error(
        app.post("/api/auth/2fa/enable", Some(&token), json!({"code": wrong}))
            .await,
        StatusCode::BAD_REQUEST,
        "does not match",
    )
    .await;
    let enabled = expect_json(
        app.post(
            "/api/auth/2fa/enable",
            Some(&token),
            json!({"code": code_for(&secret, now)}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let recovery: Vec<String> = serde_json::from_value(enabled["recovery_codes"].clone()).unwrap();
    assert_eq!(recovery.len(), 10);
    let me = expect_json(app.get("/api/me", Some(&token)).await, StatusCode::OK).await;
    assert_eq!(me["two_factor"], true);

    // The password alone now asks for the code; the code used to enable cannot be replayed.
    expect_error(
        login(None).await,
        StatusCode::UNAUTHORIZED,
        "authenticator app",
    )
    .await;
    // A used code is told apart from a wrong one: the person only has to wait for the next.
    expect_error(
        login(code_for(&secret, now)).await,
        StatusCode::UNAUTHORIZED,
        "was just used: wait for the next one",
    )
    .await;
    // The next step's code (within the accepted skew) signs in, once.
    let next = code_for(&secret, now + 30_000);
    assert_eq!(login(next.clone()).await.status(), StatusCode::OK);
    expect_error(login(next).await, StatusCode::UNAUTHORIZED, "was just used").await;
    expect_error(
        login(Some("000000".into())).await,
        StatusCode::UNAUTHORIZED,
        "not right",
    )
    .await;
    // A recovery code signs in once, typed with spaces and capitals or not.
    let typed = format!(" {} ", recovery[0].to_uppercase());
    assert_eq!(login(Some(typed)).await.status(), StatusCode::OK);
    expect_error(
        login(Some(recovery[0].clone())).await,
        StatusCode::UNAUTHORIZED,
        "not right",
    )
    .await;

    // Turning it off needs the password and a code.
    expect_error(
        app.post(
            "/api/auth/2fa/disable",
            Some(&token),
            json!({"password": "nope-nope", "code": recovery[1]}),
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "password",
    )
    .await;
    let res = app
        .post(
            "/api/auth/2fa/disable",
            Some(&token),
            json!({"password": "mallory2fa-lunar-Quokka-42", "code": recovery[1]}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(login(None).await.status(), StatusCode::OK);

    let audit = expect_json(app.get("/api/audit", Some(&token)).await, StatusCode::OK).await;
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"two_factor.enable") && actions.contains(&"two_factor.disable"),
        "{actions:?}"
    );
}

/// Wrong two-factor codes count as failed sign-ins: five in a row block the account.
#[tokio::test]
async fn wrong_two_factor_codes_count_towards_the_account_throttle() {
    use domain::accounts::totp::code_for;
    let app = TestApp::spawn().await;
    let (_, token) = app.user("guess2fa").await;
    let secret = turn_on_two_factor(&app, &token).await.0;
    let now = domain::infra::db::now_ms();
    for _ in 0..5 {
        let res = app
            .post("/api/auth/login", None, json!({"email": "guess2fa@example.com", "password": "guess2fa-lunar-Quokka-42", "code": "000000"}))
            .await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let res = app
        .post(
            "/api/auth/login",
            None,
            json!({"email": "guess2fa@example.com", "password": "guess2fa-lunar-Quokka-42",
            "code": code_for(&secret, now + 30_000)}),
        )
        .await;
    assert_eq!(
        res.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "blocked even with the right code"
    );
}

/// With `require_operator_two_factor`, an operator without two-factor sign-in is refused by
/// every operator route (and told why) until they turn it on; their own account still works.
#[tokio::test]
async fn operators_can_be_required_to_use_two_factor_sign_in() {
    let app = TestApp::builder()
        .config("require_operator_two_factor", "true")
        .spawn()
        .await;
    let (_, token) = app.admin("strictop").await;
    expect_error(
        app.get("/api/admin/nodes", Some(&token)).await,
        StatusCode::FORBIDDEN,
        "two-factor",
    )
    .await;
    assert_eq!(
        app.get("/api/me", Some(&token)).await.status(),
        StatusCode::OK
    );
    turn_on_two_factor(&app, &token).await;
    assert_eq!(
        app.get("/api/admin/nodes", Some(&token)).await.status(),
        StatusCode::OK
    );
}

/// Sets two-factor sign-in up and turns it on with the current code; returns the key and the
/// recovery codes.
async fn turn_on_two_factor(app: &TestApp, token: &str) -> (String, Vec<String>) {
    let setup = expect_json(
        app.post("/api/auth/2fa/setup", Some(token), json!({}))
            .await,
        StatusCode::OK,
    )
    .await;
    let secret = setup["secret"].as_str().unwrap().to_owned();
    let code = domain::accounts::totp::code_for(&secret, domain::infra::db::now_ms());
    let on = expect_json(
        app.post("/api/auth/2fa/enable", Some(token), json!({ "code": code }))
            .await,
        StatusCode::OK,
    )
    .await;
    let recovery = serde_json::from_value(on["recovery_codes"].clone()).unwrap();
    (secret, recovery)
}

/// Turning two-factor off is throttled like sign-in: wrong passwords and wrong codes each count,
/// and five in a row refuse even the right pair for a quarter hour. Before, a stolen session
/// could guess the password there as fast as it liked.
#[tokio::test]
async fn wrong_attempts_to_turn_two_factor_off_count_and_block() {
    use domain::accounts::totp::code_for;
    let app = TestApp::spawn().await;
    let (_, token) = app.user("offguess").await;
    let secret = turn_on_two_factor(&app, &token).await.0;
    for body in [
        json!({"password": "wrong-1", "code": "000000"}),
        json!({"password": "wrong-2", "code": "000000"}),
        json!({"password": "offguess-lunar-Quokka-42", "code": "000000"}),
        json!({"password": "wrong-3", "code": "000000"}),
        json!({"password": "offguess-lunar-Quokka-42", "code": "111111"}),
    ] {
        let res = app.post("/api/auth/2fa/disable", Some(&token), body).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let right = json!({"password": "offguess-lunar-Quokka-42",
        "code": code_for(&secret, domain::infra::db::now_ms() + 30_000)});
    expect_error(
        app.post("/api/auth/2fa/disable", Some(&token), right).await,
        StatusCode::TOO_MANY_REQUESTS,
        "Too many failed attempts",
    )
    .await;
    let me = expect_json(app.get("/api/me", Some(&token)).await, StatusCode::OK).await;
    assert_eq!(me["two_factor"], true, "still on");
}

/// A person takes credentials back: a password change ends every JWT (the caller's too) but
/// not access tokens; "sign out everywhere" ends every JWT, and with `revoke_tokens` every token.
/// Wrong current passwords count toward the block; no access token reaches either route.
#[tokio::test]
async fn a_password_change_and_sign_out_everywhere_end_every_other_credential() {
    let app = TestApp::spawn().await;
    let (_, first) = app.user("pat").await;
    let second = app.login("pat").await;
    let token = expect_json(
        app.post("/api/tokens", Some(&first), json!({"name": "ci"}))
            .await,
        StatusCode::CREATED,
    )
    .await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let change = |jwt: String, current: &'static str, new: &'static str| {
        let app = &app;
        async move {
            app.post(
                "/api/auth/password",
                Some(&jwt),
                json!({"current_password": current, "new_password": new}),
            )
            .await
        }
    };
    expect_error(
        change(
            token.clone(),
            "pat-lunar-Quokka-42",
            "a whole new passphrase",
        )
        .await,
        StatusCode::FORBIDDEN,
        "Access tokens cannot",
    )
    .await;
    expect_error(
        change(first.clone(), "not it", "a whole new passphrase").await,
        StatusCode::UNAUTHORIZED,
        "not right",
    )
    .await;
    expect_error(
        change(first.clone(), "pat-lunar-Quokka-42", "short").await,
        StatusCode::BAD_REQUEST,
        "at least 8",
    )
    .await;
    assert_eq!(
        change(
            first.clone(),
            "pat-lunar-Quokka-42",
            "a whole new passphrase"
        )
        .await
        .status(),
        StatusCode::NO_CONTENT
    );
    for jwt in [&first, &second] {
        assert_eq!(
            app.get("/api/me", Some(jwt)).await.status(),
            StatusCode::UNAUTHORIZED,
            "a JWT from before the change is over"
        );
    }
    assert_eq!(
        app.get("/api/me", Some(&token)).await.status(),
        StatusCode::OK
    );
    let login = |password: &'static str| {
        let app = &app;
        async move {
            app.post(
                "/api/auth/login",
                None,
                json!({"email": "pat@example.com", "password": password}),
            )
            .await
        }
    };
    assert_eq!(
        login("pat-lunar-Quokka-42").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let third = expect_json(login("a whole new passphrase").await, StatusCode::OK).await["token"]
        .as_str()
        .unwrap()
        .to_owned();

    // Sign out everywhere, keeping tokens; then again, revoking them.
    let out = expect_json(
        app.post("/api/auth/sessions/revoke", Some(&third), json!({}))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(out["tokens_revoked"], 0);
    assert_eq!(
        app.get("/api/me", Some(&third)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.get("/api/me", Some(&token)).await.status(),
        StatusCode::OK
    );
    let fourth = expect_json(login("a whole new passphrase").await, StatusCode::OK).await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = expect_json(
        app.post(
            "/api/auth/sessions/revoke",
            Some(&fourth),
            json!({"revoke_tokens": true}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(out["tokens_revoked"], 1);
    assert_eq!(
        app.get("/api/me", Some(&token)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.get("/api/me", Some(&fourth)).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

/// Sign-ins are in the account's activity, the failed ones with their reason and origin, so an
/// owner sees a stranger's attempts; an unknown email writes nothing anywhere; the portal shows
/// them as sentences with names instead of ids.
#[tokio::test]
async fn sign_ins_and_failed_sign_ins_are_in_the_owners_activity() {
    let app = TestApp::spawn().await;
    let (uid, token) = app.user("watched").await;
    let attempt = |password: &str| {
        app.post(
            "/api/auth/login",
            None,
            json!({"email": "watched@example.com", "password": password}),
        )
    };
    assert_eq!(attempt("guess-1").await.status(), StatusCode::UNAUTHORIZED);
    let strangers = app
        .post(
            "/api/auth/login",
            None,
            json!({"email": "nobody@example.com", "password": "guess"}),
        )
        .await;
    assert_eq!(strangers.status(), StatusCode::UNAUTHORIZED);
    let mine = expect_json(
        app.get("/api/audit?action=user.sign_in", Some(&token))
            .await,
        StatusCode::OK,
    )
    .await;
    let entries = mine.as_array().unwrap();
    assert_eq!(entries.len(), 2, "{}", mine.text);
    assert_eq!(entries[0]["action"], "user.sign_in_failed");
    assert_eq!(entries[0]["details"]["reason"], "wrong password");
    assert_eq!(entries[0]["details"]["via"], "api");
    assert_eq!(entries[0]["details"]["ip"], "127.0.0.1");
    assert_eq!(entries[0]["target_name"], "watched");
    assert_eq!(entries[1]["action"], "user.sign_in");
    assert!(
        !mine.text.contains("guess"),
        "no password is ever written down: {}",
        mine.text
    );
    let everything: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action LIKE 'user.sign_in%'")
            .fetch_one(&app.state.db)
            .await
            .unwrap();
    assert_eq!(everything, 2, "the unknown email wrote nothing");

    // Names, not ids: a machine's entries carry its current name.
    let (_, admin) = app.admin("ops").await;
    app.credit(&admin, &uid, 5.0).await;
    let vps = expect_json(
        app.post(
            "/api/vps",
            Some(&token),
            json!({"name": "web-1", "plan_id": "nano"}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let created = expect_json(
        app.get("/api/audit?action=instance.create", Some(&token))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(created[0]["target_id"], vps["id"]);
    assert_eq!(created[0]["target_name"], "web-1", "{}", created.text);
}

/// Changing the sign-in email: nothing changes until the link mailed to the new address is
/// followed; the old address hears of the request and of the change; a link works once.
#[tokio::test]
async fn the_sign_in_email_changes_only_through_the_link_sent_to_the_new_address() {
    let Some(smtp_url) = common::smtp() else {
        return;
    };
    let app = TestApp::builder()
        .config("smtp_url", &smtp_url)
        .config("public_url", "https://hangar.example")
        .spawn()
        .await;
    let tag = &domain::infra::db::new_id()[..10];
    let name = format!("mover{tag}");
    let (_, token) = app.user(&name).await;
    let old = format!("{name}@example.com");
    let new = format!("moved-{tag}@example.com");
    let ask = |body: Value| app.post("/api/auth/email", Some(&token), body);
    expect_error(
        ask(json!({"email": new, "password": "not it"})).await,
        StatusCode::UNAUTHORIZED,
        "not right",
    )
    .await;
    expect_error(
        ask(json!({"email": "no-at-sign", "password": format!("{name}-lunar-Quokka-42")})).await,
        StatusCode::BAD_REQUEST,
        "mail",
    )
    .await;
    app.register(&format!("taken{tag}")).await;
    expect_error(
        ask(json!({"email": format!("taken{tag}@example.com"), "password": format!("{name}-lunar-Quokka-42")})).await,
        StatusCode::CONFLICT,
        "already uses",
    )
    .await;
    let pending = expect_json(
        ask(json!({"email": new, "password": format!("{name}-lunar-Quokka-42")})).await,
        StatusCode::ACCEPTED,
    )
    .await;
    assert_eq!(pending["email"], new.as_str());
    // Not yet: the account still signs in with the old address.
    let me = expect_json(app.get("/api/me", Some(&token)).await, StatusCode::OK).await;
    assert_eq!(me["email"], old.as_str());
    let told = mails_to(&old);
    assert!(
        told.iter().any(|m| m.contains(&new) && m.contains("asked")),
        "{told:?}"
    );
    let link_mail = mails_to(&new);
    assert_eq!(link_mail.len(), 1);
    let link = link_mail[0]
        .split_whitespace()
        .find(|w| w.starts_with("https://hangar.example/account/email?token="))
        .unwrap_or_else(|| panic!("a link: {}", link_mail[0]));
    let link_token = link.rsplit('=').next().unwrap().to_owned();
    assert!(
        !mails_to(&old).iter().any(|m| m.contains(&link_token)),
        "the old address never sees the link"
    );
    let stored: String = sqlx::query_scalar("SELECT token_hash FROM email_changes")
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_ne!(stored, link_token, "only a hash of the token is kept");

    let confirm = |t: &str| app.post("/api/auth/email/confirm", None, json!({"token": t}));
    expect_error(
        confirm("ffffffff").await,
        StatusCode::BAD_REQUEST,
        "not valid",
    )
    .await;
    let me = expect_json(confirm(&link_token).await, StatusCode::OK).await;
    assert_eq!(me["email"], new.as_str());
    expect_error(
        confirm(&link_token).await,
        StatusCode::BAD_REQUEST,
        "not valid",
    )
    .await;
    let signs_in = |email: String| {
        app.post(
            "/api/auth/login",
            None,
            json!({"email": email, "password": format!("{name}-lunar-Quokka-42")}),
        )
    };
    assert_eq!(signs_in(new.clone()).await.status(), StatusCode::OK);
    assert_eq!(
        signs_in(old.clone()).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert!(mails_to(&old).iter().any(|m| m.contains("was changed")));
    // Tokens cannot change the email.
    let pat = expect_json(
        app.post("/api/tokens", Some(&token), json!({"name": "ci"}))
            .await,
        StatusCode::CREATED,
    )
    .await;
    let pat = pat["token"].as_str().unwrap().to_owned();
    assert_eq!(
        app.post(
            "/api/auth/email",
            Some(&pat),
            json!({"email": "x@example.com", "password": "x"})
        )
        .await
        .status(),
        StatusCode::FORBIDDEN
    );
}

/// Deleting an account: refused while it has machines (saying so), then its email and username
/// are free again, every credential ends, and its money records stay.
#[tokio::test]
async fn deleting_an_account_releases_its_names_and_ends_its_credentials() {
    let app = TestApp::spawn().await;
    let (uid, token) = app.funded_user("leaver", 5.0).await;
    let pat = expect_json(
        app.post("/api/tokens", Some(&token), json!({"name": "ci"}))
            .await,
        StatusCode::CREATED,
    )
    .await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let vps = expect_json(
        app.post(
            "/api/vps",
            Some(&token),
            json!({"name": "last", "plan_id": "nano"}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    app.run_jobs().await;
    let delete = |password: &str| {
        app.delete_json(
            "/api/auth/account",
            Some(&token),
            json!({"password": password}),
        )
    };
    expect_error(delete("wrong").await, StatusCode::UNAUTHORIZED, "not right").await;
    expect_error(
        delete("leaver-lunar-Quokka-42").await,
        StatusCode::CONFLICT,
        "Delete your 1 machine first",
    )
    .await;
    assert_eq!(
        app.delete_json(
            "/api/auth/account",
            Some(&pat),
            json!({"password": "leaver-lunar-Quokka-42"})
        )
        .await
        .status(),
        StatusCode::FORBIDDEN,
        "a token cannot delete its account"
    );
    expect_json(
        app.delete(
            &format!("/api/vps/{}", vps["id"].as_str().unwrap()),
            Some(&token),
        )
        .await,
        StatusCode::ACCEPTED,
    )
    .await;
    app.run_jobs().await;
    let res = delete("leaver-lunar-Quokka-42").await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);

    // Every credential ends; the names are free; the ledger still adds up.
    assert_eq!(
        app.get("/api/me", Some(&token)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.get("/api/vps", Some(&pat)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.post(
            "/api/auth/login",
            None,
            json!({"email": "leaver@example.com", "password": "leaver-lunar-Quokka-42"})
        )
        .await
        .status(),
        StatusCode::UNAUTHORIZED
    );
    let again = app.register("leaver").await;
    assert_ne!(
        again["id"].as_str().unwrap(),
        uid,
        "a new account with the old names"
    );
    let (balance, ledger) = app.money(&uid).await;
    assert_eq!(
        balance, ledger,
        "the records of the deleted account still add up"
    );
    let recorded: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_log WHERE action = 'user.delete' AND target_id = $1",
    )
    .bind(&uid)
    .fetch_one(&app.state.db)
    .await
    .unwrap();
    assert_eq!(recorded, 1);
}
