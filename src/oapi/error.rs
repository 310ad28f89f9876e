//! The OUTSCALE error model (`reference/oapi.md` §5) and the client's own errors.

use serde::{Deserialize, Deserializer, Serialize};

/// One entry of an `Errors[]` array. `Code` is a string holding a number on
/// the real API; some implementations send a number, so both are accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ApiErrorEntry {
    #[serde(deserialize_with = "string_or_number", default)]
    pub code: String,
    #[serde(default, rename = "Type")]
    pub kind: String,
    #[serde(default)]
    pub details: String,
}

fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Code {
        S(String),
        N(i64),
    }
    Ok(match Code::deserialize(d)? {
        Code::S(s) => s,
        Code::N(n) => n.to_string(),
    })
}

/// The body of an error response.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ErrorResponse {
    #[serde(default)]
    pub errors: Vec<ApiErrorEntry>,
    #[serde(default)]
    pub response_context: Option<super::model::ResponseContext>,
}

/// An error answered by the API (any non-2xx response).
#[derive(Debug, Clone)]
pub struct ApiError {
    pub operation: &'static str,
    pub status: u16,
    pub errors: Vec<ApiErrorEntry>,
    pub request_id: Option<String>,
    /// The body as received when it was not the JSON error shape.
    pub raw_body: Option<String>,
    /// An earlier attempt of the same call got no answer (a lost
    /// connection, a 5xx) and may have run: a conflict may then be that
    /// attempt's own doing.
    pub after_unanswered: bool,
}

impl ApiError {
    /// The first error code, as the API branches on it.
    pub fn code(&self) -> Option<&str> {
        self.errors.first().map(|e| e.code.as_str())
    }

    pub fn code_num(&self) -> Option<u32> {
        self.code().and_then(|c| c.parse().ok())
    }

    /// `InvalidResource` codes 5000–5999: the named resource does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self.code_num(), Some(5000..=5999))
    }

    /// Throttling: per-platform 503 (code 6), per-account or per-call 429 (24, 25).
    /// A throttled request was not executed, so it is always safe to send again.
    pub fn is_throttling(&self) -> bool {
        self.status == 429 || (self.status == 503 && matches!(self.code_num(), Some(6) | None))
    }

    /// `DependencyProblem` (1000–1999) or `ResourceConflict` busy/in-use codes:
    /// the call may succeed once another resource has changed state.
    pub fn is_dependency(&self) -> bool {
        matches!(self.code_num(), Some(1000..=1999) | Some(9002) | Some(9004)) || self.status == 424
    }

    pub fn is_auth_failure(&self) -> bool {
        self.status == 401
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} failed with HTTP {}", self.operation, self.status)?;
        for e in &self.errors {
            write!(f, ": {} (code {})", e.kind, e.code)?;
            if !e.details.is_empty() {
                write!(f, " {}", e.details)?;
            }
        }
        if let Some(raw) = &self.raw_body {
            let raw = raw.trim();
            if !raw.is_empty() {
                let cut: String = raw.chars().take(300).collect();
                write!(f, ": {cut}")?;
            }
        }
        if let Some(id) = &self.request_id {
            write!(f, " [RequestId {id}]")?;
        }
        if self.status == 401 {
            write!(
                f,
                ". The access key, secret key or signature was refused: check the keys, and that \
                 this machine's clock is right (a request must reach OUTSCALE within 5 minutes of \
                 its date). Four failures in a row lock the key out for a minute or more, so wait \
                 before trying again"
            )?;
        }
        Ok(())
    }
}

/// Everything a call can fail with.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Api(ApiError),
    #[error(
        "{operation}: the host of the endpoint {url} does not resolve ({message}). Check the \
         region, or name the endpoint with custom_endpoint_oapi in the template or \
         OSC_ENDPOINT_API (sim:// runs the simulator instead)"
    )]
    Unresolved {
        operation: &'static str,
        url: String,
        message: String,
    },
    #[error("{operation}: could not reach the API at {url}: {message}")]
    Transport {
        operation: &'static str,
        url: String,
        message: String,
    },
    #[error("{operation}: the response could not be read as JSON ({message}): {body}")]
    Decode {
        operation: &'static str,
        message: String,
        body: String,
    },
    #[error("{operation}: the request could not be encoded: {message}")]
    Encode {
        operation: &'static str,
        message: String,
    },
    #[error("{operation} needs credentials, and none were found: {hint}")]
    NoCredentials {
        operation: &'static str,
        hint: String,
    },
    #[error("gave up waiting for {what} after {elapsed_secs}s (last state: {last_state})")]
    WaitTimeout {
        what: String,
        elapsed_secs: u64,
        last_state: String,
    },
    #[error("{what} reached the failure state {state}{reason}")]
    WaitFailed {
        what: String,
        state: String,
        reason: String,
    },
    #[error("{what} disappeared while waiting for it")]
    WaitGone { what: String },
}

impl Error {
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Error::Api(e) => Some(e),
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.api().is_some_and(ApiError::is_not_found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_is_read_as_string_or_number() {
        let a: ErrorResponse = serde_json::from_str(
            r#"{"Errors":[{"Code":"5063","Type":"InvalidResource","Details":"x"}],"ResponseContext":{"RequestId":"r"}}"#,
        )
        .unwrap();
        assert_eq!(a.errors[0].code, "5063");
        let b: ErrorResponse =
            serde_json::from_str(r#"{"Errors":[{"Code":5063,"Type":"InvalidResource"}]}"#).unwrap();
        assert_eq!(b.errors[0].code, "5063");
    }

    #[test]
    fn classification() {
        let mk = |status, code: &str| ApiError {
            operation: "ReadVms",
            status,
            errors: vec![ApiErrorEntry {
                code: code.into(),
                kind: String::new(),
                details: String::new(),
            }],
            request_id: None,
            raw_body: None,
            after_unanswered: false,
        };
        assert!(mk(400, "5063").is_not_found());
        assert!(!mk(400, "4045").is_not_found());
        assert!(mk(429, "25").is_throttling());
        assert!(mk(503, "6").is_throttling());
        assert!(!mk(500, "0").is_throttling());
        assert!(mk(409, "9002").is_dependency());
        let msg = mk(401, "1").to_string();
        assert!(msg.contains("clock"), "{msg}");
        assert!(msg.contains("lock"), "{msg}");
    }
}
