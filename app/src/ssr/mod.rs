//! The portal's server-side glue, compiled only with the `ssr` feature: what server functions
//! share (`portal`: the signed-in user, CSRF, errors as the browser sees them), the browser
//! session store, and the Leptos options the server renders with. The domain itself is the
//! `domain` crate; nothing here decides anything a JSON client could not do too.

pub mod portal;
pub mod session_store;

use domain::config::Config;
use leptos::config::LeptosOptions;

/// The options the server renders and serves the site with, from the typed configuration.
/// `output_name` is the built bundle's content-named stem (`hangar.<hash>`, from
/// `pkg/bundle.txt`, written by `cargo xtask build`), so pages link the files of this build.
pub fn leptos_options(config: &Config) -> LeptosOptions {
    LeptosOptions::builder()
        .output_name(bundle_stem(&config.site_root))
        .site_root(config.site_root.display().to_string())
        .site_pkg_dir("pkg")
        .site_addr(config.listen)
        .build()
}

/// The bundle's stem as `cargo xtask build` recorded it; `hangar` when there is no built site
/// (pages then render without hydrating, as the server's start-up warning says).
pub fn bundle_stem(site_root: &std::path::Path) -> String {
    std::fs::read_to_string(site_root.join("pkg/bundle.txt"))
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-')
        })
        .unwrap_or_else(|| "hangar".to_owned())
}
