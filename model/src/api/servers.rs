//! Request and response shapes of `server::api::servers`.

use serde::{Deserialize, Serialize};

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Server {
    pub id: String,
    pub label: String,
    /// starting · active · stopping · stopped · rebooting · error · terminated
    pub status: String,
    /// Why the server is in `error` (e.g. its app's install failed, with the engine's words), or
    /// why Hangar stopped it; `null` otherwise.
    pub reason: Option<String>,
    /// While `starting` or `rebooting`, what is happening now (e.g. `Booting: waiting for the
    /// guest to answer`); `active` is reported only once the server answers inside.
    pub progress: Option<String>,
    pub region: String,
    pub plan: String,
    pub os: String,
    pub main_ip: Option<String>,
    pub vcpus: i64,
    /// Whole gigabytes, as the `/v1/servers` dialect shows it (rounded up: a 512 MB plan is 1).
    pub ram_gb: i64,
    /// The exact memory, for plans that are not a whole number of GB.
    pub memory_mb: i64,
    pub disk_gb: i64,
    /// USD per hour, as a string (`"0.0042"`).
    pub price_per_hour: String,
    /// USD per hour while stopped: its disk per GB-hour and its public IPv4 address, which a
    /// stopped server keeps (its vCPU and memory go back to the host).
    pub stopped_price_per_hour: String,
    pub backups: bool,
    pub ddos_protection: bool,
    pub ssh_key_ids: Vec<String>,
    pub created_at: String,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Data<T> {
    pub data: T,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateServer {
    pub region: Option<String>,
    /// Plan slug (`GET /api/pricing`) or id.
    #[cfg_attr(feature = "openapi", schema(example = "small"))]
    pub plan: String,
    /// Image slug, e.g. `ubuntu-22-04`; default: the plan kind's default image.
    pub os: Option<String>,
    #[cfg_attr(feature = "openapi", schema(example = "ml-training-01"))]
    pub label: String,
    #[serde(default)]
    pub ssh_key_ids: Vec<String>,
    #[serde(default)]
    pub backups: bool,
    #[serde(default)]
    pub ddos_protection: bool,
    pub user_data: Option<String>,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Relabel {
    pub label: String,
}
