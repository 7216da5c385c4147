//! Builds Hangar's site bundle and runs the development watch loop, without downloading tools.
//!
//! `cargo xtask build [--release]`:
//!   1. compiles `frontend` for `wasm32-unknown-unknown` (profile `wasm-release` with `--release`);
//!   2. generates the JS glue with wasm-bindgen's own library, linked here at exactly the version
//!      the workspace pins for the runtime crate, so the two can never disagree;
//!   3. with `--release`, shrinks the WASM with `wasm-opt -Oz` from npm's `binaryen` when present;
//!      then writes brotli and gzip copies of the bundle (`.br`, `.gz`; the best levels with
//!      `--release`), which the server sends as they are;
//!   4. copies `style/main.css` to `pkg/hangar.css`, `public/` to the site root, and the vendored
//!      front-end packages (Swagger UI, xterm.js, noVNC) from `node_modules/` to `vendor/`;
//!   5. names the bundle by its content (`pkg/hangar.<hash>.js`, `_bg.wasm`, `.css`; the stem in
//!      `pkg/bundle.txt`), so the server can tell browsers to keep those files for good.
//!
//! `cargo xtask watch`: builds, starts `hangar serve`, and on every change under `model/`, `domain/`, `app/`, `frontend/`,
//! `server/`, `style/`, `public/` or `migrations/` rebuilds what changed and restarts the server.
//!
//! The site goes to `target/site` in the repository (the server's default `site_root`).

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::{Child, Command},
    time::{Duration, SystemTime},
};

use anyhow::{bail, Context, Result};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let release = args.iter().any(|a| a == "--release");
    let root = workspace_root()?;
    match args.first().map(String::as_str) {
        Some("build") => build_site(&root, release),
        Some("watch") => watch(&root, release),
        _ => {
            eprintln!("usage: cargo xtask build [--release] | cargo xtask watch [--release]");
            std::process::exit(2);
        }
    }
}

fn workspace_root() -> Result<PathBuf> {
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

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}

fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("starting {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

/// Builds the whole site into `target/site`.
fn build_site(root: &Path, release: bool) -> Result<()> {
    let started = std::time::Instant::now();
    let profile = if release { "wasm-release" } else { "dev" };
    run(Command::new(env!("CARGO"))
        .current_dir(root)
        .args([
            "build",
            "--package",
            "frontend",
            "--lib",
            "--target",
            "wasm32-unknown-unknown",
        ])
        .args(["--profile", profile]))?;
    let profile_dir = if release { "wasm-release" } else { "debug" };
    let wasm = target_dir(root)
        .join("wasm32-unknown-unknown")
        .join(profile_dir)
        .join("frontend.wasm");

    let site = root.join("target/site");
    let pkg = site.join("pkg");
    // Only this build's bundle: earlier ones carry other hashes.
    if pkg.exists() {
        std::fs::remove_dir_all(&pkg)?;
    }
    std::fs::create_dir_all(&pkg)?;
    wasm_bindgen_cli_support::Bindgen::new()
        .input_path(&wasm)
        .out_name("hangar")
        .web(true)?
        .typescript(false)
        .debug(!release)
        .generate(&pkg)
        .context("generating the wasm-bindgen glue")?;

    let wasm_out = pkg.join("hangar_bg.wasm");
    let wasm_opt = root.join("node_modules/.bin/wasm-opt");
    if release && wasm_opt.exists() {
        run(Command::new(&wasm_opt)
            .arg(&wasm_out)
            .args([
                "-Oz",
                "--enable-bulk-memory",
                "--enable-nontrapping-float-to-int",
                "-o",
            ])
            .arg(&wasm_out))?;
    }

    copy_file(&root.join("style/main.css"), &pkg.join("hangar.css"))?;
    copy_dir(&root.join("public"), &site)?;
    for (package, files, dest) in VENDORED {
        let from = root.join("node_modules").join(package);
        if !from.exists() {
            eprintln!("xtask: {package} is not installed (run `npm ci`); skipping");
            continue;
        }
        for file in *files {
            let source = from.join(file);
            let name = Path::new(file).file_name().unwrap_or_default();
            let target = site.join("vendor").join(dest).join(name);
            if source.is_dir() {
                // ES module trees (noVNC's `core/`) keep their layout: they import each other
                // by relative path.
                std::fs::create_dir_all(&target)?;
                copy_dir(&source, &target)?;
            } else {
                copy_file(&source, &target)?;
            }
        }
    }
    let stem = name_by_content(&pkg)?;
    for name in [
        format!("{stem}_bg.wasm"),
        format!("{stem}.js"),
        format!("{stem}.css"),
    ] {
        precompress(&pkg.join(name), release)?;
    }
    let size = std::fs::metadata(pkg.join(format!("{stem}_bg.wasm")))
        .map(|m| m.len())
        .unwrap_or(0);
    eprintln!(
        "xtask: site built in {:.1}s ({} KiB of WASM, {} profile) at {}",
        started.elapsed().as_secs_f64(),
        size / 1024,
        profile,
        site.display()
    );
    Ok(())
}

/// Renames the bundle (`hangar.js`, `hangar_bg.wasm`, `hangar.css`) to carry a hash of its
/// contents, `hangar.<16 hex digits>.*`, and writes that stem to `pkg/bundle.txt`, where the
/// server reads which names to link. A name then always means the same bytes, so browsers may
/// keep the files for a year without asking again (`Cache-Control: immutable`), and a new build
/// is fetched at once because its names are new. One hash for the three: they change together.
fn name_by_content(pkg: &Path) -> Result<String> {
    use sha2::{Digest, Sha256};
    let files = [
        ("hangar.js", ".js"),
        ("hangar_bg.wasm", "_bg.wasm"),
        ("hangar.css", ".css"),
    ];
    let mut hasher = Sha256::new();
    for (name, _) in files {
        let bytes = std::fs::read(pkg.join(name)).with_context(|| format!("reading {name}"))?;
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    }
    let stem = format!("hangar.{}", &hex::encode(hasher.finalize())[..16]);
    for (name, suffix) in files {
        std::fs::rename(pkg.join(name), pkg.join(format!("{stem}{suffix}")))?;
    }
    std::fs::write(pkg.join("bundle.txt"), format!("{stem}\n"))?;
    Ok(stem)
}

/// npm package, files (or whole directories) inside it, directory under `vendor/`.
const VENDORED: &[(&str, &[&str], &str)] = &[
    (
        "swagger-ui-dist",
        &[
            "swagger-ui.css",
            "swagger-ui-bundle.js",
            "swagger-ui-standalone-preset.js",
        ],
        "swagger-ui",
    ),
    (
        "@xterm/xterm",
        &["lib/xterm.js", "lib/xterm.mjs", "css/xterm.css"],
        "xterm",
    ),
    ("@xterm/addon-fit", &["lib/addon-fit.mjs"], "xterm"),
    // noVNC's ES modules and the zlib port they import from `../vendor/pako`.
    ("@novnc/novnc", &["core", "vendor"], "novnc"),
];

fn copy_file(from: &Path, to: &Path) -> Result<()> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::copy(from, to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let dest = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            std::fs::create_dir_all(&dest)?;
            copy_dir(&entry.path(), &dest)?;
        } else {
            copy_file(&entry.path(), &dest)?;
        }
    }
    Ok(())
}

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
fn watch(root: &Path, release: bool) -> Result<()> {
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

/// Writes `file.br` and `file.gz` beside `file`, which the server sends to browsers that accept
/// them instead of compressing the bundle again for every visitor. Brotli at its best (11) for
/// release; a fast level while developing (the dev bundle is ten times larger).
fn precompress(file: &Path, release: bool) -> Result<()> {
    use std::io::Write;
    let data = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let with = |ext: &str| {
        let mut name = file.as_os_str().to_owned();
        name.push(ext);
        std::path::PathBuf::from(name)
    };
    let mut br = Vec::new();
    let params = brotli::enc::BrotliEncoderParams {
        quality: if release { 11 } else { 4 },
        lgwin: 22,
        ..Default::default()
    };
    brotli::BrotliCompress(&mut &data[..], &mut br, &params)?;
    std::fs::write(with(".br"), br)?;
    let level = if release { 9 } else { 3 };
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
    gz.write_all(&data)?;
    std::fs::write(with(".gz"), gz.finish()?)?;
    Ok(())
}
