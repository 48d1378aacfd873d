//! Kernel mode: the Service data path as one nftables table per node, rendered from
//! the service ports by a pure function and applied with `nft -f -` as one
//! transaction.
//!
//! ```text
//! table ip rk-proxy-<node>-<node-ip>
//!   prerouting (nat, dstnat)  ─┐ pods' traffic (routed off the Docker bridge)
//!   output     (nat, -100)    ─┴► services: ip daddr . proto . port → goto svc_…
//!                                  node IP . proto . nodePort → mark for masquerade, goto svc_…
//!   svc_<service port>:  ip saddr @aff_<ep> goto ep_<ep> (ClientIP affinity, one set per endpoint)
//!                        numgen random mod N vmap { 0 : goto ep_a, 1 : goto ep_b, … }
//!   ep_<endpoint>:       from itself (hairpin) → mark; [update @aff_<ep> { ip saddr }]; dnat to ip:port
//!   postrouting (nat, srcnat):    marked → masquerade
//!   filter_output / filter_forward (filter): a cluster IP port without ready endpoints → reject
//!   filter_input: with a loopback node IP, new packets for 127/8 from outside → drop
//! ```
//!
//! Why per node: several agents may share one host (local clusters, tests); each owns
//! its table, named after the node and its IP, and never touches another's. Agents of
//! one cluster on one host render the same DNATs; the first table's NAT binds a
//! connection and the others never see it again, so that is harmless.
//!
//! Why not rebuild the table on every change: the affinity sets are dynamic state
//! (who sticks to which endpoint). A change flushes our chains and the
//! no-endpoints set and re-adds every rule, deletes chains and sets that are gone,
//! and leaves affinity sets that still exist alone — all in one transaction, so a
//! packet sees either the old rules or the new ones.

use super::model::ServicePort;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddrV4};

/// The mark bit asking postrouting to masquerade (kube-proxy uses the same bit).
pub const MASQUERADE_MARK: u32 = 0x4000;

/// The table of node `node` with address `node_ip`: `rk-proxy-<node>-<ip>`, with
/// anything that is not a letter, digit or `-` turned into `-`.
pub fn table_name(node: &str, node_ip: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c.to_ascii_lowercase() } else { '-' }).collect()
    };
    let mut node = clean(node);
    node.truncate(100);
    format!("rk-proxy-{node}-{}", clean(node_ip))
}

/// FNV-1a, 64 bits: short stable names for chains and sets (the same service port
/// gets the same chain in every sync, so affinity sets survive).
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// Letters, digits and `_` only, at most `max` of them: the readable part of a name.
fn ident(s: &str, max: usize) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).take(max).collect()
}

/// Where the rules of a service port send traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Kernel mode: DNAT straight to the ready endpoints.
    Endpoints,
    /// Userspace mode: DNAT locally generated cluster IP traffic to the agent's
    /// listener for this port (kube-proxy's old userspace mode did the same with a
    /// REDIRECT to its proxy port).
    Redirect(SocketAddrV4),
}

/// A rendered rule set: the table's contents plus the names of what it defines, so
/// the next sync knows what to flush and delete.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ruleset {
    pub table: String,
    /// `table ip T { … }` defining every chain, set and rule.
    pub body: String,
    /// Regular chains and base chains defined by `body`.
    pub chains: BTreeSet<String>,
    /// Sets that `body` refills from scratch (flushed on every sync).
    pub static_sets: BTreeSet<String>,
    /// Dynamic affinity sets: kept across syncs while they exist.
    pub affinity_sets: BTreeSet<String>,
}

/// Rendering inputs besides the service ports.
#[derive(Debug, Clone)]
pub struct Options {
    pub table: String,
    /// NodePorts are served on this address (kube-proxy's nftables mode also serves
    /// the node's primary IP only by default).
    pub node_ip: Option<Ipv4Addr>,
    /// Mark every connection to a cluster IP for masquerade, not only node ports and
    /// hairpin ones (see [`super::ProxyConfig::masquerade_all`]).
    pub masquerade_all: bool,
    /// Ports the agent itself serves at the node address (its Ingress listeners): a
    /// LoadBalancer Service's port among them is not DNATed there, or the agent's own
    /// listener would never see a connection again.
    pub reserved_ports: Vec<u16>,
}

/// Renders the table for `ports`; `targets` gives, per service port (same order),
/// where its traffic goes. Pure: the same input gives the same text.
pub fn render(opts: &Options, ports: &[(ServicePort, Target)]) -> Ruleset {
    let t = &opts.table;
    let mut rs = Ruleset { table: t.clone(), ..Default::default() };
    let mut dispatch = String::new();
    let mut chains = String::new();
    let mut no_endpoints: Vec<String> = Vec::new();
    let mut set_decls = String::new();
    for (sp, target) in ports {
        // The port number too: validation makes port names unique, but two unnamed
        // ports must not share chains if a Service slips through with them.
        let h = fnv(&format!("{}/{}/{}/{}/{:?}", sp.namespace, sp.name, sp.port_name, sp.port, sp.protocol));
        let proto = sp.protocol.nft();
        match target {
            Target::Redirect(to) => {
                // Only the host's own processes (output hook) reach a userspace proxy.
                if let Some(ip) = sp.cluster_ip {
                    let _ = writeln!(dispatch, "\t\tip daddr {ip} {proto} dport {} dnat to {to}", sp.port);
                }
                continue;
            }
            Target::Endpoints => {}
        }
        if sp.endpoints.is_empty() {
            if let Some(ip) = sp.cluster_ip {
                no_endpoints.push(format!("{ip} . {proto} . {}", sp.port));
            }
            continue;
        }
        let svc_chain = format!("svc_{:08x}_{}", h as u32, ident(&sp.key(), 60));
        if let Some(ip) = sp.cluster_ip {
            let mark = if opts.masquerade_all {
                format!("meta mark set meta mark | {MASQUERADE_MARK:#x} ")
            } else {
                String::new()
            };
            let _ = writeln!(dispatch, "\t\tip daddr {ip} {proto} dport {} {mark}goto {svc_chain}", sp.port);
        }
        // Traffic to a node port (and a LoadBalancer's port at the node's address) is
        // masqueraded (externalTrafficPolicy: Cluster), so replies come back through
        // this node whichever endpoint serves it.
        let lb_port = sp.load_balancer.then_some(sp.port).filter(|p| !opts.reserved_ports.contains(p));
        for np in sp.node_port.into_iter().chain(lb_port) {
            if let Some(node_ip) = opts.node_ip {
                let _ = writeln!(
                    dispatch,
                    "\t\tip daddr {node_ip} {proto} dport {np} meta mark set meta mark | {MASQUERADE_MARK:#x} goto {svc_chain}"
                );
            }
        }
        let _ = writeln!(chains, "\tchain {svc_chain} {{");
        let mut eps = Vec::new();
        for ep in &sp.endpoints {
            let ep_chain = format!("ep_{:08x}_{}_{}", h as u32, ident(&ep.ip().to_string(), 15), ep.port());
            let aff = sp
                .affinity_seconds
                .map(|secs| format!("aff_{:08x}_{}_{}_{secs}", h as u32, ident(&ep.ip().to_string(), 15), ep.port()));
            if let Some(set) = &aff {
                let _ = writeln!(chains, "\t\tip saddr @{set} goto {ep_chain}");
            }
            eps.push((ep_chain, aff, ep));
        }
        let vmap: Vec<String> = eps.iter().enumerate().map(|(i, (c, _, _))| format!("{i} : goto {c}")).collect();
        let _ = writeln!(chains, "\t\tnumgen random mod {} vmap {{ {} }}", eps.len(), vmap.join(", "));
        let _ = writeln!(chains, "\t}}");
        for (ep_chain, aff, ep) in eps {
            let _ = writeln!(chains, "\tchain {ep_chain} {{");
            // A pod reaching itself through its Service: without masquerade its reply
            // would go straight to itself from its own address, not the cluster IP.
            let _ = writeln!(chains, "\t\tip saddr {} meta mark set meta mark | {MASQUERADE_MARK:#x}", ep.ip());
            if let (Some(set), Some(secs)) = (&aff, sp.affinity_seconds) {
                let _ = writeln!(chains, "\t\tupdate @{set} {{ ip saddr timeout {secs}s }}");
                let _ = writeln!(
                    set_decls,
                    "\tset {set} {{\n\t\ttype ipv4_addr\n\t\tflags dynamic,timeout\n\t\ttimeout {secs}s\n\t}}"
                );
                rs.affinity_sets.insert(set.clone());
            }
            let _ = writeln!(chains, "\t\tmeta l4proto {proto} dnat to {ep}");
            let _ = writeln!(chains, "\t}}");
            rs.chains.insert(ep_chain);
        }
        rs.chains.insert(svc_chain);
    }
    let mut body = format!("table ip {t} {{\n");
    body.push_str("\tset no_endpoints {\n\t\ttype ipv4_addr . inet_proto . inet_service\n");
    if !no_endpoints.is_empty() {
        let _ = writeln!(body, "\t\telements = {{ {} }}", no_endpoints.join(", "));
    }
    body.push_str("\t}\n");
    rs.static_sets.insert("no_endpoints".into());
    body.push_str(&set_decls);
    let _ = write!(body, "\tchain services {{\n{dispatch}\t}}\n{chains}");
    // Flushed on every sync like the others: its rules are remade from scratch.
    rs.chains.insert("services".into());
    let base = [
        ("prerouting", "nat hook prerouting priority dstnat", "jump services"),
        ("output", "nat hook output priority -100", "jump services"),
        (
            "postrouting",
            "nat hook postrouting priority srcnat",
            "meta mark & 0x4000 == 0x4000 meta mark set meta mark ^ 0x4000 masquerade",
        ),
        (
            "filter_output",
            "filter hook output priority filter",
            "ip daddr . meta l4proto . th dport @no_endpoints reject",
        ),
        (
            "filter_forward",
            "filter hook forward priority filter",
            "ip daddr . meta l4proto . th dport @no_endpoints reject",
        ),
    ];
    for (name, hook, rule) in base {
        let _ = writeln!(body, "\tchain {name} {{\n\t\ttype {hook}; policy accept;\n\t\t{rule}\n\t}}");
        rs.chains.insert(name.into());
    }
    if opts.node_ip.is_some_and(|ip| ip.is_loopback()) {
        // Node ports on a loopback address need route_localnet, which would also
        // let other machines send to 127/8 through our interfaces; drop those, as
        // kube-proxy does (CVE-2020-8558).
        let _ = writeln!(
            body,
            "\tchain filter_input {{\n\t\ttype filter hook input priority filter; policy accept;\n\
             \t\tiifname != \"lo\" ip daddr 127.0.0.0/8 ct state new drop\n\t}}"
        );
        rs.chains.insert("filter_input".into());
    }
    body.push_str("}\n");
    rs.body = body;
    rs
}

/// The nft script moving the kernel from `prev` (what we applied last; `None` when
/// unknown, e.g. at start or after a failed apply) to `next`, as one transaction.
pub fn transaction(prev: Option<&Ruleset>, next: &Ruleset) -> String {
    let t = &next.table;
    let mut s = String::new();
    match prev {
        None => {
            // Creating an empty table first makes the delete valid whether or not a
            // table was left behind (by a crashed agent, say).
            let _ = writeln!(s, "table ip {t} {{}}\ndelete table ip {t}");
        }
        Some(prev) => {
            for c in &prev.chains {
                let _ = writeln!(s, "flush chain ip {t} {c}");
            }
            for set in &prev.static_sets {
                let _ = writeln!(s, "flush set ip {t} {set}");
            }
            // Rules referring to these are gone with the flushes above.
            for c in prev.chains.difference(&next.chains) {
                let _ = writeln!(s, "delete chain ip {t} {c}");
            }
            for set in prev.affinity_sets.difference(&next.affinity_sets) {
                let _ = writeln!(s, "delete set ip {t} {set}");
            }
        }
    }
    s.push_str(&next.body);
    s
}

/// The script removing table `table` (fine if it does not exist).
pub fn cleanup(table: &str) -> String {
    format!("table ip {table} {{}}\ndelete table ip {table}\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::model::Protocol;

    fn sp(name: &str, eps: &[&str]) -> ServicePort {
        ServicePort {
            namespace: "default".into(),
            name: name.into(),
            port_name: "http".into(),
            protocol: Protocol::Tcp,
            cluster_ip: Some(Ipv4Addr::new(10, 96, 0, 10)),
            port: 80,
            node_port: Some(30080),
            load_balancer: false,
            affinity_seconds: None,
            endpoints: eps.iter().map(|e| e.parse().expect("test endpoint")).collect(),
        }
    }

    fn opts() -> Options {
        Options {
            table: table_name("node-1", "127.0.0.5"),
            node_ip: Some(Ipv4Addr::new(127, 0, 0, 5)),
            masquerade_all: false,
            reserved_ports: Vec::new(),
        }
    }

    #[test]
    fn table_names_are_safe_identifiers() {
        assert_eq!(table_name("node-1", "10.0.0.7"), "rk-proxy-node-1-10-0-0-7");
        assert_eq!(table_name("Weird name;{}", "::1"), "rk-proxy-weird-name------1");
    }

    #[test]
    fn spreads_over_ready_endpoints_with_numgen() {
        let rs = render(&opts(), &[(sp("web", &["172.18.0.2:8080", "172.18.0.3:8080"]), Target::Endpoints)]);
        let b = &rs.body;
        assert!(b.starts_with("table ip rk-proxy-node-1-127-0-0-5 {"), "{b}");
        assert!(b.contains("ip daddr 10.96.0.10 tcp dport 80 goto svc_"), "{b}");
        assert!(b.contains("ip daddr 127.0.0.5 tcp dport 30080 meta mark set meta mark | 0x4000 goto svc_"), "{b}");
        assert!(b.contains("numgen random mod 2 vmap { 0 : goto ep_"), "{b}");
        assert!(b.contains("meta l4proto tcp dnat to 172.18.0.2:8080"), "{b}");
        assert!(b.contains("meta l4proto tcp dnat to 172.18.0.3:8080"), "{b}");
        assert!(b.contains("ip saddr 172.18.0.2 meta mark set meta mark | 0x4000"), "{b}");
        assert!(b.contains("iifname != \"lo\" ip daddr 127.0.0.0/8 ct state new drop"), "{b}");
        assert!(!b.contains("elements"), "no service without endpoints: {b}");
        assert_eq!(rs.chains.len(), 3 + 6 + 1, "{:?}", rs.chains);
        assert!(rs.affinity_sets.is_empty());
        // Same input, same text (syncs compare rule sets).
        assert_eq!(rs, render(&opts(), &[(sp("web", &["172.18.0.2:8080", "172.18.0.3:8080"]), Target::Endpoints)]));
    }

    #[test]
    fn load_balancers_are_served_on_the_node_address_at_their_port() {
        let mut p = sp("web", &["172.18.0.2:8080"]);
        p.load_balancer = true;
        let rs = render(&opts(), &[(p, Target::Endpoints)]);
        assert!(
            rs.body.contains("ip daddr 127.0.0.5 tcp dport 80 meta mark set meta mark | 0x4000 goto svc_"),
            "{}",
            rs.body
        );
        assert!(rs.body.contains("ip daddr 127.0.0.5 tcp dport 30080 meta mark"), "{}", rs.body);
        let plain = render(&opts(), &[(sp("web", &["172.18.0.2:8080"]), Target::Endpoints)]);
        assert!(!plain.body.contains("ip daddr 127.0.0.5 tcp dport 80 "), "{}", plain.body);
        // The node's own Ingress port stays the Ingress's.
        let mut p = sp("web", &["172.18.0.2:8080"]);
        p.load_balancer = true;
        let reserved = render(&Options { reserved_ports: vec![80], ..opts() }, &[(p, Target::Endpoints)]);
        assert!(!reserved.body.contains("ip daddr 127.0.0.5 tcp dport 80 "), "{}", reserved.body);
        assert!(reserved.body.contains("ip daddr 127.0.0.5 tcp dport 30080 "), "{}", reserved.body);
    }

    #[test]
    fn masquerade_all_marks_cluster_ip_traffic_too() {
        let ports = [(sp("web", &["172.18.0.2:8080"]), Target::Endpoints)];
        let plain = render(&opts(), &ports);
        assert!(plain.body.contains("ip daddr 10.96.0.10 tcp dport 80 goto svc_"), "{}", plain.body);
        let all = render(&Options { masquerade_all: true, ..opts() }, &ports);
        assert!(
            all.body.contains("ip daddr 10.96.0.10 tcp dport 80 meta mark set meta mark | 0x4000 goto svc_"),
            "{}",
            all.body
        );
        assert!(all.body.contains("meta mark & 0x4000 == 0x4000 meta mark set meta mark ^ 0x4000 masquerade"));
    }

    #[test]
    fn no_ready_endpoints_rejects() {
        let rs = render(&opts(), &[(sp("web", &[]), Target::Endpoints)]);
        assert!(rs.body.contains("elements = { 10.96.0.10 . tcp . 80 }"), "{}", rs.body);
        assert!(!rs.body.contains("svc_"), "{}", rs.body);
        assert!(rs.body.contains("ip daddr . meta l4proto . th dport @no_endpoints reject"));
    }

    #[test]
    fn client_ip_affinity_uses_a_dynamic_set_per_endpoint() {
        let mut p = sp("web", &["172.18.0.2:8080", "172.18.0.3:8080"]);
        p.affinity_seconds = Some(60);
        let rs = render(&opts(), &[(p, Target::Endpoints)]);
        assert_eq!(rs.affinity_sets.len(), 2);
        for set in &rs.affinity_sets {
            assert!(rs.body.contains(&format!("set {set} {{\n\t\ttype ipv4_addr\n\t\tflags dynamic,timeout")));
            assert!(rs.body.contains(&format!("ip saddr @{set} goto ep_")));
            assert!(rs.body.contains(&format!("update @{set} {{ ip saddr timeout 60s }}")));
        }
    }

    #[test]
    fn redirect_targets_only_dnat_cluster_ips() {
        let rs = render(
            &Options { table: "t".into(), node_ip: Some(Ipv4Addr::new(10, 0, 0, 1)), ..opts() },
            &[(sp("web", &["10.0.0.1:8080"]), Target::Redirect("10.0.0.1:41000".parse().expect("addr")))],
        );
        assert!(rs.body.contains("ip daddr 10.96.0.10 tcp dport 80 dnat to 10.0.0.1:41000"), "{}", rs.body);
        assert!(!rs.body.contains("30080") && !rs.body.contains("svc_") && !rs.body.contains("filter_input"));
    }

    #[test]
    fn transactions_flush_and_delete_what_is_gone() {
        let mut a = sp("web", &["172.18.0.2:8080", "172.18.0.3:8080"]);
        a.affinity_seconds = Some(60);
        let first = render(&opts(), &[(a.clone(), Target::Endpoints)]);
        let t = transaction(None, &first);
        assert!(t.starts_with("table ip rk-proxy-node-1-127-0-0-5 {}\ndelete table ip rk-proxy-node-1-127-0-0-5\n"));
        a.endpoints.pop();
        let second = render(&opts(), &[(a, Target::Endpoints)]);
        let t = transaction(Some(&first), &second);
        let gone_chain = first.chains.difference(&second.chains).next().expect("a chain is gone").clone();
        let gone_set = first.affinity_sets.difference(&second.affinity_sets).next().expect("a set is gone").clone();
        let kept_set = second.affinity_sets.iter().next().expect("a set is kept").clone();
        assert!(t.contains(&format!("delete chain ip rk-proxy-node-1-127-0-0-5 {gone_chain}\n")), "{t}");
        assert!(t.contains(&format!("delete set ip rk-proxy-node-1-127-0-0-5 {gone_set}\n")), "{t}");
        assert!(!t.contains(&format!("delete set ip rk-proxy-node-1-127-0-0-5 {kept_set}")), "{t}");
        assert!(!t.contains("delete table"), "{t}");
        assert!(t.contains("flush set ip rk-proxy-node-1-127-0-0-5 no_endpoints\n"));
        // The dispatch chain is remade too, not appended to (its old rules would
        // keep jumping to chains this transaction deletes).
        assert!(t.contains("flush chain ip rk-proxy-node-1-127-0-0-5 services\n"), "{t}");
    }

    /// The kernel's own parser accepts what we render (`nft -c`: checked, not applied),
    /// including an update transaction. Needs nft and CAP_NET_ADMIN, as the agent does.
    #[test]
    fn nft_accepts_rendered_rules() {
        let ok = std::process::Command::new("nft").args(["list", "tables"]).output().is_ok_and(|o| o.status.success());
        if !ok {
            eprintln!("nft is not usable here; skipping the syntax check");
            return;
        }
        let check = |script: &str| {
            let mut child = std::process::Command::new("nft")
                .args(["-c", "-f", "-"])
                .stdin(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("run nft");
            std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), script.as_bytes()).expect("write");
            let out = child.wait_with_output().expect("nft");
            assert!(out.status.success(), "nft -c refused:\n{script}\n{}", String::from_utf8_lossy(&out.stderr));
        };
        let mut a = sp("web", &["172.18.0.2:8080", "172.18.0.3:8080"]);
        a.affinity_seconds = Some(60);
        let mut u = sp("dns", &["172.18.0.4:53"]);
        u.protocol = Protocol::Udp;
        u.port = 53;
        u.node_port = None;
        let empty = sp("idle", &[]);
        let rs = render(
            &Options { table: "rk-proxy-unit-test".into(), ..opts() },
            &[(a, Target::Endpoints), (u, Target::Endpoints), (empty, Target::Endpoints)],
        );
        check(&transaction(None, &rs));
        let all = render(
            &Options { table: "rk-proxy-unit-test".into(), masquerade_all: true, ..opts() },
            &[(sp("web", &["172.18.0.2:8080"]), Target::Endpoints)],
        );
        check(&transaction(None, &all));
        let redirect = render(
            &Options { table: "rk-proxy-unit-test".into(), node_ip: Some(Ipv4Addr::new(10, 0, 0, 1)), ..opts() },
            &[(sp("web", &[]), Target::Redirect("10.0.0.1:41000".parse().expect("addr")))],
        );
        check(&transaction(None, &redirect));
    }
}
