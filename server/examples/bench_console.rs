//! Console relay benchmark: Hangar's WebSocket relay (the one VM screens use,
//! `api::console::relay_screen`) against Debian's `websockify` (noVNC's own proxy) over the same
//! local TCP sources, in one run: throughput from a source that writes zeros as fast as it can,
//! and the round trip of one keystroke through the relay to an echo server against a direct TCP
//! connection to it.
//!
//! `cargo run --release -p server --example bench_console -- [megabytes] [echo rounds]`
//!
//! Needs `websockify` on PATH (Debian's package).

use std::time::{Duration, Instant};

use axum::{
    extract::{Path, WebSocketUpgrade},
    routing::get,
    Router,
};
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message};

/// A TCP server that sends zeros forever to whoever connects.
async fn zero_source() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let block = vec![0u8; 64 * 1024];
                while conn.write_all(&block).await.is_ok() {}
            });
        }
    });
    Ok(port)
}

/// A TCP server that echoes what it receives.
async fn echo_source() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            let _ = conn.set_nodelay(true);
            tokio::spawn(async move {
                let (mut r, mut w) = conn.into_split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    Ok(port)
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(url: &str) -> anyhow::Result<Ws> {
    let mut req = url.into_client_request()?;
    req.headers_mut()
        .insert("sec-websocket-protocol", "binary".parse()?);
    let (ws, _) = tokio_tungstenite::connect_async(req).await?;
    Ok(ws)
}

/// MB/s read through the relay at `url` until `bytes` arrived.
async fn throughput(url: &str, bytes: usize) -> anyhow::Result<f64> {
    let mut ws = connect(url).await?;
    let started = Instant::now();
    let mut got = 0usize;
    while got < bytes {
        match ws.next().await {
            Some(Ok(Message::Binary(b))) => got += b.len(),
            Some(Ok(Message::Text(t))) => got += t.len(),
            Some(Ok(_)) => {}
            other => anyhow::bail!("the relay at {url} ended early: {other:?}"),
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let _ = ws.close(None).await;
    Ok(got as f64 / 1e6 / secs)
}

/// Round trips of one byte through the relay at `url`, in milliseconds.
async fn echo_ws(url: &str, rounds: usize) -> anyhow::Result<Vec<f64>> {
    let mut ws = connect(url).await?;
    let mut ms = Vec::with_capacity(rounds);
    for i in 0..rounds {
        let t = Instant::now();
        ws.send(Message::Binary(vec![(i % 251) as u8].into()))
            .await?;
        loop {
            match ws.next().await {
                Some(Ok(Message::Binary(b))) if !b.is_empty() => break,
                Some(Ok(_)) => {}
                other => anyhow::bail!("echo through {url} ended: {other:?}"),
            }
        }
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(ms)
}

async fn echo_direct(port: u16, rounds: usize) -> anyhow::Result<Vec<f64>> {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).await?;
    conn.set_nodelay(true)?;
    let mut ms = Vec::with_capacity(rounds);
    let mut one = [0u8; 1];
    for i in 0..rounds {
        let t = Instant::now();
        conn.write_all(&[(i % 251) as u8]).await?;
        conn.read_exact(&mut one).await?;
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(ms)
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn latency(name: &str, mut ms: Vec<f64>) {
    ms.sort_by(f64::total_cmp);
    println!(
        "{name:<28} n={:<5} p50 {:6.3} ms   p99 {:6.3} ms",
        ms.len(),
        pct(&ms, 0.5),
        pct(&ms, 0.99)
    );
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let megabytes: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(500);
    let rounds: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(2000);
    let zero = zero_source().await?;
    let echo = echo_source().await?;

    // Hangar's relay, without tickets (they are not what is measured): /relay/{port}.
    let app = Router::new().route(
        "/relay/{port}",
        get(|Path(port): Path<u16>, ws: WebSocketUpgrade| async move {
            ws.protocols(["binary"])
                .on_upgrade(move |socket| async move {
                    if let Ok(tcp) = TcpStream::connect(("127.0.0.1", port)).await {
                        let _ = tcp.set_nodelay(true);
                        hangar_server::api::console::relay_screen(socket, Box::new(tcp), None)
                            .await;
                    }
                })
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let hangar = listener.local_addr()?.port();
    tokio::spawn(async move { axum::serve(listener, app.into_make_service()).await });

    // websockify in front of each source.
    let (wz, we) = (free_port()?, free_port()?);
    let mut proxies = Vec::new();
    for (listen, target) in [(wz, zero), (we, echo)] {
        proxies.push(
            tokio::process::Command::new("websockify")
                .args([format!("127.0.0.1:{listen}"), format!("127.0.0.1:{target}")])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .kill_on_drop(true)
                .spawn()?,
        );
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    let bytes = megabytes * 1_000_000;
    println!("throughput, {megabytes} MB from a local TCP source of zeros, median of 3:");
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for _ in 0..3 {
        ours.push(throughput(&format!("ws://127.0.0.1:{hangar}/relay/{zero}"), bytes).await?);
        theirs.push(throughput(&format!("ws://127.0.0.1:{wz}/"), bytes).await?);
    }
    let (ours, theirs) = (median(ours), median(theirs));
    println!("  Hangar's relay   {ours:8.1} MB/s");
    println!("  websockify       {theirs:8.1} MB/s");
    println!("  ratio            {:8.2}x", ours / theirs);

    println!("keystroke echo, one byte at a time, {rounds} rounds:");
    latency("  direct TCP", echo_direct(echo, rounds).await?);
    latency(
        "  through Hangar's relay",
        echo_ws(&format!("ws://127.0.0.1:{hangar}/relay/{echo}"), rounds).await?,
    );
    latency(
        "  through websockify",
        echo_ws(&format!("ws://127.0.0.1:{we}/"), rounds).await?,
    );
    drop(proxies);
    Ok(())
}
