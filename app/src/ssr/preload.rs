//! Preload links for the page's own WASM modules.
//!
//! Each page is a lazily loaded route whose group of pages `cargo xtask build` splits into
//! modules of its own (`split_<group>.wasm` and the `chunk_*.wasm` it shares with other groups),
//! listed per group in the bundle's `__wasm_split_manifest.json`. Without a hint the browser would only learn of them
//! once the main module has loaded and hydration has started; a `<link rel="preload">` for each
//! lets it fetch them side by side with the main module.
//!
//! The render records which groups of pages it showed (Leptos's `PrefetchLazyFn`, filled by
//! `app::lazy_pages!`). Leptos writes links from that record only when its manifest context is
//! visible from the response's root, which is not the case with async rendering; so the page
//! adds its links itself, after its content.

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
            let text = std::fs::read_to_string(dir.join("__wasm_split_manifest.json")).ok()?;
            serde_json::from_str(&text).ok().map(Arc::new)
        })
        .clone()
}

/// Registers `<link rel="preload">` (in the head) for every module the groups shown so far in
/// this render need, and a module preload for their loader. They are registered while the
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
    let mut files: Vec<&String> = called
        .iter()
        .filter_map(|name| manifest.get(*name))
        .flatten()
        .collect();
    files.sort();
    files.dedup();
    // The loader first: the main script imports it, so hydration cannot start without it, and
    // behind a few dozen module downloads it would wait for all of them. The page's modules are
    // needed only once the main module runs, so they yield to it (`fetchpriority="low"`).
    let links = files
        .into_iter()
        .map(|file| {
            view! {
                <Link rel="preload" href=format!("/{pkg}/{file}.wasm") as_="fetch"
                    type_="application/wasm" crossorigin="anonymous" fetchpriority="low"/>
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
