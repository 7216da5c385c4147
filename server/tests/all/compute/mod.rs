//! Compute through the three APIs (the `/api`, `/v1/servers` and `/v1/instances` dialects) on
//! libvirt's test driver, a module per story: `catalog` (plans, images, templates, keys), `lifecycle` (a
//! customer's machine from create to delete, batches, containers on Podman), `dialects` (one
//! machine, three APIs), `limits` (quotas and money that matches capacity), `resilience` (capacity races, restarts, the reconciler) and `addresses`
//! (public IPv4). The helpers below are the steps the stories repeat.

use crate::common;

mod addresses;
mod catalog;
mod dialects;
mod lifecycle;
mod limits;
mod resilience;

use std::collections::HashSet;

use common::{expect_error, expect_json, TestApp};
use domain::compute::{instances, reconcile};
use domain::fleet::driver::machine_name;
use domain::fleet::nodes;
use domain::infra::queue;
use reqwest::StatusCode;
use serde_json::{json, Value};

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOpGf6s4Zz2qR1b3l7M9m8xH0d7lq1fK2Z8v2wG4bY1c me@laptop";

async fn plan_id(app: &TestApp, slug: &str) -> String {
    let plans = expect_json(app.get("/api/pricing", None).await, StatusCode::OK).await;
    plans
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["slug"] == slug)
        .unwrap_or_else(|| panic!("no plan {slug} in {}", plans.text))["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn vm_node(app: &TestApp) -> nodes::NodeRow {
    nodes::list(&app.state.db)
        .await
        .unwrap()
        .into_iter()
        .find(|n| n.kind == domain::fleet::driver::Kind::Vm)
        .unwrap()
}

/// Creates a VPS through the `/api` dialect and expects 201; returns the VPS as answered.
async fn create_vps(app: &TestApp, token: &str, body: Value) -> common::Body {
    expect_json(
        app.post("/api/vps", Some(token), body).await,
        StatusCode::CREATED,
    )
    .await
}

/// A VPS as its owner sees it through the `/api` dialect.
async fn get_vps(app: &TestApp, token: &str, id: &str) -> common::Body {
    expect_json(
        app.get(&format!("/api/vps/{id}"), Some(token)).await,
        StatusCode::OK,
    )
    .await
}

/// Adds the test SSH key to `token`'s account; returns the key as answered.
async fn add_key(app: &TestApp, token: &str) -> common::Body {
    expect_json(
        app.post(
            "/api/keys",
            Some(token),
            json!({"name": "k", "public_key": KEY}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await
}
