//! The TCP accept loop shared by the IEC 104 and OCPP servers (the tokio mini-redis
//! pattern): a cap on concurrent connections, accept errors backed off instead of spun on,
//! and every connection task drained before the loop returns on shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tracing::warn;

use crate::health::Heartbeat;

/// Loops that wait for events beat at least this often (see [`crate::health`]).
pub const HEARTBEAT_PERIOD: Duration = Duration::from_secs(1);

/// Accepts until `shutdown` turns true. `start` turns an accepted connection into its
/// task, or refuses it with `None` (the stream is then dropped, closing it).
pub async fn accept_loop<F, Fut>(
    listener: TcpListener,
    service: &'static str,
    max_connections: usize,
    mut shutdown: watch::Receiver<bool>,
    heartbeat: Heartbeat,
    mut start: F,
) where
    F: FnMut(TcpStream, SocketAddr, watch::Receiver<bool>) -> Option<Fut>,
    Fut: Future<Output = ()> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(max_connections));
    let mut connections = JoinSet::new();
    let mut alive = tokio::time::interval(HEARTBEAT_PERIOD);
    loop {
        heartbeat.beat();
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let Ok(slot) = slots.clone().try_acquire_owned() else {
                        warn!(%peer, service, max_connections, "connection refused: connection limit reached");
                        continue;
                    };
                    if let Some(task) = start(stream, peer, shutdown.clone()) {
                        connections.spawn(async move {
                            task.await;
                            drop(slot);
                        });
                    }
                }
                Err(error) => {
                    // Typically EMFILE: back off instead of spinning.
                    warn!(%error, service, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = alive.tick() => {}
            _ = shutdown.changed() => break,
        }
    }
    while connections.join_next().await.is_some() {}
}

/// Sleeps until `deadline`, or forever without one (a `select!` arm for optional timers).
pub async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
