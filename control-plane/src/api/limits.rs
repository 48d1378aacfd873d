//! Per-client limits, so one misbehaving client cannot starve the others: how many
//! watches each may hold open and how many other requests each may have in flight on
//! this replica. Over its share a client gets `429 TooManyRequests` with `Retry-After`,
//! as kube-apiserver's priority and fairness answers; other clients are not affected.
//!
//! A client is the user its credentials name (an `--insecure-dev` request without any:
//! its address). Requests body sizes are bounded elsewhere (`http::MAX_BODY`).

use super::error::ApiError;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;

/// Defaults: far above what kubectl, a controller or a node agent needs, far below what
/// exhausts a replica.
pub const DEFAULT_MAX_WATCHES: usize = 1000;
pub const DEFAULT_MAX_IN_FLIGHT: usize = 200;

#[derive(Debug)]
pub struct ClientLimits {
    max_watches: usize,
    max_in_flight: usize,
    /// client → (open watches, requests in flight).
    counts: Mutex<HashMap<String, (usize, usize)>>,
}

impl Default for ClientLimits {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_WATCHES, DEFAULT_MAX_IN_FLIGHT)
    }
}

/// What a slot holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Watch,
    Request,
}

/// A held slot; dropping it gives it back.
#[derive(Debug)]
pub struct Slot {
    limits: Arc<ClientLimits>,
    client: String,
    kind: Kind,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.limits.counts.lock();
        if let Some(c) = counts.get_mut(&self.client) {
            match self.kind {
                Kind::Watch => c.0 = c.0.saturating_sub(1),
                Kind::Request => c.1 = c.1.saturating_sub(1),
            }
            if *c == (0, 0) {
                counts.remove(&self.client);
            }
        }
    }
}

impl ClientLimits {
    pub fn new(max_watches: usize, max_in_flight: usize) -> Self {
        Self { max_watches, max_in_flight, counts: Mutex::new(HashMap::new()) }
    }

    /// A slot of `kind` for `client`, or 429 when it holds its share already.
    pub fn acquire(self: &Arc<Self>, client: &str, kind: Kind) -> Result<Slot, ApiError> {
        let mut counts = self.counts.lock();
        let c = counts.entry(client.to_string()).or_default();
        let (held, max, what) = match kind {
            Kind::Watch => (&mut c.0, self.max_watches, "open watches"),
            Kind::Request => (&mut c.1, self.max_in_flight, "requests in flight"),
        };
        if *held >= max {
            return Err(ApiError::TooManyRequests(format!(
                "too many requests: {client} has {held} {what} on this replica (at most {max}); retry later"
            )));
        }
        *held += 1;
        Ok(Slot { limits: self.clone(), client: client.to_string(), kind })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_client_has_its_own_share_and_slots_come_back() {
        let limits = Arc::new(ClientLimits::new(2, 1));
        let a1 = limits.acquire("a", Kind::Watch).unwrap();
        let _a2 = limits.acquire("a", Kind::Watch).unwrap();
        let err = limits.acquire("a", Kind::Watch).unwrap_err();
        assert!(matches!(err, ApiError::TooManyRequests(_)), "{err}");
        assert!(err.to_string().contains("a has 2 open watches"), "{err}");
        // Another client, and another kind, are unaffected.
        let _b = limits.acquire("b", Kind::Watch).unwrap();
        let r = limits.acquire("a", Kind::Request).unwrap();
        assert!(limits.acquire("a", Kind::Request).is_err());
        drop(r);
        drop(a1);
        let _again = limits.acquire("a", Kind::Watch).unwrap();
        let _r = limits.acquire("a", Kind::Request).unwrap();
    }

    #[test]
    fn a_client_with_nothing_held_is_forgotten() {
        let limits = Arc::new(ClientLimits::new(1, 1));
        drop(limits.acquire("gone", Kind::Watch).unwrap());
        assert!(limits.counts.lock().is_empty());
    }
}
