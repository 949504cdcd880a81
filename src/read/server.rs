//! The reader as a local HTTP/1.1 server, for running without AWS.

use std::{convert::Infallible, net::SocketAddr, sync::Arc};

use http_body_util::{BodyExt, Full, Limited};
use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tracing::{debug, info};

use super::{ApiError, ApiRequest, ApiResponse, Router, invalidate};

/// What answers the server's requests: the reader's router, or the local
/// mode's, which adds its own pages to it.
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, req: ApiRequest) -> impl Future<Output = ApiResponse> + Send;

    /// The answer to a request the server could not read.
    fn error(&self, error: &ApiError) -> ApiResponse;

    /// The largest body a request to `path` may carry.
    fn body_limit(&self, _path: &str) -> usize {
        invalidate::MAX_REQUEST_BODY_BYTES
    }

    /// The answer to a request refused on its headers alone, before its body
    /// is read; `None` admits it.
    fn refuse(&self, _headers: &http::HeaderMap) -> Option<ApiResponse> {
        None
    }
}

impl Handler for Router {
    async fn handle(&self, req: ApiRequest) -> ApiResponse {
        Router::handle(self, &req).await
    }

    fn error(&self, error: &ApiError) -> ApiResponse {
        Router::error(self, error)
    }
}

/// Serves `router` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    router: impl Handler,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let router = Arc::new(router);
    info!(addr = %listener.local_addr()?, "reader listening");
    tokio::pin!(shutdown);
    loop {
        let (stream, peer): (_, SocketAddr) = tokio::select! {
            accepted = listener.accept() => accepted?,
            () = &mut shutdown => return Ok(()),
        };
        // As nginx's `tcp_nodelay on`: the tail of a large answer goes out at
        // once instead of waiting for the ack of the segment before it.
        if let Err(e) = stream.set_nodelay(true) {
            debug!(%peer, error = %e, "TCP_NODELAY not set");
        }
        let router = router.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: http::Request<Incoming>| {
                let router = router.clone();
                async move {
                    let (parts, body) = req.into_parts();
                    if let Some(refused) = router.refuse(&parts.headers) {
                        return Ok::<_, Infallible>(refused.map(Full::new));
                    }
                    let limit = router.body_limit(parts.uri.path());
                    let limited = Limited::new(body, limit + 1);
                    let response = match limited.collect().await {
                        Ok(body) => {
                            let req = http::Request::from_parts(parts, ());
                            let api = ApiRequest::from_http(&req, body.to_bytes());
                            router.handle(api).await
                        }
                        Err(_) => router.error(&ApiError::PayloadTooLarge { limit }),
                    };
                    Ok::<_, Infallible>(response.map(Full::new))
                }
            });
            if let Err(e) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
}
