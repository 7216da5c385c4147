//! Request and response shapes of `server::api::volume`.

use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
pub struct ListQuery {
    /// A folder, relative to the volume's root (empty or `/`: the root).
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub offset: u64,
    /// Entries per page (default 200, at most 10,000).
    pub limit: Option<u64>,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
pub struct PathQuery {
    /// Relative to the volume's root.
    pub path: String,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Done {
    pub message: String,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct FolderBody {
    pub path: String,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CopyBody {
    pub source: String,
    pub destination: String,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CompressBody {
    /// What to pack; empty: the whole volume.
    #[serde(default)]
    pub path: String,
    /// The archive's name, at the volume's root; `.tar.gz` is added.
    pub output_name: String,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Compressed {
    pub archive_path: String,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DecompressBody {
    /// A `.tar.gz`, `.tgz` or `.tar` in the volume.
    pub archive_path: String,
    /// A folder (created when missing); empty: the root.
    #[serde(default)]
    pub destination: String,
}
