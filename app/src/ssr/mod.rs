//! The portal's server-side glue, compiled only with the `ssr` feature: what server functions
//! share (`portal`: the signed-in user, CSRF, errors as the browser sees them), the browser
//! session store, and the Leptos options the server renders with. The domain itself is the
//! `domain` crate; nothing here decides anything a JSON client could not do too.

pub mod portal;
pub mod preload;
pub mod session_store;

use domain::config::Config;
use leptos::config::LeptosOptions;

/// The options the server renders and serves the site with, from the typed configuration.
/// The bundle lives in a directory named by its content (`pkg/<hash>/`, from `pkg/bundle.txt`,
/// written by `cargo xtask build`), so pages link the files of this build.
pub fn leptos_options(config: &Config) -> LeptosOptions {
    let pkg = match bundle_dir(&config.site_root) {
        Some(hash) => format!("pkg/{hash}"),
        None => "pkg".to_owned(),
    };
    LeptosOptions::builder()
        .output_name("hangar")
        .site_root(config.site_root.display().to_string())
        .site_pkg_dir(pkg)
        .site_addr(config.listen)
        .build()
}

/// The name of the bundle's directory under `pkg/` as `cargo xtask build` recorded it; `None`
/// when there is no built site (pages then render without hydrating, as the server's start-up
/// warning says).
pub fn bundle_dir(site_root: &std::path::Path) -> Option<String> {
    std::fs::read_to_string(site_root.join("pkg/bundle.txt"))
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric()))
}
