//! The inside-a-machine story, the same for every driver that reaches inside a machine (a
//! container on the real Docker-API engine, a real QEMU guest over SSH): a command's output, exit
//! code and user; a timeout and a cancel that really stop the process; a background job polled
//! to its end; a file up and down byte for byte, and the refusals around files.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use super::{expect_error, expect_json, Body, TestApp};

/// Starts an upload of `announced` bytes to `url` and breaks it off after `sent` of them, as a
/// dropped connection does, then gives the server a moment to notice. Whatever the answer, what
/// matters is what is left on the machine.
pub async fn upload_cut_short(url: String, token: &str, announced: u64, sent: usize) {
    let chunks: Vec<std::io::Result<axum::body::Bytes>> = vec![
        Ok(axum::body::Bytes::from(vec![b'x'; sent])),
        Err(std::io::Error::other("the connection dropped")),
    ];
    let _ = reqwest::Client::new()
        .put(url)
        .bearer_auth(token)
        .header(reqwest::header::CONTENT_LENGTH, announced)
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
}

pub async fn exec(app: &TestApp, token: &str, id: &str, body: Value) -> reqwest::Response {
    app.post(&format!("/api/vps/{id}/exec"), Some(token), body)
        .await
}

pub async fn run_ok(app: &TestApp, token: &str, id: &str, command: &str) -> Body {
    expect_json(
        exec(app, token, id, json!({ "command": command })).await,
        StatusCode::OK,
    )
    .await
}

/// Polls a background job until its status is one of `done`; returns the job.
pub async fn wait_job(app: &TestApp, token: &str, id: &str, job: &str, done: &[&str]) -> Body {
    for _ in 0..300 {
        let j = expect_json(
            app.get(&format!("/api/vps/{id}/jobs/{job}"), Some(token))
                .await,
            StatusCode::OK,
        )
        .await;
        if done.contains(&j["status"].as_str().unwrap()) {
            return j;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("job {job} never reached {done:?}");
}

/// What `ps` shows in the machine.
pub async fn processes(app: &TestApp, token: &str, id: &str) -> String {
    run_ok(app, token, id, "ps").await["stdout"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Waits until `needle` shows in the machine's processes (a background job has started it).
async fn wait_process(app: &TestApp, token: &str, id: &str, needle: &str) {
    for _ in 0..100 {
        if processes(app, token, id).await.contains(needle) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{needle} never showed in the machine's processes");
}

/// The `file_max_bytes` the story's app runs with.
pub const FILE_MAX_BYTES: &str = "300000";

/// The whole story on the running machine `id` of the user with `token`; the app runs with
/// `file_max_bytes` = [`FILE_MAX_BYTES`].
pub async fn story(app: &TestApp, token: &str, id: &str) {
    // Output apart, exact exit code, as root.
    let r = run_ok(app, token, id, "echo out; echo err >&2; exit 3").await;
    assert_eq!(
        (
            r["stdout"].as_str(),
            r["stderr"].as_str(),
            r["exit_code"].as_i64()
        ),
        (Some("out\n"), Some("err\n"), Some(3)),
        "{}",
        r.text
    );
    assert!(r["duration_ms"].as_i64().unwrap() >= 0);
    assert_eq!(run_ok(app, token, id, "id -u").await["stdout"], "0\n");
    let quoted = run_ok(app, token, id, "printf '%s|' \"a b\" 'it'\\''s'").await;
    assert_eq!(
        quoted["stdout"], "a b|it's|",
        "quoting reaches the shell intact"
    );

    // A sync command past its timeout is killed, keeping what it printed.
    let slow = expect_json(
        exec(
            app,
            token,
            id,
            json!({"command": "echo started; sleep 61", "timeout_seconds": 2}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(slow["timed_out"], true, "{}", slow.text);
    assert_eq!(slow["stdout"], "started\n");
    assert!(
        !processes(app, token, id).await.contains("sleep 61"),
        "the timed-out command is gone from the machine"
    );

    // Background: polled to its end; a long one cancelled, and really stopped.
    let started = expect_json(
        exec(
            app,
            token,
            id,
            json!({"command": "sleep 1; echo finished", "background": true}),
        )
        .await,
        StatusCode::ACCEPTED,
    )
    .await;
    assert_eq!(started["status"], "pending");
    let job = started["job_id"].as_str().unwrap().to_owned();
    let done = wait_job(
        app,
        token,
        id,
        &job,
        &["done", "timeout", "cancelled", "failed"],
    )
    .await;
    assert_eq!(
        (
            done["status"].as_str(),
            done["stdout"].as_str(),
            done["exit_code"].as_i64()
        ),
        (Some("done"), Some("finished\n"), Some(0)),
        "{}",
        done.text
    );
    let long = expect_json(
        exec(
            app,
            token,
            id,
            json!({"command": "sleep 62", "background": true, "timeout_seconds": 120}),
        )
        .await,
        StatusCode::ACCEPTED,
    )
    .await;
    let long = long["job_id"].as_str().unwrap().to_owned();
    wait_job(app, token, id, &long, &["running"]).await;
    wait_process(app, token, id, "sleep 62").await;
    expect_json(
        app.delete(&format!("/api/vps/{id}/jobs/{long}"), Some(token))
            .await,
        StatusCode::OK,
    )
    .await;
    let ended = wait_job(
        app,
        token,
        id,
        &long,
        &["cancelled", "done", "timeout", "failed"],
    )
    .await;
    assert_eq!(ended["status"], "cancelled");
    assert!(
        !processes(app, token, id).await.contains("sleep 62"),
        "the cancelled process is gone from the machine"
    );

    // Files: up and down byte for byte, seen by the machine; the refusals.
    let url = |path: &str| app.url(&format!("/api/vps/{id}/files?path={path}"));
    let client = reqwest::Client::new();
    let content: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let put = client
        .put(url("/root/blob.bin"))
        .bearer_auth(token)
        .body(content.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::NO_CONTENT);
    let got = client
        .get(url("/root/blob.bin"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), StatusCode::OK);
    assert_eq!(got.headers()["content-type"], "application/octet-stream");
    assert_eq!(
        got.headers()["content-length"],
        content.len().to_string().as_str()
    );
    assert_eq!(got.bytes().await.unwrap().as_ref(), content.as_slice());
    let size = run_ok(app, token, id, "wc -c < /root/blob.bin").await;
    assert_eq!(size["stdout"].as_str().unwrap().trim(), "200000");
    // An upload broken off half-way (a dropped connection) leaves the old file whole: files
    // stream into the machine, so only a complete one may replace it.
    upload_cut_short(url("/root/blob.bin"), token, 200_000, 64 * 1024).await;
    let after = client
        .get(url("/root/blob.bin"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(after.bytes().await.unwrap().as_ref(), content.as_slice());
    let listing = run_ok(app, token, id, "ls -a /root").await;
    assert!(
        !listing["stdout"]
            .as_str()
            .unwrap()
            .contains("hangar-upload"),
        "no staging file is left behind: {:?}",
        listing["stdout"]
    );
    let missing = client
        .get(url("/root/nope.txt"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    expect_error(
        client
            .put(url("/no/such/dir/x"))
            .bearer_auth(token)
            .body("x")
            .send()
            .await
            .unwrap(),
        StatusCode::CONFLICT,
        "does not exist",
    )
    .await;
    expect_error(
        client
            .get(url("/root"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
        "directory",
    )
    .await;
    // A file the machine made that is over the limit is refused on the way out.
    run_ok(app, token, id, "head -c 400000 /dev/zero > /root/large").await;
    expect_error(
        client
            .get(url("/root/large"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap(),
        StatusCode::PAYLOAD_TOO_LARGE,
        "limit",
    )
    .await;
}
