//! Property tests of the value types: every parser agrees exactly with the
//! pattern the OpenAPI document publishes for it (so a client, or a
//! conformance suite, generating from the document sends what the server
//! takes), never panics, and never lets personal data into its messages.

use chrono::{Datelike, Days, NaiveDate};
use nuanxin_domain::values::*;
use proptest::prelude::*;
use regex::Regex;

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("the published pattern compiles")
}

/// Strings that look like the real thing about half of the time: drawn
/// from the pattern, or arbitrary.
fn near(pattern: &'static str) -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::string::string_regex(pattern.trim_start_matches('^').trim_end_matches('$'))
            .expect("pattern"),
        "[0-9]{0,14}",
        any::<String>(),
    ]
}

/// An ID number built by the rules of GB 11643.
fn id_number(region: &str, birth: NaiveDate, sequence: u32) -> String {
    let body = format!("{region}{}{sequence:03}", birth.format("%Y%m%d"));
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = body
        .bytes()
        .zip(W)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    format!("{body}{}", b"10X98765432"[(sum % 11) as usize] as char)
}

fn any_day() -> impl Strategy<Value = NaiveDate> {
    (0u64..=73_048).prop_map(|n| EARLIEST_DAY + Days::new(n))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn village_code_parse_is_its_pattern(s in near(VillageCode::PATTERN)) {
        prop_assert_eq!(VillageCode::parse(&s).is_ok(), re(VillageCode::PATTERN).is_match(&s), "{:?}", s);
    }

    #[test]
    fn scope_parse_is_its_pattern(s in near(Scope::PATTERN)) {
        prop_assert_eq!(Scope::parse(&s).is_ok(), re(Scope::PATTERN).is_match(&s), "{:?}", s);
    }

    #[test]
    fn a_village_lies_within_each_of_its_prefixes(s in proptest::string::string_regex(
        VillageCode::PATTERN.trim_start_matches('^').trim_end_matches('$')).unwrap()) {
        let v = VillageCode::parse(&s).unwrap();
        for len in [0, 2, 4, 6, 9, 12] {
            let scope = Scope::parse(&s[..len]).unwrap();
            prop_assert!(v.is_within(&scope));
            prop_assert_eq!(scope.effective_prefix(None).unwrap(), Some(s[..len].to_owned()));
        }
    }

    #[test]
    fn effective_prefix_is_the_overlap(scope in proptest::string::string_regex(
        Scope::PATTERN.trim_start_matches('^').trim_end_matches('$')).unwrap(),
        asked in "[0-9]{0,12}|[0-9a]{0,14}") {
        let scope = Scope::parse(&scope).unwrap();
        let answer = scope.effective_prefix(Some(&asked));
        prop_assert_eq!(answer.is_ok(), re(Scope::ASKED_PATTERN).is_match(&asked));
        if let Ok(Some(p)) = answer {
            // Within the scope, and within what was asked.
            prop_assert!(p.starts_with(scope.as_str()) && p.starts_with(&asked));
        } else if let Ok(None) = answer {
            prop_assert!(!asked.starts_with(scope.as_str()) && !scope.as_str().starts_with(&asked));
        }
    }

    #[test]
    fn phone_parse_is_its_pattern(s in near(Phone::PATTERN)) {
        prop_assert_eq!(Phone::parse(&s).is_ok(), re(Phone::PATTERN).is_match(&s), "{:?}", s);
    }

    #[test]
    fn text_parse_is_its_pattern_and_length(s in prop_oneof![
        near(Text::PATTERN), "[ \t\r\n\u{0}\u{1}\u{85}\u{a0}\u{3000}a]{0,6}"]) {
        let published = re(Text::PATTERN).is_match(&s) && s.chars().count() <= Text::MAX_CHARS;
        prop_assert_eq!(Text::parse(&s).is_ok(), published, "{:?}", s);
        if let Ok(t) = Text::parse(&s) {
            let has_nul = t.as_str().contains('\u{0}');
            prop_assert!(!has_nul);
            prop_assert_eq!(t.as_str(), s.trim());
        }
    }

    #[test]
    fn name_parse_is_its_pattern_and_length(s in prop_oneof![
        near(Name::PATTERN), "[ \t\n\u{0}\u{a0}a]{0,6}", ".{95,105}"]) {
        let published = re(Name::PATTERN).is_match(&s) && s.chars().count() <= Name::MAX_CHARS;
        prop_assert_eq!(Name::parse(&s).is_ok(), published, "{:?}", s);
    }

    #[test]
    fn day_parse_is_its_pattern_and_a_real_day(s in prop_oneof![
        near(DAY_PATTERN), any_day().prop_map(|d| d.to_string()), "[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}"]) {
        let real = NaiveDate::parse_from_str(&s, "%Y-%m-%d").is_ok();
        prop_assert_eq!(parse_day(&s).is_ok(), re(DAY_PATTERN).is_match(&s) && real, "{:?}", s);
        let registration = re(REGISTRATION_DAY_PATTERN).is_match(&s) && real;
        prop_assert_eq!(parse_registration_day(&s).is_ok(), registration, "{:?}", s);
    }

    #[test]
    fn days_round_trip(d in any_day()) {
        prop_assert_eq!(parse_day(&d.to_string()), Ok(d));
    }

    #[test]
    fn id_numbers_built_by_the_rules_parse_and_name_their_holder(
        province in prop::sample::select(PROVINCE_CODES.to_vec()),
        rest in "[0-9]{4}",
        birth in any_day(),
        sequence in 0u32..1000,
        lower_x in any::<bool>(),
    ) {
        let mut s = id_number(&format!("{province}{rest}"), birth, sequence);
        if lower_x {
            s = s.to_ascii_lowercase();
        }
        let id = IdNumber::parse(&s).unwrap();
        prop_assert!(re(IdNumber::PATTERN).is_match(&s));
        prop_assert_eq!(id.birth_date(), birth);
        let sex = if sequence % 2 == 1 { Sex::Male } else { Sex::Female };
        prop_assert_eq!(id.sex(), sex);
        prop_assert!(id.check_holder(birth, sex).is_ok());
        let other = if sex == Sex::Male { Sex::Female } else { Sex::Male };
        prop_assert!(id.check_holder(birth, other).is_err());
        let next = birth.succ_opt().unwrap();
        prop_assert!(id.check_holder(next, sex).is_err());
        // Masking hides the birth date and sequence.
        let masked = id.masked();
        prop_assert!(!masked.contains(&birth.format("%Y%m%d").to_string()));
        prop_assert_eq!(masked.len(), 18);
        let debug = format!("{:?}", id);
        prop_assert!(!debug.contains(&s[6..14]));
    }

    #[test]
    fn id_number_parse_implies_its_pattern_and_names_no_input(s in near(IdNumber::PATTERN)) {
        match IdNumber::parse(&s) {
            Ok(id) => {
                prop_assert!(re(IdNumber::PATTERN).is_match(&s), "{:?}", s);
                prop_assert!((1900..=2099).contains(&id.birth_date().year()));
            }
            Err(e) => prop_assert!(s.len() < 4 || !e.0.contains(s.as_str())),
        }
    }

    #[test]
    fn a_wrong_check_character_is_refused(
        birth in any_day(), sequence in 0u32..1000, wrong in 0usize..10) {
        let good = id_number("450305", birth, sequence);
        let replacement = b"0123456789X"[if good.as_bytes()[17] == b"0123456789X"[wrong] { 10 - usize::from(wrong == 10) } else { wrong }] as char;
        let bad = format!("{}{replacement}", &good[..17]);
        prop_assume!(bad != good);
        prop_assert!(IdNumber::parse(&bad).is_err());
    }

    #[test]
    fn money_is_bounded(fen in any::<i64>()) {
        prop_assert_eq!(AmountFen::new(fen).is_ok(), (0..=AmountFen::MAX).contains(&fen));
    }

    #[test]
    fn enums_parse_exactly_their_names(s in "[a-z_]{0,24}") {
        prop_assert_eq!(Role::parse(&s).is_ok(), Role::ALL.iter().any(|r| r.as_str() == s));
        prop_assert_eq!(VisitMode::parse(&s).is_ok(), VisitMode::ALL.iter().any(|r| r.as_str() == s));
        prop_assert_eq!(UserRole::parse(&s).is_ok(), UserRole::ALL.iter().any(|r| r.as_str() == s));
    }
}

#[test]
fn enums_round_trip_through_their_names_and_serde() {
    for r in Role::ALL {
        assert_eq!(Role::parse(r.as_str()), Ok(*r));
        assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
    }
    for c in Category::ALL {
        assert_eq!(Category::parse(c.as_str()), Ok(*c));
        assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
    }
    for s in SelfCare::ALL {
        assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
    }
    for s in ElderlyCareService::ALL {
        assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
    }
    for s in AssistanceArea::ALL {
        assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
    }
}
