//! Console soak: many container consoles held open against a running Hangar for a long time,
//! every one of them answering a command each round, while the server's memory is sampled.
//!
//! ```text
//! cargo run --release -p server --example soak_consoles -- \
//!     <base url> <operator email> <operator password> <server pid> [consoles] [minutes]
//! ```
//!
//! Each console is a machine of its own (one `c-micro` container per console, so every console
//! is a separate TTY session on the engine, not a second viewer of a shared one), owned by users
//! of ten machines each — the default per-user console limit. The operator account funds them.
//! Every 15 seconds each console is sent a command whose output differs from the typed line, and
//! a console that does not show the output within 20 seconds, or whose socket ends, counts as
//! dropped. The server's resident memory (`VmRSS` of `<server pid>`) is printed each round; the
//! figure that matters is the drift between the first round with every console open and the last.
//! The server needs room for the machines: `HANGAR_CPU_OVERCOMMIT` and
//! `HANGAR_MEMORY_OVERCOMMIT` high enough for `consoles` containers on its Docker node.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message};

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const PER_USER: usize = 10;
const ROUND: Duration = Duration::from_secs(15);
const ANSWER_WITHIN: Duration = Duration::from_secs(20);

struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await?;
        let status = res.status().as_u16();
        let value = res.json().await.unwrap_or(Value::Null);
        Ok((status, value))
    }

    async fn post(&self, path: &str, token: Option<&str>, body: Value) -> anyhow::Result<Value> {
        let (status, value) = self
            .call(reqwest::Method::POST, path, token, Some(body))
            .await?;
        if !(200..300).contains(&status) {
            bail!("POST {path} answered {status}: {value}");
        }
        Ok(value)
    }

    async fn login(&self, email: &str, password: &str) -> anyhow::Result<String> {
        let v = self
            .post(
                "/api/auth/login",
                None,
                json!({"email": email, "password": password}),
            )
            .await?;
        Ok(v["token"].as_str().context("a login token")?.to_owned())
    }
}

/// A running machine of a fresh funded user, or an error.
async fn machine(api: &Api, token: &str, name: &str) -> anyhow::Result<String> {
    let vps = api
        .post(
            "/api/vps",
            Some(token),
            json!({"name": name, "plan_id": "c-micro"}),
        )
        .await?;
    let id = vps["id"].as_str().context("a machine id")?.to_owned();
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let (_, v) = api
            .call(
                reqwest::Method::GET,
                &format!("/api/vps/{id}"),
                Some(token),
                None,
            )
            .await?;
        match v["state"].as_str() {
            Some("running") => return Ok(id),
            Some("error") => bail!("machine {name} failed: {v}"),
            _ if Instant::now() > deadline => bail!("machine {name} did not start: {v}"),
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

async fn open(api: &Api, token: &str, id: &str) -> anyhow::Result<Ws> {
    let t = api
        .post(
            &format!("/api/vps/{id}/console"),
            Some(token),
            json!({"kind": "console"}),
        )
        .await?;
    let url = format!(
        "{}{}?ticket={}",
        api.base.replace("http://", "ws://"),
        t["path"].as_str().context("a console path")?,
        t["ticket"].as_str().context("a ticket")?
    );
    let mut req = url.into_client_request()?;
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    let (ws, _) = tokio_tungstenite::connect_async(req).await?;
    Ok(ws)
}

/// Types a command and waits for its output; `false` when the console did not answer in time
/// or ended.
async fn answers(ws: &mut Ws, console: usize, round: usize) -> bool {
    let expected = format!("soak-{console}-{round}");
    // The typed line reads `soak-%s`, so only the command's output matches.
    let typed = format!("printf 'soak-%s\\n' {console}-{round}\n");
    if ws
        .send(Message::Binary(typed.into_bytes().into()))
        .await
        .is_err()
    {
        return false;
    }
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + ANSWER_WITHIN;
    while !seen.contains(&expected) {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Message::Binary(b)))) => seen.push_str(&String::from_utf8_lossy(&b)),
            Ok(Some(Ok(_))) => {}
            _ => return false,
        }
        // Keep only the tail: the marker can straddle two frames.
        if seen.len() > 4096 {
            seen.drain(..seen.len() - 256);
        }
    }
    true
}

fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .context("VmRSS")?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .context("a figure")?
        .parse()?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        bail!("usage: soak_consoles <base url> <operator email> <operator password> <server pid> [consoles] [minutes]");
    }
    let api = Api {
        http: reqwest::Client::new(),
        base: args[1].trim_end_matches('/').to_owned(),
    };
    let pid: u32 = args[4].parse()?;
    let consoles: usize = args.get(5).and_then(|s| s.parse().ok()).unwrap_or(200);
    let minutes: u64 = args.get(6).and_then(|s| s.parse().ok()).unwrap_or(10);
    let operator = api.login(&args[2], &args[3]).await?;
    let run = std::process::id();

    let started = Instant::now();
    println!("rss before any machine: {} KiB", rss_kib(pid)?);
    let mut owners = Vec::new();
    for u in 0..consoles.div_ceil(PER_USER) {
        let username = format!("soak{run}u{u}");
        let email = format!("{username}@example.com");
        let password = "soak-password-1";
        let user = api
            .post(
                "/api/auth/register",
                None,
                json!({"email": email, "username": username, "password": password}),
            )
            .await?;
        let id = user["id"].as_str().context("a user id")?;
        api.post(
            &format!("/api/admin/users/{id}/credit"),
            Some(&operator),
            json!({"amount": 50}),
        )
        .await?;
        owners.push(api.login(&email, password).await?);
    }
    // Machines start a few at a time: the engine, not the soak, is what would be measured.
    let ids: Vec<anyhow::Result<String>> = futures::stream::iter(0..consoles)
        .map(|i| {
            let (api, token) = (&api, owners[i / PER_USER].clone());
            async move { machine(api, &token, &format!("soak-{i}")).await }
        })
        .buffered(8)
        .collect()
        .await;
    let ids = ids.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    println!(
        "{consoles} machines running after {:.0} s",
        started.elapsed().as_secs_f64()
    );

    let mut sockets = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        sockets.push(open(&api, &owners[i / PER_USER], id).await?);
    }
    println!("{consoles} consoles open; rss {} KiB", rss_kib(pid)?);

    let soak_started = Instant::now();
    let mut dropped = vec![false; consoles];
    let mut first_rss = None;
    let mut round = 0;
    while soak_started.elapsed() < Duration::from_secs(minutes * 60) {
        let round_started = Instant::now();
        let results: Vec<bool> = futures::future::join_all(
            sockets
                .iter_mut()
                .enumerate()
                .filter(|(i, _)| !dropped[*i])
                .map(|(i, ws)| answers(ws, i, round)),
        )
        .await;
        let live: Vec<usize> = (0..consoles).filter(|i| !dropped[*i]).collect();
        for (i, ok) in live.into_iter().zip(results) {
            dropped[i] |= !ok;
        }
        let rss = rss_kib(pid)?;
        first_rss.get_or_insert(rss);
        println!(
            "round {round:>3} at {:>4.0} s: {} answering, {} dropped, rss {rss} KiB, round took {:.2} s",
            soak_started.elapsed().as_secs_f64(),
            dropped.iter().filter(|d| !**d).count(),
            dropped.iter().filter(|d| **d).count(),
            round_started.elapsed().as_secs_f64()
        );
        round += 1;
        tokio::time::sleep(ROUND.saturating_sub(round_started.elapsed())).await;
    }
    let last = rss_kib(pid)?;
    let first = first_rss.unwrap_or(last);
    println!(
        "{consoles} consoles for {minutes} min: {} dropped; rss first round {first} KiB, last {last} KiB ({:+.1}%)",
        dropped.iter().filter(|d| **d).count(),
        (last as f64 - first as f64) / first as f64 * 100.0
    );
    for ws in &mut sockets {
        let _ = ws.close(None).await;
    }
    for (i, id) in ids.iter().enumerate() {
        let _ = api
            .call(
                reqwest::Method::DELETE,
                &format!("/api/vps/{id}"),
                Some(&owners[i / PER_USER]),
                None,
            )
            .await;
    }
    Ok(())
}
