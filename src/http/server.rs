//! careq's own accept loop. `axum::serve` sets no header-read timeout and lets hyper answer a
//! bad request line with an empty 400, so careq reads the request line itself (505, 414 and 400
//! as problems), then hands the connection to hyper with a header-read timeout, and shuts down
//! gracefully: in-flight requests finish, idle connections close. With TLS, the handshake comes
//! first (bounded by the client timeout); a client that negotiated `h2` is served HTTP/2.
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tower::ServiceExt;

use crate::config::Config;
use crate::error::{raw_response, ApiError};
use crate::http::context::new_request_id;
use crate::http::App;

/// How long shutdown waits for in-flight requests before giving up on them.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves `app` on `listener` until `shutdown` resolves, then drains.
pub async fn serve(
    listener: TcpListener,
    app: App,
    config: Arc<Config>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let (alive_tx, mut alive_rx) = mpsc::channel::<()>(1);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let conn = Connection {
                    app: app.clone(),
                    config: config.clone(),
                    stop: stop_rx.clone(),
                    _alive: alive_tx.clone(),
                };
                tokio::spawn(conn.start(stream, peer, tls.clone()));
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    tracing::info!("shutting down: draining in-flight requests");
    let _ = stop_tx.send(true);
    drop(alive_tx);
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, alive_rx.recv()).await;
    Ok(())
}

struct Connection {
    app: App,
    config: Arc<Config>,
    stop: watch::Receiver<bool>,
    /// Dropped when the connection ends; shutdown waits for every sender to go.
    _alive: mpsc::Sender<()>,
}

impl Connection {
    async fn start(
        self,
        stream: TcpStream,
        peer: SocketAddr,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) {
        let Some(acceptor) = tls else {
            return self.run(stream, peer).await;
        };
        let timeout = self.config.client_timeout();
        // A client too slow to finish the handshake, or one that refuses the certificate, is
        // dropped without an answer (there is no channel to send one on).
        let Ok(Ok(tls)) = tokio::time::timeout(timeout, acceptor.accept(stream)).await else {
            return;
        };
        if tls.get_ref().1.alpn_protocol() == Some(b"h2".as_slice()) {
            self.run_h2(tls, peer).await
        } else {
            self.run(tls, peer).await
        }
    }

    /// HTTP/2 (negotiated by ALPN). Request lines do not exist here; hyper bounds the header
    /// list and careq's middleware applies the same rules as on HTTP/1.1 to every request.
    /// hyper has no header-read timeout for HTTP/2, so careq keeps its own: a connection with
    /// no request in progress for the client timeout (from the handshake, or since its last
    /// answer) gets GOAWAY and is closed, as an idle HTTP/1.1 connection is.
    async fn run_h2<S>(mut self, stream: S, peer: SocketAddr)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let app = self.app.clone();
        let activity = Activity::new();
        let seen = activity.clone();
        let service =
            hyper::service::service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                let busy = seen.begin();
                let answer = app.clone().oneshot(req.map(axum::body::Body::new));
                async move {
                    let res = answer.await;
                    drop(busy);
                    res
                }
            });
        let conn = http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .max_header_list_size(((self.config.uri_max_bytes + 56 * 1024).max(64 * 1024)) as u32)
            .serve_connection(TokioIo::new(stream), service);
        tokio::pin!(conn);
        let idle = self.config.client_timeout();
        let mut check = tokio::time::Instant::now() + idle;
        let stopping = loop {
            tokio::select! {
                res = conn.as_mut() => {
                    if let Err(e) = res {
                        tracing::debug!(error = %e, "HTTP/2 connection ended with an error");
                    }
                    return;
                }
                _ = self.stop.changed() => break true,
                _ = tokio::time::sleep_until(check) => match activity.idle_since() {
                    Some(since) if since.elapsed() >= idle => break false,
                    Some(since) => check = since + idle,
                    None => check = tokio::time::Instant::now() + idle,
                },
            }
        };
        // GOAWAY: requests in progress finish; no new ones are taken. hyper's graceful close
        // waits for the client to answer a PING, which a silent client never does: an idle
        // connection gets one more client timeout, then is dropped.
        conn.as_mut().graceful_shutdown();
        if stopping {
            let _ = conn.await;
        } else {
            let _ = tokio::time::timeout(idle, conn).await;
        }
    }

    async fn run<S>(mut self, mut stream: S, peer: SocketAddr)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let timeout = self.config.client_timeout();
        let mut head = Vec::with_capacity(2048);
        let line_limit = self.config.uri_max_bytes + 64;
        let verdict = tokio::select! {
            v = tokio::time::timeout(timeout, read_request_line(&mut stream, &mut head, line_limit)) => v,
            _ = self.stop.changed() => return,
        };
        match verdict {
            // Too slow to send even the request line, or gone: close without an answer.
            Err(_) | Ok(Err(_)) | Ok(Ok(LineVerdict::Closed)) => return,
            Ok(Ok(LineVerdict::Reject(err))) => {
                let bytes = raw_response(&err, &new_request_id());
                let _ = stream.write_all(&bytes).await;
                let _ = stream.shutdown().await;
                return;
            }
            Ok(Ok(LineVerdict::Accept)) => {}
        }
        let io = TokioIo::new(Prefixed {
            prefix: head,
            pos: 0,
            inner: stream,
        });
        let app = self.app.clone();
        let service =
            hyper::service::service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                app.clone().oneshot(req.map(axum::body::Body::new))
            });
        let conn = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(timeout)
            .max_buf_size((self.config.uri_max_bytes + 56 * 1024).max(64 * 1024))
            .serve_connection(io, service)
            .with_upgrades();
        tokio::pin!(conn);
        tokio::select! {
            res = conn.as_mut() => {
                if let Err(e) = res {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
            }
            _ = self.stop.changed() => {
                conn.as_mut().graceful_shutdown();
                let _ = conn.await;
            }
        }
    }
}

/// What an HTTP/2 connection is doing: how many requests are in progress, and since when
/// none has been.
#[derive(Clone)]
struct Activity(Arc<std::sync::Mutex<(usize, tokio::time::Instant)>>);

/// One request in progress; dropped when its answer is ready.
struct Busy(Activity);

impl Activity {
    fn new() -> Self {
        Activity(Arc::new(std::sync::Mutex::new((
            0,
            tokio::time::Instant::now(),
        ))))
    }

    fn begin(&self) -> Busy {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).0 += 1;
        Busy(self.clone())
    }

    /// When the last request ended (or the connection began), if none is in progress now.
    fn idle_since(&self) -> Option<tokio::time::Instant> {
        let state = self.0.lock().unwrap_or_else(|p| p.into_inner());
        (state.0 == 0).then_some(state.1)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let mut state = (self.0).0.lock().unwrap_or_else(|p| p.into_inner());
        state.0 -= 1;
        state.1 = tokio::time::Instant::now();
    }
}

enum LineVerdict {
    Accept,
    Reject(ApiError),
    Closed,
}

/// Reads until the first request line is complete and checks its version and length.
async fn read_request_line<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    limit: usize,
) -> io::Result<LineVerdict> {
    let mut chunk = [0u8; 4096];
    loop {
        // RFC 9112 §2.2: empty lines before the request line are ignored.
        let start = buf
            .iter()
            .position(|b| *b != b'\r' && *b != b'\n')
            .unwrap_or(buf.len());
        if let Some(end) = buf[start..].iter().position(|b| *b == b'\n') {
            return Ok(check_request_line(&buf[start..start + end], limit));
        }
        if buf.len() - start > limit {
            return Ok(LineVerdict::Reject(ApiError::UriTooLong {
                limit: limit - 64,
            }));
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(LineVerdict::Closed);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn check_request_line(line: &[u8], limit: usize) -> LineVerdict {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let parts: Vec<&[u8]> = line.split(|b| *b == b' ').collect();
    let [_method, target, version] = parts.as_slice() else {
        return LineVerdict::Reject(ApiError::bad_request("malformed request line"));
    };
    if target.len() > limit - 64 {
        return LineVerdict::Reject(ApiError::UriTooLong { limit: limit - 64 });
    }
    match *version {
        b"HTTP/1.1" | b"HTTP/1.0" => LineVerdict::Accept,
        v if v.starts_with(b"HTTP/")
            && v[5..].iter().all(|b| b.is_ascii_digit() || *b == b'.')
            && v.len() > 5 =>
        {
            LineVerdict::Reject(ApiError::VersionNotSupported)
        }
        _ => LineVerdict::Reject(ApiError::bad_request("malformed request line")),
    }
}

/// A stream that first yields bytes already read from it.
struct Prefixed<S> {
    prefix: Vec<u8>,
    pos: usize,
    inner: S,
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.pos < self.prefix.len() {
            let n = (self.prefix.len() - self.pos).min(buf.remaining());
            let start = self.pos;
            buf.put_slice(&self.prefix[start..start + n]);
            self.pos += n;
            if self.pos == self.prefix.len() {
                self.prefix = Vec::new();
                self.pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(line: &str) -> u16 {
        match check_request_line(line.as_bytes(), 100 + 64) {
            LineVerdict::Accept => 0,
            LineVerdict::Reject(e) => e.status().code,
            LineVerdict::Closed => 1,
        }
    }

    #[test]
    fn request_lines_are_judged_by_version_and_length() {
        assert_eq!(verdict("GET / HTTP/1.1"), 0);
        assert_eq!(verdict("GET / HTTP/1.0\r"), 0);
        assert_eq!(verdict("GET / HTTP/2.0"), 505);
        assert_eq!(verdict("GET / HTTP/3"), 505);
        assert_eq!(verdict("GET / HTTP/1.2"), 505);
        assert_eq!(verdict("GET /"), 400);
        assert_eq!(verdict("GET / FTP/1.1"), 400);
        assert_eq!(verdict(&format!("GET /{} HTTP/1.1", "a".repeat(200))), 414);
    }
}
