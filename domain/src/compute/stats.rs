//! Live resource charts: a running container's CPU, memory, network and disk samples, about one
//! a second, straight from its node (a node daemon's `stats` events, or a Docker-API engine's
//! stats stream). Nothing is stored: a chart starts empty and fills while it is watched, so an
//! idle portal costs the node nothing. Scoped to the caller (another user's machine is a 404).

use model::compute::{InstanceState, MachineStats};
use tokio::sync::mpsc::Receiver;

use crate::compute::driver::machine_name;
use crate::compute::executor;
use crate::compute::instances;
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
    let driver = executor::driver_for(state, &inst)
        .await?
        .ok_or(ServiceError::NotFound("Instance"))?;
    driver
        .open_stats(&machine_name(&inst.id))
        .await
        .map_err(|e| e.for_request(&inst.id))
}
