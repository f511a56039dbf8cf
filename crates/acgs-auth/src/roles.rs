//! Roles and the permissions they grant: the one table that says who may do what.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A role held by a user or an API key. A principal may hold several.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Manages users, API keys and configuration.
    Admin,
    /// Votes on amendments.
    Council,
    /// Drafts amendments.
    Proposer,
    /// Rules on appeals of decisions.
    Reviewer,
    /// Reads decisions and the audit log.
    Auditor,
    /// Runs the service: metrics, backups, key rotation, emergency procedures.
    Operator,
    /// An AI agent: asks for decisions, for the principal its key is bound to.
    Agent,
    /// A trusted gateway or orchestrator: asks for decisions on behalf of any principal.
    Gateway,
    /// A monitoring system: changes the registered facts its writer rules allow (e.g. an agent's risk score).
    Monitor,
}

/// Something a request may need to be allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// Ask for decisions (`POST /v1/decisions`, `/v1/decisions/batch`).
    DecisionsCreate,
    /// Read the decision log and decisions' receipts.
    DecisionsRead,
    /// Read the audit log: its key, checkpoints, entries and proofs.
    AuditRead,
    /// Read the active constitution.
    ConstitutionRead,
    /// Read the Prometheus metrics (when they are not public).
    MetricsRead,
    /// Create, change, disable and unlock users.
    UsersManage,
    /// Create, list and revoke API keys.
    ApiKeysManage,
    /// Rotate signing keys and revoke every session (incident response).
    OperationsManage,
    /// Draft amendments to the constitution.
    AmendmentsPropose,
    /// Vote on amendments.
    AmendmentsVote,
    /// Rule on appeals of decisions.
    AppealsReview,
    /// Read amendments, their votes and diffs, the emergency state and the constitution versions.
    GovernanceRead,
    /// Execute an amendment whose timelock has passed.
    AmendmentsExecute,
    /// Appeal a decision (the service checks standing: the caller that asked, the owner the request named, or an
    /// operator).
    AppealsFile,
    /// Act as a member of an authority the constitution names: veto as a guardian, halt or resume as a member
    /// of the emergency set (the constitution's `[governance]` says who; this permission only keeps machine
    /// clients out).
    GovernanceAct,
    /// Ask for decisions on behalf of any principal (a key or user without it decides only for the entity it is
    /// bound to).
    DecisionsOnBehalf,
    /// Read the entity registry (`GET /v1/entities…`).
    EntitiesRead,
    /// Change the entity registry, as far as the constitution's writer rules allow.
    EntitiesWrite,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 9] = [
        Role::Admin,
        Role::Council,
        Role::Proposer,
        Role::Reviewer,
        Role::Auditor,
        Role::Operator,
        Role::Agent,
        Role::Gateway,
        Role::Monitor,
    ];

    /// The permissions this role grants.
    pub fn permissions(self) -> &'static [Permission] {
        use Permission::*;
        match self {
            Role::Admin => &[
                UsersManage,
                ApiKeysManage,
                EntitiesRead,
                ConstitutionRead,
                MetricsRead,
                GovernanceRead,
                GovernanceAct,
            ],
            Role::Council => &[
                AppealsFile,
                AmendmentsVote,
                AmendmentsPropose,
                AmendmentsExecute,
                ConstitutionRead,
                GovernanceRead,
                GovernanceAct,
            ],
            Role::Proposer => &[
                AppealsFile,
                AmendmentsPropose,
                AmendmentsExecute,
                ConstitutionRead,
                GovernanceRead,
                GovernanceAct,
            ],
            Role::Reviewer => &[
                AppealsReview,
                EntitiesRead,
                AppealsFile,
                AmendmentsPropose,
                DecisionsRead,
                ConstitutionRead,
                GovernanceRead,
                GovernanceAct,
            ],
            Role::Auditor => &[
                DecisionsRead,
                AuditRead,
                EntitiesRead,
                ConstitutionRead,
                GovernanceRead,
                GovernanceAct,
                AppealsFile,
            ],
            Role::Operator => &[
                OperationsManage,
                EntitiesRead,
                EntitiesWrite,
                MetricsRead,
                AuditRead,
                ConstitutionRead,
                GovernanceRead,
                AmendmentsExecute,
                GovernanceAct,
                AppealsFile,
            ],
            Role::Agent => &[DecisionsCreate, ConstitutionRead, AppealsFile],
            Role::Gateway => &[
                DecisionsCreate,
                DecisionsOnBehalf,
                ConstitutionRead,
                EntitiesRead,
                AppealsFile,
            ],
            Role::Monitor => &[EntitiesRead, EntitiesWrite, ConstitutionRead],
        }
    }

    /// The role's name as written in requests, storage and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Council => "council",
            Role::Proposer => "proposer",
            Role::Reviewer => "reviewer",
            Role::Auditor => "auditor",
            Role::Operator => "operator",
            Role::Agent => "agent",
            Role::Gateway => "gateway",
            Role::Monitor => "monitor",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| {
            let names: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
            format!("unknown role `{s}` (roles: {})", names.join(", "))
        })
    }
}

impl Permission {
    /// The permission's name, as in `docs/security.md`.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::DecisionsCreate => "decisions:create",
            Permission::DecisionsRead => "decisions:read",
            Permission::AuditRead => "audit:read",
            Permission::ConstitutionRead => "constitution:read",
            Permission::MetricsRead => "metrics:read",
            Permission::UsersManage => "users:manage",
            Permission::ApiKeysManage => "api_keys:manage",
            Permission::OperationsManage => "operations:manage",
            Permission::AmendmentsPropose => "amendments:propose",
            Permission::AmendmentsVote => "amendments:vote",
            Permission::AppealsReview => "appeals:review",
            Permission::GovernanceRead => "governance:read",
            Permission::AmendmentsExecute => "amendments:execute",
            Permission::GovernanceAct => "governance:act",
            Permission::AppealsFile => "appeals:file",
            Permission::DecisionsOnBehalf => "decisions:on_behalf",
            Permission::EntitiesRead => "entities:read",
            Permission::EntitiesWrite => "entities:write",
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The roles of one principal.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RoleSet(BTreeSet<Role>);

impl RoleSet {
    /// Parse role names; every name must be a known role.
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Self, String> {
        names
            .iter()
            .map(|n| n.as_ref().trim().parse::<Role>())
            .collect::<Result<BTreeSet<_>, _>>()
            .map(Self)
    }

    /// Roles read back from storage; unknown names (written by a newer version) grant nothing.
    pub fn from_stored(names: &[String]) -> Self {
        Self(names.iter().filter_map(|n| n.parse().ok()).collect())
    }

    /// Whether any of the roles grants `permission`.
    pub fn allows(&self, permission: Permission) -> bool {
        self.0.iter().any(|r| r.permissions().contains(&permission))
    }

    /// Whether the set holds `role`.
    pub fn contains(&self, role: Role) -> bool {
        self.0.contains(&role)
    }

    /// Role names, for storage and display.
    pub fn names(&self) -> Vec<String> {
        self.0.iter().map(|r| r.as_str().to_owned()).collect()
    }

    /// The roles.
    pub fn iter(&self) -> impl Iterator<Item = Role> + '_ {
        self.0.iter().copied()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<Role> for RoleSet {
    fn from_iter<I: IntoIterator<Item = Role>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_and_unknown_names_are_refused() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        let err = "root".parse::<Role>().unwrap_err();
        assert!(err.contains("unknown role `root`") && err.contains("auditor"), "{err}");
        assert!(RoleSet::parse(&["agent", "nope"]).is_err());
        let set = RoleSet::parse(&["auditor", "agent", "agent"]).unwrap_or_default();
        assert_eq!(set.names(), vec!["auditor", "agent"]);
    }

    #[test]
    fn permissions_follow_the_roles() {
        let agent = RoleSet::from_iter([Role::Agent]);
        assert!(agent.allows(Permission::DecisionsCreate));
        assert!(!agent.allows(Permission::DecisionsRead));
        assert!(!agent.allows(Permission::UsersManage));
        let admin = RoleSet::from_iter([Role::Admin]);
        assert!(admin.allows(Permission::UsersManage) && admin.allows(Permission::ApiKeysManage));
        assert!(!admin.allows(Permission::DecisionsCreate));
        let both = RoleSet::from_iter([Role::Auditor, Role::Operator]);
        assert!(both.allows(Permission::AuditRead) && both.allows(Permission::OperationsManage));
        assert!(!RoleSet::default().allows(Permission::ConstitutionRead));
        // Stored names written by a newer version grant nothing rather than failing.
        assert_eq!(
            RoleSet::from_stored(&["agent".into(), "superuser".into()]).names(),
            vec!["agent"]
        );
    }
}
