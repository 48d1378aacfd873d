//! The namespace controller: deleting a namespace deletes everything in it, then
//! the namespace (by removing its `kubernetes` finalizer).

use super::runtime::{Action, ControllerError, Informer, Key, Reconciler};
use crate::api::query::{DeleteOptions, ListOptions};
use crate::api::registry::{self, RESOURCES};
use crate::api::rest::{Api, Target};
use crate::api::store::Freshness;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

pub struct NamespaceController {
    pub api: Api,
    pub namespaces: Arc<Informer>,
}

#[tonic::async_trait]
impl Reconciler for NamespaceController {
    fn name(&self) -> &'static str {
        "namespace-controller"
    }

    async fn reconcile(&self, key: &Key) -> Result<Action, ControllerError> {
        let Some(ns) = self.namespaces.get(key) else { return Ok(Action::done()) };
        if ns.pointer("/metadata/deletionTimestamp").is_none() {
            return Ok(Action::done());
        }
        let name = key.as_str();
        // Delete every namespaced object; count what is still there.
        let mut remaining = 0;
        let opts = DeleteOptions { propagation_policy: Some("Background".into()), ..Default::default() };
        for res in RESOURCES.iter().filter(|r| r.namespaced) {
            let list = self.api.list(res, Some(name), &ListOptions::default(), Freshness::Latest).await?;
            for item in &list.page.items {
                remaining += 1;
                let obj = item.object()?;
                if obj.pointer("/metadata/deletionTimestamp").is_some() {
                    continue;
                }
                let obj_name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
                match self.api.delete(res, Some(name), obj_name, &opts).await {
                    Ok(_) | Err(crate::api::error::ApiError::NotFound { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        if remaining > 0 {
            // Pods shut down gracefully and finalizers run; look again shortly.
            return Ok(Action::requeue(Duration::from_millis(500)));
        }
        let Some(res) = registry::lookup("namespaces") else { return Ok(Action::done()) };
        let out = self
            .api
            .guaranteed_update(res, None, name, Target::Main, &Default::default(), self.name(), false, |live| {
                let mut new = live.cloned().ok_or_else(|| crate::api::error::ApiError::not_found(res, name))?;
                let fins: Vec<Value> = new
                    .pointer("/spec/finalizers")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter(|f| *f != "kubernetes").cloned().collect())
                    .unwrap_or_default();
                new["spec"]["finalizers"] = json!(fins);
                Ok((new, false))
            })
            .await;
        match out {
            Ok(_) | Err(crate::api::error::ApiError::NotFound { .. }) => Ok(Action::done()),
            Err(e) => Err(e.into()),
        }
    }
}
