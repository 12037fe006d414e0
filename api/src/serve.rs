//! Serving HTTP with the limits a server facing the internet needs (issue
//! 10, item 8): a probe held 200 half-sent requests open for 30 s and more.
//!
//! - **Header-read timeout**: a connection that has not sent a complete
//!   request head within `header_read_timeout` is closed — also an idle
//!   keep-alive connection waiting for its next request (hyper's HTTP/1
//!   timer starts whenever it waits for a head).
//! - **Body-read timeout**: [`body_deadline`] gives every request body one
//!   deadline, `body_read_timeout` after its head arrived; a body still
//!   unread then fails, and the request is answered 408 with the
//!   connection closed.
//! - **Connections per address**: at most `max_connections_per_address`
//!   open connections from one IP address (0: no cap). One more is answered
//!   `429` (problem+json, `Retry-After`) and closed at once.
//!
//! The accept loop mirrors `axum::serve` (hyper's connection builder,
//! graceful shutdown) with those limits added. It speaks HTTP/1.1 only:
//! telling HTTP/2 from HTTP/1 on a plaintext connection means waiting for
//! the client's first bytes with no timer, which is exactly what a slow
//! client exploits. HTTP/2 and TLS belong to a reverse proxy in front.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use http_body::Frame;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use nuanxin_infra::HttpLimits;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Serves `router` on `listener` within `limits` until `shutdown`
/// completes; then stops accepting, lets open requests finish and returns
/// when every connection has closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let counts = Connections::new(limits.max_connections_per_address);
    // Connections hold a receiver; shutdown is signalled by dropping the
    // sender, and `closed` tells when the last connection has gone.
    let (signal_tx, signal_rx) = watch::channel(());
    let (done_tx, done_rx) = watch::channel(());
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors and the like: wait, go on.
                    tracing::warn!(error = %err, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let Some(slot) = counts.take(peer.ip()) else {
            tracing::warn!(
                client.ip = %peer.ip(),
                limit = limits.max_connections_per_address,
                "too many connections from one address; refused"
            );
            tokio::spawn(refuse(stream));
            continue;
        };
        let service = TowerToHyperService::new(router.clone());
        let mut signal = signal_rx.clone();
        let done = done_rx.clone();
        tokio::spawn(async move {
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            let mut shutting_down = false;
            loop {
                tokio::select! {
                    result = conn.as_mut() => {
                        if let Err(err) = result {
                            tracing::debug!(error = %err, "connection ended with an error");
                        }
                        break;
                    }
                    _ = signal.changed(), if !shutting_down => {
                        shutting_down = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
            drop(slot);
            drop(done);
        });
    }
    drop(listener);
    drop(signal_tx);
    drop(done_rx);
    done_tx.closed().await;
    Ok(())
}

/// One connection too many from an address: a short 429 and close.
async fn refuse(mut stream: TcpStream) {
    let body = r#"{"type":"https://nuanxin.invalid/problems/too-many-connections","title":"Too Many Requests","status":429,"detail":"too many open connections from your address; close some and retry"}"#;
    let response = format!(
        "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/problem+json\r\n\
         retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// Open connections per address.
#[derive(Clone)]
struct Connections {
    limit: usize,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// A connection's place in [`Connections`], given back when dropped.
struct Slot {
    ip: IpAddr,
    connections: Connections,
}

impl Connections {
    fn new(limit: usize) -> Self {
        Self {
            limit,
            open: Arc::default(),
        }
    }

    fn take(&self, ip: IpAddr) -> Option<Slot> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(ip).or_insert(0);
        if self.limit > 0 && *n >= self.limit {
            return None;
        }
        *n += 1;
        Some(Slot {
            ip,
            connections: self.clone(),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self
            .connections
            .open
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// Middleware: the request body must be read within `timeout` of the
/// request head (an upload to the import page: within
/// [`crate::web::import::UPLOAD_TIMEOUT`] when that is longer).
pub async fn body_deadline(State(timeout): State<Duration>, req: Request, next: Next) -> Response {
    // A register uploaded to the import page may be large and the line slow.
    let timeout = if req.method() == axum::http::Method::POST
        && req.uri().path() == crate::web::import::PATH
    {
        timeout.max(crate::web::import::UPLOAD_TIMEOUT)
    } else {
        timeout
    };
    let req = req.map(|body| {
        if body.is_end_stream() {
            body
        } else {
            Body::new(DeadlineBody {
                inner: body,
                deadline: Box::pin(tokio::time::sleep(timeout)),
            })
        }
    });
    next.run(req).await
}

/// The error a body gives when its deadline passed ([`crate::extract`]
/// answers it with 408).
#[derive(Debug, thiserror::Error)]
#[error("the request body was not received in time")]
pub struct BodyTimedOut;

struct DeadlineBody {
    inner: Body,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        if self.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(axum::Error::new(BodyTimedOut))));
        }
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::Connections;

    #[test]
    fn connections_are_capped_per_address_and_given_back() {
        let c = Connections::new(2);
        let a = "10.0.0.1".parse().unwrap();
        let b = "10.0.0.2".parse().unwrap();
        let first = c.take(a).expect("first");
        let _second = c.take(a).expect("second");
        assert!(c.take(a).is_none(), "a third from the same address");
        assert!(c.take(b).is_some(), "another address is not affected");
        drop(first);
        assert!(c.take(a).is_some(), "a closed connection frees its slot");
        let unlimited = Connections::new(0);
        let held: Vec<_> = (0..1000).map(|_| unlimited.take(a).unwrap()).collect();
        assert_eq!(held.len(), 1000);
    }
}
