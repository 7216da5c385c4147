//! Request and response shapes of `server::api::exec`.

use serde::{Deserialize, Serialize};

use crate::compute::ExecResult;

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
    pub status: crate::compute::CommandStatus,
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

/// One machine's answer in a batch exec, in request order.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = BatchExecItem))]
pub struct BatchItem {
    pub vps_id: String,
    /// The HTTP status this item would have had on its own.
    pub status: u16,
    /// A command that ran: its [`ExecResult`] fields sit beside `vps_id` and `status`.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = ExecResultFields))]
    pub result: Option<ExecResult>,
    /// With `background`: the machine's job, and its status (`pending` at first).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_status: Option<crate::compute::CommandStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The OpenAPI shape of [`ExecResult`] flattened into a batch item: the same fields, present only
/// when the command ran (absent for a 404 item or a background job).
#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct ExecResultFields {
    stdout: Option<String>,
    stderr: Option<String>,
    exit_code: Option<i64>,
    duration_ms: Option<i64>,
    truncated: Option<bool>,
    timed_out: Option<bool>,
}
