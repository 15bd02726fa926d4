//! The TCP accept loop shared by the IEC 104 and OCPP servers (the tokio mini-redis
//! pattern): one or more listeners (plain and TLS) under one cap on concurrent connections
//! overall and per remote address, accept errors backed off instead of spun on, and every
//! connection task drained before the loop returns on shutdown; and the small tokio helpers
//! the connection tasks share ([`sleep_until`], [`run_blocking`]).

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tracing::warn;

use crate::health::Heartbeat;

/// Shortest time between two log lines about refused connections of one listener.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Loops that wait for events beat at least this often (see [`crate::health`]).
pub const HEARTBEAT_PERIOD: Duration = Duration::from_secs(1);

/// How many connections a listener keeps open at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionCaps {
    /// All remote addresses together.
    pub total: usize,
    /// One remote IP address; 0 = no cap beyond `total`. Stops one host (a flood, a
    /// slowloris client, a looping charger) from taking every slot.
    pub per_ip: usize,
}

impl From<usize> for ConnectionCaps {
    fn from(total: usize) -> Self {
        ConnectionCaps { total, per_ip: 0 }
    }
}

/// Open connections per remote IP; an entry leaves the map with its last connection, so the
/// map never holds more entries than there are open connections.
#[derive(Default)]
struct PerIp {
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection counted in [`PerIp`] until dropped.
struct PerIpSlot {
    table: Arc<PerIp>,
    ip: IpAddr,
}

impl PerIp {
    fn try_acquire(self: &Arc<Self>, ip: IpAddr, cap: usize) -> Option<PerIpSlot> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.entry(ip).or_insert(0);
        if cap > 0 && *count >= cap {
            return None;
        }
        *count += 1;
        Some(PerIpSlot {
            table: self.clone(),
            ip,
        })
    }

    fn open(&self, ip: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.get(&ip).copied().unwrap_or(0)
    }
}

impl Drop for PerIpSlot {
    fn drop(&mut self) {
        let mut open = self.table.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&self.ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// Accepts until `shutdown` turns true. `start` turns an accepted connection into its
/// task, or refuses it with `None` (the stream is then dropped, closing it). A connection
/// over either cap is closed at once and logged.
pub async fn accept_loop<F, Fut>(
    listener: TcpListener,
    service: &'static str,
    caps: impl Into<ConnectionCaps>,
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
        caps,
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
    caps: impl Into<ConnectionCaps>,
    mut shutdown: watch::Receiver<bool>,
    heartbeat: Heartbeat,
    mut start: F,
) where
    F: FnMut(TcpStream, SocketAddr, usize, watch::Receiver<bool>) -> Option<Fut>,
    Fut: Future<Output = ()> + Send + 'static,
{
    let caps = caps.into();
    let max_connections = caps.total;
    let slots = Arc::new(Semaphore::new(max_connections));
    let per_ip = Arc::new(PerIp::default());
    let mut connections = JoinSet::new();
    let mut alive = tokio::time::interval(HEARTBEAT_PERIOD);
    let mut first = 0;
    let mut refused_per_ip: u64 = 0;
    let mut last_refusal_log: Option<std::time::Instant> = None;
    loop {
        heartbeat.beat();
        tokio::select! {
            (index, accepted) = accept_any(&listeners, &mut first) => match accepted {
                Ok((stream, peer)) => {
                    let Ok(slot) = slots.clone().try_acquire_owned() else {
                        warn!(%peer, service, max_connections, "connection refused: connection limit reached");
                        continue;
                    };
                    let Some(ip_slot) = per_ip.try_acquire(peer.ip(), caps.per_ip) else {
                        // At most one line per LOG_EVERY: a flood must not become a log flood.
                        refused_per_ip += 1;
                        if last_refusal_log.is_none_or(|at| at.elapsed() >= LOG_EVERY) {
                            warn!(target: "ocpp809::security", event = "per_ip_connection_cap", %peer, service,
                                per_ip = caps.per_ip, open = per_ip.open(peer.ip()), refused = refused_per_ip,
                                "security event: connection refused: the address already holds the most connections allowed per address");
                            last_refusal_log = Some(std::time::Instant::now());
                            refused_per_ip = 0;
                        }
                        continue;
                    };
                    if let Some(task) = start(stream, peer, index, shutdown.clone()) {
                        connections.spawn(async move {
                            task.await;
                            drop(ip_slot);
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

/// Runs blocking `work` (an argon2 run, an fsync) from a connection task without stalling
/// the other tasks of a multi-thread runtime: the worker hands its tasks to another thread
/// meanwhile. Inline elsewhere (current-thread runtimes in tests, no runtime at all).
pub fn run_blocking<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
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

    #[test]
    fn per_ip_cap_counts_each_address_and_frees_on_drop() {
        let table = Arc::new(PerIp::default());
        let a: IpAddr = [192, 0, 2, 1].into();
        let b: IpAddr = [192, 0, 2, 2].into();
        let first = table.try_acquire(a, 2);
        let second = table.try_acquire(a, 2);
        assert!(first.is_some() && second.is_some());
        assert!(table.try_acquire(a, 2).is_none(), "third from one address");
        assert!(
            table.try_acquire(b, 2).is_some(),
            "another address is not affected"
        );
        drop(first);
        assert_eq!(table.open(a), 1);
        let third = table.try_acquire(a, 2);
        assert!(third.is_some(), "a freed slot is usable again");
        drop((second, third));
        assert_eq!(table.open(a), 0);
        let open = table.open.lock().unwrap();
        assert!(
            !open.contains_key(&a),
            "no entry kept for an address without connections"
        );
    }

    #[test]
    fn per_ip_cap_zero_means_no_cap() {
        let table = Arc::new(PerIp::default());
        let a: IpAddr = [192, 0, 2, 1].into();
        let slots: Vec<_> = (0..1000).filter_map(|_| table.try_acquire(a, 0)).collect();
        assert_eq!(slots.len(), 1000);
        assert_eq!(table.open(a), 1000);
    }
}
