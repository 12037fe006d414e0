//! The web pages' texts: **one catalogue per language**, `text/zh-CN.toml`
//! and `text/en.toml`, embedded in the binary. Keys are `section.name`
//! (TOML tables of strings, flattened); a template asks [`t`] for a key and
//! never holds a text itself. Problem messages from the API's validation
//! (field errors, refusals) come from the API's catalogue,
//! [`crate::i18n::message`], so a message has one translation.
//!
//! A test checks that both catalogues hold the same keys and that every
//! key the web sources ask for exists.

use std::collections::HashMap;
use std::sync::OnceLock;

use chrono::{Datelike, NaiveDate};

pub use crate::i18n::Lang;

const ZH: &str = include_str!("text/zh-CN.toml");
const EN: &str = include_str!("text/en.toml");

fn flatten(prefix: &str, table: &toml::Table, out: &mut HashMap<String, String>) {
    for (k, v) in table {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::String(s) => {
                out.insert(key, s.clone());
            }
            toml::Value::Table(t) => flatten(&key, t, out),
            // The catalogue test reports anything else.
            _ => {}
        }
    }
}

fn parse(source: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    if let Ok(table) = source.parse::<toml::Table>() {
        flatten("", &table, &mut out);
    }
    out
}

fn catalogue(lang: Lang) -> &'static HashMap<String, String> {
    static ZH_TEXTS: OnceLock<HashMap<String, String>> = OnceLock::new();
    static EN_TEXTS: OnceLock<HashMap<String, String>> = OnceLock::new();
    match lang {
        Lang::Zh => ZH_TEXTS.get_or_init(|| parse(ZH)),
        Lang::En => EN_TEXTS.get_or_init(|| parse(EN)),
    }
}

/// The text of `key` in `lang` (the key itself if missing: the catalogue
/// test makes sure none is).
pub fn t(lang: Lang, key: &str) -> &'static str {
    match catalogue(lang).get(key) {
        Some(s) => s.as_str(),
        None => {
            tracing::warn!(key, "a web text is missing from the catalogue");
            ""
        }
    }
}

/// `key`'s text with each `{}` replaced by the next of `args`.
pub fn tf(lang: Lang, key: &str, args: &[&dyn std::fmt::Display]) -> String {
    let mut out = String::new();
    let mut args = args.iter();
    let mut parts = t(lang, key).split("{}");
    if let Some(first) = parts.next() {
        out.push_str(first);
    }
    for part in parts {
        if let Some(a) = args.next() {
            out.push_str(&a.to_string());
        }
        out.push_str(part);
    }
    out
}

/// The text of an enum value (`category.bereaved`, `mode.home`): `key`'s
/// section and the value, or the value itself if the catalogue has none.
pub fn word(lang: Lang, section: &str, value: &str) -> String {
    catalogue(lang)
        .get(&format!("{section}.{value}"))
        .cloned()
        .unwrap_or_else(|| value.to_owned())
}

/// A date as people write it: 2026年3月1日, or 1 Mar 2026.
pub fn date(lang: Lang, d: NaiveDate) -> String {
    match lang {
        Lang::Zh => format!("{}年{}月{}日", d.year(), d.month(), d.day()),
        Lang::En => d.format("%-d %b %Y").to_string(),
    }
}

/// An instant in China Standard Time, to the minute.
pub fn instant(lang: Lang, at: chrono::DateTime<chrono::Utc>) -> String {
    let local = at.with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8"));
    format!(
        "{} {}",
        date(lang, local.date_naive()),
        local.format("%H:%M")
    )
}

/// Money in fen as yuan: ¥1,234.50.
pub fn money(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let fen = fen.unsigned_abs();
    let yuan = (fen / 100).to_string();
    let mut grouped = String::new();
    for (i, c) in yuan.chars().enumerate() {
        if i > 0 && (yuan.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{sign}¥{grouped}.{:02}", fen % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_catalogues_hold_the_same_keys_and_only_strings() {
        for source in [ZH, EN] {
            let table: toml::Table = source.parse().expect("a catalogue is valid TOML");
            fn strings_only(t: &toml::Table) {
                for (k, v) in t {
                    match v {
                        toml::Value::String(_) => {}
                        toml::Value::Table(t) => strings_only(t),
                        _ => panic!("{k} is not a string"),
                    }
                }
            }
            strings_only(&table);
        }
        let (zh, en) = (parse(ZH), parse(EN));
        let mut only_zh: Vec<_> = zh.keys().filter(|k| !en.contains_key(*k)).collect();
        let mut only_en: Vec<_> = en.keys().filter(|k| !zh.contains_key(*k)).collect();
        only_zh.sort();
        only_en.sort();
        assert!(only_zh.is_empty(), "missing in en.toml: {only_zh:?}");
        assert!(only_en.is_empty(), "missing in zh-CN.toml: {only_en:?}");
        for (k, v) in &zh {
            assert_eq!(
                v.matches("{}").count(),
                en[k].matches("{}").count(),
                "{k}: the languages take different numbers of arguments"
            );
        }
    }

    /// Every `t(…, "key")`, `tf(…, "key", …)` and `key = "…"` style literal
    /// key in the web sources exists in the catalogue.
    #[test]
    fn every_key_the_pages_ask_for_exists() {
        let zh = parse(ZH);
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/web");
        let re = regex::Regex::new(r#"\bt[f]?\(\s*(?:[a-z_.]+,\s*)?"([a-z0-9_.]+)""#).unwrap();
        let mut missing = Vec::new();
        let mut seen = 0;
        // The web sources, and those of the modules split into folders.
        let mut paths = Vec::new();
        let mut dirs = vec![std::path::PathBuf::from(dir)];
        while let Some(d) = dirs.pop() {
            for entry in std::fs::read_dir(d).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    paths.push(path);
                }
            }
        }
        for path in paths {
            let source = std::fs::read_to_string(&path).unwrap();
            for c in re.captures_iter(&source) {
                seen += 1;
                if !zh.contains_key(&c[1]) {
                    missing.push(format!("{}: {}", path.display(), &c[1]));
                }
            }
        }
        assert!(seen > 10, "the scan finds the pages' keys");
        assert!(
            missing.is_empty(),
            "keys not in the catalogue: {missing:#?}"
        );
    }

    #[test]
    fn dates_and_money() {
        let d = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        assert_eq!(date(Lang::Zh, d), "2026年3月1日");
        assert_eq!(date(Lang::En, d), "1 Mar 2026");
        assert_eq!(money(123_450), "¥1,234.50");
        assert_eq!(money(5), "¥0.05");
        assert_eq!(money(100_000_000), "¥1,000,000.00");
    }
}
