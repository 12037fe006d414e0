//! Per-jurisdiction counts for the supervisors' dashboard: for each child
//! jurisdiction of a prefix (one level down), the open families, those
//! with both contacts, the key-person families, the overdue visits by age
//! and the open alerts — from the read models as they stand, for one day.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use super::{prefix_upper, Db, LIVE};
use crate::on_pool;

/// The counts of one jurisdiction.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    pub families_open: i64,
    pub families_closed: i64,
    pub both_contacts: i64,
    pub key_person: i64,
    /// Overdue visit obligations by days overdue: 1–7, 8–30, over 30.
    pub overdue: [i64; 3],
    pub open_alerts: i64,
}

impl Counts {
    fn add(&mut self, o: &Counts) {
        self.families_open += o.families_open;
        self.families_closed += o.families_closed;
        self.both_contacts += o.both_contacts;
        self.key_person += o.key_person;
        for i in 0..3 {
            self.overdue[i] += o.overdue[i];
        }
        self.open_alerts += o.open_alerts;
    }

    pub fn overdue_total(&self) -> i64 {
        self.overdue.iter().sum()
    }
}

/// The code length of the jurisdictions one level below a prefix of
/// `len` digits (a village, 12 digits, is its own child).
pub fn child_len(len: usize) -> usize {
    match len {
        0 | 1 => 2,
        2 | 3 => 4,
        4 | 5 => 6,
        6..=8 => 9,
        _ => 12,
    }
}

/// Counts per child jurisdiction of `prefix` on `on`, in code order, and
/// their total.
pub async fn counts(
    db: &Db,
    prefix: &str,
    on: NaiveDate,
) -> Result<(Vec<(String, Counts)>, Counts), sqlx::Error> {
    let len = child_len(prefix.len()) as i32;
    // Overdue by 1–7 days: due on or after d7; 8–30: before d7, on or
    // after d30; over 30: before d30.
    let d7 = on - chrono::Days::new(7);
    let d30 = on - chrono::Days::new(30);
    type FamilyRow = (String, i64, i64, i64, i64);
    type OverdueRow = (String, i64, i64, i64);
    let (f, o, a): (Vec<FamilyRow>, Vec<OverdueRow>, Vec<(String, i64)>) = on_pool!(db, pool, DB => {
        // The prefix's range, on the column `col`.
        let range = |qb: &mut sqlx::QueryBuilder<'_, DB>, col: &str| {
            if !prefix.is_empty() {
                qb.push(format!(" AND {col} >= "))
                    .push_bind(prefix.to_owned())
                    .push(format!(" AND {col} < "))
                    .push_bind(prefix_upper(prefix));
            }
        };
        let mut qb: sqlx::QueryBuilder<'_, DB> = sqlx::QueryBuilder::new("SELECT substr(cf.village_code, 1, ");
        qb.push_bind(len).push(format!(
            ") AS child, \
             SUM(CASE WHEN cf.status = 'open' THEN 1 ELSE 0 END), \
             SUM(CASE WHEN cf.status = 'open' THEN 0 ELSE 1 END), \
             SUM(CASE WHEN cf.status = 'open' AND cf.village_contact_name IS NOT NULL \
                 AND cf.township_contact_name IS NOT NULL THEN 1 ELSE 0 END), \
             SUM(CASE WHEN cf.status = 'open' AND kp.key_person THEN 1 ELSE 0 END) \
             FROM {cf} cf LEFT JOIN {kp} kp ON kp.family_id = cf.family_id AND kp.valid_from <= ",
            cf = LIVE.case_files,
            kp = LIVE.key_periods,
        ));
        qb.push_bind(on).push(" AND kp.valid_to > ").push_bind(on).push(" WHERE 1 = 1");
        range(&mut qb, "cf.village_code");
        qb.push(" GROUP BY child");
        let f = qb.build_query_as().fetch_all(pool).await?;

        let mut qb: sqlx::QueryBuilder<'_, DB> = sqlx::QueryBuilder::new("SELECT substr(village_code, 1, ");
        qb.push_bind(len)
            .push(") AS child, SUM(CASE WHEN due_on >= ")
            .push_bind(d7)
            .push(" THEN 1 ELSE 0 END), SUM(CASE WHEN due_on < ")
            .push_bind(d7)
            .push(" AND due_on >= ")
            .push_bind(d30)
            .push(" THEN 1 ELSE 0 END), SUM(CASE WHEN due_on < ")
            .push_bind(d30)
            .push(format!(" THEN 1 ELSE 0 END) FROM {} WHERE valid_from <= ", LIVE.schedule))
            .push_bind(on)
            .push(" AND valid_to > ")
            .push_bind(on)
            .push(" AND due_on < ")
            .push_bind(on);
        range(&mut qb, "village_code");
        qb.push(" GROUP BY child");
        let o = qb.build_query_as().fetch_all(pool).await?;

        let mut qb: sqlx::QueryBuilder<'_, DB> = sqlx::QueryBuilder::new("SELECT substr(village_code, 1, ");
        qb.push_bind(len).push(") AS child, COUNT(*) FROM alerts WHERE status = 'open'");
        range(&mut qb, "village_code");
        qb.push(" GROUP BY child");
        let a = qb.build_query_as().fetch_all(pool).await?;
        (f, o, a)
    });
    let mut by: BTreeMap<String, Counts> = BTreeMap::new();
    for (child, open, closed, covered, key) in f {
        let c = by.entry(child).or_default();
        c.families_open = open;
        c.families_closed = closed;
        c.both_contacts = covered;
        c.key_person = key;
    }
    for (child, a, b, c) in o {
        by.entry(child).or_default().overdue = [a, b, c];
    }
    for (child, n) in a {
        by.entry(child).or_default().open_alerts = n;
    }
    let mut total = Counts::default();
    for c in by.values() {
        total.add(c);
    }
    Ok((by.into_iter().collect(), total))
}
