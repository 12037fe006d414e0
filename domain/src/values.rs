//! Validating value types. Each `parse` either returns a value that carries
//! its rule or a [`ValueError`] whose message is safe to show to the caller:
//! it never echoes the input (which may be personal data).

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a value was rejected. The message never contains the input itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValueError(pub &'static str);

macro_rules! string_newtype {
    ($name:ident) => {
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
        impl TryFrom<String> for $name {
            type Error = ValueError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(&value)
            }
        }
        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }
    };
}

/// A 12-digit administrative division code of a village or community
/// (统计用区划代码): province 2 · city 2 · county 2 · township 3 · village 3.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct VillageCode(String);
string_newtype!(VillageCode);

impl VillageCode {
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        if s.len() != 12 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ValueError("must be a 12-digit village code"));
        }
        if &s[0..2] == "00" {
            return Err(ValueError("must start with a valid province code"));
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
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        if !matches!(s.len(), 0 | 2 | 4 | 6 | 9 | 12) || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ValueError(
                "must be an administrative code prefix of 0, 2, 4, 6, 9 or 12 digits",
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

/// A resident identity card number (居民身份证号码, GB 11643-1999):
/// 17 digits and a check character (`0`-`9` or `X`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IdNumber(String);
string_newtype!(IdNumber);

impl fmt::Debug for IdNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdNumber({})", self.masked())
    }
}

impl IdNumber {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: [u8; 11] = *b"10X98765432";

    pub fn parse(s: &str) -> Result<Self, ValueError> {
        let upper = s.trim().to_ascii_uppercase();
        let bytes = upper.as_bytes();
        if bytes.len() != 18 || !bytes[..17].iter().all(u8::is_ascii_digit) {
            return Err(ValueError(
                "must be 18 characters: 17 digits and a check character",
            ));
        }
        let sum: u32 = bytes[..17]
            .iter()
            .zip(Self::WEIGHTS)
            .map(|(b, w)| u32::from(b - b'0') * w)
            .sum();
        if bytes[17] != Self::CHECK[(sum % 11) as usize] {
            return Err(ValueError("check digit does not match (GB 11643)"));
        }
        Ok(Self(upper))
    }

    /// The number with everything but the first 6 and last 4 characters
    /// hidden, e.g. `450305********123X`.
    pub fn masked(&self) -> String {
        format!("{}********{}", &self.0[..6], &self.0[14..])
    }
}

/// A phone number: digits with an optional leading `+` and `-` or space
/// separators, 5 to 20 digits.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Phone(String);
string_newtype!(Phone);

impl fmt::Debug for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Phone(***)")
    }
}

impl Phone {
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        let s = s.trim();
        let body = s.strip_prefix('+').unwrap_or(s);
        let digits = body.bytes().filter(u8::is_ascii_digit).count();
        if !body
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'-' || b == b' ')
            || !(5..=20).contains(&digits)
        {
            return Err(ValueError("must be a phone number of 5 to 20 digits"));
        }
        Ok(Self(s.to_owned()))
    }
}

/// Free text that must not be empty (after trimming), has an upper bound,
/// and holds no control characters but line breaks and tabs. (A NUL cannot
/// be stored by PostgreSQL at all, and the others are never typed by a
/// person: both stores refuse them alike.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Text(String);
string_newtype!(Text);

impl Text {
    pub const MAX_CHARS: usize = 4000;

    pub fn parse(s: &str) -> Result<Self, ValueError> {
        let t = s.trim();
        if t.is_empty() {
            return Err(ValueError("must not be empty"));
        }
        if t.chars().count() > Self::MAX_CHARS {
            return Err(ValueError("is too long (at most 4000 characters)"));
        }
        if t.chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        {
            return Err(ValueError(
                "must not contain control characters (such as NUL)",
            ));
        }
        Ok(Self(t.to_owned()))
    }
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
    };
}

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
