//! The registration CAPTCHA: Cloudflare Turnstile, checked only when a secret is configured.

use serde::Deserialize;

use crate::infra::config::Config;
use crate::infra::error::{ServiceError, ServiceResult};

#[derive(Deserialize)]
struct SiteVerify {
    success: bool,
}

/// Verifies a Turnstile token with the configured siteverify endpoint. Does nothing when no
/// secret is configured (the check is off, as docs/OPERATING.md says). A missing token, a rejected token and
/// an unreachable verifier all refuse the registration: failing open would defeat the check.
pub async fn verify(
    http: &reqwest::Client,
    config: &Config,
    token: Option<&str>,
    remote_ip: Option<std::net::IpAddr>,
) -> ServiceResult<()> {
    let Some(secret) = &config.turnstile_secret else {
        return Ok(());
    };
    let token = token
        .map(str::trim)
        .filter(|t| !t.is_empty() && t.len() <= 2048);
    let Some(token) = token else {
        return Err(ServiceError::Captcha);
    };
    let mut form = vec![
        ("secret", secret.expose().to_owned()),
        ("response", token.to_owned()),
    ];
    if let Some(ip) = remote_ip {
        form.push(("remoteip", ip.to_string()));
    }
    let answer = http
        .post(&config.turnstile_verify_url)
        .form(&form)
        .timeout(std::time::Duration::from_secs(10))
        .send()
        .await
        .and_then(|r| r.error_for_status());
    match answer {
        Ok(resp) => match resp.json::<SiteVerify>().await {
            Ok(v) if v.success => Ok(()),
            Ok(_) => Err(ServiceError::Captcha),
            Err(e) => {
                tracing::warn!(error = %e, "Turnstile answered something unexpected");
                Err(ServiceError::Captcha)
            }
        },
        Err(e) => {
            tracing::warn!(error = %e, "Turnstile verification request failed");
            Err(ServiceError::Captcha)
        }
    }
}
