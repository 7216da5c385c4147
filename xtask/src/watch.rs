//! `cargo xtask watch`: rebuild what changed and restart the server.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::{Child, Command},
    time::{Duration, SystemTime},
};

use anyhow::{Context, Result};

use crate::build::build_site;

/// Modification times of every file under `dirs`.
fn snapshot(root: &Path, dirs: &[&str]) -> BTreeMap<PathBuf, SystemTime> {
    fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, SystemTime>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if let Ok(modified) = entry.metadata().and_then(|m| m.modified()) {
                out.insert(path, modified);
            }
        }
    }
    let mut out = BTreeMap::new();
    for dir in dirs {
        walk(&root.join(dir), &mut out);
    }
    out
}

fn start_server(root: &Path, release: bool) -> Result<Child> {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(root)
        .args(["run", "--package", "server", "--bin", "hangar"]);
    if release {
        cmd.arg("--release");
    }
    cmd.arg("--").arg("serve");
    cmd.spawn().context("starting the server")
}

/// Polls the source tree (no file-watcher dependency, nothing to install) and rebuilds.
pub(crate) fn watch(root: &Path, release: bool) -> Result<()> {
    const CLIENT: &[&str] = &["model", "app", "frontend", "style", "public"];
    const SERVER: &[&str] = &["model", "domain", "app", "server", "migrations"];
    build_site(root, release)?;
    let mut server = start_server(root, release)?;
    let mut client_seen = snapshot(root, CLIENT);
    let mut server_seen = snapshot(root, SERVER);
    loop {
        std::thread::sleep(Duration::from_millis(700));
        let client_now = snapshot(root, CLIENT);
        let server_now = snapshot(root, SERVER);
        let client_changed = client_now != client_seen;
        let server_changed = server_now != server_seen;
        if !client_changed && !server_changed {
            continue;
        }
        // Let an editor finish writing a burst of files.
        std::thread::sleep(Duration::from_millis(300));
        client_seen = snapshot(root, CLIENT);
        server_seen = snapshot(root, SERVER);
        if client_changed {
            if let Err(e) = build_site(root, release) {
                eprintln!("xtask: site build failed: {e:#}");
                continue;
            }
        }
        eprintln!("xtask: change detected, restarting the server");
        let _ = server.kill();
        let _ = server.wait();
        server = start_server(root, release)?;
    }
}
