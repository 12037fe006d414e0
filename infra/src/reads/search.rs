//! Finding a family by a member's name or ID number, within the reader's
//! scope. What is searched for is personal data, so it never travels in a
//! URL (the web page posts it) and is never logged; every family shown in
//! the answer is written to the access log (`family_search`) first.
//!
//! Names and ID numbers are stored sealed (`crate::privacy`), so the store
//! cannot narrow the candidates: every case of the scope is read, in
//! batches, its members' names and numbers opened in memory and compared.
//! Only members count: text that happens to appear elsewhere in a case (an
//! address, a note, a phone) does not.

use chrono::NaiveDate;
use nuanxin_domain::aggregate::{CaseStatus, FamilyCase};
use uuid::Uuid;

use super::{visible, ReadError, ReadKind, Reads, Viewer};
use crate::store;

/// What a search looks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Needle {
    /// Part of a member's name (compared in lower case).
    Name(String),
    /// A whole ID number, or one as the pages show it masked
    /// (`450305********123X`): `*` stands for any one character.
    IdNumber(String),
    /// The last four characters of an ID number (those a masked number
    /// shows).
    IdSuffix(String),
}

/// The longest text searched for.
pub const MAX_NEEDLE_CHARS: usize = 50;

impl Needle {
    /// What `text` asks for: `None` when it is blank or too long.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        if text.is_empty() || text.chars().count() > MAX_NEEDLE_CHARS {
            return None;
        }
        let id_like = text
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, 'X' | 'x' | '*'));
        let upper = text.to_ascii_uppercase();
        if id_like && text.len() == 18 {
            Some(Needle::IdNumber(upper))
        } else if id_like && text.len() == 4 && !text.contains('*') {
            Some(Needle::IdSuffix(upper))
        } else {
            Some(Needle::Name(text.to_lowercase()))
        }
    }

    /// Whether a member with `name` and ID number `id_number` matches.
    pub fn matches(&self, name: &str, id_number: Option<&str>) -> bool {
        match self {
            Needle::Name(n) => name.to_lowercase().contains(n.as_str()),
            Needle::IdNumber(n) => id_number.is_some_and(|id| {
                id.len() == n.len()
                    && id
                        .bytes()
                        .zip(n.bytes())
                        .all(|(a, b)| b == b'*' || a.eq_ignore_ascii_case(&b))
            }),
            Needle::IdSuffix(n) => {
                id_number.is_some_and(|id| id.to_ascii_uppercase().ends_with(n.as_str()))
            }
        }
    }
}

/// A member of a family found, as the answer shows them.
#[derive(Debug, Clone)]
pub struct FoundMember {
    pub name: String,
    pub birth_date: NaiveDate,
    pub id_number_masked: Option<String>,
    /// Whether this member is the one searched for.
    pub matched: bool,
}

/// A family found.
#[derive(Debug, Clone)]
pub struct FoundFamily {
    pub id: Uuid,
    pub village_code: String,
    /// `open` or `closed`.
    pub status: &'static str,
    pub category: String,
    pub members: Vec<FoundMember>,
}

/// The families found, and whether there were more than were shown.
#[derive(Debug, Clone, Default)]
pub struct Found {
    pub families: Vec<FoundFamily>,
    pub more: bool,
}

/// Candidates read from the store per round.
const BATCH: u32 = 1000;

/// A member's name and ID number, opened.
struct Opened {
    name: String,
    id_number: Option<String>,
}

fn found(id: Uuid, case: &FamilyCase, opened: &[Opened], needle: &Needle) -> Option<FoundFamily> {
    let members: Vec<FoundMember> = case
        .members
        .iter()
        .zip(opened)
        .map(|(m, o)| FoundMember {
            name: o.name.clone(),
            birth_date: m.member.birth_date,
            id_number_masked: o.id_number.as_deref().map(crate::privacy::mask_id_number),
            // An erased member matches nothing (not even "已删除").
            matched: o.name != crate::privacy::ERASED
                && needle.matches(&o.name, o.id_number.as_deref()),
        })
        .collect();
    members.iter().any(|m| m.matched).then(|| FoundFamily {
        id,
        village_code: case
            .village_code
            .as_ref()
            .map(|v| v.to_string())
            .unwrap_or_default(),
        status: match case.status {
            CaseStatus::Open => "open",
            CaseStatus::Closed => "closed",
        },
        category: case.category.map(|c| c.as_str()).unwrap_or_default().into(),
        members,
    })
}

impl Reads {
    /// Up to `limit` families within the viewer's scope with a member
    /// matching `needle`, by family id; each is recorded in the access log
    /// before it is returned.
    pub async fn search_families(
        &self,
        v: &Viewer<'_>,
        needle: &Needle,
        limit: u32,
    ) -> Result<Found, ReadError> {
        let Some(prefix) = self.prefix(v.user, None)? else {
            return Ok(Found::default());
        };
        let mut out = Found::default();
        let mut after = None;
        loop {
            let batch =
                store::case_files::containing(self.core.list_db(), &prefix, "%", after, BATCH)
                    .await?;
            let exhausted = batch.len() < BATCH as usize;
            after = batch.last().map(|(id, _)| *id);
            let batch: Vec<_> = batch
                .into_iter()
                .filter(|(_, stored)| visible(&stored.state, &v.user.scope))
                .collect();
            let mut opened: Vec<Vec<Opened>> = batch
                .iter()
                .map(|(_, stored)| {
                    stored
                        .state
                        .members
                        .iter()
                        .map(|m| Opened {
                            name: m.member.name.clone(),
                            id_number: m.member.id_number.as_ref().map(|n| n.as_str().to_owned()),
                        })
                        .collect()
                })
                .collect();
            self.core
                .keyring()
                .reveal_strings(
                    self.core.db(),
                    opened
                        .iter_mut()
                        .flatten()
                        .flat_map(|o| std::iter::once(&mut o.name).chain(o.id_number.as_mut()))
                        .collect(),
                )
                .await
                .map_err(crate::StoreError::from)?;
            for ((id, stored), opened) in batch.into_iter().zip(&opened) {
                if let Some(family) = found(id, &stored.state, opened, needle) {
                    if out.families.len() == limit as usize {
                        out.more = true;
                        break;
                    }
                    out.families.push(family);
                }
            }
            if exhausted || out.more {
                break;
            }
        }
        for family in &out.families {
            self.record(v, family.id, ReadKind::Search).await?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_search_asks_for() {
        assert_eq!(Needle::parse("  "), None);
        assert_eq!(Needle::parse(&"张".repeat(51)), None);
        assert_eq!(Needle::parse(" 张三 "), Some(Needle::Name("张三".into())));
        assert_eq!(Needle::parse("Zhang"), Some(Needle::Name("zhang".into())));
        assert_eq!(
            Needle::parse("110105********001x"),
            Some(Needle::IdNumber("110105********001X".into()))
        );
        assert_eq!(Needle::parse("001x"), Some(Needle::IdSuffix("001X".into())));
        // Other numbers are searched as names (and match none).
        assert_eq!(Needle::parse("12345"), Some(Needle::Name("12345".into())));
    }

    #[test]
    fn matching_a_member() {
        let id = Some("11010519500301001X");
        let n = |s: &str| Needle::parse(s).unwrap();
        assert!(n("zhang").matches("Zhang San", id));
        assert!(n("张三").matches("张三丰", None));
        assert!(!n("李").matches("张三", id));
        assert!(n("11010519500301001x").matches("x", id));
        assert!(n("110105********001X").matches("x", id));
        assert!(!n("110106********001X").matches("x", id));
        assert!(!n("110105********001X").matches("x", None));
        assert!(n("001X").matches("x", id));
        assert!(!n("0016").matches("x", id));
    }
}
