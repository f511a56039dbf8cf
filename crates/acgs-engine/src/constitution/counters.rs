//! The `[[counters]]` section compiled: usage that ACGS counts from its own allowed decisions over a sliding
//! window, read by the policies of the actions that declare `usage: { <counter>: Long, … }` in their context.
//! Checked against the schema: every counter's actions declare it, and every `usage` attribute is a counter of
//! that action.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::Value;

use crate::document::{CounterEntry, CounterKind, CounterScope};
use crate::request::DecisionRequest;
use crate::shapes::{AttributeShape, ValueShape};

/// The context attribute the engine fills with the counters' values.
pub const USAGE_ATTRIBUTE: &str = "usage";

/// One counter, ready to key and measure requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counter {
    /// Its name (the attribute of `context.usage`).
    pub name: String,
    /// `count` or `sum`.
    pub kind: CounterKind,
    /// For `sum`: the context field added up.
    pub field: Option<String>,
    /// The sliding window, in microseconds.
    pub window_us: i64,
    /// Whose usage it keeps apart.
    pub per: CounterScope,
}

impl Counter {
    /// The key under which `request`'s usage is kept: the counter's name and the principal and/or resource, e.g.
    /// `daily_total_cents|Account::"opex-eur"`.
    pub fn key(&self, request: &DecisionRequest) -> String {
        let entity = |e: &crate::request::EntityInput| format!("{}::{}", e.entity_type, Value::from(e.id.as_str()));
        match self.per {
            CounterScope::Principal => format!("{}|{}", self.name, entity(&request.principal)),
            CounterScope::Resource => format!("{}|{}", self.name, entity(&request.resource)),
            CounterScope::PrincipalAndResource => format!(
                "{}|{}|{}",
                self.name,
                entity(&request.principal),
                entity(&request.resource)
            ),
        }
    }

    /// What an allowed `request` adds: 1 for a `count`; for a `sum`, its context field (0 when absent).
    pub fn amount(&self, request: &DecisionRequest) -> i64 {
        match (self.kind, &self.field) {
            (CounterKind::Count, _) => 1,
            (CounterKind::Sum, Some(field)) => request.context.get(field).and_then(Value::as_i64).unwrap_or(0),
            (CounterKind::Sum, None) => 0,
        }
    }
}

/// The counters by the actions whose `usage` holds them (full uid text), each list sorted by name.
#[derive(Debug, Clone, Default)]
pub(crate) struct Counters {
    pub(crate) by_action: HashMap<String, Vec<Arc<Counter>>>,
}

/// An action's context as the schema declares it: its attributes (with `usage`, before it is set apart).
pub(crate) struct ActionContext<'a> {
    /// The action's full uid text.
    pub(crate) uid: String,
    /// Its id as requests name it.
    pub(crate) id: String,
    /// Its context attributes.
    pub(crate) attributes: &'a BTreeMap<String, AttributeShape>,
    /// Its `usage` attribute, if declared.
    pub(crate) usage: Option<&'a AttributeShape>,
}

impl Counters {
    /// Compile the section against the actions' contexts; the problems are `(subject, message)` pairs.
    pub(crate) fn compile(
        entries: &[CounterEntry],
        actions: &[ActionContext<'_>],
    ) -> Result<Self, Vec<(String, String)>> {
        let mut problems = Vec::new();
        let mut counters = Self::default();
        let mut names = std::collections::HashSet::new();
        for entry in entries {
            let subject = format!("counter `{}`", entry.name);
            if !crate::constitution::compile::is_valid_id(&entry.name) || entry.name.contains(['-', '.']) {
                problems.push((
                    subject.clone(),
                    "a counter's name is an attribute name: letters, digits and `_`".into(),
                ));
            }
            if !names.insert(entry.name.as_str()) {
                problems.push((subject.clone(), "two counters have this name".into()));
            }
            let window_us = match crate::governance::parse_duration(&entry.window) {
                Ok(0) => {
                    problems.push((subject.clone(), "the window must be longer than 0".into()));
                    0
                }
                Ok(secs) => i64::try_from(secs.saturating_mul(1_000_000)).unwrap_or(i64::MAX),
                Err(e) => {
                    problems.push((subject.clone(), e));
                    0
                }
            };
            match (entry.kind, &entry.field) {
                (CounterKind::Sum, None) => problems.push((subject.clone(), "a `sum` counter needs a `field`".into())),
                (CounterKind::Count, Some(_)) => {
                    problems.push((subject.clone(), "a `count` counter has no `field`".into()));
                }
                _ => {}
            }
            if entry.actions.is_empty() {
                problems.push((subject.clone(), "a counter needs at least one action".into()));
            }
            let counter = Arc::new(Counter {
                name: entry.name.clone(),
                kind: entry.kind,
                field: entry.field.clone(),
                window_us,
                per: entry.per,
            });
            for name in &entry.actions {
                let Some(action) = actions.iter().find(|a| a.id == *name || a.uid == *name) else {
                    problems.push((subject.clone(), format!("`{name}` is not an action of the schema")));
                    continue;
                };
                if !usage_declares(action.usage, &entry.name) {
                    problems.push((
                        subject.clone(),
                        format!(
                            "action `{name}` must declare `{USAGE_ATTRIBUTE}: {{ {}: Long, … }}` in its context to read it",
                            entry.name
                        ),
                    ));
                }
                if let Some(field) = &entry.field {
                    let is_long = action
                        .attributes
                        .get(field)
                        .is_some_and(|a| matches!(a.shape, ValueShape::Long));
                    if !is_long {
                        problems.push((
                            subject.clone(),
                            format!("`{field}` is not a `Long` context attribute of action `{name}`"),
                        ));
                    }
                }
                counters
                    .by_action
                    .entry(action.uid.clone())
                    .or_default()
                    .push(counter.clone());
            }
        }
        // Every `usage` attribute is a counter of its action: the engine fills nothing else.
        for action in actions {
            let Some(usage) = action.usage else { continue };
            let ValueShape::Record(record) = &usage.shape else {
                problems.push((
                    format!("action `{}`", action.id),
                    format!("context attribute `{USAGE_ATTRIBUTE}` is filled by ACGS from `[[counters]]`: it must be a record of `Long`s"),
                ));
                continue;
            };
            let mine = counters.by_action.get(&action.uid);
            for (name, attribute) in &record.attributes {
                let counted = mine.is_some_and(|list| list.iter().any(|c| c.name == *name));
                if !counted || !matches!(attribute.shape, ValueShape::Long) || !attribute.required {
                    problems.push((
                        format!("action `{}`", action.id),
                        format!(
                            "`{USAGE_ATTRIBUTE}.{name}` must be a required `Long` that a `[[counters]]` entry counts for this action"
                        ),
                    ));
                }
            }
            if !usage.required {
                problems.push((
                    format!("action `{}`", action.id),
                    format!("context attribute `{USAGE_ATTRIBUTE}` is always filled by ACGS: declare it required"),
                ));
            }
        }
        for list in counters.by_action.values_mut() {
            list.sort_by(|a, b| a.name.cmp(&b.name));
        }
        if problems.is_empty() {
            Ok(counters)
        } else {
            Err(problems)
        }
    }
}

/// Whether a `usage` declaration holds `name` as an attribute.
fn usage_declares(usage: Option<&AttributeShape>, name: &str) -> bool {
    match usage.map(|u| &u.shape) {
        Some(ValueShape::Record(record)) => record.attributes.contains_key(name),
        _ => false,
    }
}
