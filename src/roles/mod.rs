//! The roles one `armada` process can serve, each a route-mounted module.

use std::fmt;
use std::str::FromStr;

/// A service of the original deployment, now a module of the one binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Backend,
    Orchestrator,
    Frontend,
    ProxyProvider,
    FingerprintProvider,
}

impl Role {
    pub const ALL: [Role; 5] =
        [Role::Backend, Role::Orchestrator, Role::Frontend, Role::ProxyProvider, Role::FingerprintProvider];

    pub fn name(self) -> &'static str {
        match self {
            Role::Backend => "backend",
            Role::Orchestrator => "orchestrator",
            Role::Frontend => "frontend",
            Role::ProxyProvider => "proxy-provider",
            Role::FingerprintProvider => "fingerprint-provider",
        }
    }

    /// The seed's port for this role when it runs alone.
    pub fn default_port(self) -> u16 {
        match self {
            Role::Backend => 8000,
            Role::Orchestrator | Role::Frontend => 8080,
            Role::ProxyProvider => 5001,
            Role::FingerprintProvider => 5005,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown role {0:?}; roles are: backend, orchestrator, frontend, proxy-provider, fingerprint-provider")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let wanted = raw.trim().to_ascii_lowercase().replace('_', "-");
        Role::ALL.into_iter().find(|role| role.name() == wanted).ok_or_else(|| UnknownRole(raw.to_string()))
    }
}

/// Parses `backend,orchestrator` (duplicates removed, order kept).
pub fn parse_roles(raw: &str) -> Result<Vec<Role>, UnknownRole> {
    let mut roles = Vec::new();
    for part in raw.split(',').filter(|p| !p.trim().is_empty()) {
        let role: Role = part.parse()?;
        if !roles.contains(&role) {
            roles.push(role);
        }
    }
    Ok(roles)
}

pub mod backend;
pub mod fingerprint_provider;
pub mod frontend;
pub mod orchestrator;
pub mod proxy_provider;

/// Whether a role's routes exist yet; a role that is not built is accepted and serves only
/// `/health` and `/metrics`, and `/health` says so.
pub fn is_built(role: Role) -> bool {
    matches!(
        role,
        Role::Backend | Role::Frontend | Role::Orchestrator | Role::ProxyProvider | Role::FingerprintProvider
    )
}

/// The routes a role mounts.
pub fn router(role: Role) -> axum::Router<crate::app::AppState> {
    match role {
        Role::Backend => backend::router(),
        Role::Frontend => frontend::router(),
        Role::Orchestrator => orchestrator::router(),
        Role::ProxyProvider => proxy_provider::router(),
        Role::FingerprintProvider => fingerprint_provider::router(),
    }
}

/// The part of the OpenAPI document a role contributes.
pub fn openapi(role: Role) -> Option<utoipa::openapi::OpenApi> {
    match role {
        Role::Backend => Some(backend::openapi()),
        Role::Orchestrator => Some(orchestrator::openapi()),
        Role::ProxyProvider => Some(proxy_provider::openapi()),
        Role::FingerprintProvider => Some(fingerprint_provider::openapi()),
        Role::Frontend => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_role_lists_the_valid_ones() {
        let err = parse_roles("backend,foo").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown role \"foo\"; roles are: backend, orchestrator, frontend, proxy-provider, fingerprint-provider"
        );
    }

    #[test]
    fn roles_parse_with_either_separator_and_dedupe() {
        let roles = parse_roles("backend, proxy_provider,backend").expect("valid roles");
        assert_eq!(roles, vec![Role::Backend, Role::ProxyProvider]);
    }
}
