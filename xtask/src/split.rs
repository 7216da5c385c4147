//! Splitting the WASM into a main module and a module per group of pages, the JS glue, the
//! packs the browser downloads, and the first-load report.

use std::{collections::BTreeMap, path::Path, process::Command};

use anyhow::{bail, Context, Result};

use crate::workspace_root;

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
pub(crate) fn split_and_bind(wasm: &Path, out: &Path, release: bool) -> Result<()> {
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

/// Prints what a first visit to each group of pages downloads, compressed as served: the files
/// every page needs (main module, glue, loader, stylesheet) and the group's pack. The figures of
/// docs/BENCHMARKS.md ("First load") are these, from a `--release` build.
pub(crate) fn report_first_loads(bundle: &Path) -> Result<()> {
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
