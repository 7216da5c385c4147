//! Request and response shapes of `server::api::audit`.

use serde::Deserialize;

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
pub struct ActivityQuery {
    /// Only actions starting with this, e.g. `rental.` or `instance.delete`.
    pub action: Option<String>,
    /// Only entries about this object (a rental, a machine, a token…).
    pub target_id: Option<String>,
    /// The last entry's `id` of the previous page: the next page starts after it.
    pub before: Option<String>,
    /// 1–200, default 50.
    pub limit: Option<i64>,
}

/// `ActivityQuery` and a user (spelled out: serde's `flatten` would read `limit` as text).
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
pub struct AdminActivityQuery {
    /// Only this user's actions.
    pub user_id: Option<String>,
    /// Everything concerning this user: their actions and what was done to them, their machines
    /// and their rentals (by operators, pool members or Hangar itself).
    pub concerning: Option<String>,
    /// Only actions starting with this, e.g. `rental.` or `instance.delete`.
    pub action: Option<String>,
    /// Only entries about this object.
    pub target_id: Option<String>,
    /// The last entry's `id` of the previous page.
    pub before: Option<String>,
    /// 1–200, default 50.
    pub limit: Option<i64>,
}
