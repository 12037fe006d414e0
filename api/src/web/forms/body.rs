//! From a posted form to the API's request body and its DTO.
//!
//! Each form lists its [`Field`]s: the form's field name (the API's name:
//! `visited_on`, `members[0].name`, `person.phone`; `amount_yuan` for an
//! amount the API takes in fen) and how its text becomes a JSON value. The
//! body is then parsed by the API's parsing ([`crate::extract::parse_json`])
//! into the API's DTO, and the DTO into the command, so the rules and the
//! messages are the API's.
//!
//! Every wrong field is reported at once, not only the first: a blank
//! required field is sent as `""` (or a stand-in number) so the DTO still
//! checks the others, and then answers "is required" (the API's words for
//! a missing field); a number that does not read as one answers "has the
//! wrong type or format" (the API's words for a wrong JSON type).

use chrono::{FixedOffset, NaiveDateTime};
use nuanxin_domain::FamilyCommand;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::super::session::Form;
use crate::error::{ApiError, FieldError};

/// How a field's text becomes a JSON value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conv {
    /// A string as typed.
    Text,
    /// A whole number.
    Int,
    /// An amount typed in yuan (`12.5`), sent in fen (`1250`).
    Yuan,
    /// A checkbox: `true` when ticked, else `false`.
    Check,
    /// A choice of yes (`true`), no (`false`) or unchanged (blank: absent).
    YesNo,
    /// A list: one item per line, or separated by commas.
    List,
    /// A `datetime-local` value, sent as an RFC 3339 instant in local time.
    Instant,
}

/// One field of a form.
#[derive(Debug, Clone)]
pub struct Field {
    /// The form's field name.
    pub name: String,
    /// Where it goes in the JSON body (`a.b`, `a[0].b`).
    pub json: String,
    pub conv: Conv,
    pub required: bool,
}

impl Field {
    fn new(name: &str, conv: Conv) -> Self {
        Field {
            name: name.to_owned(),
            json: name.to_owned(),
            conv,
            required: true,
        }
    }

    pub fn text(name: &str) -> Self {
        Self::new(name, Conv::Text)
    }

    pub fn int(name: &str) -> Self {
        Self::new(name, Conv::Int)
    }

    /// Yuan typed in `name`, fen sent as `json`.
    pub fn yuan(name: &str, json: &str) -> Self {
        Field {
            json: json.to_owned(),
            ..Self::new(name, Conv::Yuan)
        }
    }

    pub fn check(name: &str) -> Self {
        Self::new(name, Conv::Check).optional()
    }

    pub fn yes_no(name: &str) -> Self {
        Self::new(name, Conv::YesNo).optional()
    }

    pub fn list(name: &str) -> Self {
        Self::new(name, Conv::List).optional()
    }

    pub fn instant(name: &str) -> Self {
        Self::new(name, Conv::Instant)
    }

    /// Blank means absent.
    pub fn optional(mut self) -> Self {
        self.required = false;
        self
    }

    /// Sent as `json` in the body.
    pub fn at(mut self, json: String) -> Self {
        self.json = json;
        self
    }
}

/// The form's name of the body's field `json` (an item of a list is its
/// list: `needs[2]` → `needs`).
pub fn form_name(fields: &[Field], json: &str) -> String {
    fields
        .iter()
        .find(|f| f.json == json)
        .or_else(|| {
            fields
                .iter()
                .find(|f| f.conv == Conv::List && json.starts_with(&format!("{}[", f.json)))
        })
        .map_or_else(|| json.to_owned(), |f| f.name.clone())
}

/// The request body built from a form, and the errors found on the way.
pub struct Body {
    pub value: Value,
    errors: Vec<FieldError>,
}

impl Body {
    /// The body of `fields` as typed in `form`, plus `fixed` values (from
    /// the path, or worked out by the page). Instants are in `offset`.
    pub fn build(
        form: &Form,
        fields: &[Field],
        fixed: &[(&str, Value)],
        offset: FixedOffset,
    ) -> Self {
        let mut body = Body {
            value: Value::Object(Map::new()),
            errors: Vec::new(),
        };
        for field in fields {
            let typed = form.get(&field.name);
            if typed.is_empty() && field.required {
                body.error(field, "is required");
            }
            if let Some(v) = body.convert(field, typed, offset) {
                set(&mut body.value, &field.json, v);
            }
        }
        for (path, v) in fixed {
            set(&mut body.value, path, v.clone());
        }
        body
    }

    fn error(&mut self, field: &Field, message: &str) {
        if !self.errors.iter().any(|e| e.field == field.name) {
            self.errors.push(FieldError {
                field: field.name.clone(),
                message: message.to_owned(),
            });
        }
    }

    /// The JSON value of `typed`, or none for a blank optional field.
    fn convert(&mut self, field: &Field, typed: &str, offset: FixedOffset) -> Option<Value> {
        let blank = typed.is_empty();
        match field.conv {
            Conv::Text if blank && !field.required => None,
            Conv::Text => Some(Value::from(typed)),
            Conv::Check => Some(Value::Bool(typed == "true")),
            Conv::YesNo => match typed {
                "true" => Some(Value::Bool(true)),
                "false" => Some(Value::Bool(false)),
                _ => None,
            },
            Conv::List => Some(Value::from(
                typed
                    .split(['\n', ',', '，', '、', ';', '；'])
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>(),
            )),
            Conv::Int | Conv::Yuan if blank && !field.required => None,
            Conv::Int | Conv::Yuan => {
                let n = match field.conv {
                    Conv::Int => typed.parse::<i64>().ok(),
                    _ => fen_of_yuan(typed),
                };
                if n.is_none() && !blank {
                    self.error(field, "has the wrong type or format");
                }
                // A stand-in keeps the body whole so every other field is
                // checked too; this field's own error is the one above.
                Some(Value::from(n.unwrap_or(0)))
            }
            Conv::Instant => {
                let at = NaiveDateTime::parse_from_str(typed, "%Y-%m-%dT%H:%M")
                    .ok()
                    .and_then(|t| t.and_local_timezone(offset).single());
                if at.is_none() && !blank {
                    self.error(field, "has the wrong type or format");
                }
                Some(Value::from(at.map_or_else(
                    || "2000-01-01T00:00:00+08:00".to_owned(),
                    |t| t.to_rfc3339(),
                )))
            }
        }
    }

    /// The DTO of this body, turned into its command by `make`: every
    /// field's error (this form's names) in one 422.
    pub fn command<T: DeserializeOwned>(
        self,
        fields: &[Field],
        make: impl FnOnce(T) -> Result<FamilyCommand, ApiError>,
    ) -> Result<FamilyCommand, ApiError> {
        let bytes = serde_json::to_vec(&self.value).unwrap_or_default();
        let result = crate::extract::parse_json::<T>(&bytes).and_then(make);
        let mut errors = self.errors;
        match result {
            Ok(command) if errors.is_empty() => Ok(command),
            Ok(_) => Err(ApiError::Validation(errors)),
            Err(ApiError::Validation(found)) => {
                for e in found {
                    let field = form_name(fields, &e.field);
                    // A field already reported (blank, unreadable) keeps
                    // that message: the stand-in's would mislead.
                    if !errors.iter().any(|x| x.field == field) {
                        errors.push(FieldError {
                            field,
                            message: e.message,
                        });
                    }
                }
                Err(ApiError::Validation(errors))
            }
            Err(_) if !errors.is_empty() => Err(ApiError::Validation(errors)),
            Err(other) => Err(other),
        }
    }
}

/// `12`, `12.5`, `12.50`, `-3`, `1,234.00` (yuan) in fen; integers only.
pub fn fen_of_yuan(typed: &str) -> Option<i64> {
    let s: String = typed
        .chars()
        .filter(|c| !matches!(c, ',' | '，' | ' ' | '¥' | '￥'))
        .collect();
    let (negative, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.as_str()),
    };
    let (whole, cents) = s.split_once('.').unwrap_or((s, ""));
    let digits = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || whole.len() > 12 || !digits(whole) || cents.len() > 2 || !digits(cents) {
        return None;
    }
    let cents = format!("{cents:0<2}").parse::<i64>().ok()?;
    let fen = whole.parse::<i64>().ok()? * 100 + cents;
    Some(if negative { -fen } else { fen })
}

enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

fn segments(path: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let mut pieces = part.split('[');
        if let Some(key) = pieces.next() {
            out.push(Segment::Key(key));
        }
        for index in pieces {
            if let Ok(i) = index.trim_end_matches(']').parse() {
                out.push(Segment::Index(i));
            }
        }
    }
    out
}

/// Sets `path` (`a.b`, `a[0].b`) in `root` to `v`, making the objects and
/// arrays on the way.
fn set(root: &mut Value, path: &str, v: Value) {
    let mut at = root;
    for segment in segments(path) {
        at = match segment {
            Segment::Key(k) => {
                if !at.is_object() {
                    *at = Value::Object(Map::new());
                }
                match at {
                    Value::Object(map) => map.entry(k).or_insert(Value::Null),
                    _ => return,
                }
            }
            Segment::Index(i) => {
                if !at.is_array() {
                    *at = Value::Array(Vec::new());
                }
                match at {
                    Value::Array(items) => {
                        while items.len() <= i {
                            items.push(Value::Null);
                        }
                        &mut items[i]
                    }
                    _ => return,
                }
            }
        };
    }
    *at = v;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn yuan_become_fen_without_floats() {
        assert_eq!(fen_of_yuan("12"), Some(1200));
        assert_eq!(fen_of_yuan("12.5"), Some(1250));
        assert_eq!(fen_of_yuan("1,234.05"), Some(123_405));
        assert_eq!(fen_of_yuan("¥0.07"), Some(7));
        assert_eq!(fen_of_yuan("-3"), Some(-300));
        for bad in ["", "1.234", "abc", "1e3", ".5", "1.2.3"] {
            assert_eq!(fen_of_yuan(bad), None, "{bad}");
        }
    }

    #[test]
    fn paths_make_objects_and_arrays() {
        let mut v = Value::Object(Map::new());
        set(&mut v, "members[1].name", json!("B"));
        set(&mut v, "members[0].name", json!("A"));
        set(&mut v, "person.id", json!("x"));
        set(&mut v, "text", json!("t"));
        assert_eq!(
            v,
            json!({"members": [{"name": "A"}, {"name": "B"}], "person": {"id": "x"}, "text": "t"})
        );
    }

    #[test]
    fn every_error_is_reported_under_the_forms_names() {
        let form = Form {
            pairs: vec![
                ("role".into(), "village".into()),
                ("mode".into(), "".into()),
                ("visited_on".into(), "2026-13-01".into()),
                ("findings".into(), " ".into()),
                ("needs".into(), "米\n".into()),
            ],
        };
        let fields = [
            Field::text("role"),
            Field::text("mode"),
            Field::text("visited_on"),
            Field::text("findings"),
            Field::list("needs"),
        ];
        let offset = FixedOffset::east_opt(8 * 3600).unwrap();
        let body = Body::build(&form, &fields, &[], offset);
        assert_eq!(body.value["needs"], json!(["米"]));
        let err = body
            .command::<crate::routes::dto::VisitRequest>(&fields, |r| {
                r.into_command(uuid::Uuid::nil())
            })
            .unwrap_err();
        let ApiError::Validation(errors) = err else {
            panic!("{err:?}")
        };
        let by = |f: &str| {
            errors
                .iter()
                .find(|e| e.field == f)
                .map(|e| e.message.as_str())
        };
        assert_eq!(by("mode"), Some("is required"));
        assert_eq!(by("findings"), Some("is required"));
        assert!(by("visited_on").is_some());
        assert_eq!(by("role"), None);
    }

    #[test]
    fn an_unreadable_number_and_fen() {
        let form = Form {
            pairs: vec![("amount_yuan".into(), "12.345".into())],
        };
        let fields = [Field::yuan("amount_yuan", "amount_fen").optional()];
        let offset = FixedOffset::east_opt(8 * 3600).unwrap();
        let body = Body::build(&form, &fields, &[], offset);
        assert_eq!(body.errors[0].field, "amount_yuan");
        let ok = Form {
            pairs: vec![("amount_yuan".into(), "12.34".into())],
        };
        assert_eq!(
            Body::build(&ok, &fields, &[], offset).value,
            json!({"amount_fen": 1234})
        );
        let blank = Form { pairs: vec![] };
        assert_eq!(Body::build(&blank, &fields, &[], offset).value, json!({}));
    }
}
