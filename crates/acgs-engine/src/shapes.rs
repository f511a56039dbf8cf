//! The schema compiled into the shapes a request must have — each entity type's attributes, allowed parents and
//! ids, each action's principal, resource and context types — and the conversion of a request's JSON values into
//! Cedar values that checks them against those shapes in the same pass.
//!
//! Cedar can check requests and entities against a schema itself, but it does so by rebuilding each entity type's
//! description and turning every value back into an expression to type-check it, on every request: about a third
//! of a decision's time. The rules checked here are Cedar's conformance rules, compiled once per constitution:
//!
//! - an entity's type is declared (and not `external`); an enumerated type's id is one of its choices;
//! - every required attribute is present, no undeclared attribute is (unless the type is open), and every value
//!   has its declared type, recursively through sets and records;
//! - each direct parent's type is one of the types the schema lets this type be a member of;
//! - the principal's and resource's types are ones the action applies to, and the context has the action's
//!   context type.
//!
//! A differential test (`tests/conformance.rs`) runs many well-formed and malformed requests through both this
//! module and Cedar's own schema validation and requires the same verdicts.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use cedar_policy_core::ast::{Eid, EntityType, EntityUID, Name, RestrictedExpr, Value};
use cedar_policy_core::evaluator::RestrictedEvaluator;
use cedar_policy_core::extensions::Extensions;
use cedar_policy_core::validator::types::{AttributeType, Attributes, EntityKind, OpenTag, Type};
use cedar_policy_core::validator::{ValidatorEntityTypeKind, ValidatorSchema};
use serde::Deserialize;
use serde_json::{Map, Value as Json};
use smol_str::SmolStr;

use crate::error::RequestError;
use crate::request::{EntityInput, EntityRef, MAX_VALUE_DEPTH};

/// The type a value must have.
#[derive(Debug, Clone)]
pub(crate) enum ValueShape {
    /// `Bool`.
    Bool,
    /// `Long` (a 64-bit integer).
    Long,
    /// `String`.
    String,
    /// A reference to an entity of this type.
    Entity(EntityType),
    /// `Set<T>`.
    Set(Box<ValueShape>),
    /// A record.
    Record(RecordShape),
    /// An extension value (`decimal`, `ipaddr`, `datetime`, `duration`).
    Extension(ExtensionKind),
    /// Anything representable (the value of an undeclared attribute of an open type).
    Any,
}

/// The extension types a request can carry, with the constructor that builds each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExtensionKind {
    /// `decimal("1.25")`.
    Decimal,
    /// `ip("10.0.0.0/8")`.
    IpAddr,
    /// `datetime("2026-11-29")`.
    Datetime,
    /// `duration("1h30m")`.
    Duration,
}

impl ExtensionKind {
    /// The kind a request's `__extn.fn` names.
    fn from_function(name: &str) -> Option<Self> {
        match name {
            "decimal" => Some(Self::Decimal),
            "ip" | "ipaddr" => Some(Self::IpAddr),
            "datetime" => Some(Self::Datetime),
            "duration" => Some(Self::Duration),
            _ => None,
        }
    }

    /// The kind of a schema's extension type name.
    fn from_type_name(name: &str) -> Option<Self> {
        match name {
            "decimal" => Some(Self::Decimal),
            "ipaddr" => Some(Self::IpAddr),
            "datetime" => Some(Self::Datetime),
            "duration" => Some(Self::Duration),
            _ => None,
        }
    }

    /// Cedar's name of the constructor function.
    fn constructor(self) -> &'static str {
        match self {
            Self::Decimal => "decimal",
            Self::IpAddr => "ip",
            Self::Datetime => "datetime",
            Self::Duration => "duration",
        }
    }

    /// Cedar's name of the type.
    fn type_name(self) -> &'static str {
        match self {
            Self::Decimal => "decimal",
            Self::IpAddr => "ipaddr",
            Self::Datetime => "datetime",
            Self::Duration => "duration",
        }
    }
}

/// One declared attribute.
#[derive(Debug, Clone)]
pub(crate) struct AttributeShape {
    pub(crate) shape: ValueShape,
    pub(crate) required: bool,
}

/// The attributes of a record or an entity type.
#[derive(Debug, Clone, Default)]
pub(crate) struct RecordShape {
    pub(crate) attributes: BTreeMap<String, AttributeShape>,
    /// Whether undeclared attributes are allowed.
    pub(crate) open: bool,
}

/// What the schema says about one entity type.
#[derive(Debug)]
pub(crate) struct EntityShape {
    pub(crate) entity_type: EntityType,
    pub(crate) attributes: RecordShape,
    /// The types an entity of this type may be a direct member of.
    pub(crate) parent_types: HashSet<EntityType>,
    /// For an enumerated type, its ids.
    pub(crate) enumerated_ids: Option<Vec<SmolStr>>,
    /// Declared `external`: no entity of this type can be supplied.
    pub(crate) external: bool,
}

/// What the schema says about one action's requests.
#[derive(Debug)]
pub(crate) struct ActionShape {
    pub(crate) principal_types: HashSet<EntityType>,
    pub(crate) resource_types: HashSet<EntityType>,
    /// The context type without the engine-filled `detections` attribute.
    pub(crate) context: RecordShape,
}

/// Every entity type of a schema by the name callers write (`Agent`, `Acme::Agent`).
#[derive(Debug, Default)]
pub(crate) struct Shapes {
    entity_types: HashMap<String, EntityShape>,
}

impl Shapes {
    /// Compile the entity types of a validated schema.
    pub(crate) fn from_schema(schema: &ValidatorSchema) -> Result<Self, String> {
        let mut entity_types = HashMap::new();
        for declared in schema.entity_types() {
            let name = declared.name().clone();
            let parent_types = schema
                .entity_types()
                .filter(|parent| parent.has_descendant_entity_type(&name))
                .map(|parent| parent.name().clone())
                .collect();
            let (enumerated_ids, external, open) = match &declared.kind {
                ValidatorEntityTypeKind::Standard(_) => {
                    (None, false, declared.open_attributes() == OpenTag::OpenAttributes)
                }
                ValidatorEntityTypeKind::Enum(choices) => (
                    Some(choices.iter().map(|eid| SmolStr::from(eid.as_ref())).collect()),
                    false,
                    false,
                ),
                ValidatorEntityTypeKind::External => (None, true, false),
            };
            let attributes =
                record_shape(declared.attributes(), open).map_err(|e| format!("entity type `{name}`: {e}"))?;
            entity_types.insert(
                name.to_string(),
                EntityShape {
                    entity_type: name,
                    attributes,
                    parent_types,
                    enumerated_ids,
                    external,
                },
            );
        }
        Ok(Self { entity_types })
    }

    /// The request shape of a declared action.
    pub(crate) fn action(schema: &ValidatorSchema, action: &EntityUID, skip: &str) -> Result<ActionShape, String> {
        let declared = schema
            .get_action_id(action)
            .ok_or_else(|| format!("action `{action}` is not declared"))?;
        let mut context = match declared.context_type() {
            Some(Type::Record {
                attrs, open_attributes, ..
            }) => record_shape(attrs, *open_attributes == OpenTag::OpenAttributes)
                .map_err(|e| format!("context of `{action}`: {e}"))?,
            Some(other) => return Err(format!("context of `{action}` is not a record but {other}")),
            None => {
                return Err(format!(
                    "action `{action}` is external; requests for it cannot be checked"
                ));
            }
        };
        context.attributes.remove(skip);
        Ok(ActionShape {
            principal_types: declared.applies_to_principals().cloned().collect(),
            resource_types: declared.applies_to_resources().cloned().collect(),
            context,
        })
    }

    /// The shape of a declared entity type, `field` naming where the name came from for the error.
    pub(crate) fn entity_type(&self, type_name: &str, field: &str) -> Result<&EntityShape, RequestError> {
        self.entity_types
            .get(type_name)
            .ok_or_else(|| RequestError::InvalidEntityType {
                field: field.to_owned(),
                type_name: type_name.to_owned(),
            })
    }

    /// The uid of a reference to an entity of a declared type (with a valid id, for enumerated types).
    pub(crate) fn uid(&self, type_name: &str, id: &str, field: &str) -> Result<EntityUID, RequestError> {
        self.uid_at(type_name, id, || field.to_owned())
    }

    /// [`Self::uid`] with the field named only when there is an error (a request may hold tens of thousands of
    /// parent references; naming each one up front was a large share of converting them).
    fn uid_at(&self, type_name: &str, id: &str, field: impl Fn() -> String) -> Result<EntityUID, RequestError> {
        let shape = self
            .entity_types
            .get(type_name)
            .ok_or_else(|| RequestError::InvalidEntityType {
                field: field(),
                type_name: type_name.to_owned(),
            })?;
        check_enumerated(shape, id).map_err(|message| RequestError::Entities(format!("{}: {message}", field())))?;
        Ok(EntityUID::from_components(
            shape.entity_type.clone(),
            Eid::new(id),
            None,
        ))
    }

    /// Check an entity against its type and convert it; returns the entity's uid, attributes and parents.
    pub(crate) fn entity(&self, input: &EntityInput, field: &str) -> Result<CheckedEntity, RequestError> {
        let shape = self.entity_type(&input.entity_type, field)?;
        let entities_error = |message: String| RequestError::Entities(format!("{field}: {message}"));
        if shape.external {
            return Err(entities_error(format!(
                "`{}` is declared external; entities of this type cannot be supplied",
                input.entity_type
            )));
        }
        check_enumerated(shape, &input.id).map_err(entities_error)?;
        let uid = EntityUID::from_components(shape.entity_type.clone(), Eid::new(input.id.as_str()), None);
        let path = ValuePath::Field(&ValuePath::Root(field), "attributes");
        let attributes = self
            .record_fields(&input.attributes, &shape.attributes, path, 0)
            .map_err(|e| e.into_request_error(RequestError::Entities))?;
        let mut parents = HashSet::with_capacity(input.parents.len());
        for (i, parent) in input.parents.iter().enumerate() {
            let parent_field = || format!("{field}.parents[{i}]");
            let parent_uid = self.uid_at(&parent.entity_type, &parent.id, parent_field)?;
            if !shape.parent_types.contains(parent_uid.entity_type()) {
                return Err(RequestError::Entities(format!(
                    "{}: an entity of type `{}` cannot be a member of `{}` (the schema does not declare \
                     `{} in [{}]`)",
                    parent_field(),
                    input.entity_type,
                    parent.entity_type,
                    input.entity_type,
                    parent.entity_type
                )));
            }
            parents.insert(parent_uid);
        }
        Ok(CheckedEntity {
            uid,
            attributes,
            parents,
        })
    }

    /// Check and convert one attribute value of an entity of `entity_type` (a request-scoped attribute of a
    /// registry entity); `field` names the entity in errors.
    pub(crate) fn attribute(
        &self,
        entity_type: &EntityType,
        name: &str,
        json: &Json,
        field: &str,
    ) -> Result<(SmolStr, Value), RequestError> {
        let shape = self.entity_type(&entity_type.to_string(), field)?;
        let path = ValuePath::Field(&ValuePath::Root(field), "attributes");
        let value_path = ValuePath::Field(&path, name);
        let converted = match shape.attributes.attributes.get(name) {
            Some(attribute) => self.value(json, &attribute.shape, value_path, 1),
            None => Err(ValueError::Mismatch {
                path: value_path.to_string(),
                message: "the schema declares no such attribute".into(),
            }),
        }
        .map_err(|e| e.into_request_error(RequestError::Entities))?;
        Ok((SmolStr::from(name), converted))
    }

    /// The declared attribute names of an entity type (`None`: no such type; an open type admits others too).
    pub(crate) fn declared_attributes(&self, type_name: &str) -> Option<impl Iterator<Item = &str>> {
        self.entity_types
            .get(type_name)
            .map(|shape| shape.attributes.attributes.keys().map(String::as_str))
    }

    /// Check a context against an action's context type and convert it.
    pub(crate) fn context(
        &self,
        context: &Map<String, Json>,
        action: &ActionShape,
    ) -> Result<BTreeMap<SmolStr, Value>, RequestError> {
        self.record_fields(context, &action.context, ValuePath::Root("context"), 0)
            .map_err(|e| e.into_request_error(RequestError::Schema))
    }

    /// Check and convert the fields of a record (or an entity's attributes) against their shape.
    fn record_fields(
        &self,
        fields: &Map<String, Json>,
        shape: &RecordShape,
        path: ValuePath<'_>,
        depth: usize,
    ) -> Result<BTreeMap<SmolStr, Value>, ValueError> {
        for (name, attribute) in &shape.attributes {
            if attribute.required && !fields.contains_key(name) {
                return Err(ValueError::Mismatch {
                    path: path.to_string(),
                    message: format!("required attribute `{name}` is missing"),
                });
            }
        }
        let mut out = BTreeMap::new();
        for (name, value) in fields {
            let value_path = ValuePath::Field(&path, name);
            let converted = match shape.attributes.get(name) {
                Some(attribute) => self.value(value, &attribute.shape, value_path, depth + 1)?,
                None if shape.open => self.value(value, &ValueShape::Any, value_path, depth + 1)?,
                None => {
                    return Err(ValueError::Mismatch {
                        path: value_path.to_string(),
                        message: "the schema declares no such attribute".into(),
                    });
                }
            };
            out.insert(SmolStr::from(name.as_str()), converted);
        }
        Ok(out)
    }

    /// Convert one JSON value, checking it has `shape`.
    fn value(&self, json: &Json, shape: &ValueShape, path: ValuePath<'_>, depth: usize) -> Result<Value, ValueError> {
        let invalid = |message: String| ValueError::Invalid {
            path: path.to_string(),
            message,
        };
        let mismatch = |expected: &str| ValueError::Mismatch {
            path: path.to_string(),
            message: format!("expected {expected}, got {}", describe(json)),
        };
        if depth > MAX_VALUE_DEPTH {
            return Err(invalid(format!("nested deeper than {MAX_VALUE_DEPTH} levels")));
        }
        match json {
            Json::Null => {
                return Err(invalid(
                    "`null` is not a Cedar value; omit the attribute instead".into(),
                ));
            }
            Json::Number(n) if n.as_i64().is_none() => {
                return Err(invalid(format!(
                    "`{n}` is not a 64-bit integer; Cedar has no floats (use integer minor units or a decimal \
                     extension value)"
                )));
            }
            _ => {}
        }
        let escape = Escape::of(json).map_err(invalid)?;
        match (shape, json, escape) {
            (ValueShape::Bool, Json::Bool(b), _) => Ok(Value::from(*b)),
            (ValueShape::Bool, ..) => Err(mismatch("a boolean")),
            (ValueShape::Long, Json::Number(n), _) => Ok(Value::from(n.as_i64().unwrap_or_default())),
            (ValueShape::Long, ..) => Err(mismatch("an integer (Long)")),
            (ValueShape::String, Json::String(s), _) => Ok(Value::from(s.as_str())),
            (ValueShape::String, ..) => Err(mismatch("a string")),
            (ValueShape::Entity(expected), _, Some(Escape::Entity(reference))) => {
                let reference = parse_reference(reference).map_err(invalid)?;
                match self.entity_types.get(&reference.entity_type) {
                    Some(target) if target.entity_type == *expected => {
                        check_enumerated(target, &reference.id).map_err(|message| ValueError::Mismatch {
                            path: path.to_string(),
                            message,
                        })?;
                        Ok(Value::from(EntityUID::from_components(
                            expected.clone(),
                            Eid::new(reference.id.as_str()),
                            None,
                        )))
                    }
                    _ => Err(ValueError::Mismatch {
                        path: path.to_string(),
                        message: format!(
                            "expected an entity of type `{expected}`, got a `{}`",
                            reference.entity_type
                        ),
                    }),
                }
            }
            (ValueShape::Entity(expected), ..) => Err(mismatch(&format!(
                "an entity reference `{{\"__entity\": {{\"type\": \"{expected}\", \"id\": ...}}}}`"
            ))),
            (ValueShape::Set(element), Json::Array(items), _) => {
                let mut values = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    values.push(self.value(item, element, ValuePath::Index(&path, i), depth + 1)?);
                }
                Ok(Value::set(values, None))
            }
            (ValueShape::Set(_), ..) => Err(mismatch("a set (JSON array)")),
            (ValueShape::Record(record), Json::Object(fields), None) => Ok(Value::record_arc(
                Arc::new(self.record_fields(fields, record, path, depth)?),
                None,
            )),
            (ValueShape::Record(_), ..) => Err(mismatch("a record (JSON object)")),
            (ValueShape::Extension(expected), _, Some(Escape::Extension(call))) => {
                let (kind, arg) = parse_extension(call).map_err(invalid)?;
                if kind != *expected {
                    return Err(ValueError::Mismatch {
                        path: path.to_string(),
                        message: format!(
                            "expected a `{}` value, got a `{}`",
                            expected.type_name(),
                            kind.type_name()
                        ),
                    });
                }
                extension_value(kind, arg).map_err(invalid)
            }
            (ValueShape::Extension(expected), ..) => Err(mismatch(&format!(
                "a `{}` value `{{\"__extn\": {{\"fn\": \"{}\", \"arg\": ...}}}}`",
                expected.type_name(),
                expected.constructor()
            ))),
            (ValueShape::Any, _, _) => self.untyped(json, path, depth),
        }
    }

    /// Convert a value of an undeclared attribute of an open type: any representable value.
    fn untyped(&self, json: &Json, path: ValuePath<'_>, depth: usize) -> Result<Value, ValueError> {
        let invalid = |message: String| ValueError::Invalid {
            path: path.to_string(),
            message,
        };
        match (json, Escape::of(json).map_err(invalid)?) {
            (Json::Bool(_), _) => self.value(json, &ValueShape::Bool, path, depth),
            (Json::Number(_), _) => self.value(json, &ValueShape::Long, path, depth),
            (Json::String(_), _) => self.value(json, &ValueShape::String, path, depth),
            (Json::Array(items), _) => {
                let mut values = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    values.push(self.value(item, &ValueShape::Any, ValuePath::Index(&path, i), depth + 1)?);
                }
                Ok(Value::set(values, None))
            }
            (_, Some(Escape::Entity(reference))) => {
                let reference = parse_reference(reference).map_err(invalid)?;
                let uid = self
                    .uid(&reference.entity_type, &reference.id, &path.to_string())
                    .map_err(|e| invalid(e.to_string()))?;
                Ok(Value::from(uid))
            }
            (_, Some(Escape::Extension(call))) => {
                let (kind, arg) = parse_extension(call).map_err(invalid)?;
                extension_value(kind, arg).map_err(invalid)
            }
            (Json::Object(fields), None) => {
                let open = RecordShape {
                    attributes: BTreeMap::new(),
                    open: true,
                };
                Ok(Value::record_arc(
                    Arc::new(self.record_fields(fields, &open, path, depth)?),
                    None,
                ))
            }
            (Json::Null, _) => Err(invalid(
                "`null` is not a Cedar value; omit the attribute instead".into(),
            )),
        }
    }
}

/// An entity checked against its type and converted, before it joins a request's entity store.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CheckedEntity {
    pub(crate) uid: EntityUID,
    pub(crate) attributes: BTreeMap<SmolStr, Value>,
    pub(crate) parents: HashSet<EntityUID>,
}

/// Why a value was refused.
enum ValueError {
    /// Not representable in Cedar at all (a float, `null`, a malformed escape, too deep).
    Invalid { path: String, message: String },
    /// Representable, but not what the schema declares here.
    Mismatch { path: String, message: String },
}

impl ValueError {
    /// The request error: `InvalidValue`, or the given schema-conformance kind for a mismatch.
    fn into_request_error(self, mismatch: fn(String) -> RequestError) -> RequestError {
        match self {
            ValueError::Invalid { path, message } => RequestError::InvalidValue { path, message },
            ValueError::Mismatch { path, message } => mismatch(format!("{path}: {message}")),
        }
    }
}

/// Cedar's JSON escapes for values JSON cannot express: `{"__entity": ...}` and `{"__extn": ...}`.
enum Escape<'a> {
    Entity(&'a Json),
    Extension(&'a Json),
}

impl<'a> Escape<'a> {
    /// The escape an object is, if any; an error when an escape key shares its object with other keys.
    fn of(json: &'a Json) -> Result<Option<Self>, String> {
        let Json::Object(map) = json else {
            return Ok(None);
        };
        for (key, make) in [
            ("__entity", Escape::Entity as fn(&'a Json) -> Self),
            ("__extn", Escape::Extension),
        ] {
            if let Some(inner) = map.get(key) {
                if map.len() != 1 {
                    return Err(format!("`{key}` must be the only key of its object"));
                }
                return Ok(Some(make(inner)));
            }
        }
        Ok(None)
    }
}

fn parse_reference(json: &Json) -> Result<EntityRef, String> {
    <EntityRef as Deserialize>::deserialize(json).map_err(|e| format!("bad `__entity` reference: {e}"))
}

fn parse_extension(json: &Json) -> Result<(ExtensionKind, &str), String> {
    let bad =
        |detail: &str| format!("bad `__extn` value: {detail} (expected {{\"fn\": \"decimal\", \"arg\": \"1.5\"}})");
    let Json::Object(map) = json else {
        return Err(bad("not an object"));
    };
    if let Some(key) = map.keys().find(|k| *k != "fn" && *k != "arg") {
        return Err(bad(&format!("unknown field `{key}`")));
    }
    let function = map
        .get("fn")
        .and_then(Json::as_str)
        .ok_or_else(|| bad("`fn` must be a string"))?;
    let arg = map
        .get("arg")
        .and_then(Json::as_str)
        .ok_or_else(|| bad("`arg` must be a string"))?;
    let kind = ExtensionKind::from_function(function).ok_or_else(|| {
        format!("unknown extension function `{function}` (expected decimal, ip, datetime or duration)")
    })?;
    Ok((kind, arg))
}

/// Build an extension value by calling its constructor (which checks the argument).
fn extension_value(kind: ExtensionKind, arg: &str) -> Result<Value, String> {
    let function: Name = kind
        .constructor()
        .parse()
        .map_err(|_| format!("`{}` is not a Cedar function name", kind.constructor()))?;
    let call = RestrictedExpr::call_extension_fn(function, [RestrictedExpr::val(arg)]);
    RestrictedEvaluator::new(Extensions::all_available())
        .interpret(call.as_borrowed())
        .map_err(|e| e.to_string())
}

/// An enumerated type's ids are the only valid ids of its entities.
fn check_enumerated(shape: &EntityShape, id: &str) -> Result<(), String> {
    match &shape.enumerated_ids {
        Some(ids) if !ids.iter().any(|valid| valid == id) => Err(format!(
            "`{}::{:?}` is not one of the enumerated entities of `{}` ({})",
            shape.entity_type,
            id,
            shape.entity_type,
            ids.iter().map(|i| format!("{i:?}")).collect::<Vec<_>>().join(", ")
        )),
        _ => Ok(()),
    }
}

/// What a JSON value is, for error messages.
fn describe(json: &Json) -> String {
    match json {
        Json::Null => "null".into(),
        Json::Bool(b) => format!("the boolean `{b}`"),
        Json::Number(n) => format!("the number `{n}`"),
        Json::String(s) if s.len() <= 40 => format!("the string {s:?}"),
        Json::String(_) => "a string".into(),
        Json::Array(_) => "a set (JSON array)".into(),
        Json::Object(map) if map.contains_key("__entity") => "an entity reference".into(),
        Json::Object(map) if map.contains_key("__extn") => "an extension value".into(),
        Json::Object(_) => "a record (JSON object)".into(),
    }
}

fn record_shape(attributes: &Attributes, open: bool) -> Result<RecordShape, String> {
    let mut out = BTreeMap::new();
    for (name, attribute) in attributes.iter() {
        out.insert(
            name.to_string(),
            attribute_shape(attribute).map_err(|e| format!("attribute `{name}`: {e}"))?,
        );
    }
    Ok(RecordShape { attributes: out, open })
}

fn attribute_shape(attribute: &AttributeType) -> Result<AttributeShape, String> {
    Ok(AttributeShape {
        shape: value_shape(&attribute.attr_type)?,
        required: attribute.is_required,
    })
}

fn value_shape(ty: &Type) -> Result<ValueShape, String> {
    Ok(match ty {
        Type::Bool(_) => ValueShape::Bool,
        Type::Long => ValueShape::Long,
        Type::String => ValueShape::String,
        Type::Entity(EntityKind::Entity(lub)) => match lub.get_single_entity() {
            Some(entity_type) => ValueShape::Entity(entity_type.clone()),
            None => return Err(format!("type {ty} names several entity types")),
        },
        Type::Set {
            element_type: Some(element),
        } => ValueShape::Set(Box::new(value_shape(element)?)),
        Type::Record {
            attrs, open_attributes, ..
        } => ValueShape::Record(record_shape(attrs, *open_attributes == OpenTag::OpenAttributes)?),
        Type::ExtensionType { name } => ValueShape::Extension(
            ExtensionKind::from_type_name(&name.to_string())
                .ok_or_else(|| format!("unknown extension type `{name}`"))?,
        ),
        other => return Err(format!("type {other} cannot be declared for a value")),
    })
}

/// Where a value sits in the request, rendered only when an error needs it (no allocation otherwise).
#[derive(Clone, Copy)]
pub(crate) enum ValuePath<'a> {
    /// A top-level name such as `context` or `principal`.
    Root(&'a str),
    /// A named field below a path.
    Field(&'a ValuePath<'a>, &'a str),
    /// An element of a set below a path.
    Index(&'a ValuePath<'a>, usize),
}

impl std::fmt::Display for ValuePath<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ValuePath::Root(name) => f.write_str(name),
            ValuePath::Field(parent, name) => write!(f, "{parent}.{name}"),
            ValuePath::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}
