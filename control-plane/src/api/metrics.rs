//! Prometheus metrics of the API server and the store, served at `/metrics` in the
//! text exposition format: request counts and latencies by verb, resource and
//! code (named like kube-apiserver's), plus raft and store figures.

use crate::raft::node::{RaftHandle, Role};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Upper bounds of the latency histogram buckets, in seconds.
const BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

#[derive(Default)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, &'static str, u16), u64>>,
    latency: Mutex<BTreeMap<(&'static str, &'static str), Histogram>>,
}

impl Metrics {
    pub fn observe(&self, verb: &'static str, resource: &'static str, code: u16, took: Duration) {
        *self.requests.lock().entry((verb, resource, code)).or_default() += 1;
        // Watches last as long as the client stays; their duration says nothing.
        if verb == "watch" {
            return;
        }
        let secs = took.as_secs_f64();
        let mut lat = self.latency.lock();
        let h = lat.entry((verb, resource)).or_default();
        if h.counts.is_empty() {
            h.counts = vec![0; BUCKETS.len()];
        }
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                h.counts[i] += 1;
            }
        }
        h.sum += secs;
        h.count += 1;
    }

    /// The exposition text.
    pub fn render(&self, raft: &RaftHandle) -> String {
        let mut out = String::new();
        out.push_str("# HELP apiserver_request_total Counter of API requests by verb, resource and HTTP code.\n");
        out.push_str("# TYPE apiserver_request_total counter\n");
        for ((verb, resource, code), n) in self.requests.lock().iter() {
            let _ =
                writeln!(out, "apiserver_request_total{{verb=\"{verb}\",resource=\"{resource}\",code=\"{code}\"}} {n}");
        }
        out.push_str("# HELP apiserver_request_duration_seconds Latency of API requests (watches excluded).\n");
        out.push_str("# TYPE apiserver_request_duration_seconds histogram\n");
        for ((verb, resource), h) in self.latency.lock().iter() {
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "apiserver_request_duration_seconds_bucket{{verb=\"{verb}\",resource=\"{resource}\",le=\"{b}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(
                out,
                "apiserver_request_duration_seconds_bucket{{verb=\"{verb}\",resource=\"{resource}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "apiserver_request_duration_seconds_sum{{verb=\"{verb}\",resource=\"{resource}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "apiserver_request_duration_seconds_count{{verb=\"{verb}\",resource=\"{resource}\"}} {}",
                h.count
            );
        }
        let shared = &raft.shared;
        let leadership = raft.leadership();
        let (revision, compacted, keys, size) = {
            let sm = shared.sm.read();
            (sm.mvcc.current_revision(), sm.mvcc.compact_revision(), sm.mvcc.key_count(), sm.mvcc.approximate_size())
        };
        let gauges: [(&str, &str, f64); 10] = [
            ("rk_raft_term", "Current raft term.", leadership.term as f64),
            ("rk_raft_is_leader", "1 if this replica leads.", f64::from(u8::from(leadership.role == Role::Leader))),
            ("rk_raft_has_leader", "1 if this replica knows a leader.", f64::from(u8::from(leadership.leader != 0))),
            ("rk_raft_commit_index", "Raft commit index.", shared.commit_index.load(Ordering::Relaxed) as f64),
            ("rk_raft_applied_index", "Raft applied index.", shared.applied_index.load(Ordering::Relaxed) as f64),
            ("rk_store_revision", "Store revision.", revision as f64),
            ("rk_store_compact_revision", "Store history compacted up to this revision.", compacted as f64),
            ("rk_store_keys", "Live keys in the store.", keys as f64),
            ("rk_store_size_bytes", "Approximate bytes held by the store, history included.", size as f64),
            ("rk_store_watchers", "Open watchers.", shared.hub.len() as f64),
        ];
        for (name, help, value) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}");
        }
        let _ = writeln!(
            out,
            "# HELP rk_raft_log_disk_bytes Bytes of raft log and snapshots on disk.\n# TYPE rk_raft_log_disk_bytes gauge\nrk_raft_log_disk_bytes {}",
            shared.log.disk_size()
        );
        out
    }
}
