//! Operator basics: credits go to the immutable ledger and the audit log; only admins may.

use crate::common;

use common::{expect_error, expect_json, TestApp};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn admin_credit_moves_money_through_the_ledger() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin("operator").await;
    let (user_id, user) = app.user("customer").await;

    let res = app
        .post(
            &format!("/api/admin/users/{user_id}/credit"),
            Some(&admin),
            json!({"amount": 10.5, "note": "welcome"}),
        )
        .await;
    let body = expect_json(res, StatusCode::OK).await;
    assert_eq!(body.raw("balance"), "10.5000");
    assert_eq!(body.raw("amount"), "10.5000");

    // The customer reads the line meant for them, never the operators' note.
    let billing = expect_json(
        app.get("/api/billing/history", Some(&user)).await,
        StatusCode::OK,
    )
    .await;
    assert!(!billing.text.contains("welcome"), "{}", billing.text);
    assert!(
        billing.text.contains("Credit from the platform"),
        "{}",
        billing.text
    );
    let audit = expect_json(
        app.get(
            &format!("/api/admin/audit?target_id={user_id}"),
            Some(&admin),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert!(
        audit.text.contains("welcome"),
        "operators keep the note: {}",
        audit.text
    );

    // The customer sees it, in the body and in the header.
    let res = app.get("/api/me", Some(&user)).await;
    assert_eq!(res.headers()["x-balance-remaining"], "10.5000");
    assert_eq!(
        expect_json(res, StatusCode::OK).await.raw("balance"),
        "10.5000"
    );

    // A debit, exact to the micro-dollar.
    let res = app
        .post(
            &format!("/api/admin/users/{user_id}/credit"),
            Some(&admin),
            json!({"amount": -0.000070}),
        )
        .await;
    assert_eq!(
        expect_json(res, StatusCode::OK).await.raw("balance"),
        "10.4999"
    );
    let (cached, rows): (i64, i64) = (
        domain::accounts::users::balance(&app.state.db, &user_id)
            .await
            .unwrap(),
        domain::money::ledger::sum(&app.state.db, &user_id)
            .await
            .unwrap(),
    );
    assert_eq!(cached, 10_499_930);
    assert_eq!(rows, cached, "the cached balance equals the ledger sum");
    assert!(domain::money::ledger::mismatches(&app.state.db)
        .await
        .unwrap()
        .is_empty());

    let kinds: Vec<(String, i64)> = sqlx::query_as(
        "SELECT kind, amount_micros FROM ledger WHERE user_id = $1 ORDER BY created_at, id",
    )
    .bind(&user_id)
    .fetch_all(&app.state.db)
    .await
    .unwrap();
    assert_eq!(
        kinds,
        vec![
            ("credit".to_string(), 10_500_000),
            ("credit".to_string(), -70)
        ]
    );
    let audits: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_log WHERE action = 'user.credit' AND target_id = $1",
    )
    .bind(&user_id)
    .fetch_one(&app.state.db)
    .await
    .unwrap();
    assert_eq!(audits, 2);
}

#[tokio::test]
async fn credit_is_for_operators_only_and_checks_its_input() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin("op").await;
    let (user_id, user) = app.user("plain").await;
    let path = format!("/api/admin/users/{user_id}/credit");

    expect_error(
        app.post(&path, None, json!({"amount": 5})).await,
        StatusCode::UNAUTHORIZED,
        "Authentication",
    )
    .await;
    expect_error(
        app.post(&path, Some(&user), json!({"amount": 5})).await,
        StatusCode::FORBIDDEN,
        "Operator",
    )
    .await;
    expect_error(
        app.post(
            "/api/admin/users/507f1f77bcf86cd799439011/credit",
            Some(&admin),
            json!({"amount": 5}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "User not found",
    )
    .await;
    expect_error(
        app.post(&path, Some(&admin), json!({"amount": 0})).await,
        StatusCode::BAD_REQUEST,
        "zero",
    )
    .await;
    // A cap on one adjustment (a typo of three zeros is refused, not paid out), and a
    // confirmation above the threshold.
    expect_error(
        app.post(&path, Some(&admin), json!({"amount": 1e9, "confirm": true}))
            .await,
        StatusCode::BAD_REQUEST,
        "at most $10000",
    )
    .await;
    expect_error(
        app.post(&path, Some(&admin), json!({"amount": 250})).await,
        StatusCode::BAD_REQUEST,
        "need confirming",
    )
    .await;
    expect_error(
        app.post(&path, Some(&admin), json!({"amount": "5"})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid type",
    )
    .await;
    expect_error(
        app.post(
            &path,
            Some(&admin),
            json!({"amount": 1, "note": "n".repeat(501)}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "500",
    )
    .await;

    // Taking more than the balance is refused with the `/api` dialect's 402 shape, and moves nothing.
    let res = app.post(&path, Some(&admin), json!({"amount": -1})).await;
    let body = expect_json(res, StatusCode::PAYMENT_REQUIRED).await;
    assert_eq!(body["error"], "insufficient balance");
    assert_eq!(body.raw("balance"), "0.0000");
    assert_eq!(body.raw("required"), "1.0000");
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM ledger")
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(rows, 0);
}

#[tokio::test]
async fn create_user_command_makes_an_operator() {
    // The real binary, as an operator would run it, against a fresh database of this run's kind.
    let dir = std::env::temp_dir().join(format!("hangar-cli-{}", domain::infra::db::new_id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = common::fresh_database(&dir).await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hangar"))
        .args([
            "admin",
            "create-user",
            "--email",
            "Root@Example.com",
            "--username",
            "root",
            "--admin",
        ])
        .env("DATABASE_URL", &db)
        .env("HANGAR_ADMIN_PASSWORD", "operator-password")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("created admin user root (root@example.com)"),
        "{stdout}"
    );

    // The same command again: a clear refusal, not a crash.
    let again = std::process::Command::new(env!("CARGO_BIN_EXE_hangar"))
        .args([
            "admin",
            "create-user",
            "--email",
            "root@example.com",
            "--username",
            "root2",
        ])
        .env("DATABASE_URL", &db)
        .env("HANGAR_ADMIN_PASSWORD", "operator-password")
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));

    // Password from stdin, and the ledger check passes on the new database.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_hangar"))
        .args([
            "admin",
            "create-user",
            "--email",
            "s@example.com",
            "--username",
            "stdin_user",
        ])
        .env("DATABASE_URL", &db)
        .env_remove("HANGAR_ADMIN_PASSWORD")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"from-stdin-pass\n")
        .unwrap();
    assert!(child.wait_with_output().unwrap().status.success());
    let check = std::process::Command::new(env!("CARGO_BIN_EXE_hangar"))
        .args(["admin", "check-ledger"])
        .env("DATABASE_URL", &db)
        .output()
        .unwrap();
    assert!(check.status.success());
    assert!(String::from_utf8_lossy(&check.stdout).contains("ledger ok"));

    // Finding a customer from the shell: a part of the e-mail, any case.
    let users = std::process::Command::new(env!("CARGO_BIN_EXE_hangar"))
        .args(["admin", "users", "S@EXAMPLE"])
        .env("DATABASE_URL", &db)
        .output()
        .unwrap();
    assert!(users.status.success());
    let listed = String::from_utf8_lossy(&users.stdout);
    assert_eq!(listed.lines().count(), 1, "{listed}");
    let fields: Vec<&str> = listed.trim_end().split('\t').collect();
    assert_eq!(
        fields[1..],
        ["stdin_user", "s@example.com", "0.0000", "0", "active"]
    );

    // The operator can sign in over the API and is an admin there.
    let app = TestApp::builder().database(db).spawn().await;
    let jwt = {
        let res = app
            .post(
                "/api/auth/login",
                None,
                json!({"email": "root@example.com", "password": "operator-password"}),
            )
            .await;
        expect_json(res, StatusCode::OK).await["token"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(
        expect_json(app.get("/api/me", Some(&jwt)).await, StatusCode::OK).await["is_admin"],
        true
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// `hangar admin backup` copies a SQLite database while the server runs: the copy opens as a
/// Hangar database with the data written before it; it refuses to overwrite a file, and says
/// what to use on PostgreSQL.
#[tokio::test]
async fn backup_copies_a_running_sqlite_database() {
    let app = TestApp::spawn().await;
    app.register("kept").await;
    let dir = std::env::temp_dir().join(format!("hangar-backup-{}", domain::infra::db::new_id()));
    std::fs::create_dir_all(&dir).unwrap();
    let copy = dir.join("copy.db");
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_hangar"))
            .args(["admin", "backup"])
            .arg(&copy)
            .env("DATABASE_URL", &app.database_url)
            .output()
            .unwrap()
    };
    let out = run();
    if common::backend() == "postgres" {
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("pg_dump"));
        return;
    }
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("backup written to"));
    // The database and its copy hold the signing key and password hashes: owner-only files.
    use std::os::unix::fs::PermissionsExt;
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let live = app.database_url.trim_start_matches("sqlite://");
    let live = std::path::Path::new(live.split('?').next().unwrap());
    assert_eq!(mode(live), 0o600, "the live database");
    assert_eq!(mode(&copy), 0o600, "the backup");
    // The copy is a complete database: the user is there, and it migrates as current.
    let restored = TestApp::builder()
        .database(format!("sqlite://{}", copy.display()))
        .spawn()
        .await;
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE username = 'kept'")
        .fetch_one(&restored.state.db)
        .await
        .unwrap();
    assert_eq!(n, 1);
    // An existing file is never overwritten.
    let again = run();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"));
    std::fs::remove_dir_all(dir).unwrap();
}

/// `hangar migrate --status` before and after an upgrade, and against a database newer than the
/// program (what a rollback without restoring the backup would meet): it lists every migration
/// and says by its exit code what to do, changing nothing.
#[tokio::test]
async fn migrate_status_tells_pending_applied_and_unknown_apart() {
    let dir = std::env::temp_dir().join(format!("hangar-mig-{}", domain::infra::db::new_id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = common::fresh_database(&dir).await;
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_hangar"))
            .args(args)
            .env("DATABASE_URL", &db)
            .output()
            .unwrap()
    };
    let total = domain::infra::db::MIGRATOR.iter().count();
    let before = run(&["migrate", "--status"]);
    let text = String::from_utf8_lossy(&before.stdout).to_string();
    assert_eq!(before.status.code(), Some(10), "pending: {text}");
    assert!(text.contains(&format!("{total} pending")), "{text}");
    // Nothing was applied by looking.
    assert_eq!(run(&["migrate", "--status"]).status.code(), Some(10));

    assert!(run(&["migrate"]).status.success());
    let after = run(&["migrate", "--status"]);
    let text = String::from_utf8_lossy(&after.stdout).to_string();
    assert_eq!(after.status.code(), Some(0), "{text}");
    assert!(text.contains("0 pending, 0 unknown"), "{text}");
    assert!(text.contains("applied 20"), "when each was applied: {text}");

    // A migration from a newer release: this program is the older one.
    let pool = domain::infra::db::connect(&db).await.unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (29991231000000, 'from the future', true, $1, 1)",
    )
    .bind(vec![0u8; 48])
    .execute(&pool)
    .await
    .unwrap();
    let newer = run(&["migrate", "--status"]);
    let text = String::from_utf8_lossy(&newer.stdout).to_string();
    assert_eq!(newer.status.code(), Some(11), "{text}");
    assert!(
        text.contains("from the future") && text.contains("NOT KNOWN"),
        "{text}"
    );
}

/// The upgrade promise (docs/OPERATING.md, "Upgrading"): migrations only add, so an older release runs on a
/// database a newer one migrated and replicas of both serve side by side during a roll. A
/// migration that drops, renames or retypes something breaks that; it must be split over two
/// releases (stop using it, then remove it), and this test says so.
#[test]
fn migrations_only_add() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations");
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let code: String = text
            .lines()
            .map(|l| l.split("--").next().unwrap_or_default())
            .collect::<Vec<_>>()
            .join(" ")
            .to_uppercase();
        for forbidden in [
            "DROP TABLE",
            "DROP COLUMN",
            "RENAME ",
            "ALTER COLUMN",
            "DROP INDEX",
        ] {
            assert!(
                !code.contains(forbidden),
                "{} uses {forbidden}: migrations only add (split the change over two releases)",
                path.display()
            );
        }
    }
}
