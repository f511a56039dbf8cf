//! The checks on one constitution: its invariants, then per policy whether it can fail to evaluate, whether it
//! applies to anything, whether a permit ever takes effect and whether the policy is needed at all, then per
//! action whether anything can be allowed or escalated. Each is a query (or a few, one per request environment)
//! to the solver; each refutation comes with a request replayed through the decision engine.

use std::collections::HashMap;
use std::time::Instant;

use acgs_engine::{CompiledInvariant, Detectors, FindingSeverity, InvariantKind, Outcome, PolicyEffect};
use cedar_policy::Policy;
use cedar_policy_symcc::Env;

use crate::VerifyError;
use crate::counterexample::{replay, to_request};
use crate::encoding::{EnvPolicies, Subject, as_permit};
use crate::report::{CheckKind, CheckResult, Example, Verdict};
use crate::session::{Answer, Session};

/// How each kind of finding weighs, from the constitution's `[verification]` table and the defaults.
#[derive(Clone, Copy)]
pub(crate) struct Severities {
    dead_permits: FindingSeverity,
    unmatched_policies: FindingSeverity,
    redundant_policies: FindingSeverity,
    unreachable_actions: FindingSeverity,
}

impl Severities {
    pub(crate) fn of(subject: &Subject) -> Self {
        let settings = subject.constitution.document().verification.unwrap_or_default();
        Self {
            dead_permits: settings.dead_permits.unwrap_or(FindingSeverity::Block),
            unmatched_policies: settings.unmatched_policies.unwrap_or(FindingSeverity::Warn),
            redundant_policies: settings.redundant_policies.unwrap_or(FindingSeverity::Warn),
            unreachable_actions: settings.unreachable_actions.unwrap_or(FindingSeverity::Warn),
        }
    }

    pub(crate) fn of_kind(&self, kind: CheckKind) -> FindingSeverity {
        match kind {
            CheckKind::Invariant | CheckKind::NeverErrors => FindingSeverity::Block,
            CheckKind::PolicyMatches => self.unmatched_policies,
            CheckKind::PermitTakesEffect => self.dead_permits,
            CheckKind::PolicyNeeded => self.redundant_policies,
            CheckKind::ActionReachable => self.unreachable_actions,
        }
    }
}

/// The state of one run over one constitution.
pub(crate) struct Run<'a> {
    subject: &'a Subject<'a>,
    session: &'a mut Session,
    detectors: &'a Detectors,
    severities: Severities,
}

/// A result before its severity is attached.
struct Finding {
    verdict: Verdict,
    detail: String,
    example: Option<Example>,
}

impl Finding {
    fn holds(detail: impl Into<String>) -> Self {
        Self {
            verdict: Verdict::Holds,
            detail: detail.into(),
            example: None,
        }
    }

    fn unknown(detail: impl Into<String>) -> Self {
        Self {
            verdict: Verdict::Unknown,
            detail: detail.into(),
            example: None,
        }
    }
}

/// The envs' answers to one question: the first request found, else whether any was unknown.
enum Combined {
    Proved,
    Found(Box<Env>, usize),
    Unknown(String),
}

impl<'a> Run<'a> {
    pub(crate) fn new(
        subject: &'a Subject<'a>,
        session: &'a mut Session,
        detectors: &'a Detectors,
        severities: Severities,
    ) -> Self {
        Self {
            subject,
            session,
            detectors,
            severities,
        }
    }

    fn result(&self, kind: CheckKind, subject: &str, finding: Finding, started: Instant) -> CheckResult {
        CheckResult {
            check: kind,
            subject: subject.to_owned(),
            verdict: finding.verdict,
            severity: self.severities.of_kind(kind),
            detail: finding.detail,
            example: finding.example,
            took_us: u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            cached: false,
        }
    }

    /// A solver model as an example, replayed through the engine.
    fn example(&self, env: &Env, shows: String) -> Result<Example, VerifyError> {
        let request = to_request(env)?;
        replay(self.subject.constitution, self.detectors, request, shows)
    }

    /// An example, or the reason there is none as an `unknown` finding's detail.
    fn example_or_unknown(&self, env: &Env, shows: String) -> Result<Example, String> {
        self.example(env, shows)
            .map_err(|e| format!("the solver's counterexample could not be replayed: {e}"))
    }

    /// Compile and ask, for each env; stops at the first request found.
    async fn each_env<F>(&mut self, envs: &[&EnvPolicies], mut question: F) -> Result<Combined, VerifyError>
    where
        F: FnMut(&EnvPolicies) -> Result<Query, VerifyError>,
    {
        let subject = self.subject;
        let schema = subject.constitution.schema();
        let mut unknown = None;
        for (i, env) in envs.iter().enumerate() {
            let answer = match question(env)? {
                Query::AllowedBy(set) => {
                    let set = env.compile_set(schema, set)?;
                    self.session.allowed_by(&set).await
                }
                Query::FirstOnly(a, b) => {
                    let (a, b) = (env.compile_set(schema, a)?, env.compile_set(schema, b)?);
                    self.session.allowed_by_first_only(&a, &b).await
                }
                Query::Both(a, b) => {
                    let (a, b) = (env.compile_set(schema, a)?, env.compile_set(schema, b)?);
                    self.session.allowed_by_both(&a, &b).await
                }
                Query::Differ(a, b) => {
                    let (a, b) = (env.compile_set(schema, a)?, env.compile_set(schema, b)?);
                    self.session.decided_differently(&a, &b).await
                }
                Query::Errors(p) => {
                    let compiled = env.compile_policy(schema, &p)?;
                    self.session.errors_on(&compiled).await
                }
            };
            match answer {
                Answer::Proved => {}
                Answer::Found(model) => return Ok(Combined::Found(model, i)),
                Answer::Unknown(why) => {
                    unknown.get_or_insert(why);
                }
            }
        }
        Ok(match unknown {
            Some(why) => Combined::Unknown(why),
            None => Combined::Proved,
        })
    }

    /// Every invariant's result.
    pub(crate) async fn invariant(
        &mut self,
        inv: &CompiledInvariant,
        errors: &HashMap<String, Verdict>,
    ) -> Result<CheckResult, VerifyError> {
        let started = Instant::now();
        let subject = self.subject;
        let envs: Vec<&EnvPolicies> = subject.envs.iter().collect();
        let finding = match inv.kind {
            InvariantKind::NeverAllowed => {
                let matching = inv.matching.as_ref();
                match self
                    .each_env(&envs, |e| Ok(Query::Both(e.domain(matching), e.pass_set())))
                    .await?
                {
                    Combined::Proved => Finding::holds("no matching request is allowed or escalated"),
                    Combined::Unknown(why) => Finding::unknown(why),
                    Combined::Found(model, _) => {
                        match self.example_or_unknown(&model, "a matching request that is not denied".into()) {
                            Err(why) => Finding::unknown(why),
                            Ok(ex) if ex.outcome != Outcome::Deny => Finding {
                                verdict: Verdict::Violated,
                                detail: format!("a matching request is {}", outcome_word(ex.outcome)),
                                example: Some(ex),
                            },
                            Ok(ex) => Finding {
                                verdict: Verdict::Unknown,
                                detail: "Cedar would let a matching request through, but the engine denies it \
                                         because a policy fails to evaluate (see never_errors)"
                                    .into(),
                                example: Some(ex),
                            },
                        }
                    }
                }
            }
            InvariantKind::AlwaysAllowed => {
                let matching = inv.matching.as_ref();
                match self
                    .each_env(&envs, |e| Ok(Query::FirstOnly(e.domain(matching), e.allow_set())))
                    .await?
                {
                    Combined::Unknown(why) => Finding::unknown(why),
                    Combined::Found(model, _) => {
                        match self.example_or_unknown(&model, "a matching request that is not allowed".into()) {
                            Err(why) => Finding::unknown(why),
                            Ok(ex) => Finding {
                                verdict: Verdict::Violated,
                                detail: format!("a matching request is {}", outcome_word(ex.outcome)),
                                example: Some(ex),
                            },
                        }
                    }
                    Combined::Proved => {
                        // Exact only where no policy of the action can fail to evaluate on a matching request.
                        let mut doubtful = Vec::new();
                        for env in &subject.envs {
                            let erring: Vec<String> = env
                                .all_policies()
                                .map(|p| p.id().to_string())
                                .filter(|id| errors.get(id) != Some(&Verdict::Holds))
                                .collect();
                            if erring.is_empty() {
                                continue;
                            }
                            let domain = env.domain(matching);
                            let set = env.compile_set(subject.constitution.schema(), domain)?;
                            if !matches!(self.session.allowed_by(&set).await, Answer::Proved) {
                                doubtful.extend(erring);
                            }
                        }
                        doubtful.sort();
                        doubtful.dedup();
                        if doubtful.is_empty() {
                            Finding::holds("every matching request is allowed")
                        } else {
                            Finding::unknown(format!(
                                "every matching request is allowed unless a policy fails to evaluate, which is not \
                                 proved impossible for {}",
                                doubtful.join(", ")
                            ))
                        }
                    }
                }
            }
            InvariantKind::NeverErrors => {
                let mut failing: Vec<&String> = errors
                    .iter()
                    .filter(|(_, v)| **v == Verdict::Violated)
                    .map(|(id, _)| id)
                    .collect();
                failing.sort();
                let undecided = errors.values().any(|v| *v == Verdict::Unknown);
                if !failing.is_empty() {
                    Finding {
                        verdict: Verdict::Violated,
                        detail: format!(
                            "can fail to evaluate: {} (see their never_errors results for requests)",
                            failing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                        ),
                        example: None,
                    }
                } else if undecided {
                    Finding::unknown("some policy's never_errors check is unknown")
                } else {
                    Finding::holds("no policy fails to evaluate on any request")
                }
            }
            InvariantKind::Implies => {
                let of = |principle: &str| -> Vec<String> {
                    subject
                        .constitution
                        .policies()
                        .filter(|p| p.principle_id == principle)
                        .map(|p| p.id.clone())
                        .collect()
                };
                let (ours, theirs) = (of(&inv.principle_id), of(inv.implies.as_deref().unwrap_or_default()));
                let pick = |env: &EnvPolicies, ids: &[String]| -> Vec<Policy> {
                    env.all_policies()
                        .filter(|p| ids.contains(&p.id().to_string()))
                        .cloned()
                        .collect()
                };
                match self
                    .each_env(&envs, |e| {
                        Ok(Query::FirstOnly(e.well_formed(pick(e, &ours)), pick(e, &theirs)))
                    })
                    .await?
                {
                    Combined::Proved => Finding::holds(format!(
                        "whatever {}'s policies allow, {}'s allow",
                        inv.principle_id,
                        inv.implies.as_deref().unwrap_or_default()
                    )),
                    Combined::Unknown(why) => Finding::unknown(why),
                    Combined::Found(model, _) => {
                        let shows = format!(
                            "{}'s policies allow this request and {}'s do not",
                            inv.principle_id,
                            inv.implies.as_deref().unwrap_or_default()
                        );
                        match self.example_or_unknown(&model, shows.clone()) {
                            Err(why) => Finding::unknown(why),
                            Ok(ex) => Finding {
                                verdict: Verdict::Violated,
                                detail: shows,
                                example: Some(ex),
                            },
                        }
                    }
                }
            }
        };
        Ok(self.result(CheckKind::Invariant, &inv.id, finding, started))
    }

    /// The four checks of one policy: never errors, matches, (permits) takes effect, needed. With `warnings` false,
    /// the checks that can only warn (matches, needed) are left out unless the constitution makes them block.
    pub(crate) async fn policy(
        &mut self,
        id: &str,
        effect: PolicyEffect,
        warnings: bool,
    ) -> Result<Vec<CheckResult>, VerifyError> {
        let envs = policy_envs(self.subject, id);
        let mut out = Vec::new();
        if envs.is_empty() {
            let started = Instant::now();
            let finding = Finding {
                verdict: Verdict::Violated,
                detail: "its action scope names no action of the schema".into(),
                example: None,
            };
            out.push(self.result(CheckKind::PolicyMatches, id, finding, started));
            return Ok(out);
        }
        let policy = |env: &EnvPolicies| policy_in(env, id);

        out.push(self.never_errors(id).await?);

        // Matches something.
        let started = Instant::now();
        let matched = self
            .each_env(&envs, |e| {
                Ok(Query::AllowedBy(e.well_formed(vec![as_permit(&policy(e)?)?])))
            })
            .await?;
        let witness = match &matched {
            Combined::Found(model, i) => Some((self.example(model, format!("a request `{id}` applies to")), *i)),
            _ => None,
        };
        let finding = match &matched {
            Combined::Proved => Finding {
                verdict: Verdict::Violated,
                detail: "applies to no request the schema allows".into(),
                example: None,
            },
            Combined::Unknown(why) => Finding::unknown(why.clone()),
            Combined::Found(..) => Finding::holds("applies to some requests"),
        };
        if warnings || self.severities.of_kind(CheckKind::PolicyMatches) == FindingSeverity::Block {
            out.push(self.result(CheckKind::PolicyMatches, id, finding, started));
        }
        if !matches!(matched, Combined::Found(..)) {
            return Ok(out);
        }

        // A permit takes effect somewhere.
        if effect == PolicyEffect::Permit {
            let started = Instant::now();
            let answer = self
                .each_env(&envs, |e| {
                    let mut set = vec![policy(e)?];
                    set.extend(e.hard.iter().cloned());
                    Ok(Query::AllowedBy(e.well_formed(set)))
                })
                .await?;
            let dead = matches!(answer, Combined::Proved);
            let finding = match answer {
                Combined::Found(..) => Finding::holds("decides some requests (no forbid overrides it there)"),
                Combined::Unknown(why) => Finding::unknown(why),
                Combined::Proved => Finding {
                    verdict: Verdict::Violated,
                    detail: "dead: every request it applies to is denied by a forbid".into(),
                    example: witness_example(&witness, "a request it applies to, denied by a forbid"),
                },
            };
            out.push(self.result(CheckKind::PermitTakesEffect, id, finding, started));
            if dead {
                return Ok(out);
            }
        }

        // Needed: removing it changes some decision.
        if !warnings && self.severities.of_kind(CheckKind::PolicyNeeded) != FindingSeverity::Block {
            return Ok(out);
        }
        let started = Instant::now();
        let without =
            |set: Vec<Policy>| -> Vec<Policy> { set.into_iter().filter(|p| p.id().to_string() != id).collect() };
        let mut answer = self
            .each_env(&envs, |e| {
                Ok(Query::Differ(
                    e.well_formed(e.allow_set()),
                    e.well_formed(without(e.allow_set())),
                ))
            })
            .await?;
        if matches!(answer, Combined::Proved) {
            answer = self
                .each_env(&envs, |e| {
                    Ok(Query::Differ(
                        e.well_formed(e.pass_set()),
                        e.well_formed(without(e.pass_set())),
                    ))
                })
                .await?;
        }
        let finding = match answer {
            Combined::Found(..) => Finding::holds("removing it would change some decisions"),
            Combined::Unknown(why) => Finding::unknown(why),
            Combined::Proved => Finding {
                verdict: Verdict::Violated,
                detail: "redundant: removing it changes no decision".into(),
                example: witness_example(&witness, "a request it applies to, decided the same without it"),
            },
        };
        out.push(self.result(CheckKind::PolicyNeeded, id, finding, started));
        Ok(out)
    }

    /// Whether policy `id` can fail to evaluate on some request.
    pub(crate) async fn never_errors(&mut self, id: &str) -> Result<CheckResult, VerifyError> {
        let started = Instant::now();
        let envs = policy_envs(self.subject, id);
        let policy = |env: &EnvPolicies| policy_in(env, id);
        let finding = match self
            .each_env(&envs, |e| Ok(Query::Errors(Box::new(policy(e)?))))
            .await?
        {
            Combined::Proved => Finding::holds("never fails to evaluate"),
            Combined::Unknown(why) => Finding::unknown(why),
            Combined::Found(model, _) => {
                let shows = format!("a request on which `{id}` fails to evaluate (the engine then denies)");
                match self.example_or_unknown(&model, shows) {
                    Err(why) => Finding::unknown(why),
                    Ok(ex) => {
                        let reproduced = ex.outcome == Outcome::Deny && ex.policies.iter().any(|p| p == id);
                        Finding {
                            verdict: Verdict::Violated,
                            detail: format!(
                                "fails to evaluate on some requests, which makes them denied{}",
                                if reproduced {
                                    ""
                                } else {
                                    " (not reproduced by the engine)"
                                }
                            ),
                            example: Some(ex),
                        }
                    }
                }
            }
        };
        Ok(self.result(CheckKind::NeverErrors, id, finding, started))
    }

    /// Whether anything can be allowed or escalated for `action`.
    pub(crate) async fn action(&mut self, action: &str) -> Result<CheckResult, VerifyError> {
        let started = Instant::now();
        let subject = self.subject;
        let envs: Vec<&EnvPolicies> = subject.envs.iter().filter(|e| e.action == action).collect();
        let allow = self
            .each_env(&envs, |e| Ok(Query::AllowedBy(e.well_formed(e.allow_set()))))
            .await?;
        let escalate = self
            .each_env(&envs, |e| {
                Ok(Query::FirstOnly(e.well_formed(e.pass_set()), e.allow_set()))
            })
            .await?;
        let finding = match (&allow, &escalate) {
            (Combined::Found(model, _), other) | (other, Combined::Found(model, _)) => {
                let can_allow = matches!(allow, Combined::Found(..));
                let can_escalate = matches!(escalate, Combined::Found(..));
                let shows = if can_allow {
                    "a request it allows"
                } else {
                    "a request it escalates"
                };
                let _ = other;
                Finding {
                    verdict: Verdict::Holds,
                    detail: format!(
                        "can allow: {}; can escalate: {}",
                        yes_no(&allow, can_allow),
                        yes_no(&escalate, can_escalate)
                    ),
                    example: self.example(model, shows.into()).ok(),
                }
            }
            (Combined::Unknown(why), _) | (_, Combined::Unknown(why)) => Finding::unknown(why.clone()),
            (Combined::Proved, Combined::Proved) => Finding {
                verdict: Verdict::Violated,
                detail: "every request for it is denied: nothing can be allowed or escalated".into(),
                example: None,
            },
        };
        Ok(self.result(CheckKind::ActionReachable, action, finding, started))
    }
}

/// The request environments whose action policy `id` can apply to.
fn policy_envs<'s>(subject: &'s Subject<'_>, id: &str) -> Vec<&'s EnvPolicies> {
    subject
        .envs
        .iter()
        .filter(|e| e.all_policies().any(|p| p.id().to_string() == id))
        .collect()
}

/// Policy `id` as compiled for `env`.
fn policy_in(env: &EnvPolicies, id: &str) -> Result<Policy, VerifyError> {
    env.all_policies()
        .find(|p| p.id().to_string() == id)
        .cloned()
        .ok_or_else(|| VerifyError::Encoding(format!("policy `{id}` missing")))
}

/// One question for one env, as policy sets.
enum Query {
    AllowedBy(Vec<Policy>),
    FirstOnly(Vec<Policy>, Vec<Policy>),
    Both(Vec<Policy>, Vec<Policy>),
    Differ(Vec<Policy>, Vec<Policy>),
    Errors(Box<Policy>),
}

fn witness_example(witness: &Option<(Result<Example, VerifyError>, usize)>, shows: &str) -> Option<Example> {
    match witness {
        Some((Ok(ex), _)) => Some(Example {
            shows: shows.to_owned(),
            ..ex.clone()
        }),
        _ => None,
    }
}

fn yes_no(c: &Combined, found: bool) -> &'static str {
    match (found, c) {
        (true, _) => "yes",
        (false, Combined::Unknown(_)) => "unknown",
        (false, _) => "no",
    }
}

fn outcome_word(o: Outcome) -> &'static str {
    match o {
        Outcome::Allow => "allowed",
        Outcome::Deny => "denied",
        Outcome::Escalate => "escalated",
    }
}
