//! Balance notices: the emails the meter's running-out rules send (low balance, balance exhausted,
//! machines stopped), written with the user's figures as they are when the mail job runs, and sent
//! to the account address and every notify address.

use std::str::FromStr;

use model::money::usd4;

use crate::accounts::users;
use crate::infra::config::Config;
use crate::infra::db::Pool;
use crate::infra::error::ServiceResult;
use crate::infra::mail;
use crate::money::billing;

/// Which notice; its text form is the mail job's `template`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// The balance covers less than `low_balance_runway_hours` of current usage.
    LowBalance,
    /// The balance reached zero while machines run.
    Exhausted,
    /// The grace period ended and the running machines were stopped.
    Stopped,
    /// The balance stayed out for `stopped_retention_days`: the stopped machines were deleted.
    Deleted,
    /// The operators suspended the account (the reason is read when the mail is written).
    Suspended,
    /// The operators lifted the suspension.
    Reinstated,
}

impl Notice {
    pub const fn as_str(self) -> &'static str {
        match self {
            Notice::LowBalance => "low_balance",
            Notice::Exhausted => "exhausted",
            Notice::Stopped => "stopped",
            Notice::Deleted => "deleted",
            Notice::Suspended => "suspended",
            Notice::Reinstated => "reinstated",
        }
    }
}

impl FromStr for Notice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "low_balance" => Ok(Notice::LowBalance),
            "exhausted" => Ok(Notice::Exhausted),
            "stopped" => Ok(Notice::Stopped),
            "deleted" => Ok(Notice::Deleted),
            "suspended" => Ok(Notice::Suspended),
            "reinstated" => Ok(Notice::Reinstated),
            other => Err(format!("unknown mail template {other}")),
        }
    }
}

/// Writes and sends `notice` to the user.
pub async fn send(db: &Pool, config: &Config, user_id: &str, notice: Notice) -> ServiceResult<()> {
    let to = billing::recipients(db, user_id).await?;
    if to.is_empty() {
        return Ok(());
    }
    let balance = users::balance(db, user_id).await?;
    let hourly = hourly_usage(db, user_id).await?;
    let (subject, mut body) = write(config, notice, balance, hourly);
    if notice == Notice::Suspended {
        let reason = users::get(db, user_id).await?.suspended;
        // Lifted before the mail went out: nothing to tell any more.
        let Some(reason) = reason else { return Ok(()) };
        body = body.replace("{reason}", &reason);
    }
    mail::send(config, &to, subject, &body).await
}

/// The subject and body of a notice for a balance and an hourly usage (µUSD).
fn write(config: &Config, notice: Notice, balance: i64, hourly: i64) -> (&'static str, String) {
    let billing = format!("{}/billing", config.public_url);
    let grace = config.balance_grace_minutes;
    let retention = config.stopped_retention_days;
    match notice {
        Notice::LowBalance => {
            let hours = if hourly > 0 { balance as f64 / hourly as f64 } else { f64::INFINITY };
            (
                "Your Hangar balance is running low",
                format!(
                    "Your balance is ${} and your running machines cost ${} per hour, which lasts about {hours:.1} more hours.\n\n\
                     Top up at {billing} to keep them running. When the balance reaches zero, running machines are \
                     stopped after {grace} minutes (they are not deleted).\n",
                    usd4(balance),
                    usd4(hourly),
                ),
            )
        }
        Notice::Exhausted => (
            "Your Hangar balance has run out",
            format!(
                "Your balance has reached $0.0000 while you have machines.\n\n\
                 Running machines will be stopped in {grace} minutes unless you top up at {billing}. Stopped machines \
                 keep their disks and snapshots; you can start them again after topping up. If the balance is not \
                 topped up within {retention} days, stopped machines are deleted with their disks.\n"
            ),
        ),
        Notice::Stopped => (
            "Your Hangar machines were stopped",
            format!(
                "Your balance ran out, so your running machines have been stopped. They were not deleted.\n\n\
                 Top up at {billing} and start them again from the portal or the API. Stopped machines are \
                 deleted {retention} days after the balance ran out unless it is topped up.\n"
            ),
        ),
        Notice::Suspended => (
            "Your Hangar account is suspended",
            "The platform's operators suspended your account: {reason}.\n\n\
             While it is suspended you cannot sign in or use your API tokens, and your running machines \
             have been stopped (they were not deleted). Reply to this mail or contact support to have it \
             reinstated.\n"
                .to_owned(),
        ),
        Notice::Reinstated => (
            "Your Hangar account is open again",
            format!(
                "The platform's operators lifted the suspension of your account. You can sign in again at \
                 {} and start your machines.\n",
                config.public_url
            ),
        ),
        Notice::Deleted => (
            "Your stopped Hangar machines were deleted",
            format!(
                "Your balance ran out more than {retention} days ago and was not topped up, so your stopped \
                 machines and their disks have been deleted.\n\n\
                 Your account stays open; top up at {billing} to create new machines.\n"
            ),
        ),
    }
}

/// What a user's billable instances cost per hour (µUSD).
async fn hourly_usage(db: &Pool, user_id: &str) -> ServiceResult<i64> {
    Ok(sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(metered_rate_micros), 0) AS BIGINT) FROM instances WHERE user_id = $1 AND metered_until IS NOT NULL",
    )
    .bind(user_id)
    .fetch_one(db)
    .await?)
}
