//! Validating value types. Each `parse` either returns a value that carries
//! its rule or a [`ValueError`] whose message is safe to show to the caller:
//! it never echoes the input (which may be personal data).

use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// Why a value was rejected. The message never contains the input itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValueError(pub &'static str);

/// What every read shows in place of personal data whose key was erased
/// (crypto-shredding, docs/privacy.md).
pub const ERASED: &str = "[已删除]";

/// How an encrypted personal field starts in a stored payload or read model
/// (`nuanxin_infra::privacy`): `nx2:` and the base64 of the last 8 bytes of
/// the person's id, nonce and ciphertext — what is written now.
pub const SEALED_PREFIX: &str = "nx2:";

/// How the fields sealed before `nx2:` start (the whole 16-byte person id
/// in place of its last 8 bytes); still read, never written.
pub const SEALED_PREFIX_V1: &str = "nx1:";

/// Whether `s` is an encrypted field, of either form.
pub fn is_sealed(s: &str) -> bool {
    s.starts_with(SEALED_PREFIX) || s.starts_with(SEALED_PREFIX_V1)
}

/// Whether `s` is not a value but a stand-in for one: an encrypted field
/// (still to be opened) or an erased one. Stored events and read models may
/// hold these where a phone or ID number was; requests never may
/// (`parse` refuses them).
pub fn is_opaque(s: &str) -> bool {
    is_sealed(s) || s == ERASED
}

macro_rules! string_newtype {
    ($name:ident) => {
        string_newtype!(@common $name);
        impl TryFrom<String> for $name {
            type Error = ValueError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(&value)
            }
        }
    };
    // A personal value: what is stored may be encrypted or erased
    // ([`is_opaque`]), and deserializes as such; `parse` (requests) refuses it.
    (personal $name:ident) => {
        string_newtype!(@common $name);
        impl $name {
            /// Whether this is an encrypted or erased stand-in, not a value.
            pub fn is_opaque(&self) -> bool {
                is_opaque(&self.0)
            }
        }
        impl TryFrom<String> for $name {
            type Error = ValueError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                if is_opaque(&value) {
                    return Ok(Self(value));
                }
                Self::parse(&value)
            }
        }
    };
    (@common $name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }
    };
}

/// Province-level divisions of GB/T 2260 (the first two digits of every
/// village code and of a mainland ID number).
pub const PROVINCE_CODES: [&str; 31] = [
    "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37", "41",
    "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64", "65",
];

/// Whether `code` (two digits) is a province-level division.
pub fn is_province(code: &str) -> bool {
    PROVINCE_CODES.contains(&code)
}

/// Whether `digits` is a level code of its width other than all zeros (a
/// city, county, township or village part: `00` and `000` name no place).
fn is_level(digits: &str) -> bool {
    digits.bytes().all(|b| b.is_ascii_digit()) && digits.bytes().any(|b| b != b'0')
}

/// The regular-expression alternatives of [`PROVINCE_CODES`].
macro_rules! provinces_re {
    () => {
        "(11|12|13|14|15|21|22|23|31|32|33|34|35|36|37|41|42|43|44|45|46|50|51|52|53|54|61|62|63|64|65)"
    };
}
/// A city or county part (2 digits, not `00`).
macro_rules! level2_re {
    () => {
        "(0[1-9]|[1-9][0-9])"
    };
}
/// A township or village part (3 digits, not `000`).
macro_rules! level3_re {
    () => {
        "(00[1-9]|0[1-9][0-9]|[1-9][0-9]{2})"
    };
}

/// A 12-digit administrative division code of a village or community
/// (统计用区划代码): province 2 · city 2 · county 2 · township 3 · village 3.
/// The province must exist; no part is all zeros.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct VillageCode(String);
string_newtype!(VillageCode);

impl VillageCode {
    /// Exactly the codes [`VillageCode::parse`] accepts.
    pub const PATTERN: &'static str = concat!(
        "^",
        provinces_re!(),
        level2_re!(),
        level2_re!(),
        level3_re!(),
        level3_re!(),
        "$"
    );

    pub fn parse(s: &str) -> Result<Self, ValueError> {
        if s.len() != 12 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ValueError("must be a 12-digit village code"));
        }
        if !is_province(&s[0..2]) {
            return Err(ValueError("must start with a valid province code"));
        }
        if ![&s[2..4], &s[4..6], &s[6..9], &s[9..12]]
            .into_iter()
            .all(is_level)
        {
            return Err(ValueError(
                "must not have a city, county, township or village part of all zeros",
            ));
        }
        Ok(Self(s.to_owned()))
    }

    /// Whether this village lies within the jurisdiction `scope`.
    pub fn is_within(&self, scope: &Scope) -> bool {
        self.0.starts_with(scope.as_str())
    }
}

/// A jurisdiction: a prefix of 0 (everything), 2, 4, 6, 9 or 12 digits of a
/// village code. "Within scope" is a prefix test.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Scope(String);
string_newtype!(Scope);

impl Scope {
    /// Exactly the scopes [`Scope::parse`] accepts.
    pub const PATTERN: &'static str = concat!(
        "^(",
        provinces_re!(),
        "(",
        level2_re!(),
        "(",
        level2_re!(),
        "(",
        level3_re!(),
        level3_re!(),
        "?)?)?)?)?$"
    );

    /// A jurisdiction that is not the whole country: exactly the
    /// non-empty scopes [`Scope::parse`] accepts.
    pub const JURISDICTION_PATTERN: &'static str = concat!(
        "^",
        provinces_re!(),
        "(",
        level2_re!(),
        "(",
        level2_re!(),
        "(",
        level3_re!(),
        level3_re!(),
        "?)?)?)?$"
    );

    /// A county, township or village: exactly the scopes of 6, 9 or 12
    /// digits [`Scope::parse`] accepts.
    pub const PLACE_PATTERN: &'static str = concat!(
        "^",
        provinces_re!(),
        level2_re!(),
        level2_re!(),
        "(",
        level3_re!(),
        level3_re!(),
        "?)?$"
    );

    pub fn parse(s: &str) -> Result<Self, ValueError> {
        if !matches!(s.len(), 0 | 2 | 4 | 6 | 9 | 12) || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ValueError(
                "must be an administrative code prefix of 0, 2, 4, 6, 9 or 12 digits",
            ));
        }
        if s.len() >= 2 && !is_province(&s[0..2]) {
            return Err(ValueError("must start with a valid province code"));
        }
        let parts = [(2, 4), (4, 6), (6, 9), (9, 12)];
        if !parts
            .into_iter()
            .filter(|(_, end)| *end <= s.len())
            .all(|(start, end)| is_level(&s[start..end]))
        {
            return Err(ValueError(
                "must not have a city, county, township or village part of all zeros",
            ));
        }
        Ok(Self(s.to_owned()))
    }

    /// The whole country.
    pub fn everything() -> Self {
        Self(String::new())
    }

    /// Whether `other` lies entirely within this scope.
    pub fn covers(&self, other: &Scope) -> bool {
        other.0.starts_with(&self.0)
    }

    /// The part of this scope a question about `asked` (a village-code
    /// prefix of up to 12 digits, or everything when `None`) may see: the
    /// narrower of the two, or `None` when they do not overlap (the answer
    /// is then empty, not forbidden: the question itself is legitimate).
    /// Exactly the prefixes [`Scope::effective_prefix`] accepts as a question.
    pub const ASKED_PATTERN: &'static str = "^[0-9]{0,12}$";

    pub fn effective_prefix(&self, asked: Option<&str>) -> Result<Option<String>, ValueError> {
        let Some(asked) = asked else {
            return Ok(Some(self.0.clone()));
        };
        if asked.len() > 12 || !asked.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ValueError(
                "must be a village-code prefix of up to 12 digits",
            ));
        }
        Ok(if asked.starts_with(&self.0) {
            Some(asked.to_owned())
        } else if self.0.starts_with(asked) {
            Some(self.0.clone())
        } else {
            None
        })
    }
}

/// Where an ID number may be issued: the provinces, and the residence
/// permits of Hong Kong (81), Macao (82) and Taiwan (83) residents.
const PERMIT_CODES: [&str; 3] = ["81", "82", "83"];

/// A resident identity card number (居民身份证号码, GB 11643-1999):
/// a 6-digit region code (its province must exist), the holder's birth date
/// as `YYYYMMDD` (a real day from 1900 on), a 3-digit sequence number whose
/// last digit is odd for men and even for women, and a check character
/// (`0`-`9` or `X`, ISO 7064 MOD 11-2).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IdNumber(String);
string_newtype!(personal IdNumber);

impl fmt::Debug for IdNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdNumber({})", self.masked())
    }
}

impl IdNumber {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: [u8; 11] = *b"10X98765432";

    /// The shape of an ID number. [`IdNumber::parse`] also checks what a
    /// regular expression cannot: that the birth date is a real day and
    /// the check character.
    pub const PATTERN: &'static str = concat!(
        "^(11|12|13|14|15|21|22|23|31|32|33|34|35|36|37|41|42|43|44|45|46|50|51|52|53|54|61|62|63|64|65|81|82|83)",
        "[0-9]{4}(19|20)[0-9]{2}(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])[0-9]{3}[0-9Xx]$"
    );

    pub fn parse(s: &str) -> Result<Self, ValueError> {
        let bytes = s.as_bytes();
        if bytes.len() != 18
            || !bytes[..17].iter().all(u8::is_ascii_digit)
            || !matches!(bytes[17], b'0'..=b'9' | b'X' | b'x')
        {
            return Err(ValueError(
                "must be 18 characters: 17 digits and a check character",
            ));
        }
        if !is_province(&s[0..2]) && !PERMIT_CODES.contains(&&s[0..2]) {
            return Err(ValueError("must start with a valid province code"));
        }
        let upper = s.to_ascii_uppercase();
        let sum: u32 = bytes[..17]
            .iter()
            .zip(Self::WEIGHTS)
            .map(|(b, w)| u32::from(b - b'0') * w)
            .sum();
        if upper.as_bytes()[17] != Self::CHECK[(sum % 11) as usize] {
            return Err(ValueError("check digit does not match (GB 11643)"));
        }
        let id = Self(upper);
        match id.embedded_birth_date() {
            Some(d) if plausible_day(d) => Ok(id),
            _ => Err(ValueError(
                "must hold a real birth date from 1900 on (digits 7 to 14)",
            )),
        }
    }

    fn embedded_birth_date(&self) -> Option<NaiveDate> {
        NaiveDate::parse_from_str(&self.0[6..14], "%Y%m%d").ok()
    }

    /// The holder's birth date (digits 7 to 14). Only for a number just
    /// parsed: an encrypted or erased one ([`IdNumber::is_opaque`]) has none.
    pub fn birth_date(&self) -> NaiveDate {
        self.embedded_birth_date()
            .expect("parse accepted only numbers holding a real date")
    }

    /// The holder's sex: the 17th digit is odd for men, even for women.
    pub fn sex(&self) -> Sex {
        if (self.0.as_bytes()[16] - b'0') % 2 == 1 {
            Sex::Male
        } else {
            Sex::Female
        }
    }

    /// Whether this number can belong to a person born on `birth_date`
    /// of sex `sex`.
    pub fn check_holder(&self, birth_date: NaiveDate, sex: Sex) -> Result<(), ValueError> {
        if self.birth_date() != birth_date {
            return Err(ValueError("does not agree with the birth date"));
        }
        if self.sex() != sex {
            return Err(ValueError("does not agree with the sex (17th digit)"));
        }
        Ok(())
    }

    /// The number with everything but the first 6 and last 4 characters
    /// hidden, e.g. `450305********123X`.
    /// An encrypted or erased number is returned as it is: it is masked
    /// when it is opened (`nuanxin_infra::privacy`).
    pub fn masked(&self) -> String {
        if self.is_opaque() {
            return self.0.clone();
        }
        format!("{}********{}", &self.0[..6], &self.0[14..])
    }
}

/// A phone number: digits with an optional leading `+` and `-` or space
/// separators, 5 to 20 digits.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Phone(String);
string_newtype!(personal Phone);

impl fmt::Debug for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Phone(***)")
    }
}

impl Phone {
    /// Exactly the numbers [`Phone::parse`] accepts.
    pub const PATTERN: &'static str = "^\\+?[- ]*([0-9][- ]*){5,20}$";

    pub fn parse(s: &str) -> Result<Self, ValueError> {
        let body = s.strip_prefix('+').unwrap_or(s);
        let digits = body.bytes().filter(u8::is_ascii_digit).count();
        if !body
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'-' || b == b' ')
            || !(5..=20).contains(&digits)
        {
            return Err(ValueError("must be a phone number of 5 to 20 digits"));
        }
        Ok(Self(s.trim().to_owned()))
    }
}

/// Characters no text may hold: the control characters other than tab,
/// line feed and carriage return (NUL included: PostgreSQL cannot store it).
fn is_forbidden_in_text(c: char) -> bool {
    c.is_control() && !matches!(c, '\t' | '\n' | '\r')
}

/// Every character outside [`is_forbidden_in_text`] (a regular-expression class).
macro_rules! text_char_re {
    () => {
        "[^\\x00-\\x08\\x0B\\x0C\\x0E-\\x1F\\x7F-\\x9F]"
    };
}
/// A character that is neither a control character nor white space (what
/// `str::trim` removes).
macro_rules! visible_char_re {
    () => {
        "[^\\x00-\\x20\\x7F-\\xA0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]"
    };
}
/// A character that is not a control character (line breaks and tabs included).
macro_rules! line_char_re {
    () => {
        "[^\\x00-\\x1F\\x7F-\\x9F]"
    };
}

/// Free text: at most 4000 characters, not only white space, and no
/// control characters but tab and line breaks. Stored trimmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Text(String);
string_newtype!(Text);

impl Text {
    pub const MAX_CHARS: usize = 4000;
    /// With `maxLength` [`Text::MAX_CHARS`], exactly the texts [`Text::parse`] accepts.
    pub const PATTERN: &'static str = concat!(
        "^",
        text_char_re!(),
        "*",
        visible_char_re!(),
        text_char_re!(),
        "*$"
    );

    pub fn parse(s: &str) -> Result<Self, ValueError> {
        Self::parse_at_most(s, Self::MAX_CHARS)
    }

    /// Like [`Text::parse`] with a lower bound on the length.
    pub fn parse_at_most(s: &str, max_chars: usize) -> Result<Self, ValueError> {
        if s.chars().any(is_forbidden_in_text) {
            return Err(ValueError(
                "must not contain control characters (other than tab and line breaks)",
            ));
        }
        let t = s.trim();
        if t.is_empty() {
            return Err(ValueError("must not be empty"));
        }
        if s.chars().count() > max_chars {
            return Err(ValueError("is too long"));
        }
        Ok(Self(t.to_owned()))
    }
}

/// A name, relation, provider or need: one line of at most 100 characters,
/// not only white space, no control characters. Stored trimmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Name(String);
string_newtype!(Name);

impl Name {
    pub const MAX_CHARS: usize = 100;
    /// With `maxLength` [`Name::MAX_CHARS`], exactly the names [`Name::parse`] accepts.
    pub const PATTERN: &'static str = concat!(
        "^",
        line_char_re!(),
        "*",
        visible_char_re!(),
        line_char_re!(),
        "*$"
    );

    pub fn parse(s: &str) -> Result<Self, ValueError> {
        if s.chars().any(char::is_control) {
            return Err(ValueError("must be one line without control characters"));
        }
        let t = s.trim();
        if t.is_empty() {
            return Err(ValueError("must not be empty"));
        }
        if s.chars().count() > Self::MAX_CHARS {
            return Err(ValueError("is too long (at most 100 characters)"));
        }
        Ok(Self(t.to_owned()))
    }
}

impl From<Name> for Text {
    fn from(n: Name) -> Text {
        Text(n.0)
    }
}

/// The first day any date may be: nobody alive or on record was born
/// earlier.
pub const EARLIEST_DAY: NaiveDate = day(1900, 1, 1);
/// The last day any date may be.
pub const LATEST_DAY: NaiveDate = day(2099, 12, 31);
/// The first registration day: the family-planning policy the special
/// families owe their status to began in 1980.
pub const EARLIEST_REGISTRATION: NaiveDate = day(1980, 1, 1);
/// The youngest a registered parent can be on the registration day.
pub const MIN_PARENT_AGE_YEARS: u32 = 16;
/// Most members a family registers (the parents and, rarely, others).
pub const MAX_MEMBERS: usize = 4;
/// Most needs one visit may list.
pub const MAX_NEEDS: usize = 20;
/// The order in which emergency contacts are called (1 first).
pub const EMERGENCY_PRIORITIES: std::ops::RangeInclusive<u8> = 1..=9;

const fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    match NaiveDate::from_ymd_opt(y, m, d) {
        Some(d) => d,
        None => panic!("a valid date"),
    }
}

/// With `format: date`, exactly the days [`parse_day`] accepts.
pub const DAY_PATTERN: &str = "^(19|20)[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$";
/// With `format: date`, the days from 2000 on that [`parse_day`] accepts
/// (activities and inspections are refused before 2000).
pub const DAY_FROM_2000_PATTERN: &str = "^20[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$";
/// With `format: date`, exactly the days [`parse_registration_day`] accepts.
pub const REGISTRATION_DAY_PATTERN: &str =
    "^(19[89][0-9]|20[0-9]{2})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$";

/// Whether `d` lies between [`EARLIEST_DAY`] and [`LATEST_DAY`].
pub fn plausible_day(d: NaiveDate) -> bool {
    (EARLIEST_DAY..=LATEST_DAY).contains(&d)
}

/// A calendar day written `YYYY-MM-DD`, from 1900-01-01 to 2099-12-31.
pub fn parse_day(s: &str) -> Result<NaiveDate, ValueError> {
    let b = s.as_bytes();
    let shape = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        });
    match shape
        .then(|| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
        .flatten()
    {
        Some(d) if plausible_day(d) => Ok(d),
        Some(_) => Err(ValueError("must be a day from 1900-01-01 to 2099-12-31")),
        None => Err(ValueError("must be a date YYYY-MM-DD")),
    }
}

/// A registration day: like [`parse_day`], from [`EARLIEST_REGISTRATION`] on.
pub fn parse_registration_day(s: &str) -> Result<NaiveDate, ValueError> {
    let d = parse_day(s)?;
    if d < EARLIEST_REGISTRATION {
        return Err(ValueError("must not be before 1980-01-01"));
    }
    Ok(d)
}

/// An amount of money in fen (分, 1/100 yuan). Never a float.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct AmountFen(i64);

impl AmountFen {
    /// Ten million yuan: anything larger is a typing mistake.
    pub const MAX: i64 = 1_000_000_000;

    pub fn new(fen: i64) -> Result<Self, ValueError> {
        if fen < 0 {
            return Err(ValueError("must not be negative"));
        }
        if fen > Self::MAX {
            return Err(ValueError("is implausibly large"));
        }
        Ok(Self(fen))
    }

    pub fn fen(self) -> i64 {
        self.0
    }
}

impl TryFrom<i64> for AmountFen {
    type Error = ValueError;
    fn try_from(v: i64) -> Result<Self, ValueError> {
        Self::new(v)
    }
}

impl From<AmountFen> for i64 {
    fn from(v: AmountFen) -> i64 {
        v.0
    }
}

macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident => $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $s),+ }
            }

            pub fn parse(s: &str) -> Result<Self, ValueError> {
                match s {
                    $($s => Ok($name::$variant),)+
                    _ => Err(ValueError(concat!("must be one of:" $(, " ", $s)+))),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        /// The OpenAPI schema: a string `enum` of [`Self::ALL`], the very
        /// names `parse` accepts.
        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some(Self::ALL.iter().map(|v| v.as_str())))
                    .into()
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $name {}
    };
}

/// The second-wave modules (insurance, activities, inspections) declare
/// their own closed sets with the same macro.
pub(crate) use string_enum;

string_enum!(
    /// Why the family is a special family.
    Category { Bereaved => "bereaved", DisabledChild => "disabled_child" }
);
string_enum!(Sex { Male => "male", Female => "female" });
string_enum!(
    /// Self-care ability of a member.
    SelfCare { Independent => "independent", SemiDependent => "semi_dependent", Dependent => "dependent" }
);
string_enum!(
    /// The two posts of the dual-contact system (“双岗”).
    Role { Township => "township", Village => "village" }
);
string_enum!(VisitMode { Home => "home", Phone => "phone", Video => "video", Holiday => "holiday" });
string_enum!(ElderlyCareService {
    DailyLivingCare => "daily_living_care",
    HomeCare => "home_care",
    DayCare => "day_care",
    NursingHome => "nursing_home",
    MealAssistance => "meal_assistance",
});
string_enum!(AssistanceArea {
    LivingSupport => "living_support",
    Medical => "medical",
    ElderlyCare => "elderly_care",
    PsychologicalComfort => "psychological_comfort",
});
string_enum!(
    /// What a user of Nuanxin may do.
    UserRole { Caseworker => "caseworker", Supervisor => "supervisor", Admin => "admin" }
);

impl UserRole {
    /// Caseworkers and admins record actions; supervisors only read.
    pub fn may_record(self) -> bool {
        matches!(self, UserRole::Caseworker | UserRole::Admin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn village_code_needs_twelve_digits() {
        assert!(VillageCode::parse("450305001001").is_ok());
        assert!(VillageCode::parse("45030500100").is_err());
        assert!(VillageCode::parse("4503050010011").is_err());
        assert!(VillageCode::parse("45030500100a").is_err());
        assert!(VillageCode::parse("000305001001").is_err());
    }

    #[test]
    fn scope_prefix_lengths() {
        for ok in ["", "45", "4503", "450305", "450305001", "450305001001"] {
            assert!(Scope::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["4", "450", "45030", "4503050010", "45a3"] {
            assert!(Scope::parse(bad).is_err(), "{bad}");
        }
        let v = VillageCode::parse("450305001001").unwrap();
        assert!(v.is_within(&Scope::parse("4503").unwrap()));
        assert!(!v.is_within(&Scope::parse("4504").unwrap()));
        assert!(v.is_within(&Scope::everything()));
    }

    #[test]
    fn effective_prefix_is_the_narrower_overlap() {
        let county = Scope::parse("450305").unwrap();
        let p = |asked| county.effective_prefix(asked);
        assert_eq!(p(None), Ok(Some("450305".into())));
        assert_eq!(p(Some("45")), Ok(Some("450305".into())));
        assert_eq!(p(Some("450305001")), Ok(Some("450305001".into())));
        assert_eq!(p(Some("4504")), Ok(None));
        assert!(p(Some("45a")).is_err());
        assert!(p(Some("4503050010011")).is_err());
        assert_eq!(
            Scope::everything().effective_prefix(Some("")),
            Ok(Some(String::new()))
        );
    }

    #[test]
    fn id_number_check_digit() {
        // Published GB 11643 example number.
        assert!(IdNumber::parse("11010519491231002X").is_ok());
        assert!(IdNumber::parse("11010519491231002x").is_ok());
        assert!(IdNumber::parse("110105194912310021").is_err());
        assert!(IdNumber::parse("1101051949123100").is_err());
        let id = IdNumber::parse("11010519491231002X").unwrap();
        assert_eq!(id.masked(), "110105********002X");
        assert!(!format!("{id:?}").contains("19491231"));
    }

    #[test]
    fn phone_and_text_and_money() {
        assert!(Phone::parse("13800138000").is_ok());
        assert!(Phone::parse("+86 138-0013-8000").is_ok());
        assert!(Phone::parse("12ab").is_err());
        assert!(Text::parse("  ").is_err());
        assert_eq!(Text::parse(" a ").unwrap().as_str(), "a");
        assert!(Text::parse("a\u{0}b").is_err());
        assert!(Text::parse("a\u{7}b").is_err());
        assert!(Text::parse("line\r\nline\tcell").is_ok());
        assert!(AmountFen::new(-1).is_err());
        assert_eq!(AmountFen::new(15_000).unwrap().fen(), 15000);
    }

    #[test]
    fn enums_parse_their_wire_names() {
        assert_eq!(Role::parse("village"), Ok(Role::Village));
        assert!(Role::parse("county").is_err());
        assert_eq!(VisitMode::parse("holiday"), Ok(VisitMode::Holiday));
        assert_eq!(
            serde_json::to_string(&SelfCare::SemiDependent).unwrap(),
            "\"semi_dependent\""
        );
    }
}
