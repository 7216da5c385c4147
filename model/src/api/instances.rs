//! Request and response shapes of `server::api::instances`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Metadata {
    pub name: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_deserializing)]
    pub created_at: String,
}

#[derive(Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// Plan slug or id (`GET /api/pricing`).
    #[serde(rename = "type")]
    pub kind: String,
    /// Image slug.
    pub image: String,
    pub vcpus: Option<i64>,
    pub memory_mb: Option<i64>,
    pub disk_gb: Option<i64>,
    pub vpc_id: Option<String>,
    pub subnet_id: Option<String>,
    #[serde(default)]
    pub security_groups: Vec<String>,
    #[serde(default)]
    pub ssh_key_ids: Vec<String>,
    /// Base64-encoded cloud-init user data.
    pub user_data: Option<String>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Status {
    /// provisioning · running · stopping · stopped · terminated
    pub state: String,
    pub host_id: String,
    pub private_ip: String,
    pub public_ip: String,
    /// Why it is stopped when Hangar stopped it or it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Instance {
    pub id: String,
    pub metadata: Metadata,
    pub spec: Spec,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation_id: Option<String>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InstanceList {
    pub items: Vec<Instance>,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
pub struct ListQuery {
    /// `env=production,team!=ml,tier`
    pub label_selector: Option<String>,
    #[serde(rename = "labelSelector")]
    #[cfg_attr(feature = "openapi", param(rename = "labelSelector"))]
    pub label_selector_camel: Option<String>,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateInstance {
    pub metadata: Metadata,
    pub spec: Spec,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeleteAccepted {
    pub id: String,
    pub operation_id: String,
}

/// An operation (the `/v1/instances` dialect): a user-visible job, as its owner sees it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Operation {
    pub id: String,
    /// `create`, `start`, `stop`, `restart`, `delete`, `snapshot.create`, `snapshot.restore`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// `pending`, `running`, `succeeded` or `failed`.
    pub status: String,
    pub target_id: Option<String>,
    pub attempts: i64,
    pub error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}
