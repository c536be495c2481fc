//! Connections: how many, from whom, and for how long.
//!
//! Every accepted TCP connection takes a slot of a global cap and of its
//! peer host's cap ([`ConnectionLimits`]) or is closed at once: about
//! 20,000 idle connections once used every file descriptor, after which
//! `/healthz` stopped answering and SQLite jobs failed (issue #40). A
//! connection with no request in flight for `idle_timeout` is closed by its
//! own stream reporting end-of-file, which hyper treats as the client
//! leaving, on HTTP/1.1 and HTTP/2 alike (hyper has no idle timeout for
//! HTTP/2, and an HTTP/2 connection that made one request stayed open
//! indefinitely). The [`Connection`] each request carries in its extensions
//! is also what body reading charges its per-connection share to
//! ([`crate::budget`]).

use std::{
    collections::HashMap,
    future::Future,
    net::{IpAddr, SocketAddr},
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use axum::{extract::Request, middleware::Next, response::Response};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
};

/// How many connections, and how long one may sit idle.
#[derive(Debug, Clone, clap::Args)]
pub struct ConnectionLimits {
    /// Open client connections the gateway holds at most; more are closed
    /// as they arrive.
    #[arg(long = "http-max-connections", env = "OPENDEW_HTTP_MAX_CONNECTIONS", default_value_t = 4096,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub global: u32,
    /// Open connections one client host (an IPv4 address, an IPv6 /64) may
    /// hold. Behind a proxy that does not pool, raise it.
    #[arg(long = "http-max-connections-per-address", env = "OPENDEW_HTTP_MAX_CONNECTIONS_PER_ADDRESS",
          default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..))]
    pub per_host: u32,
    /// Seconds a connection may sit without a request in flight before it
    /// is closed (HTTP/1.1 keep-alive and HTTP/2 alike).
    #[arg(long = "http-idle-timeout-seconds", env = "OPENDEW_HTTP_IDLE_TIMEOUT_SECONDS", default_value = "60",
          value_parser = common::positive_seconds)]
    pub idle_timeout: Duration,
    /// Streams one HTTP/2 connection may have open at once.
    #[arg(long = "http2-max-concurrent-streams", env = "OPENDEW_HTTP2_MAX_CONCURRENT_STREAMS", default_value_t = 64,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub h2_max_streams: u32,
    /// Seconds between HTTP/2 keep-alive pings; a peer that does not answer
    /// one within --http2-keepalive-timeout-seconds loses the connection.
    #[arg(long = "http2-keepalive-interval-seconds", env = "OPENDEW_HTTP2_KEEPALIVE_INTERVAL_SECONDS",
          default_value = "20", value_parser = common::positive_seconds)]
    pub h2_keepalive_interval: Duration,
    /// Seconds an HTTP/2 keep-alive ping may go unanswered.
    #[arg(long = "http2-keepalive-timeout-seconds", env = "OPENDEW_HTTP2_KEEPALIVE_TIMEOUT_SECONDS",
          default_value = "10", value_parser = common::positive_seconds)]
    pub h2_keepalive_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            global: 4096,
            per_host: 256,
            idle_timeout: Duration::from_secs(60),
            h2_max_streams: 64,
            h2_keepalive_interval: Duration::from_secs(20),
            h2_keepalive_timeout: Duration::from_secs(10),
        }
    }
}

/// The open connections of one gateway.
#[derive(Debug)]
pub struct Registry {
    limits: ConnectionLimits,
    open: AtomicUsize,
    by_host: Mutex<HashMap<IpAddr, u32>>,
    /// Where [`Connection::last_done`] counts from.
    epoch: Instant,
}

impl Registry {
    /// No connections yet.
    pub fn new(limits: ConnectionLimits) -> Arc<Self> {
        Arc::new(Self { limits, open: AtomicUsize::new(0), by_host: Mutex::default(), epoch: Instant::now() })
    }

    /// Open connections now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// A slot for a connection from `peer`, or `None` at either cap.
    fn admit(self: &Arc<Self>, peer: SocketAddr) -> Option<Connection> {
        let host = crate::peer::host(peer.ip());
        if self.open.fetch_add(1, Ordering::AcqRel) >= self.limits.global as usize {
            self.open.fetch_sub(1, Ordering::AcqRel);
            metrics::counter!("opendew_http_connections_refused_total", "cap" => "global").increment(1);
            return None;
        }
        {
            let mut by_host = self.by_host.lock().expect("connection registry lock");
            let count = by_host.entry(host).or_insert(0);
            if *count >= self.limits.per_host {
                drop(by_host);
                self.open.fetch_sub(1, Ordering::AcqRel);
                metrics::counter!("opendew_http_connections_refused_total", "cap" => "address").increment(1);
                return None;
            }
            *count += 1;
        }
        metrics::gauge!("opendew_http_connections_open").increment(1.0);
        Some(Connection {
            peer,
            host,
            registry: self.clone(),
            in_flight: AtomicUsize::new(0),
            last_done: AtomicU64::new(self.millis()),
            body_bytes: AtomicUsize::new(0),
        })
    }

    fn millis(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }
}

/// One open connection, in the extensions of every request it carries.
#[derive(Debug)]
pub struct Connection {
    peer: SocketAddr,
    host: IpAddr,
    registry: Arc<Registry>,
    in_flight: AtomicUsize,
    /// When the last request ended (ms since the registry's epoch).
    last_done: AtomicU64,
    /// Body bytes this connection's requests hold of the reading budget.
    pub(crate) body_bytes: AtomicUsize,
}

impl Connection {
    /// The peer's IP address.
    pub fn peer(&self) -> IpAddr {
        crate::peer::canonical(self.peer.ip())
    }

    /// The peer's host (an IPv4 address, an IPv6 /64).
    pub fn host(&self) -> IpAddr {
        self.host
    }

    /// How long no request has been in flight, or `None` while one is.
    fn idle_for(&self) -> Option<Duration> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let since = self.registry.millis().saturating_sub(self.last_done.load(Ordering::Acquire));
        Some(Duration::from_millis(since))
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.registry.open.fetch_sub(1, Ordering::AcqRel);
        let mut by_host = self.registry.by_host.lock().expect("connection registry lock");
        if let Some(count) = by_host.get_mut(&self.host) {
            *count -= 1;
            if *count == 0 {
                by_host.remove(&self.host);
            }
        }
        metrics::gauge!("opendew_http_connections_open").decrement(1.0);
    }
}

/// The connection's peer address, as the acceptor recorded it (`None` when
/// the router is driven without a socket, as some tests do).
pub fn peer(parts: &http::request::Parts) -> Option<IpAddr> {
    parts.extensions.get::<Arc<Connection>>().map(|c| c.peer())
}

/// Middleware, outermost: marks a request in flight on its connection for
/// as long as its handler runs, so the idle timer never cuts a request off.
pub async fn activity(req: Request, next: Next) -> Response {
    let Some(conn) = req.extensions().get::<Arc<Connection>>().cloned() else { return next.run(req).await };
    conn.in_flight.fetch_add(1, Ordering::AcqRel);
    struct Done(Arc<Connection>);
    impl Drop for Done {
        fn drop(&mut self) {
            self.0.last_done.store(self.0.registry.millis(), Ordering::Release);
            self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
        }
    }
    let _done = Done(conn);
    next.run(req).await
}

/// The acceptor: admits a connection within the caps (or drops it), sets
/// `TCP_NODELAY` (responses go out at once, not after Nagle's delay), and
/// hands the stream and the service its [`Connection`].
#[derive(Debug, Clone)]
pub struct Acceptor {
    registry: Arc<Registry>,
}

impl Acceptor {
    /// Admits into `registry`.
    pub fn new(registry: Arc<Registry>) -> Self {
        Self { registry }
    }
}

impl<S> axum_server::accept::Accept<TcpStream, S> for Acceptor {
    type Stream = Tracked;
    type Service = WithConnection<S>;
    type Future = std::future::Ready<std::io::Result<(Tracked, WithConnection<S>)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let admitted = stream.peer_addr().ok().and_then(|peer| self.registry.admit(peer));
        let Some(conn) = admitted else {
            // Dropping the stream closes it: no file descriptor is kept.
            return std::future::ready(Err(std::io::Error::other("connection cap reached")));
        };
        let conn = Arc::new(conn);
        let _ = stream.set_nodelay(true);
        let idle_timeout = self.registry.limits.idle_timeout;
        let tracked = Tracked {
            inner: stream,
            conn: conn.clone(),
            idle: Box::pin(tokio::time::sleep(idle_timeout)),
            idle_timeout,
            last_read: Instant::now(),
        };
        std::future::ready(Ok((tracked, WithConnection { inner: service, conn })))
    }
}

/// The service of one connection: puts its [`Connection`] in every request.
#[derive(Debug, Clone)]
pub struct WithConnection<S> {
    inner: S,
    conn: Arc<Connection>,
}

impl<S, B> tower::Service<http::Request<B>> for WithConnection<S>
where
    S: tower::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        req.extensions_mut().insert(self.conn.clone());
        self.inner.call(req)
    }
}

/// Bytes read just before the idle timer fired may be a request hyper has
/// not dispatched yet: the timer waits this much longer for it.
const DISPATCH_GRACE: Duration = Duration::from_secs(1);

/// An accepted stream that ends itself once its connection has been idle
/// for the idle timeout.
#[derive(Debug)]
pub struct Tracked {
    inner: TcpStream,
    conn: Arc<Connection>,
    idle: Pin<Box<tokio::time::Sleep>>,
    idle_timeout: Duration,
    last_read: Instant,
}

impl AsyncRead for Tracked {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        if let Poll::Ready(result) = Pin::new(&mut self.inner).poll_read(cx, buf) {
            if buf.filled().len() > before {
                self.last_read = Instant::now();
            }
            return Poll::Ready(result);
        }
        // Nothing to read: is the connection idle for good?
        loop {
            if self.idle.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            let now = Instant::now();
            let next = match self.conn.idle_for() {
                Some(idle) if idle >= self.idle_timeout && now - self.last_read >= DISPATCH_GRACE => {
                    metrics::counter!("opendew_http_connections_idle_closed_total").increment(1);
                    // End of file: hyper closes the connection.
                    return Poll::Ready(Ok(()));
                }
                Some(idle) if idle >= self.idle_timeout => self.last_read + DISPATCH_GRACE,
                Some(idle) => now + (self.idle_timeout - idle),
                None => now + self.idle_timeout,
            };
            self.idle.as_mut().reset(next.into());
        }
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
