//! Test support: a real Hangar server on 127.0.0.1:0 over a fresh database, and a client.
//!
//! The database comes from `HANGAR_TEST_DB`: `sqlite` (default: a new file per test) or
//! `postgres` (a new database per test on the server at `HANGAR_TEST_PG_URL`, which the test
//! script starts). The README's test command runs the whole suite once per backend.

#![allow(
    dead_code,
    reason = "shared by every test binary; each uses a different part (so `expect` would not hold in all)"
)]

pub mod console;
pub mod inside;
pub mod qemu;
pub mod stripe;

use std::{collections::HashMap, net::SocketAddr, path::PathBuf};

use domain::infra::config::Config;
use domain::infra::db;
use domain::AppState;
use reqwest::{Client, Response, StatusCode};
use serde_json::{json, Value};

pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub state: AppState,
    pub database_url: String,
    pub client: Client,
    server: tokio::task::JoinHandle<()>,
    _dir: TempDir,
}

/// A directory removed when dropped.
pub struct TempDir(pub PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Which backend this run uses.
pub fn backend() -> String {
    std::env::var("HANGAR_TEST_DB").unwrap_or_else(|_| "sqlite".into())
}

/// A fresh, empty database URL for one test.
pub async fn fresh_database(dir: &std::path::Path) -> String {
    match backend().as_str() {
        "sqlite" => format!("sqlite://{}/hangar.db", dir.display()),
        "postgres" => {
            let base = std::env::var("HANGAR_TEST_PG_URL").expect(
                "HANGAR_TEST_DB=postgres needs HANGAR_TEST_PG_URL (the test script sets it)",
            );
            let name = format!("hangar_test_{}", db::new_id());
            let admin = db::connect(&format!("{}/postgres", base.trim_end_matches('/')))
                .await
                .expect("connecting to the test PostgreSQL server");
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&admin)
                .await
                .unwrap();
            admin.close().await;
            format!("{}/{name}", base.trim_end_matches('/'))
        }
        other => panic!("unknown HANGAR_TEST_DB {other:?}"),
    }
}

pub struct Builder {
    env: HashMap<String, String>,
    database_url: Option<String>,
}

impl TestApp {
    pub fn builder() -> Builder {
        Builder {
            env: HashMap::new(),
            database_url: None,
        }
    }

    pub async fn spawn() -> Self {
        Self::builder().spawn().await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        let mut req = self.client.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Response {
        let mut req = self.client.post(self.url(path)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Response {
        let mut req = self.client.delete(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }

    /// Registers `username` (email `<username>@example.com`, password `password-<username>`).
    pub async fn register(&self, username: &str) -> Body {
        let res = self
            .post(
                "/api/auth/register",
                None,
                json!({"email": format!("{username}@example.com"), "username": username,
                       "password": format!("{username}-lunar-Quokka-42")}),
            )
            .await;
        expect_json(res, StatusCode::CREATED).await
    }

    /// Logs `username` in (registered by [`register`]) and returns the JWT.
    pub async fn login(&self, username: &str) -> String {
        let res = self
            .post(
                "/api/auth/login",
                None,
                json!({"email": format!("{username}@example.com"), "password": format!("{username}-lunar-Quokka-42")}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK, "logging in {username}");
        let body: Value = res.json().await.unwrap();
        body["token"].as_str().unwrap().to_owned()
    }

    /// Registers and logs in; returns (user id, JWT).
    pub async fn user(&self, username: &str) -> (String, String) {
        let me = self.register(username).await;
        (
            me["id"].as_str().unwrap().to_owned(),
            self.login(username).await,
        )
    }

    /// An operator account made the way `hangar admin create-user --admin` makes one.
    pub async fn admin(&self, username: &str) -> (String, String) {
        let user = domain::accounts::entry::register(
            &self.state.db,
            domain::accounts::entry::NewAccount {
                email: format!("{username}@example.com"),
                username: username.into(),
                password: format!("{username}-lunar-Quokka-42"),
                is_admin: true,
            },
        )
        .await
        .unwrap();
        (user.id, self.login(username).await)
    }

    /// Stops the server (the database stays, for restart tests).
    pub async fn stop(self) -> (String, TempDir) {
        self.server.abort();
        let _ = self.server.await;
        self.state.db.close().await;
        (self.database_url, self._dir)
    }
}

impl Builder {
    /// Sets a config key as `HANGAR_<KEY>` would.
    pub fn config(mut self, key: &str, value: &str) -> Self {
        self.env
            .insert(format!("HANGAR_{}", key.to_uppercase()), value.to_owned());
        self
    }

    /// Reuses an existing database (e.g. to restart over the same data).
    pub fn database(mut self, url: String) -> Self {
        self.database_url = Some(url);
        self
    }

    pub async fn spawn(self) -> TestApp {
        let dir = TempDir(std::env::temp_dir().join(format!("hangar-test-{}", db::new_id())));
        std::fs::create_dir_all(&dir.0).unwrap();
        let database_url = match self.database_url {
            Some(url) => url,
            None => fresh_database(&dir.0).await,
        };
        let mut env = HashMap::from([
            ("DATABASE_URL".to_string(), database_url.clone()),
            ("HANGAR_LISTEN".to_string(), "127.0.0.1:0".to_string()),
            ("HANGAR_DATA_DIR".to_string(), dir.0.display().to_string()),
            (
                "HANGAR_SITE_ROOT".to_string(),
                site_root().display().to_string(),
            ),
            // The shipped libvirt test-driver fixture, whatever the working directory.
            (
                "HANGAR_LIBVIRT_URI".to_string(),
                format!(
                    "test://{}",
                    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                        .join("fixtures/libvirt-node.xml")
                        .display()
                ),
            ),
            // Tests create many users from one IP; the rate-limit test sets the real limit back.
            (
                "HANGAR_AUTH_RATE_LIMIT_PER_MINUTE".to_string(),
                "10000".to_string(),
            ),
        ]);
        env.extend(self.env);
        let config = Config::from_sources(None, &env).expect("test config");
        let state = AppState::build(config)
            .await
            .expect("building the app state");
        // 127.0.0.1:0 unless a test set `listen` (guests of the QEMU tier reach it on a bridge).
        let listener = tokio::net::TcpListener::bind(state.config.listen)
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let router = hangar_server::http::router(state.clone());
        let server = tokio::spawn(async move {
            let _ = hangar_server::http::serve(listener, router).await;
        });
        let client = Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        TestApp {
            addr,
            base: format!("http://{addr}"),
            state,
            database_url,
            client,
            server,
            _dir: dir,
        }
    }
}

/// The built site if there is one (pages render without it too).
fn site_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/site")
}

/// A JSON answer: the parsed value (indexable like a `Value`) and the text as sent, for checks
/// on number formatting that parsing would lose (`10.5000` parses to `10.5`).
#[derive(Debug, Clone)]
pub struct Body {
    pub value: Value,
    pub text: String,
}

impl std::ops::Deref for Body {
    type Target = Value;
    fn deref(&self) -> &Value {
        &self.value
    }
}

impl Body {
    /// The number sent for the first `"key":` in the body, exactly as written.
    pub fn raw(&self, key: &str) -> String {
        let marker = format!("\"{key}\":");
        let start = self
            .text
            .find(&marker)
            .unwrap_or_else(|| panic!("no {key} in {}", self.text))
            + marker.len();
        self.text[start..]
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == '-')
            .collect()
    }
}

/// Reads a JSON body, asserting the status first (prints the body when it differs).
pub async fn expect_json(res: Response, status: StatusCode) -> Body {
    let got = res.status();
    let text = res.text().await.unwrap();
    assert_eq!(got, status, "unexpected status; body: {text}");
    let value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    Body { value, text }
}

/// Asserts an `/api` error: the status, and `{"error": <contains needle>}`.
pub async fn expect_error(res: Response, status: StatusCode, needle: &str) -> Body {
    let body = expect_json(res, status).await;
    let message = body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no `error` in {}", body.text));
    assert!(
        message.contains(needle),
        "error {message:?} does not mention {needle:?}"
    );
    body
}

/// A marketplace server description for the operator API, with sensible defaults that a test
/// overrides field by field (`server_json(&[("/country", json!("DE"))])`).
pub fn server_json(overrides: &[(&str, Value)]) -> Value {
    let mut v = json!({
        "name": "node-test-1", "country": "US", "region": "us-east", "city": "New York",
        "datacenter": "NYC-DC1", "model": "Intel Xeon E5-2680 v4", "is_vm": false,
        "category": "compute", "featured": false, "popularity_rank": 10, "setup_time_minutes": 15,
        "specs": {
            "cpu": {"model": "AMD EPYC 7763", "cores": 64, "threads": 128, "score": 48500, "score_type": "passmark"},
            "ram": {"capacity_gb": 256, "type": "ECC DDR5", "speed_mhz": 4800},
            "disks": {"config": [
                {"count": 2, "capacity_gb": 1000, "type": "NVMe", "interface": "PCIe 4.0"},
                {"count": 6, "capacity_gb": 15000, "type": "NVMe", "interface": "PCIe 4.0"}]},
            "network": {"bandwidth_mbps": 10000, "traffic_tb": 100, "traffic_unlimited": false},
            "additional": {"ipv4_count": 5, "ipv6_enabled": true}
        },
        "prices": {"1": 12, "7": 70, "30": 270},
        "access": null
    });
    for (pointer, value) in overrides {
        *v.pointer_mut(pointer)
            .unwrap_or_else(|| panic!("no {pointer} in the server template")) = value.clone();
    }
    v
}

impl TestApp {
    /// Adds a marketplace server through the operator API; returns its id.
    pub async fn add_server(&self, admin: &str, overrides: &[(&str, Value)]) -> String {
        let res = self
            .post(
                "/api/admin/marketplace/servers",
                Some(admin),
                server_json(overrides),
            )
            .await;
        let body = expect_json(res, StatusCode::CREATED).await;
        body["id"].as_str().unwrap().to_owned()
    }

    /// Credits `usd` to a user through the operator API (confirmed, whatever the amount).
    pub async fn credit(&self, admin: &str, user_id: &str, usd: f64) {
        let res = self
            .post(
                &format!("/api/admin/users/{user_id}/credit"),
                Some(admin),
                json!({"amount": usd, "confirm": true}),
            )
            .await;
        expect_json(res, StatusCode::OK).await;
    }

    pub async fn patch(&self, path: &str, token: Option<&str>, body: Value) -> Response {
        let mut req = self.client.patch(self.url(path)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }

    pub async fn put(&self, path: &str, token: Option<&str>, body: Value) -> Response {
        let mut req = self.client.put(self.url(path)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }

    /// DELETE with a JSON body (batch deletes).
    pub async fn delete_json(&self, path: &str, token: Option<&str>, body: Value) -> Response {
        let mut req = self.client.delete(self.url(path)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }

    /// A user with `usd` on their balance, credited by an operator made for it: (user id, JWT).
    pub async fn funded_user(&self, name: &str, usd: f64) -> (String, String) {
        let (_, admin) = self.admin(&format!("op-{name}")).await;
        let (uid, token) = self.user(name).await;
        if usd > 0.0 {
            self.credit(&admin, &uid, usd).await;
        }
        (uid, token)
    }

    /// Runs every queued job to the end, as the workers would.
    pub async fn run_jobs(&self) -> usize {
        domain::jobs::drain(&self.state).await.unwrap()
    }

    /// The cached balance and the ledger sum of a user, in µUSD.
    pub async fn money(&self, user_id: &str) -> (i64, i64) {
        (
            domain::accounts::users::balance(&self.state.db, user_id)
                .await
                .unwrap(),
            domain::money::ledger::sum(&self.state.db, user_id)
                .await
                .unwrap(),
        )
    }
}

/// Ids in an `/api/v1` `data` array.
pub fn ids(body: &Body) -> std::collections::BTreeSet<String> {
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The Docker-API engine the container tests use (`HANGAR_TEST_DOCKER_HOST`, started by
/// scripts/test). Missing is a failure, unless `HANGAR_TEST_SKIP_DOCKER=1` skips them on purpose.
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

/// A Hangar reached over HTTP only (a `hangar serve` child process, or replicas behind a load
/// balancer): the set-up calls the process-level tests share.
pub struct Remote<'a> {
    pub http: &'a Client,
    pub base: String,
}

impl Remote<'_> {
    pub async fn login(&self, email: &str, password: &str) -> String {
        let res = self
            .http
            .post(format!("{}/api/auth/login", self.base))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap();
        let body = expect_json(res, StatusCode::OK).await;
        body["token"].as_str().unwrap().to_owned()
    }

    /// Registers `username` (`<username>@example.com`, password `<username>-password`) and gives
    /// them `usd` from the operator; returns (user id, the operator's JWT, the user's JWT).
    pub async fn funded_customer(
        &self,
        operator: (&str, &str),
        username: &str,
        usd: f64,
    ) -> (String, String, String) {
        let operator = self.login(operator.0, operator.1).await;
        let (email, password) = (
            format!("{username}@example.com"),
            format!("{username}-password"),
        );
        let res = self
            .http
            .post(format!("{}/api/auth/register", self.base))
            .json(&json!({"email": email, "username": username, "password": password}))
            .send()
            .await
            .unwrap();
        let user_id = expect_json(res, StatusCode::CREATED).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let res = self
            .http
            .post(format!("{}/api/admin/users/{user_id}/credit", self.base))
            .bearer_auth(&operator)
            .json(&json!({ "amount": usd }))
            .send()
            .await
            .unwrap();
        expect_json(res, StatusCode::OK).await;
        let user = self.login(&email, &password).await;
        (user_id, operator, user)
    }

    /// The id of the first container plan.
    pub async fn container_plan(&self) -> String {
        let res = self
            .http
            .get(format!("{}/api/pricing", self.base))
            .send()
            .await
            .unwrap();
        let plans = expect_json(res, StatusCode::OK).await;
        plans
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["kind"] == "container")
            .expect("a container plan")["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

/// Held by every test that renders portal pages, so one test process renders them one test at a
/// time. Two tests rendering pages at once — each on its own runtime, in one process — can leave
/// a server-side render waiting forever for a wake-up (seen in about 1 of 25 pairs of portal
/// tests, already before session 19, and more often since; a hung request, an idle runtime, no
/// thread at work). A server has one runtime, where the same renders run side by side under load
/// (docs/BENCHMARKS.md, SSR under load) without it, so this bounds the harness, not Hangar.
pub static PAGES: std::sync::LazyLock<tokio::sync::Mutex<()>> =
    std::sync::LazyLock::new(|| tokio::sync::Mutex::new(()));

/// The messages the test SMTP server (aiosmtpd, started by `scripts/test`) delivered to `addr`.
pub fn mails_to(addr: &str) -> Vec<String> {
    let dir = std::env::var("HANGAR_TEST_MAILDIR").expect("HANGAR_TEST_MAILDIR");
    let mut out = Vec::new();
    for sub in ["new", "cur"] {
        let Ok(entries) = std::fs::read_dir(std::path::Path::new(&dir).join(sub)) else {
            continue;
        };
        for e in entries.flatten() {
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            let rcpt = text
                .lines()
                .find(|l| l.starts_with("X-RcptTo:"))
                .unwrap_or("");
            if rcpt.contains(addr) {
                out.push(quoted_printable_decoded(&text));
            }
        }
    }
    out
}

/// The test SMTP server's URL; `None` (the test skips) only when HANGAR_TEST_SKIP_SMTP=1 says so.
pub fn smtp() -> Option<String> {
    match std::env::var("HANGAR_TEST_SMTP_URL") {
        Ok(url) => Some(url),
        Err(_) => {
            assert_eq!(
                std::env::var("HANGAR_TEST_SKIP_SMTP").as_deref(),
                Ok("1"),
                "HANGAR_TEST_SMTP_URL is not set: run scripts/test (it starts aiosmtpd), or set HANGAR_TEST_SKIP_SMTP=1"
            );
            None
        }
    }
}

/// A message as its reader sees it: lettre sends text bodies quoted-printable (soft line breaks
/// `=` + newline, `=3D` for `=`), which would cut links and sentences.
fn quoted_printable_decoded(text: &str) -> String {
    if !text.contains("quoted-printable") {
        return text.to_owned();
    }
    let joined = text.replace("=\r\n", "").replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() && joined.is_char_boundary(i + 3) {
            if let Ok(b) = u8::from_str_radix(&joined[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
