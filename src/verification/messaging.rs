//! Messages to applicants (one-time codes, magic links). Every message is
//! recorded in the `messages` table, which the desk shows; e-mail also leaves
//! through SMTP when a server is configured. SMS has no gateway built in: its
//! outbox is the delivery channel an operator (or a development setup) reads.

use crate::domain::now_ms;
use crate::store::Db;
use futures_util::future::BoxFuture;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Email,
    Sms,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Message {
    pub channel: Channel,
    pub to: String,
    pub subject: String,
    pub body: String,
}

/// How a message leaves. `Ok(true)`: handed to a real transport; `Ok(false)`:
/// kept in the outbox only.
pub trait Sender: Send + Sync {
    fn deliver<'a>(&'a self, m: &'a Message) -> BoxFuture<'a, anyhow::Result<bool>>;
}

/// Keeps messages in the outbox (the desk shows them).
pub struct OutboxOnly;

impl Sender for OutboxOnly {
    fn deliver<'a>(&'a self, _m: &'a Message) -> BoxFuture<'a, anyhow::Result<bool>> {
        Box::pin(async { Ok(false) })
    }
}

/// E-mail through an SMTP server (`smtp://host:port`, `smtps://…`, or
/// `smtp://…?tls=required` for STARTTLS; user:password in the URL).
pub struct Smtp {
    transport: lettre::AsyncSmtpTransport<lettre::Tokio1Executor>,
    from: lettre::message::Mailbox,
}

impl Smtp {
    pub fn new(url: &str, from: &str) -> anyhow::Result<Smtp> {
        let transport = lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::from_url(url)
            .map_err(|e| anyhow::anyhow!("the SMTP URL is not usable: {e}"))?
            .timeout(Some(Duration::from_secs(15)))
            .build();
        let from = from
            .parse()
            .map_err(|e| anyhow::anyhow!("the sender address '{from}' is not usable: {e}"))?;
        Ok(Smtp { transport, from })
    }
}

impl Sender for Smtp {
    fn deliver<'a>(&'a self, m: &'a Message) -> BoxFuture<'a, anyhow::Result<bool>> {
        Box::pin(async move {
            use lettre::AsyncTransport;
            let to: lettre::message::Mailbox =
                m.to.parse()
                    .map_err(|e| anyhow::anyhow!("'{}' is not a deliverable address: {e}", m.to))?;
            let email = lettre::Message::builder()
                .from(self.from.clone())
                .to(to)
                .subject(m.subject.clone())
                .header(lettre::message::header::ContentType::TEXT_PLAIN)
                .body(m.body.clone())?;
            self.transport.send(email).await?;
            Ok(true)
        })
    }
}

/// The senders of each channel.
#[derive(Clone)]
pub struct Postman {
    pub email: Arc<dyn Sender>,
    pub sms: Arc<dyn Sender>,
}

/// Where e-mail goes: an SMTP server, or (none configured) the desk outbox.
#[derive(Debug, Clone)]
pub struct MessagingSettings {
    pub smtp_url: Option<String>,
    pub from: String,
}

impl Postman {
    pub fn from_settings(s: &MessagingSettings) -> anyhow::Result<Postman> {
        let email: Arc<dyn Sender> = match &s.smtp_url {
            Some(url) => Arc::new(Smtp::new(url, &s.from)?),
            None => Arc::new(OutboxOnly),
        };
        Ok(Postman {
            email,
            sms: Arc::new(OutboxOnly),
        })
    }

    /// Records the message, then delivers it. A failed delivery is recorded
    /// as such and returned as an error.
    pub async fn send(
        &self,
        db: &Db,
        integrator_id: &str,
        m: &Message,
    ) -> Result<(), super::VerifyError> {
        let id = uuid::Uuid::new_v4().to_string();
        crate::store::messages::insert_sending(
            db,
            &id,
            integrator_id,
            m.channel.as_str(),
            &m.to,
            &m.subject,
            &m.body,
            now_ms(),
        )
        .await?;
        let sender = match m.channel {
            Channel::Email => &self.email,
            Channel::Sms => &self.sms,
        };
        let (state, error) = match sender.deliver(m).await {
            Ok(true) => ("sent", None),
            Ok(false) => ("outbox", None),
            Err(e) => ("failed", Some(format!("{e:#}"))),
        };
        // A delivered message held a live code or link: the copy kept here
        // would undo storing codes hashed, so only the outbox keeps text.
        let body = if state == "sent" {
            "(delivered; the text held a one-time secret and is not kept)"
        } else {
            m.body.as_str()
        };
        crate::store::messages::set_outcome(db, &id, state, error.as_deref(), body).await?;
        match error {
            Some(e) => {
                tracing::warn!(channel = m.channel.as_str(), error = %e, "message delivery failed");
                Err(super::VerifyError::Delivery(format!(
                    "the {} could not be delivered: {e}",
                    match m.channel {
                        Channel::Email => "e-mail",
                        Channel::Sms => "SMS",
                    }
                )))
            }
            None => Ok(()),
        }
    }
}

pub use crate::store::messages::{recent, MessageRow};
