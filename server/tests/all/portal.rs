//! The browser flow without a browser: sessions, CSRF, sign up / in / out, tokens page.
//! (The same flow runs in Chromium in `end2end/`.)

use crate::common;

use common::{expect_json, TestApp};
use reqwest::{header, StatusCode};

/// The CSRF token rendered into a page's forms.
fn csrf_of(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).expect("page has a CSRF field") + marker.len();
    html[start..start + 32].to_owned()
}

async fn page(app: &TestApp, path: &str) -> String {
    // As a browser asks for a page.
    let res = app
        .client
        .get(app.url(path))
        .header(header::ACCEPT, "text/html")
        .send()
        .await
        .unwrap();
    res.text().await.unwrap()
}

/// Posts a form the way a browser without JavaScript does.
async fn post_form(
    app: &TestApp,
    fn_path: &str,
    from: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    app.client
        .post(app.url(fn_path))
        .header(header::ACCEPT, "text/html")
        .header(header::REFERER, app.url(from))
        .form(fields)
        .send()
        .await
        .unwrap()
}

/// Signs up from the sign-up page's form, as a browser without JavaScript does; the client keeps
/// the session cookie.
async fn sign_up(app: &TestApp, email: &str, username: &str) -> reqwest::Response {
    let csrf = csrf_of(&page(app, "/signup").await);
    post_form(
        app,
        "/_fn/sign_up",
        "/signup",
        &[
            ("csrf", &csrf),
            ("email", email),
            ("username", username),
            ("password", "1-lunar-Quokka-42"),
        ],
    )
    .await
}

fn location(res: &reqwest::Response) -> String {
    res.headers()
        .get(header::LOCATION)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

fn session_cookie(res: &reqwest::Response) -> Option<String> {
    res.headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .find_map(|v| {
            let v = v.to_str().ok()?;
            v.starts_with("hangar_session=")
                .then(|| v.split(';').next().unwrap().to_owned())
        })
}

#[tokio::test]
async fn sign_up_sign_out_and_sign_in_without_javascript() {
    let _pages = common::PAGES.lock().await;
    let app = TestApp::spawn().await;
    let signup = page(&app, "/signup").await;
    let csrf = csrf_of(&signup);

    let res = post_form(
        &app,
        "/_fn/sign_up",
        "/signup",
        &[
            ("csrf", &csrf),
            ("email", "web@example.com"),
            ("username", "web_user"),
            ("password", "web-lunar-Quokka-42"),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::FOUND);
    assert_eq!(location(&res), "/");
    let cookie = session_cookie(&res).expect("a fresh session cookie after signing up");
    let raw = res.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        raw.contains("HttpOnly") && raw.contains("SameSite=Lax"),
        "{raw}"
    );
    let _ = cookie;

    let account = page(&app, "/account").await;
    assert!(
        account.contains("web_user") && account.contains("web@example.com"),
        "account page shows the user"
    );
    assert!(account.contains("$0.0000"));

    // Sign out ends the session in the database.
    let csrf = csrf_of(&account);
    let before: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sessions")
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    let res = post_form(&app, "/_fn/sign_out", "/account", &[("csrf", &csrf)]).await;
    assert_eq!(res.status(), StatusCode::FOUND);
    let after: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sessions")
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(after, before - 1, "the session record is deleted");
    assert!(!page(&app, "/account").await.contains("web@example.com"));

    // Wrong password: back to the form with the error encoded for the page to show.
    let csrf = csrf_of(&page(&app, "/signin").await);
    let res = post_form(
        &app,
        "/_fn/sign_in",
        "/signin",
        &[
            ("csrf", &csrf),
            ("email", "web@example.com"),
            ("password", "wrong-password"),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::FOUND);
    let back = location(&res);
    assert!(
        back.contains("/signin") && back.contains("__err="),
        "{back}"
    );
    let shown = page(&app, &back.replace(&app.base, "")).await;
    assert!(
        shown.contains("Invalid email or password"),
        "the error is rendered without JavaScript"
    );

    let res = post_form(
        &app,
        "/_fn/sign_in",
        "/signin",
        &[
            ("csrf", &csrf),
            ("email", "web@example.com"),
            ("password", "web-lunar-Quokka-42"),
        ],
    )
    .await;
    assert_eq!(location(&res), "/");
    assert!(page(&app, "/account").await.contains("web_user"));
}

#[tokio::test]
async fn forms_without_the_session_csrf_token_change_nothing() {
    let _pages = common::PAGES.lock().await;
    let app = TestApp::spawn().await;
    let _ = page(&app, "/signup").await;
    for csrf in ["", "forged-token-forged-token-forged-"] {
        let res = post_form(
            &app,
            "/_fn/sign_up",
            "/signup",
            &[
                ("csrf", csrf),
                ("email", "x@example.com"),
                ("username", "xsrf"),
                ("password", "1-lunar-Quokka-42"),
            ],
        )
        .await;
        assert!(location(&res).contains("__err="), "refused");
    }
    let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(users, 0);
}

/// Right after signing in a browser sends several requests at once (the page it lands on, the
/// session's reload, another tab). They must all render the same CSRF token, the one the session
/// keeps: when the token was left for the first request to create, each concurrent request made
/// its own, the last save won, and a page could carry a token its first form was refused with.
#[tokio::test]
async fn pages_loaded_at_once_after_signing_in_share_one_csrf_token() {
    let _pages = common::PAGES.lock().await;
    let app = TestApp::spawn().await;
    let anonymous = csrf_of(&page(&app, "/signup").await);
    let res = sign_up(&app, "racer@example.com", "racer").await;
    assert!(res.status().is_redirection(), "{}", res.status());
    let pages = futures::future::join_all(
        [
            "/account",
            "/machines",
            "/billing",
            "/rentals",
            "/pools",
            "/tokens",
            "/",
            "/keys",
        ]
        .map(|path| page(&app, path)),
    )
    .await;
    let tokens: std::collections::BTreeSet<String> = pages.iter().map(|p| csrf_of(p)).collect();
    assert_eq!(tokens.len(), 1, "one token for every page: {tokens:?}");
    assert_ne!(
        tokens.first(),
        Some(&anonymous),
        "signing in gave a fresh token"
    );
    // And it is the session's: a form sent with it is taken.
    let token = tokens.first().unwrap().clone();
    assert!(page(&app, "/account").await.contains("racer@example.com"));
    post_form(&app, "/_fn/sign_out", "/account", &[("csrf", &token)]).await;
    assert!(
        !page(&app, "/account").await.contains("racer@example.com"),
        "signed out with the token the pages showed"
    );
}

#[tokio::test]
async fn a_signed_in_browser_stays_signed_in_across_a_restart() {
    let _pages = common::PAGES.lock().await;
    let app = TestApp::spawn().await;
    let res = sign_up(&app, "stay@example.com", "stayer").await;
    let cookie = session_cookie(&res).unwrap();
    let (db, _dir) = app.stop().await;

    let restarted = TestApp::builder().database(db).spawn().await;
    let html = restarted
        .client
        .get(restarted.url("/account"))
        .header(header::ACCEPT, "text/html")
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("stay@example.com"),
        "the session survived the restart"
    );
}

#[tokio::test]
async fn tokens_page_creates_shows_once_lists_and_revokes() {
    let _pages = common::PAGES.lock().await;
    let app = TestApp::spawn().await;
    sign_up(&app, "t@example.com", "tokens_user").await;
    let tokens_page = page(&app, "/tokens").await;
    assert!(tokens_page.contains("No tokens yet"));
    let csrf = csrf_of(&tokens_page);
    let res = post_form(
        &app,
        "/_fn/create_token",
        "/tokens",
        &[("csrf", &csrf), ("name", "laptop"), ("spend_limit", "12.5")],
    )
    .await;
    assert_eq!(res.status(), StatusCode::FOUND);

    let shown = page(&app, "/tokens").await;
    let marker = "data-test=\"new-token-value\"";
    let at = shown
        .find(marker)
        .unwrap_or_else(|| panic!("the new value is shown: {shown}"));
    let start = at + shown[at..].find('>').unwrap() + 1;
    let value = shown[start..start + 44].to_owned();
    assert!(value.starts_with("vtk_"), "{value}");
    assert!(shown.contains("laptop") && shown.contains("$12.5000"));
    // It works on the API, and the page never shows it again.
    assert_eq!(
        app.get("/api/me", Some(&value)).await.status(),
        StatusCode::OK
    );
    let again = page(&app, "/tokens").await;
    assert!(!again.contains(&value), "shown once only");

    let id: String = sqlx::query_scalar("SELECT id FROM access_tokens")
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    let csrf = csrf_of(&again);
    post_form(
        &app,
        "/_fn/revoke_token",
        "/tokens",
        &[("csrf", &csrf), ("id", &id)],
    )
    .await;
    assert_eq!(
        app.get("/api/me", Some(&value)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert!(page(&app, "/tokens").await.contains("No tokens yet"));
}

#[tokio::test]
async fn billing_page_shows_money_and_manages_alert_addresses() {
    let _pages = common::PAGES.lock().await;
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin("ops").await;
    sign_up(&app, "bill@example.com", "bill").await;
    let empty = page(&app, "/billing").await;
    assert!(empty.contains("No money has moved yet"));
    assert!(
        empty.contains("Card payments are not set up") && !empty.contains("Pay with card"),
        "no card form where payments are not configured"
    );
    let uid: String = sqlx::query_scalar("SELECT id FROM users WHERE username = 'bill'")
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    app.credit(&admin, &uid, 12.5).await;
    let shown = page(&app, "/billing").await;
    assert!(shown.contains("$12.5000"), "balance shown");
    assert!(
        shown.contains("+$12.50") && shown.contains("Credit from the platform"),
        "the movement is listed, to the cent"
    );
    // The meter's per-minute charges read as one line per hour: three minutes in one hour, one
    // in the next, make two lines with their sums (and a sum under half a cent says so).
    let hour = 3_600_000_i64 * 490_000;
    for (n, (at, micros)) in [
        (hour + 60_000, 1_000_i64),
        (hour + 120_000, 2_000),
        (hour + 180_000, 3_000_000),
        (hour + 3_600_000 + 60_000, 1_500),
    ]
    .into_iter()
    .enumerate()
    {
        sqlx::query(
            "INSERT INTO ledger (id, user_id, amount_micros, kind, description, created_at)
             VALUES ($1, $2, $3, 'usage', 'Compute usage', $4)",
        )
        .bind(format!("usage{n:020}"))
        .bind(&uid)
        .bind(-micros)
        .bind(at)
        .execute(&app.state.db)
        .await
        .unwrap();
    }
    let shown = page(&app, "/billing").await;
    assert_eq!(
        shown.matches(r#"data-label="What">Compute usage"#).count(),
        2,
        "one line per hour: {shown}"
    );
    assert!(shown.contains("−$3.00"), "the hour's sum, to the cent");
    assert!(shown.contains("−&lt;$0.01"), "a sum under half a cent");

    let csrf = csrf_of(&shown);
    post_form(
        &app,
        "/_fn/add_notify_email",
        "/billing",
        &[("csrf", &csrf), ("email", "alerts@example.com")],
    )
    .await;
    let res = post_form(
        &app,
        "/_fn/add_notify_email",
        "/billing",
        &[("csrf", &csrf), ("email", "nope")],
    )
    .await;
    assert!(
        location(&res).contains("__err="),
        "an invalid address is refused"
    );
    let shown = page(&app, "/billing").await;
    assert!(shown.contains("alerts@example.com"));
    let id: String = sqlx::query_scalar("SELECT id FROM notify_emails")
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    post_form(
        &app,
        "/_fn/remove_notify_email",
        "/billing",
        &[("csrf", &csrf), ("id", &id)],
    )
    .await;
    assert!(!page(&app, "/billing").await.contains("alerts@example.com"));
}

/// Signs the test client's browser in as `username` (made by `TestApp::user` or `admin`).
async fn browser_sign_in(app: &TestApp, username: &str) {
    let csrf = csrf_of(&page(app, "/signin").await);
    let res = post_form(
        app,
        "/_fn/sign_in",
        "/signin",
        &[
            ("csrf", &csrf),
            ("email", &format!("{username}@example.com")),
            ("password", &format!("{username}-lunar-Quokka-42")),
        ],
    )
    .await;
    assert_eq!(location(&res), "/", "{username} signed in");
}

#[tokio::test]
async fn the_operator_page_shows_load_to_operators_only() {
    let _pages = common::PAGES.lock().await;
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin("ops").await;
    let (_, token) = app.funded_user("cust", 10.0).await;
    for name in ["a", "b"] {
        expect_json(
            app.post(
                "/api/vps",
                Some(&token),
                serde_json::json!({"name": name, "plan_id": "small"}),
            )
            .await,
            StatusCode::CREATED,
        )
        .await;
    }
    app.run_jobs().await;
    expect_json(
        app.post("/api/admin/ip-pools", Some(&admin), serde_json::json!({"region": "local", "first": "192.168.122.240", "last": "192.168.122.243", "prefix_len": 24})).await,
        StatusCode::CREATED,
    )
    .await;

    // A customer sees no Operator link and no data, nor the metrics from their browser.
    browser_sign_in(&app, "cust").await;
    let scrape = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(scrape.status(), StatusCode::FORBIDDEN);
    let home = page(&app, "/machines").await;
    assert!(!home.contains("href=\"/operator\""));
    let denied = page(&app, "/operator").await;
    assert!(
        denied.contains("This page is for operators only"),
        "{denied}"
    );
    assert!(!denied.contains("local-vm"));
    let csrf = csrf_of(&denied);
    let res = post_form(
        &app,
        "/_fn/operator_reconcile",
        "/operator",
        &[("csrf", &csrf)],
    )
    .await;
    assert!(
        location(&res).contains("__err="),
        "the reconciler is operators' only"
    );

    // An operator (signing in on the same browser) sees each node's load as placement counts
    // it, and the ranges.
    browser_sign_in(&app, "ops").await;
    // The operator's browser reads the metrics as it is (no token needed).
    let scrape = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(scrape.status(), StatusCode::OK);
    assert!(scrape
        .text()
        .await
        .unwrap()
        .contains("hangar_node_up{node=\"local-vm\""));
    let shown = page(&app, "/operator").await;
    assert!(
        shown.contains("href=\"/operator\""),
        "operators get the link"
    );
    assert!(shown.contains("data-name=\"local-vm\""), "{shown}");
    // Two `small` plans (1 vCPU, 2048 MB, 25 GB each) on a 16-vCPU node at 4× over-commit.
    assert!(
        shown.contains(r#"data-label="vCPU" data-used="2" data-limit="64""#),
        "{shown}"
    );
    assert!(shown.contains(r#"data-label="Memory" data-used="4096" data-limit="65536""#));
    assert!(shown.contains(r#"data-label="Disk" data-used="50" data-limit="96""#));
    assert!(shown.contains("2 machines"));
    assert!(shown.contains(r#"data-label="Addresses" data-used="0" data-limit="4""#));
    let csrf = csrf_of(&shown);
    let res = post_form(
        &app,
        "/_fn/operator_reconcile",
        "/operator",
        &[("csrf", &csrf)],
    )
    .await;
    assert!(!location(&res).contains("__err="), "{}", location(&res));

    // Load over time: each reconciler pass records what every node holds; the page charts the
    // last 24 hours, and samples older than 30 days (the longest chart) are forgotten.
    let db = &app.state.db;
    let now = domain::infra::db::now_ms();
    let node: String = sqlx::query_scalar("SELECT id FROM nodes WHERE name = 'local-vm'")
        .fetch_one(db)
        .await
        .unwrap();
    for at in [
        now - 31 * 86_400_000,
        now - 8 * 86_400_000,
        now - 3_600_000,
        now,
    ] {
        domain::fleet::nodes::record_load(db, at, &[])
            .await
            .unwrap();
    }
    let history = domain::fleet::nodes::load_history(db, 0).await.unwrap();
    let ours: Vec<_> = history.iter().filter(|h| h.node_id == node).collect();
    assert!(
        ours.iter().all(|h| h.at > now - 30 * 86_400_000),
        "30 days' samples kept, older ones gone: {ours:?}"
    );
    assert!(ours.len() >= 3, "the 8-day-old one too: {ours:?}");
    let last = ours.last().unwrap();
    assert_eq!(
        (last.used_vcpu, last.used_memory_mb, last.machines),
        (2, 4096, 2)
    );
    let shown = page(&app, "/operator").await;
    assert!(
        shown.contains("data-test=\"load-chart\"") && shown.contains("vCPU 3 %"),
        "2 of 64 vCPU: {shown}"
    );
}

/// Cross-site requests cannot change anything through the portal, whichever endpoint they aim
/// at and whether or not it checks a token itself: the browser's `Sec-Fetch-Site` and `Origin`
/// headers are checked in front of every portal write.
#[tokio::test]
async fn cross_site_writes_to_the_portal_are_refused() {
    let _pages = common::PAGES.lock().await;
    let app = TestApp::spawn().await;
    let client = reqwest::Client::new();
    let cases: [(&str, &[(&str, &str)]); 3] = [
        ("/_fn/sign_out", &[("sec-fetch-site", "cross-site")]),
        ("/_fn/sign_in", &[("origin", "https://evil.example")]),
        (
            "/portal/machines/6b0c00000000000000000000/console",
            &[("sec-fetch-site", "same-site")],
        ),
    ];
    for (path, headers) in cases {
        let mut req = client
            .post(app.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("csrf=x");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{path} {headers:?}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("did not come from Hangar"),
            "{body}"
        );
    }
    // The same requests from Hangar's own pages reach the endpoint (which then judges them:
    // here, a stale CSRF token is its own 403 with its own message).
    let res = client
        .post(app.url("/_fn/sign_in"))
        .header("sec-fetch-site", "same-origin")
        .header("origin", app.base.clone())
        .header("content-type", "application/x-www-form-urlencoded")
        .body("csrf=x&email=a%40example.com&password=whatever1")
        .send()
        .await
        .unwrap();
    let body = res.text().await.unwrap();
    assert!(!body.contains("did not come from Hangar"), "{body}");
}

/// "Sign out everywhere" from an API sign-in ends a browser's session and its live stream of
/// figures within seconds (the stream checks its session every `CREDENTIAL_CHECK`); a password
/// changed on the account page keeps that browser signed in and ends the others.
#[tokio::test]
async fn signing_out_everywhere_ends_browser_sessions_and_their_live_streams() {
    let _pages = common::PAGES.lock().await;
    let app = TestApp::spawn().await;
    sign_up(&app, "ev@example.com", "everywhere").await;
    assert!(page(&app, "/account").await.contains("everywhere"));
    let mut stream = app
        .client
        .get(app.url("/events/me"))
        .header(header::ACCEPT, "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    let first = tokio::time::timeout(std::time::Duration::from_secs(5), stream.chunk())
        .await
        .unwrap()
        .unwrap();
    assert!(first.is_some(), "the stream sends the balance");

    let jwt = expect_json(
        app.post(
            "/api/auth/login",
            None,
            serde_json::json!({"email": "ev@example.com", "password": "1-lunar-Quokka-42"}),
        )
        .await,
        StatusCode::OK,
    )
    .await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = app
        .post(
            "/api/auth/sessions/revoke",
            Some(&jwt),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);

    // The stream ends by itself (keep-alive comments aside), well before its own timeouts.
    let ended = tokio::time::timeout(std::time::Duration::from_secs(15), async {
        loop {
            match stream.chunk().await {
                Ok(Some(_)) => continue,
                _ => return,
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the live stream ended after the sign-out");
    // And the browser's session is over.
    let again = app.client.get(app.url("/events/me")).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED);
    assert!(page(&app, "/account").await.contains("Sign in"));
}

/// A visitor gets no server-side session until they sign in: 50 anonymous page views used to
/// write 50 session rows, kept for two weeks. Their sign-up form still works, protected by the
/// `hangar_csrf` cookie (a wrong or missing token is refused), and signing up makes the one row.
#[tokio::test]
async fn visitors_leave_no_session_rows_until_they_sign_in() {
    let _pages = common::PAGES.lock().await;
    let app = TestApp::spawn().await;
    let rows = || async {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM sessions")
            .fetch_one(&app.state.db)
            .await
            .unwrap()
    };
    for i in 0..50 {
        // A fresh client each time: a new visitor, no cookies.
        let path = ["/", "/marketplace", "/signin", "/signup", "/pricing"][i % 5];
        let res = reqwest::Client::new()
            .get(app.url(path))
            .header(header::ACCEPT, "text/html")
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success() || res.status() == StatusCode::NOT_FOUND);
        assert!(
            session_cookie(&res).is_none(),
            "no session cookie for a visitor"
        );
    }
    assert_eq!(rows().await, 0, "anonymous views write no sessions");

    // A forged token is refused; the page's own token (tied to the cookie) signs up.
    let refused = post_form(
        &app,
        "/_fn/sign_up",
        "/signup",
        &[
            ("csrf", "forgedforgedforgedforgedforged00"),
            ("email", "v@example.com"),
            ("username", "visitor"),
            ("password", "1-lunar-Quokka-42"),
        ],
    )
    .await;
    assert!(
        location(&refused).contains("__err="),
        "a forged token is refused: {}",
        location(&refused)
    );
    assert_eq!(rows().await, 0);
    let res = sign_up(&app, "v@example.com", "visitor").await;
    assert_eq!(location(&res), "/", "signed up");
    assert_eq!(rows().await, 1, "one session, for the person who signed in");
    assert!(page(&app, "/account").await.contains("visitor"));
}

/// One account holds at most `streams_per_account` live streams on a replica: the next answers
/// 429 saying which limit, so one signed-in browser (or script) cannot hold the replica's
/// connections and once-a-second database polls without bound.
#[tokio::test]
async fn an_account_may_hold_only_so_many_live_streams() {
    let _pages = common::PAGES.lock().await;
    let app = TestApp::builder()
        .config("streams_per_account", "2")
        .spawn()
        .await;
    sign_up(&app, "streams@example.com", "streamer").await;
    let open = || {
        app.client
            .get(app.url("/events/me"))
            .header(header::ACCEPT, "text/event-stream")
            .send()
    };
    let first = open().await.unwrap();
    let second = open().await.unwrap();
    assert_eq!(
        (first.status(), second.status()),
        (StatusCode::OK, StatusCode::OK)
    );
    let third = open().await.unwrap();
    assert_eq!(third.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: serde_json::Value = third.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("2 live streams"),
        "{body}"
    );
}

/// The account page shows each limit with its use, as meters (server-rendered, so it reads
/// without JavaScript too): a customer sees a refusal coming before they meet it.
#[tokio::test]
async fn the_account_page_shows_usage_against_each_limit() {
    let _pages = common::PAGES.lock().await;
    let app = TestApp::builder()
        .config("quota_machines", "3")
        .spawn()
        .await;
    sign_up(&app, "limits@example.com", "limited").await;
    let html = page(&app, "/account").await;
    assert!(html.contains(r#"data-test="limits""#), "{html}");
    for (label, used_of) in [
        ("Machines", r#"data-used="0" data-limit="3""#),
        ("vCPU", r#"data-limit="#),
        ("Public IPv4 addresses", r#"data-limit="5""#),
    ] {
        let meter = format!(r#"data-label="{label}""#);
        let at = html
            .find(&meter)
            .unwrap_or_else(|| panic!("no {label} meter in the page"));
        assert!(
            html[at..at + 200].contains(used_of),
            "{label}: {}",
            &html[at..at + 200]
        );
    }
}

/// A page about something that does not exist, or is someone else's, answers 404 (scripts,
/// monitors and search engines read the status), with the page saying so.
#[tokio::test]
async fn pages_for_unknown_or_foreign_ids_answer_404() {
    let _pages = common::PAGES.lock().await;
    let app = TestApp::spawn().await;
    let (_, owner) = app.funded_user("owner", 5.0).await;
    let theirs = expect_json(
        app.post(
            "/api/vps",
            Some(&owner),
            serde_json::json!({"name": "theirs", "plan_id": "nano"}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let theirs = theirs["id"].as_str().unwrap().to_owned();
    let owners_credit: String = sqlx::query_scalar(
        "SELECT l.id FROM ledger l JOIN users u ON u.id = l.user_id WHERE u.username = 'owner'",
    )
    .fetch_one(&app.state.db)
    .await
    .unwrap();
    sign_up(&app, "visitor@example.com", "visitor").await;
    let status_of = |path: String| {
        let app = &app;
        async move {
            let res = app
                .client
                .get(app.url(&path))
                .header(header::ACCEPT, "text/html")
                .send()
                .await
                .unwrap();
            (res.status(), res.text().await.unwrap())
        }
    };
    let unknown = "ffffffffffffffffffffffff";
    for path in [
        format!("/machines/{theirs}"),
        format!("/machines/{unknown}"),
        format!("/rentals/{unknown}"),
        format!("/pools/{unknown}"),
        format!("/marketplace/{unknown}"),
        format!("/billing/receipts/{unknown}"),
        // Someone else's money movement (an operator's credit, so no receipt even for them).
        format!("/billing/receipts/{owners_credit}"),
        // A month before the account existed.
        "/billing/statements/2001-01".to_owned(),
    ] {
        let (status, html) = status_of(path.clone()).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(
            html.contains("alert") || html.contains("not found"),
            "{path}: {html}"
        );
    }
    let (_, html) = status_of(format!("/machines/{theirs}")).await;
    assert!(html.contains("does not exist"), "{html}");
    // The pages themselves are there; this month's statement is.
    let (status, _) = status_of("/machines".into()).await;
    assert_eq!(status, StatusCode::OK);
    let month = domain::money::billing::Month::of(domain::infra::db::now_ms());
    let (status, html) = status_of(format!("/billing/statements/{month}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains(&format!("Statement for {}", month.title())),
        "{html}"
    );
    let (status, html) = status_of("/billing/statements/20x6-13".into()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{html}");
    assert!(html.contains("YYYY-MM"), "{html}");
}

/// Signing in from a page (the marketplace's "Sign in" to rent, a page behind sign-in) goes back
/// to it; a `next` that would leave the site goes to the dashboard instead.
#[tokio::test]
async fn signing_in_returns_to_the_page_that_asked_and_only_within_the_site() {
    let _pages = common::PAGES.lock().await;
    let app = TestApp::spawn().await;
    app.user("returning").await;
    let signin = page(&app, "/signin?next=/marketplace/abc").await;
    assert!(
        signin.contains(r#"name="next" value="/marketplace/abc""#),
        "the form carries where to go back to"
    );
    for (next, expected) in [
        ("/marketplace/abc", "/marketplace/abc"),
        ("//evil.example/x", "/"),
        ("https://evil.example/", "/"),
    ] {
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let html = client
            .get(app.url("/signin"))
            .header(header::ACCEPT, "text/html")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let res = client
            .post(app.url("/_fn/sign_in"))
            .header(header::ACCEPT, "text/html")
            .header(header::REFERER, app.url("/signin"))
            .form(&[
                ("csrf", csrf_of(&html).as_str()),
                ("email", "returning@example.com"),
                ("password", "returning-lunar-Quokka-42"),
                ("next", next),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(location(&res), expected, "next={next}");
    }
    // A page behind sign-in sends a visitor to sign in with the way back.
    let res = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(app.url("/billing?offset=20"))
        .header(header::ACCEPT, "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(location(&res), "/signin?next=/billing%3Foffset%3D20");
}

/// A name the API would refuse is explained in words on the form (the browser shows an input's
/// `title` with its own "match the requested format"), not only as a pattern.
#[tokio::test]
async fn forms_say_the_name_rules_in_words() {
    let _pages = common::PAGES.lock().await;
    let app = TestApp::spawn().await;
    assert!(page(&app, "/signup")
        .await
        .contains(r#"title="Letters, digits, _ and - only (no spaces)""#));
    sign_up(&app, "namer@example.com", "namer").await;
    let machines = page(&app, "/machines").await;
    assert!(
        machines.contains(
            r#"title="Up to 63 letters, digits, dots, _ and -, starting with a letter or digit""#
        ),
        "{machines}"
    );
}

/// A failed machine's page offers what can work: why it failed, deleting it and making a new
/// one — no power buttons, console or snapshots that could only refuse.
#[tokio::test]
async fn a_failed_machines_page_offers_only_what_works() {
    let _pages = common::PAGES.lock().await;
    let app = TestApp::spawn().await;
    let (_, token) = app.funded_user("fenna", 5.0).await;
    let made = expect_json(
        app.post(
            "/api/vps",
            Some(&token),
            serde_json::json!({"name": "doomed", "plan_id": "nano"}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let id = made["id"].as_str().unwrap().to_owned();
    app.run_jobs().await;
    let inst = domain::compute::instances::load(&app.state.db, &id)
        .await
        .unwrap()
        .unwrap();
    domain::compute::executor::mark_failed(&app.state.db, &inst, "The node ran out of disk")
        .await
        .unwrap();
    browser_sign_in(&app, "fenna").await;
    let html = page(&app, &format!("/machines/{id}")).await;
    assert!(html.contains("data-test=\"machine-failed\""), "{html}");
    assert!(html.contains("The node ran out of disk"));
    assert!(
        html.contains("data-test=\"power-delete\""),
        "deleting is offered"
    );
    for gone in ["power-start", "console-card", "snapshot-form"] {
        assert!(
            !html.contains(gone),
            "{gone} is not offered on a failed machine"
        );
    }
}
