//! Where API calls go: a real OUTSCALE region, an explicit URL, or the
//! embedded simulator (`sim://DIR`).

use std::path::PathBuf;

/// A resolved API endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A base URL such as `https://api.eu-west-2.outscale.com/api/v1`,
    /// without a trailing slash; operations are appended as `/<Name>`.
    Url(String),
    /// The in-process simulator persisted in this directory.
    Sim(PathBuf),
}

impl Endpoint {
    /// The endpoint of a region when nothing overrides it.
    pub fn for_region(region: &str, protocol: &str) -> Endpoint {
        Endpoint::Url(format!("{protocol}://api.{region}.outscale.com/api/v1"))
    }

    /// Normalises an endpoint as written by a user: `sim://DIR` (or `sim://`
    /// alone for `state/sim`) selects the simulator; a URL without scheme gets
    /// `protocol://`, without path gets `/api/v1`; a trailing slash is dropped.
    pub fn parse(raw: &str, protocol: &str) -> Result<Endpoint, String> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err("the endpoint is empty".into());
        }
        if let Some(dir) = raw.strip_prefix("sim://") {
            let dir = if dir.is_empty() { "state/sim" } else { dir };
            return Ok(Endpoint::Sim(PathBuf::from(dir)));
        }
        let with_scheme = if raw.contains("://") {
            raw.to_string()
        } else {
            format!("{protocol}://{raw}")
        };
        let mut url = reqwest::Url::parse(&with_scheme)
            .map_err(|e| format!("`{raw}` is not a valid URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "`{raw}`: the scheme must be http or https (or sim:// for the simulator)"
            ));
        }
        if url.host_str().is_none() {
            return Err(format!("`{raw}` has no host"));
        }
        if url.path() == "/" || url.path().is_empty() {
            url.set_path("/api/v1");
        }
        let s = url.as_str().trim_end_matches('/').to_string();
        Ok(Endpoint::Url(s))
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Url(u) => f.write_str(u),
            Endpoint::Sim(dir) => write!(f, "sim://{}", dir.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation() {
        let p = |s| Endpoint::parse(s, "https").unwrap().to_string();
        assert_eq!(
            p("api.eu-west-2.outscale.com"),
            "https://api.eu-west-2.outscale.com/api/v1"
        );
        assert_eq!(
            p("https://api.eu-west-2.outscale.com/"),
            "https://api.eu-west-2.outscale.com/api/v1"
        );
        assert_eq!(
            p("http://127.0.0.1:8080/api/v1/"),
            "http://127.0.0.1:8080/api/v1"
        );
        assert_eq!(
            p("https://gw.example/custom/path"),
            "https://gw.example/custom/path"
        );
        assert_eq!(p("sim://"), "sim://state/sim");
        assert_eq!(
            Endpoint::parse("sim:///tmp/x", "https").unwrap(),
            Endpoint::Sim(PathBuf::from("/tmp/x"))
        );
        assert_eq!(
            Endpoint::parse("127.0.0.1:9", "http").unwrap().to_string(),
            "http://127.0.0.1:9/api/v1"
        );
        assert!(Endpoint::parse("ftp://x", "https").is_err());
        assert!(Endpoint::parse("", "https").is_err());
        assert_eq!(
            Endpoint::for_region("us-east-2", "https").to_string(),
            "https://api.us-east-2.outscale.com/api/v1"
        );
    }
}
