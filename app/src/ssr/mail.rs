//! Outgoing mail with `lettre` over SMTP (`smtp_url`). Messages are sent by `mail` jobs, so a
//! mail server that is down delays a message (the job retries with backoff) instead of failing the
//! action that caused it. Without `smtp_url`, messages are logged and dropped.

use lettre::{
    message::{header::ContentType, Mailbox},
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
};

use super::{
    config::Config,
    db::Pool,
    error::{ServiceError, ServiceResult},
};
use crate::money::usd4;

/// Sends one plain-text message to every address in `to`.
pub async fn send(config: &Config, to: &[String], subject: &str, body: &str) -> ServiceResult<()> {
    let Some(url) = &config.smtp_url else {
        tracing::info!(?to, subject, "mail not sent: smtp_url is not set");
        return Ok(());
    };
    let from: Mailbox = config
        .mail_from
        .parse()
        .map_err(|e| ServiceError::internal(anyhow::anyhow!("mail_from is not an address: {e}")))?;
    let mut builder = Message::builder()
        .from(from)
        .subject(subject)
        .header(ContentType::TEXT_PLAIN);
    for addr in to {
        match addr.parse::<Mailbox>() {
            Ok(mb) => builder = builder.to(mb),
            Err(e) => tracing::warn!(addr, error = %e, "skipping an address lettre cannot parse"),
        }
    }
    let message = builder
        .body(body.to_owned())
        .map_err(|e| ServiceError::internal(anyhow::anyhow!("cannot build message: {e}")))?;
    let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose())
        .map_err(|e| ServiceError::internal(anyhow::anyhow!("smtp_url: {e}")))?
        .build();
    transport
        .send(message)
        .await
        .map_err(|e| ServiceError::internal(anyhow::anyhow!("SMTP: {e}")))?;
    Ok(())
}

/// The account address and every low-balance alert address of a user.
pub async fn recipients(db: &Pool, user_id: &str) -> ServiceResult<Vec<String>> {
    let mut to: Vec<String> = sqlx::query_scalar("SELECT email FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_all(db)
        .await?;
    let extra: Vec<String> = sqlx::query_scalar(
        "SELECT email FROM notify_emails WHERE user_id = $1 ORDER BY created_at",
    )
    .bind(user_id)
    .fetch_all(db)
    .await?;
    for e in extra {
        if !to.contains(&e) {
            to.push(e);
        }
    }
    Ok(to)
}

/// Writes and sends one of the balance notices (`low_balance`, `exhausted`, `stopped`) with the
/// user's figures as they are when it is sent.
pub async fn send_balance_notice(
    db: &Pool,
    config: &Config,
    user_id: &str,
    template: &str,
) -> ServiceResult<()> {
    let to = recipients(db, user_id).await?;
    if to.is_empty() {
        return Ok(());
    }
    let balance = super::accounts::balance(db, user_id).await?;
    let hourly = super::compute::meter::hourly_usage(db, user_id).await?;
    let billing = format!("{}/billing", config.public_url);
    let (subject, body) = match template {
        "low_balance" => {
            let hours = if hourly > 0 { balance as f64 / hourly as f64 } else { f64::INFINITY };
            (
                "Your Hangar balance is running low".to_owned(),
                format!(
                    "Your balance is ${} and your running machines cost ${} per hour, which lasts about {:.1} more hours.\n\n\
                     Top up at {billing} to keep them running. When the balance reaches zero, running machines are \
                     stopped after {} minutes (they are not deleted).\n",
                    usd4(balance),
                    usd4(hourly),
                    hours,
                    config.balance_grace_minutes
                ),
            )
        }
        "exhausted" => (
            "Your Hangar balance has run out".to_owned(),
            format!(
                "Your balance has reached $0.0000 while machines are running.\n\n\
                 They will be stopped in {} minutes unless you top up at {billing}. Stopped machines keep their \
                 disks and snapshots; you can start them again after topping up.\n",
                config.balance_grace_minutes
            ),
        ),
        "stopped" => (
            "Your Hangar machines were stopped".to_owned(),
            format!(
                "Your balance ran out, so your running machines have been stopped. They were not deleted.\n\n\
                 Top up at {billing} and start them again from the portal or the API.\n"
            ),
        ),
        other => return Err(ServiceError::internal(anyhow::anyhow!("unknown mail template {other}"))),
    };
    send(config, &to, &subject, &body).await
}
