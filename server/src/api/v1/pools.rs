//! Pools, invitations and members (the `/api/v1` dialect). Role rules: `domain::accounts::pools`.

use axum::extract::{Path, State};
use domain::accounts::pools;
use domain::AppState;
use model::market::{Invitation, Member, Pool, PoolDetail};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{Success, SUCCESS, V1};
use crate::http::{
    auth::Caller,
    error::{ApiJson, Result},
};
use model::api::v1_pools::{CreatePoolRequest, InviteRequest, RoleRequest, UpdatePoolRequest};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_pools, create_pool))
        .routes(routes!(get_pool, update_pool, delete_pool))
        .routes(routes!(list_pending_invitations))
        .routes(routes!(accept_invitation))
        .routes(routes!(reject_invitation))
        .routes(routes!(invite_member))
        .routes(routes!(change_member_role, remove_member))
}

/// Pools you own or belong to, with your role and counts.
#[utoipa::path(get, path = "/api/v1/pools", tag = "pools", security(("bearer" = [])),
    responses((status = 200, body = Vec<Pool>), (status = 401)))]
async fn list_pools(State(state): State<AppState>, caller: Caller) -> Result<V1<Vec<Pool>>> {
    Ok(V1::ok(
        "Pools retrieved successfully",
        pools::list(&state.db, &caller.user.id).await?,
    ))
}

/// Create a pool; you are its owner.
#[utoipa::path(post, path = "/api/v1/pools", tag = "pools", security(("bearer" = [])),
    request_body = CreatePoolRequest, responses((status = 201, body = Pool), (status = 400)))]
async fn create_pool(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreatePoolRequest>,
) -> Result<V1<Pool>> {
    let pool = pools::create(
        &state.db,
        &caller.user.id,
        &body.name,
        body.description.as_deref(),
        body.settings,
    )
    .await?;
    Ok(V1::created("Pool created successfully", pool))
}

/// A pool with its members and servers. Owners and admins also see pending invitations.
#[utoipa::path(get, path = "/api/v1/pools/{id}", tag = "pools", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 200, body = PoolDetail), (status = 404)))]
async fn get_pool(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<V1<PoolDetail>> {
    Ok(V1::ok(
        "Pool retrieved successfully",
        pools::get(&state.db, &caller.user.id, &id).await?,
    ))
}

/// Update a pool (owner only).
#[utoipa::path(patch, path = "/api/v1/pools/{id}", tag = "pools", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = UpdatePoolRequest,
    responses((status = 200, body = Success), (status = 400), (status = 403), (status = 404)))]
async fn update_pool(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdatePoolRequest>,
) -> Result<V1<Success>> {
    pools::update(
        &state.db,
        &caller.user.id,
        &id,
        body.name.as_deref(),
        body.description.as_deref(),
        body.settings,
    )
    .await?;
    Ok(V1::ok("Pool updated successfully", SUCCESS))
}

/// Delete a pool (owner only; never the default pool). Its rentals move to your default pool.
#[utoipa::path(delete, path = "/api/v1/pools/{id}", tag = "pools", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 200, body = Success), (status = 403), (status = 404), (status = 409)))]
async fn delete_pool(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<V1<Success>> {
    pools::delete(&state.db, &caller.user.id, &id).await?;
    Ok(V1::ok("Pool deleted successfully", SUCCESS))
}

/// Invitations waiting for you.
#[utoipa::path(get, path = "/api/v1/pools/invitations/pending", tag = "pools", security(("bearer" = [])),
    responses((status = 200, body = Vec<Invitation>)))]
async fn list_pending_invitations(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<V1<Vec<Invitation>>> {
    Ok(V1::ok(
        "Pending invitations retrieved successfully",
        pools::pending_invitations(&state.db, &caller.user.id).await?,
    ))
}

/// Accept an invitation (`id` is the invitation id).
#[utoipa::path(post, path = "/api/v1/pools/{id}/accept", tag = "pools", security(("bearer" = [])),
    params(("id" = String, Path, description = "Invitation id")), responses((status = 200, body = Success), (status = 404)))]
async fn accept_invitation(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<V1<Success>> {
    pools::answer_invitation(&state.db, &caller.user.id, &id, true).await?;
    Ok(V1::ok("Invitation accepted successfully", SUCCESS))
}

/// Reject an invitation (`id` is the invitation id).
#[utoipa::path(post, path = "/api/v1/pools/{id}/reject", tag = "pools", security(("bearer" = [])),
    params(("id" = String, Path, description = "Invitation id")), responses((status = 200, body = Success), (status = 404)))]
async fn reject_invitation(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<V1<Success>> {
    pools::answer_invitation(&state.db, &caller.user.id, &id, false).await?;
    Ok(V1::ok("Invitation rejected successfully", SUCCESS))
}

/// Invite a user by username (owner or admin).
#[utoipa::path(post, path = "/api/v1/pools/{id}/members", tag = "pools", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = InviteRequest,
    responses((status = 201, body = Member), (status = 400), (status = 403), (status = 404), (status = 409)))]
async fn invite_member(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<InviteRequest>,
) -> Result<V1<Member>> {
    let member = pools::invite(&state.db, &caller.user.id, &id, &body.username, &body.role).await?;
    Ok(V1::created("Member invited successfully", member))
}

/// Change a member's role (owner only).
#[utoipa::path(patch, path = "/api/v1/pools/{id}/members/{user_id}", tag = "pools", security(("bearer" = [])),
    params(("id" = String, Path), ("user_id" = String, Path, description = "The member's user id")), request_body = RoleRequest,
    responses((status = 200, body = Success), (status = 400), (status = 403), (status = 404), (status = 409)))]
async fn change_member_role(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, user_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<RoleRequest>,
) -> Result<V1<Success>> {
    pools::change_role(&state.db, &caller.user.id, &id, &user_id, &body.role).await?;
    Ok(V1::ok("Member role updated successfully", SUCCESS))
}

/// Remove a member or a pending invitation (owner; admins for `user`s; anyone for themselves).
#[utoipa::path(delete, path = "/api/v1/pools/{id}/members/{user_id}", tag = "pools", security(("bearer" = [])),
    params(("id" = String, Path), ("user_id" = String, Path)),
    responses((status = 200, body = Success), (status = 403), (status = 404), (status = 409)))]
async fn remove_member(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, user_id)): Path<(String, String)>,
) -> Result<V1<Success>> {
    pools::remove_member(&state.db, &caller.user.id, &id, &user_id).await?;
    Ok(V1::ok("Member removed successfully", SUCCESS))
}
