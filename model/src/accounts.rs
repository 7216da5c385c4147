//! Types shared by the JSON API, the server functions and the browser: what a client sees.

use serde::{Deserialize, Serialize};

use crate::money::Usd4;

/// `GET /api/me` (the `/api` dialect, plus `username`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Me {
    pub id: String,
    pub email: String,
    pub username: String,
    /// USD, four decimals.
    pub balance: Usd4,
    pub is_admin: bool,
    /// Two-factor sign-in (TOTP) is on.
    #[serde(default)]
    pub two_factor: bool,
}

/// The sign-in answer when the password was right and a two-factor code is still needed (the
/// portal's sign-in form shows its code field on it).
pub const TWO_FACTOR_CODE_REQUIRED: &str =
    "Enter the 6-digit code from your authenticator app (or one of your recovery codes)";
/// The sign-in answer to a wrong two-factor code.
pub const TWO_FACTOR_CODE_WRONG: &str =
    "That code is not right: check your authenticator app's clock, or use a recovery code";
/// The answer to a right code that was already used (each code signs in once): the person only
/// has to wait for the app's next one.
pub const TWO_FACTOR_CODE_USED: &str =
    "That code was just used: wait for the next one in your authenticator app (at most 30 seconds)";

/// `POST /api/auth/2fa/setup`: the key to put in an authenticator app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TwoFactorSetup {
    /// The key in base32, for typing it in.
    pub secret: String,
    /// `otpauth://totp/...`: what a QR code for the app carries.
    pub otpauth_uri: String,
}

/// `POST /api/auth/2fa/enable`: one-time recovery codes, shown this once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecoveryCodes {
    /// Each signs in once in place of an authenticator code; keep them somewhere safe.
    pub recovery_codes: Vec<String>,
}

/// What an access token may do. Every token can read (`read`); each other scope adds a kind of
/// change. No token can manage tokens, two-factor sign-in, the password or sessions, nor reach
/// an operator route: those need the person (a browser session, or a JWT from signing in), so a
/// leaked or delegated token can never grow into more than it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// See machines, rentals, pools, balance and history (not command output or files).
    Read,
    /// Power, rename, delete, snapshots, SSH keys, pools and rental moves: changes that cost
    /// nothing new.
    Machines,
    /// Inside machines: commands (and their output), files, consoles and screens.
    Inside,
    /// Anything that spends the balance: creating machines, renting, extending, topping up.
    Spend,
    /// Operators only: scrape `GET /metrics` (a Prometheus credential that can do nothing
    /// else an operator can). Never given by default.
    Metrics,
}

impl Scope {
    pub const ALL: [Scope; 4] = [Scope::Read, Scope::Machines, Scope::Inside, Scope::Spend];

    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Machines => "machines",
            Scope::Inside => "inside",
            Scope::Spend => "spend",
            Scope::Metrics => "metrics",
        }
    }

    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL
            .into_iter()
            .chain([Scope::Metrics])
            .find(|x| x.as_str() == s)
    }

    /// What it allows, in a person's words (the portal's token form).
    pub const fn describe(self) -> &'static str {
        match self {
            Scope::Read => "Read: see machines, rentals, pools and billing",
            Scope::Machines => "Machines: start, stop, rename, delete, snapshots, SSH keys, pools",
            Scope::Inside => "Inside: run commands, read and write files, open consoles",
            Scope::Spend => "Spend: create machines, rent, extend, add funds",
            Scope::Metrics => "Metrics: operators' Prometheus scrapes of /metrics",
        }
    }
}

/// An access token as listed: never its value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenView {
    pub id: String,
    pub name: String,
    /// The last four characters of the value, to tell tokens apart.
    pub hint: String,
    /// USD this token may cause to be charged in total; `null` means no limit.
    pub spend_limit: Option<Usd4>,
    /// USD charged through this token so far.
    pub spent: Usd4,
    /// What it may do (`read` always).
    pub scopes: Vec<Scope>,
    pub created_at: String,
    pub last_used_at: Option<String>,
}

/// `POST /api/tokens` answer: the only time the value is shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedToken {
    pub id: String,
    pub name: String,
    /// `vtk_...`; store it now, it is never shown again.
    pub token: String,
    pub spend_limit: Option<Usd4>,
    pub scopes: Vec<Scope>,
    pub created_at: String,
}

/// One audit-log entry (`GET /api/audit`, `GET /api/admin/audit`, the Activity page): who did
/// what to which object, when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEvent {
    pub id: String,
    /// RFC 3339.
    pub at: String,
    /// The user who acted (`null` for the system: the meter, sweeps).
    pub actor_id: Option<String>,
    /// Their username, while the account exists.
    pub actor: Option<String>,
    /// Dotted name: `rental.create`, `instance.delete`, `token.revoke`, …
    pub action: String,
    pub target_type: String,
    pub target_id: Option<String>,
    /// What the target is called now (a machine's or server's name, a token's, a pool's), while
    /// it exists.
    pub target_name: Option<String>,
    /// What the action recorded (amounts, names, days…), as JSON.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub details: serde_json::Value,
}

/// A customer as operators find them (`GET /api/admin/users`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Customer {
    pub id: String,
    pub email: String,
    pub username: String,
    pub is_admin: bool,
    /// USD, four decimals.
    pub balance: Usd4,
    pub created_at: String,
    /// Machines they own now (not deleted).
    pub machines: i64,
    /// Their last successful sign-in (RFC 3339), if any.
    pub last_sign_in: Option<String>,
    /// Why the operators suspended the account, while they do.
    pub suspended: Option<String>,
    /// The customer closed the account.
    pub deleted: bool,
}

/// A customer's page for operators (`GET /api/admin/users/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CustomerDetail {
    #[serde(flatten)]
    pub customer: Customer,
    /// What they spent in the last 30 days (machines and rentals), USD.
    pub spent_30d: Usd4,
    pub two_factor: bool,
    /// Sign-ins refused until then (RFC 3339) after too many wrong passwords.
    pub locked_until: Option<String>,
    /// Access tokens not revoked.
    pub tokens: i64,
    pub machine_list: Vec<CustomerMachine>,
    pub rentals: Vec<CustomerRental>,
    pub pools: Vec<CustomerPool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CustomerMachine {
    pub id: String,
    pub name: String,
    pub state: String,
    pub kind: String,
    pub node: Option<String>,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CustomerRental {
    pub id: String,
    pub server: String,
    pub status: String,
    pub ends_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CustomerPool {
    pub id: String,
    pub name: String,
    pub role: String,
}
