//! Hangar's one typed configuration, loaded once at start.
//!
//! Sources, later ones winning: defaults in code → an optional TOML file (`HANGAR_CONFIG`, or
//! `hangar.toml` in the working directory when it exists) → environment variables `HANGAR_<KEY>`
//! (upper-case key). `DATABASE_URL` is also accepted for `database_url`, as sqlx users expect.
//! Every key and default is listed in docs/OPERATING.md and `.env.example`.

use model::api::admin::Setting;
use std::{collections::HashMap, fmt, net::SocketAddr, path::PathBuf, str::FromStr};

/// A configuration value that must never be printed: `Debug` and `Display` show `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The value itself; call sites that need it say so explicitly.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Everything Hangar can be told at start.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address of the main listener (portal and JSON APIs).
    pub listen: SocketAddr,
    /// Public base URL, used in links (Stripe return URLs, emails). Defaults to `http://<listen>`.
    pub public_url: String,
    /// A second listener serving only VMs' NoCloud seeds (`/cloud-init/...`), on an address the
    /// guests reach (the host's address on their network), like a cloud's metadata service: the
    /// portal and the APIs can stay on 127.0.0.1. Unset: guests fetch seeds from `public_url`.
    pub seed_listen: Option<SocketAddr>,
    /// `sqlite://path` (created when missing) or `postgres://...`.
    pub database_url: String,
    /// Directory for the default SQLite file and other local state. Always absolute: a relative
    /// value is resolved against the working directory when the config is loaded, because paths
    /// under it are handed to other programs (the container engine reads a relative bind source
    /// as a volume *name*, and refuses it).
    pub data_dir: PathBuf,
    /// Directory holding the built site (`pkg/` with the WASM bundle, CSS, vendored assets).
    /// Absolute, like `data_dir`.
    pub site_root: PathBuf,
    /// HS256 key for JWTs. When unset, a random key is generated once and kept in the database,
    /// so every replica and every restart agree.
    pub jwt_secret: Option<Secret>,
    /// Lifetime of a JWT from `POST /api/auth/login`, in seconds (the `/api` dialect: 24 h).
    pub jwt_ttl_secs: u64,
    /// Cloudflare Turnstile secret. When unset, the CAPTCHA check on registration is off.
    pub turnstile_secret: Option<Secret>,
    /// Turnstile site key, rendered into the sign-up form when the check is on.
    pub turnstile_site_key: Option<String>,
    /// Where Turnstile tokens are verified (Cloudflare's siteverify; tests point it at a fake).
    pub turnstile_verify_url: String,
    /// Requests per minute per client IP on each of login and register.
    pub auth_rate_limit_per_minute: u32,
    /// Take the client IP from the last `X-Forwarded-For` entry (only behind a trusted proxy).
    pub trust_forwarded_for: bool,
    /// Operators must have two-factor sign-in on before any operator page or route answers them
    /// (they can still reach their own account to turn it on).
    pub require_operator_two_factor: bool,
    /// Mark cookies `Secure`. Defaults to true when `public_url` is https.
    pub secure_cookies: bool,
    /// Browser session lifetime without activity, in seconds.
    pub session_ttl_secs: u64,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// libvirt connection URI for VM instances. Default: libvirt's test driver (a simulated
    /// node) with the description in `server/fixtures/libvirt-node.xml`, which Hangar carries and
    /// writes to `data_dir/simulated-node.xml` at start ([`Config::write_simulated_node`]).
    pub libvirt_uri: String,
    /// libvirt domain type on real hosts: `kvm` (hardware virtualisation, the default) or `qemu`
    /// (software emulation, TCG: slow, for hosts without usable KVM and for tests).
    pub libvirt_domain_type: DomainType,
    /// The libvirt network every VM's NIC joins on each libvirt node (`default`: libvirt's NAT
    /// network with DHCP).
    pub libvirt_network: Network,
    /// `text` or `json` log lines.
    pub log_format: LogFormat,
    /// Grace days after a rental's end during which its server stays reserved for the renter.
    pub rental_hold_days: i64,
    /// How often background sweeps (rental expiry, ...) run, in seconds.
    pub sweep_interval_secs: u64,
    /// Stripe secret key (`sk_...`). When unset, card top-ups are off and say so.
    pub stripe_secret_key: Option<Secret>,
    /// Signing secret of the Stripe webhook endpoint (`whsec_...`).
    pub stripe_webhook_secret: Option<Secret>,
    /// Stripe's API base (tests point it at a local fake).
    pub stripe_api_url: String,
    /// Answer marketplace browse from this replica's in-memory index (`market::index`); off,
    /// every browse is SQL. The answers are the same; only their speed differs.
    pub browse_index: bool,
    /// Docker Engine API address (`unix:///run/docker.sock`, `tcp://host:2375`) of a local
    /// container node registered at start. Unset: no local container node.
    pub docker_host: Option<String>,
    /// Where the embedded node daemon (`hangar-node`) listens, driving `docker_host`; registered
    /// as the container node `local-node` (app templates run there). Unset: no embedded daemon.
    pub node_listen: Option<SocketAddr>,
    /// vCPUs a node may hand out per physical vCPU (placement never passes capacity × this).
    pub cpu_overcommit: f64,
    /// Memory a node may hand out per MB it has.
    pub memory_overcommit: f64,
    /// Creating an instance needs balance for this many minutes of its price (else 402).
    pub min_runtime_minutes: i64,
    /// Most instances one `POST /api/vps/batch` may create (and machines one batch exec reaches).
    pub max_batch_size: usize,
    /// Longest `timeout_seconds` an exec may ask for (the `/api` dialect: "max configured via admin
    /// settings").
    pub exec_max_timeout_secs: u64,
    /// Largest file `PUT /api/vps/:id/files` accepts and `GET` returns, in bytes.
    pub file_max_bytes: u64,
    /// How long a console or screen ticket stays valid (it is also single-use).
    pub console_ticket_secs: u64,
    /// A console or screen with no input from its viewer for this long is closed.
    pub console_idle_secs: u64,
    /// Consoles and screens one user may have open at once (per replica); the default of the
    /// `consoles` quota.
    pub console_max_per_user: usize,
    /// File transfers into and out of machines this replica runs at once, for everyone and
    /// for one account (see `infra::gates`).
    pub file_transfers_max: usize,
    pub file_transfers_per_account: usize,
    /// Commands answered when they end (not background ones) this replica runs at once, for
    /// everyone and for one account.
    pub commands_max: usize,
    pub commands_per_account: usize,
    /// Live event streams (machine states, stats) one account may hold open on this replica.
    pub streams_per_account: usize,
    /// Background commands one machine may have pending or running at once.
    pub background_commands_per_machine: i64,
    /// Days a finished background command's record (its output) is kept.
    pub exec_jobs_retention_days: i64,
    /// The most processes one container machine may hold (a fork bomb stops there); 0 leaves
    /// the engine's default.
    pub container_pids_limit: i64,
    /// Default account quotas (`compute::quotas`; per-account overrides by the operator):
    /// machines held at once (any state but deleted and failed), their vCPUs, memory (MB) and
    /// disk (GB), public IPv4 addresses and background commands pending or running.
    pub quota_machines: i64,
    pub quota_vcpu: i64,
    pub quota_memory_mb: i64,
    pub quota_disk_gb: i64,
    pub quota_ipv4: i64,
    pub quota_background_commands: i64,
    /// Seconds a job may run before another worker may take it over (crash recovery).
    pub job_lease_secs: i64,
    /// Job workers per replica.
    pub job_workers: usize,
    /// Seconds a graceful stop waits for the guest before forcing it off.
    pub stop_timeout_secs: u64,
    /// After a VM is created, started or restarted, how long Hangar waits for its guest to
    /// answer (SSH with the host key Hangar gave it) before calling it `running` anyway with a
    /// reason. Seconds under KVM, one to two minutes in software emulation. At most
    /// `job_lease_secs` − 30, since the wait runs inside the machine's job.
    pub boot_wait_secs: u64,
    /// On SIGTERM, how long readiness answers 503 while this replica still serves, so a load
    /// balancer's health checks take it out before it stops accepting (0 on a single server).
    pub shutdown_drain_secs: u64,
    /// Then how long a job in hand may run on before it is handed back to the queue.
    pub shutdown_grace_secs: u64,
    /// How often the reconciler compares the database with the nodes, in seconds.
    pub reconcile_interval_secs: u64,
    /// How often the meter charges running instances, in seconds (it always charges whole
    /// elapsed minutes, so the interval changes latency, never amounts).
    pub meter_interval_secs: u64,
    /// Minutes a released public address rests before another machine gets it (libvirt's DHCP
    /// lease time: until the old lease expires the node will not hand the address to a new MAC).
    pub public_ip_cooldown_minutes: i64,
    /// Minutes a user's instances keep running after the balance reached zero.
    pub balance_grace_minutes: i64,
    /// What a stopped machine pays per hour for each GB of its disk (µUSD), and for its public
    /// IPv4 address: stopped machines give their vCPU and memory back to the node but keep
    /// their disk and address, so they pay for those (see `fleet::catalog::HeldRates`).
    pub stopped_disk_gb_hourly_micros: i64,
    pub stopped_ipv4_hourly_micros: i64,
    /// Days a stopped machine is kept after its account's balance ran out (it holds a disk and an
    /// address nobody pays for any more); then it is deleted, after a notice at exhaustion.
    pub stopped_retention_days: i64,
    /// Warn by email when the balance covers less than this many hours of current usage.
    pub low_balance_runway_hours: i64,
    /// SMTP server for outgoing mail (`smtp://host:port`, `smtps://user:pass@host`). Unset: mail
    /// is logged, not sent.
    pub smtp_url: Option<Secret>,
    /// Sender address of outgoing mail.
    pub mail_from: String,
    /// Who sells: the name printed at the top of receipts and statements.
    pub business_name: String,
    /// The largest balance adjustment an operator can make at once, USD (a typo of three extra
    /// zeros is refused, not paid out).
    pub max_adjustment_usd: i64,
    /// Adjustments above this many USD must be confirmed (`"confirm": true`, a ticked box in
    /// the portal).
    pub confirm_adjustment_over_usd: i64,
    /// The seller's details under that name (address, tax number; `\n` for line breaks), as
    /// invoices in the operator's country need them. Unset: the name alone.
    pub business_details: Option<String>,
    /// `HANGAR_*` environment variables that are not config keys (logged as a warning at start,
    /// since scripts may set their own `HANGAR_*` variables).
    pub unknown_env: Vec<String>,
    /// Every key as this process took it: its value (secrets redacted) and where it came from
    /// (`hangar config`, `GET /api/admin/config`).
    pub settings: Vec<Setting>,
}

/// Whether a key holds a secret (never printed). Database URLs may carry a password too: only
/// their user-and-password part is hidden.
fn secret_key(key: &str) -> bool {
    key.contains("secret")
        || key.contains("password")
        || key.ends_with("_token")
        || key == "smtp_url"
}

fn shown(key: &str, value: &str) -> String {
    if value.is_empty() {
        return String::new();
    }
    if secret_key(key) {
        return "(redacted)".into();
    }
    if key == "database_url" {
        if let Some((scheme, rest)) = value.split_once("://") {
            if let Some((_, host)) = rest.split_once('@') {
                return format!("{scheme}://(redacted)@{host}");
            }
        }
    }
    value.to_owned()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            other => Err(format!("expected `text` or `json`, got `{other}`")),
        }
    }
}

/// A configuration that could not be loaded; names the key and the source.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("Cannot read config file {path}")]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("Config file {path} is not valid TOML")]
    ParseFile {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    #[error("Invalid value for `{key}` (from {origin}): {reason}")]
    Invalid {
        key: String,
        origin: String,
        reason: String,
    },
    #[error("Unknown config key `{key}` in {origin}")]
    Unknown { key: String, origin: String },
}

/// The simulated VM node's description under `data_dir` (the default `libvirt_uri`'s file).
pub const SIMULATED_NODE_FILE: &str = "simulated-node.xml";

impl Config {
    /// Writes the simulated node's description where the default `libvirt_uri` points, when that
    /// is the URI in use. libvirt's test driver reads it on every connect and never writes it.
    pub fn write_simulated_node(&self) -> std::io::Result<()> {
        let file = self.data_dir.join(SIMULATED_NODE_FILE);
        if self.libvirt_uri != format!("test://{}", file.display()) {
            return Ok(());
        }
        const NODE: &str = include_str!("../../../server/fixtures/libvirt-node.xml");
        if std::fs::read_to_string(&file).ok().as_deref() != Some(NODE) {
            std::fs::create_dir_all(&self.data_dir)?;
            std::fs::write(&file, NODE)?;
        }
        Ok(())
    }

    /// The base URL guests fetch their NoCloud seed from: the seed listener when there is one.
    pub fn seed_base_url(&self) -> String {
        match self.seed_listen {
            Some(addr) => format!("http://{addr}"),
            None => self.public_url.clone(),
        }
    }

    /// Loads from the process environment and the optional file. Call once, at start.
    pub fn load() -> Result<Self, ConfigError> {
        let env: HashMap<String, String> = std::env::vars().collect();
        let file = match env.get("HANGAR_CONFIG") {
            Some(path) => Some(PathBuf::from(path)),
            None => Some(PathBuf::from("hangar.toml")).filter(|p| p.exists()),
        };
        let file_values = match file {
            Some(path) => Some((read_file(&path)?, path)),
            None => None,
        };
        Self::from_sources(file_values.as_ref().map(|(v, p)| (v, p.as_path())), &env)
    }

    /// Builds a config from already-read sources; `load` and the tests use it.
    pub fn from_sources(
        file: Option<(&HashMap<String, String>, &std::path::Path)>,
        env: &HashMap<String, String>,
    ) -> Result<Self, ConfigError> {
        let mut raw = RawConfig::default();
        if let Some((values, path)) = file {
            for (key, value) in values {
                raw.set(key, value, &path.display().to_string())?;
            }
        }
        if let Some(url) = env.get("DATABASE_URL") {
            raw.set("database_url", url, "DATABASE_URL")?;
        }
        let mut unknown_env = Vec::new();
        for (name, value) in env {
            let Some(key) = name.strip_prefix("HANGAR_") else {
                continue;
            };
            if key == "CONFIG" || key == "ADMIN_PASSWORD" {
                continue;
            }
            match raw.set(&key.to_ascii_lowercase(), value, name) {
                Err(ConfigError::Unknown { .. }) => unknown_env.push(name.clone()),
                other => other?,
            }
        }
        unknown_env.sort();
        let settings = KEYS
            .iter()
            .map(|(key, _)| {
                let (value, origin) = raw
                    .get(key)
                    .unwrap_or_else(|| (String::new(), "unset".to_owned()));
                Setting {
                    key: (*key).to_owned(),
                    value: shown(key, &value),
                    origin,
                }
            })
            .collect();
        let mut config = raw.finish()?;
        config.unknown_env = unknown_env;
        config.settings = settings;
        Ok(config)
    }
}

fn read_file(path: &std::path::Path) -> Result<HashMap<String, String>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
        path: path.to_owned(),
        source,
    })?;
    let table: toml::Table = text.parse().map_err(|source| ConfigError::ParseFile {
        path: path.to_owned(),
        source,
    })?;
    // The file is flat (`key = value`); values keep their TOML spelling for the same parsers the
    // environment goes through, so a key means the same thing wherever it is set.
    Ok(table
        .into_iter()
        .map(|(k, v)| {
            let text = match v {
                toml::Value::String(s) => s,
                other => other.to_string(),
            };
            (k, text)
        })
        .collect())
}

/// Every key as an optional raw string, so each source can be applied in turn.
#[derive(Default)]
struct RawConfig {
    values: HashMap<&'static str, (String, String)>,
}

/// The keys Hangar knows, with their defaults (`None`: no default).
const KEYS: &[(&str, Option<&str>)] = &[
    ("listen", Some("127.0.0.1:3000")),
    ("public_url", None),
    ("seed_listen", None),
    ("node_listen", None),
    ("database_url", None),
    ("data_dir", Some("data")),
    ("site_root", Some("target/site")),
    ("jwt_secret", None),
    ("jwt_ttl_secs", Some("86400")),
    ("turnstile_secret", None),
    ("turnstile_site_key", None),
    (
        "turnstile_verify_url",
        Some("https://challenges.cloudflare.com/turnstile/v0/siteverify"),
    ),
    ("auth_rate_limit_per_minute", Some("10")),
    ("trust_forwarded_for", Some("false")),
    ("require_operator_two_factor", Some("false")),
    ("secure_cookies", None),
    ("session_ttl_secs", Some("1209600")),
    ("max_body_bytes", Some("1048576")),
    ("libvirt_uri", None),
    ("libvirt_domain_type", Some("kvm")),
    ("libvirt_network", Some("default")),
    ("log_format", Some("text")),
    ("rental_hold_days", Some("0")),
    ("sweep_interval_secs", Some("30")),
    ("browse_index", Some("true")),
    ("stripe_secret_key", None),
    ("stripe_webhook_secret", None),
    ("stripe_api_url", Some("https://api.stripe.com")),
    ("docker_host", None),
    ("cpu_overcommit", Some("4")),
    ("memory_overcommit", Some("1")),
    ("min_runtime_minutes", Some("60")),
    ("max_batch_size", Some("10")),
    ("exec_max_timeout_secs", Some("3600")),
    ("file_max_bytes", Some("67108864")),
    ("console_ticket_secs", Some("30")),
    ("console_idle_secs", Some("900")),
    ("console_max_per_user", Some("10")),
    ("container_pids_limit", Some("4096")),
    ("file_transfers_max", Some("16")),
    ("file_transfers_per_account", Some("4")),
    ("commands_max", Some("64")),
    ("commands_per_account", Some("16")),
    ("streams_per_account", Some("20")),
    ("background_commands_per_machine", Some("5")),
    ("exec_jobs_retention_days", Some("7")),
    ("quota_machines", Some("10")),
    ("quota_vcpu", Some("32")),
    ("quota_memory_mb", Some("65536")),
    ("quota_disk_gb", Some("1000")),
    ("quota_ipv4", Some("5")),
    ("quota_background_commands", Some("20")),
    ("job_lease_secs", Some("300")),
    ("job_workers", Some("4")),
    ("stop_timeout_secs", Some("60")),
    ("boot_wait_secs", Some("240")),
    ("shutdown_drain_secs", Some("0")),
    ("shutdown_grace_secs", Some("20")),
    ("reconcile_interval_secs", Some("60")),
    ("meter_interval_secs", Some("60")),
    ("balance_grace_minutes", Some("60")),
    ("public_ip_cooldown_minutes", Some("60")),
    ("stopped_disk_gb_hourly", Some("0.00006")),
    ("stopped_ipv4_hourly", Some("0.0008")),
    ("stopped_retention_days", Some("14")),
    ("low_balance_runway_hours", Some("24")),
    ("smtp_url", None),
    ("mail_from", Some("Hangar <hangar@localhost>")),
    ("business_name", Some("Hangar")),
    ("max_adjustment_usd", Some("10000")),
    ("confirm_adjustment_over_usd", Some("100")),
    ("business_details", None),
];

impl RawConfig {
    fn set(&mut self, key: &str, value: &str, origin: &str) -> Result<(), ConfigError> {
        let Some((known, _)) = KEYS.iter().find(|(k, _)| *k == key) else {
            return Err(ConfigError::Unknown {
                key: key.to_owned(),
                origin: origin.to_owned(),
            });
        };
        self.values
            .insert(known, (value.to_owned(), origin.to_owned()));
        Ok(())
    }

    fn get(&self, key: &'static str) -> Option<(String, String)> {
        self.values.get(key).cloned().or_else(|| {
            KEYS.iter()
                .find(|(k, _)| *k == key)
                .and_then(|(_, d)| d.map(|d| (d.to_owned(), "default".to_owned())))
        })
    }

    fn parse<T: FromStr>(&self, key: &'static str) -> Result<Option<T>, ConfigError>
    where
        T::Err: fmt::Display,
    {
        match self.get(key) {
            None => Ok(None),
            Some((value, origin)) => {
                value
                    .trim()
                    .parse()
                    .map(Some)
                    .map_err(|e: T::Err| ConfigError::Invalid {
                        key: key.to_owned(),
                        origin,
                        reason: e.to_string(),
                    })
            }
        }
    }

    fn required<T: FromStr>(&self, key: &'static str) -> Result<T, ConfigError>
    where
        T::Err: fmt::Display,
    {
        self.parse(key)?.ok_or_else(|| ConfigError::Invalid {
            key: key.to_owned(),
            origin: "default".to_owned(),
            reason: "a value is required".to_owned(),
        })
    }

    /// A USD amount key (`0.0008`), in µUSD.
    fn usd(&self, key: &'static str) -> Result<i64, ConfigError> {
        let usd: f64 = self.required(key)?;
        model::money::micros_from_usd(usd).map_err(|reason| ConfigError::Invalid {
            key: key.to_owned(),
            origin: self.get(key).map(|(_, o)| o).unwrap_or_default(),
            reason: reason.to_owned(),
        })
    }

    fn string(&self, key: &'static str) -> Option<String> {
        self.get(key).map(|(v, _)| v).filter(|v| !v.is_empty())
    }

    /// A directory key, made absolute against the working directory now, once.
    fn path(&self, key: &'static str) -> Result<PathBuf, ConfigError> {
        let (value, origin) = self.get(key).unwrap_or_default();
        if value.trim().is_empty() {
            return Err(ConfigError::Invalid {
                key: key.to_owned(),
                origin,
                reason: "a path is required".into(),
            });
        }
        std::path::absolute(value.trim()).map_err(|e| ConfigError::Invalid {
            key: key.to_owned(),
            origin,
            reason: format!("cannot be made absolute: {e}"),
        })
    }

    fn finish(self) -> Result<Config, ConfigError> {
        let listen: SocketAddr = self.required("listen")?;
        let data_dir = self.path("data_dir")?;
        let public_url = self
            .string("public_url")
            .unwrap_or_else(|| format!("http://{listen}"))
            .trim_end_matches('/')
            .to_owned();
        let database_url = self
            .string("database_url")
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("hangar.db").display()));
        if !(database_url.starts_with("sqlite:") || database_url.starts_with("postgres")) {
            return Err(ConfigError::Invalid {
                key: "database_url".into(),
                origin: self.get("database_url").map(|(_, o)| o).unwrap_or_default(),
                reason: "expected a sqlite:// or postgres:// URL".into(),
            });
        }
        let secure_cookies = self
            .parse::<bool>("secure_cookies")?
            .unwrap_or_else(|| public_url.starts_with("https://"));
        // The simulated node's file lives under the data directory (written at start from the
        // copy built into Hangar), so the default works wherever Hangar is started from.
        let libvirt_uri = self
            .string("libvirt_uri")
            .unwrap_or_else(|| format!("test://{}", data_dir.join(SIMULATED_NODE_FILE).display()));
        let rate: u32 = self.required("auth_rate_limit_per_minute")?;
        if rate == 0 {
            return Err(ConfigError::Invalid {
                key: "auth_rate_limit_per_minute".into(),
                origin: self.get("auth_rate_limit_per_minute").unwrap_or_default().1,
                reason: "must be at least 1".into(),
            });
        }
        Ok(Config {
            listen,
            public_url,
            seed_listen: self.parse("seed_listen")?,
            node_listen: self.parse("node_listen")?,
            database_url,
            site_root: self.path("site_root")?,
            data_dir,
            jwt_secret: self.string("jwt_secret").map(Secret::new),
            jwt_ttl_secs: self.required("jwt_ttl_secs")?,
            turnstile_secret: self.string("turnstile_secret").map(Secret::new),
            turnstile_site_key: self.string("turnstile_site_key"),
            turnstile_verify_url: self.string("turnstile_verify_url").unwrap_or_default(),
            auth_rate_limit_per_minute: rate,
            trust_forwarded_for: self.required("trust_forwarded_for")?,
            require_operator_two_factor: self.required("require_operator_two_factor")?,
            secure_cookies,
            session_ttl_secs: self.required("session_ttl_secs")?,
            max_body_bytes: self.required("max_body_bytes")?,
            libvirt_uri,
            libvirt_domain_type: self.required("libvirt_domain_type")?,
            libvirt_network: self.required("libvirt_network")?,
            log_format: self.required("log_format")?,
            rental_hold_days: self.required("rental_hold_days")?,
            sweep_interval_secs: self.required::<u64>("sweep_interval_secs")?.max(1),
            browse_index: self.required("browse_index")?,
            stripe_secret_key: self.string("stripe_secret_key").map(Secret::new),
            stripe_webhook_secret: self.string("stripe_webhook_secret").map(Secret::new),
            stripe_api_url: self.string("stripe_api_url").unwrap_or_default(),
            docker_host: self.string("docker_host"),
            cpu_overcommit: self.required("cpu_overcommit")?,
            memory_overcommit: self.required("memory_overcommit")?,
            min_runtime_minutes: self.required("min_runtime_minutes")?,
            max_batch_size: self.required::<usize>("max_batch_size")?.max(1),
            exec_max_timeout_secs: self.required::<u64>("exec_max_timeout_secs")?.max(1),
            file_max_bytes: self.required::<u64>("file_max_bytes")?.max(1),
            console_ticket_secs: self.required::<u64>("console_ticket_secs")?.max(1),
            console_idle_secs: self.required::<u64>("console_idle_secs")?.max(1),
            console_max_per_user: self.required("console_max_per_user")?,
            container_pids_limit: self.required::<i64>("container_pids_limit")?.max(0),
            file_transfers_max: self.required("file_transfers_max")?,
            file_transfers_per_account: self
                .required::<usize>("file_transfers_per_account")?
                .max(1),
            commands_max: self.required("commands_max")?,
            commands_per_account: self.required::<usize>("commands_per_account")?.max(1),
            streams_per_account: self.required::<usize>("streams_per_account")?.max(1),
            background_commands_per_machine: self
                .required::<i64>("background_commands_per_machine")?
                .max(1),
            exec_jobs_retention_days: self.required::<i64>("exec_jobs_retention_days")?.max(1),
            quota_machines: self.required::<i64>("quota_machines")?.max(0),
            quota_vcpu: self.required::<i64>("quota_vcpu")?.max(0),
            quota_memory_mb: self.required::<i64>("quota_memory_mb")?.max(0),
            quota_disk_gb: self.required::<i64>("quota_disk_gb")?.max(0),
            quota_ipv4: self.required::<i64>("quota_ipv4")?.max(0),
            quota_background_commands: self.required::<i64>("quota_background_commands")?.max(0),
            job_lease_secs: self.required::<i64>("job_lease_secs")?.max(5),
            job_workers: self.required::<usize>("job_workers")?.max(1),
            stop_timeout_secs: self.required("stop_timeout_secs")?,
            boot_wait_secs: self
                .required::<u64>("boot_wait_secs")?
                .min(self.required::<i64>("job_lease_secs")?.max(35) as u64 - 30),
            shutdown_drain_secs: self.required("shutdown_drain_secs")?,
            shutdown_grace_secs: self.required("shutdown_grace_secs")?,
            reconcile_interval_secs: self.required::<u64>("reconcile_interval_secs")?.max(1),
            meter_interval_secs: self.required::<u64>("meter_interval_secs")?.max(1),
            balance_grace_minutes: self.required("balance_grace_minutes")?,
            public_ip_cooldown_minutes: self.required::<i64>("public_ip_cooldown_minutes")?.max(0),
            stopped_disk_gb_hourly_micros: self.usd("stopped_disk_gb_hourly")?,
            stopped_ipv4_hourly_micros: self.usd("stopped_ipv4_hourly")?,
            stopped_retention_days: self.required::<i64>("stopped_retention_days")?.max(1),
            low_balance_runway_hours: self.required("low_balance_runway_hours")?,
            smtp_url: self.string("smtp_url").map(Secret::new),
            mail_from: self.string("mail_from").unwrap_or_default(),
            business_name: self.string("business_name").unwrap_or_default(),
            max_adjustment_usd: self.required("max_adjustment_usd")?,
            confirm_adjustment_over_usd: self.required("confirm_adjustment_over_usd")?,
            business_details: self
                .string("business_details")
                .map(|d| d.replace("\\n", "\n")),
            unknown_env: Vec::new(),
            settings: Vec::new(),
        })
    }
}

/// The documented keys and defaults, for `hangar config` and the docs test.
pub fn documented_keys() -> impl Iterator<Item = (&'static str, Option<&'static str>)> {
    KEYS.iter().copied()
}

#[cfg(test)]
mod tests {
    #[test]
    fn secrets_are_never_shown_and_database_passwords_neither() {
        assert_eq!(super::shown("jwt_secret", "abc"), "(redacted)");
        assert_eq!(super::shown("smtp_url", "smtp://u:p@h"), "(redacted)");
        assert_eq!(
            super::shown("database_url", "postgres://hangar:hunter2@db:5432/h"),
            "postgres://(redacted)@db:5432/h"
        );
        assert_eq!(super::shown("listen", "0.0.0.0:3000"), "0.0.0.0:3000");
        assert_eq!(super::shown("stripe_secret_key", ""), "");
    }

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_give_an_embedded_sqlite_setup() {
        let c = Config::from_sources(None, &env(&[])).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:3000");
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(c.data_dir, cwd.join("data"));
        assert_eq!(
            c.database_url,
            format!("sqlite://{}", cwd.join("data/hangar.db").display())
        );
        assert_eq!(c.public_url, "http://127.0.0.1:3000");
        assert_eq!(c.auth_rate_limit_per_minute, 10);
        assert_eq!(c.jwt_ttl_secs, 24 * 3600);
        assert_eq!(
            c.libvirt_uri,
            format!("test://{}", cwd.join("data/simulated-node.xml").display()),
            "the simulated node's file is under the data dir, not the source tree"
        );
        assert!(c.turnstile_secret.is_none());
        assert!(!c.secure_cookies);
    }

    #[test]
    fn environment_overrides_file_and_file_overrides_defaults() {
        let file: HashMap<String, String> = [
            ("listen", "0.0.0.0:8080"),
            ("auth_rate_limit_per_minute", "5"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let c = Config::from_sources(
            Some((&file, std::path::Path::new("hangar.toml"))),
            &env(&[
                ("HANGAR_LISTEN", "127.0.0.1:9999"),
                ("DATABASE_URL", "postgres://x/y"),
            ]),
        )
        .unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:9999");
        assert_eq!(c.auth_rate_limit_per_minute, 5);
        assert_eq!(c.database_url, "postgres://x/y");
    }

    /// `scripts/run` sets no data dir, so the default `data` is relative; every path derived
    /// from it goes to other programs (the node daemon's volumes become bind mounts, which the
    /// container engine refuses when relative), so the config holds absolute paths only.
    #[test]
    fn relative_directories_become_absolute_at_load() {
        let c = Config::from_sources(
            None,
            &env(&[
                ("HANGAR_DATA_DIR", "state/here"),
                ("HANGAR_SITE_ROOT", "./site"),
            ]),
        )
        .unwrap();
        let cwd = std::env::current_dir().unwrap();
        assert!(c.data_dir.is_absolute() && c.site_root.is_absolute());
        assert_eq!(c.data_dir, cwd.join("state/here"));
        assert!(c.data_dir.join("node").join("storage").is_absolute());
        let c = Config::from_sources(None, &env(&[("HANGAR_DATA_DIR", "/srv/hangar")])).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/srv/hangar"));
        let err = Config::from_sources(None, &env(&[("HANGAR_DATA_DIR", " ")])).unwrap_err();
        assert!(err.to_string().contains("data_dir"), "{err}");
    }

    #[test]
    fn https_public_url_turns_on_secure_cookies() {
        let c = Config::from_sources(None, &env(&[("HANGAR_PUBLIC_URL", "https://h.example/")]))
            .unwrap();
        assert!(c.secure_cookies);
        assert_eq!(c.public_url, "https://h.example");
    }

    #[test]
    fn bad_values_name_the_key_and_where_it_came_from() {
        let err = Config::from_sources(None, &env(&[("HANGAR_LISTEN", "nope")])).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("`listen`") && text.contains("HANGAR_LISTEN"),
            "{text}"
        );
        let file: HashMap<String, String> = [("listn".to_string(), "x".to_string())].into();
        let err = Config::from_sources(Some((&file, std::path::Path::new("h.toml"))), &env(&[]))
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("Unknown config key `listn` in h.toml"),
            "{err}"
        );
        // A stray HANGAR_ variable in the environment is reported, not fatal.
        let c = Config::from_sources(None, &env(&[("HANGAR_LISTN", "x")])).unwrap();
        assert_eq!(c.unknown_env, vec!["HANGAR_LISTN".to_string()]);
        let err = Config::from_sources(None, &env(&[("DATABASE_URL", "mysql://x")])).unwrap_err();
        assert!(err.to_string().contains("database_url"), "{err}");
    }

    #[test]
    fn secrets_are_never_printed() {
        let c = Config::from_sources(
            None,
            &env(&[
                ("HANGAR_JWT_SECRET", "hunter2-very-secret"),
                ("HANGAR_TURNSTILE_SECRET", "t0p"),
            ]),
        )
        .unwrap();
        let printed = format!("{c:?}");
        assert!(
            !printed.contains("hunter2") && !printed.contains("t0p"),
            "{printed}"
        );
        assert!(printed.contains("[redacted]"));
        assert_eq!(c.jwt_secret.unwrap().expose(), "hunter2-very-secret");
    }
}

/// The libvirt domain type used on real hosts (the test driver's are always `test`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DomainType {
    /// Hardware virtualisation.
    Kvm,
    /// Software emulation (TCG): no `/dev/kvm` needed, many times slower.
    Qemu,
}

impl DomainType {
    pub fn as_str(self) -> &'static str {
        match self {
            DomainType::Kvm => "kvm",
            DomainType::Qemu => "qemu",
        }
    }
}

impl FromStr for DomainType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "kvm" => Ok(DomainType::Kvm),
            "qemu" => Ok(DomainType::Qemu),
            _ => Err("expected kvm or qemu".into()),
        }
    }
}

/// The libvirt network a VM's NIC joins (usually `default`: NAT with DHCP, whose leases give
/// the machine's private address; a bridged network on hosts that route public addresses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network(pub String);

impl FromStr for Network {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let valid = !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if valid {
            Ok(Network(s.to_owned()))
        } else {
            Err("expected a libvirt network name".into())
        }
    }
}
