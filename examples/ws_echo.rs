//! The ceiling for `bench/ocpp.sh`: a bare tokio-tungstenite server that accepts the OCPP
//! subprotocols and answers every CALL `[2,id,action,payload]` with `[3,id,{}]` after parsing
//! it with serde_json. No OCPP semantics, no validation, no engine.
//!
//! ```text
//! cargo run --release --example ws_echo -- --listen 127.0.0.1:9001
//! ```

use std::net::SocketAddr;

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

#[derive(Parser, Debug)]
#[command(about = "Raw tokio-tungstenite OCPP-J CALL → CALLRESULT echo")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9001")]
    listen: SocketAddr,
    /// Tokio worker threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// tungstenite `read_buffer_size` per connection (tungstenite's default: 128 KiB).
    #[arg(long, default_value_t = 128 * 1024)]
    read_buffer: usize,
    /// tungstenite `write_buffer_size` per connection (tungstenite's default: 128 KiB).
    #[arg(long, default_value_t = 128 * 1024)]
    write_buffer: usize,
}

const PROTOCOLS: [&str; 3] = ["ocpp2.0.1", "ocpp1.6", "ocpp2.1"];

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = args.threads {
        builder.worker_threads(threads);
    }
    let config = WebSocketConfig::default()
        .read_buffer_size(args.read_buffer)
        .write_buffer_size(args.write_buffer);
    builder
        .enable_all()
        .build()?
        .block_on(serve(args.listen, config))
}

async fn serve(listen: SocketAddr, config: WebSocketConfig) -> anyhow::Result<()> {
    let listener = TcpListener::bind(listen).await?;
    eprintln!("ws_echo: listening on {}", listener.local_addr()?);
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                eprintln!("ws_echo: accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        tokio::spawn(session(stream, config));
    }
}

// The error type is fixed by tungstenite's handshake `Callback`.
#[allow(clippy::result_large_err)]
fn negotiate(request: &Request, mut response: Response) -> Result<Response, ErrorResponse> {
    let offered = request
        .headers()
        .get_all("Sec-WebSocket-Protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .find(|p| PROTOCOLS.contains(p));
    let Some(protocol) = offered else {
        let mut refusal = ErrorResponse::new(Some("no common OCPP subprotocol".into()));
        *refusal.status_mut() = StatusCode::BAD_REQUEST;
        return Err(refusal);
    };
    response.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_str(protocol).expect("a known protocol name is a valid header"),
    );
    Ok(response)
}

async fn session(stream: TcpStream, config: WebSocketConfig) {
    let _ = stream.set_nodelay(true);
    let accept = tokio_tungstenite::accept_hdr_async_with_config(stream, negotiate, Some(config));
    let Ok(mut ws) = accept.await else {
        return;
    };
    while let Some(Ok(message)) = ws.next().await {
        let Message::Text(text) = message else {
            if message.is_close() {
                break;
            }
            continue;
        };
        let Ok(Value::Array(frame)) = serde_json::from_str::<Value>(text.as_str()) else {
            continue;
        };
        if frame.first().and_then(Value::as_u64) != Some(2) {
            continue;
        }
        let id = frame.get(1).cloned().unwrap_or(Value::Null);
        let reply = json!([3, id, {}]).to_string();
        if ws.send(Message::text(reply)).await.is_err() {
            break;
        }
    }
}
