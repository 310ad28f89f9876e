//! x509 client certificates: the certificate goes on the TLS connection and
//! the request is still signed (design §3), against the simulator behind a
//! TLS listener that demands a client certificate from a test CA.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use osci::oapi::model::ReadAccountsRequest;
use osci::oapi::{Client, Error};
use osci::sim::{Faults, Sim};

struct Pki {
    ca: CertificateDer<'static>,
    server_cert: CertificateDer<'static>,
    server_key: PrivateKeyDer<'static>,
}

/// A CA, a server certificate for localhost, and a client certificate and
/// key written as PEM files into `dir`.
fn make_pki(dir: &Path) -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "osci test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();

    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&server_key, &ca, &ca_key)
        .unwrap();

    let client_key = KeyPair::generate().unwrap();
    let mut client_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    client_params
        .distinguished_name
        .push(DnType::CommonName, "osci client");
    let client = client_params.signed_by(&client_key, &ca, &ca_key).unwrap();
    std::fs::write(dir.join("client.crt"), client.pem()).unwrap();
    std::fs::write(dir.join("client.key"), client_key.serialize_pem()).unwrap();

    Pki {
        ca: ca.der().clone(),
        server_cert: server.der().clone(),
        server_key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
    }
}

/// Serves `sim` over TLS on loopback, requiring a client certificate
/// signed by the CA. Returns the port.
async fn serve_tls(sim: Arc<Sim>, pki: Pki) -> u16 {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca).unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![pki.server_cert], pki.server_key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let sim = Arc::clone(&sim);
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                    let sim = Arc::clone(&sim);
                    async move {
                        let (parts, body) = request.into_parts();
                        let body = body
                            .collect()
                            .await
                            .map_err(|_| osci::sim::Dropped)?
                            .to_bytes();
                        let response = sim.handle(http::Request::from_parts(parts, body)).await?;
                        Ok::<_, osci::sim::Dropped>(response.map(Full::<Bytes>::new))
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    port
}

/// One attempt only: a refused handshake is not worth retrying here.
fn client(vars: HashMap<&'static str, String>, secret: Option<&str>) -> Result<Client, String> {
    common::http_client(vars, secret, 1)
}

#[tokio::test]
async fn certificate_on_tls_and_signature_together() {
    let dir = tempfile::tempdir().unwrap();
    let sim = common::open(&dir.path().join("sim"), 0.0, Faults::none());
    let account = sim.default_account();
    let port = serve_tls(Arc::clone(&sim), make_pki(dir.path())).await;
    let base: HashMap<&'static str, String> = HashMap::from([
        (
            "OSC_ENDPOINT_API",
            format!("https://localhost:{port}/api/v1"),
        ),
        ("OSC_ACCESS_KEY", account.access_key.clone()),
        ("OSC_SECRET_KEY", account.secret_key.expose().to_string()),
        // The test CA is not among the system roots.
        ("OSC_TLS_SKIP_VERIFY", "true".to_string()),
    ]);
    let mut with_cert = base.clone();
    with_cert.insert(
        "OSC_X509_CLIENT_CERT",
        dir.path().join("client.crt").display().to_string(),
    );
    with_cert.insert(
        "OSC_X509_CLIENT_KEY",
        dir.path().join("client.key").display().to_string(),
    );

    // Certificate and signature: accepted.
    let accounts = client(with_cert.clone(), None)
        .unwrap()
        .call(&ReadAccountsRequest::default())
        .await
        .unwrap();
    assert_eq!(accounts.accounts[0].account_id, account.account_id);

    // Certificate without a good signature: refused by the API.
    let e = client(with_cert.clone(), Some("wrong-secret"))
        .unwrap()
        .call(&ReadAccountsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.api().map(|a| a.status), Some(401), "{e}");

    // No certificate: the TLS handshake fails.
    let e = client(base, None)
        .unwrap()
        .call(&ReadAccountsRequest::default())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Transport { .. }), "{e}");

    // A certificate that is not PEM is a clear error before any call.
    std::fs::write(dir.path().join("bad.crt"), "not a certificate").unwrap();
    let mut bad = with_cert;
    bad.insert(
        "OSC_X509_CLIENT_CERT",
        dir.path().join("bad.crt").display().to_string(),
    );
    let e = client(bad, None).err().unwrap();
    assert!(
        e.contains("x509 client certificate (env OSC_X509_CLIENT_CERT)"),
        "{e}"
    );
}
