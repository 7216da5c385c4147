//! How a tenant's container is kept apart from everyone else's on a Docker-API engine, the same
//! way for Hangar's container driver and for the node daemon (feature `docker`).
//!
//! - **A network per account.** Every container of one account joins that account's bridge
//!   network; it reaches the account's other containers and the outside, never another account's.
//!   Podman isolates bridge networks from each other only when they are made with its `isolate`
//!   option, which Docker ignores (Docker isolates user-defined bridges from each other already),
//!   so networks are made with it on both. Podman does not isolate an isolated network from its
//!   default `podman` network: nothing of Hangar's runs there. Each network takes a subnet from
//!   the engine's pool (Podman: 10.89.0.0/16 in /24s by default, so about 250 accounts per node;
//!   an operator with more widens `default_subnet_pools` in `containers.conf`).
//! - **A process limit** (`PidsLimit`): a fork bomb stops at the limit instead of starving the
//!   host's process table.
//! - **No new privileges** (`no-new-privileges`): a set-uid binary inside cannot raise a process
//!   above what it started with.
//!
//! Disk: the engines here cannot bound a container's writable layer (overlay's `size` needs XFS
//! project quotas, which this kernel is built without; Podman 4.3's btrfs and vfs drivers take no
//! `size`), so Hangar measures what each container writes and acts on it (see the container
//! driver and the node daemon's volumes).

use std::collections::HashMap;

use bollard::errors::Error;
use bollard::models::{HostConfig, NetworkCreateRequest};
use bollard::Docker;

/// The option that keeps a no-new-privileges process from gaining any (both engines' spelling).
pub const NO_NEW_PRIVILEGES: &str = "no-new-privileges";

/// The host configuration every tenant container starts from: its network, its process limit
/// and no new privileges. Callers add limits, mounts and ports.
pub fn tenant_host_config(network: &str, pids_limit: i64) -> HostConfig {
    HostConfig {
        network_mode: Some(network.to_owned()),
        pids_limit: (pids_limit > 0).then_some(pids_limit),
        security_opt: Some(vec![NO_NEW_PRIVILEGES.to_owned()]),
        ..Default::default()
    }
}

/// The networks a container is on, by name. (Podman's inspect answers `NetworkMode: bridge` for
/// a container on a named network; the attached networks are the truth on both engines.)
pub fn networks_of(container: &bollard::models::ContainerInspectResponse) -> Vec<String> {
    container
        .network_settings
        .as_ref()
        .and_then(|n| n.networks.as_ref())
        .map(|n| n.keys().cloned().collect())
        .unwrap_or_default()
}

fn status_of(e: &Error) -> Option<u16> {
    match e {
        Error::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// Makes the isolated bridge network `name` unless it exists (idempotent: a concurrent maker
/// winning the race is fine, whatever the engine answers the loser; Podman says 500 "already
/// exists", Docker 409).
pub async fn isolated_network(
    docker: &Docker,
    name: &str,
    labels: HashMap<String, String>,
) -> Result<(), Error> {
    match docker.inspect_network(name, None).await {
        Ok(_) => return Ok(()),
        Err(e) if status_of(&e) == Some(404) => {}
        Err(e) => return Err(e),
    }
    let request = NetworkCreateRequest {
        name: name.to_owned(),
        driver: Some("bridge".into()),
        options: Some(HashMap::from([("isolate".to_owned(), "true".to_owned())])),
        labels: Some(labels),
        ..Default::default()
    };
    match docker.create_network(request).await {
        Ok(_) => Ok(()),
        Err(e) => match docker.inspect_network(name, None).await {
            Ok(_) => Ok(()),
            Err(_) => Err(e),
        },
    }
}

/// Removes the network `name` when no container uses it any more; one still in use, or already
/// gone, is left as it is. Best effort: a network left behind costs a subnet, not safety.
pub async fn remove_network_if_unused(docker: &Docker, name: &str) {
    let in_use = match docker.inspect_network(name, None).await {
        Ok(n) => n.containers.is_some_and(|c| !c.is_empty()),
        Err(_) => return,
    };
    if !in_use {
        let _ = docker.remove_network(name).await;
    }
}
