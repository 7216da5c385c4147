//! The daemon's API from a client's side: ping, tokens and the vendor header, the port pool,
//! volumes and their files, remote config, and state that survives a restart.

mod common;

use std::time::Duration;

use common::{assert_error, Daemon, TOKEN};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn ping_is_public_and_everything_else_needs_the_token() {
    let d = Daemon::start().await;
    let (status, body) = d.call(Method::GET, "/api/v1/public/ping", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"status": "ok", "message": "Lightd is running"})
    );

    for token in [
        None,
        Some("lightd_00000000000000000000000000000000"),
        Some("nonsense"),
    ] {
        let answer = d.call(Method::GET, "/network/ports", token, None).await;
        assert_error(
            &answer,
            StatusCode::UNAUTHORIZED,
            "Missing or invalid authorization token",
        );
    }
    assert_eq!(d.get("/network/ports").await.0, StatusCode::OK);
    let answer = d.get("/no/such/route").await;
    assert_error(&answer, StatusCode::NOT_FOUND, "Not found");
}

#[tokio::test]
async fn issued_tokens_expire_can_be_single_use_and_cannot_issue_more() {
    let d = Daemon::start().await;
    let (status, issued) = d
        .post("/auth/tokens", json!({"ttl": "1h", "remove_on_use": false}))
        .await;
    assert_eq!(status, StatusCode::OK, "{issued}");
    let token = issued["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("lightd_") && token.len() == 39, "{token}");
    assert!(issued["expires_at"].as_str().unwrap().ends_with('Z'));
    // Stored hashed: the token itself is nowhere in the database file.
    let db = std::fs::read(d.root.join("storage/node.db")).unwrap_or_default();
    let wal = std::fs::read(d.root.join("storage/node.db-wal")).unwrap_or_default();
    let needle = token.as_bytes();
    assert!(
        !db.windows(needle.len()).any(|w| w == needle)
            && !wal.windows(needle.len()).any(|w| w == needle)
    );

    for _ in 0..2 {
        assert_eq!(
            d.status_as(Some(&token), "/network/ports").await,
            StatusCode::OK
        );
    }
    // An issued token may not issue tokens nor read the config.
    let answer = d
        .call(Method::POST, "/auth/tokens", Some(&token), Some(json!({})))
        .await;
    assert_error(&answer, StatusCode::FORBIDDEN, "Only the node's own token");
    assert_eq!(
        d.status_as(Some(&token), "/remote/config").await,
        StatusCode::FORBIDDEN
    );

    let (_, once) = d
        .post("/auth/tokens", json!({"ttl": "10m", "remove_on_use": true}))
        .await;
    let once = once["token"].as_str().unwrap();
    assert_eq!(
        d.status_as(Some(once), "/network/ports").await,
        StatusCode::OK
    );
    let answer = d
        .call(Method::GET, "/network/ports", Some(once), None)
        .await;
    assert_error(
        &answer,
        StatusCode::UNAUTHORIZED,
        "Missing or invalid authorization token",
    );

    let (_, short) = d.post("/auth/tokens", json!({"ttl": "1s"})).await;
    let short = short["token"].as_str().unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        d.status_as(Some(short), "/network/ports").await,
        StatusCode::UNAUTHORIZED
    );

    for ttl in ["soon", "0s", "31d", "5y"] {
        let answer = d.post("/auth/tokens", json!({"ttl": ttl})).await;
        assert_error(&answer, StatusCode::BAD_REQUEST, "Invalid ttl");
    }
    let answer = d.post("/auth/tokens", json!({"ttl": 5})).await;
    assert_error(&answer, StatusCode::BAD_REQUEST, "Invalid request body");

    // A console token opens one container's WebSocket and nothing else.
    let (_, scoped) = d
        .post("/auth/tokens", json!({"ttl": "1m", "container": "mc-1"}))
        .await;
    let scoped = scoped["token"].as_str().unwrap();
    let answer = d
        .call(Method::GET, "/network/ports", Some(scoped), None)
        .await;
    assert_error(
        &answer,
        StatusCode::FORBIDDEN,
        "only opens the WebSocket of container mc-1",
    );
}

#[tokio::test]
async fn a_configured_vendor_must_be_named_in_the_vendor_header() {
    let d = Daemon::start_with(|c| c.authorization.vendor = Some("hangar".into())).await;
    let answer = d.get("/network/ports").await;
    assert_error(&answer, StatusCode::FORBIDDEN, "Invalid vendor header");
    let client = reqwest::Client::new();
    let res = client
        .get(format!("{}/network/ports", d.base))
        .bearer_auth(TOKEN)
        .header("x-vendor", "hangar")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = client
        .get(format!("{}/network/ports", d.base))
        .bearer_auth(TOKEN)
        .header("x-vendor", "someone-else")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // The token is checked first: no token is a 401 whatever the vendor.
    assert_eq!(
        d.status_as(None, "/network/ports").await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn the_port_pool() {
    let d = Daemon::start().await;
    let (status, added) = d
        .post(
            "/network/ports",
            json!({"ip": "0.0.0.0", "port": 25565, "protocol": "tcp"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        added,
        json!({"message": "Port added to pool", "ip": "0.0.0.0", "port": 25565, "protocol": "tcp"})
    );
    let answer = d
        .post(
            "/network/ports",
            json!({"ip": "0.0.0.0", "port": 25565, "protocol": "tcp"}),
        )
        .await;
    assert_error(
        &answer,
        StatusCode::BAD_REQUEST,
        "Port already exists in pool",
    );
    d.post(
        "/network/ports",
        json!({"ip": "0.0.0.0", "port": 25566, "protocol": "tcp"}),
    )
    .await;
    d.post(
        "/network/ports",
        json!({"ip": "0.0.0.0", "port": 19132, "protocol": "udp"}),
    )
    .await;
    for bad in [
        json!({"ip": "not-an-ip", "port": 1, "protocol": "tcp"}),
        json!({"ip": "0.0.0.0", "port": 70000, "protocol": "tcp"}),
        json!({"ip": "0.0.0.0", "port": 0, "protocol": "tcp"}),
        json!({"ip": "0.0.0.0", "port": 80, "protocol": "sctp"}),
    ] {
        assert_eq!(
            d.post("/network/ports", bad.clone()).await.0,
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }

    let (status, one) = d.get("/network/ports/0.0.0.0/25565").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        one,
        json!({"ip": "0.0.0.0", "port": 25565, "protocol": "tcp", "in_use": false})
    );
    assert_error(
        &d.get("/network/ports/0.0.0.0/1").await,
        StatusCode::NOT_FOUND,
        "Port not found in pool",
    );
    assert_error(
        &d.get("/network/ports/0.0.0.0/abc").await,
        StatusCode::NOT_FOUND,
        "Port not found in pool",
    );

    let (status, used) = d
        .call(
            Method::PUT,
            "/network/ports/0.0.0.0/25566/use",
            Some(TOKEN),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        used,
        json!({"message": "Port usage updated", "ip": "0.0.0.0", "port": 25566, "in_use": true})
    );
    let (_, all) = d.get("/network/ports").await;
    let ports = all["ports"].as_array().unwrap();
    assert_eq!(ports.len(), 3);
    assert_eq!(ports.iter().filter(|p| p["in_use"] == true).count(), 1);

    // Random picks only free ports.
    for _ in 0..20 {
        let (status, free) = d.get("/network/ports/random").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(free["in_use"], false);
        assert_ne!(free["port"], 25566);
    }

    let (status, gone) = d.delete("/network/ports/0.0.0.0/25565").await;
    assert_eq!(
        (status, gone),
        (StatusCode::OK, json!({"message": "Port deleted from pool"}))
    );
    assert_error(
        &d.delete("/network/ports/0.0.0.0/25565").await,
        StatusCode::NOT_FOUND,
        "Port not found in pool",
    );

    let (status, bulk) = d
        .post(
            "/network/ports/bulk-delete",
            json!({"ports": [{"ip": "0.0.0.0", "port": 25566}, {"ip": "0.0.0.0", "port": 19132}, {"ip": "0.0.0.0", "port": 4}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        bulk,
        json!({"message": "Deleted 2 ports from pool", "deleted_count": 2})
    );
    assert_error(
        &d.get("/network/ports/random").await,
        StatusCode::NOT_FOUND,
        "No free port",
    );
}

#[tokio::test]
async fn volumes_and_their_files() {
    let d = Daemon::start().await;
    let (id, dir) = d.volume(None).await;
    assert!(dir.is_dir(), "the volume's directory exists on the host");
    assert!(dir.ends_with(&id));

    let (status, wrote) = d
        .post(&format!("/volumes/{id}/files"), json!({"path": "config/server.properties", "content": "server-port=25565\nmax-players=20"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        wrote,
        json!({"message": "File written successfully", "path": "config/server.properties"})
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("config/server.properties")).unwrap(),
        "server-port=25565\nmax-players=20"
    );
    let (status, made) = d
        .post(
            &format!("/volumes/{id}/folders"),
            json!({"path": "plugins/MyPlugin"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        made,
        json!({"message": "Folder created successfully", "path": "plugins/MyPlugin"})
    );
    d.post(
        &format!("/volumes/{id}/files"),
        json!({"path": "plugins/config.yml", "content": "x".repeat(1024)}),
    )
    .await;

    let (status, listed) = d.get(&format!("/volumes/{id}/files?path=plugins")).await;
    assert_eq!(status, StatusCode::OK);
    let files = listed["files"].as_array().unwrap();
    assert_eq!(files.len(), 2);
    assert_eq!(
        (
            files[0]["name"].as_str(),
            files[0]["type"].as_str(),
            files[0]["size"].as_u64()
        ),
        (Some("MyPlugin"), Some("directory"), Some(0))
    );
    assert_eq!(
        (
            files[1]["name"].as_str(),
            files[1]["type"].as_str(),
            files[1]["size"].as_u64()
        ),
        (Some("config.yml"), Some("file"), Some(1024))
    );

    let (status, copied) = d
        .post(
            &format!("/volumes/{id}/copy"),
            json!({"source": "plugins", "destination": "backup/plugins"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        copied,
        json!({"message": "Copied successfully", "source": "plugins", "destination": "backup/plugins"})
    );
    assert_eq!(
        std::fs::read(dir.join("backup/plugins/config.yml"))
            .unwrap()
            .len(),
        1024
    );
    assert!(dir.join("backup/plugins/MyPlugin").is_dir());
    let answer = d
        .post(
            &format!("/volumes/{id}/copy"),
            json!({"source": "plugins", "destination": "plugins/inner"}),
        )
        .await;
    assert_error(&answer, StatusCode::BAD_REQUEST, "into itself");

    let (status, packed) = d
        .post(
            &format!("/volumes/{id}/compress"),
            json!({"format": "tar.gz", "output_name": "backup"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{packed}");
    assert_eq!(packed["message"], "Compression successful");
    assert_eq!(packed["archive_path"], "backup.tar.gz");
    assert_eq!(
        packed["size"].as_u64(),
        Some(std::fs::metadata(dir.join("backup.tar.gz")).unwrap().len())
    );
    let (status, unpacked) = d
        .post(
            &format!("/volumes/{id}/decompress"),
            json!({"archive_path": "backup.tar.gz", "destination": "restored"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{unpacked}");
    assert_eq!(
        unpacked,
        json!({"message": "Decompression successful", "destination": "restored"})
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("restored/config/server.properties")).unwrap(),
        "server-port=25565\nmax-players=20"
    );
    assert_eq!(
        std::fs::read(dir.join("restored/backup/plugins/config.yml"))
            .unwrap()
            .len(),
        1024
    );
    assert!(
        !dir.join("restored/backup.tar.gz").exists(),
        "the archive does not contain itself"
    );

    let (status, _) = d.delete(&format!("/volumes/{id}/files?path=backup")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!dir.join("backup").exists());
    assert_error(
        &d.get(&format!("/volumes/{id}/files?path=backup")).await,
        StatusCode::NOT_FOUND,
        "Path not found",
    );

    // Foreign or made-up volumes.
    for answer in [
        d.get("/volumes/d6764075/files?path=").await,
        d.post(
            "/volumes/d6764075/files",
            json!({"path": "a", "content": "b"}),
        )
        .await,
        d.delete("/volumes/../../etc").await,
    ] {
        assert_eq!(answer.0, StatusCode::NOT_FOUND, "{}", answer.1);
    }
    let answer = d
        .post(&format!("/volumes/{id}/files"), json!({"path": "a"}))
        .await;
    assert_error(&answer, StatusCode::BAD_REQUEST, "Invalid request body");

    let (status, _) = d.delete(&format!("/volumes/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!dir.exists(), "deleting a volume removes its directory");
    assert_error(
        &d.get(&format!("/volumes/{id}")).await,
        StatusCode::NOT_FOUND,
        "Volume not found",
    );
}

#[tokio::test]
async fn remote_config_is_shown_redacted_and_reloads_from_the_file() {
    let d = Daemon::start().await;
    let (status, config) = d.get("/remote/config").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(config["server"], json!({"host": "127.0.0.1", "port": 8070}));
    assert_eq!(config["authorization"]["enabled"], true);
    let shown = config["authorization"]["token"].as_str().unwrap();
    assert!(
        !shown.contains(&TOKEN[7..]),
        "the token is redacted: {shown}"
    );
    assert!(shown.starts_with("lightd_") && shown.ends_with(&TOKEN[TOKEN.len() - 4..]));

    // A new token in the file takes effect on reload; the old one stops working.
    let mut changed = d.node.config().as_ref().clone();
    changed.authorization.token = "lightd_ffffffffffffffffffffffffffffffff".into();
    changed.limits.list_page = 7;
    std::fs::write(&d.config_path, toml::to_string(&changed).unwrap()).unwrap();
    let (status, reloaded) = d.post("/remote/config/reload", json!({})).await;
    assert_eq!(
        (status, reloaded),
        (
            StatusCode::OK,
            json!({"message": "Configuration reloaded successfully"})
        )
    );
    assert_eq!(d.get("/network/ports").await.0, StatusCode::UNAUTHORIZED);
    let (status, config) = d
        .call(
            Method::GET,
            "/remote/config",
            Some("lightd_ffffffffffffffffffffffffffffffff"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(config["limits"]["list_page"], 7);

    // A broken file is refused and the running config stays.
    std::fs::write(&d.config_path, "[server\nport = ").unwrap();
    let answer = d
        .call(
            Method::POST,
            "/remote/config/reload",
            Some("lightd_ffffffffffffffffffffffffffffffff"),
            None,
        )
        .await;
    assert_error(
        &answer,
        StatusCode::BAD_REQUEST,
        "Configuration not reloaded",
    );
    let (status, _) = d
        .call(
            Method::GET,
            "/network/ports",
            Some("lightd_ffffffffffffffffffffffffffffffff"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn volumes_ports_and_tokens_survive_a_restart() {
    let d = Daemon::start().await;
    let (id, dir) = d.volume(Some(10_000)).await;
    d.post(
        &format!("/volumes/{id}/files"),
        json!({"path": "world/level.dat", "content": "x".repeat(4000)}),
    )
    .await;
    d.post(
        "/network/ports",
        json!({"ip": "0.0.0.0", "port": 25565, "protocol": "tcp"}),
    )
    .await;
    d.call(
        Method::PUT,
        "/network/ports/0.0.0.0/25565/use",
        Some(TOKEN),
        None,
    )
    .await;
    let (_, issued) = d.post("/auth/tokens", json!({"ttl": "1h"})).await;
    let token = issued["token"].as_str().unwrap().to_owned();
    let (root, config) = d.stop();

    let d = Daemon::start_at(root, config).await;
    let (status, volume) = d.get(&format!("/volumes/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        volume["used_bytes"], 4000,
        "usage is measured again at start"
    );
    assert_eq!(volume["size_limit"], 10_000);
    assert_eq!(
        std::fs::read(dir.join("world/level.dat")).unwrap().len(),
        4000
    );
    let (_, port) = d.get("/network/ports/0.0.0.0/25565").await;
    assert_eq!(port["in_use"], true);
    assert_eq!(
        d.status_as(Some(&token), "/network/ports").await,
        StatusCode::OK
    );
    // The limit still holds after the restart.
    let answer = d
        .post(
            &format!("/volumes/{id}/files"),
            json!({"path": "more", "content": "y".repeat(7000)}),
        )
        .await;
    assert_error(
        &answer,
        StatusCode::PAYLOAD_TOO_LARGE,
        "Disk limit exceeded",
    );
}
