//! Re-encryption of Secrets after a key rotation (Kubernetes leaves this to the
//! operator: `kubectl get secrets -A -o json | kubectl replace -f -`; rk does it itself).
//!
//! Every few seconds the leader looks for Secrets not sealed with the key that seals
//! now — sealed with an older key, or written before encryption was on — and writes
//! each back unchanged, which seals it with the current key. Each write compares the
//! Secret's revision, so a Secret changed meanwhile is left to the next pass (and was
//! sealed with the current key by that change anyway).

use crate::api::rest::Api;
use std::collections::HashSet;
use std::time::Duration;
use tokio::sync::watch;

/// How often the leader looks.
const PASS: Duration = Duration::from_secs(3);

/// Runs until `stop` turns true.
pub async fn run(api: Api, mut stop: watch::Receiver<bool>) {
    // Secrets already reported as unreadable: reported once per term, not every pass.
    let mut reported = HashSet::new();
    loop {
        let stale = api.store.stale_secrets();
        let mut resealed = 0usize;
        for (key, rev) in stale {
            if *stop.borrow() {
                return;
            }
            match api.store.reseal(&key, rev).await {
                Ok(true) => resealed += 1,
                Ok(false) => {}
                Err(e) => {
                    if reported.insert(key.clone()) {
                        tracing::error!(error = %e, "cannot re-encrypt a Secret");
                    }
                }
            }
        }
        if resealed > 0 {
            tracing::info!(
                secrets = resealed,
                key = api.store.encryption.keyring().write_key(),
                "re-encrypted Secrets with the current key"
            );
        }
        tokio::select! {
            _ = tokio::time::sleep(PASS) => {}
            _ = stop.changed() => return,
        }
    }
}
