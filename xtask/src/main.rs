//! Builds Hangar's site bundle and runs the development watch loop, without downloading tools.
//!
//! `cargo xtask build [--release]`:
//!   1. compiles `frontend` for `wasm32-unknown-unknown` (profile `wasm-release` with `--release`);
//!   2. splits the WASM into a main module and one module per group of pages (`split_and_bind`, groups in `app::lazy_pages!`), and
//!      generates the JS glue with wasm-bindgen's own library, linked here at exactly the version
//!      the workspace pins for the runtime crate, so the two can never disagree;
//!   3. with `--release`, optimizes every module with npm's `binaryen` when installed
//!      (`xtask/optimize.mjs`, the library behind `wasm-opt`, in one process), then packs each
//!      group's modules into one file, `pack_<group>.bin`, which the browser downloads instead;
//!   4. copies `style/main.css` beside them as `hangar.css`, `public/` to the site root, and the
//!      vendored front-end packages (Swagger UI, xterm.js, noVNC) from `node_modules/` to
//!      `vendor/`;
//!   5. names the bundle's directory by its content (`pkg/<hash>/`, the name in
//!      `pkg/bundle.txt`), so the server can tell browsers to keep those files for good, and
//!      writes brotli and gzip copies of each file (`.br`, `.gz`; the best levels with
//!      `--release`), which the server sends as they are, and prints what a first visit to each
//!      group of pages downloads (`report_first_loads`).
//!
//! Steps 2–5 are skipped when the linked WASM, the stylesheet, the profile and this program are
//! what the current bundle was made from (`pkg/source.sha256`): a warm `scripts/run` spent about a
//! minute making the same bundle again.
//!
//! `cargo xtask watch`: builds, starts `hangar serve`, and on every change under `model/`, `domain/`, `app/`, `frontend/`,
//! `server/`, `style/`, `public/` or `migrations/` rebuilds what changed and restarts the server.
//!
//! The site goes to `target/site` in the repository (the server's default `site_root`).

mod build;
mod split;
mod watch;

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context, Result};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let release = args.iter().any(|a| a == "--release");
    let root = workspace_root()?;
    match args.first().map(String::as_str) {
        Some("build") => build::build_site(&root, release),
        Some("watch") => watch::watch(&root, release),
        _ => {
            eprintln!("usage: cargo xtask build [--release] | cargo xtask watch [--release]");
            std::process::exit(2);
        }
    }
}

pub(crate) fn workspace_root() -> Result<PathBuf> {
    // At run time first: `cargo run` sets it to *this* checkout's xtask. The compile-time value
    // can name another checkout, because the build cache (outside the clone) is shared and cargo
    // may reuse a binary built there.
    let here = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    Ok(here
        .parent()
        .context("xtask lives inside the workspace")?
        .to_owned())
}

pub(crate) fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}

pub(crate) fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("starting {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}
