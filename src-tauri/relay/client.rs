//! The desktop's side of the pull API: an outbound HTTPS client with the relay key, and errors a
//! merchant can act on (wrong address, TLS, wrong key, no answer).

use std::time::Duration;

use serde::de::DeserializeOwned;

use super::keys::RelayKey;
use super::wire::{self, Ack, Acked, PullQuery, Pulled, RelayEvent, SelfTest};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A quick request (ack, self test, health): no long poll in it.
const QUICK_TIMEOUT: Duration = Duration::from_secs(15);

/// Why talking to the relay failed, in words for the merchant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelayError {
    #[error("the relay's address could not be found (DNS): check the relay URL in Settings")]
    Dns,
    #[error("could not connect to the relay: check that it is running and that the URL and port are right")]
    Connect,
    #[error("the secure connection (TLS) to the relay failed: check that the relay URL starts with https:// and its certificate is valid ({0})")]
    Tls(String),
    #[error("the relay refused the key (401): the key in Settings must be the relay's MALIPO_RELAY_KEY")]
    WrongKey,
    #[error("the relay did not answer in time")]
    Timeout,
    #[error("the relay is limiting requests (429); trying again shortly")]
    RateLimited,
    #[error("the relay answered HTTP {0}")]
    Status(u16),
    #[error("the relay's answer could not be read: {0}")]
    Protocol(String),
}

/// Sorts a transport failure by its whole cause chain (reqwest wraps hyper wraps io/rustls errors).
pub fn classify(is_timeout: bool, is_connect: bool, causes: &str) -> RelayError {
    let causes = causes.to_ascii_lowercase();
    if is_timeout || causes.contains("timed out") {
        RelayError::Timeout
    } else if causes.contains("dns error") || causes.contains("failed to lookup address") || causes.contains("name or service not known") {
        RelayError::Dns
    } else if causes.contains("certificate") || causes.contains("tls") || causes.contains("handshake") || causes.contains("invalidcontenttype") {
        RelayError::Tls(causes.rsplit(": ").next().unwrap_or_default().to_string())
    } else if is_connect {
        RelayError::Connect
    } else {
        RelayError::Protocol(causes)
    }
}

impl From<reqwest::Error> for RelayError {
    fn from(e: reqwest::Error) -> Self {
        let mut causes = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            causes.push_str(": ");
            causes.push_str(&s.to_string());
            source = s.source();
        }
        classify(e.is_timeout(), e.is_connect(), &causes)
    }
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder().connect_timeout(CONNECT_TIMEOUT).build().expect("HTTP client")
}

/// `GET /healthz` on the relay, without the key: is it there at all?
pub async fn check_health(base: &str) -> Result<(), RelayError> {
    let request = http_client().get(format!("{}/healthz", base.trim_end_matches('/'))).timeout(QUICK_TIMEOUT);
    let _: serde_json::Value = RelayClient::answer(request).await?;
    Ok(())
}

#[derive(Clone)]
pub struct RelayClient {
    http: reqwest::Client,
    base: String,
    key: RelayKey,
}

impl RelayClient {
    pub fn new(base: &str, key: RelayKey) -> Self {
        RelayClient { http: http_client(), base: base.trim_end_matches('/').to_string(), key }
    }

    pub fn key(&self) -> &RelayKey {
        &self.key
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    async fn answer<T: DeserializeOwned>(request: reqwest::RequestBuilder) -> Result<T, RelayError> {
        let response = request.send().await?;
        match response.status().as_u16() {
            200..=299 => response.json().await.map_err(|e| RelayError::Protocol(e.to_string())),
            401 => Err(RelayError::WrongKey),
            429 => Err(RelayError::RateLimited),
            code => Err(RelayError::Status(code)),
        }
    }


    /// Waits up to `wait` for events (long poll); self-test events only when `self_test`.
    pub async fn pull(&self, wait: Duration, self_test: bool) -> Result<Vec<RelayEvent>, RelayError> {
        let query = PullQuery { wait: wait.as_secs(), test: self_test };
        let request = self
            .http
            .get(format!("{}{}", self.base, wire::EVENTS_PATH))
            .query(&query)
            .header(reqwest::header::AUTHORIZATION, self.key.bearer())
            .timeout(wait + QUICK_TIMEOUT);
        Ok(Self::answer::<Pulled>(request).await?.events)
    }

    /// Tells the relay these events are stored on this side; it forgets their content.
    pub async fn ack(&self, ids: Vec<i64>) -> Result<usize, RelayError> {
        let request = self
            .http
            .post(format!("{}{}", self.base, wire::ACK_PATH))
            .header(reqwest::header::AUTHORIZATION, self.key.bearer())
            .json(&Ack { ids })
            .timeout(QUICK_TIMEOUT);
        Ok(Self::answer::<Acked>(request).await?.acked)
    }

    /// Asks the relay to queue a self-test event with this nonce.
    pub async fn enqueue_self_test(&self, nonce: &str) -> Result<(), RelayError> {
        let request = self
            .http
            .post(format!("{}{}", self.base, wire::TEST_PATH))
            .header(reqwest::header::AUTHORIZATION, self.key.bearer())
            .json(&SelfTest { nonce: nonce.to_string() })
            .timeout(QUICK_TIMEOUT);
        let _: serde_json::Value = Self::answer(request).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_failures_are_told_apart() {
        assert_eq!(classify(false, true, "error sending request: client error (Connect): dns error: failed to lookup address information: Name or service not known"), RelayError::Dns);
        assert_eq!(classify(false, true, "error sending request: client error (Connect): tcp connect error: Connection refused (os error 111)"), RelayError::Connect);
        assert!(matches!(classify(false, true, "error sending request: client error (Connect): invalid peer certificate: UnknownIssuer"), RelayError::Tls(_)));
        assert!(matches!(classify(false, true, "error sending request: received corrupt message of type InvalidContentType"), RelayError::Tls(_)));
        assert_eq!(classify(true, false, "operation timed out"), RelayError::Timeout);
        assert!(RelayError::WrongKey.to_string().contains("MALIPO_RELAY_KEY"));
    }
}
