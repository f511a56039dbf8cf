//! Usage counters in the constitution: declared in `[[counters]]`, read by policies in `context.usage`, which the
//! caller may not send; checked against the actions' contexts at load.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use acgs_engine::{Constitution, CounterScope, DecisionRequest, Engine, Outcome, ProblemKind, RequestError, Usage};
use serde_json::json;

const CONSTITUTION: &str = r#"
[constitution]
name = "counters test"
version = "1"

[schema]
cedar = '''
entity Agent;
entity Account;
action pay appliesTo { principal: [Agent], resource: [Account],
  context: { amount: Long, usage: { paid_today: Long, payments_last_minute: Long } } };
action look appliesTo { principal: [Agent], resource: [Account], context: {} };
'''

[[counters]]
name = "paid_today"
actions = ["pay"]
kind = "sum"
field = "amount"
window = "24h"
per = "resource"

[[counters]]
name = "payments_last_minute"
actions = ["pay"]
kind = "count"
window = "60s"

[[principles]]
id = "P-1"
title = "t"
text = "t"
category = "c"
priority = 1
severity = "high"

[[policies]]
id = "pay"
principle = "P-1"
cedar = 'permit (principal, action, resource);'

[[policies]]
id = "daily-cap"
principle = "P-1"
cedar = 'forbid (principal, action == Action::"pay", resource) when { context.usage.paid_today + context.amount > 1000 };'

[[policies]]
id = "rate"
principle = "P-1"
cedar = 'forbid (principal, action == Action::"pay", resource) when { context.usage.payments_last_minute >= 3 };'

[[tests]]
name = "a payment within the cap"
expect = "allow"
[tests.request]
action = "pay"
principal = { type = "Agent", id = "a" }
resource = { type = "Account", id = "acc" }
context = { amount = 100, usage = { paid_today = 800 } }

[[tests]]
name = "a payment over the cap"
expect = "deny"
[tests.request]
action = "pay"
principal = { type = "Agent", id = "a" }
resource = { type = "Account", id = "acc" }
context = { amount = 300, usage = { paid_today = 800 } }
"#;

fn engine(text: &str) -> Engine {
    Engine::new(Arc::new(
        Constitution::from_toml("counters.toml", text).unwrap_or_else(|e| panic!("{e}")),
    ))
}

fn pay(amount: i64) -> DecisionRequest {
    serde_json::from_value(json!({
        "principal": {"type": "Agent", "id": "a"}, "action": "pay",
        "resource": {"type": "Account", "id": "acc"}, "context": {"amount": amount}
    }))
    .unwrap()
}

fn usage(paid_today: i64, payments_last_minute: i64) -> Usage {
    [
        ("paid_today".to_owned(), paid_today),
        ("payments_last_minute".to_owned(), payments_last_minute),
    ]
    .into()
}

#[test]
fn policies_read_the_counters_acgs_gives() {
    let engine = engine(CONSTITUTION);
    let registry = Default::default();
    let decide = |amount, u: Usage| engine.decide_with(&pay(amount), &registry, &u).unwrap().outcome;
    assert_eq!(decide(100, usage(0, 0)), Outcome::Allow);
    assert_eq!(decide(100, usage(950, 0)), Outcome::Deny);
    assert_eq!(decide(100, usage(0, 3)), Outcome::Deny);
    // Every counter the action reads needs a value: none is taken as zero.
    let missing = engine.decide_with(&pay(1), &registry, &Usage::new());
    assert!(matches!(missing, Err(RequestError::MissingUsage(_))), "{missing:?}");
}

#[test]
fn a_caller_may_not_send_the_usage() {
    let engine = engine(CONSTITUTION);
    let mut request = pay(1);
    request
        .context
        .insert("usage".into(), json!({"paid_today": 0, "payments_last_minute": 0}));
    let refused = engine.decide_with(&request, &Default::default(), &usage(0, 0));
    assert_eq!(refused.unwrap_err(), RequestError::ReservedUsage);
}

#[test]
fn counters_key_and_measure_requests() {
    let engine = engine(CONSTITUTION);
    let counters = engine.constitution().counters_for("pay");
    let names: Vec<&str> = counters.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["paid_today", "payments_last_minute"]);
    let (paid, calls) = (&counters[0], &counters[1]);
    assert_eq!(paid.per, CounterScope::Resource);
    assert_eq!(paid.key(&pay(5)), "paid_today|Account::\"acc\"");
    assert_eq!(calls.key(&pay(5)), "payments_last_minute|Agent::\"a\"");
    assert_eq!((paid.amount(&pay(5)), calls.amount(&pay(5))), (5, 1));
    assert_eq!((paid.window_us, calls.window_us), (86_400_000_000, 60_000_000));
    assert!(engine.constitution().counters_for("look").is_empty());
}

#[test]
fn counters_and_usage_declarations_must_fit_each_other() {
    for (from, to, expected) in [
        // A counter of an action that does not declare it.
        (
            "actions = [\"pay\"]\nkind = \"count\"",
            "actions = [\"pay\", \"look\"]\nkind = \"count\"",
            "action `look` must declare",
        ),
        // A usage attribute no counter fills.
        (
            "payments_last_minute: Long }",
            "payments_last_minute: Long, refunds: Long }",
            "`usage.refunds`",
        ),
        // A sum without its field, or of a field that is not a Long.
        ("field = \"amount\"\n", "", "needs a `field`"),
        (
            "field = \"amount\"",
            "field = \"currency\"",
            "`currency` is not a `Long`",
        ),
        ("window = \"60s\"", "window = \"a minute\"", "not a duration"),
    ] {
        let text = CONSTITUTION.replacen(from, to, 1);
        assert_ne!(text, CONSTITUTION, "{from}");
        let err = Constitution::from_toml("bad.toml", &text).unwrap_err();
        assert!(
            err.problems()
                .iter()
                .any(|p| p.kind == ProblemKind::Counters && p.message.contains(expected)),
            "{expected}: {err}"
        );
    }
}

#[test]
fn counters_are_part_of_the_hash() {
    let base = engine(CONSTITUTION).constitution().hash();
    let longer = CONSTITUTION.replace("window = \"24h\"", "window = \"48h\"");
    assert_ne!(base, engine(&longer).constitution().hash());
}
