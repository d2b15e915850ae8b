//! What the orchestrator's Role must allow (the seed's `armada-role`), checked with
//! `SelfSubjectAccessReview` under whatever identity the client has: `armada kube check`.

use k8s_openapi::api::authorization::v1::{ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec};
use kube::api::{Api, PostParams};

use super::client::{Connection, api_error};
use crate::infra::launcher::LaunchError;

/// One verb on one resource of one API group (`""` is the core group).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permission {
    pub group: &'static str,
    pub resource: &'static str,
    pub verb: &'static str,
}

impl Permission {
    const fn new(group: &'static str, resource: &'static str, verb: &'static str) -> Self {
        Self { group, resource, verb }
    }

    /// `create jobs.batch`, `watch pods`: how `kubectl auth can-i` names it.
    pub fn describe(&self) -> String {
        if self.group.is_empty() {
            format!("{} {}", self.verb, self.resource)
        } else {
            format!("{} {}.{}", self.verb, self.resource, self.group)
        }
    }
}

/// The seed's Role rules, one permission each.
pub const REQUIRED: [Permission; 9] = [
    Permission::new("batch", "jobs", "create"),
    Permission::new("batch", "jobs", "delete"),
    Permission::new("", "pods", "create"),
    Permission::new("", "pods", "get"),
    Permission::new("", "pods", "list"),
    Permission::new("", "pods", "watch"),
    Permission::new("", "pods", "delete"),
    Permission::new("", "configmaps", "get"),
    Permission::new("", "configmaps", "list"),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessCheck {
    pub permission: Permission,
    pub allowed: bool,
    /// The authorizer's words, when it gave any.
    pub reason: Option<String>,
}

/// The review the API is asked for one permission in `namespace`.
pub fn review(permission: &Permission, namespace: &str) -> SelfSubjectAccessReview {
    SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                group: Some(permission.group.to_string()),
                resource: Some(permission.resource.to_string()),
                verb: Some(permission.verb.to_string()),
                namespace: Some(namespace.to_string()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// Asks the API, for every [`REQUIRED`] permission, whether this client has it in `namespace`.
pub async fn check_access(connection: &Connection, namespace: &str) -> Result<Vec<AccessCheck>, LaunchError> {
    let api: Api<SelfSubjectAccessReview> = Api::all(connection.client.clone());
    let mut checks = Vec::with_capacity(REQUIRED.len());
    for permission in REQUIRED {
        let answer = api
            .create(&PostParams::default(), &review(&permission, namespace))
            .await
            .map_err(|e| api_error(&format!("review access to {}", permission.describe()), e))?;
        let status = answer.status.unwrap_or_default();
        let reason = status.reason.or(status.evaluation_error).filter(|r| !r.is_empty());
        checks.push(AccessCheck { permission, allowed: status.allowed, reason });
    }
    Ok(checks)
}
