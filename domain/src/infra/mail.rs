//! Outgoing mail with `lettre` over SMTP (`smtp_url`). Sending only: what to say and to whom is decided by the room that writes the message (balance
//! notices: `compute::notices`). Messages are sent by `mail` jobs, so a
//! mail server that is down delays a message (the job retries with backoff) instead of failing the
//! action that caused it. Without `smtp_url`, messages are logged and dropped.

use lettre::{
    message::{header::ContentType, Mailbox},
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
};

use crate::infra::config::Config;
use crate::infra::error::{ServiceError, ServiceResult};

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
