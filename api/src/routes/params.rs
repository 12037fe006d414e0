//! The parameters every command and every list shares, with their exact
//! grammar next to the document that publishes it: the command headers
//! (`If-Match`, `Idempotency-Key`) and each list's page (`limit`, and a
//! `cursor` whose pattern is exactly what that list's decoder accepts).
//! `tests/properties.rs` checks each decoder against its pattern.

use nuanxin_projections::schedule::DueCursor;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::Required;
use utoipa::IntoParams;
use uuid::Uuid;

use crate::extract::Page;

/// `If-Match`: the case version, bare, quoted or weak (`3`, `"3"`, `W/"3"`).
pub const IF_MATCH_PATTERN: &str = r#"^(W/)?("[0-9]{1,19}"|[0-9]{1,19})$"#;

/// The version an `If-Match` value names, if it follows [`IF_MATCH_PATTERN`].
pub fn parse_if_match(v: &str) -> Option<u64> {
    let v = v.strip_prefix("W/").unwrap_or(v);
    let digits = match v.strip_prefix('"') {
        Some(rest) => rest.strip_suffix('"')?,
        None => v,
    };
    if digits.is_empty() || digits.len() > 19 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// `Idempotency-Key`: 1 to 200 visible ASCII characters, spaces inside.
pub const IDEMPOTENCY_KEY_PATTERN: &str = "^[!-~]([ -~]{0,198}[!-~])?$";

/// Whether `k` follows [`IDEMPOTENCY_KEY_PATTERN`].
pub fn valid_idempotency_key(k: &str) -> bool {
    let b = k.as_bytes();
    let visible = |c: &u8| (b'!'..=b'~').contains(c);
    !b.is_empty()
        && b.len() <= 200
        && visible(&b[0])
        && visible(&b[b.len() - 1])
        && b.iter().all(|c| (b' '..=b'~').contains(c))
}

fn string_schema(pattern: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern))
}

/// The optional headers of every command (documentation; `CommandHeaders`
/// extracts them with [`parse_if_match`] and [`valid_idempotency_key`]).
pub struct CommandHeaderParams;

impl IntoParams for CommandHeaderParams {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let mut params = vec![ParameterBuilder::new()
            .name("If-Match")
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(
                "Record only if the case is at this version (else 409): `3`, `\"3\"` or `W/\"3\"`",
            ))
            .schema(Some(string_schema(IF_MATCH_PATTERN)))
            .build()];
        params.extend(IdempotencyKeyParam::into_params(|| None));
        params
    }
}

/// The `Idempotency-Key` header alone: the commands on activities and
/// inspections, which have no case version to match.
pub struct IdempotencyKeyParam;

impl IntoParams for IdempotencyKeyParam {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![ParameterBuilder::new()
            .name("Idempotency-Key")
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(
                "Retry-safe key: the same key with the same body from the same user answers \
                     the first response and records nothing new; with a different body: 422",
            ))
            .schema(Some(string_schema(IDEMPOTENCY_KEY_PATTERN)))
            .build()]
    }
}

/// A list's `cursor`: the pattern its decoder accepts exactly.
pub trait Cursor {
    type Value;
    const PATTERN: &'static str;
    fn decode(s: &str) -> Option<Self::Value>;
}

/// Lists ordered by an id: the last item's id.
pub struct IdCursor;

impl Cursor for IdCursor {
    type Value = Uuid;
    const PATTERN: &'static str =
        "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";
    fn decode(s: &str) -> Option<Uuid> {
        (s.len() == 36).then(|| s.parse().ok()).flatten()
    }
}

/// A family's history: the last event's sequence number.
pub struct SequenceCursor;

impl Cursor for SequenceCursor {
    type Value = u64;
    const PATTERN: &'static str = "^[0-9]{1,19}$";
    fn decode(s: &str) -> Option<u64> {
        (!s.is_empty() && s.len() <= 19 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    }
}

/// The access log: the last record's position.
pub struct PositionCursor;

impl Cursor for PositionCursor {
    type Value = i64;
    const PATTERN: &'static str = "^[0-9]{1,18}$";
    fn decode(s: &str) -> Option<i64> {
        (!s.is_empty() && s.len() <= 18 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    }
}

/// Activities and inspections, newest first: the last item's day (days
/// since 0001-01-01, the proleptic Gregorian day number) and id.
pub struct HeldCursor;

impl HeldCursor {
    pub fn encode(on: chrono::NaiveDate, id: Uuid) -> String {
        use chrono::Datelike;
        format!("{}_{id}", on.num_days_from_ce().max(0))
    }
}

impl Cursor for HeldCursor {
    type Value = (chrono::NaiveDate, Uuid);
    const PATTERN: &'static str =
        "^[0-9]{1,7}_[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";
    fn decode(s: &str) -> Option<(chrono::NaiveDate, Uuid)> {
        let (days, id) = s.split_once('_')?;
        if days.is_empty() || days.len() > 7 || !days.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let on = chrono::NaiveDate::from_num_days_from_ce_opt(days.parse().ok()?)?;
        Some((on, IdCursor::decode(id)?))
    }
}

/// The overdue and due lists: the last item's due day, family and role.
pub struct DueListCursor;

impl Cursor for DueListCursor {
    type Value = DueCursor;
    const PATTERN: &'static str = DueCursor::PATTERN;
    fn decode(s: &str) -> Option<DueCursor> {
        DueCursor::decode(s)
    }
}

/// `limit` and `cursor` of a list whose cursor is a `C` (documentation of
/// the `Page` that `ListQuery` extracts).
pub struct PageParams<C>(std::marker::PhantomData<C>);

impl<C: Cursor> IntoParams for PageParams<C> {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![
            ParameterBuilder::new()
                .name("limit")
                .parameter_in(ParameterIn::Query)
                .required(Required::False)
                .description(Some("Items per page, 1 to 500 (default 50)"))
                .schema(Some(
                    ObjectBuilder::new()
                        .schema_type(Type::Integer)
                        .minimum(Some(1))
                        .maximum(Some(Page::MAX_LIMIT)),
                ))
                .build(),
            ParameterBuilder::new()
                .name("cursor")
                .parameter_in(ParameterIn::Query)
                .required(Required::False)
                .description(Some(
                    "`next_cursor` of the previous page (a cursor of this list's shape that no item matches starts after where it would be)",
                ))
                .schema(Some(string_schema(C::PATTERN)))
                .build(),
        ]
    }
}
