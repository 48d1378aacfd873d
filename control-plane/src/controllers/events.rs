//! Kubernetes Events for what controllers do (what `kubectl describe` shows).
//! Repeats of the same event on the same object bump its `count` and
//! `lastTimestamp` instead of piling up new objects, as Kubernetes' recorder does.

use crate::api::meta;
use crate::api::registry;
use crate::api::rest::Api;
use parking_lot::Mutex;
use serde_json::{Value, json};
use std::collections::HashMap;

/// How many distinct events the recorder remembers for aggregation.
const REMEMBER: usize = 4096;

/// (object uid, type, reason, message).
type EventKey = (String, String, String, String);

pub struct Recorder {
    api: Api,
    component: &'static str,
    /// (object uid, type, reason, message) → (namespace, event name).
    seen: Mutex<HashMap<EventKey, (String, String)>>,
}

impl Recorder {
    pub fn new(api: Api, component: &'static str) -> Self {
        Self { api, component, seen: Mutex::new(HashMap::new()) }
    }

    /// Records an event about `obj`. Failures are logged, never returned: an event
    /// that cannot be written must not stop the controller.
    pub async fn record(&self, obj: &Value, kind_type: &str, reason: &str, message: &str) {
        if let Err(e) = self.try_record(obj, kind_type, reason, message).await {
            tracing::debug!(component = self.component, reason, error = %e, "could not record an event");
        }
    }

    async fn try_record(
        &self,
        obj: &Value,
        kind_type: &str,
        reason: &str,
        message: &str,
    ) -> Result<(), crate::api::error::ApiError> {
        let Some(events) = registry::lookup("events") else { return Ok(()) };
        let s = |p: &str| obj.pointer(p).and_then(Value::as_str).unwrap_or("").to_string();
        let (name, uid) = (s("/metadata/name"), s("/metadata/uid"));
        let ns = Some(s("/metadata/namespace")).filter(|n| !n.is_empty()).unwrap_or_else(|| "default".into());
        let now = meta::now();
        let key = (uid.clone(), kind_type.to_string(), reason.to_string(), message.to_string());
        let existing = self.seen.lock().get(&key).cloned();
        if let Some((ev_ns, ev_name)) = existing {
            let patch = |live: Option<&Value>| {
                let mut ev = live.cloned().ok_or_else(|| crate::api::error::ApiError::not_found(events, &ev_name))?;
                let count = ev["count"].as_i64().unwrap_or(1);
                ev["count"] = json!(count + 1);
                ev["lastTimestamp"] = json!(now);
                Ok((ev, false))
            };
            let done = self
                .api
                .guaranteed_update(
                    events,
                    Some(&ev_ns),
                    &ev_name,
                    crate::api::rest::Target::Main,
                    &Default::default(),
                    self.component,
                    false,
                    patch,
                )
                .await;
            if done.is_ok() {
                return Ok(());
            }
        }
        let ev_name = format!("{name}.{:x}", rand::random::<u64>() >> 8);
        let event = json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": { "name": ev_name, "namespace": ns },
            "involvedObject": {
                "apiVersion": s("/apiVersion"),
                "kind": s("/kind"),
                "name": name,
                "namespace": s("/metadata/namespace"),
                "uid": uid,
                "resourceVersion": s("/metadata/resourceVersion"),
            },
            "reason": reason,
            "message": message,
            "type": kind_type,
            "source": { "component": self.component },
            "reportingComponent": self.component,
            "reportingInstance": self.component,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        });
        self.api.create(events, Some(&ns), event, &Default::default(), self.component).await?;
        let mut seen = self.seen.lock();
        if seen.len() >= REMEMBER {
            seen.clear();
        }
        seen.insert(key, (ns, ev_name));
        Ok(())
    }
}
