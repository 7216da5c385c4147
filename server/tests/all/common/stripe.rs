//! A stand-in for Stripe's Checkout Sessions API on 127.0.0.1:0, speaking its wire format
//! (form-encoded requests, JSON sessions), plus signed `checkout.session.completed` events built
//! the way Stripe sends them. Stripe itself cannot be reached from here.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use axum::{
    extract::{Path, State},
    routing::{get, post},
    Json, Router,
};
use serde_json::{json, Value};

pub const WEBHOOK_SECRET: &str = "whsec_test_hangar";

#[derive(Clone, Default)]
pub struct FakeStripe {
    pub sessions: Arc<Mutex<HashMap<String, Value>>>,
    pub addr: Option<SocketAddr>,
}

async fn create(State(fake): State<FakeStripe>, body: String) -> Json<Value> {
    let form: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let get = |k: &str| {
        form.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    let unit: i64 = get("line_items[0][price_data][unit_amount]")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let qty: i64 = get("line_items[0][quantity]")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let mut sessions = fake.sessions.lock().unwrap();
    let id = format!("cs_test_{}", sessions.len() + 1);
    let metadata: serde_json::Map<String, Value> = form
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("metadata[")
                .and_then(|k| k.strip_suffix(']'))
                .map(|k| (k.to_owned(), json!(v)))
        })
        .collect();
    let session = json!({
        "id": id, "object": "checkout.session", "automatic_tax": {"enabled": false}, "created": 1_763_000_000,
        "custom_fields": [], "custom_text": {}, "expires_at": 1_763_086_400, "livemode": false,
        "mode": get("mode").unwrap_or_default(), "payment_method_types": ["card"], "payment_status": "unpaid",
        "shipping_options": [], "status": "open", "currency": "usd", "amount_total": unit * qty,
        "amount_subtotal": unit * qty, "client_reference_id": get("client_reference_id"),
        "customer_email": get("customer_email"), "metadata": metadata,
        "success_url": get("success_url"), "cancel_url": get("cancel_url"),
        "url": format!("http://{}/pay/{id}", fake.addr.map(|a| a.to_string()).unwrap_or_default()),
    });
    sessions.insert(id, session.clone());
    Json(session)
}

async fn retrieve(State(fake): State<FakeStripe>, Path(id): Path<String>) -> Json<Value> {
    Json(
        fake.sessions
            .lock()
            .unwrap()
            .get(&id)
            .cloned()
            .unwrap_or(Value::Null),
    )
}

impl FakeStripe {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let fake = FakeStripe {
            addr: Some(listener.local_addr().unwrap()),
            ..Default::default()
        };
        let app = Router::new()
            .route("/v1/checkout/sessions", post(create))
            .route("/v1/checkout/sessions/{id}", get(retrieve))
            .with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        fake
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr.unwrap())
    }

    pub fn session(&self, id: &str) -> Value {
        self.sessions
            .lock()
            .unwrap()
            .get(id)
            .cloned()
            .expect("known session")
    }

    pub fn only_session_id(&self) -> String {
        let sessions = self.sessions.lock().unwrap();
        assert_eq!(sessions.len(), 1);
        sessions.keys().next().unwrap().clone()
    }
}

/// A `checkout.session.completed` event for `session` (with `paid` as its payment status).
pub fn completed_event(session: &Value, paid: bool) -> String {
    let mut session = session.clone();
    session["payment_status"] = json!(if paid { "paid" } else { "unpaid" });
    session["status"] = json!("complete");
    json!({
        "id": format!("evt_{}", session["id"].as_str().unwrap()), "object": "event", "api_version": domain::money::payments::stripe_api_version(),
        "created": 1_763_000_100, "data": {"object": session}, "livemode": false, "pending_webhooks": 1,
        "request": {"id": null, "idempotency_key": null}, "type": "checkout.session.completed"
    })
    .to_string()
}

/// The `Stripe-Signature` header for `payload`, signed now (or at `timestamp`).
pub fn sign(payload: &str, secret: &str, timestamp: Option<i64>) -> String {
    stripe_webhook::Webhook::generate_test_header(payload, secret, timestamp)
}
