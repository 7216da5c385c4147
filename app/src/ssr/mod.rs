//! The portal's server-side glue, compiled only with the `ssr` feature: what server functions
//! share (`portal`: the signed-in user, CSRF, errors as the browser sees them), the browser
//! session store, and the Leptos options the server renders with. The domain itself is the
//! `domain` crate; nothing here decides anything a JSON client could not do too.

pub mod portal;
pub mod session_store;

use domain::config::Config;
use leptos::config::LeptosOptions;

/// The options the server renders and serves the site with, from the typed configuration.
pub fn leptos_options(config: &Config) -> LeptosOptions {
    LeptosOptions::builder()
        .output_name("hangar")
        .site_root(config.site_root.display().to_string())
        .site_pkg_dir("pkg")
        .site_addr(config.listen)
        .build()
}
