//! Userspace proxy throughput against a direct connection, on loopback.
//!
//! A sink server counts bytes; the bench sends `--mib` MiB over `--conns` parallel
//! connections, first straight to the sink, then through the agent's userspace
//! proxy (the same `Userspace` listener a Service port gets), and prints MiB/s for
//! both. Run: `cargo run --release -p rk-node-agent --example proxy-bench`.

use rk_node_agent::proxy::model::{Protocol, ServicePort};
use rk_node_agent::proxy::userspace::Userspace;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Sends `bytes` on each of `conns` connections to `addr`; MiB/s overall.
async fn run(addr: SocketAddr, conns: u64, bytes: u64) -> anyhow::Result<f64> {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conns {
        tasks.push(tokio::spawn(async move {
            let mut s = TcpStream::connect(addr).await?;
            let buf = vec![7u8; 64 * 1024];
            let mut left = bytes;
            while left > 0 {
                let n = left.min(buf.len() as u64) as usize;
                s.write_all(&buf[..n]).await?;
                left -= n as u64;
            }
            s.shutdown().await?;
            // The sink answers with one byte once it has read everything.
            let mut ack = [0u8; 1];
            s.read_exact(&mut ack).await?;
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok((conns * bytes) as f64 / (1 << 20) as f64 / start.elapsed().as_secs_f64())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mib = arg("--mib", 2048);
    let conns = arg("--conns", 4);
    let sink = TcpListener::bind("127.0.0.1:0").await?;
    let SocketAddr::V4(sink_addr) = sink.local_addr()? else { anyhow::bail!("not IPv4") };
    tokio::spawn(async move {
        while let Ok((mut s, _)) = sink.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                }
                let _ = s.write_all(&[1]).await;
            });
        }
    });
    let sp = ServicePort {
        namespace: "default".into(),
        name: "bench".into(),
        port_name: String::new(),
        protocol: Protocol::Tcp,
        cluster_ip: Some(Ipv4Addr::new(10, 96, 0, 99)),
        port: 80,
        node_port: None,
        load_balancer: false,
        affinity_seconds: None,
        endpoints: vec![sink_addr],
    };
    let mut us = Userspace::new(Ipv4Addr::LOCALHOST);
    let redirects = us.sync(std::slice::from_ref(&sp)).await;
    let proxy: SocketAddrV4 = redirects.first().map(|r| r.1).ok_or_else(|| anyhow::anyhow!("no proxy port"))?;
    let per_conn = (mib << 20) / conns;
    // Warm up both paths, then measure.
    run(SocketAddr::V4(sink_addr), 1, 16 << 20).await?;
    run(SocketAddr::V4(proxy), 1, 16 << 20).await?;
    let direct = run(SocketAddr::V4(sink_addr), conns, per_conn).await?;
    let proxied = run(SocketAddr::V4(proxy), conns, per_conn).await?;
    println!(
        "{mib} MiB over {conns} connections: direct {direct:.0} MiB/s, userspace proxy {proxied:.0} MiB/s ({:.0}%)",
        100.0 * proxied / direct
    );
    us.stop();
    Ok(())
}
