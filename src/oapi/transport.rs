//! How signed requests reach the API. The client only knows this trait, so
//! the embedded simulator can be plugged in at the CLI edge without the client
//! knowing it talks to one.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;

use super::credentials::{Credentials, CredentialsError};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A failure to exchange a request and a response (no HTTP status received).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct TransportError(pub String);

impl TransportError {
    /// Whether the endpoint's host name did not resolve: sending again will
    /// not help, so the client says so at once.
    pub fn unresolved(&self) -> bool {
        let m = self.0.to_ascii_lowercase();
        m.contains("dns error")
            || m.contains("failed to lookup address")
            || m.contains("name or service not known")
            || m.contains("temporary failure in name resolution")
            || m.contains("no address associated with hostname")
    }
}

/// Sends one HTTP request and returns the response.
pub trait Transport: Send + Sync {
    fn send(
        &self,
        request: http::Request<Bytes>,
    ) -> BoxFuture<'_, Result<http::Response<Bytes>, TransportError>>;
}

/// HTTPS (or HTTP, for a local endpoint) through reqwest with rustls.
pub struct HttpTransport {
    client: reqwest::Client,
}

impl HttpTransport {
    /// Builds the HTTP client: the x509 client certificate when one is
    /// configured (it goes on the TLS connection; requests are still signed),
    /// TLS 1.2 at least, and certificate checks unless `tls_skip_verify`.
    pub fn new(credentials: &Credentials) -> Result<HttpTransport, CredentialsError> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(15))
            .timeout(Duration::from_secs(120))
            .min_tls_version(reqwest::tls::Version::TLS_1_2)
            .danger_accept_invalid_certs(credentials.tls_skip_verify.value);
        if let (Some(cert), Some(key)) = (&credentials.x509_cert, &credentials.x509_key) {
            let mut pem = cert.value.load()?;
            pem.push(b'\n');
            pem.extend(key.value.load()?);
            let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
                CredentialsError::Invalid(format!(
                    "the x509 client certificate ({}) and key ({}) could not be used: {e}",
                    cert.source, key.source
                ))
            })?;
            builder = builder.identity(identity);
        }
        let client = builder
            .build()
            .map_err(|e| CredentialsError::Invalid(format!("HTTP client: {e}")))?;
        Ok(HttpTransport { client })
    }
}

impl HttpTransport {
    /// Plain HTTP with short timeouts and no client certificate: the
    /// metadata service of the VM osci runs on.
    pub fn metadata() -> Result<HttpTransport, TransportError> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| TransportError(format!("HTTP client: {e}")))?;
        Ok(HttpTransport { client })
    }
}

impl Transport for HttpTransport {
    fn send(
        &self,
        request: http::Request<Bytes>,
    ) -> BoxFuture<'_, Result<http::Response<Bytes>, TransportError>> {
        Box::pin(async move {
            let request = reqwest::Request::try_from(request)
                .map_err(|e| TransportError(format!("bad request: {e}")))?;
            let response = self
                .client
                .execute(request)
                .await
                .map_err(|e| TransportError(describe(&e)))?;
            let mut builder = http::Response::builder().status(response.status());
            for (name, value) in response.headers() {
                builder = builder.header(name, value);
            }
            let body = response
                .bytes()
                .await
                .map_err(|e| TransportError(describe(&e)))?;
            builder
                .body(body)
                .map_err(|e| TransportError(format!("bad response: {e}")))
        })
    }
}

/// reqwest's top-level message hides the cause ("error sending request");
/// the chain says what happened (connection refused, certificate, timeout).
fn describe(e: &reqwest::Error) -> String {
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}
