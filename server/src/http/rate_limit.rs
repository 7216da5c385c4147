//! Per-client-IP rate limits (the `/api` dialect: login and register, 10 requests a minute).
//!
//! A token bucket per (IP, route): `per_minute` tokens, refilled continuously. Limits are kept in
//! memory per replica; behind a load balancer with N replicas a client can reach N × the limit,
//! which is documented in docs/OPERATING.md (a shared store would add a dependency the rest doesn't need).

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
    time::Instant,
};

use axum::{
    extract::{ConnectInfo, Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::error::AppError;

#[derive(Debug)]
pub struct RateLimiter {
    per_minute: f64,
    trust_forwarded_for: bool,
    /// Paths that are limited; each has its own budget.
    paths: Vec<&'static str>,
    buckets: Mutex<HashMap<(IpAddr, &'static str), Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    pub fn new(per_minute: u32, trust_forwarded_for: bool, paths: Vec<&'static str>) -> Arc<Self> {
        Arc::new(Self {
            per_minute: f64::from(per_minute),
            trust_forwarded_for,
            paths,
            buckets: Mutex::new(HashMap::new()),
        })
    }

    /// Takes one token for `(ip, path)`; on refusal, the seconds until one is available.
    fn take(&self, ip: IpAddr, path: &'static str, now: Instant) -> Result<(), u64> {
        let rate_per_sec = self.per_minute / 60.0;
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() > 100_000 {
            // Forget clients whose bucket has refilled: they are indistinguishable from new ones.
            buckets.retain(|_, b| {
                b.tokens + now.duration_since(b.at).as_secs_f64() * rate_per_sec < self.per_minute
            });
        }
        let bucket = buckets.entry((ip, path)).or_insert(Bucket {
            tokens: self.per_minute,
            at: now,
        });
        let refilled = (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * rate_per_sec)
            .min(self.per_minute);
        if refilled >= 1.0 {
            *bucket = Bucket {
                tokens: refilled - 1.0,
                at: now,
            };
            Ok(())
        } else {
            *bucket = Bucket {
                tokens: refilled,
                at: now,
            };
            Err(((1.0 - refilled) / rate_per_sec).ceil().max(1.0) as u64)
        }
    }

    fn client_ip(&self, req: &Request) -> Option<IpAddr> {
        if self.trust_forwarded_for {
            let forwarded = req
                .headers()
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit(',').next())
                .and_then(|ip| ip.trim().parse().ok());
            if forwarded.is_some() {
                return forwarded;
            }
        }
        req.extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip())
    }
}

/// Middleware: refuses with 429 and `Retry-After` when the client's budget for a limited path is
/// spent. Requests to other paths pass untouched.
pub async fn limit(State(limiter): State<Arc<RateLimiter>>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let Some(limited) = limiter.paths.iter().find(|p| **p == path).copied() else {
        return next.run(req).await;
    };
    if let Some(ip) = limiter.client_ip(&req) {
        if let Err(retry_after) = limiter.take(ip, limited, Instant::now()) {
            return AppError::TooManyRequests { retry_after }.into_response();
        }
    }
    next.run(req).await
}

/// The peer address of the connection, when the server was started with connect info.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| addr.ip()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn allows_the_budget_then_refuses_until_refilled() {
        let limiter = RateLimiter::new(10, false, vec!["/x"]);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..10 {
            assert!(limiter.take(ip, "/x", t0).is_ok());
        }
        let retry = limiter.take(ip, "/x", t0).unwrap_err();
        assert_eq!(retry, 6, "one token every 6 s at 10/min");
        // Another client and another path have their own budgets.
        assert!(limiter.take("10.0.0.2".parse().unwrap(), "/x", t0).is_ok());
        assert!(limiter.take(ip, "/y", t0).is_ok());
        assert!(limiter.take(ip, "/x", t0 + Duration::from_secs(6)).is_ok());
        assert!(limiter.take(ip, "/x", t0 + Duration::from_secs(6)).is_err());
    }
}
