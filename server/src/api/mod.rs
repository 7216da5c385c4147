//! The JSON APIs: one file per resource, each exposing `router()`, merged here with the OpenAPI
//! document generated from the handlers' annotations (so the document lists exactly the routes
//! that exist).

pub mod admin;
pub mod admin_compute;
pub mod admin_customers;
pub mod admin_machines;
pub mod audit;
pub mod auth;
pub mod billing;
pub mod cloud_init;
pub mod console;
pub mod document;
pub mod exec;
pub mod instances;
pub mod meta;
pub mod quotas;
pub mod servers;
pub mod tokens;
pub mod v1;
pub mod volume;
pub mod vps;

use axum::Router;
use domain::AppState;
use serde::Serialize;
use utoipa::{
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
    Modify, OpenApi, ToSchema,
};
use utoipa_axum::router::OpenApiRouter;

/// An error answer (the `/api` dialect shape).
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong, in words a person can act on.
    pub error: String,
}

/// The 402 answer: balance and price in USD.
#[derive(Serialize, ToSchema)]
pub struct InsufficientBalanceBody {
    /// `insufficient balance`, or a message naming the token's spend limit.
    pub error: String,
    pub balance: f64,
    pub required: f64,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Hangar API",
        description = "Marketplace rentals, pools, on-demand VPS and containers, prepaid billing. \
                       Authenticate with `Authorization: Bearer <JWT from /api/auth/login or a vtk_ access token>`. \
                       Every authenticated response carries `X-Balance-Remaining` (USD, 4 decimals).",
        license(name = "AGPL-3.0-or-later")
    ),
    modifiers(&BearerAuth),
    components(schemas(ErrorBody, InsufficientBalanceBody)),
    tags(
        (name = "auth", description = "Accounts and sign-in"),
        (name = "tokens", description = "Long-lived access tokens (`vtk_`)"),
        (name = "billing", description = "Prepaid balance, history, card top-ups (Stripe Checkout + webhook), low-balance alert addresses"),
        (name = "admin", description = "Operator functions"),
        (name = "marketplace", description = "Browse and rent servers by the day (the `/api/v1` dialect)"),
        (name = "rentals", description = "Your rentals and your pools' rentals (the `/api/v1` dialect)"),
        (name = "pools", description = "Teams sharing servers: pools, invitations, members (the `/api/v1` dialect)"),
        (name = "compute", description = "On-demand VPS and containers, billed per minute: pricing, templates, SSH keys, lifecycle, snapshots, batches (the `/api` dialect)"),
        (name = "servers", description = "The same machines as a servers API at `/v1/servers` (`{data: ...}`)"),
        (name = "instances", description = "The same machines as an instances API at `/v1/instances`, with operations"),
        (name = "meta", description = "Health, discovery and this document")
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A JWT from `POST /api/auth/login` or a `vtk_` access token",
                    ))
                    .build(),
            ),
        );
    }
}

/// All API routes and the OpenAPI document describing them.
pub fn router() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(auth::router())
        .merge(tokens::router())
        .merge(audit::router())
        .merge(billing::router())
        .merge(quotas::router())
        .merge(admin::router())
        .merge(meta::router())
        .merge(v1::router())
        .merge(vps::router())
        .merge(exec::router())
        .merge(volume::router())
        .merge(console::router())
        .merge(servers::router())
        .merge(instances::router())
        .merge(admin_compute::router())
        .merge(admin_customers::router())
        .merge(admin_machines::router())
        .split_for_parts();
    let router = router.merge(cloud_init::router());
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    (router, doc)
}
