//! The operator's console through the API: finding customers, their page, suspending and
//! reinstating them, lifting a lockout, and acting on anyone's machine — each audited as the
//! operator's, each told to the customer.

use crate::common;

use common::{expect_error, expect_json, mails_to, smtp, TestApp};
use reqwest::StatusCode;
use serde_json::json;

/// An app with an operator and a customer running one VM on the test driver.
async fn shop() -> (TestApp, String, (String, String), String) {
    let mut builder = TestApp::builder().config("auth_rate_limit_per_minute", "1000");
    if let Some(url) = smtp() {
        builder = builder.config("smtp_url", &url);
    }
    let app = builder.spawn().await;
    let (_, op) = app.admin("opal").await;
    let alice = app.user("alice").await;
    app.credit(&op, &alice.0, 10.0).await;
    let made = expect_json(
        app.post(
            "/api/vps",
            Some(&alice.1),
            json!({"name": "web", "plan_id": "small"}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let vm = made["id"].as_str().unwrap().to_owned();
    app.run_jobs().await;
    (app, op, alice, vm)
}

#[tokio::test]
async fn operators_find_customers_and_read_their_page() {
    let (app, op, alice, vm) = shop().await;
    let (bob_id, bob) = app.user("bobby").await;

    let found = expect_json(
        app.get("/api/admin/users?q=ALI", Some(&op)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(found["total"], 1, "{}", found.text);
    assert_eq!(found["data"][0]["username"], "alice");
    assert_eq!(found["data"][0]["machines"], 1);
    assert!(
        found["data"][0]["last_sign_in"].is_string(),
        "{}",
        found.text
    );
    let by_id = expect_json(
        app.get(&format!("/api/admin/users?q={bob_id}"), Some(&op))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(by_id["data"][0]["username"], "bobby");
    let everyone = expect_json(
        app.get("/api/admin/users?limit=2", Some(&op)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(everyone["data"].as_array().unwrap().len(), 2);
    assert_eq!(everyone["total"], 3, "operator, alice and bobby");
    // `%` and `_` are letters in a search, not wildcards.
    let literal = expect_json(
        app.get("/api/admin/users?q=%25", Some(&op)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(literal["total"], 0);

    let page = expect_json(
        app.get(&format!("/api/admin/users/{}", alice.0), Some(&op))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(page["username"], "alice");
    assert_eq!(page["machine_list"][0]["id"], vm.as_str());
    assert_eq!(page["machine_list"][0]["state"], "running");
    assert_eq!(page["two_factor"], false);
    assert_eq!(page["suspended"], serde_json::Value::Null);

    // Customers are not operators; unknown ids are 404.
    expect_error(
        app.get("/api/admin/users", Some(&bob)).await,
        StatusCode::FORBIDDEN,
        "perator",
    )
    .await;
    expect_error(
        app.get("/api/admin/users/507f1f77bcf86cd799439011", Some(&op))
            .await,
        StatusCode::NOT_FOUND,
        "User not found",
    )
    .await;
}

#[tokio::test]
async fn a_suspension_stops_the_account_and_its_machines_until_it_is_lifted() {
    let (app, op, (alice_id, alice), vm) = shop().await;
    let token = expect_json(
        app.post("/api/tokens", Some(&alice), json!({"name": "ci"}))
            .await,
        StatusCode::CREATED,
    )
    .await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/admin/users/{alice_id}");
    expect_error(
        app.post(
            &format!("{path}/suspend"),
            Some(&op),
            json!({"reason": " "}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "Say why",
    )
    .await;
    expect_json(
        app.post(
            &format!("{path}/suspend"),
            Some(&op),
            json!({"reason": "unpaid invoice 2026-11"}),
        )
        .await,
        StatusCode::OK,
    )
    .await;

    // Her JWT, her token and her password all stop, saying why.
    for credential in [&alice, &token] {
        expect_error(
            app.get("/api/me", Some(credential)).await,
            StatusCode::FORBIDDEN,
            "suspended: unpaid invoice 2026-11",
        )
        .await;
    }
    expect_error(
        app.post(
            "/api/auth/login",
            None,
            json!({"email": "alice@example.com", "password": "alice-lunar-Quokka-42"}),
        )
        .await,
        StatusCode::FORBIDDEN,
        "suspended: unpaid invoice 2026-11",
    )
    .await;
    // Her machine was stopped (not deleted), and says by whom and why.
    app.run_jobs().await;
    let stopped: (String, Option<String>) =
        sqlx::query_as("SELECT state, reason FROM instances WHERE id = $1")
            .bind(&vm)
            .fetch_one(&app.state.db)
            .await
            .unwrap();
    assert_eq!(stopped.0, "stopped");
    assert!(
        stopped
            .1
            .as_deref()
            .unwrap_or_default()
            .contains("operators: the account is suspended (unpaid invoice 2026-11)"),
        "{stopped:?}"
    );
    if smtp().is_some() {
        let mail = mails_to("alice@example.com");
        assert!(
            mail.iter()
                .any(|m| m.contains("suspended your account: unpaid invoice 2026-11")),
            "the customer is told: {mail:?}"
        );
    }

    // No double suspension; operators and oneself are not suspended.
    expect_error(
        app.post(
            &format!("{path}/suspend"),
            Some(&op),
            json!({"reason": "again"}),
        )
        .await,
        StatusCode::CONFLICT,
        "already suspended",
    )
    .await;
    let (other_op, _) = app.admin("otto").await;
    expect_error(
        app.post(
            &format!("/api/admin/users/{other_op}/suspend"),
            Some(&op),
            json!({"reason": "x"}),
        )
        .await,
        StatusCode::CONFLICT,
        "operator",
    )
    .await;

    // Lifted: she signs in again; her machine waits for her to start it.
    expect_json(
        app.post(&format!("{path}/reinstate"), Some(&op), json!({}))
            .await,
        StatusCode::OK,
    )
    .await;
    let again = app.login("alice").await;
    expect_json(app.get("/api/me", Some(&again)).await, StatusCode::OK).await;
    expect_json(app.get("/api/me", Some(&token)).await, StatusCode::OK).await;
    expect_error(
        app.post(&format!("{path}/reinstate"), Some(&op), json!({}))
            .await,
        StatusCode::CONFLICT,
        "not suspended",
    )
    .await;

    // A lockout lifted by hand.
    sqlx::query("UPDATE users SET login_blocked_until = $1 WHERE id = $2")
        .bind(domain::infra::db::now_ms() + 600_000)
        .bind(&alice_id)
        .execute(&app.state.db)
        .await
        .unwrap();
    let locked = expect_json(app.get(&path, Some(&op)).await, StatusCode::OK).await;
    assert!(locked["locked_until"].is_string());
    expect_json(
        app.post(&format!("{path}/unlock"), Some(&op), json!({}))
            .await,
        StatusCode::OK,
    )
    .await;
    app.login("alice").await;

    // All of it is in the audit log as the operator's, with her as its target.
    let audit = expect_json(
        app.get(&format!("/api/admin/audit?target_id={alice_id}"), Some(&op))
            .await,
        StatusCode::OK,
    )
    .await;
    for action in ["user.suspend", "user.reinstate", "user.unlock"] {
        assert!(audit.text.contains(action), "{action}: {}", audit.text);
    }
}

#[tokio::test]
async fn operators_see_every_machine_and_act_on_it_saying_why() {
    let (app, op, (alice_id, alice), vm) = shop().await;
    let all = expect_json(
        app.get("/api/admin/machines?q=alice", Some(&op)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(all["total"], 1, "{}", all.text);
    assert_eq!(all["data"][0]["id"], vm.as_str());
    assert_eq!(all["data"][0]["owner"], "alice");
    assert!(all["data"][0]["node"].is_string());
    let running = expect_json(
        app.get("/api/admin/machines?state=running", Some(&op))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(running["total"], 1);
    let stopped = expect_json(
        app.get("/api/admin/machines?state=stopped", Some(&op))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(stopped["total"], 0);
    expect_error(
        app.get("/api/admin/machines?state=sleeping", Some(&op))
            .await,
        StatusCode::BAD_REQUEST,
        "state is one of",
    )
    .await;

    let stop = format!("/api/admin/machines/{vm}/stop");
    expect_error(
        app.post(&stop, Some(&op), json!({"why": ""})).await,
        StatusCode::BAD_REQUEST,
        "Say why",
    )
    .await;
    expect_error(
        app.post(&stop, Some(&alice), json!({"why": "x"})).await,
        StatusCode::FORBIDDEN,
        "perator",
    )
    .await;
    expect_error(
        app.post(
            &format!("/api/admin/machines/{vm}/explode"),
            Some(&op),
            json!({"why": "x"}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "not found",
    )
    .await;
    expect_json(
        app.post(&stop, Some(&op), json!({"why": "abuse report #12"}))
            .await,
        StatusCode::ACCEPTED,
    )
    .await;
    app.run_jobs().await;
    let mine = expect_json(
        app.get(&format!("/api/vps/{vm}"), Some(&alice)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(mine["state"], "stopped");
    assert_eq!(
        mine["reason"],
        "Stopped by the platform's operators: abuse report #12"
    );
    expect_json(
        app.post(
            &format!("/api/admin/machines/{vm}/start"),
            Some(&op),
            json!({"why": "resolved"}),
        )
        .await,
        StatusCode::ACCEPTED,
    )
    .await;
    app.run_jobs().await;
    let mine = expect_json(
        app.get(&format!("/api/vps/{vm}"), Some(&alice)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(mine["state"], "running");
    assert_eq!(
        mine["reason"],
        serde_json::Value::Null,
        "a start clears the reason"
    );
    expect_json(
        app.post(
            &format!("/api/admin/machines/{vm}/delete"),
            Some(&op),
            json!({"why": "terms of service"}),
        )
        .await,
        StatusCode::ACCEPTED,
    )
    .await;
    app.run_jobs().await;
    expect_error(
        app.get(&format!("/api/vps/{vm}"), Some(&alice)).await,
        StatusCode::NOT_FOUND,
        "not found",
    )
    .await;
    let audit = expect_json(
        app.get(&format!("/api/admin/audit?target_id={vm}"), Some(&op))
            .await,
        StatusCode::OK,
    )
    .await;
    assert!(audit.text.contains("by_operator"), "{}", audit.text);

    // What was done to her, by anyone, is found by her: the operator's actions on her machine
    // beside her own.
    let concerning = expect_json(
        app.get(
            &format!("/api/admin/audit?concerning={alice_id}"),
            Some(&op),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let events = concerning.as_array().unwrap();
    assert!(
        events
            .iter()
            .any(|e| e["action"] == "instance.stop" && e["actor"] == "opal"),
        "{}",
        concerning.text
    );
    assert!(events
        .iter()
        .any(|e| e["action"] == "instance.create" && e["actor"] == "alice"));
}

#[tokio::test]
async fn operators_read_the_running_configuration_with_secrets_redacted() {
    let app = TestApp::builder()
        .config("stripe_secret_key", "sk_test_never_shown")
        .config("business_name", "Acme Hosting")
        .spawn()
        .await;
    let (_, op) = app.admin("cfg").await;
    let (_, customer) = app.user("nosy").await;
    let settings = expect_json(
        app.get("/api/admin/config", Some(&op)).await,
        StatusCode::OK,
    )
    .await;
    assert!(
        !settings.text.contains("sk_test_never_shown"),
        "{}",
        settings.text
    );
    let find = |key: &str| {
        settings
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["key"] == key)
            .unwrap_or_else(|| panic!("{key} in {}", settings.text))
            .clone()
    };
    assert_eq!(find("stripe_secret_key")["value"], "(redacted)");
    assert_eq!(find("business_name")["value"], "Acme Hosting");
    assert_ne!(find("business_name")["origin"], "default");
    assert_eq!(find("job_workers")["origin"], "default");
    assert_eq!(find("smtp_url")["origin"], "unset");
    expect_error(
        app.get("/api/admin/config", Some(&customer)).await,
        StatusCode::FORBIDDEN,
        "perator",
    )
    .await;
}

/// The link in the newest reset mail to `addr`, as its token, once `count` mails have come (a
/// customer's is sent after the answer).
async fn reset_token(addr: &str, count: usize) -> String {
    let mut mails = mails_to(addr);
    for _ in 0..50 {
        if mails.len() >= count {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        mails = mails_to(addr);
    }
    assert_eq!(mails.len(), count, "reset mails to {addr}");
    let mail = mails
        .iter()
        .filter(|m| m.contains("/reset?token="))
        .max_by_key(|m| m.len())
        .unwrap();
    let at = mail.rfind("/reset?token=").unwrap() + "/reset?token=".len();
    mail[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect()
}

/// A forgotten password: the customer asks for a link (the answer never says whether an account
/// uses the address), or an operator sends one (never seeing it). Following it sets the password
/// once, signs the account out everywhere and is then spent; a weak password is refused without
/// spending it; a suspended account gets none.
#[tokio::test]
async fn a_forgotten_password_is_reset_by_a_mailed_link_from_the_customer_or_an_operator() {
    let Some(url) = smtp() else { return };
    let app = TestApp::builder()
        .config("auth_rate_limit_per_minute", "1000")
        .config("smtp_url", &url)
        .spawn()
        .await;
    let (_, op) = app.admin("opus").await;
    let name = format!("rhea{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let email = format!("{name}@example.com");
    let (rhea_id, old_jwt) = app.user(&name).await;

    let asked = expect_json(
        app.post(
            "/api/auth/password-reset",
            None,
            json!({"email": email.to_uppercase()}),
        )
        .await,
        StatusCode::ACCEPTED,
    )
    .await;
    let nobody = expect_json(
        app.post(
            "/api/auth/password-reset",
            None,
            json!({"email": "nobody-here@example.com"}),
        )
        .await,
        StatusCode::ACCEPTED,
    )
    .await;
    assert_eq!(
        asked.text, nobody.text,
        "the answer does not tell who has an account"
    );
    expect_error(
        app.post(
            "/api/auth/password-reset",
            None,
            json!({"email": "not an address"}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "",
    )
    .await;
    // Asking again at once: the same answer, no second mail.
    expect_json(
        app.post("/api/auth/password-reset", None, json!({"email": email}))
            .await,
        StatusCode::ACCEPTED,
    )
    .await;
    let token = reset_token(&email, 1).await;
    expect_error(
        app.post(
            "/api/auth/password-reset/confirm",
            None,
            json!({"token": token, "password": "short"}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "",
    )
    .await;
    let new_password = "a-Brand-new-Walrus-77";
    let done = app
        .post(
            "/api/auth/password-reset/confirm",
            None,
            json!({"token": token, "password": new_password}),
        )
        .await;
    assert_eq!(done.status(), StatusCode::NO_CONTENT);
    expect_error(
        app.post(
            "/api/auth/password-reset/confirm",
            None,
            json!({"token": token, "password": "another-Fine-Otter-55"}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "not valid any more",
    )
    .await;
    assert_eq!(
        app.get("/api/me", Some(&old_jwt)).await.status(),
        StatusCode::UNAUTHORIZED,
        "every session and JWT ended"
    );
    let old = app
        .post(
            "/api/auth/login",
            None,
            json!({"email": email, "password": format!("{name}-lunar-Quokka-42")}),
        )
        .await;
    assert_eq!(old.status(), StatusCode::UNAUTHORIZED);
    let new = app
        .post(
            "/api/auth/login",
            None,
            json!({"email": email, "password": new_password}),
        )
        .await;
    assert_eq!(new.status(), StatusCode::OK);
    assert!(mails_to(&email)
        .iter()
        .any(|m| m.contains("Your Hangar password was changed")));

    // An operator sends one; a customer cannot.
    let (_, other) = app.user(&format!("{name}x")).await;
    expect_error(
        app.post(
            &format!("/api/admin/users/{rhea_id}/password-reset"),
            Some(&other),
            json!({}),
        )
        .await,
        StatusCode::FORBIDDEN,
        "",
    )
    .await;
    expect_json(
        app.post(
            &format!("/api/admin/users/{rhea_id}/password-reset"),
            Some(&op),
            json!({}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let mails = mails_to(&email);
    assert!(mails
        .iter()
        .any(|m| m.contains("operators of this Hangar sent you a link")));
    let log = expect_json(
        app.get(&format!("/api/admin/audit?concerning={rhea_id}"), Some(&op))
            .await,
        StatusCode::OK,
    )
    .await;
    assert!(log.text.contains("password.reset_sent"), "{}", log.text);

    // Suspended: no link from an operator, none from asking, and an earlier one does not open it.
    let earlier = reset_token(&email, mails.len()).await;
    expect_json(
        app.post(
            &format!("/api/admin/users/{rhea_id}/suspend"),
            Some(&op),
            json!({"reason": "chargeback"}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    expect_error(
        app.post(
            &format!("/api/admin/users/{rhea_id}/password-reset"),
            Some(&op),
            json!({}),
        )
        .await,
        StatusCode::CONFLICT,
        "suspended",
    )
    .await;
    expect_error(
        app.post(
            "/api/auth/password-reset/confirm",
            None,
            json!({"token": earlier, "password": "yet-Another-Heron-31"}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "not valid any more",
    )
    .await;
}

/// Without a mail server an operator is told a reset link cannot reach the customer, rather than
/// being told it was sent.
#[tokio::test]
async fn a_reset_link_is_refused_where_no_mail_can_carry_it() {
    let app = TestApp::spawn().await;
    let (_, op) = app.admin("oswin").await;
    let (id, _) = app.user("tilly").await;
    expect_error(
        app.post(
            &format!("/api/admin/users/{id}/password-reset"),
            Some(&op),
            json!({}),
        )
        .await,
        StatusCode::CONFLICT,
        "sends no mail",
    )
    .await;
}
