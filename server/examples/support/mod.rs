//! What the benchmarks share: a user with plenty of balance, and a JWT for the API.

use domain::accounts::entry;
use domain::money::ledger;
use domain::AppState;
use serde_json::{json, Value};

/// Registers `bench@example.com` with $1,000 and signs in through the API at `base`; returns
/// the user's id and a JWT.
pub async fn funded_token(state: &AppState, base: &str) -> anyhow::Result<(String, String)> {
    let user = entry::register(
        &state.db,
        entry::NewAccount {
            email: "bench@example.com".into(),
            username: "bench".into(),
            password: "bench-password-1".into(),
            is_admin: false,
        },
    )
    .await?;
    let mut tx = state.db.begin().await?;
    ledger::post(
        &mut tx,
        ledger::Movement {
            user_id: &user.id,
            amount_micros: 1_000_000_000,
            kind: ledger::Kind::Credit,
            description: "bench",
            reference: None,
            idempotency_key: None,
            token_id: None,
        },
    )
    .await?;
    tx.commit().await?;
    let login: Value = reqwest::Client::new()
        .post(format!("{base}/api/auth/login"))
        .json(&json!({"email": "bench@example.com", "password": "bench-password-1"}))
        .send()
        .await?
        .json()
        .await?;
    let token = login["token"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("login failed: {login}"))?
        .to_owned();
    Ok((user.id, token))
}
