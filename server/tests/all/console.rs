//! Consoles and screens over WebSockets: tickets (single use, expiry, bound to user, machine and
//! kind; Origin; credentials at the upgrade), access that ends while a console is open (machine
//! deleted, token revoked, idle), the per-user limit, and a container's console on the real Podman
//! engine (a command's output, resize reaching the TTY, two viewers of one console and the history
//! a late one gets). A VM's serial console and screen through the relay are in `qemu.rs`.

use crate::common;

use std::time::Duration;

use common::console::{console, open, read_until, ticket, type_in};
use common::{docker_host, expect_error, expect_json, TestApp};
use futures::SinkExt;
use reqwest::StatusCode;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

async fn vm(app: &TestApp, token: &str, name: &str) -> String {
    let vps = expect_json(
        app.post(
            "/api/vps",
            Some(token),
            json!({"name": name, "plan_id": "nano"}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    app.run_jobs().await;
    vps["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn tickets_open_once_for_their_own_user_machine_and_kind() {
    let app = TestApp::spawn().await;
    let (_, alice) = app.funded_user("alice", 10.0).await;
    let (_, bob) = app.funded_user("bob", 10.0).await;
    let a = vm(&app, &alice, "a1").await;
    let a2 = vm(&app, &alice, "a2").await;
    let b = vm(&app, &bob, "b1").await;

    expect_error(
        app.post(
            &format!("/api/vps/{a}/console"),
            Some(&alice),
            json!({"kind": "tv"}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "kind",
    )
    .await;
    expect_error(
        app.post(
            &format!("/api/vps/{b}/console"),
            Some(&alice),
            json!({"kind": "console"}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "",
    )
    .await;

    // A good ticket opens once: the console says the machine is simulated (nothing inside).
    let t = ticket(&app, &alice, &a, "console").await;
    assert_eq!(t["path"], format!("/api/vps/{a}/console/ws"));
    let (path, value) = (t["path"].as_str().unwrap(), t["ticket"].as_str().unwrap());
    let mut ws = open(&app, path, value, Some(&alice), None).await.unwrap();
    let said = read_until(&mut ws, "simulated machine", Duration::from_secs(10)).await;
    assert!(said.contains("\"type\":\"status\""), "{said}");
    drop(ws);
    assert_eq!(
        open(&app, path, value, Some(&alice), None).await.err(),
        Some(404),
        "used once"
    );

    // Bound to its user, machine and kind.
    let t = ticket(&app, &alice, &a, "console").await;
    let value = t["ticket"].as_str().unwrap();
    assert_eq!(
        open(&app, path, value, Some(&bob), None).await.err(),
        Some(404)
    );
    let t = ticket(&app, &alice, &a, "console").await;
    let value = t["ticket"].as_str().unwrap();
    assert_eq!(
        open(
            &app,
            &format!("/api/vps/{a2}/console/ws"),
            value,
            Some(&alice),
            None
        )
        .await
        .err(),
        Some(404),
        "another machine's path"
    );
    let t = ticket(&app, &alice, &a, "console").await;
    let value = t["ticket"].as_str().unwrap();
    assert_eq!(
        open(
            &app,
            &format!("/api/vps/{a}/screen/ws"),
            value,
            Some(&alice),
            None
        )
        .await
        .err(),
        Some(404),
        "a console ticket does not open the screen"
    );

    // The upgrade needs the same user's credentials and, from a browser, Hangar's own Origin.
    let t = ticket(&app, &alice, &a, "console").await;
    let value = t["ticket"].as_str().unwrap();
    assert_eq!(open(&app, path, value, None, None).await.err(), Some(401));
    assert_eq!(
        open(
            &app,
            path,
            value,
            Some(&alice),
            Some("https://evil.example")
        )
        .await
        .err(),
        Some(403)
    );
    assert!(
        open(&app, path, value, Some(&alice), Some(&app.base))
            .await
            .is_ok(),
        "refusals before the ticket is checked leave it unspent; Hangar's own origin is fine"
    );

    // A deleted machine's ticket opens nothing.
    let t = ticket(&app, &alice, &a2, "console").await;
    expect_json(
        app.delete(&format!("/api/vps/{a2}"), Some(&alice)).await,
        StatusCode::ACCEPTED,
    )
    .await;
    assert_eq!(
        open(
            &app,
            t["path"].as_str().unwrap(),
            t["ticket"].as_str().unwrap(),
            Some(&alice),
            None
        )
        .await
        .err(),
        Some(404)
    );
    let opened: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_log WHERE action = 'console.open' AND target_id = $1",
    )
    .bind(&a)
    .fetch_one(&app.state.db)
    .await
    .unwrap();
    assert_eq!(opened, 2, "every console opened is in the audit log");
}

#[tokio::test]
async fn tickets_expire_and_consoles_end_with_their_access() {
    let app = TestApp::builder()
        .config("console_ticket_secs", "1")
        .config("console_max_per_user", "2")
        .spawn()
        .await;
    let (_, jwt) = app.funded_user("carol", 10.0).await;
    let id = vm(&app, &jwt, "c1").await;
    let t = ticket(&app, &jwt, &id, "console").await;
    assert_eq!(t["expires_in"], 1);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        open(
            &app,
            t["path"].as_str().unwrap(),
            t["ticket"].as_str().unwrap(),
            Some(&jwt),
            None
        )
        .await
        .err(),
        Some(404),
        "expired"
    );

    // A console opened with an access token ends when the token is revoked.
    let created = expect_json(
        app.post("/api/tokens", Some(&jwt), json!({"name": "console-bot"}))
            .await,
        StatusCode::CREATED,
    )
    .await;
    let vtk = created["token"].as_str().unwrap().to_owned();
    let mut by_token = console(&app, &vtk, &id).await;
    read_until(
        &mut by_token,
        "\"type\":\"status\"",
        Duration::from_secs(10),
    )
    .await;
    // The per-user limit: two open, a third refused.
    let mut by_jwt = console(&app, &jwt, &id).await;
    let t = ticket(&app, &jwt, &id, "console").await;
    assert_eq!(
        open(
            &app,
            t["path"].as_str().unwrap(),
            t["ticket"].as_str().unwrap(),
            Some(&jwt),
            None
        )
        .await
        .err(),
        Some(429)
    );
    let revoked = app
        .delete(
            &format!("/api/tokens/{}", created["id"].as_str().unwrap()),
            Some(&jwt),
        )
        .await;
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    // Ended at once by the revocation, or by the periodic check when that ran first.
    let ended = read_until(
        &mut by_token,
        "\"type\":\"closed\"",
        Duration::from_secs(10),
    )
    .await;
    assert!(
        ended.contains("The access token was revoked")
            || ended.contains("Access to this machine ended"),
        "{ended}"
    );

    // Deleting the machine ends the rest at once.
    expect_json(
        app.delete(&format!("/api/vps/{id}"), Some(&jwt)).await,
        StatusCode::ACCEPTED,
    )
    .await;
    // Ended at once by the revocation, or by the periodic check when that ran first.
    let ended = read_until(&mut by_jwt, "\"type\":\"closed\"", Duration::from_secs(10)).await;
    assert!(
        ended.contains("The machine is being deleted")
            || ended.contains("Access to this machine ended"),
        "{ended}"
    );
}

#[tokio::test]
async fn an_idle_console_closes() {
    let app = TestApp::builder()
        .config("console_idle_secs", "1")
        .spawn()
        .await;
    let (_, jwt) = app.funded_user("dan", 10.0).await;
    let id = vm(&app, &jwt, "d1").await;
    let mut ws = console(&app, &jwt, &id).await;
    read_until(&mut ws, "without input", Duration::from_secs(10)).await;
}

#[tokio::test]
async fn a_containers_console_runs_commands_follows_resizes_and_is_shared() {
    let Some(docker) = docker_host() else {
        return;
    };
    let app = TestApp::builder()
        .config("docker_host", &docker)
        .config("stop_timeout_secs", "5")
        .spawn()
        .await;
    let (_, token) = app.funded_user("erin", 10.0).await;
    let vps = expect_json(
        app.post(
            "/api/vps",
            Some(&token),
            json!({"name": "shell", "plan_id": "c-micro"}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let id = vps["id"].as_str().unwrap().to_owned();
    app.run_jobs().await;

    let mut first = console(&app, &token, &id).await;
    read_until(&mut first, "\"state\":\"running\"", Duration::from_secs(20)).await;
    // (Quotes keep the typed line, which the TTY echoes, from matching the output.)
    type_in(&mut first, "echo hel''lo\n").await;
    read_until(&mut first, "hello", Duration::from_secs(20)).await;
    first
        .send(Message::Text(
            r#"{"type":"resize","cols":100,"rows":30}"#.into(),
        ))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    type_in(&mut first, "stty size\n").await;
    read_until(&mut first, "30 100", Duration::from_secs(20)).await;

    // A second viewer sees what was printed before it came, then the same live session.
    let mut second = console(&app, &token, &id).await;
    read_until(&mut second, "hello", Duration::from_secs(20)).await;
    type_in(&mut second, "echo sec''ond\n").await;
    read_until(&mut first, "second", Duration::from_secs(20)).await;
    read_until(&mut second, "second", Duration::from_secs(20)).await;

    // Control messages: a ping is answered; what is not a control message is said so.
    second
        .send(Message::Text(r#"{"type":"ping"}"#.into()))
        .await
        .unwrap();
    read_until(&mut second, "pong", Duration::from_secs(10)).await;
    second.send(Message::Text("ls".into())).await.unwrap();
    read_until(
        &mut second,
        "send keystrokes as binary frames",
        Duration::from_secs(10),
    )
    .await;

    // Stopping the machine is reported; starting it picks the console up again.
    expect_json(
        app.post(&format!("/api/vps/{id}/stop"), Some(&token), json!({}))
            .await,
        StatusCode::ACCEPTED,
    )
    .await;
    app.run_jobs().await;
    read_until(&mut first, "\"state\":\"stopped\"", Duration::from_secs(20)).await;
    expect_json(
        app.post(&format!("/api/vps/{id}/start"), Some(&token), json!({}))
            .await,
        StatusCode::ACCEPTED,
    )
    .await;
    app.run_jobs().await;
    read_until(&mut first, "\"state\":\"running\"", Duration::from_secs(20)).await;
    type_in(&mut first, "echo ag''ain\n").await;
    read_until(&mut first, "again", Duration::from_secs(20)).await;

    // Containers have no screen.
    expect_error(
        app.post(
            &format!("/api/vps/{id}/console"),
            Some(&token),
            json!({"kind": "screen"}),
        )
        .await,
        StatusCode::CONFLICT,
        "no screen",
    )
    .await;
}
