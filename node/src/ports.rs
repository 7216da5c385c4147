//! The node's port pool: the host ports containers may publish. A container binds only ports
//! from the pool; a port bound to a container cannot be deleted until the container lets go.

use std::net::IpAddr;

use crate::{error::NodeError, error::NodeResult, Node};

/// A pool port and a container's binding, in the API's shapes (shared with Hangar's driver).
pub use model::node::{tcp, PoolPort as Port};

type Row = (String, u16, String, bool);

fn from_row((ip, port, protocol, in_use): Row) -> Port {
    Port {
        ip,
        port,
        protocol,
        in_use,
    }
}

/// Checks an address, port and protocol; answers the address in its canonical form.
pub fn validate(ip: &str, port: u32, protocol: &str) -> NodeResult<(String, u16)> {
    let ip: IpAddr = ip.parse().map_err(|_| {
        NodeError::bad_request(format!(
            "Invalid ip {ip:?}: expected an IPv4 or IPv6 address"
        ))
    })?;
    let port = u16::try_from(port)
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| NodeError::bad_request("Invalid port: expected 1 to 65535"))?;
    if protocol != "tcp" && protocol != "udp" {
        return Err(NodeError::bad_request(
            "Invalid protocol: expected \"tcp\" or \"udp\"",
        ));
    }
    Ok((ip.to_string(), port))
}

const COLUMNS: &str = "ip, port, protocol, in_use";

pub async fn add(node: &Node, ip: &str, port: u32, protocol: &str) -> NodeResult<Port> {
    let (ip, port) = validate(ip, port, protocol)?;
    let inserted = sqlx::query(
        "INSERT INTO ports (ip, port, protocol, in_use) VALUES (?, ?, ?, 0) ON CONFLICT (ip, port) DO NOTHING",
    )
    .bind(&ip)
    .bind(port)
    .bind(protocol)
    .execute(node.db())
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(NodeError::bad_request("Port already exists in pool"));
    }
    Ok(Port {
        ip,
        port,
        protocol: protocol.to_owned(),
        in_use: false,
    })
}

pub async fn get(node: &Node, ip: &str, port: u32) -> NodeResult<Port> {
    let Ok((ip, port)) = validate(ip, port, "tcp") else {
        return Err(NodeError::port_not_found());
    };
    sqlx::query_as::<_, Row>(&format!(
        "SELECT {COLUMNS} FROM ports WHERE ip = ? AND port = ?"
    ))
    .bind(ip)
    .bind(port)
    .fetch_optional(node.db())
    .await?
    .map(from_row)
    .ok_or_else(NodeError::port_not_found)
}

pub async fn list(node: &Node) -> NodeResult<Vec<Port>> {
    Ok(
        sqlx::query_as::<_, Row>(&format!("SELECT {COLUMNS} FROM ports ORDER BY ip, port"))
            .fetch_all(node.db())
            .await?
            .into_iter()
            .map(from_row)
            .collect(),
    )
}

/// A free port chosen at random (not the lowest: two panels asking at once rarely collide).
pub async fn random_free(node: &Node) -> NodeResult<Port> {
    sqlx::query_as::<_, Row>(&format!(
        "SELECT {COLUMNS} FROM ports WHERE in_use = 0 ORDER BY RANDOM() LIMIT 1"
    ))
    .fetch_optional(node.db())
    .await?
    .map(from_row)
    .ok_or_else(|| NodeError::not_found("No free port in pool"))
}

/// Marks a port used or free. A port bound to a container stays in use until the container is
/// deleted or rebound.
pub async fn set_in_use(node: &Node, ip: &str, port: u32, in_use: bool) -> NodeResult<Port> {
    let mut found = get(node, ip, port).await?;
    if !in_use {
        if let Some(container) = bound_to(node, &found.ip, found.port).await? {
            return Err(NodeError::conflict(format!(
                "Port is bound to container {container}"
            )));
        }
    }
    sqlx::query("UPDATE ports SET in_use = ? WHERE ip = ? AND port = ?")
        .bind(in_use)
        .bind(&found.ip)
        .bind(found.port)
        .execute(node.db())
        .await?;
    found.in_use = in_use;
    Ok(found)
}

async fn bound_to(node: &Node, ip: &str, port: u16) -> NodeResult<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT container FROM ports WHERE ip = ? AND port = ?")
            .bind(ip)
            .bind(port)
            .fetch_optional(node.db())
            .await?
            .flatten(),
    )
}

pub async fn delete(node: &Node, ip: &str, port: u32) -> NodeResult<()> {
    let found = get(node, ip, port).await?;
    if let Some(container) = bound_to(node, &found.ip, found.port).await? {
        return Err(NodeError::conflict(format!(
            "Port is bound to container {container}"
        )));
    }
    sqlx::query("DELETE FROM ports WHERE ip = ? AND port = ? AND container IS NULL")
        .bind(&found.ip)
        .bind(found.port)
        .execute(node.db())
        .await?;
    Ok(())
}

/// Deletes the listed ports that exist and are not bound to a container, in one transaction;
/// answers how many went.
pub async fn bulk_delete(node: &Node, ports: &[(String, u32)]) -> NodeResult<u64> {
    let mut tx = node.db().begin().await?;
    let mut deleted = 0;
    for (ip, port) in ports {
        let Ok((ip, port)) = validate(ip, *port, "tcp") else {
            continue;
        };
        deleted += sqlx::query("DELETE FROM ports WHERE ip = ? AND port = ? AND container IS NULL")
            .bind(ip)
            .bind(port)
            .execute(&mut *tx)
            .await?
            .rows_affected();
    }
    tx.commit().await?;
    Ok(deleted)
}
