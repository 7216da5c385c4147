//! Card top-ups with Stripe Checkout (the `/api` dialect "Billing": add-funds and the webhook).
//!
//! The customer asks for an amount ($5–$50); Hangar creates a Checkout Session (payment mode, the
//! user as `client_reference_id`) and records it as a pending top-up. Money moves only when
//! Stripe's signed `checkout.session.completed` event says the session is paid: the credit takes
//! amount and currency from the session, never from the client, and the pending → paid update
//! (a row lock on PostgreSQL, the write lock on SQLite) guarantees one credit per session however
//! often the event arrives and however many replicas receive it.

use std::collections::HashMap;

use stripe_checkout::{
    checkout_session::{
        CreateCheckoutSession, CreateCheckoutSessionLineItems,
        CreateCheckoutSessionLineItemsPriceData, ProductData,
    },
    CheckoutSessionMode, CheckoutSessionPaymentStatus,
};
use stripe_webhook::{EventObject, Webhook};
use tracing::instrument;

use crate::accounts::users::User;
use crate::infra::audit;
use crate::infra::db::{self, Pool};
use crate::infra::error::{ServiceError, ServiceResult};
use crate::money::ledger;
use crate::AppState;
use model::money::{usd2, MICROS_PER_USD};

/// The Stripe API version Hangar's SDK is built for. A real webhook endpoint must be created
/// with this version (docs/OPERATING.md, "Payments"): events of another version still parse, but their
/// objects may differ from what the SDK expects, and it logs a warning for each.
pub fn stripe_api_version() -> &'static str {
    stripe_shared::version::VERSION.as_str()
}

pub const MIN_TOPUP: i64 = 5 * MICROS_PER_USD;
pub const MAX_TOPUP: i64 = 50 * MICROS_PER_USD;

/// Starts a top-up: a Checkout Session for `amount` µUSD. Returns the URL to send the customer to.
#[instrument(skip_all, err(level = "info", Debug), fields(user_id = %user.id, amount))]
pub async fn create_checkout(state: &AppState, user: &User, amount: i64) -> ServiceResult<String> {
    if !(MIN_TOPUP..=MAX_TOPUP).contains(&amount) {
        return Err(ServiceError::invalid(
            "Amount must be between $5.00 and $50.00",
        ));
    }
    if amount % 10_000 != 0 {
        return Err(ServiceError::invalid("Amount must be in whole cents"));
    }
    let Some(key) = &state.config.stripe_secret_key else {
        return Err(ServiceError::invalid(
            "Card payments are not configured on this server; ask the operator to add funds",
        ));
    };
    let client = stripe::ClientBuilder::new(key.expose())
        .url(state.config.stripe_api_url.clone())
        .build()
        .map_err(|e| ServiceError::internal(anyhow::anyhow!("stripe client: {e}")))?;
    let cents = amount / 10_000;
    let base = &state.config.public_url;
    let mut price = CreateCheckoutSessionLineItemsPriceData::new(stripe_types::Currency::USD);
    price.unit_amount = Some(cents);
    price.product_data = Some(ProductData::new(format!(
        "Hangar balance top-up (${})",
        usd2(amount)
    )));
    let mut item = CreateCheckoutSessionLineItems::new();
    item.price_data = Some(price);
    item.quantity = Some(1);
    let metadata = HashMap::from([
        ("hangar_user_id".to_owned(), user.id.clone()),
        ("hangar_amount_micros".to_owned(), amount.to_string()),
    ]);
    let session = CreateCheckoutSession::new()
        .mode(CheckoutSessionMode::Payment)
        .client_reference_id(user.id.clone())
        .customer_email(user.email.clone())
        .line_items(vec![item])
        .metadata(metadata)
        .success_url(format!(
            "{base}/billing/success?session_id={{CHECKOUT_SESSION_ID}}"
        ))
        .cancel_url(format!("{base}/billing/cancel"))
        .send(&client)
        .await
        .map_err(|e| match e {
            stripe::StripeError::ClientError(_) | stripe::StripeError::Timeout => {
                tracing::warn!(error = %e, "the payment provider cannot be reached");
                ServiceError::ProviderUnreachable
            }
            e => ServiceError::internal(anyhow::anyhow!("creating a checkout session: {e}")),
        })?;
    let url = session
        .url
        .clone()
        .ok_or_else(|| ServiceError::internal(anyhow::anyhow!("checkout session without a url")))?;
    sqlx::query(
        "INSERT INTO topups (id, user_id, session_id, requested, status, created_at) VALUES ($1, $2, $3, $4, 'pending', $5)",
    )
    .bind(db::new_id())
    .bind(&user.id)
    .bind(session.id.as_str())
    .bind(amount)
    .bind(db::now_ms())
    .execute(&state.db)
    .await?;
    Ok(url)
}

/// What a webhook delivery did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookOutcome {
    /// A top-up was credited (µUSD).
    Credited(i64),
    /// Nothing to do: another event type, an unpaid session, or one already credited.
    Ignored(&'static str),
}

/// Verifies and applies a Stripe webhook delivery. Bad or missing signatures and stale
/// timestamps (over 5 minutes) are refused and change nothing.
#[instrument(skip_all, err(level = "info", Debug))]
pub async fn handle_webhook(
    state: &AppState,
    payload: &str,
    signature: Option<&str>,
) -> ServiceResult<WebhookOutcome> {
    let Some(secret) = &state.config.stripe_webhook_secret else {
        return Err(ServiceError::invalid(
            "Webhooks are not configured on this server",
        ));
    };
    let Some(signature) = signature else {
        return Err(ServiceError::invalid("Missing Stripe-Signature header"));
    };
    let event = Webhook::construct_event(payload, signature, secret.expose())
        .map_err(|e| ServiceError::invalid(format!("Invalid webhook: {e}")))?;
    let EventObject::CheckoutSessionCompleted(session) = event.data.object else {
        return Ok(WebhookOutcome::Ignored("event type not used"));
    };
    if session.payment_status != CheckoutSessionPaymentStatus::Paid {
        return Ok(WebhookOutcome::Ignored("session not paid"));
    }
    if session.currency != Some(stripe_types::Currency::USD) {
        tracing::warn!(session = %session.id.as_str(), "paid session in another currency; not credited");
        return Ok(WebhookOutcome::Ignored("currency is not USD"));
    }
    let Some(cents) = session.amount_total.filter(|c| *c > 0) else {
        return Ok(WebhookOutcome::Ignored("no amount"));
    };
    credit_session(
        &state.db,
        session.id.as_str(),
        session.client_reference_id.as_deref(),
        cents * 10_000,
    )
    .await
}

/// Credits a paid session once.
async fn credit_session(
    db: &Pool,
    session_id: &str,
    reference: Option<&str>,
    amount: i64,
) -> ServiceResult<WebhookOutcome> {
    let mut tx = crate::infra::db::begin(db).await?;
    // Claim the pending top-up first: a second delivery (or replica) finds nothing to claim.
    let claimed = sqlx::query(
        "UPDATE topups SET status = 'paid', credited = $1, completed_at = $2 WHERE session_id = $3 AND status = 'pending'",
    )
    .bind(amount)
    .bind(db::now_ms())
    .bind(session_id)
    .execute(&mut *tx)
    .await?;
    if claimed.rows_affected() == 0 {
        let known: Option<String> =
            sqlx::query_scalar("SELECT status FROM topups WHERE session_id = $1")
                .bind(session_id)
                .fetch_optional(&mut *tx)
                .await?;
        return match known {
            Some(_) => Ok(WebhookOutcome::Ignored("already credited")),
            None => Err(ServiceError::invalid("Unknown checkout session")),
        };
    }
    let user_id: String = sqlx::query_scalar("SELECT user_id FROM topups WHERE session_id = $1")
        .bind(session_id)
        .fetch_one(&mut *tx)
        .await?;
    if reference != Some(user_id.as_str()) {
        // The session was not made for the user who started this top-up: never credit it.
        return Err(ServiceError::invalid(
            "Checkout session does not belong to this top-up",
        ));
    }
    ledger::post(
        &mut tx,
        ledger::Movement {
            user_id: &user_id,
            amount_micros: amount,
            kind: ledger::Kind::Topup,
            description: &format!("Card top-up ${}", usd2(amount)),
            reference: Some(session_id),
            idempotency_key: Some(&format!("stripe-session:{session_id}")),
            token_id: None,
        },
    )
    .await?
    .ok_or_else(|| ServiceError::internal(anyhow::anyhow!("top-up credited twice")))?;
    audit::record(
        &mut tx,
        None,
        "billing.topup",
        "user",
        Some(&user_id),
        serde_json::json!({"session_id": session_id, "amount_micros": amount}),
    )
    .await?;
    tx.commit().await?;
    Ok(WebhookOutcome::Credited(amount))
}

/// A top-up's state for the success page: (status, credited µUSD) of the caller's session.
pub async fn topup_status(
    db: &Pool,
    user_id: &str,
    session_id: &str,
) -> ServiceResult<(String, Option<i64>)> {
    sqlx::query_as("SELECT status, credited FROM topups WHERE session_id = $1 AND user_id = $2")
        .bind(session_id)
        .bind(user_id)
        .fetch_optional(db)
        .await?
        .ok_or(ServiceError::NotFound("Top-up"))
}

#[cfg(test)]
mod tests {
    /// The project's fakes speak the version the SDK is built for (else every test webhook
    /// logs a mismatch warning), and the operators' guide tells them the same version.
    #[test]
    fn the_fakes_and_the_readme_name_the_sdks_api_version() {
        let version = super::stripe_api_version();
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        for file in ["end2end/fake-stripe.mjs", "docs/OPERATING.md"] {
            let text = std::fs::read_to_string(root.join(file)).unwrap();
            assert!(text.contains(version), "{file} does not name {version}");
        }
    }
}
