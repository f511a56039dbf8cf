//! A readable difference between two constitutions, section by section (metadata, schema, principles, policies,
//! invariants, tests, governance): what was added, removed or changed, field by field, with a line diff of
//! changed Cedar text. What council members read before they vote (`GET /v1/amendments/{id}/diff`).

use std::collections::BTreeMap;
use std::fmt;

use acgs_engine::{Constitution, ConstitutionDocument, normalize_text};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// How an item changed.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// Only in the new constitution.
    Added,
    /// Only in the old one.
    Removed,
    /// In both, different.
    Changed,
}

/// One field that differs.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    /// The field's name.
    pub field: String,
    /// Its old value (`null` when added).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub from: Value,
    /// Its new value (`null` when removed).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub to: Value,
    /// For text of several lines, a unified line diff.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_diff: Option<String>,
}

/// One item (a principle, a policy, …; or the section itself for metadata, schema and governance) that differs.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemChange {
    /// The item's id (a test's name); the section's name for metadata, schema and governance.
    pub id: String,
    /// Added, removed or changed.
    pub change: ChangeKind,
    /// The fields that differ.
    pub fields: Vec<FieldChange>,
}

/// The changes of one section.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SectionDiff {
    /// `metadata`, `schema`, `principles`, `policies`, `invariants`, `tests` or `governance`.
    pub section: String,
    /// What differs, by item id.
    pub changes: Vec<ItemChange>,
}

/// The difference between two constitutions.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConstitutionDiff {
    /// The old constitution's hash.
    pub from_hash: String,
    /// The new constitution's hash.
    pub to_hash: String,
    /// The sections that differ (none: the two are the same constitution).
    pub sections: Vec<SectionDiff>,
}

impl ConstitutionDiff {
    /// Compare `old` with `new`.
    pub fn between(old: &Constitution, new: &Constitution) -> Self {
        let (a, b) = (old.document(), new.document());
        let mut sections = Vec::new();
        let mut push = |section: &str, changes: Vec<ItemChange>| {
            if !changes.is_empty() {
                sections.push(SectionDiff {
                    section: section.to_owned(),
                    changes,
                });
            }
        };
        push(
            "metadata",
            single("metadata", to_value(&a.constitution), to_value(&b.constitution)),
        );
        push(
            "schema",
            single(
                "schema",
                json!({ "cedar": normalize_text(a.schema.cedar.get_ref()) }),
                json!({ "cedar": normalize_text(b.schema.cedar.get_ref()) }),
            ),
        );
        push("principles", items(principles(a), principles(b)));
        push("policies", items(policies(a), policies(b)));
        push("invariants", items(invariants(a), invariants(b)));
        push("tests", items(tests(a), tests(b)));
        push(
            "governance",
            single(
                "governance",
                old.governance().map(to_value).unwrap_or(Value::Null),
                new.governance().map(to_value).unwrap_or(Value::Null),
            ),
        );
        Self {
            from_hash: old.hash().to_hex(),
            to_hash: new.hash().to_hex(),
            sections,
        }
    }

    /// Whether the `[governance]` section differs.
    pub fn changes_governance(&self) -> bool {
        self.sections.iter().any(|s| s.section == "governance")
    }
}

fn to_value<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

fn principles(d: &ConstitutionDocument) -> BTreeMap<String, Value> {
    d.principles.iter().map(|p| (p.id.clone(), to_value(p))).collect()
}

fn policies(d: &ConstitutionDocument) -> BTreeMap<String, Value> {
    d.policies
        .iter()
        .map(|p| {
            (
                p.id.get_ref().clone(),
                json!({
                    "principle": p.principle,
                    "description": p.description,
                    "cedar": normalize_text(p.cedar.get_ref()),
                }),
            )
        })
        .collect()
}

fn invariants(d: &ConstitutionDocument) -> BTreeMap<String, Value> {
    d.invariants
        .iter()
        .map(|i| {
            (
                i.id.get_ref().clone(),
                json!({
                    "principle": i.principle,
                    "description": i.description,
                    "kind": i.kind,
                    "matching": i.matching.as_ref().map(|m| normalize_text(m.get_ref())),
                    "implies": i.implies,
                }),
            )
        })
        .collect()
}

fn tests(d: &ConstitutionDocument) -> BTreeMap<String, Value> {
    d.tests.iter().map(|t| (t.name.clone(), to_value(t))).collect()
}

/// A section that is one object (metadata, schema, governance): its changed fields as one item.
fn single(name: &str, old: Value, new: Value) -> Vec<ItemChange> {
    let change = match (old.is_null(), new.is_null()) {
        (true, true) => return Vec::new(),
        (true, false) => ChangeKind::Added,
        (false, true) => ChangeKind::Removed,
        (false, false) => ChangeKind::Changed,
    };
    let fields = fields(&old, &new);
    if fields.is_empty() {
        return Vec::new();
    }
    vec![ItemChange {
        id: name.to_owned(),
        change,
        fields,
    }]
}

fn items(old: BTreeMap<String, Value>, new: BTreeMap<String, Value>) -> Vec<ItemChange> {
    let mut ids: Vec<&String> = old.keys().chain(new.keys()).collect();
    ids.sort();
    ids.dedup();
    ids.into_iter()
        .filter_map(|id| {
            let (a, b) = (old.get(id).unwrap_or(&Value::Null), new.get(id).unwrap_or(&Value::Null));
            let change = match (a.is_null(), b.is_null()) {
                (false, true) => ChangeKind::Removed,
                (true, false) => ChangeKind::Added,
                _ => ChangeKind::Changed,
            };
            let fields = fields(a, b);
            (!fields.is_empty()).then(|| ItemChange {
                id: id.clone(),
                change,
                fields,
            })
        })
        .collect()
}

/// The fields of two objects (either may be `null`) that differ, in field-name order.
fn fields(old: &Value, new: &Value) -> Vec<FieldChange> {
    let empty = serde_json::Map::new();
    let a = old.as_object().unwrap_or(&empty);
    let b = new.as_object().unwrap_or(&empty);
    let mut names: Vec<&String> = a.keys().chain(b.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter_map(|name| {
            let (from, to) = (
                a.get(name).cloned().unwrap_or(Value::Null),
                b.get(name).cloned().unwrap_or(Value::Null),
            );
            (from != to).then(|| FieldChange {
                field: name.clone(),
                text_diff: line_diff(&from, &to),
                from,
                to,
            })
        })
        .collect()
}

/// A unified diff of two texts when either has several lines.
fn line_diff(from: &Value, to: &Value) -> Option<String> {
    let (a, b) = (from.as_str().unwrap_or(""), to.as_str().unwrap_or(""));
    if !a.contains('\n') && !b.contains('\n') {
        return None;
    }
    let diff = similar::TextDiff::from_lines(a, b);
    Some(diff.unified_diff().context_radius(2).header("old", "new").to_string())
}

impl fmt::Display for ConstitutionDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "from {}", self.from_hash)?;
        writeln!(f, "to   {}", self.to_hash)?;
        if self.sections.is_empty() {
            return write!(f, "no differences");
        }
        for section in &self.sections {
            writeln!(f, "\n{}:", section.section)?;
            for item in &section.changes {
                let sign = match item.change {
                    ChangeKind::Added => '+',
                    ChangeKind::Removed => '-',
                    ChangeKind::Changed => '~',
                };
                writeln!(f, "  {sign} {}", item.id)?;
                if item.change != ChangeKind::Changed {
                    continue;
                }
                for field in &item.fields {
                    match &field.text_diff {
                        Some(diff) => {
                            writeln!(f, "      {}:", field.field)?;
                            for line in diff.lines() {
                                writeln!(f, "        {line}")?;
                            }
                        }
                        None => writeln!(f, "      {}: {} -> {}", field.field, field.from, field.to)?,
                    }
                }
            }
        }
        Ok(())
    }
}
