//! The `/api/v1` dialect pools, invitations and members, with the authorization matrix.

use crate::common;

use common::{expect_json, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

struct Team {
    app: TestApp,
    admin_op: String,
    pool: String,
    owner: (String, String),
    admin: (String, String),
    user: (String, String),
    outsider: (String, String),
    invitee: (String, String),
    rental: String,
}

/// A pool with an owner, an accepted admin, an accepted user, a pending invitee and an outsider,
/// and one server rented into it by the owner.
async fn team() -> Team {
    let app = TestApp::builder()
        .config("auth_rate_limit_per_minute", "1000")
        .spawn()
        .await;
    let (_, admin_op) = app.admin("ops").await;
    let owner = app.user("owner").await;
    let admin = app.user("adm").await;
    let user = app.user("usr").await;
    let outsider = app.user("outsider").await;
    let invitee = app.user("invitee").await;
    for (id, _) in [&owner, &admin, &user, &outsider, &invitee] {
        app.credit(&admin_op, id, 1000.0).await;
    }
    let pool = expect_json(
        app.post(
            "/api/v1/pools",
            Some(&owner.1),
            json!({"name": "Dev Team", "description": "d", "settings": {"max_servers": 20}}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(pool["message"], "Pool created successfully");
    let pool = pool["data"]["id"].as_str().unwrap().to_owned();
    for (who, role) in [(&admin, "admin"), (&user, "user"), (&invitee, "user")] {
        let username = match who.0.as_str() {
            _ if std::ptr::eq(who, &admin) => "adm",
            _ if std::ptr::eq(who, &user) => "usr",
            _ => "invitee",
        };
        let res = app
            .post(
                &format!("/api/v1/pools/{pool}/members"),
                Some(&owner.1),
                json!({"username": username, "role": role}),
            )
            .await;
        let body = expect_json(res, StatusCode::CREATED).await;
        assert_eq!(body["data"]["is_authorized"], false);
        if !std::ptr::eq(who, &invitee) {
            let inv = expect_json(
                app.get("/api/v1/pools/invitations/pending", Some(&who.1))
                    .await,
                StatusCode::OK,
            )
            .await;
            let inv_id = inv["data"][0]["id"].as_str().unwrap().to_owned();
            assert_eq!(inv["data"][0]["pool_name"], "Dev Team");
            assert_eq!(inv["data"][0]["invited_by"]["username"], "owner");
            expect_json(
                app.post(
                    &format!("/api/v1/pools/{inv_id}/accept"),
                    Some(&who.1),
                    json!({}),
                )
                .await,
                StatusCode::OK,
            )
            .await;
        }
    }
    let server = app.add_server(&admin_op, &[]).await;
    let rented = expect_json(
        app.post(
            &format!("/api/v1/servers/{server}/rent"),
            Some(&owner.1),
            json!({"rental_days": 7, "pool_id": pool}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let rental = rented["data"]["rental"]["id"].as_str().unwrap().to_owned();
    Team {
        app,
        admin_op,
        pool,
        owner,
        admin,
        user,
        outsider,
        invitee,
        rental,
    }
}

#[tokio::test]
async fn authorization_matrix() {
    let t = team().await;
    let app = &t.app;
    let p = &t.pool;
    let who: [(&str, Option<&str>); 6] = [
        ("owner", Some(&t.owner.1)),
        ("admin", Some(&t.admin.1)),
        ("user", Some(&t.user.1)),
        ("outsider", Some(&t.outsider.1)),
        ("invitee", Some(&t.invitee.1)),
        ("anonymous", None),
    ];
    // Read-only actions: the expected status per caller, in the order above.
    let reads: [(&str, [u16; 6]); 3] = [
        ("get pool", [200, 200, 200, 404, 404, 401]),
        ("get rental", [200, 200, 200, 404, 404, 401]),
        ("list pools shows it", [200, 200, 200, 404, 404, 401]),
    ];
    for (action, expected) in reads {
        for ((name, token), want) in who.iter().zip(expected) {
            let status = match action {
                "get pool" => app
                    .get(&format!("/api/v1/pools/{p}"), *token)
                    .await
                    .status()
                    .as_u16(),
                "get rental" => app
                    .get(&format!("/api/v1/rentals/{}", t.rental), *token)
                    .await
                    .status()
                    .as_u16(),
                _ => {
                    let res = app.get("/api/v1/pools", *token).await;
                    if res.status() != StatusCode::OK {
                        res.status().as_u16()
                    } else {
                        let body: Value = res.json().await.unwrap();
                        if body["data"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .any(|x| x["id"] == p.as_str())
                        {
                            200
                        } else {
                            404
                        }
                    }
                }
            };
            assert_eq!(status, want, "{action} as {name}");
        }
    }
    // Writes, each against fresh state so one caller's success does not change the next answer.
    // Expected: owner, admin, user, outsider, invitee, anonymous.
    let writes: [(&str, [u16; 6]); 5] = [
        ("update pool", [200, 403, 403, 404, 404, 401]),
        ("invite", [201, 201, 403, 404, 404, 401]),
        ("change role", [200, 403, 403, 404, 404, 401]),
        ("extend rental", [200, 200, 403, 404, 404, 401]),
        ("rent into pool", [201, 201, 403, 404, 404, 401]),
    ];
    for (action, expected) in writes {
        for (i, ((name, token), want)) in who.iter().zip(expected).enumerate() {
            let res = match action {
                "update pool" => {
                    app.patch(
                        &format!("/api/v1/pools/{p}"),
                        *token,
                        json!({"description": format!("by {name}")}),
                    )
                    .await
                }
                "invite" => {
                    let target = app.user(&format!("target_{i}")).await;
                    let _ = target;
                    app.post(
                        &format!("/api/v1/pools/{p}/members"),
                        *token,
                        json!({"username": format!("target_{i}"), "role": "user"}),
                    )
                    .await
                }
                "change role" => {
                    app.patch(
                        &format!("/api/v1/pools/{p}/members/{}", t.user.0),
                        *token,
                        json!({"role": "user"}),
                    )
                    .await
                }
                "extend rental" => {
                    app.post(
                        &format!("/api/v1/rentals/{}/extend", t.rental),
                        *token,
                        json!({"additional_days": 1}),
                    )
                    .await
                }
                _ => {
                    let server = app
                        .add_server(&t.admin_op, &[("/name", json!(format!("extra-{i}")))])
                        .await;
                    app.post(
                        &format!("/api/v1/servers/{server}/rent"),
                        *token,
                        json!({"rental_days": 1, "pool_id": p}),
                    )
                    .await
                }
            };
            assert_eq!(res.status().as_u16(), want, "{action} as {name}");
        }
    }
    // Removal rules: admin may remove a user but not another admin; user may only leave.
    let del = |token: String, user_id: String| {
        let path = format!("/api/v1/pools/{p}/members/{user_id}");
        async move { app.delete(&path, Some(&token)).await.status() }
    };
    let t2 = app.user("second_admin").await;
    let inv = expect_json(
        app.post(
            &format!("/api/v1/pools/{p}/members"),
            Some(&t.owner.1),
            json!({"username": "second_admin", "role": "admin"}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let _ = inv;
    let pending = expect_json(
        app.get("/api/v1/pools/invitations/pending", Some(&t2.1))
            .await,
        StatusCode::OK,
    )
    .await;
    let inv_id = pending["data"][0]["id"].as_str().unwrap().to_owned();
    expect_json(
        app.post(
            &format!("/api/v1/pools/{inv_id}/accept"),
            Some(&t2.1),
            json!({}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        del(t.user.1.clone(), t.admin.0.clone()).await,
        StatusCode::FORBIDDEN,
        "a user cannot remove an admin"
    );
    assert_eq!(
        del(t.admin.1.clone(), t2.0.clone()).await,
        StatusCode::FORBIDDEN,
        "an admin cannot remove an admin"
    );
    assert_eq!(
        del(t.admin.1.clone(), t.owner.0.clone()).await,
        StatusCode::CONFLICT,
        "nobody removes the owner"
    );
    assert_eq!(
        del(t.outsider.1.clone(), t.user.0.clone()).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        del(t.admin.1.clone(), t.invitee.0.clone()).await,
        StatusCode::OK,
        "admins may cancel pending invitations"
    );
    assert_eq!(
        del(t.admin.1.clone(), t.user.0.clone()).await,
        StatusCode::OK,
        "admins may remove users"
    );
    assert_eq!(
        app.get(&format!("/api/v1/pools/{p}"), Some(&t.user.1))
            .await
            .status(),
        StatusCode::NOT_FOUND,
        "removed means gone"
    );
    assert_eq!(
        del(t2.1.clone(), t2.0.clone()).await,
        StatusCode::OK,
        "anyone may leave"
    );
    assert_eq!(
        del(t.owner.1.clone(), t.admin.0.clone()).await,
        StatusCode::OK,
        "the owner removes anyone"
    );
    // Delete: owner only.
    assert_eq!(
        app.delete(&format!("/api/v1/pools/{p}"), Some(&t.outsider.1))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.delete(&format!("/api/v1/pools/{p}"), None)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let body = expect_json(
        app.delete(&format!("/api/v1/pools/{p}"), Some(&t.owner.1))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(body["data"], json!({"success": true}));
    // The pool's rental moved to the owner's default pool; nothing paid for is lost.
    let rental = expect_json(
        app.get(&format!("/api/v1/rentals/{}", t.rental), Some(&t.owner.1))
            .await,
        StatusCode::OK,
    )
    .await;
    let pools = expect_json(
        app.get("/api/v1/pools", Some(&t.owner.1)).await,
        StatusCode::OK,
    )
    .await;
    let default = pools["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["is_default"] == true)
        .unwrap();
    assert_eq!(rental["data"]["pool_id"], default["id"]);
}

#[tokio::test]
async fn invitees_see_the_pool_only_after_accepting() {
    let t = team().await;
    let app = &t.app;
    let p = &t.pool;
    // Pending: nothing visible.
    assert_eq!(
        app.get(&format!("/api/v1/pools/{p}"), Some(&t.invitee.1))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let rentals = expect_json(
        app.get("/api/v1/rentals", Some(&t.invitee.1)).await,
        StatusCode::OK,
    )
    .await;
    assert!(rentals["data"].as_array().unwrap().is_empty());
    let pending = expect_json(
        app.get("/api/v1/pools/invitations/pending", Some(&t.invitee.1))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(pending["data"].as_array().unwrap().len(), 1);
    let inv_id = pending["data"][0]["id"].as_str().unwrap().to_owned();
    // Someone else cannot answer it.
    assert_eq!(
        app.post(
            &format!("/api/v1/pools/{inv_id}/accept"),
            Some(&t.outsider.1),
            json!({})
        )
        .await
        .status(),
        StatusCode::NOT_FOUND
    );
    expect_json(
        app.post(
            &format!("/api/v1/pools/{inv_id}/accept"),
            Some(&t.invitee.1),
            json!({}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let detail = expect_json(
        app.get(&format!("/api/v1/pools/{p}"), Some(&t.invitee.1))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        detail["data"]["servers"].as_array().unwrap().len(),
        1,
        "the pool's server is visible"
    );
    assert_eq!(detail["data"]["servers"][0]["rental_id"], t.rental.as_str());
    assert_eq!(detail["data"]["user_role"], "user");
    let rentals = expect_json(
        app.get("/api/v1/rentals", Some(&t.invitee.1)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(rentals["data"][0]["id"], t.rental.as_str());
    // Accepting twice: not found.
    assert_eq!(
        app.post(
            &format!("/api/v1/pools/{inv_id}/accept"),
            Some(&t.invitee.1),
            json!({})
        )
        .await
        .status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn pools_crud_counts_and_validation() {
    let t = team().await;
    let app = &t.app;
    let list = expect_json(
        app.get("/api/v1/pools", Some(&t.owner.1)).await,
        StatusCode::OK,
    )
    .await;
    let pools = list["data"].as_array().unwrap();
    assert_eq!(pools.len(), 2, "the default pool and Dev Team");
    assert_eq!(pools[0]["is_default"], true);
    let dev = pools.iter().find(|x| x["id"] == t.pool.as_str()).unwrap();
    assert_eq!(dev["user_role"], "owner");
    assert_eq!(
        dev["member_count"], 3,
        "owner, admin, user (the invitee is pending)"
    );
    assert_eq!(dev["server_count"], 1);
    assert_eq!(dev["settings"], json!({"max_servers": 20}));
    let admin_view = expect_json(
        app.get("/api/v1/pools", Some(&t.admin.1)).await,
        StatusCode::OK,
    )
    .await;
    let dev = admin_view["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == t.pool.as_str())
        .unwrap()
        .clone();
    assert_eq!(dev["user_role"], "admin");

    let detail = expect_json(
        app.get(&format!("/api/v1/pools/{}", t.pool), Some(&t.owner.1))
            .await,
        StatusCode::OK,
    )
    .await;
    let members = detail["data"]["members"].as_array().unwrap();
    assert_eq!(members.len(), 4, "owners see pending invitations too");
    assert!(members
        .iter()
        .any(|m| m["user"]["username"] == "invitee" && m["is_authorized"] == false));
    let user_view = expect_json(
        app.get(&format!("/api/v1/pools/{}", t.pool), Some(&t.user.1))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(user_view["data"]["members"].as_array().unwrap().len(), 3);

    for (body, needle) in [
        (json!({"name": ""}), "name is required"),
        (json!({"name": "x".repeat(101)}), "at most 100"),
        (
            json!({"name": "ok", "description": "d".repeat(501)}),
            "at most 500",
        ),
        (json!({"name": "ok", "settings": [1, 2]}), "JSON object"),
    ] {
        let res = app.post("/api/v1/pools", Some(&t.owner.1), body).await;
        let b = expect_json(res, StatusCode::BAD_REQUEST).await;
        assert!(
            b["message"].as_str().unwrap().contains(needle),
            "{}",
            b.text
        );
        assert_eq!(b["data"], Value::Null);
    }
    let res = app
        .patch(
            &format!("/api/v1/pools/{}", t.pool),
            Some(&t.owner.1),
            json!({"description": "new", "settings": {"auto_approve": true}}),
        )
        .await;
    assert_eq!(
        expect_json(res, StatusCode::OK).await["data"],
        json!({"success": true})
    );
    let detail = expect_json(
        app.get(&format!("/api/v1/pools/{}", t.pool), Some(&t.user.1))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(detail["data"]["description"], "new");
    assert_eq!(
        detail["data"]["name"], "Dev Team",
        "fields not sent are kept"
    );
    // Invitations: unknown user, bad role, duplicates.
    let p = &t.pool;
    let members_path = format!("/api/v1/pools/{p}/members");
    let inv = |body: Value| app.post(&members_path, Some(&t.owner.1), body);
    assert_eq!(
        inv(json!({"username": "nobody_here", "role": "user"}))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        inv(json!({"username": "outsider", "role": "owner"}))
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        inv(json!({"username": "bad name!", "role": "user"}))
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        inv(json!({"username": "usr", "role": "user"}))
            .await
            .status(),
        StatusCode::CONFLICT
    );
    assert_eq!(
        inv(json!({"username": "INVITEE", "role": "user"}))
            .await
            .status(),
        StatusCode::CONFLICT
    );
    // Role changes: owner's own role is fixed; bad roles refused.
    let path = format!("/api/v1/pools/{p}/members/{}", t.owner.0);
    assert_eq!(
        app.patch(&path, Some(&t.owner.1), json!({"role": "user"}))
            .await
            .status(),
        StatusCode::CONFLICT
    );
    let path = format!("/api/v1/pools/{p}/members/{}", t.user.0);
    assert_eq!(
        app.patch(&path, Some(&t.owner.1), json!({"role": "god"}))
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );
    expect_json(
        app.patch(&path, Some(&t.owner.1), json!({"role": "admin"}))
            .await,
        StatusCode::OK,
    )
    .await;
    // Now an admin, the user may rent into the pool.
    let server = app
        .add_server(&t.admin_op, &[("/name", json!("promoted"))])
        .await;
    expect_json(
        app.post(
            &format!("/api/v1/servers/{server}/rent"),
            Some(&t.user.1),
            json!({"rental_days": 1, "pool_id": p}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    // Reject path.
    let (_, late) = app.user("late").await;
    expect_json(
        inv(json!({"username": "late", "role": "user"})).await,
        StatusCode::CREATED,
    )
    .await;
    let pending = expect_json(
        app.get("/api/v1/pools/invitations/pending", Some(&late))
            .await,
        StatusCode::OK,
    )
    .await;
    let inv_id = pending["data"][0]["id"].as_str().unwrap().to_owned();
    expect_json(
        app.post(
            &format!("/api/v1/pools/{inv_id}/reject"),
            Some(&late),
            json!({}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let pending = expect_json(
        app.get("/api/v1/pools/invitations/pending", Some(&late))
            .await,
        StatusCode::OK,
    )
    .await;
    assert!(pending["data"].as_array().unwrap().is_empty());
    assert_eq!(
        app.get(&format!("/api/v1/pools/{p}"), Some(&late))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    // The default pool cannot be deleted.
    let pools = expect_json(
        app.get("/api/v1/pools", Some(&t.owner.1)).await,
        StatusCode::OK,
    )
    .await;
    let default = pools["data"][0]["id"].as_str().unwrap().to_owned();
    let res = app
        .delete(&format!("/api/v1/pools/{default}"), Some(&t.owner.1))
        .await;
    assert_eq!(
        expect_json(res, StatusCode::CONFLICT).await["message"],
        "The default pool cannot be deleted"
    );
}

/// Moving a rental between pools: only who may rent into both, the old pool's members lose
/// sight of it, the new pool's gain it, and refusals change nothing.
#[tokio::test]
async fn a_rental_moves_between_pools_under_the_pool_rules() {
    let t = team().await;
    let app = &t.app;
    let path = format!("/api/v1/rentals/{}/move", t.rental);
    let pool_of = |v: &Value| v["data"]["pool_id"].as_str().unwrap_or_default().to_owned();
    let ops = expect_json(
        app.post(
            "/api/v1/pools",
            Some(&t.owner.1),
            json!({"name": "Ops", "description": "o"}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let outsiders = expect_json(
        app.get("/api/v1/pools", Some(&t.outsider.1)).await,
        StatusCode::OK,
    )
    .await["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Refusals: a plain member, someone who cannot see it, a bad id, a pool the mover is not in.
    let res = app
        .post(&path, Some(&t.user.1), json!({"pool_id": ops}))
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = app
        .post(&path, Some(&t.outsider.1), json!({"pool_id": outsiders}))
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = app
        .post(&path, Some(&t.owner.1), json!({"pool_id": "nope"}))
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let res = app
        .post(&path, Some(&t.owner.1), json!({"pool_id": outsiders}))
        .await;
    assert!(res.status().is_client_error(), "{}", res.status());
    let seen = expect_json(
        app.get(&format!("/api/v1/rentals/{}", t.rental), Some(&t.user.1))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(pool_of(&seen), t.pool, "nothing moved");

    // The owner moves it into Ops: Dev Team's plain member no longer sees it.
    let moved = expect_json(
        app.post(&path, Some(&t.owner.1), json!({"pool_id": ops}))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(moved["message"], "Rental moved successfully");
    assert_eq!(pool_of(&moved), ops);
    let gone = app
        .get(&format!("/api/v1/rentals/{}", t.rental), Some(&t.user.1))
        .await;
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    // Where it already is: no change, no error.
    let again = expect_json(
        app.post(&path, Some(&t.owner.1), json!({"pool_id": ops}))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(pool_of(&again), ops);
    let _ = (&t.admin, &t.invitee, &t.admin_op);
}

/// The `small` plan's id (the `/api` dialect pricing).
async fn small_plan(app: &TestApp) -> String {
    let plans = expect_json(app.get("/api/pricing", None).await, StatusCode::OK).await;
    plans
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["slug"] == "small")
        .expect("a small plan")["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The status of `method path` as `token`.
async fn status(app: &TestApp, method: &str, path: &str, token: &str, body: Value) -> u16 {
    let res = match method {
        "GET" => app.get(path, Some(token)).await,
        "POST" => app.post(path, Some(token), body).await,
        "PUT" => app.put(path, Some(token), body).await,
        "DELETE" => app.delete(path, Some(token)).await,
        _ => unreachable!(),
    };
    res.status().as_u16()
}

#[tokio::test]
async fn machines_shared_with_a_pool_follow_the_roles_and_bill_their_creator() {
    let t = team().await;
    let app = &t.app;
    let p = &t.pool;
    let plan = small_plan(app).await;
    let create = |name: &str| json!({"name": name, "plan_id": plan, "pool_id": p});

    // Only the pool's owner and admins add machines to it; others do not know it exists.
    assert_eq!(
        status(app, "POST", "/api/vps", &t.user.1, create("u")).await,
        403
    );
    assert_eq!(
        status(app, "POST", "/api/vps", &t.outsider.1, create("o")).await,
        404
    );
    assert_eq!(
        status(app, "POST", "/api/vps", &t.invitee.1, create("i")).await,
        404
    );

    let made = expect_json(
        app.post("/api/vps", Some(&t.admin.1), create("team-web"))
            .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(made["pool_id"], p.as_str());
    let m = made["id"].as_str().unwrap().to_owned();
    app.run_jobs().await;

    // Every accepted member sees it, in the list and by id; nobody else does.
    for (who, token, sees) in [
        ("owner", &t.owner.1, true),
        ("admin", &t.admin.1, true),
        ("user", &t.user.1, true),
        ("outsider", &t.outsider.1, false),
        ("invitee", &t.invitee.1, false),
    ] {
        let list = expect_json(app.get("/api/vps", Some(token)).await, StatusCode::OK).await;
        let listed = list
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["id"] == m.as_str());
        assert_eq!(listed, sees, "{who} lists it");
        let by_id = status(app, "GET", &format!("/api/vps/{m}"), token, json!({})).await;
        assert_eq!(by_id, if sees { 200 } else { 404 }, "{who} gets it");
    }

    // It runs on its creator's money, not the pool owner's.
    let before = (app.money(&t.admin.0).await.0, app.money(&t.owner.0).await.0);
    let later = domain::infra::db::now_ms() + 10 * 60_000;
    domain::compute::meter::tick(
        &app.state.db,
        later,
        domain::compute::meter::Rules::of(&app.state.config),
    )
    .await
    .unwrap();
    let after = (app.money(&t.admin.0).await.0, app.money(&t.owner.0).await.0);
    assert!(
        after.0 < before.0,
        "the creator pays: {before:?} → {after:?}"
    );
    assert_eq!(after.1, before.1, "the pool owner pays nothing for it");

    // A pool `user` uses it but does not power, rename, move or delete it.
    let vps = format!("/api/vps/{m}");
    assert_eq!(
        status(
            app,
            "GET",
            &format!("{vps}/snapshots"),
            &t.user.1,
            json!({})
        )
        .await,
        200
    );
    for (method, path, body) in [
        ("POST", format!("{vps}/stop"), json!({})),
        ("PUT", vps.clone(), json!({"name": "renamed"})),
        ("POST", format!("{vps}/snapshots"), json!({"name": "s1"})),
        ("PUT", format!("{vps}/pool"), json!({"pool_id": null})),
        ("DELETE", vps.clone(), json!({})),
    ] {
        assert_eq!(
            status(app, method, &path, &t.user.1, body).await,
            403,
            "a pool user: {method} {path}"
        );
    }
    assert_eq!(
        status(
            app,
            "POST",
            &format!("{vps}/stop"),
            &t.outsider.1,
            json!({})
        )
        .await,
        404
    );

    // The pool's owner powers a member's machine.
    assert_eq!(
        status(app, "POST", &format!("{vps}/stop"), &t.owner.1, json!({})).await,
        202
    );
    app.run_jobs().await;

    // An admin powers a machine someone else shared, but may not delete it or move it out.
    let theirs = expect_json(
        app.post("/api/vps", Some(&t.owner.1), create("owner-db"))
            .await,
        StatusCode::CREATED,
    )
    .await;
    let theirs = format!("/api/vps/{}", theirs["id"].as_str().unwrap());
    app.run_jobs().await;
    assert_eq!(
        status(
            app,
            "POST",
            &format!("{theirs}/restart"),
            &t.admin.1,
            json!({})
        )
        .await,
        202
    );
    app.run_jobs().await;
    assert_eq!(
        status(app, "DELETE", &theirs, &t.admin.1, json!({})).await,
        403
    );
    assert_eq!(
        status(
            app,
            "PUT",
            &format!("{theirs}/pool"),
            &t.admin.1,
            json!({"pool_id": null})
        )
        .await,
        403
    );

    // Moving: out by its creator (the pool no longer sees it), back in, and never into a pool
    // the caller does not manage.
    let out = expect_json(
        app.put(
            &format!("{vps}/pool"),
            Some(&t.admin.1),
            json!({"pool_id": null}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert!(out.get("pool_id").is_none(), "{}", out.text);
    assert_eq!(status(app, "GET", &vps, &t.user.1, json!({})).await, 404);
    let outsiders_pool = expect_json(
        app.post(
            "/api/v1/pools",
            Some(&t.outsider.1),
            json!({"name": "Elsewhere"}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let elsewhere = outsiders_pool["data"]["id"].as_str().unwrap();
    assert_eq!(
        status(
            app,
            "PUT",
            &format!("{vps}/pool"),
            &t.admin.1,
            json!({"pool_id": elsewhere})
        )
        .await,
        404
    );
    assert_eq!(
        status(
            app,
            "PUT",
            &format!("{vps}/pool"),
            &t.admin.1,
            json!({"pool_id": p})
        )
        .await,
        200
    );
    assert_eq!(status(app, "GET", &vps, &t.user.1, json!({})).await, 200);

    // A member who leaves takes their machines along; the pool sees them no more.
    let leave = app
        .delete(
            &format!("/api/v1/pools/{p}/members/{}", t.admin.0),
            Some(&t.admin.1),
        )
        .await;
    assert_eq!(
        leave.status(),
        StatusCode::OK,
        "{}",
        leave.text().await.unwrap()
    );
    assert_eq!(status(app, "GET", &vps, &t.owner.1, json!({})).await, 404);
    let kept = expect_json(app.get(&vps, Some(&t.admin.1)).await, StatusCode::OK).await;
    assert!(kept.get("pool_id").is_none(), "{}", kept.text);

    // The pool's owner deletes a machine shared with their pool.
    assert_eq!(
        status(app, "DELETE", &theirs, &t.owner.1, json!({})).await,
        202
    );
}
