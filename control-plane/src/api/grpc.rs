//! The rk resource API (`rk.api.v1.Resources`): the same verbs as REST, over gRPC.
//! Both call [`rest::Api`](super::rest::Api), so semantics and messages match.

use super::error::ApiError;
use super::query::{DeleteOptions, FieldValidation, ListOptions, WriteOptions};
use super::registry::{self, Resource};
use super::rest::{Api, PatchKind, Target};
use super::store::Stored;
use super::watch::{self, Render, WatchSettings};
use futures::Stream;
use rk_proto::resources::resources_server::{Resources, ResourcesServer};
use rk_proto::resources::{
    CreateRequest, DeleteRequest, GetRequest, ListRequest, Object, ObjectList, ObjectMeta, PatchRequest, PatchType,
    ResourceRef, UpdateRequest, WatchEvent, WatchRequest,
};
use serde_json::Value;
use std::collections::HashMap;
use std::pin::Pin;
use tonic::{Code, Request, Response, Status};

pub struct ResourceService {
    api: Api,
    watch: WatchSettings,
}

pub fn server(api: Api) -> ResourcesServer<ResourceService> {
    ResourcesServer::new(ResourceService { api, watch: WatchSettings::default() })
        .max_decoding_message_size(super::http::MAX_BODY + 64 * 1024)
}

/// The gRPC form of an API error; the Kubernetes Status rides in a trailer.
pub fn to_status(e: ApiError) -> Status {
    let code = match &e {
        ApiError::NotFound { .. } | ApiError::NoSuchResource => Code::NotFound,
        ApiError::AlreadyExists { .. } => Code::AlreadyExists,
        ApiError::Conflict { .. } | ApiError::ApplyConflict { .. } => Code::Aborted,
        ApiError::Invalid { .. } | ApiError::BadRequest(_) => Code::InvalidArgument,
        ApiError::Forbidden(_) => Code::PermissionDenied,
        ApiError::Unauthorized => Code::Unauthenticated,
        ApiError::Expired(_) => Code::OutOfRange,
        ApiError::Timeout(_) => Code::DeadlineExceeded,
        ApiError::Unavailable(_) => Code::Unavailable,
        ApiError::TooLarge(_) | ApiError::TooManyRequests(_) => Code::ResourceExhausted,
        ApiError::MethodNotAllowed(_) | ApiError::UnsupportedMediaType(_) | ApiError::NotAcceptable(_) => {
            Code::Unimplemented
        }
        ApiError::Internal(_) => Code::Internal,
    };
    let mut status = Status::new(code, e.to_string());
    if let Ok(bytes) = serde_json::to_vec(&e.status()) {
        status.metadata_mut().insert_bin("rk-status-bin", tonic::metadata::MetadataValue::from_bytes(&bytes));
    }
    status
}

fn resource(r: &Option<ResourceRef>) -> Result<(&'static Resource, Option<String>, String), Status> {
    let r = r.as_ref().ok_or_else(|| Status::invalid_argument("ref is required"))?;
    let res = registry::lookup(&r.resource)
        .ok_or_else(|| Status::not_found(format!("the server doesn't have a resource type {:?}", r.resource)))?;
    let ns = if res.namespaced {
        Some(if r.namespace.is_empty() { "default".into() } else { r.namespace.clone() })
    } else {
        None
    };
    Ok((res, ns, r.name.clone()))
}

fn need_name(name: &str) -> Result<(), Status> {
    if name.is_empty() {
        return Err(Status::invalid_argument("ref.name is required"));
    }
    Ok(())
}

/// Typed metadata plus the JSON of an object.
pub fn to_object(obj: &Value) -> Object {
    let s = |p: &str| obj.pointer(p).and_then(Value::as_str).unwrap_or("").to_string();
    let map = |p: &str| -> HashMap<String, String> {
        obj.pointer(p)
            .and_then(Value::as_object)
            .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect())
            .unwrap_or_default()
    };
    Object {
        api_version: s("/apiVersion"),
        kind: s("/kind"),
        metadata: Some(ObjectMeta {
            name: s("/metadata/name"),
            namespace: s("/metadata/namespace"),
            uid: s("/metadata/uid"),
            resource_version: s("/metadata/resourceVersion"),
            generation: obj.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(0),
            labels: map("/metadata/labels"),
            annotations: map("/metadata/annotations"),
            creation_timestamp: s("/metadata/creationTimestamp"),
            deletion_timestamp: s("/metadata/deletionTimestamp"),
        }),
        json: serde_json::to_vec(obj).unwrap_or_default().into(),
    }
}

fn stored_object(s: &Stored) -> Result<Object, Status> {
    s.object().map(|v| to_object(&v)).map_err(to_status)
}

fn write_options(o: &Option<rk_proto::resources::WriteOptions>) -> Result<WriteOptions, Status> {
    let Some(o) = o else { return Ok(WriteOptions::default()) };
    let field_validation = match o.field_validation.as_str() {
        "" | "Warn" => FieldValidation::Warn,
        "Ignore" => FieldValidation::Ignore,
        "Strict" => FieldValidation::Strict,
        other => {
            return Err(Status::invalid_argument(format!("field_validation {other:?}: use Ignore, Warn or Strict")));
        }
    };
    Ok(WriteOptions {
        dry_run: o.dry_run,
        field_manager: Some(o.field_manager.clone()).filter(|m| !m.is_empty()),
        field_validation,
        force: false,
    })
}

fn parse_json(bytes: &[u8]) -> Result<Value, Status> {
    serde_json::from_slice(bytes).map_err(|e| Status::invalid_argument(format!("json is not valid JSON: {e}")))
}

fn rv_query(rv: &str) -> HashMap<String, String> {
    let mut q = HashMap::new();
    if !rv.is_empty() {
        q.insert("resourceVersion".to_string(), rv.to_string());
    }
    q
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchEvent, Status>> + Send>>;

#[tonic::async_trait]
impl Resources for ResourceService {
    async fn get(&self, request: Request<GetRequest>) -> Result<Response<Object>, Status> {
        let req = request.into_inner();
        let (res, ns, name) = resource(&req.r#ref)?;
        need_name(&name)?;
        let freshness = super::query::freshness(&rv_query(&req.resource_version)).map_err(to_status)?;
        let stored = self.api.get(res, ns.as_deref(), &name, freshness).await.map_err(to_status)?;
        Ok(Response::new(stored_object(&stored)?))
    }

    async fn list(&self, request: Request<ListRequest>) -> Result<Response<ObjectList>, Status> {
        let req = request.into_inner();
        let (res, ns, _) = resource(&req.r#ref)?;
        let ns = req.r#ref.as_ref().filter(|r| !r.namespace.is_empty()).and(ns);
        let opts = ListOptions {
            label_selector: Some(req.label_selector).filter(|s| !s.is_empty()),
            field_selector: Some(req.field_selector).filter(|s| !s.is_empty()),
            limit: req.limit.max(0) as usize,
            continue_token: Some(req.continue_token).filter(|s| !s.is_empty()),
            ..Default::default()
        };
        let freshness = super::query::freshness(&rv_query(&req.resource_version)).map_err(to_status)?;
        let result = self.api.list(res, ns.as_deref(), &opts, freshness).await.map_err(to_status)?;
        let items = result.page.items.iter().map(stored_object).collect::<Result<_, _>>()?;
        Ok(Response::new(ObjectList {
            items,
            resource_version: result.page.revision.to_string(),
            continue_token: result.continue_token.unwrap_or_default(),
        }))
    }

    async fn create(&self, request: Request<CreateRequest>) -> Result<Response<Object>, Status> {
        let req = request.into_inner();
        let (res, ns, _) = resource(&req.r#ref)?;
        let opts = write_options(&req.options)?;
        let manager = opts.field_manager.clone().unwrap_or_else(|| "rk-grpc".into());
        let out =
            self.api.create(res, ns.as_deref(), parse_json(&req.json)?, &opts, &manager).await.map_err(to_status)?;
        Ok(Response::new(to_object(&out.object)))
    }

    async fn update(&self, request: Request<UpdateRequest>) -> Result<Response<Object>, Status> {
        let req = request.into_inner();
        let (res, ns, name) = resource(&req.r#ref)?;
        need_name(&name)?;
        let opts = write_options(&req.options)?;
        let manager = opts.field_manager.clone().unwrap_or_else(|| "rk-grpc".into());
        let target = if req.status { Target::Status } else { Target::Main };
        let out = self
            .api
            .update(res, ns.as_deref(), &name, parse_json(&req.json)?, target, &opts, &manager)
            .await
            .map_err(to_status)?;
        Ok(Response::new(to_object(&out.object)))
    }

    async fn patch(&self, request: Request<PatchRequest>) -> Result<Response<Object>, Status> {
        let req = request.into_inner();
        let (res, ns, name) = resource(&req.r#ref)?;
        need_name(&name)?;
        let mut opts = write_options(&req.options)?;
        opts.force = req.force;
        let kind = match PatchType::try_from(req.r#type) {
            Ok(PatchType::Json) => PatchKind::Json,
            Ok(PatchType::Merge) => PatchKind::Merge,
            Ok(PatchType::Strategic) => PatchKind::Strategic,
            Ok(PatchType::Apply) => PatchKind::Apply,
            _ => return Err(Status::invalid_argument("type must be JSON, MERGE, STRATEGIC or APPLY")),
        };
        let manager = opts.field_manager.clone().unwrap_or_else(|| "rk-grpc".into());
        if kind == PatchKind::Apply && opts.field_manager.is_none() {
            opts.field_manager = Some(manager.clone());
        }
        let out = self
            .api
            .patch(res, ns.as_deref(), &name, kind, &req.patch, Target::Main, &opts, &manager)
            .await
            .map_err(to_status)?;
        Ok(Response::new(to_object(&out.object)))
    }

    async fn delete(&self, request: Request<DeleteRequest>) -> Result<Response<Object>, Status> {
        let req = request.into_inner();
        let (res, ns, name) = resource(&req.r#ref)?;
        need_name(&name)?;
        let mut opts = DeleteOptions {
            grace_period_seconds: req.grace_period_seconds,
            dry_run: req.dry_run,
            ..Default::default()
        };
        if !req.propagation_policy.is_empty() {
            opts.merge_body(&serde_json::json!({ "propagationPolicy": req.propagation_policy })).map_err(to_status)?;
        }
        let obj = self.api.delete(res, ns.as_deref(), &name, &opts).await.map_err(to_status)?;
        Ok(Response::new(to_object(&obj)))
    }

    type WatchStream = WatchStream;

    async fn watch(&self, request: Request<WatchRequest>) -> Result<Response<Self::WatchStream>, Status> {
        let req = request.into_inner();
        let (res, ns, _) = resource(&req.r#ref)?;
        let ns = req.r#ref.as_ref().filter(|r| !r.namespace.is_empty()).and(ns);
        let opts = ListOptions {
            label_selector: Some(req.label_selector).filter(|s| !s.is_empty()),
            field_selector: Some(req.field_selector).filter(|s| !s.is_empty()),
            resource_version: Some(req.resource_version).filter(|s| !s.is_empty()),
            watch: true,
            ..Default::default()
        };
        let mut lines =
            watch::start(&self.api, res, ns.as_deref(), &opts, Render::Object, &self.watch).await.map_err(to_status)?;
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
            while let Some(line) = lines.recv().await {
                let event: Value = match serde_json::from_slice(&line) {
                    Ok(v) => v,
                    Err(_) => continue,
                };
                let out = WatchEvent {
                    r#type: event["type"].as_str().unwrap_or("").to_string(),
                    object: Some(to_object(&event["object"])),
                };
                if tx.send(Ok(out)).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx)) as WatchStream))
    }
}
