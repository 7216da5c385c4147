//! Preload links for the page's own WASM modules.
//!
//! Each page is a lazily loaded route whose group of pages `cargo xtask build` splits into
//! modules of its own (`split_<group>.wasm` and the `chunk_*.wasm` it shares with other groups),
//! listed per group in the bundle's `packs.json`, and packed per group into one
//! file, `pack_<group>.bin`, from which the loader takes them (`xtask`'s `patch_loader`). Without
//! a hint the browser would only learn of a pack once the main module has loaded and hydration
//! has started; a `<link rel="preload">` lets it fetch the page's pack side by side with the main
//! module.
//!
//! The render records which groups of pages it showed (Leptos's `PrefetchLazyFn`, filled by
//! `app::lazy_pages!`), and the page adds its links itself, after its content. The manifest is
//! not named `__wasm_split_manifest.json`, the name Leptos's `HydrationScripts` looks for: from
//! that file Leptos would link every module of the group one by one (sometimes: only when its
//! context is visible from where the render records the group), which the packs replace.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Arc, Mutex, OnceLock},
};

use leptos::prelude::*;
use leptos_meta::Link;

/// The modules each group of pages needs, by the group's name (`app::lazy_pages!`).
type Manifest = HashMap<String, Vec<String>>;

/// The manifest of the bundle under `site_root/pkg_dir`, read once per bundle directory (tests
/// run servers on different sites in one process).
fn manifest(dir: PathBuf) -> Option<Arc<Manifest>> {
    static READ: OnceLock<Mutex<HashMap<PathBuf, Option<Arc<Manifest>>>>> = OnceLock::new();
    let mut read = READ.get_or_init(Default::default).lock().ok()?;
    read.entry(dir)
        .or_insert_with_key(|dir| {
            let text = std::fs::read_to_string(dir.join("packs.json")).ok()?;
            serde_json::from_str(&text).ok().map(Arc::new)
        })
        .clone()
}

/// Registers `<link rel="preload">` (in the head) for the pack of each group shown so far in
/// this render, and a module preload for their loader. They are registered while the
/// page's view is built, and nothing is rendered in the body: the browser, which renders nothing
/// here, walks the same body when it hydrates.
pub fn page_modules() {
    let called: Vec<&'static str> = use_context::<leptos::PrefetchLazyFn>()
        .and_then(|p| p.0.try_with_value(|set| set.iter().copied().collect()))
        .unwrap_or_default();
    let options = use_context::<LeptosOptions>();
    let (Some(options), false) = (options, called.is_empty()) else {
        return;
    };
    let dir = PathBuf::from(options.site_root.as_ref()).join(options.site_pkg_dir.as_ref());
    let Some(manifest) = manifest(dir) else {
        return;
    };
    let pkg = options.site_pkg_dir.clone();
    let mut groups: Vec<&str> = called
        .into_iter()
        .filter(|name| manifest.contains_key(*name))
        .collect();
    groups.sort_unstable();
    groups.dedup();
    // The loader first: the main script imports it, so hydration cannot start without it. Then
    // one pack per group shown, fetched side by side with the main module.
    let links = groups
        .into_iter()
        .map(|group| {
            view! {
                <Link rel="preload" href=format!("/{pkg}/pack_{group}.bin") as_="fetch" crossorigin="anonymous"/>
            }
        })
        .collect_view();
    // `to_html` on a head tag hands it to the head and returns nothing for the body.
    let _ = view! {
        <Link rel="modulepreload" href=format!("/{pkg}/__wasm_split.______________________.js")/>
        {links}
    }
    .to_html();
}
