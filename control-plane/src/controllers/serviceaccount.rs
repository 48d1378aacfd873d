//! The service account controller: every active namespace has a ServiceAccount named
//! `default` (Kubernetes' `serviceaccounts-controller`), made when the namespace appears
//! and made again if someone deletes it. Pods name it when they name none. It also
//! publishes the cluster CA's certificate in every namespace as ConfigMap
//! `kube-root-ca.crt` (Kubernetes' root-ca-cert-publisher), which the token volume of
//! every pod mounts as `ca.crt`.

use super::runtime::{Action, ControllerError, Informer, Key, Reconciler};
use crate::api::error::ApiError;
use crate::api::registry;
use crate::api::rest::Api;
use serde_json::{Value, json};
use std::sync::Arc;

/// The account every namespace has.
pub const DEFAULT: &str = "default";

/// The ConfigMap with the cluster CA's certificate, in every namespace.
pub const ROOT_CA_CONFIGMAP: &str = "kube-root-ca.crt";

/// Whether namespace `ns` (as cached) needs its default account created.
pub fn needs_default(ns: Option<&Value>, has_default: bool) -> bool {
    let Some(ns) = ns else { return false };
    let terminating = ns.pointer("/metadata/deletionTimestamp").is_some()
        || ns.pointer("/status/phase").and_then(Value::as_str) == Some("Terminating");
    !terminating && !has_default
}

pub struct ServiceAccountController {
    pub api: Api,
    pub namespaces: Arc<Informer>,
    pub accounts: Arc<Informer>,
    /// The cluster CA's certificate to publish (PEM), if the cluster has one.
    pub root_ca: Option<String>,
}

impl ServiceAccountController {
    /// Creates `kube-root-ca.crt` in `ns`, or puts the current certificate back in it.
    async fn publish_root_ca(&self, ns: &str, pem: &str) -> Result<(), ApiError> {
        let Some(res) = registry::lookup("configmaps") else { return Ok(()) };
        match self.api.get(res, Some(ns), ROOT_CA_CONFIGMAP, crate::api::store::Freshness::Any).await {
            Ok(s) => {
                let mut cm = s.object()?;
                if cm.pointer("/data/ca.crt").and_then(Value::as_str) == Some(pem) {
                    return Ok(());
                }
                cm["data"] = json!({"ca.crt": pem});
                let main = crate::api::rest::Target::Main;
                match self
                    .api
                    .update(res, Some(ns), ROOT_CA_CONFIGMAP, cm, main, &Default::default(), self.name())
                    .await
                {
                    Ok(_) | Err(ApiError::Conflict { .. }) => Ok(()),
                    Err(e) => Err(e),
                }
            }
            Err(ApiError::NotFound { .. }) => {
                let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": ROOT_CA_CONFIGMAP, "namespace": ns,
                                 "annotations": {"kubernetes.io/description": "Contains a CA bundle that can be used \
                                   to verify the kube-apiserver when using internal endpoints such as the internal \
                                   service IP or kubernetes.default.svc. No other usage is guaranteed across distributions \
                                   of Kubernetes clusters."}},
                    "data": {"ca.crt": pem}});
                match self.api.create(res, Some(ns), cm, &Default::default(), self.name()).await {
                    Ok(_) | Err(ApiError::AlreadyExists { .. }) | Err(ApiError::Forbidden(_)) => Ok(()),
                    Err(ApiError::NotFound { .. }) => Ok(()),
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }
}

#[tonic::async_trait]
impl Reconciler for ServiceAccountController {
    fn name(&self) -> &'static str {
        "serviceaccount-controller"
    }

    /// `key` is a namespace's name.
    async fn reconcile(&self, key: &Key) -> Result<Action, ControllerError> {
        let ns = self.namespaces.get(key);
        let has_default = self.accounts.get(&format!("{key}/{DEFAULT}")).is_some();
        if let Some(pem) = &self.root_ca
            && needs_default(ns.as_deref(), false)
        {
            self.publish_root_ca(key, pem).await?;
        }
        if !needs_default(ns.as_deref(), has_default) {
            return Ok(Action::done());
        }
        let Some(res) = registry::lookup("serviceaccounts") else { return Ok(Action::done()) };
        let account = json!({"apiVersion": "v1", "kind": "ServiceAccount",
                             "metadata": {"name": DEFAULT, "namespace": key}});
        match self.api.create(res, Some(key), account, &Default::default(), self.name()).await {
            // Already there (the cache lagged), or the namespace began terminating: done.
            Ok(_) | Err(ApiError::AlreadyExists { .. }) | Err(ApiError::Forbidden(_)) => Ok(Action::done()),
            Err(ApiError::NotFound { .. }) => Ok(Action::done()),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_active_namespaces_without_one_get_a_default_account() {
        let active = json!({"metadata": {"name": "dev"}, "status": {"phase": "Active"}});
        assert!(needs_default(Some(&active), false));
        assert!(!needs_default(Some(&active), true));
        assert!(!needs_default(None, false), "a namespace that is gone");
        let deleting = json!({"metadata": {"name": "dev", "deletionTimestamp": "2026-01-01T00:00:00Z"}});
        assert!(!needs_default(Some(&deleting), false));
        let terminating = json!({"metadata": {"name": "dev"}, "status": {"phase": "Terminating"}});
        assert!(!needs_default(Some(&terminating), false));
    }
}
