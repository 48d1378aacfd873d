//! A TCP proxy that can cut traffic: the fault injector for multi-process tests.
//!
//! Each replica's peer port sits behind one proxy. `set_down(true)` refuses and
//! cuts every connection (nothing reaches the replica); `block(ip)` does the same
//! for connections coming from one replica's address (replicas dial from their own
//! loopback address). Existing connections are cut the moment a rule changes.

use anyhow::Result;
use parking_lot::Mutex;
use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

#[derive(Default, Clone, PartialEq, Eq)]
struct Rules {
    down: bool,
    blocked: HashSet<IpAddr>,
}

impl Rules {
    fn allows(&self, from: IpAddr) -> bool {
        !self.down && !self.blocked.contains(&from)
    }
}

pub struct FaultProxy {
    rules: Arc<Mutex<Rules>>,
    changed: watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    pub async fn start(listen: SocketAddr, target: SocketAddr) -> Result<FaultProxy> {
        let listener = TcpListener::bind(listen).await?;
        let rules = Arc::new(Mutex::new(Rules::default()));
        let (changed, _) = watch::channel(0u64);
        let task = tokio::spawn(accept_loop(listener, target, rules.clone(), changed.clone()));
        Ok(FaultProxy { rules, changed, task })
    }

    fn update(&self, f: impl FnOnce(&mut Rules)) {
        f(&mut self.rules.lock());
        self.changed.send_modify(|v| *v += 1);
    }

    pub fn set_down(&self, down: bool) {
        self.update(|r| r.down = down);
    }

    pub fn block(&self, from: IpAddr) {
        self.update(|r| {
            r.blocked.insert(from);
        });
    }

    pub fn unblock_all(&self) {
        self.update(|r| r.blocked.clear());
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, target: SocketAddr, rules: Arc<Mutex<Rules>>, changed: watch::Sender<u64>) {
    loop {
        let Ok((inbound, from)) = listener.accept().await else { continue };
        if !rules.lock().allows(from.ip()) {
            drop(inbound);
            continue;
        }
        let rules = rules.clone();
        let mut changes = changed.subscribe();
        tokio::spawn(async move {
            let Ok(outbound) = TcpStream::connect(target).await else { return };
            let _ = inbound.set_nodelay(true);
            let _ = outbound.set_nodelay(true);
            let (mut ri, mut wi) = inbound.into_split();
            let (mut ro, mut wo) = outbound.into_split();
            let pipe = async {
                tokio::select! {
                    _ = tokio::io::copy(&mut ri, &mut wo) => {}
                    _ = tokio::io::copy(&mut ro, &mut wi) => {}
                }
            };
            let cut = async {
                loop {
                    if changes.changed().await.is_err() || !rules.lock().allows(from.ip()) {
                        return;
                    }
                }
            };
            tokio::select! {
                _ = pipe => {}
                _ = cut => {}
            }
        });
    }
}
