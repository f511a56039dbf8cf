//! Change analysis between two constitutions: per action, whether the requests each one allows and the requests
//! each one denies are the same, and where not, a request on each side of the difference, replayed under both.
//!
//! Both policy sets are compiled against the new schema's request environments (the requests that can be made
//! once the amendment is in force). An action only the new schema declares is compared against nothing allowed; an
//! action only the old one declares is reported `removed` (its requests are refused as unknown from then on).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use acgs_engine::{Detectors, Outcome};
use cedar_policy::Policy;

use crate::VerifyError;
use crate::counterexample::{outcome_under, replay, to_request};
use crate::encoding::{EnvPolicies, Subject};
use crate::report::{ActionChange, ChangeReport, Example, OutcomeChange, Verdict};
use crate::session::{Answer, Session};
use crate::solver::SolverConfig;
use crate::workers;

/// Compare `old` (in force) with `new` (proposed), the actions spread over the configured workers.
pub(crate) fn compare(
    old: &Subject<'_>,
    new: &Subject<'_>,
    config: &SolverConfig,
    progress: &(dyn Fn(usize, usize, &str) + Sync),
) -> Result<ChangeReport, VerifyError> {
    let started = Instant::now();
    let detectors = Detectors::new();
    let new_actions: Vec<String> = new
        .envs
        .iter()
        .map(|e| e.action.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let old_actions: BTreeSet<String> = old.envs.iter().map(|e| e.action.clone()).collect();
    let removed: Vec<&String> = old_actions.iter().filter(|a| !new_actions.contains(a)).collect();
    let total = new_actions.len() + removed.len();
    let done = AtomicUsize::new(0);
    let mut actions = workers::for_each(&new_actions, config.workers, config, async |session, action| {
        progress(done.fetch_add(1, Ordering::Relaxed), total, action);
        compare_action(session, old, new, &detectors, action).await
    })?;
    for action in removed {
        actions.push(ActionChange {
            action: action.clone(),
            status: "removed".into(),
            outcomes: Vec::new(),
        });
    }
    progress(total, total, "done");
    actions.sort_by(|a, b| a.action.cmp(&b.action));
    let equivalent = actions.iter().all(|a| a.status == "unchanged");
    Ok(ChangeReport {
        old_hash: old.constitution.hash().to_hex(),
        new_hash: new.constitution.hash().to_hex(),
        equivalent,
        actions,
        took_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    })
}

/// The sides of one comparison in one environment.
struct Pair {
    new: EnvPolicies,
    old: EnvPolicies,
}

async fn compare_action(
    session: &mut Session,
    old: &Subject<'_>,
    new: &Subject<'_>,
    detectors: &Detectors,
    action: &str,
) -> Result<ActionChange, VerifyError> {
    let added = old.constitution.action_policies(action).is_none();
    let mut pairs = Vec::new();
    for env in new.envs.iter().filter(|e| e.action == action) {
        let old_side = EnvPolicies::for_env(old.constitution, &old.parsed, env.env.clone())?;
        pairs.push(Pair {
            new: env.clone(),
            old: old_side,
        });
    }
    let schema = new.constitution.schema();
    let mut outcomes = Vec::new();
    let mut status = if added { "added" } else { "unchanged" };
    for outcome in ["allow", "deny"] {
        // For `allow`, compare A; for `deny`, its complement R: a request only one side denies is one only the
        // other side lets through.
        let set = |e: &EnvPolicies| {
            if outcome == "allow" {
                e.allow_set()
            } else {
                e.pass_set()
            }
        };
        let mut only_new = None;
        let mut only_old = None;
        let mut unknown: Option<String> = None;
        for pair in &pairs {
            for new_side in [true, false] {
                if (new_side && only_new.is_some()) || (!new_side && only_old.is_some()) {
                    continue;
                }
                // "New gives `outcome`, old does not": for allow, A_new ∖ A_old; for deny, R_old ∖ R_new. Both
                // sides are compiled for the new schema's environment, restricted by its well-formedness rule.
                let (first, second): (Vec<Policy>, Vec<Policy>) = if (outcome == "allow") == new_side {
                    (set(&pair.new), set(&pair.old))
                } else {
                    (set(&pair.old), set(&pair.new))
                };
                let env = &pair.new;
                let compiled = env
                    .compile_set(schema, env.well_formed(first))
                    .and_then(|a| Ok((a, env.compile_set(schema, second)?)));
                let (a, b) = match compiled {
                    Ok(sets) => sets,
                    Err(e) => {
                        unknown.get_or_insert(format!(
                            "the old policies do not type-check against the new schema for this action: {e}"
                        ));
                        continue;
                    }
                };
                match session.allowed_by_first_only(&a, &b).await {
                    Answer::Proved => {}
                    Answer::Unknown(why) => {
                        unknown.get_or_insert(why);
                    }
                    Answer::Found(model) => {
                        let shows = if new_side {
                            format!("a request only the new version gives `{outcome}`")
                        } else {
                            format!("a request only the old version gives `{outcome}`")
                        };
                        let example = to_request(&model).and_then(|request| {
                            let old_outcome = outcome_under(old.constitution, detectors, &request);
                            let mut ex: Example = replay(new.constitution, detectors, request, shows)?;
                            ex.old_outcome = old_outcome;
                            Ok(ex)
                        });
                        let example = match example {
                            Ok(ex) => ex,
                            Err(e) => {
                                unknown.get_or_insert(e.to_string());
                                continue;
                            }
                        };
                        if !confirmed(outcome, new_side, &example) {
                            // Cedar skips a policy that fails to evaluate; the engine denies. The solver's request
                            // differs only through such a failure, which both versions answer the same way.
                            unknown.get_or_insert(format!(
                                "the solver's request differs only where a policy fails to evaluate (the engine \
                                 decides {:?} under the new version and {} under the old); prove never_errors \
                                 for both to compare exactly",
                                example.outcome,
                                example.old_outcome.map_or("a refusal".to_owned(), |o| format!("{o:?}"))
                            ));
                            continue;
                        }
                        if new_side {
                            only_new = Some(example);
                        } else {
                            only_old = Some(example);
                        }
                    }
                }
            }
        }
        let (verdict, detail) = match (&only_new, &only_old, &unknown) {
            (None, None, None) => (Verdict::Holds, format!("the same requests get `{outcome}`")),
            (None, None, Some(why)) => (Verdict::Unknown, why.clone()),
            _ => {
                let mut parts = Vec::new();
                if only_new.is_some() {
                    parts.push(format!("some requests get `{outcome}` only under the new version"));
                }
                if only_old.is_some() {
                    parts.push(format!("some requests get `{outcome}` only under the old version"));
                }
                (Verdict::Violated, parts.join("; "))
            }
        };
        match verdict {
            Verdict::Violated if !added => status = "changed",
            Verdict::Unknown if status == "unchanged" => status = "unknown",
            _ => {}
        }
        outcomes.push(OutcomeChange {
            outcome: outcome.to_owned(),
            verdict,
            only_new,
            only_old,
            detail,
        });
    }
    Ok(ActionChange {
        action: action.to_owned(),
        status: status.to_owned(),
        outcomes,
    })
}

/// Whether the engine reproduces the difference: the side named gives `outcome` and the other does not (a request
/// the old version refuses, e.g. for an action it does not declare, counts as denied there).
fn confirmed(outcome: &str, new_side: bool, example: &Example) -> bool {
    let gives = |o: Option<Outcome>| match outcome {
        "allow" => o == Some(Outcome::Allow),
        _ => o.is_none_or(|o| o == Outcome::Deny),
    };
    let (new, old) = (gives(Some(example.outcome)), gives(example.old_outcome));
    if new_side { new && !old } else { old && !new }
}
