//! Request and response shapes of `server::api::admin`.

use std::collections::BTreeMap;

use crate::market::{AdditionalSpec, CpuSpec, DiskConfig, RamSpec};
use crate::money::Usd4;
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
pub struct InventoryQuery {
    /// Name, id, model, or the renter's username or e-mail (any part, any case).
    #[serde(default)]
    pub q: String,
    /// `available`, `rented` or `retired`; all when absent.
    #[serde(default)]
    pub status: String,
    /// At most 200 (default 50).
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreditRequest {
    /// USD to add (positive) or take away (negative); never below a zero balance, at most
    /// `max_adjustment_usd` (default 10,000) at once.
    #[cfg_attr(feature = "openapi", schema(example = 10.0))]
    pub amount: f64,
    /// Why, for the operators only (the audit log; ≤ 500 characters). The customer never sees
    /// it.
    pub note: Option<String>,
    /// The line the customer reads on their billing page (≤ 120 characters); default "Credit
    /// from the platform" or "Balance correction".
    pub description: Option<String>,
    /// Required (`true`) above `confirm_adjustment_over_usd` (default 100).
    #[serde(default)]
    pub confirm: bool,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreditResponse {
    pub user_id: String,
    pub ledger_entry_id: String,
    pub amount: Usd4,
    pub balance: Usd4,
}

/// A server as an operator describes it (`POST/PUT /api/admin/marketplace/servers`).
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServerInput {
    pub name: String,
    /// ISO 3166 alpha-2, e.g. `US`.
    pub country: String,
    pub region: String,
    pub city: String,
    pub datacenter: String,
    pub model: String,
    #[serde(default)]
    pub is_vm: bool,
    pub category: String,
    #[serde(default)]
    pub featured: bool,
    #[serde(default = "default_rank")]
    pub popularity_rank: i64,
    #[serde(default = "default_setup")]
    pub setup_time_minutes: i64,
    pub specs: SpecsInput,
    /// Total USD price per rental duration in days, e.g. `{"1": 12, "7": 70, "30": 270}`.
    pub prices: BTreeMap<String, f64>,
    /// How renters reach the server once it is theirs (shown on their rental, never on the
    /// marketplace). Without it, rentals say the address is not published yet.
    #[serde(default)]
    pub access: Option<AccessInput>,
}

fn default_rank() -> i64 {
    1000
}

fn default_setup() -> i64 {
    60
}

/// A server's SSH access point. Renters sign in with the SSH keys of their account, which the
/// operator installs while setting the server up; no password is stored.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AccessInput {
    /// Host name or IP address, e.g. `203.0.113.10` or `fra-17.example.net`.
    pub address: String,
    #[serde(default = "default_ssh_port")]
    pub port: i64,
    #[serde(default = "default_ssh_user")]
    pub user: String,
}

fn default_ssh_port() -> i64 {
    22
}

fn default_ssh_user() -> String {
    "root".into()
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SpecsInput {
    pub cpu: CpuSpec,
    pub ram: RamSpec,
    pub disks: DisksInput,
    pub network: NetworkInput,
    pub additional: AdditionalSpec,
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DisksInput {
    pub config: Vec<DiskConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NetworkInput {
    pub bandwidth_mbps: i64,
    pub traffic_tb: Option<i64>,
    #[serde(default)]
    pub traffic_unlimited: bool,
}

/// One configuration key in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Setting {
    pub key: String,
    /// The value as given (after defaults); `(redacted)` for secrets; empty when unset.
    pub value: String,
    /// `default`, the environment variable, or the file that set it; `unset` when nothing did.
    pub origin: String,
}
