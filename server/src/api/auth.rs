//! Accounts (the `/api` dialect "Auth"): register, login, the caller's profile, turning two-factor
//! sign-in (TOTP) on and off, changing the password and signing out everywhere. The last four
//! take only a person (a JWT), never an access token (`http::scopes`).

use axum::{extract::State, http::StatusCode};
use domain::accounts::{captcha, credentials, entry, totp};
use domain::AppState;
use model::accounts::{Me, RecoveryCodes, TwoFactorSetup};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    api::ErrorBody,
    http::{
        auth::Caller,
        error::{ApiJson, AppError, Result},
        rate_limit::ClientIp,
    },
};
use model::api::auth::{
    ChangeEmailRequest, ChangePasswordRequest, ConfirmEmailRequest, DeleteAccountRequest,
    DisableTwoFactorRequest, EmailChangePending, EnableTwoFactorRequest, LoginRequest,
    LoginResponse, PasswordResetAsked, PasswordResetRequest, RegisterRequest, ResetPasswordRequest,
    SignOutEverywhereRequest, SignedOut,
};

/// Paths limited per client IP (`auth_rate_limit_per_minute`, default 10/min each), listed in
/// the agent manifest from this same constant. The portal's sign-in and sign-up server
/// functions share the policy.
pub const RATE_LIMITED_PATHS: &[&str] = &[
    "/api/auth/login",
    "/api/auth/register",
    "/api/auth/password",
    "/api/auth/2fa/disable",
    "/api/auth/email",
    "/api/auth/account",
    "/api/auth/password-reset",
    "/api/auth/password-reset/confirm",
    "/_fn/sign_in",
    "/_fn/sign_up",
    "/_fn/change_password",
    "/_fn/two_factor_disable",
    "/_fn/change_email",
    "/_fn/delete_account",
    "/_fn/request_password_reset",
    "/_fn/reset_password",
];

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(get_me))
        .routes(routes!(two_factor_setup))
        .routes(routes!(two_factor_enable))
        .routes(routes!(two_factor_disable))
        .routes(routes!(change_password))
        .routes(routes!(sign_out_everywhere))
        .routes(routes!(change_email))
        .routes(routes!(confirm_email))
        .routes(routes!(request_password_reset))
        .routes(routes!(reset_password))
        .routes(routes!(delete_account))
}

/// Ask to change the sign-in email: a link goes to the new address (valid 24 hours) and a notice
/// to the current one. Nothing changes until the link is followed (`POST
/// /api/auth/email/confirm`, or the portal's page it opens). A new request replaces the last.
#[utoipa::path(post, path = "/api/auth/email", tag = "auth", security(("bearer" = [])),
    request_body = ChangeEmailRequest,
    responses((status = 202, body = EmailChangePending),
        (status = 400, description = "Not an email, or the current one", body = ErrorBody),
        (status = 401, description = "The password is not right", body = ErrorBody),
        (status = 403, description = "Called with an access token", body = ErrorBody),
        (status = 409, description = "An account already uses that email", body = ErrorBody),
        (status = 429, description = "Too many failed attempts", body = ErrorBody)))]
async fn change_email(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<ChangeEmailRequest>,
) -> Result<(StatusCode, ApiJson<EmailChangePending>)> {
    use domain::accounts::account;
    account::request_email_change(
        &state.db,
        &state.config,
        &caller.user,
        &body.password,
        &body.email,
    )
    .await?;
    let (email, expires_at) = account::pending_email_change(&state.db, &caller.user.id)
        .await?
        .ok_or_else(|| {
            AppError::Service(domain::infra::error::ServiceError::internal(
                anyhow::anyhow!("the change just asked for is gone"),
            ))
        })?;
    Ok((
        StatusCode::ACCEPTED,
        ApiJson(EmailChangePending {
            email,
            expires_at: domain::infra::db::rfc3339(expires_at),
        }),
    ))
}

/// Follow an email-change link: the account signs in with the new address from now on and the
/// old address is told. No credential: the token is the proof. 400 for an unknown, used or
/// expired token.
#[utoipa::path(post, path = "/api/auth/email/confirm", tag = "auth",
    request_body = ConfirmEmailRequest,
    responses((status = 200, body = Me),
        (status = 400, description = "The link is not valid any more", body = ErrorBody),
        (status = 409, description = "Another account took that email meanwhile", body = ErrorBody)))]
async fn confirm_email(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ConfirmEmailRequest>,
) -> Result<ApiJson<Me>> {
    let user =
        domain::accounts::account::confirm_email(&state.db, &state.config, &body.token).await?;
    Ok(ApiJson(Me::from(&user)))
}

/// Ask for a password reset link: mailed to the address if an account uses it, good for an hour
/// and once. The answer is the same either way (it does not tell who has an account).
/// Rate-limited like sign-in.
#[utoipa::path(post, path = "/api/auth/password-reset", tag = "auth",
    request_body = PasswordResetRequest,
    responses((status = 202, body = PasswordResetAsked), (status = 400, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn request_password_reset(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<PasswordResetRequest>,
) -> Result<(StatusCode, ApiJson<PasswordResetAsked>)> {
    domain::accounts::recovery::request(&state.db, &state.config, &body.email).await?;
    Ok((
        StatusCode::ACCEPTED,
        ApiJson(PasswordResetAsked {
            message: "If an account uses that address, a link to set a new password is on its way",
        }),
    ))
}

/// Follow a password reset link: sets the new password, signs the account out everywhere and
/// lifts a sign-in lockout (two-factor stays on). 400 for an unknown, used or expired link or a
/// weak password.
#[utoipa::path(post, path = "/api/auth/password-reset/confirm", tag = "auth",
    request_body = ResetPasswordRequest,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn reset_password(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ResetPasswordRequest>,
) -> Result<StatusCode> {
    domain::accounts::recovery::reset(
        &state.db,
        &state.config,
        &state.revocations,
        &body.token,
        &body.password,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Delete the account: its email and username are released and every session, JWT and API
/// token ends. Refused (409, saying what) while it has machines, active rentals or pools with
/// other members, and for operators. The balance is not paid out by this: ask the operator for a
/// refund first. The ledger and audit log keep their records of the account.
#[utoipa::path(delete, path = "/api/auth/account", tag = "auth", security(("bearer" = [])),
    request_body = DeleteAccountRequest,
    responses((status = 204, description = "Deleted"),
        (status = 401, description = "The password is not right", body = ErrorBody),
        (status = 403, description = "Called with an access token", body = ErrorBody),
        (status = 409, description = "Something must go first (said)", body = ErrorBody),
        (status = 429, description = "Too many failed attempts", body = ErrorBody)))]
async fn delete_account(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<DeleteAccountRequest>,
) -> Result<StatusCode> {
    domain::accounts::account::delete(&state.db, &state.revocations, &caller.user, &body.password)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Change the password. Every session and JWT of the account ends (this one too: sign in again
/// with the new password); access tokens keep working. Wrong current passwords count toward the
/// account's sign-in block.
#[utoipa::path(post, path = "/api/auth/password", tag = "auth", security(("bearer" = [])),
    request_body = ChangePasswordRequest,
    responses((status = 204, description = "Changed; sign in again"),
        (status = 400, description = "The new password breaks a rule", body = ErrorBody),
        (status = 401, description = "The current password is not right", body = ErrorBody),
        (status = 403, description = "Called with an access token", body = ErrorBody),
        (status = 429, description = "Too many failed attempts", body = ErrorBody)))]
async fn change_password(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<ChangePasswordRequest>,
) -> Result<StatusCode> {
    credentials::change_password(
        &state.db,
        &state.revocations,
        &caller.user,
        &body.current_password,
        &body.new_password,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sign out everywhere: every browser session and JWT of the account ends (this one too), and
/// with them open consoles and live streams; with `revoke_tokens`, every access token as well.
#[utoipa::path(post, path = "/api/auth/sessions/revoke", tag = "auth", security(("bearer" = [])),
    request_body = SignOutEverywhereRequest,
    responses((status = 200, body = SignedOut),
        (status = 403, description = "Called with an access token", body = ErrorBody)))]
async fn sign_out_everywhere(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<SignOutEverywhereRequest>,
) -> Result<ApiJson<SignedOut>> {
    let (_, revoked) = credentials::sign_out_everywhere(
        &state.db,
        &state.revocations,
        &caller.user.id,
        body.revoke_tokens,
    )
    .await?;
    Ok(ApiJson(SignedOut {
        tokens_revoked: revoked.len(),
    }))
}

/// Create an account.
#[utoipa::path(post, path = "/api/auth/register", tag = "auth",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "Account created", body = Me),
        (status = 400, description = "Invalid field or CAPTCHA verification failed", body = ErrorBody),
        (status = 409, description = "Email or username taken", body = ErrorBody),
        (status = 429, description = "More than the per-IP limit in a minute", body = ErrorBody),
    ))]
async fn register(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<RegisterRequest>,
) -> Result<(StatusCode, ApiJson<Me>)> {
    captcha::verify(&state.http, &state.config, body.turnstile.as_deref(), ip).await?;
    let user = entry::register(
        &state.db,
        entry::NewAccount {
            email: body.email,
            username: body.username,
            password: body.password,
            is_admin: false,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, ApiJson(Me::from(&user))))
}

/// Exchange email and password for a JWT.
#[utoipa::path(post, path = "/api/auth/login", tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, body = LoginResponse),
        (status = 401, description = "Invalid email or password, or a two-factor code missing or wrong", body = ErrorBody),
        (status = 429, description = "More than the per-IP limit in a minute", body = ErrorBody),
    ))]
async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<ApiJson<LoginResponse>> {
    let from = entry::SignInFrom { via: "api", ip };
    let user = entry::authenticate(
        &state.db,
        &body.email,
        &body.password,
        body.code.as_deref(),
        from,
    )
    .await?;
    let (token, expires_at) = state
        .jwt
        .issue(&user.id, user.credentials_version)
        .map_err(|e| AppError::Service(domain::infra::error::ServiceError::internal(e)))?;
    Ok(ApiJson(LoginResponse { token, expires_at }))
}

/// The authenticated user's profile and balance.
#[utoipa::path(get, path = "/api/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = Me), (status = 401, body = ErrorBody)))]
async fn get_me(caller: Caller) -> ApiJson<Me> {
    ApiJson(Me::from(&caller.user))
}

/// Start turning two-factor sign-in on: a new key for an authenticator app (as text and as an
/// `otpauth://` URI for a QR code). Nothing changes at sign-in until `enable` confirms a code.
#[utoipa::path(post, path = "/api/auth/2fa/setup", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = TwoFactorSetup),
        (status = 409, description = "Two-factor sign-in is already on", body = ErrorBody)))]
async fn two_factor_setup(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<ApiJson<TwoFactorSetup>> {
    let e = totp::setup(&state.db, &state.config, &caller.user).await?;
    Ok(ApiJson(TwoFactorSetup {
        secret: e.secret,
        otpauth_uri: e.uri,
    }))
}

/// Turn two-factor sign-in on with a code from the app; answers ten one-time recovery codes,
/// shown this once.
#[utoipa::path(post, path = "/api/auth/2fa/enable", tag = "auth", security(("bearer" = [])),
    request_body = EnableTwoFactorRequest,
    responses((status = 200, body = RecoveryCodes),
        (status = 400, description = "The code does not match the key", body = ErrorBody),
        (status = 409, description = "Already on, or no set-up started", body = ErrorBody)))]
async fn two_factor_enable(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<EnableTwoFactorRequest>,
) -> Result<ApiJson<RecoveryCodes>> {
    let recovery_codes = totp::enable(&state.db, &caller.user, &body.code).await?;
    Ok(ApiJson(RecoveryCodes { recovery_codes }))
}

/// Turn two-factor sign-in off (the password and a current or recovery code).
#[utoipa::path(post, path = "/api/auth/2fa/disable", tag = "auth", security(("bearer" = [])),
    request_body = DisableTwoFactorRequest,
    responses((status = 204),
        (status = 401, description = "Wrong password or code", body = ErrorBody),
        (status = 409, description = "Two-factor sign-in is not on", body = ErrorBody)))]
async fn two_factor_disable(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<DisableTwoFactorRequest>,
) -> Result<StatusCode> {
    totp::disable(&state.db, &caller.user, &body.password, &body.code).await?;
    Ok(StatusCode::NO_CONTENT)
}
