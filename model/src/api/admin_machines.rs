//! Request and response shapes of `server::api::admin_machines`.

use crate::compute::OperatorMachine;
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct TaskQuery {
    /// `queued`, `running`, `done` or `failed`.
    pub state: Option<String>,
    /// A machine's id, or part of its name or its owner's username.
    pub q: Option<String>,
    /// At most 200; default 50.
    pub limit: Option<i64>,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct MachineQuery {
    /// Part of a machine's name, its owner's username or e-mail (any case), or a whole id.
    pub q: Option<String>,
    /// `creating`, `running`, `stopped` or `error`.
    pub state: Option<String>,
    /// At most 200; default 50.
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MachinePage {
    pub data: Vec<OperatorMachine>,
    pub total: i64,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct OperatorAction {
    /// Why, in words for the machine's owner (shown as its `reason` after a stop or delete).
    #[cfg_attr(
        feature = "openapi",
        schema(example = "abuse report #1234: outgoing spam")
    )]
    pub why: String,
}
