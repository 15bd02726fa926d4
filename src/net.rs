//! The TCP accept loop shared by the IEC 104 and OCPP servers (the tokio mini-redis
//! pattern): one or more listeners (plain and TLS) under one cap on concurrent connections, accept errors backed off instead of spun on,
//! and every connection task drained before the loop returns on shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;
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
    shutdown: watch::Receiver<bool>,
    heartbeat: Heartbeat,
    mut start: F,
) where
    F: FnMut(TcpStream, SocketAddr, watch::Receiver<bool>) -> Option<Fut>,
    Fut: Future<Output = ()> + Send + 'static,
{
    accept_loop_on(
        vec![listener],
        service,
        max_connections,
        shutdown,
        heartbeat,
        |stream, peer, _, shutdown| start(stream, peer, shutdown),
    )
    .await;
}

/// [`accept_loop`] over several listeners of one service (e.g. plain and TLS) that share
/// the connection cap; `start` also gets the index of the listener that accepted.
pub async fn accept_loop_on<F, Fut>(
    listeners: Vec<TcpListener>,
    service: &'static str,
    max_connections: usize,
    mut shutdown: watch::Receiver<bool>,
    heartbeat: Heartbeat,
    mut start: F,
) where
    F: FnMut(TcpStream, SocketAddr, usize, watch::Receiver<bool>) -> Option<Fut>,
    Fut: Future<Output = ()> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(max_connections));
    let mut connections = JoinSet::new();
    let mut alive = tokio::time::interval(HEARTBEAT_PERIOD);
    let mut first = 0;
    loop {
        heartbeat.beat();
        tokio::select! {
            (index, accepted) = accept_any(&listeners, &mut first) => match accepted {
                Ok((stream, peer)) => {
                    let Ok(slot) = slots.clone().try_acquire_owned() else {
                        warn!(%peer, service, max_connections, "connection refused: connection limit reached");
                        continue;
                    };
                    if let Some(task) = start(stream, peer, index, shutdown.clone()) {
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

/// The next connection on any of `listeners` with its listener's index; polling starts
/// one further each time so that a flood on one listener cannot starve the others.
async fn accept_any(
    listeners: &[TcpListener],
    first: &mut usize,
) -> (usize, std::io::Result<(TcpStream, SocketAddr)>) {
    let count = listeners.len();
    let start = *first;
    *first = if count == 0 { 0 } else { (start + 1) % count };
    std::future::poll_fn(|cx| {
        for offset in 0..count {
            let index = (start + offset) % count;
            if let Poll::Ready(accepted) = listeners[index].poll_accept(cx) {
                return Poll::Ready((index, accepted));
            }
        }
        Poll::Pending
    })
    .await
}

/// Sleeps until `deadline`, or forever without one (a `select!` arm for optional timers).
pub async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    /// Two listeners under one cap of 1: a connection held on the first takes the only
    /// slot, so one on the second is closed at once; each start sees its listener's index.
    #[tokio::test]
    async fn listeners_share_one_connection_cap() {
        let bind = || TcpListener::bind("127.0.0.1:0");
        let (Ok(a), Ok(b)) = (bind().await, bind().await) else {
            panic!("cannot bind on loopback");
        };
        let addresses = [a.local_addr(), b.local_addr()];
        let [Ok(address_a), Ok(address_b)] = addresses else {
            panic!("no local address");
        };
        let (started_tx, mut started) = tokio::sync::mpsc::channel(4);
        let (shutdown_tx, shutdown) = watch::channel(false);
        let server = tokio::spawn(accept_loop_on(
            vec![a, b],
            "test",
            1,
            shutdown,
            Heartbeat::detached(),
            move |stream, _, index, mut shutdown| {
                let started = started_tx.clone();
                Some(async move {
                    let _ = started.send(index).await;
                    // Hold the connection (and the slot) until shutdown.
                    let _ = shutdown.changed().await;
                    drop(stream);
                })
            },
        ));
        let _held = TcpStream::connect(address_a).await;
        assert_eq!(started.recv().await, Some(0));
        let refused = TcpStream::connect(address_b).await;
        let Ok(mut refused) = refused else {
            panic!("connect failed: {refused:?}");
        };
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(5), refused.read(&mut byte)).await;
        assert!(
            matches!(read, Ok(Ok(0)) | Ok(Err(_))),
            "the second connection must be closed: {read:?}"
        );
        assert!(started.try_recv().is_err(), "no task for the refused one");
        let _ = shutdown_tx.send(true);
        let _ = server.await;
    }
}
