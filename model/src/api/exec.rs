//! Request and response shapes of `server::api::exec`.

use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ExecBody {
    /// Shell command, run with `sh -c` as root.
    pub command: String,
    /// Default 30; at most the operator's `exec_max_timeout_secs` (default 3600).
    pub timeout_seconds: Option<u64>,
    /// Run asynchronously and answer with a job id.
    #[serde(default)]
    pub background: bool,
}

/// `{"job_id", "status": "pending", "timeout_seconds"}` for a background exec.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StartedJob {
    pub job_id: String,
    pub status: String,
    pub timeout_seconds: i64,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
pub struct FileQuery {
    /// Absolute path inside the machine, e.g. `/root/script.sh`.
    pub path: String,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct BatchExecBody {
    /// Up to `max_batch_size` VPS ids; results come back in this order.
    pub ids: Vec<String>,
    pub command: String,
    pub timeout_seconds: Option<u64>,
    #[serde(default)]
    pub background: bool,
}
