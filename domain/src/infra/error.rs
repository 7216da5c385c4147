//! The domain layer's error: what went wrong in words a caller can act on. The HTTP edge
//! (`server::http::error`) and the portal's server functions each turn it into their own shape.

/// A domain failure. Messages are short and capitalised; `Internal` carries context for the log
/// and is never shown to a caller.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The input is malformed or breaks a rule (400).
    #[error("{0}")]
    Invalid(String),
    /// No valid credentials (401).
    #[error("{0}")]
    Unauthorized(&'static str),
    /// Authenticated, but not allowed (403).
    #[error("{0}")]
    Forbidden(&'static str),
    /// The thing does not exist *for this caller* (404): foreign ids look exactly like missing ones.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request conflicts with the current state (409).
    #[error("{0}")]
    Conflict(String),
    /// Not enough prepaid balance (402). Amounts in micro-USD.
    #[error("{message}")]
    InsufficientBalance {
        balance: i64,
        required: i64,
        message: String,
    },
    /// A body or file larger than the documented limit (413).
    #[error("{0}")]
    TooLarge(String),
    /// A documented per-user limit is reached (429).
    #[error("{0}")]
    TooMany(String),
    /// The account's quota would be passed (403): the message names the limit and how to ask
    /// for more.
    #[error("{0}")]
    QuotaExceeded(String),
    /// The account is suspended by the platform's operators (403); the text says why.
    #[error("This account is suspended: {0}. Contact support to have it reinstated.")]
    Suspended(String),
    /// The CAPTCHA token was missing or rejected (400, the `/api` dialect's message).
    #[error("CAPTCHA verification failed")]
    Captcha,
    /// The database cannot be reached right now (503): nothing was written, and trying again
    /// shortly is the right move.
    #[error("The database is unavailable right now; nothing was changed. Try again in a moment.")]
    Unavailable,
    /// The payment provider cannot be reached or did not answer in time (503): nothing was
    /// charged or recorded, and trying again shortly is the right move. An answer from the
    /// provider that refuses the request is `Internal` (a misconfiguration to log), not this.
    #[error("The payment provider cannot be reached right now; nothing was charged. Try again in a moment.")]
    ProviderUnreachable,
    /// A dependency (database, driver, payment provider) failed; logged, answered generically.
    #[error("Internal error")]
    Internal(#[source] anyhow::Error),
}

pub type ServiceResult<T> = Result<T, ServiceError>;

impl ServiceError {
    pub fn invalid(msg: impl Into<String>) -> Self {
        Self::Invalid(msg.into())
    }

    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        Self::Internal(err.into())
    }

    /// The HTTP status this failure answers with, on the JSON APIs and in the portal alike: a
    /// caller's mistake is a 4xx, only `Internal` is a 500.
    pub fn status(&self) -> http::StatusCode {
        use http::StatusCode;
        match self {
            ServiceError::Invalid(_) | ServiceError::Captcha => StatusCode::BAD_REQUEST,
            ServiceError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ServiceError::Forbidden(_)
            | ServiceError::QuotaExceeded(_)
            | ServiceError::Suspended(_) => StatusCode::FORBIDDEN,
            ServiceError::NotFound(_) => StatusCode::NOT_FOUND,
            ServiceError::Conflict(_) => StatusCode::CONFLICT,
            ServiceError::InsufficientBalance { .. } => StatusCode::PAYMENT_REQUIRED,
            ServiceError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ServiceError::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
            ServiceError::Unavailable | ServiceError::ProviderUnreachable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ServiceError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<sqlx::Error> for ServiceError {
    fn from(err: sqlx::Error) -> Self {
        // The one place constraint violations become caller errors. Services that know which
        // constraint a write can break check for it first and give a precise message; this is
        // the backstop for races between that check and the write.
        // No connection to be had (the server is down or unreachable, or the pool is closed),
        // or the connection broke (a reset, or a host that accepts and hangs up, which sqlx
        // reports as a protocol error while connecting — found by the outage test): the
        // transaction did not commit, so the caller may simply try again.
        if matches!(
            err,
            sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::Io(_)
                | sqlx::Error::Protocol(_)
                | sqlx::Error::Tls(_)
        ) {
            tracing::warn!(error = %err, "database unavailable");
            return Self::Unavailable;
        }
        if is_unique_violation(&err) {
            return Self::Conflict("Already exists".into());
        }
        if err
            .as_database_error()
            .is_some_and(|e| e.is_foreign_key_violation())
        {
            return Self::Invalid("Refers to something that does not exist".into());
        }
        Self::Internal(err.into())
    }
}

/// Whether an error is a unique-constraint violation (same on both databases).
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|e| e.is_unique_violation())
}

impl From<tokio::task::JoinError> for ServiceError {
    fn from(err: tokio::task::JoinError) -> Self {
        Self::Internal(err.into())
    }
}
