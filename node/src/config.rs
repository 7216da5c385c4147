//! The daemon's typed configuration: one TOML file, read at start and again on
//! `POST /remote/config/reload` (tokens, vendor, remote and limits change at once; the listener
//! and the storage directory only at the next start).
//!
//! ```toml
//! [server]
//! host = "127.0.0.1"          # the node daemon's default listener is 127.0.0.1:8070
//! port = 8070
//!
//! [authorization]
//! enabled = true
//! token = "lightd_..."         # the panel's token; generated on first start when missing
//! vendor = "hangar"            # optional: requests must carry `X-Vendor: hangar`
//!
//! [remote]                     # the panel this daemon belongs to (informational today)
//! enabled = false
//! url = ""
//! token = ""
//!
//! [storage]
//! root = "/var/lib/hangar-node"   # volumes/, install/ and node.db live here; a relative
//!                                 # path is taken from the config file's own directory
//!
//! [docker]
//! host = "unix:///var/run/docker.sock"
//!
//! [limits]
//! volume_bytes = 0             # default disk limit of a new volume; 0 = none
//! file_write_bytes = 1048576   # largest body of the JSON write route; uploads stream
//! archive_entries = 100000     # an archive with more entries is refused
//! archive_bytes = 10737418240  # nor may it unpack to more than this
//! list_page = 1000             # entries per listing page unless the client asks fewer
//! container_pids = 4096        # most processes in one container unless its create says
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: Server,
    pub authorization: Authorization,
    pub remote: Remote,
    pub storage: Storage,
    pub docker: Docker,
    pub limits: Limits,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Server {
    pub host: String,
    pub port: u16,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Authorization {
    pub enabled: bool,
    pub token: String,
    /// When set, every authenticated request must carry `X-Vendor` with this value (403 "Invalid
    /// vendor header" otherwise): a second check that the caller is the panel this daemon was
    /// registered with, so a token copied to another tool is not enough on its own.
    pub vendor: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Remote {
    pub enabled: bool,
    pub url: String,
    pub token: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Storage {
    pub root: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Docker {
    pub host: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    pub volume_bytes: u64,
    pub file_write_bytes: usize,
    pub archive_entries: u64,
    pub archive_bytes: u64,
    pub list_page: usize,
    /// The most processes a container may hold unless its create says otherwise.
    pub container_pids: u64,
}

impl Storage {
    /// `root` as an absolute path: a relative one is taken from the directory of the config file
    /// at `config_path` (not from wherever the daemon was started). Paths under the root become
    /// bind-mount sources, and the container engine reads a relative source as a volume *name*
    /// and refuses it, so no relative path may reach it.
    pub(crate) fn absolute_root(&self, config_path: &Path) -> anyhow::Result<PathBuf> {
        if self.root.is_absolute() {
            return Ok(self.root.clone());
        }
        let file = std::path::absolute(config_path)?;
        let dir = file.parent().unwrap_or(Path::new("/"));
        Ok(dir.join(&self.root))
    }
}

impl Default for Server {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 8070,
        }
    }
}

impl Default for Authorization {
    fn default() -> Self {
        Self {
            enabled: true,
            token: String::new(),
            vendor: None,
        }
    }
}

impl Default for Storage {
    fn default() -> Self {
        Self {
            root: PathBuf::from("/var/lib/hangar-node"),
        }
    }
}

impl Default for Docker {
    fn default() -> Self {
        Self {
            host: "unix:///var/run/docker.sock".into(),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            volume_bytes: 0,
            file_write_bytes: 1024 * 1024,
            archive_entries: 100_000,
            archive_bytes: 10 * 1024 * 1024 * 1024,
            list_page: 1000,
            container_pids: 4096,
        }
    }
}

/// A fresh `lightd_` token: 32 hex digits of randomness, as the reference shows them.
pub fn new_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("lightd_{}", hex::encode(bytes))
}

impl Config {
    /// Reads `path`; when it does not exist, writes the defaults there with a new token, so a
    /// first start leaves a file the operator can read the token from.
    pub fn load_or_create(path: &Path) -> anyhow::Result<Self> {
        if !path.exists() {
            let config = Config {
                authorization: Authorization {
                    token: new_token(),
                    ..Authorization::default()
                },
                ..Config::default()
            };
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            // Made 0600 from the start: no moment in which another user could read the token.
            {
                use std::io::Write;
                use std::os::unix::fs::OpenOptionsExt;
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)?;
                file.write_all(toml::to_string_pretty(&config)?.as_bytes())?;
            }
            restrict(path)?;
            return Ok(config);
        }
        Self::load(path)
    }

    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        let mut config: Config = toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{} is not a valid config: {e}", path.display()))?;
        config.storage.root = config.storage.absolute_root(path)?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> anyhow::Result<()> {
        if self.authorization.enabled && self.authorization.token.len() < 16 {
            anyhow::bail!("authorization.token must be set (at least 16 characters) when authorization is enabled");
        }
        if self.limits.list_page == 0 {
            anyhow::bail!("limits.list_page must be at least 1");
        }
        Ok(())
    }

    pub fn volumes_dir(&self) -> PathBuf {
        self.storage.root.join("volumes")
    }

    pub fn database_path(&self) -> PathBuf {
        self.storage.root.join("node.db")
    }
}

/// The config holds the panel's token: readable by its owner only.
fn restrict(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A config with `root = "storage"` next to it must not hand the engine a relative bind
    /// source (the embedded default once did, and every app machine failed to install).
    #[test]
    fn a_relative_storage_root_is_taken_from_the_config_files_directory() {
        let dir = std::env::temp_dir().join(format!("hangar-node-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.toml");
        let mut config = Config::load_or_create(&path).unwrap();
        config.storage.root = PathBuf::from("storage");
        std::fs::write(&path, toml::to_string_pretty(&config).unwrap()).unwrap();
        let loaded = Config::load(&path).unwrap();
        assert_eq!(loaded.storage.root, dir.join("storage"));
        assert!(loaded.volumes_dir().is_absolute());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
