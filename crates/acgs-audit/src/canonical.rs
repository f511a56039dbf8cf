//! Canonical JSON: object keys sorted by their UTF-8 bytes, no insignificant whitespace, strings with
//! serde_json's minimal RFC 8259 escaping, numbers as serde_json prints them. The same value always gives the
//! same bytes, whatever order its keys were built in, so it can be hashed. [`canonical_json`] writes a
//! `serde_json::Value`; [`to_canonical_json`] writes any `Serialize` value without building one.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::ops::Range;

use serde_json::Value;

/// `value` in canonical JSON.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::with_capacity(256);
    write_canonical_json(value, &mut out);
    out
}

/// Append `value` in canonical JSON to `out`.
///
/// Written here rather than relying on `serde_json::Value`'s map order, which a dependency's `preserve_order`
/// feature changes from sorted to insertion order.
pub fn write_canonical_json(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_string(k, out);
                out.push(':');
                write_canonical_json(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical_json(item, out);
            }
            out.push(']');
        }
        Value::String(s) => write_json_string(s, out),
        Value::Number(n) => {
            // Writing into a String cannot fail.
            let _ = write!(out, "{n}");
        }
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Null => out.push_str("null"),
    }
}

/// Append `s` as a JSON string literal, escaped exactly as serde_json escapes: `"` and `\` with a backslash,
/// the control characters U+0000..U+001F as `\b \f \n \r \t` or `\u00XX`, everything else as it is.
pub fn write_json_string(s: &str, out: &mut String) {
    out.push('"');
    let mut clean_from = 0;
    for (i, byte) in s.bytes().enumerate() {
        let escape = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[clean_from..i]);
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.push_str("\\u00");
            out.push(HEX[usize::from(byte >> 4)] as char);
            out.push(HEX[usize::from(byte & 0xf)] as char);
        } else {
            out.push_str(escape);
        }
        clean_from = i + 1;
    }
    out.push_str(&s[clean_from..]);
    out.push('"');
}

/// The newtype name by which a value tells [`to_canonical_json`] that its string is JSON text to be written as it
/// is (other serializers see a plain string).
pub(crate) const JSON_TEXT_TOKEN: &str = "$acgs_audit::JsonText";

/// Why a value has no canonical JSON: a map key that is not a string, an integer or a boolean, an integer out of
/// JSON's range, or an error the value's own `Serialize` raised.
#[derive(Debug, thiserror::Error)]
#[error("cannot write canonical JSON: {0}")]
pub struct CanonicalJsonError(String);

impl serde::ser::Error for CanonicalJsonError {
    fn custom<T: std::fmt::Display>(message: T) -> Self {
        Self(message.to_string())
    }
}

/// `value` in canonical JSON, written straight from its `Serialize` implementation: the same bytes as
/// [`canonical_json`] of `serde_json::to_value(value)`, without building the intermediate tree (the decision
/// path writes one per decision). Floating-point map keys, which serde_json's tree accepts, are refused.
pub fn to_canonical_json<T: ?Sized + serde::Serialize>(value: &T) -> Result<String, CanonicalJsonError> {
    let mut out = String::with_capacity(512);
    value.serialize(CanonicalWriter {
        out: &mut out,
        extra: &[],
    })?;
    Ok(out)
}

/// `value`, which must serialize as an object, in canonical JSON with the integer entries `extra` added to it: a
/// leaf is its event's object with `v`, `seq` and `recorded_at_us` added (without serde's `flatten`, which
/// would buffer every entry through a map).
pub(crate) fn to_canonical_json_with<T: ?Sized + serde::Serialize>(
    value: &T,
    extra: &[(&'static str, i64)],
) -> Result<String, CanonicalJsonError> {
    let mut out = String::with_capacity(512);
    value.serialize(CanonicalWriter { out: &mut out, extra })?;
    if !out.starts_with('{') {
        return Err(CanonicalJsonError("only an object can gain entries".into()));
    }
    Ok(out)
}

/// A serde serializer appending canonical JSON to `out`. Arrays are written as they come; an object's entries
/// are written to buffers of their own and put in key order when the object ends.
struct CanonicalWriter<'a> {
    out: &'a mut String,
    /// Integer entries the next object written gains (the fields a leaf adds to its event); empty otherwise.
    extra: &'a [(&'static str, i64)],
}

/// An array being written (`close` ends it: `]`, or `]}` for a tuple variant).
struct ArrayWriter<'a> {
    out: &'a mut String,
    first: bool,
    close: &'static str,
}

/// An object being written: its values go to `out` in the order they come, from `start` on, each noted with
/// its key; when the object ends they are moved into key order (`close` follows its `}`: a struct variant's
/// outer object).
struct ObjectWriter<'a> {
    out: &'a mut String,
    start: usize,
    entries: Vec<(Cow<'static, str>, Range<usize>)>,
    key: Option<String>,
    close: &'static str,
    extra: &'a [(&'static str, i64)],
}

impl<'a> CanonicalWriter<'a> {
    fn display(self, value: impl std::fmt::Display) -> Result<(), CanonicalJsonError> {
        // Writing into a String cannot fail.
        let _ = write!(self.out, "{value}");
        Ok(())
    }

    /// `{"variant":` before a variant's content.
    fn open_variant(&mut self, variant: &str) {
        self.out.push('{');
        write_json_string(variant, self.out);
        self.out.push(':');
    }

    fn object(self, len: Option<usize>, close: &'static str) -> ObjectWriter<'a> {
        ObjectWriter {
            start: self.out.len(),
            out: self.out,
            entries: Vec::with_capacity(len.unwrap_or(8) + self.extra.len()),
            key: None,
            close,
            extra: self.extra,
        }
    }

    fn array(self, close: &'static str) -> ArrayWriter<'a> {
        self.out.push('[');
        ArrayWriter {
            out: self.out,
            first: true,
            close,
        }
    }
}

/// Writes the one string it is given as it is: the text of a `JsonText`. Any other value is an error.
struct RawText<'a> {
    out: &'a mut String,
}

/// Serializer methods that refuse their value: only a string is raw JSON text.
macro_rules! refuse {
    ($($method:ident($($arg:ty),*) -> $ok:ty),* $(,)?) => {$(
        fn $method(self, $(_: $arg),*) -> Result<$ok, CanonicalJsonError> {
            Err(CanonicalJsonError("raw JSON text must be a string".into()))
        }
    )*};
}

impl serde::Serializer for RawText<'_> {
    type Ok = ();
    type Error = CanonicalJsonError;
    type SerializeSeq = serde::ser::Impossible<(), CanonicalJsonError>;
    type SerializeTuple = serde::ser::Impossible<(), CanonicalJsonError>;
    type SerializeTupleStruct = serde::ser::Impossible<(), CanonicalJsonError>;
    type SerializeTupleVariant = serde::ser::Impossible<(), CanonicalJsonError>;
    type SerializeMap = serde::ser::Impossible<(), CanonicalJsonError>;
    type SerializeStruct = serde::ser::Impossible<(), CanonicalJsonError>;
    type SerializeStructVariant = serde::ser::Impossible<(), CanonicalJsonError>;

    fn serialize_str(self, v: &str) -> Result<(), CanonicalJsonError> {
        self.out.push_str(v);
        Ok(())
    }
    refuse!(
        serialize_bool(bool) -> (),
        serialize_i8(i8) -> (),
        serialize_i16(i16) -> (),
        serialize_i32(i32) -> (),
        serialize_i64(i64) -> (),
        serialize_u8(u8) -> (),
        serialize_u16(u16) -> (),
        serialize_u32(u32) -> (),
        serialize_u64(u64) -> (),
        serialize_f32(f32) -> (),
        serialize_f64(f64) -> (),
        serialize_char(char) -> (),
        serialize_bytes(&[u8]) -> (),
        serialize_none() -> (),
        serialize_unit() -> (),
        serialize_unit_struct(&'static str) -> (),
        serialize_unit_variant(&'static str, u32, &'static str) -> (),
        serialize_seq(Option<usize>) -> Self::SerializeSeq,
        serialize_tuple(usize) -> Self::SerializeTuple,
        serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct,
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Self::SerializeTupleVariant,
        serialize_map(Option<usize>) -> Self::SerializeMap,
        serialize_struct(&'static str, usize) -> Self::SerializeStruct,
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> Self::SerializeStructVariant,
    );
    fn serialize_some<T: ?Sized + serde::Serialize>(self, _: &T) -> Result<(), CanonicalJsonError> {
        Err(CanonicalJsonError("raw JSON text must be a string".into()))
    }
    fn serialize_newtype_struct<T: ?Sized + serde::Serialize>(
        self,
        _: &'static str,
        _: &T,
    ) -> Result<(), CanonicalJsonError> {
        Err(CanonicalJsonError("raw JSON text must be a string".into()))
    }
    fn serialize_newtype_variant<T: ?Sized + serde::Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), CanonicalJsonError> {
        Err(CanonicalJsonError("raw JSON text must be a string".into()))
    }
}

/// Serializer methods writing an integer as Rust (and serde_json) print it.
macro_rules! integers_as_printed {
    ($($method:ident: $ty:ty),*) => {$(
        fn $method(self, v: $ty) -> Result<(), CanonicalJsonError> {
            self.display(v)
        }
    )*};
}

impl<'a> serde::Serializer for CanonicalWriter<'a> {
    type Ok = ();
    type Error = CanonicalJsonError;
    type SerializeSeq = ArrayWriter<'a>;
    type SerializeTuple = ArrayWriter<'a>;
    type SerializeTupleStruct = ArrayWriter<'a>;
    type SerializeTupleVariant = ArrayWriter<'a>;
    type SerializeMap = ObjectWriter<'a>;
    type SerializeStruct = ObjectWriter<'a>;
    type SerializeStructVariant = ObjectWriter<'a>;

    fn serialize_bool(self, v: bool) -> Result<(), CanonicalJsonError> {
        self.out.push_str(if v { "true" } else { "false" });
        Ok(())
    }
    integers_as_printed!(
        serialize_i8: i8,
        serialize_i16: i16,
        serialize_i32: i32,
        serialize_i64: i64,
        serialize_u8: u8,
        serialize_u16: u16,
        serialize_u32: u32,
        serialize_u64: u64
    );
    fn serialize_i128(self, v: i128) -> Result<(), CanonicalJsonError> {
        match (i64::try_from(v), u64::try_from(v)) {
            (Ok(_), _) | (_, Ok(_)) => self.display(v),
            _ => Err(CanonicalJsonError(format!("{v} is out of JSON's integer range"))),
        }
    }
    fn serialize_u128(self, v: u128) -> Result<(), CanonicalJsonError> {
        match u64::try_from(v) {
            Ok(_) => self.display(v),
            Err(_) => Err(CanonicalJsonError(format!("{v} is out of JSON's integer range"))),
        }
    }
    fn serialize_f32(self, v: f32) -> Result<(), CanonicalJsonError> {
        self.serialize_f64(f64::from(v))
    }
    fn serialize_f64(self, v: f64) -> Result<(), CanonicalJsonError> {
        // As serde_json's tree holds it: a finite number as it prints one, anything else as null.
        match serde_json::Number::from_f64(v) {
            Some(n) => self.display(n),
            None => {
                self.out.push_str("null");
                Ok(())
            }
        }
    }
    fn serialize_char(self, v: char) -> Result<(), CanonicalJsonError> {
        write_json_string(v.encode_utf8(&mut [0; 4]), self.out);
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<(), CanonicalJsonError> {
        write_json_string(v, self.out);
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), CanonicalJsonError> {
        use serde::ser::SerializeSeq;
        let mut array = self.array("]");
        for byte in v {
            array.serialize_element(byte)?;
        }
        array.end()
    }
    fn serialize_none(self) -> Result<(), CanonicalJsonError> {
        self.serialize_unit()
    }
    fn serialize_some<T: ?Sized + serde::Serialize>(self, value: &T) -> Result<(), CanonicalJsonError> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), CanonicalJsonError> {
        self.out.push_str("null");
        Ok(())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), CanonicalJsonError> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), CanonicalJsonError> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: ?Sized + serde::Serialize>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<(), CanonicalJsonError> {
        if name != JSON_TEXT_TOKEN {
            return value.serialize(self);
        }
        // JSON text that is already in canonical form (see `crate::event::JsonText`): its string, written as it is.
        value.serialize(RawText { out: self.out })
    }
    fn serialize_newtype_variant<T: ?Sized + serde::Serialize>(
        mut self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), CanonicalJsonError> {
        self.open_variant(variant);
        value.serialize(CanonicalWriter {
            out: &mut *self.out,
            extra: &[],
        })?;
        self.out.push('}');
        Ok(())
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<ArrayWriter<'a>, CanonicalJsonError> {
        Ok(self.array("]"))
    }
    fn serialize_tuple(self, _len: usize) -> Result<ArrayWriter<'a>, CanonicalJsonError> {
        Ok(self.array("]"))
    }
    fn serialize_tuple_struct(self, _name: &'static str, _len: usize) -> Result<ArrayWriter<'a>, CanonicalJsonError> {
        Ok(self.array("]"))
    }
    fn serialize_tuple_variant(
        mut self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<ArrayWriter<'a>, CanonicalJsonError> {
        self.open_variant(variant);
        Ok(self.array("]}"))
    }
    fn serialize_map(self, len: Option<usize>) -> Result<ObjectWriter<'a>, CanonicalJsonError> {
        Ok(self.object(len, ""))
    }
    fn serialize_struct(self, _name: &'static str, len: usize) -> Result<ObjectWriter<'a>, CanonicalJsonError> {
        Ok(self.object(Some(len), ""))
    }
    fn serialize_struct_variant(
        mut self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<ObjectWriter<'a>, CanonicalJsonError> {
        self.open_variant(variant);
        // The entries to add belong to the outer object, which a variant's content is not: they are refused below.
        if !self.extra.is_empty() {
            return Err(CanonicalJsonError("only an object can gain entries".into()));
        }
        Ok(self.object(Some(len), "}"))
    }
}

impl ArrayWriter<'_> {
    fn element<T: ?Sized + serde::Serialize>(&mut self, value: &T) -> Result<(), CanonicalJsonError> {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        value.serialize(CanonicalWriter {
            out: &mut *self.out,
            extra: &[],
        })
    }
    fn close(self) -> Result<(), CanonicalJsonError> {
        self.out.push_str(self.close);
        Ok(())
    }
}

/// serde's four array-like serializer traits, all writing elements through [`ArrayWriter::element`].
macro_rules! array_writer {
    ($($trait:ident :: $method:ident),*) => {$(
        impl serde::ser::$trait for ArrayWriter<'_> {
            type Ok = ();
            type Error = CanonicalJsonError;
            fn $method<T: ?Sized + serde::Serialize>(&mut self, value: &T) -> Result<(), CanonicalJsonError> {
                self.element(value)
            }
            fn end(self) -> Result<(), CanonicalJsonError> {
                self.close()
            }
        }
    )*};
}

array_writer!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

impl ObjectWriter<'_> {
    fn entry<T: ?Sized + serde::Serialize>(
        &mut self,
        key: Cow<'static, str>,
        value: &T,
    ) -> Result<(), CanonicalJsonError> {
        let from = self.out.len();
        value.serialize(CanonicalWriter {
            out: &mut *self.out,
            extra: &[],
        })?;
        self.entries.push((key, from - self.start..self.out.len() - self.start));
        Ok(())
    }

    fn close(mut self) -> Result<(), CanonicalJsonError> {
        for &(name, value) in self.extra {
            let from = self.out.len();
            let _ = write!(self.out, "{value}");
            self.entries
                .push((Cow::Borrowed(name), from - self.start..self.out.len() - self.start));
        }
        // Stable: of entries with the same key the last one stays, as in serde_json's tree.
        self.entries.sort_by(|a, b| a.0.cmp(&b.0));
        let values = self.out.split_off(self.start);
        self.out.push('{');
        let mut first = true;
        for (i, (key, range)) in self.entries.iter().enumerate() {
            if self.entries.get(i + 1).is_some_and(|next| next.0 == *key) {
                continue;
            }
            if !first {
                self.out.push(',');
            }
            first = false;
            write_json_string(key, self.out);
            self.out.push(':');
            self.out.push_str(&values[range.clone()]);
        }
        self.out.push('}');
        self.out.push_str(self.close);
        Ok(())
    }
}

/// A map key as the string serde_json's tree would hold: strings as they are, numbers and booleans as they print.
fn map_key<T: ?Sized + serde::Serialize>(key: &T) -> Result<String, CanonicalJsonError> {
    let mut written = String::new();
    key.serialize(CanonicalWriter {
        out: &mut written,
        extra: &[],
    })?;
    if written.starts_with('"') {
        if written.contains('\\') {
            serde_json::from_str(&written).map_err(|e| CanonicalJsonError(e.to_string()))
        } else {
            written.pop();
            written.remove(0);
            Ok(written)
        }
    } else if written.starts_with(['-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9'])
        && !written.contains(['.', 'e', 'E'])
        || written == "true"
        || written == "false"
    {
        Ok(written)
    } else {
        Err(CanonicalJsonError(format!(
            "a map key must be a string, an integer or a boolean, not `{written}`"
        )))
    }
}

impl serde::ser::SerializeMap for ObjectWriter<'_> {
    type Ok = ();
    type Error = CanonicalJsonError;
    fn serialize_key<T: ?Sized + serde::Serialize>(&mut self, key: &T) -> Result<(), CanonicalJsonError> {
        self.key = Some(map_key(key)?);
        Ok(())
    }
    fn serialize_value<T: ?Sized + serde::Serialize>(&mut self, value: &T) -> Result<(), CanonicalJsonError> {
        let key = self
            .key
            .take()
            .ok_or_else(|| CanonicalJsonError("a map value without its key".into()))?;
        self.entry(Cow::Owned(key), value)
    }
    fn end(self) -> Result<(), CanonicalJsonError> {
        self.close()
    }
}

/// serde's two struct serializer traits: each field is an entry keyed by its name.
macro_rules! struct_writer {
    ($($trait:ident),*) => {$(
        impl serde::ser::$trait for ObjectWriter<'_> {
            type Ok = ();
            type Error = CanonicalJsonError;
            fn serialize_field<T: ?Sized + serde::Serialize>(
                &mut self,
                name: &'static str,
                value: &T,
            ) -> Result<(), CanonicalJsonError> {
                self.entry(Cow::Borrowed(name), value)
            }
            fn end(self) -> Result<(), CanonicalJsonError> {
                self.close()
            }
        }
    )*};
}

struct_writer!(SerializeStruct, SerializeStructVariant);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn entries_are_added_to_an_object_in_key_order_and_refused_elsewhere() {
        #[derive(serde::Serialize)]
        struct Event {
            kind: &'static str,
            z: u8,
        }
        assert_eq!(
            to_canonical_json_with(&Event { kind: "k", z: 1 }, &[("seq", 7), ("a", -1)]).unwrap(),
            r#"{"a":-1,"kind":"k","seq":7,"z":1}"#
        );
        assert!(to_canonical_json_with(&[1, 2], &[("seq", 7)]).is_err());
        #[derive(serde::Serialize)]
        enum Outer {
            Variant { x: u8 },
        }
        assert!(to_canonical_json_with(&Outer::Variant { x: 1 }, &[("seq", 7)]).is_err());
    }

    #[test]
    fn keys_are_sorted_at_every_depth_and_whitespace_is_dropped() {
        let v = json!({"b": 1, "a": {"z": [true, null, "x\n\u{1}"], "é": 2, "A": -3}, "c": 1.5});
        assert_eq!(
            canonical_json(&v),
            r#"{"a":{"A":-3,"z":[true,null,"x\n\u0001"],"é":2},"b":1,"c":1.5}"#
        );
        let reparsed: Value = serde_json::from_str(&canonical_json(&v)).unwrap();
        assert_eq!(canonical_json(&reparsed), canonical_json(&v));
    }

    #[test]
    fn strings_are_escaped_exactly_as_serde_json_escapes_them() {
        let mut samples: Vec<String> = (0u8..0x80).map(|b| format!("a{}b", b as char)).collect();
        samples.extend(
            [
                "",
                "plain",
                "\"quoted\" \\ back",
                "é ü 😀 \u{7f} \u{80} \u{2028}",
                "\u{0}\u{1f}\n\r\t\u{8}\u{c}",
            ]
            .map(String::from),
        );
        for sample in samples {
            let mut ours = String::new();
            write_json_string(&sample, &mut ours);
            assert_eq!(ours, serde_json::to_string(&sample).unwrap(), "{sample:?}");
        }
        let numbers = json!([0, -1, 1.5, 1e300, -2.5e-7, u64::MAX, i64::MIN]);
        assert_eq!(canonical_json(&numbers), numbers.to_string());
    }

    /// Every kind of thing serde can hand a serializer, in a shape the decision log's bodies do not have.
    #[derive(serde::Serialize)]
    struct Everything {
        z_last: u8,
        #[serde(skip_serializing_if = "Option::is_none")]
        skipped: Option<u8>,
        some: Option<&'static str>,
        none: Option<i32>,
        unit: (),
        tuple: (i8, f32, char),
        bytes: serde_bytes_like::Bytes,
        variants: Vec<Variant>,
        int_keys: std::collections::BTreeMap<i64, bool>,
        bool_keys: std::collections::HashMap<bool, ()>,
        nested: Value,
        nan: f64,
        big: u128,
        #[serde(flatten)]
        flattened: std::collections::BTreeMap<String, i32>,
    }

    #[derive(serde::Serialize)]
    enum Variant {
        Unit,
        Newtype(u16),
        Tuple(u8, String),
        Struct { b: i16, a: Vec<u8> },
    }

    mod serde_bytes_like {
        /// Serialized through `serialize_bytes`, as `serde_bytes` does.
        pub struct Bytes(pub Vec<u8>);
        impl serde::Serialize for Bytes {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(&self.0)
            }
        }
    }

    #[test]
    fn serializing_straight_to_canonical_json_matches_the_tree_path() {
        let value = Everything {
            z_last: 7,
            skipped: None,
            some: Some("x\"y"),
            none: None,
            unit: (),
            tuple: (-3, 0.5, '\n'),
            bytes: serde_bytes_like::Bytes(vec![0, 255]),
            variants: vec![
                Variant::Unit,
                Variant::Newtype(9),
                Variant::Tuple(1, "t".into()),
                Variant::Struct { b: -1, a: vec![2, 1] },
            ],
            int_keys: [(-5, true), (10, false), (2, true)].into(),
            bool_keys: [(true, ())].into(),
            nested: json!({"b": [1, {"d": null, "c": 2.25}], "a": "\u{7}", "é": {}, "A": []}),
            nan: f64::NAN,
            big: u128::from(u64::MAX),
            flattened: [("m".to_owned(), 1), ("a_flat".to_owned(), 2)].into(),
        };
        let tree = canonical_json(&serde_json::to_value(&value).unwrap());
        assert_eq!(to_canonical_json(&value).unwrap(), tree);
        assert!(
            tree.starts_with(r#"{"a_flat":2,"big":18446744073709551615,"bool_keys":{"true":null},"#),
            "{tree}"
        );
    }

    #[test]
    fn values_without_a_json_form_are_refused() {
        let string_keys: std::collections::BTreeMap<String, u8> = [("k".into(), 1)].into();
        assert_eq!(to_canonical_json(&string_keys).unwrap(), r#"{"k":1}"#);
        let unit_keys: std::collections::BTreeMap<(), u8> = [((), 1)].into();
        assert!(to_canonical_json(&unit_keys).is_err());
        assert!(to_canonical_json(&(u128::from(u64::MAX) + 1)).is_err());
        assert!(to_canonical_json(&(i128::from(i64::MIN) - 1)).is_err());
    }

    fn json_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            ".{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::vec((".{0,6}", inner), 0..6)
                    .prop_map(|entries| Value::Object(entries.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #[test]
        fn any_json_value_serializes_to_the_same_canonical_bytes(value in json_value()) {
            proptest::prop_assert_eq!(to_canonical_json(&value).unwrap(), canonical_json(&value));
        }
    }
}
