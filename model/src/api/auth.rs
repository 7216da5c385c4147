//! Request and response shapes of `server::api::auth`.

use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ChangeEmailRequest {
    /// The new sign-in email.
    pub email: String,
    /// The account's password.
    pub password: String,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EmailChangePending {
    /// Where the confirmation link was sent.
    pub email: String,
    /// RFC 3339: the link works until then (24 hours).
    pub expires_at: String,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ConfirmEmailRequest {
    /// The `token` of the link that was mailed.
    pub token: String,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PasswordResetRequest {
    /// The account's sign-in email.
    #[cfg_attr(feature = "openapi", schema(example = "alice@example.com"))]
    pub email: String,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PasswordResetAsked {
    pub message: &'static str,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ResetPasswordRequest {
    /// The `token` of the link that was mailed.
    pub token: String,
    /// The new password (the same rules as signing up).
    pub password: String,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DeleteAccountRequest {
    /// The account's password.
    pub password: String,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    pub current_password: String,
    /// 8–256 characters, not the current one.
    pub new_password: String,
}

#[derive(Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SignOutEverywhereRequest {
    /// Also revoke every access token of the account.
    #[serde(default)]
    pub revoke_tokens: bool,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SignedOut {
    /// How many access tokens were revoked.
    pub tokens_revoked: usize,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegisterRequest {
    #[cfg_attr(feature = "openapi", schema(example = "you@example.com"))]
    pub email: String,
    /// 1–100 characters: letters, digits, `_`, `-`. Unique; teammates invite you by it.
    #[cfg_attr(feature = "openapi", schema(example = "jane_admin"))]
    pub username: String,
    /// 8–256 characters.
    pub password: String,
    /// Cloudflare Turnstile token; required only when the server has a Turnstile secret.
    #[serde(rename = "cf-turnstile-response")]
    #[cfg_attr(feature = "openapi", schema(rename = "cf-turnstile-response"))]
    pub turnstile: Option<String>,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
    /// With two-factor sign-in on: the 6-digit code from the authenticator app, or an unused
    /// recovery code. Without it such an account answers 401 asking for it.
    pub code: Option<String>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoginResponse {
    /// HS256 JWT, valid 24 hours.
    pub token: String,
    /// Unix seconds when the token expires.
    pub expires_at: i64,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EnableTwoFactorRequest {
    /// A current code from the authenticator app holding the key from `setup`.
    pub code: String,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DisableTwoFactorRequest {
    pub password: String,
    /// A current code from the app, or an unused recovery code.
    pub code: String,
}
