//! Live resource charts: a running machine's CPU, memory, network and disk samples, about one a
//! second, straight from its node (a node daemon's `stats` events, a Docker-API engine's stats
//! stream, libvirt's domain statistics). Nothing is stored here: a live chart starts empty and
//! fills while it is watched (`compute::history` keeps one sample a minute for the history).
//! Scoped to the caller (a machine they cannot use is a 404).

use model::compute::{InstanceState, MachineStats};
use tokio::sync::mpsc::Receiver;

use crate::compute::instances;
use crate::fleet::driver::machine_name;
use crate::infra::error::{ServiceError, ServiceResult};
use crate::AppState;

/// Opens the stream of the caller's running machine; it ends when the machine stops.
pub async fn open(
    state: &AppState,
    user_id: &str,
    id: &str,
) -> ServiceResult<Receiver<MachineStats>> {
    let inst = instances::get(&state.db, user_id, id).await?;
    if inst.state != InstanceState::Running {
        return Err(ServiceError::Conflict(
            "The machine is not running; its charts start when it does".into(),
        ));
    }
    let driver = crate::fleet::nodes::driver_for(state, inst.node_id.as_deref())
        .await?
        .ok_or(ServiceError::NotFound("Instance"))?;
    driver
        .open_stats(&machine_name(&inst.id))
        .await
        .map_err(|e| e.for_request(&inst.id))
}
