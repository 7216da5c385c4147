//! The HTTP edge: the router with every surface (JSON APIs, server functions, portal pages,
//! static assets) and the layers around it.

pub mod auth;
pub mod error;
pub mod events;
pub mod portal;
pub mod portal_files;
pub mod rate_limit;
pub mod scopes;
pub mod transfers;

use std::sync::Arc;

use app::ssr::session_store::DbSessionStore;
use app::{error::PortalError, shell, App};
use axum::{
    body::Body,
    extract::{DefaultBodyLimit, FromRef, Request, State},
    http::{header, HeaderValue, StatusCode},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{any, get, post},
    Extension, Json, Router,
};
use domain::AppState;
use leptos::{config::LeptosOptions, prelude::provide_context};
use leptos_axum::{generate_route_list, LeptosRoutes};
use tower::ServiceBuilder;
use tower_http::{
    catch_panic::CatchPanicLayer,
    compression::CompressionLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    trace::TraceLayer,
};
use tower_sessions::{cookie::SameSite, Expiry, SessionManagerLayer};

use crate::api::{self, meta::ApiDocument};

/// The name of the browser session cookie.
pub const SESSION_COOKIE: &str = "hangar_session";

/// The router's state: the domain's, plus the Leptos options the portal renders with. Handlers
/// extract either part (`State<AppState>`, `State<LeptosOptions>`).
#[derive(Clone, FromRef)]
pub struct RouterState {
    pub app: AppState,
    pub leptos: LeptosOptions,
}

/// Builds the whole application router for `state`.
pub fn router(state: AppState) -> Router {
    let (api_routes, doc) = api::router();
    let mut doc = serde_json::to_value(&doc).expect("OpenAPI document serialises");
    api::document::complete(&mut doc, api::auth::RATE_LIMITED_PATHS);
    let doc = ApiDocument(Arc::new(doc));

    let api_routes = api_routes
        .route("/api/{*rest}", any(api_not_found))
        .route("/v1/{*rest}", any(api_not_found))
        .route_layer(middleware::from_fn_with_state(
            state.metrics.clone(),
            track_requests,
        ))
        .layer(middleware::from_fn(json_errors))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ))
        .layer(middleware::from_fn(api::v1::envelope_errors))
        .layer(Extension(doc))
        .with_state(state.clone());

    let limiter = rate_limit::RateLimiter::new(
        state.config.auth_rate_limit_per_minute,
        state.config.trust_forwarded_for,
        api::auth::RATE_LIMITED_PATHS.to_vec(),
    );

    let context_state = state.clone();
    let provide_state = move || provide_context(context_state.clone());
    let routes = generate_route_list(App);
    let options = app::ssr::leptos_options(&state.config);
    let router_state = RouterState {
        app: state.clone(),
        leptos: options.clone(),
    };

    let portal = Router::new()
        .nest("/pkg", bundle(&state.config.site_root))
        .route("/events/machines", get(events::machines))
        .route("/events/me", get(events::me))
        .route("/events/machines/{id}/stats", get(events::machine_stats))
        .route(
            "/portal/machines/{id}/files",
            get(portal_files::download)
                .put(portal_files::upload)
                // Its own limit (`file_max_bytes`), checked in the handler.
                .layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/portal/machines/{id}/volume",
            get(portal_files::volume_download)
                .put(portal_files::volume_upload)
                .layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/portal/machines/{id}/console",
            post(api::console::portal_ticket),
        )
        .route(
            "/_fn/{*name}",
            post(server_fn_handler).get(server_fn_handler),
        )
        .leptos_routes_with_context(&router_state, routes, provide_state.clone(), {
            let options = options.clone();
            move || shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler_with_context::<
            RouterState,
            _,
        >(provide_state, shell))
        .route_layer(middleware::from_fn_with_state(
            state.metrics.clone(),
            track_requests,
        ))
        // Outside the routes: leptos_axum registers one route per server function.
        .layer(middleware::from_fn(server_fn_status))
        .layer(middleware::from_fn({
            let public_origin = origin_of(&state.config.public_url);
            move |req, next| same_origin_writes(public_origin.clone(), req, next)
        }))
        .layer(middleware::from_fn({
            let secure = state.config.secure_cookies;
            move |session, req, next| ensure_csrf_token(secure, session, req, next)
        }))
        .layer(middleware::from_fn({
            let hsts = state.config.public_url.starts_with("https://");
            let captcha = state.config.turnstile_site_key.is_some();
            move |req, next| security_headers(hsts, captcha, req, next)
        }))
        .with_state(router_state);

    let sessions = SessionManagerLayer::new(DbSessionStore::new(state.db.clone()))
        .with_name(SESSION_COOKIE)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(state.config.secure_cookies)
        .with_expiry(Expiry::OnInactivity(time::Duration::seconds(
            state.config.session_ttl_secs as i64,
        )));

    let max_body = state.config.max_body_bytes;
    Router::new()
        .merge(api_routes)
        .merge(portal)
        .layer(sessions)
        .layer(middleware::from_fn_with_state(limiter, rate_limit::limit))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
                    let id = req
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-");
                    tracing::info_span!("http", method = %req.method(), path = %req.uri().path(), request_id = %id)
                }))
                .layer(PropagateRequestIdLayer::x_request_id())
                .layer(CatchPanicLayer::custom(panic_response))
                .layer(CompressionLayer::new())
                .layer(DefaultBodyLimit::max(max_body)),
        )
}

/// The browser bundle (`/pkg`): the brotli or gzip copy `cargo xtask build` wrote beside each
/// file when the browser accepts it (no compression per visitor; the response layer leaves an
/// encoded body alone). A build's files sit in a directory named by their content
/// (`pkg/<16 hex digits>/`): they never change, so browsers keep them for a year without asking
/// again (`immutable`); anything else there is `no-cache` (kept, but revalidated with
/// `If-Modified-Since`).
fn bundle(site_root: &std::path::Path) -> Router<RouterState> {
    use tower_http::services::ServeDir;
    let files = ServeDir::new(site_root.join("pkg"))
        .precompressed_br()
        .precompressed_gzip();
    Router::new()
        .fallback_service(files)
        .layer(middleware::from_fn(bundle_cache))
}

async fn bundle_cache(req: Request, next: Next) -> Response {
    let named_by_content = content_named(req.uri().path());
    let mut res = next.run(req).await;
    let policy = if named_by_content && res.status().is_success() {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    res.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static(policy),
    );
    res
}

/// Whether a path under `/pkg` lies in a build's content-named directory: `/<16 hex>/<file>`.
fn content_named(path: &str) -> bool {
    let mut parts = path.trim_start_matches('/').split('/');
    parts
        .next()
        .is_some_and(|dir| dir.len() == 16 && dir.bytes().all(|b| b.is_ascii_hexdigit()))
        && parts.next().is_some_and(|file| !file.is_empty())
        && parts.next().is_none()
}

async fn server_fn_handler(State(state): State<AppState>, req: Request<Body>) -> impl IntoResponse {
    leptos_axum::handle_server_fns_with_context(move || provide_context(state.clone()), req).await
}

/// Server-function errors answer with the status their [`PortalError`] carries (a person's
/// mistake is a 4xx) instead of the server-function layer's blanket 500. A plain form post without
/// JavaScript is answered with a redirect back to the form and is left alone.
async fn server_fn_status(req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    if res.status() != StatusCode::INTERNAL_SERVER_ERROR
        || !res.headers().contains_key("serverfnerror")
    {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let Some(bytes) = error_body(body).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    if let Ok(err) = serde_json::from_slice::<PortalError>(&bytes) {
        if let Ok(status) = StatusCode::from_u16(err.status) {
            if status.is_client_error() || status.is_server_error() {
                parts.status = status;
            }
        }
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// The body of an error answer a middleware rewrites, read whole: such bodies are small JSON
/// the server wrote itself, so anything over 64 KiB is not one (`None`).
pub async fn error_body(body: Body) -> Option<axum::body::Bytes> {
    axum::body::to_bytes(body, 64 * 1024).await.ok()
}

async fn api_not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(serde_json::json!({ "error": "Not found" })),
    )
        .into_response()
}

/// API responses are JSON even when a layer below (method routing, body limits) answered with
/// an empty or plain-text error.
async fn json_errors(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if (status.is_client_error() || status.is_server_error()) && !is_json {
        let message = match status {
            StatusCode::METHOD_NOT_ALLOWED => "Method not allowed".to_owned(),
            StatusCode::PAYLOAD_TOO_LARGE => "Request body is too large".to_owned(),
            other => other.canonical_reason().unwrap_or("Error").to_owned(),
        };
        let (mut parts, _) = response.into_parts();
        parts.headers.remove(header::CONTENT_LENGTH);
        parts.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        return Response::from_parts(
            parts,
            Body::from(serde_json::json!({ "error": message }).to_string()),
        );
    }
    response
}

/// Counts every routed request and times it to its response headers, labelled by the route's
/// template (`/api/vps/{id}`, never the id itself), for `/metrics`.
async fn track_requests(
    State(metrics): State<Arc<domain::infra::metrics::Metrics>>,
    req: Request,
    next: Next,
) -> Response {
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().clone();
    let started = std::time::Instant::now();
    let response = next.run(req).await;
    // Series kept to what an alert needs: latency per API surface (not per route: a dozen
    // buckets for each of ~150 routes was most of a 13,000-line scrape), and requests per route
    // by status class.
    let surface = match route.as_str() {
        r if r.starts_with("/api/admin") => "admin",
        r if r.starts_with("/api/v1") => "marketplace",
        r if r.starts_with("/v1/") => "cloud",
        r if r.starts_with("/api/") => "api",
        _ => "other",
    };
    metrics.observe(
        "hangar_http_request_duration_seconds",
        &[("surface", surface)],
        started.elapsed().as_secs_f64(),
    );
    let class = match response.status().as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    metrics.inc(
        "hangar_http_requests_total",
        &[
            ("method", method.as_str()),
            ("route", route.as_str()),
            ("status", class),
        ],
    );
    response
}

/// `scheme://host[:port]` of a URL.
fn origin_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest.split('/').next().unwrap_or(rest);
    let scheme = url.split_once("://").map_or("http", |(s, _)| s);
    format!("{scheme}://{host}")
}

/// CSRF defence that no portal endpoint can forget: every state-changing request to the portal
/// (server functions under `/_fn/`, file uploads, console tickets; anything but GET/HEAD) must
/// come from Hangar's own pages. Browsers say where a request comes from: `Sec-Fetch-Site` must
/// be `same-origin` (or `none`, typed by the user), and an `Origin` must be Hangar's own
/// (`public_url`, or the host the request was sent to). Requests carrying neither header are not
/// from a current browser and pass on to the second line: each state-changing server function
/// also checks the session's CSRF token. Refusals are 403 in the portal's error shape.
async fn same_origin_writes(public_origin: String, req: Request, next: Next) -> Response {
    use axum::http::Method;
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let allowed = {
        let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
        let fetch_site_ok =
            header("sec-fetch-site").is_none_or(|s| s == "same-origin" || s == "none");
        let origin_ok = header("origin").is_none_or(|origin| {
            origin == public_origin
                || header("host").is_some_and(|host| {
                    origin == format!("http://{host}") || origin == format!("https://{host}")
                })
        });
        fetch_site_ok && origin_ok
    };
    if allowed {
        return next.run(req).await;
    }
    tracing::warn!(path = %req.uri().path(), "refused a cross-site request to the portal");
    (
        StatusCode::FORBIDDEN,
        Json(serde_json::json!({
            "status": 403,
            "message": "This request did not come from Hangar's own pages, so it was refused.",
        })),
    )
        .into_response()
}

/// Gives every page request its CSRF token *before* the page renders. Pages stream, and both
/// the session and a cookie set while the body renders would be too late (tower-sessions
/// persists a session, and headers go out, before the body).
///
/// A visitor who has not signed in gets no server-side session: their token comes from the
/// `hangar_csrf` cookie (set here on their first request, see `app::ssr::portal::VisitorCsrf`).
/// A signed-in session gets its own token stored in it, if it has none yet.
async fn ensure_csrf_token(
    secure: bool,
    session: tower_sessions::Session,
    mut req: Request,
    next: Next,
) -> Response {
    use app::ssr::portal;
    let from_cookie = cookie(req.headers(), portal::VISITOR_CSRF_COOKIE)
        .filter(|t| t.len() == 32 && t.bytes().all(|b| b.is_ascii_alphanumeric()));
    let fresh = from_cookie.is_none() && !req.uri().path().starts_with("/pkg/");
    let token = from_cookie.unwrap_or_else(portal::new_csrf_token);
    req.extensions_mut()
        .insert(portal::VisitorCsrf(token.clone()));
    let wants_html = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    if req.method() == http::Method::GET
        && wants_html
        && portal::signed_in_session(&session).await.unwrap_or(false)
    {
        match portal::ensure_session_csrf(&session).await {
            Ok(token) => {
                req.extensions_mut().insert(portal::SessionCsrf(token));
            }
            Err(e) => tracing::warn!(error = %e, "could not prepare the session's CSRF token"),
        }
    }
    let mut res = next.run(req).await;
    if fresh {
        let value = format!(
            "{}={token}; Path=/; HttpOnly; SameSite=Lax{}",
            portal::VISITOR_CSRF_COOKIE,
            if secure { "; Secure" } else { "" }
        );
        if let Ok(value) = HeaderValue::from_str(&value) {
            res.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    res
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie(headers: &http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// Headers every portal response gets: a Content-Security-Policy, no framing by other sites, no
/// MIME sniffing, no referrer leaks to other origins, and HSTS when Hangar is served over HTTPS
/// (`public_url`).
///
/// The policy allows no inline script except Leptos's own hydration and streaming scripts, which
/// carry this response's nonce (a fresh 128-bit value, handed to the page's render through the
/// request's extensions, `app::ssr::portal::CspNonce`). The WASM bundle needs
/// `'wasm-unsafe-eval'` to be compiled; nothing else is evaluated. Styles allow `'unsafe-inline'`:
/// the pages set a few widths and heights in `style` attributes (meters, charts) and the
/// terminal (xterm.js) injects its own style elements; style injection cannot run script.
/// With the sign-up CAPTCHA configured (`turnstile_site_key`), Cloudflare's Turnstile script and
/// the frame it draws the challenge in are allowed from its one origin.
async fn security_headers(hsts: bool, captcha: bool, mut req: Request, next: Next) -> Response {
    const TURNSTILE: &str = "https://challenges.cloudflare.com";
    let nonce = app::ssr::portal::CspNonce::new();
    let (captcha_script, captcha_frame) = if captcha {
        (format!(" {TURNSTILE}"), format!("; frame-src {TURNSTILE}"))
    } else {
        (String::new(), String::new())
    };
    let policy = format!(
        "default-src 'self'; script-src 'self' 'nonce-{}' 'wasm-unsafe-eval'{captcha_script}; \
         style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
         object-src 'none'; base-uri 'self'; frame-ancestors 'self'{captcha_frame}",
        nonce.0
    );
    req.extensions_mut().insert(nonce);
    let mut response = next.run(req).await;
    let h = response.headers_mut();
    if let Ok(policy) = HeaderValue::from_str(&policy) {
        h.insert("content-security-policy", policy);
    }
    if hsts {
        h.insert(
            "strict-transport-security",
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("x-frame-options", HeaderValue::from_static("SAMEORIGIN"));
    h.insert(
        "referrer-policy",
        HeaderValue::from_static("strict-origin-when-cross-origin"),
    );
    response
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("handler panicked");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(serde_json::json!({ "error": "Internal server error" })),
    )
        .into_response()
}

/// Periodic housekeeping that belongs to the HTTP layer: expired sessions are deleted.
pub fn spawn_session_cleanup(state: &AppState) -> tokio::task::JoinHandle<()> {
    use tower_sessions::session_store::ExpiredDeletion;
    let store = DbSessionStore::new(state.db.clone());
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(3600));
        loop {
            every.tick().await;
            if let Err(e) = store.delete_expired().await {
                tracing::warn!(error = %e, "deleting expired sessions failed");
            }
        }
    })
}

/// Serves `router` on `listener` until Ctrl-C or SIGTERM, finishing in-flight requests.
pub async fn serve(listener: tokio::net::TcpListener, router: Router) -> std::io::Result<()> {
    serve_until(listener, router, shutdown_signal()).await
}

/// Serves `router` on `listener` until `stop` resolves; then stops accepting and returns once
/// in-flight requests are finished (long-lived streams must end on their own: they watch the
/// replica's `lifecycle`).
///
/// Every connection sends at once (`TCP_NODELAY`): with Nagle's algorithm on, a response written
/// in two parts (head, then body) on a kept-alive connection waited for the client's delayed ACK,
/// some 40 ms per request; a page's few dozen bundle files cost half a second that way.
pub async fn serve_until(
    listener: tokio::net::TcpListener,
    router: Router,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set on a connection");
        }
    });
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(stop)
    .await
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
