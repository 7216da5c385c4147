//! The `/api/v1` dialect types: marketplace servers, rentals, pools, members, invitations. Shared by the
//! `/api/v1` handlers, the portal's server functions and the browser.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::money::UsdNum;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CpuSpec {
    pub model: String,
    pub cores: i64,
    pub threads: i64,
    pub score: i64,
    /// `passmark`, `geekbench_single` or `geekbench_multi`.
    pub score_type: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RamSpec {
    pub capacity_gb: i64,
    #[serde(rename = "type")]
    pub kind: String,
    pub speed_mhz: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DiskConfig {
    pub count: i64,
    pub capacity_gb: i64,
    #[serde(rename = "type")]
    pub kind: String,
    pub interface: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DisksSpec {
    pub config: Vec<DiskConfig>,
    pub total_gb: i64,
    pub summary: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NetworkSpec {
    pub bandwidth_mbps: i64,
    pub bandwidth_formatted: String,
    /// Monthly traffic allowance; `null` when unlimited.
    pub traffic_tb: Option<i64>,
    pub traffic_unlimited: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AdditionalSpec {
    pub ipv4_count: i64,
    pub ipv6_enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Specs {
    pub cpu: CpuSpec,
    pub ram: RamSpec,
    pub disks: DisksSpec,
    pub network: NetworkSpec,
    pub additional: AdditionalSpec,
}

/// Prices of a server. `prices`: total USD for renting exactly N days, keyed by N.
/// `price_tiers`: USD per day at each duration (total ÷ days, rounded to the cent).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Pricing {
    pub prices: BTreeMap<String, String>,
    pub price_tiers: BTreeMap<String, String>,
    pub currency: String,
    /// The rental durations (days) this server can be rented for.
    pub durations: Vec<i64>,
    /// The lowest price per day over all durations: what `max_price_per_day` filters on.
    pub min_price_per_day: String,
}

/// A server of the marketplace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MarketServer {
    pub id: String,
    pub name: String,
    pub country: String,
    pub region: String,
    pub city: String,
    pub datacenter: String,
    pub model: String,
    pub is_vm: bool,
    pub category: String,
    pub featured: bool,
    pub popularity_rank: i64,
    pub setup_time_minutes: i64,
    pub pricing: Pricing,
    pub specs: Specs,
}

/// A marketplace server as operators manage the inventory (`GET /api/admin/marketplace/servers`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InventoryServer {
    pub id: String,
    pub name: String,
    pub model: String,
    pub country: String,
    pub region: String,
    pub city: String,
    /// `available`, `rented` or `retired` (a retired server's rental runs to its end).
    pub status: String,
    /// The lowest price per day over its durations, USD.
    #[cfg_attr(feature = "openapi", schema(value_type = f64))]
    pub price_per_day: UsdNum,
    /// Where its renter connects (SSH), if set.
    pub access_address: Option<String>,
    /// The rental running on it now.
    pub rental: Option<InventoryRental>,
}

/// Who rents an inventory server, until when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InventoryRental {
    pub id: String,
    pub user_id: String,
    pub username: String,
    /// The paid period's end (RFC 3339).
    pub rental_end: String,
    /// When the server returns to the marketplace (the end plus any hold days).
    pub expires_at: String,
}

/// One page of the inventory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Inventory {
    pub servers: Vec<InventoryServer>,
    pub total: i64,
}

/// Pagination added to browse answers (beside `data`, so `data` stays the plain array).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Page {
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
    pub next_offset: Option<i64>,
}

impl Page {
    /// The page at `offset` of `limit` items out of `total`; `next_offset` is absent on the last.
    /// Saturating, so an absurd offset from a query string is just past the end.
    pub fn of(total: i64, limit: i64, offset: i64) -> Self {
        let next = offset.saturating_add(limit);
        Self {
            total,
            limit,
            offset,
            next_offset: (next < total).then_some(next),
        }
    }
}

/// A money movement as the `/api/v1` dialect shows it (`amount` in USD, a plain number).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Transaction {
    pub id: String,
    pub amount: UsdNum,
    pub currency: String,
    pub created_at: String,
}

/// Where a rental is in its life (`rentals.status`), shown as is in `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum RentalStatus {
    /// Running, or past its end until the expiry sweep records it.
    Active,
    Expired,
}

impl RentalStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            RentalStatus::Active => "active",
            RentalStatus::Expired => "expired",
        }
    }
}

impl TryFrom<String> for RentalStatus {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        match s.as_str() {
            "active" => Ok(RentalStatus::Active),
            "expired" => Ok(RentalStatus::Expired),
            other => Err(format!("unknown rental status {other}")),
        }
    }
}

/// Whether a rented server can be reached yet: `setting_up` until the operator's announced
/// setup time has passed since the rental started, then `ready`; `ended` once the rental is over
/// (the address is then withheld).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AccessStatus {
    SettingUp,
    Ready,
    Ended,
}

impl AccessStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            AccessStatus::SettingUp => "setting_up",
            AccessStatus::Ready => "ready",
            AccessStatus::Ended => "ended",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Rental {
    pub id: String,
    pub rental_start: String,
    pub rental_end: String,
    /// Grace days after `rental_end` during which the server stays reserved for the renter.
    pub hold_days: i64,
    pub status: RentalStatus,
    /// Total paid for this rental so far (USD, two decimals).
    pub amount: String,
    pub remaining_days: i64,
    pub usage_days: i64,
    pub server_id: String,
    pub pool_id: String,
    /// Who rented it (pool members see each other's rentals).
    pub user_id: String,
    pub server: MarketServer,
    /// The rent payment (detail views).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction: Option<Transaction>,
    /// Every payment for this rental, oldest first (detail views).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transactions: Option<Vec<Transaction>>,
    /// How to reach the server (detail views; Hangar's addition to the `/api/v1` dialect).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<RentalAccess>,
}

/// How a renter reaches a rented server. Sign-in is with the SSH keys of the renter's account,
/// which the operator installs during setup; Hangar never holds a password for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RentalAccess {
    pub status: AccessStatus,
    /// When the server is expected to be ready (RFC 3339).
    pub ready_at: String,
    /// Host name or IP address; absent when the operator has not published one, or the rental
    /// has ended.
    pub address: Option<String>,
    pub port: i64,
    pub user: String,
    /// The command to connect, e.g. `ssh root@203.0.113.10` (`-p PORT` when not 22).
    pub ssh_command: Option<String>,
    /// The SSH keys the server is set up with: those the renter chose, and pool members' by the
    /// pool's `member_keys` setting.
    pub keys: Vec<RentalKey>,
}

/// One SSH key a rented server is set up with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RentalKey {
    pub name: String,
    pub fingerprint: String,
    /// Whose key it is (username).
    pub owner: String,
    /// `renter`, or the pool role (`owner`, `admin`, `user`) that brought a member's key.
    pub because: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserRef {
    pub id: String,
    pub username: String,
    pub alias: String,
}

/// A pool member's role (the `/api/v1` dialect): the owner (one per pool), admins who rent, extend and
/// invite, users who see the pool's servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Role {
    Owner,
    Admin,
    User,
}

impl Role {
    /// The database's and the API's text for it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::User => "user",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "owner" => Some(Role::Owner),
            "admin" => Some(Role::Admin),
            "user" => Some(Role::User),
            _ => None,
        }
    }

    /// May add servers to the pool, extend its rentals and invite.
    pub const fn can_rent(self) -> bool {
        matches!(self, Role::Owner | Role::Admin)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for Role {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Role::parse(&s).ok_or_else(|| format!("unknown pool role {s}"))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Pool {
    pub id: String,
    pub name: String,
    pub description: String,
    pub is_default: bool,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub settings: serde_json::Value,
    pub created_at: String,
    pub updated_at: String,
    pub owner_id: String,
    /// The caller's role: `owner`, `admin` or `user`.
    pub user_role: Role,
    /// Accepted members, the owner included.
    pub member_count: i64,
    /// Servers with an active rental in this pool.
    pub server_count: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Member {
    /// The membership (invitation) id.
    pub id: String,
    pub role: Role,
    /// False while the invitation is pending.
    pub is_authorized: bool,
    pub invited_at: String,
    pub joined_at: Option<String>,
    pub user: UserRef,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PoolServer {
    pub id: String,
    pub name: String,
    pub rental_id: String,
    pub rental_status: String,
    pub rental_end: String,
    pub is_ready: bool,
    pub country: String,
    pub city: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PoolDetail {
    #[serde(flatten)]
    pub pool: Pool,
    pub members: Vec<Member>,
    pub servers: Vec<PoolServer>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Invitation {
    pub id: String,
    pub pool_id: String,
    pub pool_name: String,
    pub pool_description: String,
    pub role: Role,
    pub invited_by: UserRef,
    pub invited_at: String,
}
