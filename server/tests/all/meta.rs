//! Public routes: health, OpenAPI, the agent manifest, and the portal's pages.

use crate::common;

use common::{expect_error, expect_json, TestApp};
use reqwest::StatusCode;

#[tokio::test]
async fn health_reports_the_database() {
    let app = TestApp::spawn().await;
    let body = expect_json(app.get("/health", None).await, StatusCode::OK).await;
    assert_eq!(body.value, serde_json::json!({"status": "ok"}));
    for path in ["/livez", "/readyz"] {
        let body = expect_json(app.get(path, None).await, StatusCode::OK).await;
        assert_eq!(body["status"], "ok", "{path}");
    }
    app.state.db.close().await;
    for path in ["/health", "/readyz"] {
        let body = expect_json(app.get(path, None).await, StatusCode::SERVICE_UNAVAILABLE).await;
        assert_eq!(body["status"], "unavailable", "{path}");
    }
    // Alive all the same: a database outage is no reason to restart the process.
    expect_json(app.get("/livez", None).await, StatusCode::OK).await;
    // Requests that need the database answer 503 with what happened and when to retry, not a
    // 500 and not a hang.
    let res = app.get("/api/pricing", None).await;
    assert_eq!(res.headers()["retry-after"], "5");
    expect_error(
        res,
        StatusCode::SERVICE_UNAVAILABLE,
        "The database is unavailable right now; nothing was changed.",
    )
    .await;
    // The `/api/v1` dialect's envelope says the same.
    let body = expect_json(
        app.get("/api/v1/servers/available", None).await,
        StatusCode::SERVICE_UNAVAILABLE,
    )
    .await;
    assert_eq!(body["statusCode"], 503);
    assert!(body["message"]
        .as_str()
        .unwrap()
        .starts_with("The database is unavailable"));
}

#[tokio::test]
async fn openapi_lists_every_route_and_the_manifest_follows_it() {
    let app = TestApp::builder()
        .config("auth_rate_limit_per_minute", "7")
        .spawn()
        .await;
    let doc = expect_json(app.get("/openapi.json", None).await, StatusCode::OK).await;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "OpenAPI 3.1"
    );
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/auth/register", "post"),
        ("/api/auth/login", "post"),
        ("/api/me", "get"),
        ("/api/tokens", "get"),
        ("/api/tokens", "post"),
        ("/api/tokens/{id}", "delete"),
        ("/api/admin/users/{id}/credit", "post"),
        ("/health", "get"),
        ("/.well-known/agent.json", "get"),
        ("/openapi.json", "get"),
        ("/api/v1/servers/available", "get"),
        ("/api/v1/servers/available/{id}", "get"),
        ("/api/v1/servers/{id}/rent", "post"),
        ("/api/v1/servers", "get"),
        ("/api/v1/servers/{id}", "get"),
        ("/api/v1/rentals", "get"),
        ("/api/v1/rentals/{id}", "get"),
        ("/api/v1/rentals/{id}/extend", "post"),
        ("/api/v1/pools", "get"),
        ("/api/v1/pools", "post"),
        ("/api/v1/pools/{id}", "get"),
        ("/api/v1/pools/{id}", "patch"),
        ("/api/v1/pools/{id}", "delete"),
        ("/api/v1/pools/invitations/pending", "get"),
        ("/api/v1/pools/{id}/accept", "post"),
        ("/api/v1/pools/{id}/reject", "post"),
        ("/api/v1/pools/{id}/members", "post"),
        ("/api/v1/pools/{id}/members/{user_id}", "patch"),
        ("/api/v1/pools/{id}/members/{user_id}", "delete"),
        ("/api/admin/marketplace/servers", "post"),
        ("/api/billing/balance", "get"),
        ("/api/billing/history", "get"),
        ("/api/billing/notify-emails", "get"),
        ("/api/billing/notify-emails", "post"),
        ("/api/billing/notify-emails/{id}", "delete"),
        ("/api/admin/marketplace/servers/{id}", "put"),
        ("/api/admin/marketplace/servers/{id}", "delete"),
        ("/api/vps/{id}/exec", "post"),
        ("/api/vps/{id}/jobs", "get"),
        ("/api/vps/{id}/jobs/{job_id}", "get"),
        ("/api/vps/{id}/jobs/{job_id}", "delete"),
        ("/api/vps/{id}/files", "put"),
        ("/api/vps/{id}/files", "get"),
        ("/api/vps/batch/exec", "post"),
        ("/api/vps/{id}/console", "post"),
        ("/api/vps/{id}/console/ws", "get"),
        ("/api/vps/{id}/screen/ws", "get"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing from OpenAPI"
        );
    }
    assert!(doc.pointer("/components/securitySchemes/bearer").is_some());

    let manifest = expect_json(
        app.get("/.well-known/agent.json", None).await,
        StatusCode::OK,
    )
    .await;
    let ops = manifest["operations"].as_array().unwrap();
    let documented: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(
        ops.len(),
        documented,
        "one manifest operation per documented operation"
    );
    assert!(ops.iter().any(|o| o["method"] == "POST"
        && o["path"] == "/api/tokens"
        && o["auth_required"] == true));
    assert!(ops
        .iter()
        .any(|o| o["path"] == "/health" && o["auth_required"] == false));
    let limits = manifest["rate_limits"].as_array().unwrap();
    assert!(
        limits
            .iter()
            .any(|l| l["path"] == "/api/auth/login" && l["limit"] == 7),
        "{limits:?}"
    );
    assert_eq!(
        manifest["openapi"],
        format!("{}/openapi.json", app.state.config.public_url)
    );
    assert_eq!(manifest["balance_header"], "X-Balance-Remaining");
}

#[tokio::test]
async fn pages_render_on_the_server_with_hydration_and_security_headers() {
    let app = TestApp::spawn().await;
    let res = app.get("/", None).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["x-frame-options"], "SAMEORIGIN");
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    assert_eq!(
        res.headers()["referrer-policy"],
        "strict-origin-when-cross-origin"
    );
    assert!(
        res.headers().get("strict-transport-security").is_none(),
        "no HSTS over plain HTTP"
    );
    // A Content-Security-Policy with a fresh nonce: no inline script runs unless it carries it,
    // and every inline script of the page (Leptos's hydration) does.
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("frame-ancestors 'self'") && csp.contains("object-src 'none'"));
    assert!(
        !csp.contains("cloudflare"),
        "no CAPTCHA origin unless one is configured"
    );
    let script_src = csp
        .split(';')
        .find(|d| d.trim().starts_with("script-src"))
        .unwrap();
    assert!(!script_src.contains("unsafe-inline"), "{csp}");
    let nonce = script_src
        .split_whitespace()
        .find_map(|t| t.strip_prefix("'nonce-"))
        .and_then(|t| t.strip_suffix('\''))
        .expect("a nonce in script-src")
        .to_owned();
    assert!(nonce.len() >= 22, "128 bits: {nonce}");
    let html = res.text().await.unwrap();
    let scripts: Vec<&str> = html
        .match_indices("<script")
        .map(|(i, _)| &html[i..])
        .collect();
    assert!(!scripts.is_empty());
    for tag in scripts {
        let tag = &tag[..tag.find('>').unwrap()];
        assert!(
            tag.contains(" src=") || tag.contains(&format!("nonce=\"{nonce}\"")),
            "an inline script without this response's nonce: {tag}"
        );
    }
    let again = app.get("/", None).await;
    assert!(
        !again.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains(&nonce),
        "a new nonce per response"
    );
    let res = app.get("/", None).await;
    let html = res.text().await.unwrap();
    assert!(
        html.contains("Servers by the day"),
        "landing page rendered on the server"
    );
    // The built bundle's files (in its content-named directory when `cargo xtask build` has run).
    let pkg = match app::ssr::bundle_dir(&app.state.config.site_root) {
        Some(dir) => format!("/pkg/{dir}"),
        None => "/pkg".to_owned(),
    };
    assert!(
        html.contains(&format!("{pkg}/hangar.js"))
            && html.contains(&format!("{pkg}/hangar_bg.wasm")),
        "hydration script"
    );
    assert!(html.contains(&format!("{pkg}/hangar.css")));

    let res = app.get("/signin", None).await;
    let html = res.text().await.unwrap();
    assert!(
        html.contains("name=\"csrf\""),
        "forms carry a CSRF field in the server HTML"
    );
    assert!(
        html.contains("action=\"/_fn/sign_in\""),
        "the form posts without JavaScript"
    );

    let res = app.get("/definitely/not/here", None).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert!(res.text().await.unwrap().contains("Page not found"));
}

/// The browser bundle goes out as the build's brotli or gzip copy when the browser takes it,
/// never compressed again per request. A build's files sit in a directory named by their
/// content, so pages link this build's directory and browsers keep its files for good; anything
/// else there is revalidated.
#[tokio::test]
async fn the_bundle_is_content_named_served_precompressed_and_kept() {
    const DIR: &str = "0123456789abcdef";
    let site = std::env::temp_dir().join(format!("hangar-site-{}", domain::infra::db::new_id()));
    let pkg = site.join("pkg");
    let bundle = pkg.join(DIR);
    std::fs::create_dir_all(&bundle).unwrap();
    let js = "console.log('hangar');\n".repeat(200);
    std::fs::write(pkg.join("bundle.txt"), format!("{DIR}\n")).unwrap();
    std::fs::write(bundle.join("hangar.js"), &js).unwrap();
    std::fs::write(bundle.join("hangar.js.br"), b"brotli bytes").unwrap();
    std::fs::write(bundle.join("hangar.js.gz"), b"gzip bytes").unwrap();
    std::fs::write(bundle.join("hangar_bg.wasm"), b"\0asm").unwrap();
    std::fs::write(bundle.join("split_page.wasm"), b"\0asm").unwrap();
    std::fs::write(pkg.join("notes.txt"), b"not content-named").unwrap();
    let app = TestApp::builder()
        .config("site_root", site.to_str().unwrap())
        .spawn()
        .await;

    // Pages link the directory bundle.txt names: stylesheet, module script and WASM.
    let html = app.get("/marketplace", None).await.text().await.unwrap();
    for link in [
        format!("href=\"/pkg/{DIR}/hangar.css\""),
        format!("/pkg/{DIR}/hangar.js"),
        format!("/pkg/{DIR}/hangar_bg.wasm"),
    ] {
        assert!(html.contains(&link), "{link} in the page");
    }
    assert!(
        !html.contains("\"/pkg/hangar.js"),
        "no name outside the build's directory"
    );

    let client = reqwest::Client::new();
    let js_url = app.url(&format!("/pkg/{DIR}/hangar.js"));
    let get = |encoding: &'static str| {
        client
            .get(&js_url)
            .header("accept-encoding", encoding)
            .send()
    };
    let br = get("br, gzip").await.unwrap();
    assert_eq!(br.status(), StatusCode::OK);
    assert_eq!(br.headers()["content-encoding"], "br");
    assert_eq!(
        br.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert!(br.headers()["content-type"]
        .to_str()
        .unwrap()
        .contains("javascript"));
    assert_eq!(
        br.bytes().await.unwrap().as_ref(),
        b"brotli bytes",
        "the build's copy, as it is"
    );
    let gz = get("gzip").await.unwrap();
    assert_eq!(gz.headers()["content-encoding"], "gzip");
    assert_eq!(gz.bytes().await.unwrap().as_ref(), b"gzip bytes");
    let plain = get("identity").await.unwrap();
    assert!(plain.headers().get("content-encoding").is_none());
    assert_eq!(plain.text().await.unwrap(), js);
    for file in ["hangar_bg.wasm", "split_page.wasm"] {
        let wasm = client
            .get(app.url(&format!("/pkg/{DIR}/{file}")))
            .send()
            .await
            .unwrap();
        assert_eq!(wasm.status(), StatusCode::OK);
        assert_eq!(
            wasm.headers()["cache-control"],
            "public, max-age=31536000, immutable",
            "{file}"
        );
    }

    // A file without a content name is kept but asked for again: 304 while unchanged.
    let notes = client.get(app.url("/pkg/notes.txt")).send().await.unwrap();
    assert_eq!(notes.headers()["cache-control"], "no-cache");
    let modified = notes.headers()["last-modified"].clone();
    let again = client
        .get(app.url("/pkg/notes.txt"))
        .header("if-modified-since", modified)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);

    // A missing file is not cached for a year under a name a later build could use.
    let missing = client
        .get(app.url("/pkg/fedcba9876543210/hangar.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(missing.headers()["cache-control"], "no-cache");
    let _ = std::fs::remove_dir_all(&site);
}

/// Behind HTTPS (`public_url`), pages also say so for the future: HSTS.
#[tokio::test]
async fn https_deployments_send_hsts() {
    let app = TestApp::builder()
        .config("public_url", "https://hangar.example.com")
        .spawn()
        .await;
    let res = app.get("/signin", None).await;
    assert_eq!(
        res.headers()["strict-transport-security"],
        "max-age=31536000; includeSubDomains"
    );
}
