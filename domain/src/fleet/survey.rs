//! Which images each node holds. A catalog image is only a name until some node can boot it: the
//! survey asks every node's driver ([`Driver::has_image`]) about every image of its kind and
//! records the answers in `node_images`. Customers are offered only images some active node of
//! that kind holds (`available`), a create naming another is refused with the list of those that
//! work, and placement goes only to nodes that hold the machine's image (`nodes::place`).
//!
//! When: at start (before the first request), after an operator adds or changes an image or a
//! node, and on every reconciler pass, so an image copied onto a node by hand shows up within
//! `reconcile_interval_secs`. A node that does not answer keeps what it was last found to hold:
//! an outage must not empty the catalog.

use std::time::Duration;

use futures::StreamExt;

use crate::fleet::catalog::{self, ImageRow};
use crate::fleet::driver::{Driver, Kind};
use crate::fleet::nodes::Drivers;
use crate::fleet::nodes::{self, NodeRow};
use crate::infra::db::{self, Pool};
use crate::infra::error::ServiceResult;

/// How long one node has to answer for all its images.
const NODE_WAIT: Duration = Duration::from_secs(15);
/// Nodes surveyed at once.
const NODES_AT_ONCE: usize = 8;

/// Surveys every node (side by side, each bounded by [`NODE_WAIT`]).
pub async fn all(db: &Pool, drivers: &Drivers) -> ServiceResult<()> {
    let images = catalog::images(db).await?;
    let passes: Vec<_> = nodes::list(db)
        .await?
        .into_iter()
        .map(|node| {
            let driver = drivers.for_node(&node);
            let images = &images;
            async move { node_with(db, &node, driver.as_ref(), images).await }
        })
        .collect();
    let results: Vec<ServiceResult<()>> = futures::stream::iter(passes)
        .buffer_unordered(NODES_AT_ONCE)
        .collect()
        .await;
    results.into_iter().collect()
}

/// Surveys one node: what it holds replaces what it was last found to hold. A node that does not
/// answer is left as it was (logged).
pub async fn node(db: &Pool, node: &NodeRow, driver: &dyn Driver) -> ServiceResult<()> {
    let images = catalog::images(db).await?;
    node_with(db, node, driver, &images).await
}

async fn node_with(
    db: &Pool,
    node: &NodeRow,
    driver: &dyn Driver,
    images: &[ImageRow],
) -> ServiceResult<()> {
    let asked = async {
        let mut held = Vec::new();
        for image in images.iter().filter(|i| i.kind == node.kind.as_str()) {
            if driver.has_image(&image.source).await? {
                held.push(image.slug.clone());
            }
        }
        Ok::<_, crate::fleet::driver::DriverError>(held)
    };
    let held = match tokio::time::timeout(NODE_WAIT, asked).await {
        Ok(Ok(held)) => held,
        Ok(Err(e)) => {
            tracing::warn!(node = %node.name, error = %e, "image survey: the node did not answer");
            return Ok(());
        }
        Err(_) => {
            tracing::warn!(node = %node.name, "image survey: the node did not answer in time");
            return Ok(());
        }
    };
    // Upserts, not delete-then-insert: replicas starting together (and their reconcilers) survey
    // the same node at the same moment, and on PostgreSQL a second delete does not see the rows
    // the first transaction inserted, so its inserts would collide with them.
    let mut tx = db::begin(db).await?;
    let now = db::now_ms();
    for slug in &held {
        sqlx::query(
            "INSERT INTO node_images (node_id, image_slug, checked_at) VALUES ($1, $2, $3)
             ON CONFLICT (node_id, image_slug) DO UPDATE SET checked_at = excluded.checked_at",
        )
        .bind(&node.id)
        .bind(slug)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    // What the node no longer holds: every row this pass did not write.
    sqlx::query("DELETE FROM node_images WHERE node_id = $1 AND checked_at < $2")
        .bind(&node.id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// The images customers may choose: held by at least one active node of their kind (a draining
/// node takes no new machines, so what only it holds is not offered).
pub async fn available(db: &Pool) -> ServiceResult<Vec<ImageRow>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {} FROM images i
         WHERE i.active = 1
           AND EXISTS (SELECT 1 FROM node_images ni JOIN nodes n ON n.id = ni.node_id
                       WHERE ni.image_slug = i.slug AND n.status = 'active' AND n.kind = i.kind)
         ORDER BY kind, slug",
        catalog::IMAGE_COLUMNS
    ))
    .fetch_all(db)
    .await?)
}

/// The image used when a request names none: the kind's default when some node holds it, else
/// the first available image of the kind.
pub async fn default_image(db: &Pool, kind: Kind) -> ServiceResult<Option<ImageRow>> {
    Ok(available(db)
        .await?
        .into_iter()
        .filter(|i| i.kind == kind.as_str())
        .max_by_key(|i| (i.is_default, std::cmp::Reverse(i.slug.clone()))))
}

/// Whether some active node of `kind` holds image `slug`.
pub async fn is_available(db: &Pool, slug: &str, kind: Kind) -> ServiceResult<bool> {
    let found: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM node_images ni JOIN nodes n ON n.id = ni.node_id
           JOIN images i ON i.slug = ni.image_slug
         WHERE ni.image_slug = $1 AND n.status = 'active' AND n.kind = $2 AND i.active = 1 LIMIT 1",
    )
    .bind(slug)
    .bind(kind.as_str())
    .fetch_optional(db)
    .await?;
    Ok(found.is_some())
}

/// Every (image slug, node name) pair the survey found, for the operator's image list.
pub async fn holders(db: &Pool) -> ServiceResult<Vec<(String, String)>> {
    Ok(sqlx::query_as(
        "SELECT ni.image_slug, n.name FROM node_images ni JOIN nodes n ON n.id = ni.node_id
         ORDER BY ni.image_slug, n.name",
    )
    .fetch_all(db)
    .await?)
}
