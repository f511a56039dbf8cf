//! Canonical JSON: object keys sorted by their UTF-8 bytes, no insignificant whitespace, strings with
//! serde_json's minimal RFC 8259 escaping, numbers as serde_json prints them. The same value always gives the
//! same bytes, whatever order its keys were built in, so it can be hashed.

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
        other => out.push_str(&other.to_string()),
    }
}

/// Append `s` as a JSON string literal.
pub fn write_json_string(s: &str, out: &mut String) {
    // Serialising a string into a String cannot fail; serde_json's escaping is deterministic.
    out.push_str(&serde_json::to_string(s).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
}
