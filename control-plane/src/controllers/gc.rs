//! Garbage collector: deletes objects whose owners are gone, with Kubernetes' three modes.
//!
//! Every object is an [`ObjectRef`] (identity, owner references, finalizers, deletion time).
//! An owner reference is resolved the way `GarbageCollector.isDangling` does: the owner kind's
//! scope decides where to look (a namespaced owner must be in the dependent's namespace; a
//! cluster-scoped one anywhere), and the owner exists only if an object of that group, kind,
//! namespace and name exists *with the referenced uid*. Each reference is then
//!
//! - **solid**: the owner exists and is not being deleted in the foreground;
//! - **dangling**: the owner is gone (no such object, or a different uid);
//! - **waiting**: the owner is being deleted with the `foregroundDeletion` finalizer.
//!
//! ```text
//!  dependent, not being deleted, with owner references
//!    ├─ some solid owner ──► keep it; remove_owner_refs for the dangling and waiting ones
//!    ├─ waiting owner and it has dependents itself ──► delete, Foreground
//!    └─ otherwise (all owners gone or waiting) ──► delete: Orphan / Foreground if it carries that
//!                                                  finalizer itself, else Background
//!  owner being deleted with "orphan"  ──► remove_owner_refs from its dependents; once none is
//!                                         left, remove_finalizer "orphan"
//!  owner being deleted with "foregroundDeletion" ──► (its dependents are deleted as above); once
//!                                         no dependent with blockOwnerDeletion=true is left,
//!                                         remove_finalizer "foregroundDeletion"
//! ```
//!
//! Objects already being deleted are never deleted again. A reference whose kind's scope is
//! unknown (no built-in entry and no object of that kind in the input), or a cluster-scoped
//! object referring to a namespaced owner, leaves the dependent alone, as Kubernetes does (the
//! first is retried, the second reported as invalid). The plan is level-triggered: steps that
//! depend on earlier ones (finalizer removal after orphaning) happen on a later pass.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

pub const FINALIZER_ORPHAN: &str = "orphan";
pub const FINALIZER_FOREGROUND: &str = "foregroundDeletion";

/// What the garbage collector sees of one object.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    /// `None` for a cluster-scoped object.
    pub namespace: Option<String>,
    pub name: String,
    pub uid: String,
    pub owner_references: Vec<OwnerReference>,
    pub finalizers: Vec<String>,
    /// `metadata.deletionTimestamp` as unix seconds.
    pub deletion_timestamp: Option<i64>,
}

impl ObjectRef {
    /// Builds the record from an object's type and metadata.
    pub fn from_meta(api_version: &str, kind: &str, meta: &ObjectMeta) -> ObjectRef {
        ObjectRef {
            api_version: api_version.to_string(),
            kind: kind.to_string(),
            namespace: meta.namespace.clone().filter(|n| !n.is_empty()),
            name: meta.name.clone().unwrap_or_default(),
            uid: meta.uid.clone().unwrap_or_default(),
            owner_references: meta.owner_references.clone().unwrap_or_default(),
            finalizers: meta.finalizers.clone().unwrap_or_default(),
            deletion_timestamp: meta.deletion_timestamp.as_ref().map(|t| t.0.as_second()),
        }
    }

    /// The identity the executor addresses (deletes use the uid as a precondition).
    pub fn key(&self) -> ObjectKey {
        ObjectKey {
            api_version: self.api_version.clone(),
            kind: self.kind.clone(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            uid: self.uid.clone(),
        }
    }

    fn being_deleted(&self) -> bool {
        self.deletion_timestamp.is_some()
    }

    fn has_finalizer(&self, f: &str) -> bool {
        self.finalizers.iter().any(|x| x == f)
    }

    /// Being deleted in the foreground: waits for its blocking dependents to go first.
    fn deleting_dependents(&self) -> bool {
        self.being_deleted() && self.has_finalizer(FINALIZER_FOREGROUND)
    }

    fn orphaning(&self) -> bool {
        self.being_deleted() && self.has_finalizer(FINALIZER_ORPHAN)
    }
}

/// Identity of an object in a plan.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub uid: String,
}

/// `DeleteOptions.propagationPolicy` for a delete the collector issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Propagation {
    Background,
    Foreground,
    Orphan,
}

/// What the garbage collector should do now; every list is sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcPlan {
    /// Delete these objects (with the uid as precondition) using this propagation policy.
    pub delete: Vec<(ObjectKey, Propagation)>,
    /// Remove the owner references with these owner uids from the object (its other owners are
    /// alive, or the owner is orphaning it).
    pub remove_owner_refs: Vec<(ObjectKey, Vec<String>)>,
    /// Remove this finalizer (`"orphan"` or `"foregroundDeletion"`) from an owner being deleted
    /// whose dependents have been handled.
    pub remove_finalizer: Vec<(ObjectKey, String)>,
    /// Set `blockOwnerDeletion=false` on all owner references of these objects: they are about
    /// to be deleted in the foreground while one of their own dependents is too, which would
    /// otherwise deadlock a foreground-deletion cycle (`unblockOwnerReferences`).
    pub unblock_owner_refs: Vec<ObjectKey>,
    /// For each object above whose fate rests on owners being gone: those owners, as its
    /// references name them. The input may lag the store (the owner's cache behind the
    /// dependent's), so the caller confirms they are gone with a live read before acting, as
    /// Kubernetes' collector does.
    pub absent_owners: Vec<(ObjectKey, Vec<ObjectKey>)>,
}

/// How one owner reference resolves.
#[derive(Debug, Clone)]
enum Owner<'a> {
    Present(&'a ObjectRef),
    /// Not in the input; the key is where it would be.
    Absent(ObjectKey),
    /// Scope unknown, or a cluster-scoped dependent naming a namespaced owner.
    Unresolvable,
}

struct Graph<'a> {
    by_name: HashMap<(String, &'a str, Option<&'a str>, &'a str), &'a ObjectRef>,
    inferred_scope: HashMap<(String, &'a str), bool>,
    /// Owner uid → its dependents (objects with a reference that resolves to it).
    dependents: HashMap<&'a str, Vec<(&'a ObjectRef, &'a OwnerReference)>>,
}

impl<'a> Graph<'a> {
    fn new(objects: &'a [ObjectRef]) -> Graph<'a> {
        let mut graph = Graph { by_name: HashMap::new(), inferred_scope: HashMap::new(), dependents: HashMap::new() };
        for o in objects {
            let group = group_of(&o.api_version);
            graph.inferred_scope.insert((group.clone(), o.kind.as_str()), o.namespace.is_some());
            graph.by_name.insert((group, o.kind.as_str(), o.namespace.as_deref(), o.name.as_str()), o);
        }
        for o in objects {
            for r in &o.owner_references {
                if let Owner::Present(owner) = graph.resolve(o, r) {
                    graph.dependents.entry(owner.uid.as_str()).or_default().push((o, r));
                }
            }
        }
        graph
    }

    fn namespaced(&self, group: &str, kind: &str) -> Option<bool> {
        builtin_scope(group, kind).or_else(|| self.inferred_scope.get(&(group.to_string(), kind)).copied())
    }

    fn resolve(&self, dependent: &ObjectRef, r: &OwnerReference) -> Owner<'a> {
        let group = group_of(&r.api_version);
        let Some(namespaced) = self.namespaced(&group, &r.kind) else { return Owner::Unresolvable };
        let namespace = match (namespaced, dependent.namespace.as_deref()) {
            (true, None) => return Owner::Unresolvable,
            (true, ns) => ns,
            (false, _) => None,
        };
        match self.by_name.get(&(group, r.kind.as_str(), namespace, r.name.as_str())) {
            Some(owner) if owner.uid == r.uid => Owner::Present(owner),
            _ => Owner::Absent(ObjectKey {
                api_version: r.api_version.clone(),
                kind: r.kind.clone(),
                namespace: namespace.map(str::to_string),
                name: r.name.clone(),
                uid: r.uid.clone(),
            }),
        }
    }

    fn dependents_of(&self, owner: &ObjectRef) -> &[(&'a ObjectRef, &'a OwnerReference)] {
        self.dependents.get(owner.uid.as_str()).map(Vec::as_slice).unwrap_or_default()
    }
}

/// Plans garbage collection over all objects.
pub fn plan(objects: &[ObjectRef]) -> GcPlan {
    let graph = Graph::new(objects);
    let mut delete: BTreeMap<ObjectKey, Propagation> = BTreeMap::new();
    let mut remove_refs: BTreeMap<ObjectKey, BTreeSet<String>> = BTreeMap::new();
    let mut remove_finalizer: BTreeSet<(ObjectKey, String)> = BTreeSet::new();
    let mut unblock: BTreeSet<ObjectKey> = BTreeSet::new();
    let mut absent_owners: BTreeMap<ObjectKey, Vec<ObjectKey>> = BTreeMap::new();

    for object in objects {
        // Owners being deleted: orphan their dependents, or wait for the blocking ones to go.
        if object.orphaning() {
            let dependents = graph.dependents_of(object);
            if dependents.is_empty() {
                remove_finalizer.insert((object.key(), FINALIZER_ORPHAN.to_string()));
            }
            for (dependent, _) in dependents {
                remove_refs.entry(dependent.key()).or_default().insert(object.uid.clone());
            }
        } else if object.deleting_dependents() {
            let blocking = graph.dependents_of(object).iter().any(|(_, r)| r.block_owner_deletion == Some(true));
            if !blocking {
                remove_finalizer.insert((object.key(), FINALIZER_FOREGROUND.to_string()));
            }
        }

        // The object as a dependent.
        if object.being_deleted() || object.owner_references.is_empty() {
            continue;
        }
        let mut solid = Vec::new();
        let mut dangling = Vec::new();
        let mut gone = Vec::new();
        let mut waiting = Vec::new();
        let mut unresolvable = false;
        for r in &object.owner_references {
            match graph.resolve(object, r) {
                Owner::Unresolvable => unresolvable = true,
                Owner::Absent(owner) => {
                    dangling.push(r.uid.clone());
                    gone.push(owner);
                }
                // An orphaning owner removes its references itself; until then it holds on.
                Owner::Present(owner) if owner.deleting_dependents() && !owner.orphaning() => {
                    waiting.push(r.uid.clone())
                }
                Owner::Present(_) => solid.push(r.uid.clone()),
            }
        }
        if !solid.is_empty() {
            if !dangling.is_empty() || !waiting.is_empty() {
                remove_refs.entry(object.key()).or_default().extend(dangling.into_iter().chain(waiting));
            }
            if !gone.is_empty() {
                absent_owners.insert(object.key(), gone);
            }
            continue;
        }
        if unresolvable {
            // Kubernetes cannot classify this object and leaves it (retrying, or reporting it).
            continue;
        }
        let own_dependents = graph.dependents_of(object);
        let propagation = if !waiting.is_empty() && !own_dependents.is_empty() {
            if own_dependents.iter().any(|(d, _)| d.deleting_dependents()) {
                unblock.insert(object.key());
            }
            Propagation::Foreground
        } else if object.has_finalizer(FINALIZER_ORPHAN) {
            Propagation::Orphan
        } else if object.has_finalizer(FINALIZER_FOREGROUND) {
            Propagation::Foreground
        } else {
            Propagation::Background
        };
        if !gone.is_empty() {
            absent_owners.insert(object.key(), gone);
        }
        delete.insert(object.key(), propagation);
    }

    GcPlan {
        delete: delete.into_iter().collect(),
        remove_owner_refs: remove_refs.into_iter().map(|(k, uids)| (k, uids.into_iter().collect())).collect(),
        remove_finalizer: remove_finalizer.into_iter().collect(),
        unblock_owner_refs: unblock.into_iter().collect(),
        absent_owners: absent_owners.into_iter().collect(),
    }
}

/// API group of an apiVersion (`"apps/v1"` → `"apps"`, `"v1"` → `""`).
fn group_of(api_version: &str) -> String {
    api_version.rsplit_once('/').map(|(g, _)| g.to_string()).unwrap_or_default()
}

/// Whether a built-in kind is namespaced; `None` for kinds this table does not know.
fn builtin_scope(group: &str, kind: &str) -> Option<bool> {
    let namespaced = match (group, kind) {
        (
            "",
            "Pod"
            | "Service"
            | "Endpoints"
            | "ConfigMap"
            | "Secret"
            | "ServiceAccount"
            | "PersistentVolumeClaim"
            | "ReplicationController"
            | "Event"
            | "LimitRange"
            | "ResourceQuota"
            | "PodTemplate",
        ) => true,
        ("", "Node" | "Namespace" | "PersistentVolume" | "ComponentStatus") => false,
        ("apps", "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet" | "ControllerRevision") => true,
        ("batch", "Job" | "CronJob") => true,
        ("discovery.k8s.io", "EndpointSlice") => true,
        ("networking.k8s.io", "Ingress" | "NetworkPolicy") => true,
        ("networking.k8s.io", "IngressClass") => false,
        ("policy", "PodDisruptionBudget") => true,
        ("rbac.authorization.k8s.io", "Role" | "RoleBinding") => true,
        ("rbac.authorization.k8s.io", "ClusterRole" | "ClusterRoleBinding") => false,
        ("coordination.k8s.io", "Lease") => true,
        ("autoscaling", "HorizontalPodAutoscaler") => true,
        ("events.k8s.io", "Event") => true,
        ("storage.k8s.io", "StorageClass" | "CSIDriver" | "CSINode" | "VolumeAttachment") => false,
        ("apiextensions.k8s.io", "CustomResourceDefinition") => false,
        ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration" | "MutatingWebhookConfiguration") => false,
        ("scheduling.k8s.io", "PriorityClass") => false,
        _ => return None,
    };
    Some(namespaced)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn obj(api_version: &str, kind: &str, ns: Option<&str>, name: &str, uid: &str) -> ObjectRef {
        ObjectRef {
            api_version: api_version.into(),
            kind: kind.into(),
            namespace: ns.map(Into::into),
            name: name.into(),
            uid: uid.into(),
            owner_references: vec![],
            finalizers: vec![],
            deletion_timestamp: None,
        }
    }

    fn owned_by(mut o: ObjectRef, owner: &ObjectRef, block: bool) -> ObjectRef {
        o.owner_references.push(OwnerReference {
            api_version: owner.api_version.clone(),
            kind: owner.kind.clone(),
            name: owner.name.clone(),
            uid: owner.uid.clone(),
            controller: Some(true),
            block_owner_deletion: Some(block),
        });
        o
    }

    fn deleting(mut o: ObjectRef, finalizer: Option<&str>) -> ObjectRef {
        o.deletion_timestamp = Some(1);
        o.finalizers.extend(finalizer.map(String::from));
        o
    }

    fn deploy() -> ObjectRef {
        obj("apps/v1", "Deployment", Some("ns"), "web", "d1")
    }
    fn rs() -> ObjectRef {
        obj("apps/v1", "ReplicaSet", Some("ns"), "web-1", "r1")
    }
    fn pod(name: &str, uid: &str) -> ObjectRef {
        obj("v1", "Pod", Some("ns"), name, uid)
    }

    #[test]
    fn live_owners_keep_dependents() {
        let d = deploy();
        let r = owned_by(rs(), &d, true);
        let p = owned_by(pod("p", "p1"), &r, true);
        assert_eq!(plan(&[d, r, p]), GcPlan::default());
    }

    #[test]
    fn background_deletion_cascades_level_by_level() {
        // The Deployment is gone: the ReplicaSet goes; its pods wait for it to be gone too.
        let d = deploy();
        let r = owned_by(rs(), &d, true);
        let p = owned_by(pod("p", "p1"), &r, true);
        let out = plan(&[r.clone(), p.clone()]);
        assert_eq!(out.delete, vec![(r.key(), Propagation::Background)]);
        assert_eq!(out.absent_owners, vec![(r.key(), vec![d.key()])], "the caller confirms d is gone");
        let out = plan(std::slice::from_ref(&p));
        assert_eq!(out.delete, vec![(p.key(), Propagation::Background)]);
    }

    #[test]
    fn owner_recreated_with_a_new_uid_is_gone() {
        let old = deploy();
        let r = owned_by(rs(), &old, true);
        let new = ObjectRef { uid: "d2".into(), ..deploy() };
        assert_eq!(plan(&[new, r.clone()]).delete, vec![(r.key(), Propagation::Background)]);
    }

    #[test]
    fn owner_in_another_namespace_does_not_count() {
        let owner = obj("v1", "ConfigMap", Some("other"), "cm", "c1");
        let dep = owned_by(obj("v1", "Secret", Some("ns"), "s", "s1"), &owner, false);
        assert_eq!(plan(&[owner, dep.clone()]).delete, vec![(dep.key(), Propagation::Background)]);
    }

    #[test]
    fn cluster_scoped_owners_are_found_from_any_namespace() {
        let node = obj("v1", "Node", None, "n1", "n-uid");
        let lease = owned_by(obj("coordination.k8s.io/v1", "Lease", Some("kube-node-lease"), "n1", "l1"), &node, false);
        assert_eq!(plan(&[node, lease.clone()]), GcPlan::default());
        assert_eq!(plan(std::slice::from_ref(&lease)).delete, vec![(lease.key(), Propagation::Background)]);
    }

    #[test]
    fn cluster_scoped_dependent_of_namespaced_owner_is_left_alone() {
        let cm = obj("v1", "ConfigMap", Some("ns"), "cm", "c1");
        let pv = owned_by(obj("v1", "PersistentVolume", None, "pv", "pv1"), &cm, false);
        assert_eq!(plan(&[pv]), GcPlan::default());
    }

    #[test]
    fn unknown_owner_kind_is_left_alone_until_known() {
        let crd_owner = obj("example.com/v1", "Widget", Some("ns"), "w", "w1");
        let dep = owned_by(pod("p", "p1"), &crd_owner, false);
        assert_eq!(plan(std::slice::from_ref(&dep)), GcPlan::default(), "scope of Widget is unknown");
        // Another Widget in the input tells the scope: this one is gone.
        let other = obj("example.com/v1", "Widget", Some("ns"), "other", "w2");
        assert_eq!(plan(&[other, dep.clone()]).delete, vec![(dep.key(), Propagation::Background)]);
    }

    #[test]
    fn one_live_owner_is_enough_and_dead_refs_are_removed() {
        let a = obj("v1", "ConfigMap", Some("ns"), "a", "a1");
        let b = obj("v1", "ConfigMap", Some("ns"), "b", "b1");
        let dep = owned_by(owned_by(obj("v1", "Secret", Some("ns"), "s", "s1"), &a, false), &b, false);
        let out = plan(&[a, dep.clone()]);
        assert!(out.delete.is_empty());
        assert_eq!(out.remove_owner_refs, vec![(dep.key(), vec!["b1".to_string()])]);
        assert_eq!(out.absent_owners, vec![(dep.key(), vec![b.key()])]);
    }

    #[test]
    fn objects_being_deleted_are_not_deleted_twice() {
        let d = deploy();
        let r = deleting(owned_by(rs(), &d, true), None);
        assert_eq!(plan(&[r]), GcPlan::default());
    }

    #[test]
    fn dependents_own_finalizers_choose_the_policy() {
        let d = deploy();
        let mut r = owned_by(rs(), &d, true);
        r.finalizers = vec![FINALIZER_ORPHAN.into()];
        assert_eq!(plan(&[r.clone()]).delete, vec![(r.key(), Propagation::Orphan)]);
        r.finalizers = vec![FINALIZER_FOREGROUND.into()];
        assert_eq!(plan(&[r.clone()]).delete, vec![(r.key(), Propagation::Foreground)]);
    }

    #[test]
    fn foreground_deletion() {
        // kubectl delete deployment web --cascade=foreground
        let d = deleting(deploy(), Some(FINALIZER_FOREGROUND));
        let r = owned_by(rs(), &d, true);
        let p = owned_by(pod("p", "p1"), &r, true);
        let cm = owned_by(obj("v1", "ConfigMap", Some("ns"), "extra", "c1"), &d, false);

        // Pass 1: the ReplicaSet has dependents → deleted in the foreground; the leaf ConfigMap
        // in the background; the Deployment keeps its finalizer while the ReplicaSet blocks it.
        let out = plan(&[d.clone(), r.clone(), p.clone(), cm.clone()]);
        assert_eq!(out.delete, vec![(r.key(), Propagation::Foreground), (cm.key(), Propagation::Background)]);
        assert!(out.remove_finalizer.is_empty());

        // Pass 2: the ReplicaSet is deleting its dependents: its pod goes.
        let r2 = deleting(r.clone(), Some(FINALIZER_FOREGROUND));
        let out = plan(&[d.clone(), r2.clone(), p.clone()]);
        assert_eq!(out.delete, vec![(p.key(), Propagation::Background)]);
        assert!(out.remove_finalizer.is_empty());

        // Pass 3: pod gone → the ReplicaSet's finalizer goes; the Deployment still waits for it.
        let out = plan(&[d.clone(), r2.clone()]);
        assert_eq!(out.remove_finalizer, vec![(r2.key(), FINALIZER_FOREGROUND.to_string())]);

        // Pass 4: only the non-blocking ConfigMap is left: the Deployment is released.
        let cm_deleting = deleting(cm, None);
        let out = plan(&[d.clone(), cm_deleting]);
        assert_eq!(out.remove_finalizer, vec![(d.key(), FINALIZER_FOREGROUND.to_string())]);
    }

    #[test]
    fn foreground_owner_releases_shared_dependents() {
        let d = deleting(deploy(), Some(FINALIZER_FOREGROUND));
        let other = obj("v1", "ConfigMap", Some("ns"), "keep", "k1");
        let shared = owned_by(owned_by(pod("p", "p1"), &d, true), &other, false);
        let out = plan(&[d.clone(), other, shared.clone()]);
        assert!(out.delete.is_empty());
        assert_eq!(out.remove_owner_refs, vec![(shared.key(), vec!["d1".to_string()])]);
        assert!(out.remove_finalizer.is_empty(), "still blocked until the reference is gone");
    }

    #[test]
    fn orphan_deletion() {
        // kubectl delete replicaset web-1 --cascade=orphan
        let r = deleting(rs(), Some(FINALIZER_ORPHAN));
        let p1 = owned_by(pod("p1", "u1"), &r, true);
        let p2 = owned_by(pod("p2", "u2"), &r, true);
        let out = plan(&[r.clone(), p1.clone(), p2.clone()]);
        assert!(out.delete.is_empty());
        assert_eq!(out.remove_owner_refs, vec![(p1.key(), vec!["r1".into()]), (p2.key(), vec!["r1".into()])]);
        assert!(out.remove_finalizer.is_empty());
        let freed = |p: &ObjectRef| ObjectRef { owner_references: vec![], ..p.clone() };
        let out = plan(&[r.clone(), freed(&p1), freed(&p2)]);
        assert_eq!(out.remove_finalizer, vec![(r.key(), FINALIZER_ORPHAN.to_string())]);
        assert!(out.delete.is_empty());
    }

    #[test]
    fn foreground_cycle_is_unblocked() {
        // a owns b, b owns a; a is deleted in the foreground.
        let a0 = obj("v1", "ConfigMap", Some("ns"), "a", "a1");
        let b0 = obj("v1", "ConfigMap", Some("ns"), "b", "b1");
        let a = deleting(owned_by(a0.clone(), &b0, true), Some(FINALIZER_FOREGROUND));
        let b = owned_by(b0, &a0, true);
        let out = plan(&[a.clone(), b.clone()]);
        assert_eq!(out.delete, vec![(b.key(), Propagation::Foreground)]);
        assert_eq!(out.unblock_owner_refs, vec![b.key()]);
    }

    #[test]
    fn from_meta_reads_metadata() {
        let meta = ObjectMeta {
            name: Some("x".into()),
            namespace: Some("ns".into()),
            uid: Some("u".into()),
            finalizers: Some(vec![FINALIZER_ORPHAN.into()]),
            deletion_timestamp: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::from_second(7).unwrap(),
            )),
            ..Default::default()
        };
        let o = ObjectRef::from_meta("v1", "ConfigMap", &meta);
        assert_eq!((o.namespace.as_deref(), o.deletion_timestamp, o.orphaning()), (Some("ns"), Some(7), true));
        assert_eq!(group_of("apps/v1"), "apps");
        assert_eq!(group_of("v1"), "");
    }

    // --- properties ---

    fn arb_objects() -> impl Strategy<Value = Vec<ObjectRef>> {
        // Up to 8 objects of 3 kinds in 2 namespaces (Node is cluster-scoped), with random owner
        // references to each other (some with stale uids), finalizers and deletion marks.
        let one = (
            0u8..3,
            0u8..2,
            any::<bool>(),
            0u8..4,
            proptest::collection::vec((0usize..8, any::<bool>(), any::<bool>()), 0..3),
        );
        proptest::collection::vec(one, 1..8).prop_map(|specs| {
            let mut objects: Vec<ObjectRef> = specs
                .iter()
                .enumerate()
                .map(|(i, (kind, ns, _, fin, _))| {
                    let (av, k, namespace) = match kind {
                        0 => ("v1", "ConfigMap", Some(if *ns == 0 { "a" } else { "b" })),
                        1 => ("apps/v1", "ReplicaSet", Some(if *ns == 0 { "a" } else { "b" })),
                        _ => ("v1", "Node", None),
                    };
                    let mut o = obj(av, k, namespace, &format!("o{i}"), &format!("u{i}"));
                    match fin {
                        1 => o = deleting(o, Some(FINALIZER_FOREGROUND)),
                        2 => o = deleting(o, Some(FINALIZER_ORPHAN)),
                        3 => o = deleting(o, None),
                        _ => {}
                    }
                    o
                })
                .collect();
            let snapshot = objects.clone();
            for (i, (_, _, _, _, refs)) in specs.iter().enumerate() {
                for (target, stale, block) in refs {
                    let Some(owner) = snapshot.get(*target % snapshot.len()) else { continue };
                    let mut o = owned_by(objects[i].clone(), owner, *block);
                    if *stale {
                        o.owner_references.last_mut().unwrap().uid.push_str("-old");
                    }
                    objects[i] = o;
                }
            }
            objects
        })
    }

    /// A live owner: the referenced object exists with that uid, in scope, and is not being deleted.
    fn has_live_owner(o: &ObjectRef, all: &[ObjectRef]) -> bool {
        o.owner_references.iter().any(|r| {
            all.iter().any(|owner| {
                owner.uid == r.uid
                    && owner.name == r.name
                    && owner.kind == r.kind
                    && (owner.namespace.is_none() || owner.namespace == o.namespace)
                    && !owner.being_deleted()
            })
        })
    }

    proptest! {
        #[test]
        fn never_deletes_an_object_with_a_live_owner(objects in arb_objects()) {
            let out = plan(&objects);
            for (key, _) in &out.delete {
                let o = objects.iter().find(|o| &o.key() == key).unwrap();
                prop_assert!(!has_live_owner(o, &objects), "deleted {key:?} whose owner is alive");
                prop_assert!(!o.being_deleted(), "deleted {key:?} twice");
                prop_assert!(!o.owner_references.is_empty(), "deleted {key:?} that has no owners");
            }
        }

        #[test]
        fn foreground_finalizer_only_released_without_blocking_dependents(objects in arb_objects()) {
            let out = plan(&objects);
            for (key, finalizer) in &out.remove_finalizer {
                if finalizer != FINALIZER_FOREGROUND {
                    continue;
                }
                let owner = objects.iter().find(|o| &o.key() == key).unwrap();
                let blocked = objects.iter().any(|d| {
                    d.owner_references.iter().any(|r| {
                        r.uid == owner.uid
                            && r.name == owner.name
                            && r.block_owner_deletion == Some(true)
                            && (owner.namespace.is_none() || owner.namespace == d.namespace)
                            && !(d.namespace.is_none() && owner.namespace.is_some())
                    })
                });
                prop_assert!(!blocked, "released {key:?} while a blocking dependent remains");
            }
        }

        #[test]
        fn plan_does_not_depend_on_input_order(objects in arb_objects()) {
            let mut reversed = objects.clone();
            reversed.reverse();
            prop_assert_eq!(plan(&objects), plan(&reversed));
        }
    }
}
