//! A daemon on a random port with its own storage directory, and a client for it.

#![allow(dead_code)]

use std::path::PathBuf;

use hangar_node::config::Config;
use reqwest::{Method, StatusCode};
use serde_json::Value;

pub const TOKEN: &str = "lightd_0123456789abcdef0123456789abcdef";

pub struct Daemon {
    pub base: String,
    pub root: PathBuf,
    pub config_path: PathBuf,
    pub node: hangar_node::Node,
    http: reqwest::Client,
    server: tokio::task::JoinHandle<()>,
}

/// A directory of its own under the system's temporary directory, removed with the daemon.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "hangar-node-{name}-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn config(root: &std::path::Path) -> Config {
    let mut config = Config::default();
    config.authorization.token = TOKEN.into();
    config.storage.root = root.join("storage");
    config
}

impl Daemon {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(change: impl FnOnce(&mut Config)) -> Self {
        let root = scratch("daemon");
        let mut config = config(&root);
        change(&mut config);
        Self::start_at(root, config).await
    }

    /// A daemon on an existing storage directory (a restart).
    pub async fn start_at(root: PathBuf, config: Config) -> Self {
        let config_path = root.join("config.toml");
        std::fs::write(&config_path, toml::to_string(&config).unwrap()).unwrap();
        let node = hangar_node::Node::open(config, config_path.clone())
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app = hangar_node::api::router(node.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            base,
            root,
            config_path,
            node,
            http: reqwest::Client::new(),
            server,
        }
    }

    /// Stops serving and answers the storage directory and config, for a restart.
    pub fn stop(self) -> (PathBuf, Config) {
        self.server.abort();
        let config = self.node.config().as_ref().clone();
        let root = self.root.clone();
        std::mem::forget(self); // keep the directory for the next daemon
        (root, config)
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let text = res.text().await.unwrap();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    /// The status of a GET with `token`.
    pub async fn status_as(&self, token: Option<&str>, path: &str) -> StatusCode {
        self.call(Method::GET, path, token, None).await.0
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(TOKEN), None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(TOKEN), Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::DELETE, path, Some(TOKEN), None).await
    }

    pub async fn put_bytes(&self, path: &str, body: Vec<u8>) -> (StatusCode, Value) {
        let res = self
            .http
            .put(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = res.status();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    pub async fn get_bytes(&self, path: &str) -> (StatusCode, Vec<u8>) {
        let res = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        (res.status(), res.bytes().await.unwrap().to_vec())
    }

    /// A new volume (with `limit` bytes, if any); its id and directory on the host.
    pub async fn volume(&self, limit: Option<u64>) -> (String, PathBuf) {
        let body = match limit {
            Some(l) => serde_json::json!({"size_limit": l}),
            None => serde_json::json!({}),
        };
        let (status, v) = self.post("/volumes", body).await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        (
            v["volume_id"].as_str().unwrap().to_owned(),
            PathBuf::from(v["path"].as_str().unwrap()),
        )
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.server.abort();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Asserts a `{"error": ...}` answer with this status and message.
pub fn assert_error(answer: &(StatusCode, Value), status: StatusCode, message: &str) {
    assert_eq!(answer.0, status, "{}", answer.1);
    let got = answer.1["error"].as_str().unwrap_or_default();
    assert!(
        got.contains(message),
        "expected an error containing {message:?}, got {got:?}"
    );
}

/// The Docker-API engine the container tests use (scripts/test starts Podman's service).
pub fn docker_host() -> Option<String> {
    match std::env::var("HANGAR_TEST_DOCKER_HOST") {
        Ok(uri) if !uri.is_empty() => Some(uri),
        _ if std::env::var("HANGAR_TEST_SKIP_DOCKER").as_deref() == Ok("1") => None,
        _ => panic!(
            "HANGAR_TEST_DOCKER_HOST is not set: run scripts/test (it starts Podman), or set \
             HANGAR_TEST_SKIP_DOCKER=1 to skip the container tests"
        ),
    }
}

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

impl Daemon {
    /// A container's WebSocket, the token in the query as a browser would send it.
    pub async fn socket(&self, id: &str, token: &str) -> Ws {
        let url = format!(
            "{}/containers/{id}/ws?token={token}",
            self.base.replace("http://", "ws://")
        );
        tokio_tungstenite::connect_async(url)
            .await
            .expect("the WebSocket opens")
            .0
    }
}

/// Events from `ws` until one satisfies `done`; panics with everything seen after `secs`.
#[track_caller]
pub fn until<'a>(
    ws: &'a mut Ws,
    secs: u64,
    done: impl Fn(&Value) -> bool + 'a,
) -> impl std::future::Future<Output = Vec<Value>> + 'a {
    let caller = std::panic::Location::caller();
    until_at(ws, secs, done, caller)
}

async fn until_at(
    ws: &mut Ws,
    secs: u64,
    done: impl Fn(&Value) -> bool,
    caller: &'static std::panic::Location<'static>,
) -> Vec<Value> {
    use futures::StreamExt;
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t)))) => {
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                let hit = done(&v);
                seen.push(v);
                if hit {
                    return seen;
                }
            }
            Ok(Some(Ok(_))) => {}
            other => {
                panic!("{caller}: no matching event within {secs} s ({other:?}); saw {seen:#?}")
            }
        }
    }
}

pub fn is_event(v: &Value, data: &str) -> bool {
    v["event"] == "event" && v["data"] == data
}

pub fn console_has(v: &Value, text: &str) -> bool {
    (v["event"] == "console" || v["event"] == "logs")
        && v["data"].as_str().is_some_and(|d| d.contains(text))
}
