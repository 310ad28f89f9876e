//! The API client: serialise once, sign, send, retry, decode.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tracing::Instrument;

use super::Secret;
use super::error::{ApiError, Error, ErrorResponse};
use super::limiter::RateLimiter;
use super::operation::{Operation, Paginated};
use super::retry::{RetryPolicy, Verdict, classify};
use super::sign::{Flavour, SigningInput, format_date, sign};
use super::transport::Transport;

/// The content type osci sends and signs (the same as osc-sdk-python).
pub const CONTENT_TYPE: &str = "application/json; charset=utf-8";

/// Everything a client needs besides its transport.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Base URL without trailing slash, e.g. `https://api.eu-west-2.outscale.com/api/v1`.
    pub base_url: String,
    pub region: String,
    pub access_key: Option<String>,
    pub secret_key: Option<Secret>,
    pub flavour: Flavour,
    /// The service name in the signature scope (`api`, as the Python SDK signs).
    pub service: String,
    pub retry: RetryPolicy,
    /// Requests per second; `None` for no client-side limit.
    pub rate_limit: Option<f64>,
    pub user_agent: String,
}

impl ClientConfig {
    pub fn new(base_url: impl Into<String>, region: impl Into<String>) -> ClientConfig {
        ClientConfig {
            base_url: base_url.into(),
            region: region.into(),
            access_key: None,
            secret_key: None,
            flavour: Flavour::Osc4,
            service: "api".into(),
            retry: RetryPolicy::default(),
            rate_limit: Some(5.0),
            user_agent: format!("osci/{}", env!("CARGO_PKG_VERSION")),
        }
    }

    pub fn with_keys(mut self, access_key: impl Into<String>, secret_key: Secret) -> Self {
        self.access_key = Some(access_key.into());
        self.secret_key = Some(secret_key);
        self
    }
}

struct Inner {
    config: ClientConfig,
    transport: Arc<dyn Transport>,
    limiter: Option<RateLimiter>,
    /// `host[:port]` exactly as it goes in the Host header.
    host: String,
    path_prefix: String,
}

/// A cheap-to-clone handle; clones share the rate limit.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl Client {
    pub fn new(config: ClientConfig, transport: Arc<dyn Transport>) -> Result<Client, String> {
        let url = reqwest::Url::parse(&config.base_url)
            .map_err(|e| format!("endpoint `{}`: {e}", config.base_url))?;
        let host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            (None, _) => return Err(format!("endpoint `{}` has no host", config.base_url)),
        };
        let path_prefix = url.path().trim_end_matches('/').to_string();
        let limiter = config.rate_limit.filter(|r| *r > 0.0).map(|r| {
            // A burst of one second's worth, as the SDKs' 5-per-second window.
            RateLimiter::new(r, r.ceil() as u32)
        });
        Ok(Client {
            inner: Arc::new(Inner {
                config,
                transport,
                limiter,
                host,
                path_prefix,
            }),
        })
    }

    pub fn region(&self) -> &str {
        &self.inner.config.region
    }

    pub fn base_url(&self) -> &str {
        &self.inner.config.base_url
    }

    /// Calls one operation, retrying as [`classify`] allows.
    pub async fn call<O: Operation>(&self, request: &O) -> Result<O::Response, Error> {
        let body = serde_json::to_vec(request).map_err(|e| Error::Encode {
            operation: O::NAME,
            message: e.to_string(),
        })?;
        let body = Bytes::from(body);
        let policy = &self.inner.config.retry;
        let span = tracing::debug_span!("oapi", operation = O::NAME);
        async {
            let mut attempt = 0;
            let mut unanswered = false;
            loop {
                let mut outcome = self.attempt::<O>(&body).await;
                let (status, throttled, retry_after) = match &mut outcome {
                    Ok(_) => return outcome,
                    Err(AttemptError::Api(e, retry_after)) => {
                        e.after_unanswered = unanswered;
                        (Some(e.status), e.is_throttling(), *retry_after)
                    }
                    Err(AttemptError::Transport(_)) => (None, false, None),
                    Err(AttemptError::Final(_)) => (None, false, None),
                };
                // A lost answer, or a server error after the call may have
                // run: what comes next may be that run's doing.
                unanswered |= status.is_none_or(|s| s >= 500) && !throttled;
                let final_error = matches!(outcome, Err(AttemptError::Final(_)));
                let verdict = classify(status, throttled, request.retry_safe());
                attempt += 1;
                if final_error || verdict == Verdict::Fail || attempt >= policy.max_attempts {
                    return outcome;
                }
                let delay = policy.delay(attempt - 1, retry_after);
                tracing::info!(
                    attempt,
                    delay_ms = delay.as_millis() as u64,
                    status = status.unwrap_or(0),
                    "retrying"
                );
                tokio::time::sleep(delay).await;
            }
        }
        .instrument(span)
        .await
        .map_err(|e| match e {
            AttemptError::Api(e, _) => Error::Api(e),
            AttemptError::Transport(e) | AttemptError::Final(e) => e,
        })
    }

    /// Calls a paginated read until the last page and returns every item,
    /// in pages as large as the API serves.
    pub async fn read_all<O: Paginated + Clone>(&self, request: &O) -> Result<Vec<O::Item>, Error> {
        let mut request = request.clone();
        request.largest_pages();
        let mut items = Vec::new();
        loop {
            let response = self.call(&request).await?;
            let next = O::next_page_token(&response).map(str::to_string);
            items.extend(O::into_items(response));
            match next {
                Some(token) => request.set_page_token(Some(token)),
                None => return Ok(items),
            }
        }
    }

    async fn attempt<O: Operation>(&self, body: &Bytes) -> Result<O::Response, AttemptError> {
        if let Some(limiter) = &self.inner.limiter {
            if O::BACKGROUND {
                limiter.acquire_background().await;
            } else {
                limiter.acquire().await;
            }
        }
        let request = self.signed_request(O::NAME, body.clone());
        let url = request.uri().to_string();
        let started = Instant::now();
        let response = self.inner.transport.send(request).await.map_err(|e| {
            if e.unresolved() {
                return AttemptError::Final(Error::Unresolved {
                    operation: O::NAME,
                    url: url.clone(),
                    message: e.0.clone(),
                });
            }
            tracing::warn!(operation = O::NAME, error = %e, "transport error");
            AttemptError::Transport(Error::Transport {
                operation: O::NAME,
                url,
                message: e.0,
            })
        })?;
        let elapsed = started.elapsed();
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = response.into_body();
        if (200..300).contains(&status) {
            let decoded: O::Response = serde_json::from_slice(&body).map_err(|e| {
                AttemptError::Final(Error::Decode {
                    operation: O::NAME,
                    message: e.to_string(),
                    body: if O::SECRET_ANSWER {
                        "(withheld: the answer holds a secret)".into()
                    } else {
                        String::from_utf8_lossy(&body).chars().take(500).collect()
                    },
                })
            })?;
            if tracing::enabled!(tracing::Level::DEBUG) {
                let request_id = request_id(&body);
                tracing::debug!(
                    operation = O::NAME,
                    request_id = request_id.as_deref().unwrap_or(""),
                    status,
                    duration_ms = elapsed.as_millis() as u64,
                    "call"
                );
            }
            return Ok(decoded);
        }
        let error = match serde_json::from_slice::<ErrorResponse>(&body) {
            Ok(parsed) if !parsed.errors.is_empty() => ApiError {
                operation: O::NAME,
                status,
                request_id: parsed.response_context.and_then(|c| c.request_id),
                errors: parsed.errors,
                raw_body: None,
                after_unanswered: false,
            },
            _ => ApiError {
                operation: O::NAME,
                status,
                errors: Vec::new(),
                request_id: None,
                raw_body: Some(String::from_utf8_lossy(&body).into_owned()),
                after_unanswered: false,
            },
        };
        tracing::debug!(
            operation = O::NAME,
            request_id = error.request_id.as_deref().unwrap_or(""),
            status,
            code = error.code().unwrap_or(""),
            duration_ms = elapsed.as_millis() as u64,
            "call failed"
        );
        Err(AttemptError::Api(error, retry_after))
    }

    /// Builds the request with a fresh date and signature: each attempt is
    /// signed anew, so a retry never outlives the 5-minute signature window.
    fn signed_request(&self, operation: &str, body: Bytes) -> http::Request<Bytes> {
        let inner = &self.inner;
        let config = &inner.config;
        let url = format!("{}/{operation}", config.base_url);
        let path = format!("{}/{operation}", inner.path_prefix);
        let mut builder = http::Request::builder()
            .method(http::Method::POST)
            .uri(url)
            .header(http::header::CONTENT_TYPE, CONTENT_TYPE)
            .header(http::header::HOST, &inner.host)
            .header(http::header::USER_AGENT, &config.user_agent);
        if let (Some(ak), Some(sk)) = (&config.access_key, &config.secret_key) {
            let date = format_date(time::OffsetDateTime::now_utc());
            let signature = sign(&SigningInput {
                flavour: config.flavour,
                access_key: ak,
                secret_key: sk.expose(),
                region: &config.region,
                service: &config.service,
                host: &inner.host,
                path: &path,
                content_type: CONTENT_TYPE,
                date_iso: &date,
                body: &body,
            });
            builder = builder
                .header(config.flavour.date_header(), date)
                .header(http::header::AUTHORIZATION, signature.authorization);
        }
        builder
            .body(body)
            .expect("method, URI and headers are valid by construction")
    }
}

enum AttemptError {
    /// An API error, with the server's `Retry-After` if any.
    Api(ApiError, Option<Duration>),
    Transport(Error),
    /// Not worth another attempt (an undecodable success response).
    Final(Error),
}

fn request_id(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Ctx {
        response_context: Option<super::model::ResponseContext>,
    }
    serde_json::from_slice::<Ctx>(body)
        .ok()
        .and_then(|c| c.response_context)
        .and_then(|c| c.request_id)
}
