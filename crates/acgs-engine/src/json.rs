//! Strict JSON for requests: a document that repeats a key inside any object is refused, and a request type is
//! read only from an object.
//!
//! serde keeps the last of repeated keys in a map, while other parsers (a proxy, a WAF, the caller's own log)
//! may keep the first; the same bytes would then mean one request to them and another to ACGS. So a request
//! body must name each key of each object once, at every depth. Likewise serde's derived structs also accept an
//! array of their fields in order (`["Agent", "a1"]` for an entity), a reading no other client of the document
//! would share: [`object`] accepts only an object.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// A type whose fields are read by serde's derived code (`#[serde(remote = "Self")]`) and whose `Deserialize`
/// is [`object`]: from a JSON object only.
pub(crate) trait FromObject<'de>: Sized {
    /// Read the fields (the derived deserializer).
    fn from_fields<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error>;
}

/// Deserialize `T` from an object, refusing the array form serde's derive would also accept.
pub(crate) fn object<'de, D: Deserializer<'de>, T: FromObject<'de>>(deserializer: D) -> Result<T, D::Error> {
    struct ObjectVisitor<T>(PhantomData<T>);

    impl<'de, T: FromObject<'de>> Visitor<'de> for ObjectVisitor<T> {
        type Value = T;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }

        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            T::from_fields(MapAccessDeserializer::new(map))
        }
    }

    deserializer.deserialize_map(ObjectVisitor(PhantomData))
}

/// `Serialize`, `Deserialize` (objects only, see [`object`]) and [`FromObject`] for a type whose serde derives
/// carry `#[serde(remote = "Self")]`.
macro_rules! serde_object_only {
    ($type:ty) => {
        impl<'de> $crate::json::FromObject<'de> for $type {
            fn from_fields<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                <$type>::deserialize(deserializer)
            }
        }

        impl<'de> serde::Deserialize<'de> for $type {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                $crate::json::object(deserializer)
            }
        }

        impl serde::Serialize for $type {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                <$type>::serialize(self, serializer)
            }
        }
    };
}
pub(crate) use serde_object_only;

/// Objects with more keys than this are checked with a hash set instead of a linear scan.
const LINEAR_SCAN_KEYS: usize = 16;

/// Check that no object in the JSON document `bytes` repeats a key (compared after unescaping, so `"a"` and
/// `"\u0061"` are the same key). Malformed JSON is an error too. The error names the key and its position.
pub fn reject_duplicate_keys(bytes: &[u8]) -> Result<(), serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    UniqueKeys.deserialize(&mut deserializer)?;
    deserializer.end()
}

/// Walks one JSON value, failing on the first object with a repeated key.
struct UniqueKeys;

impl<'de> DeserializeSeed<'de> for UniqueKeys {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for UniqueKeys {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(UniqueKeys)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut few: Vec<Cow<'de, str>> = Vec::new();
        let mut many: Option<HashSet<Cow<'de, str>>> = None;
        while let Some(key) = map.next_key_seed(Key)? {
            let repeated = match &mut many {
                Some(set) => !set.insert(key.clone()),
                None if few.contains(&key) => true,
                None => {
                    few.push(key.clone());
                    if few.len() > LINEAR_SCAN_KEYS {
                        many = Some(few.drain(..).collect());
                    }
                    false
                }
            };
            if repeated {
                return Err(de::Error::custom(format_args!("duplicate key `{key}`")));
            }
            map.next_value_seed(UniqueKeys)?;
        }
        Ok(())
    }
}

/// An object key, borrowed from the input unless it had escapes.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E>(self, key: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(key))
    }

    fn visit_str<E>(self, key: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(key.to_owned()))
    }

    fn visit_string<E>(self, key: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(key))
    }
}

#[cfg(test)]
mod tests {
    use super::reject_duplicate_keys;

    fn refused(json: &str) -> String {
        match reject_duplicate_keys(json.as_bytes()) {
            Ok(()) => panic!("accepted {json}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn documents_without_repeated_keys_pass() {
        for json in [
            r#"{"a": 1, "b": {"a": 2, "c": [{"a": 3}, {"a": 4}]}}"#,
            r#"[1, "x", true, null, 1.5, {}, []]"#,
            r#"{"a\"b": 1, "a": 2}"#,
        ] {
            reject_duplicate_keys(json.as_bytes()).unwrap_or_else(|e| panic!("{json}: {e}"));
        }
    }

    #[test]
    fn a_repeated_key_is_refused_at_any_depth() {
        assert!(refused(r#"{"a": 1, "a": 2}"#).contains("duplicate key `a`"));
        assert!(refused(r#"{"p": {"attributes": {"x": 1, "y": 2, "x": 3}}}"#).contains("duplicate key `x`"));
        assert!(refused(r#"{"e": [{"id": "a"}, {"id": "b", "id": "c"}]}"#).contains("duplicate key `id`"));
    }

    #[test]
    fn keys_are_compared_after_unescaping() {
        assert!(refused(r#"{"a": 1, "\u0061": 2}"#).contains("duplicate key `a`"));
    }

    #[test]
    fn large_objects_are_checked_too() {
        let keys: Vec<String> = (0..100).map(|i| format!("\"k{i}\": {i}")).collect();
        let unique = format!("{{{}}}", keys.join(","));
        reject_duplicate_keys(unique.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        let repeated = format!("{{{}, \"k7\": 0}}", keys.join(","));
        assert!(refused(&repeated).contains("duplicate key `k7`"));
    }

    #[test]
    fn request_types_are_read_from_objects_only() {
        use crate::{DecisionRequest, EntityInput, EntityRef};
        let request: DecisionRequest = serde_json::from_str(
            r#"{"principal": {"type": "Agent", "id": "a", "parents": [{"type": "Role", "id": "r"}]},
                "action": "read", "resource": {"type": "Tool", "id": "t"}}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(request.principal.parents[0].id, "r");
        for refused in [
            r#"{"principal": ["Agent", "a"], "action": "read", "resource": {"type": "Tool", "id": "t"}}"#,
            r#"{"principal": {"type": "Agent", "id": "a", "parents": [["Role", "r"]]},
                "action": "read", "resource": {"type": "Tool", "id": "t"}}"#,
            r#"[{"type": "Agent", "id": "a"}, "read", {"type": "Tool", "id": "t"}]"#,
        ] {
            let e = serde_json::from_str::<DecisionRequest>(refused)
                .unwrap_err()
                .to_string();
            assert!(e.contains("expected a JSON object"), "{e}");
        }
        assert!(serde_json::from_str::<EntityInput>(r#"["Agent", "a"]"#).is_err());
        assert!(serde_json::from_str::<EntityRef>(r#"["Role", "r"]"#).is_err());
        // Serialising is unchanged.
        let json = serde_json::to_value(&request).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(json["principal"]["parents"][0]["type"], "Role");
    }

    #[test]
    fn malformed_json_is_an_error() {
        assert!(reject_duplicate_keys(br#"{"a": 1"#).is_err());
        assert!(reject_duplicate_keys(br#"{"a": 1} x"#).is_err());
    }
}
