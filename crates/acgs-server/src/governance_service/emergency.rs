//! The emergency halt: approvals of the emergency set, carried into the [`HaltSwitch`] the decision service reads.

use acgs_governance::{EmergencyAction, EmergencyState, GovernanceError};
use acgs_store::{GovernanceCommit, GovernanceRecord, RecordWrite, StoreError};

use super::{ATTEMPTS, EMERGENCY, EmergencyStatus, GovernanceService, HALT, ServiceError, events, internal};

impl GovernanceService {
    // ---- emergency --------------------------------------------------------------------------------------------

    pub(super) async fn emergency_record(&self) -> Result<Option<(EmergencyState, GovernanceRecord)>, ServiceError> {
        let Some(record) = self.store.governance_record(EMERGENCY, HALT).await? else {
            return Ok(None);
        };
        let state = serde_json::from_str(&record.body).map_err(internal("reading the emergency state"))?;
        Ok(Some((state, record)))
    }

    /// The emergency state and who may change it.
    pub async fn emergency_status(&self) -> Result<EmergencyStatus, ServiceError> {
        let (_, rules) = self.rules()?;
        let state = self.emergency_record().await?.map(|(s, _)| s).unwrap_or_default();
        Ok(EmergencyStatus {
            state,
            threshold: rules.emergency.threshold,
            members: rules.emergency.members.clone(),
            approval_window_secs: rules.approval_window_secs,
        })
    }

    /// `user`'s approval of a halt or resume; carried, it takes effect on this server at once (and on other
    /// replicas at their next refresh).
    pub async fn emergency(
        &self,
        user: &str,
        action: EmergencyAction,
        reason: &str,
    ) -> Result<EmergencyStatus, ServiceError> {
        for _ in 0..ATTEMPTS {
            let (_, rules) = self.rules()?;
            let stored = self.emergency_record().await?;
            let (mut state, expected, created) = match &stored {
                Some((s, r)) => (s.clone(), r.revision, r.created_at_us),
                None => (EmergencyState::default(), 0, self.now()),
            };
            let now = self.now();
            let steps = state.approve(action, user, reason, &rules, now)?;
            let commit = GovernanceCommit::records(
                vec![RecordWrite {
                    record: GovernanceRecord {
                        kind: EMERGENCY.into(),
                        id: HALT.into(),
                        revision: expected + 1,
                        state: state.state_name().into(),
                        created_at_us: created,
                        updated_at_us: now,
                        body: serde_json::to_string(&state).map_err(internal("encoding the emergency state"))?,
                    },
                    expected_revision: expected,
                }],
                events(&format!("{EMERGENCY}/{HALT}"), steps, now),
            );
            match self.store.commit_governance(&commit).await {
                Ok(_) => {
                    if state.halted != self.halt.is_halted() {
                        tracing::warn!(halted = state.halted, reason = %state.reason, "emergency state changed");
                    }
                    self.halt.set(state.clone());
                    return Ok(EmergencyStatus {
                        state,
                        threshold: rules.emergency.threshold,
                        members: rules.emergency.members.clone(),
                        approval_window_secs: rules.approval_window_secs,
                    });
                }
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(GovernanceError::Conflict("the emergency state kept changing; try again".into()).into())
    }
}
