//! The jurisdiction dashboard (`/` for supervisors and admins): one row per
//! child jurisdiction one level down (county → township → village) with its
//! families, key-person families, dual-contact coverage, overdue items by
//! age and open alerts, the totals, and two small bar charts. `?prefix=`
//! drills down; a prefix outside the user's scope is "not found".
//!
//! The figures are the period report's (`Reads::report_summary`, the
//! report of 1 January to today as known now: its counts "on `to`" are
//! today's), and the open alerts the alert list's (`Reads::alerts`).
//!
//! Cost: the report folds the whole family log on every request, so the
//! page takes as long as the report (about 6–8 s at 20,000 families on a
//! busy 2-core machine; docs/reports.md measures 17.6 s at 100,000). A
//! per-day tally read model (docs/reports.md, "Cost") would make it fast.

use std::collections::BTreeMap;

use axum::response::Response;
use chrono::{Datelike, NaiveDate};
use maud::{html, Markup};
use nuanxin_domain::Scope;
use nuanxin_infra::alerts::AlertStatus;
use nuanxin_infra::reports::child_len;
use nuanxin_projections::summary::SummaryRow;

use super::{error_page, link, not_found, percent, Params};
use crate::error::ApiError;
use crate::state::AppState;
use crate::web::layout::page;
use crate::web::session::WebUser;
use crate::web::text::{t, tf, Lang};

/// Alerts read per page while counting.
const ALERT_PAGE: u32 = 500;

pub(super) async fn show(state: &AppState, who: &WebUser, query: Option<&str>) -> Response {
    let params = Params::parse(query);
    let scope = who.user.scope.as_str();
    let prefix = match params.get("prefix") {
        None => scope.to_owned(),
        Some(p) => match Scope::parse(&p) {
            Ok(asked) if who.user.scope.covers(&asked) => p,
            _ => return not_found(who),
        },
    };
    let today = state.reads().today();
    let from = NaiveDate::from_ymd_opt(today.year(), 1, 1).unwrap_or(today);
    let report = match state
        .reads()
        .report_summary(&who.user, Some(&prefix), from, today, None)
        .await
    {
        Ok(Some(report)) => report,
        Ok(None) => return not_found(who),
        Err(e) => return error_page(who, e.into()),
    };
    let alerts = match open_alerts(state, who, &prefix).await {
        Ok(a) => a,
        Err(e) => return error_page(who, e),
    };
    let (children, total) = match report.rows.split_last() {
        Some((total, children)) => (children, total.clone()),
        None => (&[][..], SummaryRow::default()),
    };
    let lang = who.lang;
    let title = if prefix.is_empty() {
        t(lang, "nav.dashboard").to_owned()
    } else {
        tf(lang, "supervisor_dashboard.title_of", &[&prefix])
    };
    page(
        who,
        &title,
        "/",
        html! {
            (breadcrumbs(lang, scope, &prefix))
            p.muted { (tf(lang, "supervisor_dashboard.as_of", &[&crate::web::text::date(lang, today)])) }
            (totals(lang, &total, alerts.total))
            (quick_links(lang, &prefix))
            @if !children.is_empty() {
                h2 { (t(lang, "supervisor_dashboard.by_child")) }
                (table(lang, children, &total, &alerts))
            }
            div.grid.two {
                @if !children.is_empty() {
                    section {
                        h2 #coverage-chart { (t(lang, "supervisor_dashboard.coverage_chart")) }
                        (coverage_chart(lang, children))
                    }
                }
                section {
                    h2 #overdue-chart { (t(lang, "supervisor_dashboard.overdue_chart")) }
                    (overdue_chart(lang, &total))
                }
            }
        },
    )
}

/// Open alerts within `prefix`: in all and per child jurisdiction.
struct OpenAlerts {
    total: u64,
    by_child: BTreeMap<String, u64>,
}

async fn open_alerts(
    state: &AppState,
    who: &WebUser,
    prefix: &str,
) -> Result<OpenAlerts, ApiError> {
    let below = child_len(prefix);
    let mut counts = OpenAlerts {
        total: 0,
        by_child: BTreeMap::new(),
    };
    let mut after = None;
    loop {
        let found = state
            .reads()
            .alerts(
                &who.user,
                Some(prefix),
                Some(AlertStatus::Open),
                after,
                ALERT_PAGE,
            )
            .await?;
        for a in &found {
            counts.total += 1;
            if let Some(n) = below.filter(|n| a.village_code.len() >= *n) {
                *counts
                    .by_child
                    .entry(a.village_code[..n].to_owned())
                    .or_default() += 1;
            }
        }
        match found.last() {
            Some(last) if found.len() == ALERT_PAGE as usize => after = Some(last.id),
            _ => return Ok(counts),
        }
    }
}

/// The way back up: every level from the user's scope to `prefix`.
fn breadcrumbs(lang: Lang, scope: &str, prefix: &str) -> Markup {
    let levels: Vec<&str> = [0, 2, 4, 6, 9, 12]
        .into_iter()
        .filter(|l| *l >= scope.len() && *l <= prefix.len())
        .map(|l| &prefix[..l])
        .collect();
    html! {
        @if levels.len() > 1 {
            nav.crumbs aria-label=(t(lang, "supervisor_dashboard.levels")) {
                ol {
                    @for (i, code) in levels.iter().enumerate() {
                        @let label = if code.is_empty() { t(lang, "scope.everything").to_owned() } else { (*code).to_owned() };
                        li {
                            @if i + 1 == levels.len() {
                                span aria-current="page" { (label) }
                            } @else if code.len() == scope.len() {
                                a href="/" { (label) }
                            } @else {
                                a href=(link("/", &[("prefix", code)])) { (label) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn totals(lang: Lang, total: &SummaryRow, open_alerts: u64) -> Markup {
    html! {
        div.stats.five {
            div.stat { span.n { (total.families_open) } (t(lang, "supervisor_dashboard.families")) }
            div.stat { span.n { (total.families_key_person) } (t(lang, "supervisor_dashboard.key_person")) }
            div.stat { span.n { (percent(total.dual_contact_coverage)) } (t(lang, "supervisor_dashboard.coverage")) }
            div.stat { span.n { (total.overdue_at_end) } (t(lang, "supervisor_dashboard.overdue")) }
            div.stat { span.n { (open_alerts) } (t(lang, "supervisor_dashboard.open_alerts")) }
        }
    }
}

fn quick_links(lang: Lang, prefix: &str) -> Markup {
    let with = |path: &str| link(path, &[("prefix", prefix)]);
    html! {
        ul.links {
            li { a href=(with("/overdue")) { (t(lang, "supervisor_dashboard.to_overdue")) } }
            li { a href=(with("/coverage")) { (t(lang, "supervisor_dashboard.to_coverage")) } }
            li { a href=(link("/alerts", &[("status", "open"), ("prefix", prefix)])) { (t(lang, "supervisor_dashboard.to_alerts")) } }
            li { a href=(with("/reports")) { (t(lang, "supervisor_dashboard.to_reports")) } }
        }
    }
}

/// Where a child jurisdiction's row leads: its own dashboard, or for a
/// village the list of its families.
fn child_link(code: &str) -> String {
    if code.len() < 12 {
        link("/", &[("prefix", code)])
    } else {
        link("/families", &[("village_code_prefix", code)])
    }
}

fn table(lang: Lang, children: &[SummaryRow], total: &SummaryRow, alerts: &OpenAlerts) -> Markup {
    let row = |r: &SummaryRow, alerts: u64, head: Markup| {
        html! {
            tr {
                (head)
                td.num { (r.families_open) }
                td.num { (r.families_key_person) }
                td.num { (r.families_dual_contact) " (" (percent(r.dual_contact_coverage)) ")" }
                td.num { (r.overdue_by_age.days_1_7) }
                td.num { (r.overdue_by_age.days_8_30) }
                td.num { (r.overdue_by_age.days_31_plus) }
                td.num { (r.overdue_at_end) }
                td.num { (alerts) }
            }
        }
    };
    html! {
        div.table-wrap {
            table.figures {
                caption.muted { (t(lang, "supervisor_dashboard.table_caption")) }
                thead {
                    tr {
                        th scope="col" rowspan="2" { (t(lang, "supervisor_dashboard.jurisdiction")) }
                        th.num scope="col" rowspan="2" { (t(lang, "supervisor_dashboard.families")) }
                        th.num scope="col" rowspan="2" { (t(lang, "supervisor_dashboard.key_person")) }
                        th.num scope="col" rowspan="2" { (t(lang, "supervisor_dashboard.dual_contact")) }
                        th.num scope="colgroup" colspan="4" { (t(lang, "supervisor_dashboard.overdue_by_age")) }
                        th.num scope="col" rowspan="2" { (t(lang, "supervisor_dashboard.open_alerts")) }
                    }
                    tr {
                        th.num scope="col" { (t(lang, "supervisor_dashboard.days_1_7")) }
                        th.num scope="col" { (t(lang, "supervisor_dashboard.days_8_30")) }
                        th.num scope="col" { (t(lang, "supervisor_dashboard.days_31_plus")) }
                        th.num scope="col" { (t(lang, "supervisor_dashboard.all_overdue")) }
                    }
                }
                tbody {
                    @for r in children {
                        (row(r, alerts.by_child.get(&r.village_code_prefix).copied().unwrap_or(0),
                            html! { th scope="row" { a href=(child_link(&r.village_code_prefix)) { (r.village_code_prefix) } } }))
                    }
                }
                tfoot {
                    (row(total, alerts.total, html! { th scope="row" { (t(lang, "supervisor_dashboard.total")) } }))
                }
            }
        }
    }
}

/// The width of the bars' area of a chart, its label column and row height.
const BAR: f64 = 280.0;
const LABEL: f64 = 112.0;
const ROW: usize = 24;

/// Dual-contact coverage per child jurisdiction, as horizontal bars.
fn coverage_chart(lang: Lang, children: &[SummaryRow]) -> Markup {
    let height = children.len() * ROW + 8;
    html! {
        svg.chart role="img" aria-labelledby="coverage-chart" viewBox=(format!("0 0 460 {height}")) {
            @for (i, r) in children.iter().enumerate() {
                @let y = i * ROW + 4;
                @let width = (r.dual_contact_coverage.clamp(0.0, 1.0) * BAR).round();
                g {
                    title { (r.village_code_prefix) ": " (percent(r.dual_contact_coverage)) }
                    text x="0" y=(y + 15) { (r.village_code_prefix) }
                    rect.track x=(LABEL) y=(y + 3) width=(BAR) height="14" {}
                    rect.bar.low[r.dual_contact_coverage < 0.8] x=(LABEL) y=(y + 3) width=(width) height="14" {}
                    text x=(LABEL + BAR + 6.0) y=(y + 15) { (percent(r.dual_contact_coverage)) }
                }
            }
        }
        p.muted { (t(lang, "supervisor_dashboard.coverage_note")) }
    }
}

/// Overdue items by days overdue, as horizontal bars.
fn overdue_chart(lang: Lang, total: &SummaryRow) -> Markup {
    let ages = [
        (
            "supervisor_dashboard.days_1_7",
            total.overdue_by_age.days_1_7,
        ),
        (
            "supervisor_dashboard.days_8_30",
            total.overdue_by_age.days_8_30,
        ),
        (
            "supervisor_dashboard.days_31_plus",
            total.overdue_by_age.days_31_plus,
        ),
    ];
    let most = ages.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1) as f64;
    let height = ages.len() * ROW + 8;
    html! {
        svg.chart role="img" aria-labelledby="overdue-chart" viewBox=(format!("0 0 460 {height}")) {
            @for (i, (key, n)) in ages.iter().enumerate() {
                @let y = i * ROW + 4;
                @let width = (*n as f64 / most * BAR).round();
                g {
                    title { (t(lang, key)) ": " (n) }
                    text x="0" y=(y + 15) { (t(lang, key)) }
                    rect.track x=(LABEL) y=(y + 3) width=(BAR) height="14" {}
                    rect.bar.overdue x=(LABEL) y=(y + 3) width=(width) height="14" {}
                    text x=(LABEL + BAR + 6.0) y=(y + 15) { (n) }
                }
            }
        }
    }
}
