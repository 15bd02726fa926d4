//! Pieces shared by the load-generating examples (`soak`, `ocpp_loadgen`, `e2e_latency`):
//! a simulated charger's WebSocket connection, the wait for every charger's first report,
//! and latency percentiles. Each example includes it with `#[path = "common/mod.rs"]` and
//! uses what it needs.

#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::WebSocketStream;

pub type Ws = WebSocketStream<TcpStream>;

/// A charger's WebSocket to `url` over a TCP connection to `addr` (no Nagle), offering
/// `subprotocol`, within `timeout`. A failure is counted in `errors`; the first three are
/// printed, prefixed with `who`.
pub async fn connect_charger(
    addr: &str,
    url: &str,
    subprotocol: &'static str,
    timeout: Duration,
    errors: &AtomicU64,
    who: &str,
) -> Option<Ws> {
    let attempt = async {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let mut request = url.into_client_request()?;
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static(subprotocol),
        );
        // tungstenite zeroes `read_buffer_size` bytes before every read (128 KiB by
        // default): keep the load generator's own cost small.
        let config = WebSocketConfig::default()
            .read_buffer_size(4096)
            .write_buffer_size(4096);
        let (ws, _) =
            tokio_tungstenite::client_async_with_config(request, stream, Some(config)).await?;
        anyhow::Ok(ws)
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(Ok(ws)) => Some(ws),
        Ok(Err(e)) => {
            if errors.fetch_add(1, Ordering::Relaxed) < 3 {
                eprintln!("{who}: {url}: connect: {e:#}");
            }
            None
        }
        Err(_) => {
            errors.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

/// Waits until `expected` chargers have reported on `reports` (up or failed), every sender
/// is gone, or `timeout` has passed; returns how many reported.
pub async fn await_reports(
    reports: &mut UnboundedReceiver<()>,
    expected: usize,
    timeout: Duration,
) -> usize {
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let mut reported = 0;
    while reported < expected {
        tokio::select! {
            got = reports.recv() => match got {
                Some(()) => reported += 1,
                None => break,
            },
            () = &mut deadline => break,
        }
    }
    reported
}

/// The `p` quantile (0..=1, nearest rank) of latencies in µs sorted ascending, in ms with
/// two decimals; JSON null without samples.
pub fn percentile_ms(sorted_us: &[u32], p: f64) -> Value {
    if sorted_us.is_empty() {
        return Value::Null;
    }
    let idx = ((sorted_us.len() as f64 - 1.0) * p).round() as usize;
    json!((f64::from(sorted_us[idx]) / 10.0).round() / 100.0)
}
