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

/// The name the split modules import their loader from, and which Leptos links (its
/// `HydrationScripts` looks for exactly this name when file hashing is left to the build).
const SPLIT_LINK: &str = "./__wasm_split.______________________.js";

/// Splits the linked WASM into the main module and one module per group of lazily loaded pages (plus
/// chunks the pages share), then generates the JS glue for the main module.
///
/// 1. `wasm_split_cli_support` follows the link relocations (`--emit-relocs`, set for the WASM
///    target in `.cargo/config.toml`) to move each `#[lazy]` function and everything only it
///    uses into `split_*.wasm` / `chunk_*.wasm`, and writes the loader (`SPLIT_LINK`, patched
///    by `patch_loader`) and a manifest of which files each group needs (`packs.json`, which the
///    server reads for its preload links);
/// 2. wasm-bindgen's library makes the glue (`hangar.js`) for the main module, keeping the
///    linker's exports the split modules import;
/// 3. with `--release`, binaryen optimizes every module (`xtask/optimize.mjs`);
/// 4. `write_packs` puts each group's modules into `pack_<group>.bin`.
///
/// All names are relative to the bundle's directory, which is renamed after its content last.
fn split_and_bind(wasm: &Path, out: &Path, release: bool) -> Result<()> {
    let input = std::fs::read(wasm).with_context(|| format!("reading {}", wasm.display()))?;
    let main = out.join("main.wasm");
    let split = wasm_split_cli_support::transform({
        let mut options = wasm_split_cli_support::Options::new(&input);
        options.output_dir = out;
        options.main_out_path = &main;
        options.main_module = "./hangar.js";
        options.link_name = SPLIT_LINK;
        options
    })
    .map_err(|e| anyhow::anyhow!("splitting the WASM into per-group modules: {e:#}"))?;
    let manifest: BTreeMap<_, _> = split.prefetch_map.into_iter().collect();
    patch_loader(&out.join(SPLIT_LINK), &manifest)?;
    std::fs::write(
        out.join("packs.json"),
        serde_json::to_string_pretty(&manifest)?,
    )?;

    wasm_bindgen_cli_support::Bindgen::new()
        .input_path(&main)
        .out_name("hangar")
        .web(true)?
        .typescript(false)
        .keep_lld_exports(true)
        .demangle(false)
        .debug(!release)
        .generate(out)
        .context("generating the wasm-bindgen glue")?;
    std::fs::remove_file(&main)?;

    let root = workspace_root()?;
    if release && root.join("node_modules/binaryen").exists() {
        let step = std::time::Instant::now();
        let mut modules = split.split_modules;
        modules.push(out.join("hangar_bg.wasm"));
        let done = Command::new("node")
            .arg(root.join("xtask/optimize.mjs"))
            .args(&modules)
            .output()
            .context("starting node for xtask/optimize.mjs")?;
        // binaryen's usual complaint is the name section's newer subsections, which it drops:
        // one line per module; anything else is shown.
        String::from_utf8_lossy(&done.stderr)
            .lines()
            .filter(|line| !line.contains("unknown name subsection"))
            .for_each(|line| eprintln!("{line}"));
        if !done.status.success() {
            bail!("xtask/optimize.mjs failed with {}", done.status);
        }
        eprintln!(
            "xtask: {} modules optimized in {:.1}s",
            modules.len(),
            step.elapsed().as_secs_f64()
        );
    }
    write_packs(out, &manifest)?;
    Ok(())
}

/// Makes the loader take page modules from their group's pack, and retry a download a few
/// times.
///
/// Packs: a group's modules are many small files (50 to 140: the group's own and the chunks it
/// shares with other groups), and compressing each on its own costs a third more bytes than
/// compressing them together, on top of a request each. `write_packs` puts a group's modules in
/// one file, `pack_<group>.bin`, which the page's HTML preloads; the loader's exported load
/// function of a group notes which group it is loading, and each module it then fetches is cut
/// out of that group's pack (or out of any pack already downloaded that has it). A module in no
/// pack, or whose pack cannot be had, is fetched on its own as before.
///
/// Retries: one lost download would leave the page without its code for good (the module's
/// caller cannot recover): a phone moving between networks, or a host whose interfaces change
/// (Chromium then fails every request in flight with `ERR_NETWORK_CHANGED`), must not cost the
/// page.
///
/// Fails the build if the loader no longer looks as expected, rather than ship without these.
fn patch_loader(loader: &Path, manifest: &BTreeMap<String, Vec<String>>) -> Result<()> {
    const PRELUDE: &str = r#"
/* Hangar: a download is retried (4 tries, 0.2 s, 0.4 s, 0.8 s apart). */
async function fetchRetrying(url) {
    for (let attempt = 0; ; attempt++) {
        try {
            const response = await fetch(url);
            if (response.ok || attempt === 3) return response;
        } catch (e) {
            if (attempt === 3) throw e;
        }
        await new Promise((resolve) => setTimeout(resolve, 200 << attempt));
    }
}
/* Hangar: each group's modules in one file, `pack_<group>.bin` (see xtask/src/main.rs): a
   little-endian u32 n, n bytes of JSON [[file, length], ...], then the files one after another. */
const packsHaving = new Map();
for (const [group, modules] of Object.entries(PACKS)) {
    for (const m of modules) packsHaving.set(m + ".wasm", [...(packsHaving.get(m + ".wasm") ?? []), group]);
}
const packs = new Map();
let loadingGroup;
function loadPack(group) {
    let pack = packs.get(group);
    if (pack === undefined) {
        pack = (async () => {
            const response = await fetchRetrying(new URL(`./pack_${group}.bin`, import.meta.url));
            if (!response.ok) throw new Error(`HTTP ${response.status}`);
            const buffer = await response.arrayBuffer();
            const length = new DataView(buffer).getUint32(0, true);
            const index = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 4, length)));
            const modules = new Map();
            let at = 4 + length;
            for (const [file, size] of index) {
                modules.set(file, new Uint8Array(buffer, at, size));
                at += size;
            }
            return modules;
        })();
        pack.catch(() => packs.delete(group));
        packs.set(group, pack);
    }
    return pack;
}
async function fetchModule(url) {
    const file = url.pathname.slice(url.pathname.lastIndexOf("/") + 1);
    const groups = packsHaving.get(file) ?? [];
    const group = groups.find((g) => packs.has(g)) ?? (groups.includes(loadingGroup) ? loadingGroup : groups[0]);
    if (group !== undefined) {
        try {
            const bytes = (await loadPack(group)).get(file);
            if (bytes !== undefined) return new Response(bytes, { headers: { "Content-Type": "application/wasm" } });
        } catch (e) {
            console.warn(`pack ${group} could not be loaded (${e}); fetching ${file} on its own`);
        }
    }
    return fetchRetrying(url);
}
"#;
    const FETCH: &str = "fetch(new URL(";
    const WRAP: &str = "function wrapAsyncCb(callee) {";
    const CALL: &str = "await callee();";
    const EXPORT: &str = "export const __wasm_split_load_";
    const EXPORTED: &str = " = wrapAsyncCb(";
    let js = std::fs::read_to_string(loader)?;
    for pattern in [FETCH, WRAP, CALL, EXPORT] {
        if !js.contains(pattern) {
            bail!("{} has no `{pattern}` to patch", loader.display());
        }
    }
    let mut js = js
        .replace(FETCH, "fetchModule(new URL(")
        .replace(WRAP, "function wrapAsyncCb(group, callee) {")
        .replace(
            CALL,
            "let loading;\n            try {\n                loadingGroup = group;\n                \
             loading = callee();\n            } finally {\n                loadingGroup = undefined;\n            \
             }\n            await loading;",
        );
    // Each group's exported load function passes its group's name.
    for group in manifest.keys() {
        let export = format!("{EXPORT}{group}{EXPORTED}");
        if !js.contains(&export) {
            bail!(
                "{} exports no load function for group {group}",
                loader.display()
            );
        }
        js = js.replace(
            &export,
            &format!("{export}{}, ", serde_json::to_string(group)?),
        );
    }
    let packs = format!("const PACKS = {};", serde_json::to_string(manifest)?);
    // After the loader's imports: a module's `import` lines must come first.
    let at = js.find("\n\n").map_or(0, |i| i + 2);
    std::fs::write(
        loader,
        format!("{}{packs}{PRELUDE}{}", &js[..at], &js[at..]),
    )?;
    Ok(())
}

/// Writes `pack_<group>.bin` for each group of the manifest: its modules (as optimized), in the
/// format `patch_loader` reads.
fn write_packs(out: &Path, manifest: &BTreeMap<String, Vec<String>>) -> Result<()> {
    for (group, modules) in manifest {
        let mut index = Vec::new();
        let mut data = Vec::new();
        for module in modules {
            let file = format!("{module}.wasm");
            let bytes =
                std::fs::read(out.join(&file)).with_context(|| format!("reading {file}"))?;
            index.push((file, bytes.len()));
            data.extend_from_slice(&bytes);
        }
        let index = serde_json::to_vec(&index)?;
        let mut pack = Vec::with_capacity(4 + index.len() + data.len());
        pack.extend_from_slice(&u32::try_from(index.len())?.to_le_bytes());
        pack.extend_from_slice(&index);
        pack.extend_from_slice(&data);
        std::fs::write(out.join(format!("pack_{group}.bin")), pack)?;
    }
    Ok(())
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

/// Prints what a first visit to each group of pages downloads, compressed as served: the files
/// every page needs (main module, glue, loader, stylesheet) and the group's pack. The figures of
/// docs/BENCHMARKS.md ("First load") are these, from a `--release` build.
fn report_first_loads(bundle: &Path) -> Result<()> {
    let size = |name: &str, ext: &str| -> Result<u64> {
        let file = bundle.join(format!("{name}{ext}"));
        Ok(std::fs::metadata(&file)
            .with_context(|| format!("reading {}", file.display()))?
            .len())
    };
    let core = [
        "hangar_bg.wasm",
        "hangar.js",
        &SPLIT_LINK[2..],
        "hangar.css",
    ];
    let sizes = |files: &[&str]| -> Result<(u64, u64)> {
        files.iter().try_fold((0, 0), |(gz, br), f| {
            Ok((gz + size(f, ".gz")?, br + size(f, ".br")?))
        })
    };
    let (core_gz, core_br) = sizes(&core)?;
    let manifest: BTreeMap<String, Vec<String>> =
        serde_json::from_slice(&std::fs::read(bundle.join("packs.json"))?)?;
    eprintln!(
        "xtask: first load, KiB gzip / brotli (core {} / {}):",
        core_gz / 1024,
        core_br / 1024
    );
    for group in manifest.keys() {
        let (gz, br) = sizes(&[&format!("pack_{group}.bin")])?;
        eprintln!(
            "xtask:   {group:<12} {:>5} / {:>5}   (pack {} / {})",
            (core_gz + gz) / 1024,
            (core_br + br) / 1024,
            gz / 1024,
            br / 1024
        );
    }
    Ok(())
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
