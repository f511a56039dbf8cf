//! The `[entities]` section compiled: which entity types' facts (attributes and parents) only the entity registry
//! may assert, and which of their attributes are facts of the request that the caller sends.

use std::collections::{BTreeMap, HashMap, HashSet};

use cedar_policy_core::ast::EntityType;
use smol_str::SmolStr;

use crate::document::{EntitySource, EntitySourceEntry, EntityWriter};
use crate::shapes::Shapes;

/// How a `registry` type's entities are resolved in a request.
#[derive(Debug, Clone, Default)]
pub(crate) struct RegistryRule {
    /// Attributes the caller may send for one request (they replace a stored value of the same name).
    pub(crate) request_attributes: HashSet<SmolStr>,
}

/// The entity types whose facts come from the registry. Every other type's facts come from the caller.
#[derive(Debug, Clone, Default)]
pub(crate) struct EntitySources {
    pub(crate) registry: HashMap<EntityType, RegistryRule>,
    /// The writer rules of the types that name them, by type name.
    pub(crate) writers: HashMap<String, Vec<EntityWriter>>,
}

impl EntitySources {
    /// Compile the section against the schema's entity types; the problems are `(subject, message)` pairs.
    pub(crate) fn compile(
        section: Option<&BTreeMap<String, EntitySourceEntry>>,
        shapes: &Shapes,
    ) -> Result<Self, Vec<(String, String)>> {
        let mut sources = Self::default();
        let mut problems = Vec::new();
        for (type_name, entry) in section.into_iter().flatten() {
            let subject = format!("entities.{type_name}");
            let Ok(shape) = shapes.entity_type(type_name, &subject) else {
                problems.push((subject, format!("`{type_name}` is not an entity type of the schema")));
                continue;
            };
            if shape.external {
                problems.push((
                    subject,
                    format!("`{type_name}` is declared external: its entities are never supplied"),
                ));
                continue;
            }
            let declared: HashSet<&str> = shapes.declared_attributes(type_name).into_iter().flatten().collect();
            for writer in &entry.writers {
                if writer.role.trim().is_empty() {
                    problems.push((subject.clone(), "a writer rule needs a `role`".to_owned()));
                }
                for name in writer.attributes.iter().flatten() {
                    if !declared.contains(name.as_str()) {
                        problems.push((
                            subject.clone(),
                            format!(
                                "writer `{}`: `{name}` is not an attribute of `{type_name}` in the schema",
                                writer.role
                            ),
                        ));
                    }
                }
            }
            if !entry.writers.is_empty() {
                sources.writers.insert(type_name.clone(), entry.writers.clone());
            }
            match entry.source {
                EntitySource::Caller => {
                    if !entry.request_attributes.is_empty() {
                        problems.push((
                            subject,
                            "`request_attributes` applies to `source = \"registry\"` only: a `caller` type's \
                             attributes all come from the request"
                                .to_owned(),
                        ));
                    }
                }
                EntitySource::Registry => {
                    let mut rule = RegistryRule::default();
                    for name in &entry.request_attributes {
                        if declared.contains(name.as_str()) {
                            rule.request_attributes.insert(SmolStr::from(name.as_str()));
                        } else {
                            problems.push((
                                subject.clone(),
                                format!(
                                    "request attribute `{name}` is not an attribute of `{type_name}` in the schema"
                                ),
                            ));
                        }
                    }
                    sources.registry.insert(shape.entity_type.clone(), rule);
                }
            }
        }
        if problems.is_empty() {
            Ok(sources)
        } else {
            Err(problems)
        }
    }

    /// The rule of a `registry` type (`None`: the caller asserts this type's facts).
    pub(crate) fn registry_rule(&self, entity_type: &EntityType) -> Option<&RegistryRule> {
        self.registry.get(entity_type)
    }
}
