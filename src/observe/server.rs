//! The HTTP/1.1 server of `[http]`: `GET /metrics`, `GET /` (status page), `GET /health`.
//! Read-only: GET and HEAD only (405 otherwise), anything else 404. Bounded: a cap on
//! concurrent connections, a request-head size limit, a header read timeout and a deadline
//! per connection; one request per connection (no keep-alive), no request body is read.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tracing::debug;

use super::metrics::{Gauge, Metrics, StationSample, CONTENT_TYPE as METRICS_TYPE};
use super::status::{self, Directory, Overview};
use crate::station::StationHandle;

/// Concurrent HTTP connections; scrapers and an operator's browser need a handful.
const MAX_CONNECTIONS: usize = 16;
/// Request line plus headers; hyper's minimum buffer is 8 KiB.
const MAX_REQUEST_HEAD: usize = 16 * 1024;
/// Time a client has to send its request head.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Time a whole connection may take (a client that does not read the answer is dropped).
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);

/// What the pages are made of.
#[derive(Clone)]
pub struct Observer {
    pub metrics: Arc<Metrics>,
    pub station: StationHandle,
    pub directory: Arc<Directory>,
    pub station_name: String,
    pub iec101_lines: usize,
}

impl Observer {
    fn metrics_text(&self) -> String {
        let sample = self.station.with(|s| StationSample {
            queued: s.queued(),
            stats: s.stats(),
        });
        self.metrics.render(sample)
    }

    fn status_page(&self) -> String {
        let points = self.directory.points();
        let (states, queued) = self
            .station
            .with(|s| (status::read_points(s, &points), s.queued()));
        let m = &self.metrics;
        let overview = Overview {
            station: self.station_name.clone(),
            version: env!("CARGO_PKG_VERSION"),
            uptime: m.uptime(),
            iec104_masters: m.gauge(Gauge::Iec104Masters),
            iec101_lines_active: m.gauge(Gauge::Iec101LinesActive),
            iec101_lines: self.iec101_lines,
            chargers_connected: m.gauge(Gauge::ChargersConnected),
            events_queued: queued,
            mqtt: m.mqtt().map(|s| (s.connected(), s.buffered())),
        };
        status::render(&overview, &points, &states)
    }

    /// The answer to one request (never reads its body).
    pub fn respond<B>(&self, request: &Request<B>) -> Response<Full<Bytes>> {
        if request.method() != Method::GET && request.method() != Method::HEAD {
            let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            return response;
        }
        match request.uri().path() {
            "/metrics" => with_type(StatusCode::OK, METRICS_TYPE, self.metrics_text()),
            "/" => with_type(
                StatusCode::OK,
                "text/html; charset=utf-8",
                self.status_page(),
            ),
            "/health" => plain(StatusCode::OK, "ok\n"),
            _ => plain(StatusCode::NOT_FOUND, "not found\n"),
        }
    }
}

fn with_type(
    status: StatusCode,
    content_type: &'static str,
    body: String,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn plain(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    with_type(status, "text/plain; charset=utf-8", body.to_string())
}

/// Serves until `shutdown` turns true, then lets connections finish briefly.
pub async fn serve(
    listener: TcpListener,
    observer: Observer,
    shutdown: watch::Receiver<bool>,
    heartbeat: crate::health::Heartbeat,
) {
    let observer = Arc::new(observer);
    crate::net::accept_loop(
        listener,
        "HTTP",
        MAX_CONNECTIONS,
        shutdown,
        heartbeat,
        |stream, _peer, shutdown| Some(connection(stream, observer.clone(), shutdown)),
    )
    .await;
}

async fn connection(
    stream: TcpStream,
    observer: Arc<Observer>,
    mut shutdown: watch::Receiver<bool>,
) {
    let service = hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
        let response = observer.respond(&request);
        async move { Ok::<_, Infallible>(response) }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(MAX_REQUEST_HEAD)
        .keep_alive(false);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        result = tokio::time::timeout(CONNECTION_TIMEOUT, conn.as_mut()) => match result {
            Ok(Ok(())) => {}
            Ok(Err(error)) => debug!(%error, "HTTP connection failed"),
            Err(_) => debug!("HTTP connection timed out"),
        },
        _ = shutdown.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_millis(500), conn.as_mut()).await;
        }
    }
}
