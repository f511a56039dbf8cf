//! Who a caller may ask decisions for. An API key (or a user) bound to a registry entity decides for that
//! principal only; a caller whose roles grant `decisions:on_behalf` (a trusted gateway or orchestrator) decides
//! for any principal; any other caller decides for nobody. The principal's facts still come from the registry
//! for the types the constitution says so, whoever asks.

use acgs_auth::{Permission, Principal};
use acgs_engine::EntityInput;

/// Whether `caller` may ask a decision whose principal is `principal`; the refusal says why.
pub fn may_decide_for(caller: &Principal, principal: &EntityInput) -> Result<(), String> {
    if caller.can(Permission::DecisionsOnBehalf) {
        return Ok(());
    }
    match caller.entity.as_deref() {
        Some(bound) if bound.entity_type == principal.entity_type && bound.id == principal.id => Ok(()),
        Some(bound) => Err(format!(
            "this credential is bound to {}::{:?} and may ask decisions for that principal only, not for {}::{:?}",
            bound.entity_type, bound.id, principal.entity_type, principal.id
        )),
        None => Err(
            "this credential is bound to no principal: bind it to the agent it acts for \
             (`acgs auth api-keys create --entity 'Agent::\"…\"'`), or use a gateway key (`decisions:on_behalf`)"
                .to_owned(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use acgs_auth::{PrincipalKind, Role, RoleSet};
    use acgs_store::EntityName;

    use super::*;

    fn key(roles: &[Role], entity: Option<(&str, &str)>) -> Principal {
        Principal {
            kind: PrincipalKind::ApiKey {
                id: "acgs_test".into(),
                name: "test".into(),
            },
            roles: roles.iter().copied().collect::<RoleSet>(),
            entity: entity.map(|(t, id)| {
                Arc::new(EntityName {
                    entity_type: t.into(),
                    id: id.into(),
                })
            }),
        }
    }

    fn agent(id: &str) -> EntityInput {
        serde_json::from_value(serde_json::json!({"type": "Agent", "id": id})).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_bound_key_decides_for_its_principal_only_and_a_gateway_for_anyone() {
        let bound = key(&[Role::Agent], Some(("Agent", "ap-agent")));
        assert!(may_decide_for(&bound, &agent("ap-agent")).is_ok());
        let refused = may_decide_for(&bound, &agent("helpdesk-bot")).unwrap_err();
        assert!(refused.contains("helpdesk-bot"), "{refused}");
        assert!(may_decide_for(&key(&[Role::Agent], None), &agent("ap-agent")).is_err());
        assert!(may_decide_for(&key(&[Role::Gateway], None), &agent("anyone")).is_ok());
    }
}
