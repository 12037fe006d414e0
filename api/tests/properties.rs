//! Property tests of what the API parses before the domain sees it: JSON
//! bodies (one value, nothing after it; unknown keys never echoed; valid
//! bodies become commands, each broken field is named), and the grammar of
//! the shared parameters (If-Match, Idempotency-Key, every list's cursor),
//! each checked against the pattern the OpenAPI document publishes.

use chrono::{Days, NaiveDate};
use nuanxin_api::error::ApiError;
use nuanxin_api::extract::parse_json;
use nuanxin_api::routes::dto::{NoteRequest, RegisterFamilyRequest, VisitRequest};
use nuanxin_api::routes::params::*;
use nuanxin_domain::activity::parse_place;
use nuanxin_domain::inspection::parse_jurisdiction;
use nuanxin_domain::values::{
    parse_day, Scope, VillageCode, DAY_FROM_2000_PATTERN, PROVINCE_CODES,
};
use nuanxin_domain::FamilyCommand;
use nuanxin_projections::schedule::DueCursor;
use proptest::prelude::*;
use regex::Regex;
use serde_json::{json, Value};
use uuid::Uuid;

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("pattern compiles")
}

fn from_pattern(pattern: &str) -> impl Strategy<Value = String> {
    proptest::string::string_regex(pattern.trim_start_matches('^').trim_end_matches('$'))
        .expect("pattern")
}

fn is_status(e: &ApiError, status: u16) -> bool {
    matches!(
        (e, status),
        (ApiError::BadRequest(_), 400) | (ApiError::Validation(_), 422)
    )
}

/// Arbitrary JSON values.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(".{0,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// An ID number by the rules of GB 11643.
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

/// A registration body that breaks no rule, with members whose ID numbers
/// describe them.
fn valid_family() -> impl Strategy<Value = Value> {
    (
        from_pattern(VillageCode::PATTERN),
        0u64..16_000,
        prop::collection::vec(
            (any::<bool>(), 0u64..20_000, any::<bool>(), 0u32..500),
            1..=4,
        ),
        "[\\p{Han}A-Za-z][\\p{Han}A-Za-z ]{0,20}",
    )
        .prop_map(|(village, reg, members, name)| {
            let registered = NaiveDate::from_ymd_opt(1980, 1, 1).unwrap() + Days::new(reg);
            let members: Vec<Value> = members
                .into_iter()
                .map(|(male, age_days, with_id, seq)| {
                    // At least 16 years (5,845 days) before registration, born from 1900.
                    let birth = (registered - Days::new(5_845 + age_days))
                        .max(NaiveDate::from_ymd_opt(1900, 1, 1).unwrap());
                    let birth = if birth > registered - Days::new(5_845) {
                        registered - Days::new(5_845)
                    } else {
                        birth
                    };
                    let mut m = json!({"name": name, "sex": if male { "male" } else { "female" },
                                       "birth_date": birth.to_string()});
                    if with_id {
                        let region = format!("{}0305", PROVINCE_CODES[(seq as usize) % 31]);
                        m["id_number"] =
                            json!(id_number(&region, birth, seq * 2 + u32::from(male)));
                    }
                    m
                })
                .collect();
            json!({"category": "bereaved", "village_code": village, "address": name,
                   "registered_on": registered.to_string(), "members": members})
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn any_bytes_parse_or_are_refused_without_panic(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        if let Err(e) = parse_json::<NoteRequest>(&bytes) {
            prop_assert!(is_status(&e, 400) || is_status(&e, 422));
        }
    }

    #[test]
    fn content_after_the_json_value_is_a_400(v in json_value(), junk in "[^ \t\r\n]{1,8}") {
        let mut bytes = serde_json::to_vec(&v).unwrap();
        bytes.push(b' ');
        bytes.extend(junk.as_bytes());
        let r = parse_json::<Value>(&bytes);
        prop_assert!(matches!(r, Err(ApiError::BadRequest(_))), "{:?}", r);
    }

    #[test]
    fn unknown_keys_are_never_echoed(key in "[0-9A-Za-z]{6,18}", nested in any::<bool>()) {
        prop_assume!(!["findings", "needs", "visited_on", "mode", "role"].contains(&key.as_str()));
        let body = if nested {
            json!({"category": "bereaved", "village_code": "450305001001", "address": "x",
                   "registered_on": "2026-01-10",
                   "members": [{"name": "A", "sex": "male", "birth_date": "1950-01-01", key.clone(): 1}]})
        } else {
            json!({"role": "village", "mode": "home", "visited_on": "2026-01-10",
                   "findings": "x", key.clone(): "x"})
        };
        let bytes = serde_json::to_vec(&body).unwrap();
        let err = if nested {
            parse_json::<RegisterFamilyRequest>(&bytes).err()
        } else {
            parse_json::<VisitRequest>(&bytes).err()
        };
        let Some(ApiError::Validation(errors)) = err else {
            return Err(TestCaseError::fail("an unknown key is a 422"));
        };
        let text = format!("{errors:?}");
        prop_assert!(!text.contains(&key), "{}", text);
        let expected = if nested { "members[0]" } else { "body" };
        prop_assert_eq!(&errors[0].field, expected);
    }

    #[test]
    fn valid_registrations_become_commands(body in valid_family()) {
        let req: RegisterFamilyRequest = parse_json(&serde_json::to_vec(&body).unwrap()).unwrap();
        let command = req.into_command(Uuid::now_v7());
        prop_assert!(matches!(command, Ok(FamilyCommand::RegisterFamily { .. })), "{:?} from {}", command.err(), body);
    }

    #[test]
    fn each_broken_field_is_named(body in valid_family(), which in 0usize..5) {
        let mut body = body;
        let field = match which {
            0 => { body["village_code"] = json!("000000000000"); "village_code" }
            1 => { body["registered_on"] = json!("1979-12-31"); "registered_on" }
            2 => { body["members"][0]["birth_date"] = json!("1899-12-31"); "members[0].birth_date" }
            3 => { body["members"][0]["name"] = json!(" \u{0} "); "members[0].name" }
            _ => { body["address"] = json!("x".repeat(4001)); "address" }
        };
        let req: RegisterFamilyRequest = parse_json(&serde_json::to_vec(&body).unwrap()).unwrap();
        match req.into_command(Uuid::now_v7()) {
            Err(ApiError::Validation(errors)) => {
                prop_assert!(errors.iter().any(|e| e.field == field), "{:?}", errors);
            }
            other => return Err(TestCaseError::fail(format!("{field}: {other:?}"))),
        }
    }

    #[test]
    fn if_match_grammar_is_its_pattern(v in prop_oneof![from_pattern(IF_MATCH_PATTERN), "[W/\"0-9+ -]{0,8}"]) {
        prop_assert_eq!(parse_if_match(&v).is_some(), re(IF_MATCH_PATTERN).is_match(&v), "{:?}", v);
    }

    #[test]
    fn idempotency_key_grammar_is_its_pattern(v in prop_oneof![
        from_pattern(IDEMPOTENCY_KEY_PATTERN), "[ -~\t]{0,6}", ".{195,205}"]) {
        prop_assert_eq!(valid_idempotency_key(&v), re(IDEMPOTENCY_KEY_PATTERN).is_match(&v), "{:?}", v);
    }

    #[test]
    fn cursors_decode_exactly_their_patterns(
        id in prop_oneof![from_pattern(IdCursor::PATTERN), "[0-9a-fA-F-]{30,40}"],
        seq in prop_oneof![from_pattern(SequenceCursor::PATTERN), "[+-]?[0-9]{0,21}"],
        pos in prop_oneof![from_pattern(PositionCursor::PATTERN), "[+-]?[0-9]{0,20}"],
        due in prop_oneof![from_pattern(DueListCursor::PATTERN), "[0-9.a-z-]{0,12}"],
    ) {
        prop_assert_eq!(IdCursor::decode(&id).is_some(), re(IdCursor::PATTERN).is_match(&id), "{:?}", id);
        prop_assert_eq!(SequenceCursor::decode(&seq).is_some(), re(SequenceCursor::PATTERN).is_match(&seq), "{:?}", seq);
        prop_assert_eq!(PositionCursor::decode(&pos).is_some(), re(PositionCursor::PATTERN).is_match(&pos), "{:?}", pos);
        prop_assert_eq!(DueListCursor::decode(&due).is_some(), re(DueListCursor::PATTERN).is_match(&due), "{:?}", due);
    }

    #[test]
    fn held_cursors_decode_their_pattern_and_round_trip(
        c in prop_oneof![from_pattern(HeldCursor::PATTERN), "[0-9_a-f-]{0,12}", "[0-9]{1,8}_[0-9a-f-]{30,40}"],
        days in 0u64..80_000,
    ) {
        prop_assert_eq!(HeldCursor::decode(&c).is_some(), re(HeldCursor::PATTERN).is_match(&c), "{:?}", c);
        let on = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap() + Days::new(days);
        let id = Uuid::new_v4();
        let encoded = HeldCursor::encode(on, id);
        prop_assert!(re(HeldCursor::PATTERN).is_match(&encoded));
        prop_assert_eq!(HeldCursor::decode(&encoded), Some((on, id)));
    }

    /// Where an activity is held and the jurisdiction an inspection names:
    /// the parsers accept exactly the published patterns.
    #[test]
    fn places_and_jurisdictions_are_their_patterns(
        s in prop_oneof![
            from_pattern(Scope::PLACE_PATTERN),
            from_pattern(Scope::JURISDICTION_PATTERN),
            from_pattern(Scope::PATTERN),
            "[0-9]{0,13}",
        ],
    ) {
        prop_assert_eq!(parse_place(&s).is_ok(), re(Scope::PLACE_PATTERN).is_match(&s), "{:?}", s);
        prop_assert_eq!(parse_jurisdiction(&s).is_ok(), re(Scope::JURISDICTION_PATTERN).is_match(&s), "{:?}", s);
    }

    /// A date of an activity or inspection that matches its pattern parses
    /// (with `format: date`: a real calendar day).
    #[test]
    fn days_from_2000_match_their_pattern(days in 0u64..80_000) {
        let d = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap() + Days::new(days);
        let s = d.format("%Y-%m-%d").to_string();
        let in_range = d >= NaiveDate::from_ymd_opt(2000, 1, 1).unwrap()
            && d <= NaiveDate::from_ymd_opt(2099, 12, 31).unwrap();
        prop_assert_eq!(re(DAY_FROM_2000_PATTERN).is_match(&s), in_range, "{}", s);
        if in_range {
            prop_assert!(parse_day(&s).is_ok());
        }
    }

    #[test]
    fn due_cursors_round_trip(days in 0u64..80_000, village in any::<bool>()) {
        let c = DueCursor {
            due_on: NaiveDate::from_ymd_opt(1900, 1, 1).unwrap() + Days::new(days),
            family_id: Uuid::new_v4().to_string(),
            role: if village { "village" } else { "township" }.into(),
        };
        prop_assert!(re(DueCursor::PATTERN).is_match(&c.encode()));
        prop_assert_eq!(DueCursor::decode(&c.encode()), Some(c));
    }
}
