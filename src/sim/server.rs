//! Serving the simulator over HTTP/1.1 on a loopback address.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use super::{Dropped, Sim};

/// Accepts connections until `shutdown` completes. A request whose answer
/// a fault drops closes its connection without a response.
pub async fn serve(
    sim: Arc<Sim>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => accepted?,
            () = &mut shutdown => return Ok(()),
        };
        let sim = Arc::clone(&sim);
        tokio::spawn(async move {
            let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                let sim = Arc::clone(&sim);
                async move {
                    let (parts, body) = request.into_parts();
                    let body = body.collect().await.map_err(|_| Dropped)?.to_bytes();
                    let response = sim.handle(http::Request::from_parts(parts, body)).await?;
                    Ok::<_, Dropped>(response.map(Full::<Bytes>::new))
                }
            });
            if let Err(e) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%peer, error = %e, "connection ended");
            }
        });
    }
}
