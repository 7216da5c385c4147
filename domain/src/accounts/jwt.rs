//! JWTs for API clients (`POST /api/auth/login`), HS256, valid for `jwt_ttl_secs` (24 h).
//!
//! The key comes from `HANGAR_JWT_SECRET`, or else is generated once and kept in the database
//! (`server_secrets`), so replicas agree and restarts do not sign everyone out.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::infra::config::{Config, Secret};
use crate::infra::db::{self, Pool};

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    iat: i64,
    exp: i64,
    /// The account's credentials version at sign-in (`accounts::credentials`): a password change
    /// or "sign out everywhere" moves it on, and the token stops working.
    #[serde(default)]
    ver: i64,
}

/// What a valid JWT says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub user_id: String,
    /// The credentials version it was issued under; the caller compares it with the account's.
    pub version: i64,
}

/// Signs and checks JWTs.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    ttl_secs: i64,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKeys")
            .field("ttl_secs", &self.ttl_secs)
            .finish_non_exhaustive()
    }
}

impl JwtKeys {
    pub fn new(secret: &Secret, ttl_secs: u64) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret.expose().as_bytes()),
            decoding: DecodingKey::from_secret(secret.expose().as_bytes()),
            ttl_secs: ttl_secs as i64,
        }
    }

    /// Loads the configured key or the one stored in the database (creating it the first time).
    pub async fn load(config: &Config, pool: &Pool) -> anyhow::Result<Self> {
        let secret = match &config.jwt_secret {
            Some(s) => s.clone(),
            None => Secret::new(db::stored_secret(pool, "jwt_hs256").await?),
        };
        Ok(Self::new(&secret, config.jwt_ttl_secs))
    }

    /// A token for `user_id` under credentials `version`, and when it expires (unix seconds).
    pub fn issue(&self, user_id: &str, version: i64) -> anyhow::Result<(String, i64)> {
        let iat = db::now_ms() / 1000;
        let exp = iat + self.ttl_secs;
        let claims = Claims {
            sub: user_id.to_owned(),
            iat,
            exp,
            ver: version,
        };
        Ok((
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?,
            exp,
        ))
    }

    /// The user id and credentials version in a valid, unexpired token.
    pub fn verify(&self, token: &str) -> Option<Verified> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .ok()
            .map(|d| Verified {
                user_id: d.claims.sub,
                version: d.claims.ver,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_reject_tampering_and_expiry() {
        let keys = JwtKeys::new(&Secret::new("k1"), 3600);
        let (token, exp) = keys.issue("abc", 3).unwrap();
        assert!(exp > db::now_ms() / 1000);
        assert_eq!(
            keys.verify(&token),
            Some(Verified {
                user_id: "abc".into(),
                version: 3
            })
        );
        let other = JwtKeys::new(&Secret::new("k2"), 3600);
        assert_eq!(other.verify(&token), None);
        let expired = JwtKeys {
            ttl_secs: -10,
            ..keys.clone()
        };
        let (old, _) = expired.issue("abc", 0).unwrap();
        assert_eq!(keys.verify(&old), None);
        assert_eq!(keys.verify("not.a.jwt"), None);
    }
}
