//! Console relay benchmark: Hangar's WebSocket relay (the one VM screens use,
//! `api::console::relay_screen`) against Debian's `websockify` (noVNC's own proxy) over the same
//! local TCP sources, in one run: throughput from a source that writes zeros as fast as it can,
//! and the round trip of one keystroke through the relay to an echo server against a direct TCP
//! connection to it.
//!
//! `cargo run --release -p server --example bench_console -- [megabytes] [echo rounds] [streams]`
//!
//! The zero source and the reading client each run in a process of their own (this binary,
//! started again as `zero` or `client`), so the relay's process does nothing but relay, as
//! websockify's does; otherwise the client and the relay compete for one runtime and the figure
//! measures the client. Needs `websockify` on PATH (Debian's package).

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

/// MB/s through the relay at `url` with `streams` clients at once, each in its own process
/// reading `bytes`: the sum of what arrived over the time until the last one finished.
async fn throughput(url: &str, bytes: usize, streams: usize) -> anyhow::Result<f64> {
    let exe = std::env::current_exe()?;
    let started = Instant::now();
    let mut clients = Vec::new();
    for _ in 0..streams {
        clients.push(
            tokio::process::Command::new(&exe)
                .args(["client", url, &bytes.to_string()])
                .stdout(std::process::Stdio::piped())
                .spawn()?,
        );
    }
    for client in clients {
        let out = client.wait_with_output().await?;
        anyhow::ensure!(out.status.success(), "a client of {url} failed");
    }
    Ok((bytes * streams) as f64 / 1e6 / started.elapsed().as_secs_f64())
}

/// The `client` role: reads `bytes` from the relay at `url` as fast as a client can, by counting
/// the bytes arriving on the socket after the handshake rather than parsing frames (headers are a
/// few bytes per 64 KiB frame). A WebSocket library on the reading side measured about the same
/// for both relays: the library was the limit, not the relay.
async fn read_through(url: &str, bytes: usize) -> anyhow::Result<()> {
    let url = url::Url::parse(url)?;
    let host = url.host_str().unwrap_or("127.0.0.1");
    let port = url.port().unwrap_or(80);
    let mut conn = TcpStream::connect((host, port)).await?;
    conn.write_all(
        format!(
            "GET {} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: binary\r\n\r\n",
            url.path()
        )
        .as_bytes(),
    )
    .await?;
    let mut buf = vec![0u8; 1 << 20];
    let mut head = Vec::new();
    if url.scheme() == "tcp" {
        // No WebSocket: straight from the source or a plain TCP forwarder.
        let mut got = 0;
        while got < bytes {
            let n = conn.read(&mut buf).await?;
            anyhow::ensure!(n > 0, "{url} ended early");
            got += n;
        }
        return Ok(());
    }
    let mut got = loop {
        let n = conn.read(&mut buf).await?;
        anyhow::ensure!(n > 0, "{url} closed during the handshake");
        head.extend_from_slice(&buf[..n]);
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            anyhow::ensure!(
                head.starts_with(b"HTTP/1.1 101"),
                "{url} refused the upgrade"
            );
            break head.len() - end - 4;
        }
    };
    while got < bytes {
        let n = conn.read(&mut buf).await?;
        anyhow::ensure!(n > 0, "the relay at {url} ended early");
        got += n;
    }
    Ok(())
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
    match args.get(1).map(String::as_str) {
        Some("client") => return read_through(&args[2], args[3].parse()?).await,
        Some("zero") => {
            println!("{}", zero_source().await?);
            return std::future::pending().await;
        }
        _ => {}
    }
    let megabytes: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(500);
    let rounds: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(2000);
    let streams: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1);
    let mut zero_process = tokio::process::Command::new(std::env::current_exe()?)
        .arg("zero")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let zero: u16 = {
        let mut line = String::new();
        let out = zero_process.stdout.take().expect("piped");
        tokio::io::AsyncBufReadExt::read_line(&mut tokio::io::BufReader::new(out), &mut line)
            .await?;
        line.trim().parse()?
    };
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

    // A plain TCP forwarder in the relay's process: what relaying costs without WebSocket framing.
    let forward = TcpListener::bind("127.0.0.1:0").await?;
    let tcp = forward.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = forward.accept().await {
            tokio::spawn(async move {
                if let Ok(mut up) = TcpStream::connect(("127.0.0.1", zero)).await {
                    let _ = tokio::io::copy_bidirectional(&mut conn, &mut up).await;
                }
            });
        }
    });

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
    println!(
        "throughput, {megabytes} MB per stream from a local TCP source of zeros, \
         {streams} stream(s) at once, median of 3:"
    );
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    let mut plain = Vec::new();
    let mut direct = Vec::new();
    for _ in 0..3 {
        direct.push(throughput(&format!("tcp://127.0.0.1:{zero}/"), bytes, streams).await?);
        plain.push(throughput(&format!("tcp://127.0.0.1:{tcp}/"), bytes, streams).await?);
        let url = format!("ws://127.0.0.1:{hangar}/relay/{zero}");
        ours.push(throughput(&url, bytes, streams).await?);
        theirs.push(throughput(&format!("ws://127.0.0.1:{wz}/"), bytes, streams).await?);
    }
    let (ours, theirs) = (median(ours), median(theirs));
    println!(
        "  no relay         {:8.1} MB/s (source to client)",
        median(direct)
    );
    println!(
        "  plain TCP relay  {:8.1} MB/s (tokio's copy, no framing)",
        median(plain)
    );
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
    drop(zero_process);
    Ok(())
}
