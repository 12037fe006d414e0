//! Schemas of request fields, built from the constants of the value types
//! that validate them (`VillageCode::PATTERN`, `Text::MAX_CHARS`, …), so the
//! document says exactly what the server accepts. Used with
//! `#[schema(schema_with = …)]` and `#[param(schema_with = …)]`; the
//! string enums come from the domain (`value_type = Role`, …).

use nuanxin_domain::values::{
    AmountFen, IdNumber, Name, Phone, Scope, Text, VillageCode, DAY_FROM_2000_PATTERN, DAY_PATTERN,
    EMERGENCY_PRIORITIES, MAX_NEEDS, REGISTRATION_DAY_PATTERN,
};
use utoipa::openapi::schema::{
    ArrayBuilder, KnownFormat, Object, ObjectBuilder, SchemaFormat, SchemaType, Type,
};
use utoipa::openapi::Array;

/// Longest acknowledgement note, in characters.
pub const NOTE_MAX_CHARS: usize = 2000;

fn string(pattern: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern))
}

/// The same schema, also accepting `null` (an optional field: serde takes
/// `null` as absent).
fn nullable(b: ObjectBuilder) -> Object {
    let object = b.build();
    let types = match &object.schema_type {
        SchemaType::Type(t) => vec![t.clone(), Type::Null],
        SchemaType::Array(ts) => ts.iter().cloned().chain([Type::Null]).collect(),
        SchemaType::AnyValue => return object,
    };
    let mut object = object;
    object.schema_type = SchemaType::from_iter(types);
    object
}

fn village_code_b() -> ObjectBuilder {
    string(VillageCode::PATTERN)
        .description(Some(
            "12-digit village code: an existing province, then city, county, township and village parts, none all zeros",
        ))
}

pub fn village_code() -> Object {
    village_code_b().build()
}

pub fn scope() -> Object {
    string(Scope::PATTERN)
        .description(Some(
            "Jurisdiction: \"\" (everything) or a code prefix of 2, 4, 6, 9 or 12 digits starting with an existing province",
        ))
        .build()
}

/// A village-code prefix asked in a query (answers are cut to the caller's scope).
pub fn prefix() -> Object {
    string(Scope::ASKED_PATTERN)
        .description(Some(
            "Only families whose village code starts with these digits (within your scope)",
        ))
        .build()
}

fn day_b() -> ObjectBuilder {
    string(DAY_PATTERN)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Date)))
        .description(Some("A day YYYY-MM-DD from 1900-01-01 to 2099-12-31"))
}

pub fn day() -> Object {
    day_b().build()
}

pub fn opt_day() -> Object {
    nullable(day_b())
}

/// A day of an activity or inspection: from 2000-01-01 on.
pub fn day_from_2000() -> Object {
    string(DAY_FROM_2000_PATTERN)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Date)))
        .description(Some("A day YYYY-MM-DD from 2000-01-01 to 2099-12-31"))
        .build()
}

/// Where an activity was held: a county, township or village code.
pub fn place() -> Object {
    string(Scope::PLACE_PATTERN)
        .description(Some(
            "A county, township or village code (6, 9 or 12 digits) within your scope",
        ))
        .build()
}

/// A jurisdiction inspected or inspecting: a code prefix of 2 to 12 digits.
pub fn jurisdiction() -> Object {
    string(Scope::JURISDICTION_PATTERN)
        .description(Some(
            "An administrative code prefix of 2, 4, 6, 9 or 12 digits within your scope",
        ))
        .build()
}

pub fn opt_jurisdiction() -> Object {
    nullable(string(Scope::JURISDICTION_PATTERN))
}

/// Money in fen (1/100 yuan).
pub fn amount() -> Object {
    amount_b().build()
}

fn amount_b() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(0))
        .maximum(Some(AmountFen::MAX))
        .description(Some("Money in fen (1/100 yuan), 0 to 1,000,000,000"))
}

/// A policy year.
pub fn policy_year() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int32)))
        .minimum(Some(nuanxin_domain::insurance::PolicyYear::FIRST))
        .maximum(Some(nuanxin_domain::insurance::PolicyYear::LAST))
        .build()
}

/// The families named by an attendance request.
pub fn family_ids() -> Array {
    ArrayBuilder::new()
        .items(uuid())
        .min_items(Some(1))
        .max_items(Some(nuanxin_domain::activity::MAX_FAMILIES_PER_REQUEST))
        .description(Some("Family ids, 1 to 500"))
        .build()
}

/// The follow-ups an inspection lists.
pub fn follow_ups() -> Array {
    ArrayBuilder::new()
        .items(text())
        .max_items(Some(nuanxin_domain::inspection::MAX_FOLLOW_UPS))
        .description(Some("What the inspected level is asked to do, at most 50"))
        .build()
}

pub fn opt_text() -> Object {
    nullable(
        string(Text::PATTERN)
            .max_length(Some(Text::MAX_CHARS))
            .description(Some("Free text, as `text` fields")),
    )
}

pub fn claim_outcome() -> Object {
    string_enum(["paid", "rejected"])
}

pub fn registration_day() -> Object {
    string(REGISTRATION_DAY_PATTERN)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Date)))
        .description(Some(
            "The registration day, YYYY-MM-DD from 1980-01-01 (not after today: 409)",
        ))
        .build()
}

/// An RFC 3339 instant (with its offset).
pub fn instant() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
        .description(Some("RFC 3339 instant, e.g. 2026-03-01T08:30:00+08:00"))
        .build()
}

fn id_number_b() -> ObjectBuilder {
    string(IdNumber::PATTERN).description(Some(
        "18-character resident ID number (GB 11643): a region code of an existing province, the \
         holder's birth date YYYYMMDD (must equal `birth_date`), a sequence whose last digit is odd \
         for men and even for women (must agree with `sex`), and the check character. A number \
         that breaks what this pattern cannot say is refused with 422.",
    ))
}

pub fn opt_id_number() -> Object {
    nullable(id_number_b())
}

fn phone_b() -> ObjectBuilder {
    string(Phone::PATTERN).description(Some(
        "Phone number: an optional leading +, 5 to 20 digits, `-` or space between them",
    ))
}

pub fn phone() -> Object {
    phone_b().build()
}

pub fn opt_phone() -> Object {
    nullable(phone_b())
}

pub fn text() -> Object {
    string(Text::PATTERN)
        .max_length(Some(Text::MAX_CHARS))
        .description(Some(
            "Free text: not blank, at most 4000 characters, no control characters but tab and line breaks",
        ))
        .build()
}

pub fn note() -> Object {
    string(Text::PATTERN)
        .max_length(Some(NOTE_MAX_CHARS))
        .description(Some(
            "Free text: not blank, at most 2000 characters, no control characters but tab and line breaks",
        ))
        .build()
}

pub fn name() -> Object {
    string(Name::PATTERN)
        .max_length(Some(Name::MAX_CHARS))
        .description(Some(
            "One line: not blank, at most 100 characters, no control characters",
        ))
        .build()
}

/// A login (web sign-in), optional (`null`: one is made).
pub fn opt_login() -> Object {
    nullable(
        string("^[a-z0-9._-]{3,32}$")
            .min_length(Some(3))
            .max_length(Some(32))
            .description(Some(
                "What the user signs in with: 3 to 32 of a-z, 0-9, '.', '_', '-'; unique",
            )),
    )
}

fn password_b() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(10))
        .max_length(Some(128))
        .description(Some(
            "At least 10 characters (at most 128); kept only as an argon2id hash",
        ))
}

/// A password (web sign-in).
pub fn password() -> Object {
    password_b().build()
}

/// A password, optional (`null`: none).
pub fn opt_password() -> Object {
    nullable(password_b())
}

/// A UUID sent as a string field.
pub fn uuid() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
        .build()
}

pub fn opt_amount() -> Object {
    nullable(amount_b())
}

pub fn priority() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(*EMERGENCY_PRIORITIES.start()))
        .maximum(Some(*EMERGENCY_PRIORITIES.end()))
        .description(Some("1 is called first"))
        .build()
}

pub fn needs() -> Array {
    ArrayBuilder::new()
        .items(name())
        .max_items(Some(MAX_NEEDS))
        .description(Some("Needs identified, at most 20, each one short line"))
        .build()
}

/// A string enum of `values` (for lists the infra crate keeps, not the domain).
fn string_enum(values: impl IntoIterator<Item = &'static str>) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values))
        .build()
}

pub fn alert_status() -> Object {
    use nuanxin_infra::alerts::AlertStatus as S;
    string_enum([S::Open, S::Acknowledged, S::Resolved].map(S::as_str))
}

/// The status of an "inspections behind schedule" alert.
pub fn inspection_alert_status() -> Object {
    string_enum(["open", "resolved"])
}

pub fn alert_level_name() -> Object {
    string_enum((0..=4).map(nuanxin_infra::alerts::level_name))
}

pub fn delivery_status() -> Object {
    string_enum(["pending", "delivered"])
}

pub fn message_kind() -> Object {
    string_enum(["raised", "escalated", "reopened"])
}
