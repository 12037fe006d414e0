//! Objects only where the body's type has fields. serde's derived
//! `Deserialize` for a struct also takes a JSON *array* of its fields in
//! order, so `["x"]` would be a note and `[null]` an alert scan — bodies the
//! OpenAPI document (and any reader) says are invalid. [`objects_only`]
//! deserializes a value again through [`Strict`], which refuses an array
//! wherever a struct is asked for, at any depth, as a field error at that
//! position. (The bytes are parsed by `serde_json` first, so syntax errors,
//! duplicate keys and trailing content keep their own answers.)

use serde::de::value::{MapDeserializer, SeqDeserializer};
use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};
use serde::forward_to_deserialize_any;
use serde_json::{Map, Value};

type Error = serde_json::Error;

/// `value` as a `T`, refusing any array given where `T` (or a struct inside
/// it) has fields; the error carries the path.
pub fn objects_only<T: DeserializeOwned>(
    value: &Value,
) -> Result<T, serde_path_to_error::Error<Error>> {
    serde_path_to_error::deserialize(Strict(value))
}

/// A borrowed JSON value that deserializes like `serde_json::Value` except
/// that a struct must be an object.
#[derive(Clone, Copy)]
pub struct Strict<'a>(pub &'a Value);

impl<'de> IntoDeserializer<'de, Error> for Strict<'de> {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

fn visit_object<'de, V: Visitor<'de>>(
    map: &'de Map<String, Value>,
    visitor: V,
) -> Result<V::Value, Error> {
    let mut access = MapDeserializer::new(map.iter().map(|(k, v)| (k.as_str(), Strict(v))));
    let value = visitor.visit_map(&mut access)?;
    access.end()?;
    Ok(value)
}

impl<'de> de::Deserializer<'de> for Strict<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
                (Some(u), _, _) => visitor.visit_u64(u),
                (_, Some(i), _) => visitor.visit_i64(i),
                (_, _, Some(f)) => visitor.visit_f64(f),
                _ => Err(de::Error::custom("unrepresentable number")),
            },
            Value::String(s) => visitor.visit_borrowed_str(s),
            Value::Array(items) => {
                let mut access = SeqDeserializer::new(items.iter().map(Strict));
                let value = visitor.visit_seq(&mut access)?;
                access.end()?;
                Ok(value)
            }
            Value::Object(map) => visit_object(map, visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.0 {
            Value::Object(map) => visit_object(map, visitor),
            other => Err(de::Error::invalid_type(unexpected(other), &"an object")),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

fn unexpected(v: &Value) -> de::Unexpected<'_> {
    match v {
        Value::Null => de::Unexpected::Unit,
        Value::Bool(b) => de::Unexpected::Bool(*b),
        Value::Number(_) => de::Unexpected::Other("a number"),
        Value::String(s) => de::Unexpected::Str(s),
        Value::Array(_) => de::Unexpected::Seq,
        Value::Object(_) => de::Unexpected::Map,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        a: String,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        inner: Inner,
        list: Vec<Inner>,
        words: Vec<String>,
        maybe: Option<Inner>,
    }

    fn parse(v: Value) -> Result<Outer, String> {
        objects_only::<Outer>(&v).map_err(|e| e.path().to_string())
    }

    #[test]
    fn objects_pass_and_arrays_for_structs_are_refused_where_they_are() {
        let ok = json!({"inner": {"a": "x"}, "list": [{"a": "y"}], "words": ["w"], "maybe": null});
        assert!(parse(ok).is_ok());
        assert_eq!(parse(json!([{"a": "x"}, [], [], null])).unwrap_err(), ".");
        assert_eq!(
            parse(json!({"inner": ["x"], "list": [], "words": [], "maybe": null})).unwrap_err(),
            "inner"
        );
        assert_eq!(
            parse(json!({"inner": {"a": "x"}, "list": [["y"]], "words": [], "maybe": null}))
                .unwrap_err(),
            "list[0]"
        );
        assert_eq!(
            parse(json!({"inner": {"a": "x"}, "list": [], "words": [], "maybe": ["z"]}))
                .unwrap_err(),
            "maybe"
        );
        assert!(parse(
            json!({"inner": {"a": "x", "b": 1}, "list": [], "words": [], "maybe": null})
        )
        .is_err());
    }
}
