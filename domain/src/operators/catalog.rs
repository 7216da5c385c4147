//! The catalog as operators manage it: every plan, image and template, retired ones too, with
//! what uses each (machines, templates, the nodes holding an image), and the marketplace
//! inventory with who rents what until when. Changes go through `fleet::catalog` and
//! `market::inventory`; these are the lists an operator reads before changing anything.

use model::compute::{OperatorImage, OperatorPlan, OperatorTemplate};
use model::market::{Inventory, InventoryRental, InventoryServer};
use model::money::UsdNum;

use crate::fleet::catalog;
use crate::fleet::catalog::HeldRates;
use crate::fleet::survey;
use crate::infra::config::Config;
use crate::infra::db::{self, rfc3339, Pool};
use crate::infra::error::{ServiceError, ServiceResult};

/// Every plan, active first.
pub async fn plans(db: &Pool, config: &Config) -> ServiceResult<Vec<OperatorPlan>> {
    let held = HeldRates::of(config);
    Ok(catalog::all_plans(db)
        .await?
        .into_iter()
        .map(|(p, machines)| OperatorPlan {
            plan: p.to_api(held),
            active: p.active == 1,
            machines,
        })
        .collect())
}

/// Every image, with the nodes that hold it and what uses it.
pub async fn images(db: &Pool) -> ServiceResult<Vec<OperatorImage>> {
    let held = survey::holders(db).await?;
    let uses = catalog::image_uses(db).await?;
    Ok(catalog::images(db)
        .await?
        .into_iter()
        .map(|i| {
            let (_, machines, templates) = uses
                .iter()
                .find(|(slug, ..)| *slug == i.slug)
                .cloned()
                .unwrap_or_default();
            OperatorImage {
                image: i.to_api(),
                source: i.source.clone(),
                app: i.app.is_some(),
                active: i.active == 1,
                nodes: held
                    .iter()
                    .filter(|(slug, _)| *slug == i.slug)
                    .map(|(_, node)| node.clone())
                    .collect(),
                machines,
                templates,
            }
        })
        .collect())
}

/// Every template, active first.
pub async fn templates(db: &Pool) -> ServiceResult<Vec<OperatorTemplate>> {
    Ok(catalog::all_templates(db)
        .await?
        .into_iter()
        .map(|(t, p)| OperatorTemplate {
            template: t.to_api(&p),
            plan: p.slug.clone(),
            active: t.active == 1,
        })
        .collect())
}

/// The most servers one inventory page holds.
pub const MAX_INVENTORY: i64 = 200;

/// The marketplace's servers matching `query` (name, id, model, or the renter's username or
/// e-mail) in `status` (`available`, `rented`, `retired`; empty: all), by name.
pub async fn inventory(
    db: &Pool,
    query: &str,
    status: &str,
    limit: i64,
    offset: i64,
) -> ServiceResult<Inventory> {
    let status_cond = match status {
        "" => "1 = 1",
        "available" => "s.status = 'active' AND r.id IS NULL",
        "rented" => "r.id IS NOT NULL",
        "retired" => "s.status = 'retired'",
        _ => {
            return Err(ServiceError::invalid(
                "status is one of available, rented and retired",
            ))
        }
    };
    let (query, pattern) = db::search_terms(query)?;
    let from = format!(
        "FROM marketplace_servers s
         LEFT JOIN rentals r ON r.server_id = s.id AND r.status = 'active'
         LEFT JOIN users u ON u.id = r.user_id
         WHERE {status_cond}
           AND ($1 = '' OR s.id = $1 OR LOWER(s.name) LIKE $2 ESCAPE '\\'
                OR LOWER(s.model) LIKE $2 ESCAPE '\\' OR LOWER(u.username) LIKE $2 ESCAPE '\\'
                OR LOWER(u.email) LIKE $2 ESCAPE '\\')"
    );
    let total: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) {from}"))
        .bind(&query)
        .bind(&pattern)
        .fetch_one(db)
        .await?;
    #[derive(sqlx::FromRow)]
    struct Row {
        id: String,
        name: String,
        model: String,
        country: String,
        region: String,
        city: String,
        status: String,
        min_price_per_day: i64,
        access_address: Option<String>,
        rental_id: Option<String>,
        user_id: Option<String>,
        username: Option<String>,
        rental_end: Option<i64>,
        expires_at: Option<i64>,
    }
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT s.id, s.name, s.model, s.country, s.region, s.city, s.status, s.min_price_per_day,
                s.access_address, r.id AS rental_id, r.user_id, u.username, r.rental_end, r.expires_at
         {from} ORDER BY s.status, s.name, s.id LIMIT $3 OFFSET $4"
    ))
    .bind(&query)
    .bind(&pattern)
    .bind(limit.clamp(1, MAX_INVENTORY))
    .bind(offset.max(0))
    .fetch_all(db)
    .await?;
    let servers = rows
        .into_iter()
        .map(|r| {
            let rental = match (r.rental_id, r.user_id, r.rental_end, r.expires_at) {
                (Some(id), Some(user_id), Some(end), Some(expires)) => Some(InventoryRental {
                    id,
                    user_id,
                    username: r.username.unwrap_or_default(),
                    rental_end: rfc3339(end),
                    expires_at: rfc3339(expires),
                }),
                _ => None,
            };
            InventoryServer {
                status: if r.status == "retired" {
                    "retired"
                } else if rental.is_some() {
                    "rented"
                } else {
                    "available"
                }
                .to_owned(),
                id: r.id,
                name: r.name,
                model: r.model,
                country: r.country,
                region: r.region,
                city: r.city,
                price_per_day: UsdNum(r.min_price_per_day),
                access_address: r.access_address,
                rental,
            }
        })
        .collect();
    Ok(Inventory { servers, total })
}
