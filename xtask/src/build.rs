//! The site build: compile, split (`split`), copy the static files, name the bundle by its
//! content, precompress; skipped when nothing it is made from changed.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result};

use crate::split::{report_first_loads, split_and_bind};
use crate::{run, target_dir};

/// Builds the whole site into `target/site`.
pub(crate) fn build_site(root: &Path, release: bool) -> Result<()> {
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
    // An unchanged input makes the same bundle: splitting, optimizing and compressing it again
    // took a warm `scripts/run` about a minute for nothing.
    let source = fingerprint(&wasm, &root.join("style/main.css"), release)?;
    if let Some(bundle) = up_to_date(&pkg, &source) {
        copy_static(root, &site)?;
        eprintln!(
            "xtask: the bundle is up to date ({} profile) at {}",
            profile,
            bundle.display()
        );
        return Ok(());
    }
    // Only this build's bundle: earlier ones live in directories named by other hashes.
    if pkg.exists() {
        std::fs::remove_dir_all(&pkg)?;
    }
    let staging = pkg.join("next");
    std::fs::create_dir_all(&staging)?;
    let step = std::time::Instant::now();
    split_and_bind(&wasm, &staging, release)?;
    eprintln!(
        "xtask: split, bound and optimized in {:.1}s",
        step.elapsed().as_secs_f64()
    );
    copy_file(&root.join("style/main.css"), &staging.join("hangar.css"))?;
    copy_static(root, &site)?;
    let bundle = name_by_content(&pkg, &staging)?;
    let step = std::time::Instant::now();
    let mut main_wasm = 0;
    for entry in std::fs::read_dir(&bundle)? {
        let path = entry?.path();
        if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("wasm" | "js" | "css" | "json" | "bin")
        ) {
            precompress(&path, release)?;
        }
        if path.file_name().is_some_and(|n| n == "hangar_bg.wasm") {
            main_wasm = std::fs::metadata(&path)?.len();
        }
    }
    eprintln!("xtask: compressed in {:.1}s", step.elapsed().as_secs_f64());
    report_first_loads(&bundle)?;
    // Last: a build cut short before here is made again next time.
    std::fs::write(pkg.join(SOURCE_FILE), &source)?;
    eprintln!(
        "xtask: site built in {:.1}s ({} KiB of main WASM, {} profile) at {}",
        started.elapsed().as_secs_f64(),
        main_wasm / 1024,
        profile,
        bundle.display()
    );
    Ok(())
}

/// The files served beside the bundle: `public/` and the vendored npm assets.
fn copy_static(root: &Path, site: &Path) -> Result<()> {
    copy_dir(&root.join("public"), site)?;
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
    Ok(())
}

/// Where the fingerprint of the input a bundle was made from is kept (beside `bundle.txt`).
const SOURCE_FILE: &str = "source.sha256";

/// What a bundle is made from: the linked WASM, the stylesheet, the profile, and this build
/// program itself (a change in how bundles are made makes a new one).
fn fingerprint(wasm: &Path, css: &Path, release: bool) -> Result<String> {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    let exe = std::env::current_exe()?;
    for file in [wasm, css, exe.as_path()] {
        let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    }
    hasher.update([u8::from(release)]);
    Ok(hex::encode(hasher.finalize()))
}

/// The current bundle, when it was made from `source` and is still whole.
fn up_to_date(pkg: &Path, source: &str) -> Option<PathBuf> {
    let made_from = std::fs::read_to_string(pkg.join(SOURCE_FILE)).ok()?;
    let name = std::fs::read_to_string(pkg.join("bundle.txt")).ok()?;
    let bundle = pkg.join(name.trim());
    (made_from == source && bundle.join("hangar_bg.wasm").exists()).then_some(bundle)
}

/// Renames the bundle's directory after a hash of everything in it (`pkg/<16 hex digits>/`:
/// `hangar.js`, `hangar_bg.wasm`, the page modules, their loader and manifest, `hangar.css`)
/// and writes that name to `pkg/bundle.txt`, where the server reads which directory to link.
/// A path then always means the same bytes, so browsers may keep the files for a year without
/// asking again (`Cache-Control: immutable`), and a new build is fetched at once because its
/// path is new. The files inside keep plain names because they import each other by relative
/// path (the glue imports the loader, the loader imports the glue and fetches the modules).
fn name_by_content(pkg: &Path, staging: &Path) -> Result<PathBuf> {
    use sha2::{Digest, Sha256};
    let mut files: Vec<_> = std::fs::read_dir(staging)?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    files.sort();
    let mut hasher = Sha256::new();
    for file in &files {
        let name = file.file_name().unwrap_or_default().as_encoded_bytes();
        let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        hasher.update((name.len() as u64).to_le_bytes());
        hasher.update(name);
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    }
    let hash = hex::encode(hasher.finalize())[..16].to_owned();
    let bundle = pkg.join(&hash);
    std::fs::rename(staging, &bundle)?;
    std::fs::write(pkg.join("bundle.txt"), format!("{hash}\n"))?;
    Ok(bundle)
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

pub(crate) fn copy_file(from: &Path, to: &Path) -> Result<()> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::copy(from, to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    Ok(())
}

pub(crate) fn copy_dir(from: &Path, to: &Path) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch directory of its own under the system's temporary directory.
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A bundle made from `source`, as `build_site` leaves it.
    fn made(pkg: &Path, source: &str) {
        std::fs::create_dir_all(pkg.join("abc123")).unwrap();
        std::fs::write(pkg.join("abc123/hangar_bg.wasm"), b"\0asm").unwrap();
        std::fs::write(pkg.join("bundle.txt"), "abc123\n").unwrap();
        std::fs::write(pkg.join(SOURCE_FILE), source).unwrap();
    }

    #[test]
    fn an_unchanged_input_reuses_the_bundle_and_any_change_makes_a_new_one() {
        let dir = scratch("fingerprint");
        let (wasm, css, pkg) = (
            dir.join("frontend.wasm"),
            dir.join("main.css"),
            dir.join("pkg"),
        );
        std::fs::write(&wasm, b"\0asm one").unwrap();
        std::fs::write(&css, "body { color: black }").unwrap();
        let source = fingerprint(&wasm, &css, true).unwrap();
        made(&pkg, &source);
        assert_eq!(
            up_to_date(&pkg, &fingerprint(&wasm, &css, true).unwrap()),
            Some(pkg.join("abc123")),
            "the same WASM, stylesheet and profile: the bundle is reused"
        );

        // The other profile, a new stylesheet, a new WASM: each needs a new bundle.
        assert_eq!(
            up_to_date(&pkg, &fingerprint(&wasm, &css, false).unwrap()),
            None
        );
        std::fs::write(&css, "body { color: navy }").unwrap();
        assert_eq!(
            up_to_date(&pkg, &fingerprint(&wasm, &css, true).unwrap()),
            None
        );
        std::fs::write(&css, "body { color: black }").unwrap();
        std::fs::write(&wasm, b"\0asm two").unwrap();
        assert_eq!(
            up_to_date(&pkg, &fingerprint(&wasm, &css, true).unwrap()),
            None
        );

        // A bundle that lost its files is not reused, whatever it was made from.
        std::fs::write(&wasm, b"\0asm one").unwrap();
        std::fs::remove_file(pkg.join("abc123/hangar_bg.wasm")).unwrap();
        assert_eq!(up_to_date(&pkg, &source), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
