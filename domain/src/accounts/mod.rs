//! Accounts: users (registration, passwords, balances as cached sums), credentials a person can
//! take back (password change, sign-out everywhere), access tokens, the JWTs
//! the API issues, CAPTCHA checks at registration, and pools — teams of users with roles, which
//! the marketplace shares rentals through and every access check consults. Pools live here, not
//! in the marketplace, because registration makes every user a default pool and the rooms above
//! (market, compute) scope access by membership.

pub mod account;
pub mod captcha;
pub mod credentials;
pub mod entry;
pub mod jwt;
pub mod keys;
pub mod pools;
pub mod recovery;
pub mod sessions;
pub mod tokens;
pub mod totp;
pub mod users;
