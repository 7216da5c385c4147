//! Node daemon benchmarks (docs/BENCHMARKS.md), against a `hangar-node` started as a separate
//! process so its memory is its own:
//!
//! ```text
//! cargo build --release -p hangar-node --bin hangar-node --example bench_node
//! target/release/examples/bench_node files [megabytes]          # listing 10,000 entries, 1 GB up and down
//! target/release/examples/bench_node fanout <docker host> [viewers] [seconds]
//! ```
//!
//! `fanout` runs a container printing about 10,000 numbered lines a second (bursts of 1,000
//! every 100 ms) to `viewers` WebSocket viewers, and reports what each received, what was
//! skipped, and the daemon's memory.

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use futures::StreamExt;
use serde_json::{json, Value};

const TOKEN: &str = "lightd_bench0123456789abcdef0123456789";

struct Daemon {
    child: std::process::Child,
    base: String,
    root: PathBuf,
    http: reqwest::Client,
}

impl Daemon {
    fn start(docker: Option<&str>) -> anyhow::Result<Self> {
        let root = std::env::temp_dir().join(format!("hangar-node-bench-{}", std::process::id()));
        std::fs::create_dir_all(&root)?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut config = hangar_node::config::Config::default();
        config.server.port = port;
        config.authorization.token = TOKEN.into();
        config.storage.root = root.join("storage");
        if let Some(d) = docker {
            config.docker.host = d.into();
        }
        let path = root.join("config.toml");
        std::fs::write(&path, toml::to_string(&config)?)?;
        let exe = std::env::current_exe()?;
        let bin = exe
            .parent()
            .and_then(|p| p.parent())
            .map(|p| p.join("hangar-node"))
            .unwrap_or_default();
        let child = std::process::Command::new(&bin)
            .arg("--config")
            .arg(&path)
            .env("RUST_LOG", "warn")
            .spawn()
            .map_err(|e| {
                anyhow::anyhow!(
                    "starting {}: {e} (build the hangar-node binary first)",
                    bin.display()
                )
            })?;
        std::thread::sleep(Duration::from_millis(500));
        Ok(Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            root,
            http: reqwest::Client::new(),
        })
    }

    fn rss_kib(&self) -> u64 {
        status_kib(self.child.id(), "VmRSS:")
    }

    fn peak_kib(&self) -> u64 {
        status_kib(self.child.id(), "VmHWM:")
    }

    async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        let res = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await?;
        anyhow::ensure!(
            res.status().is_success(),
            "POST {path}: {}",
            res.text().await?
        );
        Ok(res.json().await?)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn status_kib(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(key)).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

async fn files(megabytes: u64) -> anyhow::Result<()> {
    let d = Daemon::start(None)?;
    let volume = d.post("/volumes", json!({})).await?;
    let id = volume["volume_id"].as_str().unwrap_or_default().to_owned();
    let dir = PathBuf::from(volume["path"].as_str().unwrap_or_default());
    std::fs::create_dir(dir.join("many"))?;
    for i in 0..10_000 {
        std::fs::write(dir.join(format!("many/entry-{i:05}.dat")), b"x")?;
    }
    let rss_before = d.rss_kib();
    let mut one = Vec::new();
    let mut paged = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let res = d
            .http
            .get(format!(
                "{}/volumes/{id}/files?path=many&limit=10000",
                d.base
            ))
            .bearer_auth(TOKEN)
            .send()
            .await?;
        let v: Value = res.json().await?;
        anyhow::ensure!(v["files"].as_array().map(Vec::len) == Some(10_000));
        one.push(t.elapsed().as_secs_f64() * 1000.0);
        let t = Instant::now();
        let res = d
            .http
            .get(format!("{}/volumes/{id}/files?path=many&limit=100", d.base))
            .bearer_auth(TOKEN)
            .send()
            .await?;
        let _: Value = res.json().await?;
        paged.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    one.sort_by(f64::total_cmp);
    paged.sort_by(f64::total_cmp);
    println!("listing 10,000 entries: one page of 10,000 {:.1} ms, a page of 100 {:.1} ms (medians of 5)", one[2], paged[2]);

    let bytes = megabytes * 1_000_000;
    let chunk = bytes::Bytes::from(vec![7u8; 1 << 20]);
    let chunks = bytes.div_ceil(1 << 20);
    let stream =
        futures::stream::iter((0..chunks).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
    let t = Instant::now();
    let res = d
        .http
        .put(format!(
            "{}/volumes/{id}/files/content?path=big.bin",
            d.base
        ))
        .bearer_auth(TOKEN)
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await?;
    anyhow::ensure!(res.status().is_success(), "upload: {}", res.text().await?);
    let up = t.elapsed().as_secs_f64();
    let size = chunks * (1 << 20);
    let peak_up = d.peak_kib();
    let t = Instant::now();
    let res = d
        .http
        .get(format!(
            "{}/volumes/{id}/files/content?path=big.bin",
            d.base
        ))
        .bearer_auth(TOKEN)
        .send()
        .await?;
    let mut body = res.bytes_stream();
    let mut got = 0u64;
    while let Some(part) = body.next().await {
        got += part?.len() as u64;
    }
    anyhow::ensure!(got == size, "downloaded {got} of {size}");
    let down = t.elapsed().as_secs_f64();
    println!(
        "{:.2} GB upload {:.0} MB/s, download {:.0} MB/s; daemon RSS {} MB before, peak {} MB after the upload, peak {} MB after the download",
        size as f64 / 1e9,
        size as f64 / 1e6 / up,
        size as f64 / 1e6 / down,
        rss_before / 1024,
        peak_up / 1024,
        d.peak_kib() / 1024,
    );
    Ok(())
}

async fn fanout(docker: &str, viewers: usize, seconds: u64) -> anyhow::Result<()> {
    let d = Daemon::start(Some(docker))?;
    let volume = d.post("/volumes", json!({})).await?;
    let id = format!("fanout-{}", std::process::id());
    let bursts = seconds * 10;
    let script = format!(
        "i=1; n=0; while [ $n -lt {bursts} ]; do seq $i $((i+999)); i=$((i+1000)); n=$((n+1)); sleep 0.1; done; echo END; sleep 3600"
    );
    d.post(
        "/containers",
        json!({"internal_id": id, "image": "localhost/hangar-busybox:latest", "volume_id": volume["volume_id"], "startup_command": script}),
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ws_url = format!(
        "{}/containers/{id}/ws?token={TOKEN}",
        d.base.replace("http://", "ws://")
    );
    let mut tasks = Vec::new();
    for _ in 0..viewers {
        let (ws, _) = tokio_tungstenite::connect_async(&ws_url).await?;
        tasks.push(tokio::spawn(async move {
            let (_, mut stream) = ws.split();
            let (mut lines, mut skipped_notices, mut pending) = (0u64, 0u64, String::new());
            let mut live = false;
            while let Some(Ok(msg)) = stream.next().await {
                let tokio_tungstenite::tungstenite::Message::Text(t) = msg else {
                    continue;
                };
                let v: Value = serde_json::from_str(t.as_str()).unwrap_or_default();
                match v["event"].as_str() {
                    Some("console") if live => {
                        pending.push_str(v["data"].as_str().unwrap_or_default());
                        while let Some(end) = pending.find('\n') {
                            let line: String = pending.drain(..=end).collect();
                            if line.trim() == "END" {
                                return (lines, skipped_notices);
                            }
                            lines += 1;
                        }
                    }
                    Some("event") if v["data"] == "running" => live = true,
                    Some("daemon_message")
                        if v["data"].as_str().is_some_and(|d| d.contains("skipped")) =>
                    {
                        skipped_notices += 1
                    }
                    _ => {}
                }
            }
            (lines, skipped_notices)
        }));
    }
    let rss_idle = d.rss_kib();
    let started = Instant::now();
    d.post(&format!("/containers/{id}/start"), json!({}))
        .await?;
    let mut samples = Vec::new();
    let sampler = async {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            samples.push(d.rss_kib());
            if started.elapsed() > Duration::from_secs(seconds + 60) {
                break;
            }
        }
    };
    let results = tokio::select! {
        r = futures::future::join_all(tasks) => r,
        () = sampler => anyhow::bail!("the viewers did not see the end"),
    };
    let elapsed = started.elapsed().as_secs_f64();
    let expected = bursts * 1000;
    let mut got: Vec<u64> = results
        .iter()
        .map(|r| r.as_ref().map(|(l, _)| *l).unwrap_or(0))
        .collect();
    got.sort();
    let notices: u64 = results
        .iter()
        .map(|r| r.as_ref().map(|(_, n)| *n).unwrap_or(0))
        .sum();
    println!(
        "{viewers} viewers, {expected} lines in {elapsed:.1} s ({:.0} lines/s): each viewer received min {} / median {} / max {}; {} lines missing in all; {notices} 'skipped' notices",
        expected as f64 / elapsed,
        got[0],
        got[got.len() / 2],
        got[got.len() - 1],
        got.iter().map(|g| expected.saturating_sub(*g)).sum::<u64>(),
    );
    println!(
        "daemon RSS: {} MB with the viewers idle, max {} MB while streaming, {} MB at the end",
        rss_idle / 1024,
        samples.iter().max().copied().unwrap_or(0) / 1024,
        d.rss_kib() / 1024
    );
    let _ = d
        .http
        .delete(format!("{}/containers/{id}", d.base))
        .bearer_auth(TOKEN)
        .send()
        .await;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("files") => files(args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1000)).await,
        Some("fanout") => {
            let docker = args
                .get(2)
                .ok_or_else(|| anyhow::anyhow!("fanout needs a docker host"))?;
            fanout(
                docker,
                args.get(3).and_then(|s| s.parse().ok()).unwrap_or(100),
                args.get(4).and_then(|s| s.parse().ok()).unwrap_or(30),
            )
            .await
        }
        _ => anyhow::bail!(
            "usage: bench_node files [megabytes] | fanout <docker host> [viewers] [seconds]"
        ),
    }
}
