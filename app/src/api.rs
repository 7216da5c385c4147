//! Types shared by the JSON API, the server functions and the browser: what a client sees.

use serde::{Deserialize, Serialize};

use crate::money::Usd4;

/// `GET /api/me` (reference 002, plus `username`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Me {
    pub id: String,
    pub email: String,
    pub username: String,
    /// USD, four decimals.
    pub balance: Usd4,
    pub is_admin: bool,
}

/// An access token as listed: never its value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct TokenView {
    pub id: String,
    pub name: String,
    /// The last four characters of the value, to tell tokens apart.
    pub hint: String,
    /// USD this token may cause to be charged in total; `null` means no limit.
    pub spend_limit: Option<Usd4>,
    /// USD charged through this token so far.
    pub spent: Usd4,
    pub created_at: String,
    pub last_used_at: Option<String>,
}

/// `POST /api/tokens` answer: the only time the value is shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct CreatedToken {
    pub id: String,
    pub name: String,
    /// `vtk_...`; store it now, it is never shown again.
    pub token: String,
    pub spend_limit: Option<Usd4>,
    pub created_at: String,
}

#[cfg(feature = "ssr")]
mod convert {
    use super::*;
    use crate::ssr::{accounts::User, db::rfc3339, tokens::AccessToken};

    impl From<&User> for Me {
        fn from(u: &User) -> Self {
            Me {
                id: u.id.clone(),
                email: u.email.clone(),
                username: u.username.clone(),
                balance: Usd4(u.balance_micros),
                is_admin: u.is_admin,
            }
        }
    }

    impl From<AccessToken> for TokenView {
        fn from(t: AccessToken) -> Self {
            TokenView {
                id: t.id,
                name: t.name,
                hint: t.token_hint,
                spend_limit: t.spend_limit_micros.map(Usd4),
                spent: Usd4(t.spent_micros),
                created_at: rfc3339(t.created_at),
                last_used_at: t.last_used_at.map(rfc3339),
            }
        }
    }

    impl CreatedToken {
        pub fn new(t: AccessToken, value: crate::ssr::tokens::NewTokenValue) -> Self {
            CreatedToken {
                id: t.id,
                name: t.name,
                token: value.0,
                spend_limit: t.spend_limit_micros.map(Usd4),
                created_at: rfc3339(t.created_at),
            }
        }
    }
}
