//! rbac.authorization.k8s.io/v1 Role, ClusterRole, RoleBinding and ClusterRoleBinding:
//! `pkg/apis/rbac/v1/defaults.go` and `pkg/apis/rbac/validation`.

use super::{Errs, Path, invalid, not_supported, required};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject};
use serde_json::Value;

pub const GROUP: &str = "rbac.authorization.k8s.io";

fn list<T>(v: &Option<Vec<T>>) -> &[T] {
    v.as_deref().unwrap_or_default()
}

/// SetDefaults_Subject: users and groups are RBAC subjects, service accounts core ones.
fn default_subjects(subjects: &mut Option<Vec<Subject>>) {
    for s in subjects.iter_mut().flatten() {
        if s.api_group.as_deref().unwrap_or("").is_empty() {
            match s.kind.as_str() {
                "ServiceAccount" => s.api_group = Some(String::new()),
                "User" | "Group" => s.api_group = Some(GROUP.to_string()),
                _ => {}
            }
        }
    }
}

pub fn default_role_binding(b: &mut RoleBinding) -> Result<(), super::decode::DecodeError> {
    default_subjects(&mut b.subjects);
    Ok(())
}

pub fn default_cluster_role_binding(b: &mut ClusterRoleBinding) -> Result<(), super::decode::DecodeError> {
    default_subjects(&mut b.subjects);
    Ok(())
}

/// ValidatePolicyRule.
fn validate_rule(rule: &PolicyRule, namespaced: bool, p: &Path, errs: &mut Errs) {
    if rule.verbs.is_empty() {
        errs.push(required(&p.child("verbs"), "verbs must contain at least one value"));
    }
    let urls = list(&rule.non_resource_urls);
    if !urls.is_empty() {
        let up = p.child("nonResourceURLs");
        // Go's %#v of a []string.
        let shown = format!("[]string{{{}}}", urls.iter().map(|u| format!("{u:?}")).collect::<Vec<_>>().join(", "));
        if namespaced {
            errs.push(invalid(&up, &shown, "namespaced rules cannot apply to non-resource URLs"));
        }
        if !list(&rule.api_groups).is_empty()
            || !list(&rule.resources).is_empty()
            || !list(&rule.resource_names).is_empty()
        {
            errs.push(invalid(&up, &shown, "rules cannot apply to both regular resources and non-resource URLs"));
        }
        return;
    }
    if list(&rule.api_groups).is_empty() {
        errs.push(required(&p.child("apiGroups"), "resource rules must supply at least one api group"));
    }
    if list(&rule.resources).is_empty() {
        errs.push(required(&p.child("resources"), "resource rules must supply at least one resource"));
    }
}

fn validate_rules(rules: &[PolicyRule], namespaced: bool, errs: &mut Errs) {
    let p = Path::new("rules");
    for (i, rule) in rules.iter().enumerate() {
        validate_rule(rule, namespaced, &p.index(i), errs);
    }
}

pub fn validate_role(role: &Role, _raw: &Value) -> Errs {
    let mut errs = Vec::new();
    validate_rules(list(&role.rules), true, &mut errs);
    errs
}

pub fn validate_cluster_role(role: &ClusterRole, _raw: &Value) -> Errs {
    let mut errs = Vec::new();
    validate_rules(list(&role.rules), false, &mut errs);
    if let Some(agg) = &role.aggregation_rule
        && list(&agg.cluster_role_selectors).is_empty()
    {
        errs.push(required(
            &Path::new("aggregationRule").child("clusterRoleSelectors"),
            "at least one clusterRoleSelector required if aggregationRule is non-nil",
        ));
    }
    errs
}

/// ValidateRBACName: a path segment (RBAC names may hold `:`, e.g. `system:basic-user`).
pub fn path_segment_name(name: &str) -> Vec<String> {
    if name == "." || name == ".." {
        return vec![format!("may not be '{name}'")];
    }
    ["/", "%"].iter().filter(|bad| name.contains(**bad)).map(|bad| format!("may not contain '{bad}'")).collect()
}

fn validate_role_ref(r: &RoleRef, kinds: &[&str], errs: &mut Errs) {
    let p = Path::new("roleRef");
    if r.api_group != GROUP {
        errs.push(not_supported(&p.child("apiGroup"), &r.api_group, &[GROUP]));
    }
    if !kinds.contains(&r.kind.as_str()) {
        errs.push(not_supported(&p.child("kind"), &r.kind, kinds));
    }
    if r.name.is_empty() {
        errs.push(required(&p.child("name"), ""));
    } else {
        for msg in path_segment_name(&r.name) {
            errs.push(invalid(&p.child("name"), &r.name, msg));
        }
    }
}

/// ValidateRoleBindingSubject.
fn validate_subjects(subjects: &[Subject], namespaced: bool, errs: &mut Errs) {
    let p = Path::new("subjects");
    for (i, s) in subjects.iter().enumerate() {
        let sp = p.index(i);
        let group = s.api_group.as_deref().unwrap_or("");
        if s.name.is_empty() {
            errs.push(required(&sp.child("name"), ""));
        }
        match s.kind.as_str() {
            "ServiceAccount" => {
                if !s.name.is_empty() {
                    for msg in crate::api::meta::dns1123_subdomain(&s.name) {
                        errs.push(invalid(&sp.child("name"), &s.name, msg));
                    }
                }
                if !group.is_empty() {
                    errs.push(not_supported(&sp.child("apiGroup"), group, &[""]));
                }
                if !namespaced && s.namespace.as_deref().unwrap_or("").is_empty() {
                    errs.push(required(&sp.child("namespace"), ""));
                }
            }
            "User" | "Group" => {
                if group != GROUP {
                    errs.push(not_supported(&sp.child("apiGroup"), group, &[GROUP]));
                }
            }
            other => errs.push(not_supported(&sp.child("kind"), other, &["ServiceAccount", "User", "Group"])),
        }
    }
}

pub fn validate_role_binding(b: &RoleBinding, _raw: &Value) -> Errs {
    let mut errs = Vec::new();
    validate_role_ref(&b.role_ref, &["Role", "ClusterRole"], &mut errs);
    validate_subjects(list(&b.subjects), true, &mut errs);
    errs
}

pub fn validate_cluster_role_binding(b: &ClusterRoleBinding, _raw: &Value) -> Errs {
    let mut errs = Vec::new();
    validate_role_ref(&b.role_ref, &["ClusterRole"], &mut errs);
    validate_subjects(list(&b.subjects), false, &mut errs);
    errs
}

fn role_ref_unchanged(new: &RoleRef, old: &RoleRef, errs: &mut Errs) {
    if new != old {
        let shown = format!("{{APIGroup:{} Kind:{} Name:{}}}", new.api_group, new.kind, new.name);
        errs.push(invalid(&Path::new("roleRef"), shown, "cannot change roleRef"));
    }
}

pub fn validate_role_binding_update(new: &RoleBinding, raw: &Value, old: &RoleBinding, _old_raw: &Value) -> Errs {
    let mut errs = validate_role_binding(new, raw);
    role_ref_unchanged(&new.role_ref, &old.role_ref, &mut errs);
    errs
}

pub fn validate_cluster_role_binding_update(
    new: &ClusterRoleBinding,
    raw: &Value,
    old: &ClusterRoleBinding,
    _old_raw: &Value,
) -> Errs {
    let mut errs = validate_cluster_role_binding(new, raw);
    role_ref_unchanged(&new.role_ref, &old.role_ref, &mut errs);
    errs
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{defaulted, messages};
    use super::super::{name_rule, validate_create, validate_update};
    use serde_json::json;

    #[test]
    fn a_role_from_the_docs_is_accepted_unchanged() {
        let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"namespace": "default", "name": "pod-reader"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "watch", "list"]}]});
        assert_eq!(defaulted("Role", role.clone()), role);
        assert!(validate_create("Role", &role).is_empty());
        assert!(name_rule("ClusterRole")("system:basic-user").is_empty());
        assert_eq!(name_rule("Role")("a/b"), vec!["may not contain '/'"]);
    }

    #[test]
    fn bad_rules_name_their_fields() {
        let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "r"},
            "rules": [{"apiGroups": [""], "resources": ["pods"]}, {"verbs": ["get"]},
                      {"verbs": ["get"], "nonResourceURLs": ["/healthz"]}]});
        assert_eq!(
            messages(&validate_create("Role", &defaulted("Role", role))),
            vec![
                "rules[0].verbs: Required value: verbs must contain at least one value",
                "rules[1].apiGroups: Required value: resource rules must supply at least one api group",
                "rules[1].resources: Required value: resource rules must supply at least one resource",
                "rules[2].nonResourceURLs: Invalid value: []string{\"/healthz\"}: namespaced rules cannot apply to non-resource URLs",
            ]
        );
        let cluster = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "health"}, "rules": [{"verbs": ["get"], "nonResourceURLs": ["/healthz"]}]});
        assert!(validate_create("ClusterRole", &defaulted("ClusterRole", cluster)).is_empty());
    }

    #[test]
    fn bindings_default_subject_groups_and_keep_their_role() {
        let b = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "b", "namespace": "default"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "User", "name": "jane"}, {"kind": "ServiceAccount", "name": "bot"}]});
        let b = defaulted("RoleBinding", b);
        assert_eq!(b["subjects"][0]["apiGroup"], "rbac.authorization.k8s.io");
        assert_eq!(b["subjects"][1]["apiGroup"], "");
        assert!(validate_create("RoleBinding", &b).is_empty());
        let mut changed = b.clone();
        changed["roleRef"]["name"] = json!("edit");
        assert_eq!(
            messages(&validate_update("RoleBinding", &b, &changed)),
            vec![
                "roleRef: Invalid value: {APIGroup:rbac.authorization.k8s.io Kind:ClusterRole Name:edit}: cannot change roleRef"
            ]
        );
        let crb = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": "c"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": ""},
            "subjects": [{"kind": "ServiceAccount", "name": "bot"}, {"kind": "Robot", "name": "r2"}]});
        assert_eq!(
            messages(&validate_create("ClusterRoleBinding", &defaulted("ClusterRoleBinding", crb))),
            vec![
                "roleRef.kind: Unsupported value: \"Role\": supported values: \"ClusterRole\"",
                "roleRef.name: Required value",
                "subjects[0].namespace: Required value",
                "subjects[1].kind: Unsupported value: \"Robot\": supported values: \"ServiceAccount\", \"User\", \"Group\"",
            ]
        );
    }
}
