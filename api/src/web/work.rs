//! A caseworker's work today (`/`): the visits due for the families in
//! their scope — urgent ones first (a death or an emergency awaiting a home
//! visit, flagged `urgent` by the due list), then the overdue, then those
//! due within the week, each oldest due first as the API orders them — and
//! the open alerts on those families, with the counts at the top. Read as the API's due list
//! (`GET /api/v1/due-visits`) and alert list read them; each item links to
//! the family's case file and to the visit form for its role. Laid out for
//! a 360-px phone.

use axum::extract::{RawQuery, State};
use axum::response::Response;
use axum::Router;
use chrono::{Days, NaiveDate};
use maud::{html, Markup};
use nuanxin_infra::store::alerts::{Alert, AlertStatus};
use nuanxin_projections::schedule::{DueCursor, DueItem, DueQuery};

use super::families::{family_link, read_failed};
use super::layout::page;
use super::session::WebUser;
use super::text::{date, t, tf, word, Lang};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
}

/// Days ahead a caseworker plans for (the API's default `within_days`).
const WEEK: u64 = 7;
/// Items read per page of a list (the API's largest page).
const PAGE: u32 = 500;
/// Items read at most (the counts say when there are more).
const CAP: usize = 2000;
/// Items shown per section.
const SHOWN: usize = 100;

/// Every visit due on or before `today + WEEK` in the user's scope, oldest
/// due first (at most [`CAP`]); whether there were more.
async fn due_items(
    state: &AppState,
    who: &WebUser,
    today: NaiveDate,
) -> Result<(Vec<DueItem>, bool), nuanxin_infra::ReadError> {
    let due_until = today.checked_add_days(Days::new(WEEK)).unwrap_or(today);
    let mut items: Vec<DueItem> = Vec::new();
    let mut after = None;
    loop {
        let q = DueQuery {
            on: today,
            due_until,
            village_code_prefix: String::new(),
            role: None,
            contact_id: None,
            after,
            limit: PAGE,
        };
        let page = state.reads().due(&who.user, None, q).await?;
        let full = page.len() == PAGE as usize;
        after = page.last().map(|i| DueCursor {
            due_on: i.due_on,
            family_id: i.family_id.to_string(),
            role: i.role.clone(),
        });
        items.extend(page);
        if !full {
            return Ok((items, false));
        }
        if items.len() >= CAP {
            return Ok((items, true));
        }
    }
}

/// The open alerts in the user's scope (at most [`CAP`]); whether there
/// were more.
async fn open_alerts(
    state: &AppState,
    who: &WebUser,
) -> Result<(Vec<Alert>, bool), nuanxin_infra::ReadError> {
    let mut alerts: Vec<Alert> = Vec::new();
    let mut after = None;
    loop {
        let page = state
            .reads()
            .alerts(&who.user, None, Some(AlertStatus::Open), after, PAGE)
            .await?;
        let full = page.len() == PAGE as usize;
        after = page.last().map(|a| a.id);
        alerts.extend(page);
        if !full {
            return Ok((alerts, false));
        }
        if alerts.len() >= CAP {
            return Ok((alerts, true));
        }
    }
}

fn count(n: usize, more: bool) -> String {
    if more {
        format!("{n}+")
    } else {
        n.to_string()
    }
}

fn due_item(lang: Lang, who: &WebUser, i: &DueItem) -> Markup {
    html! {
        li {
            (family_link(lang, i.family_id, &i.village_code))
            div {
                @if i.urgent { span.badge.urgent { (t(lang, "work.urgent")) } " " }
                @if i.overdue {
                    span.badge.overdue { (tf(lang, "families.days_overdue", &[&i.days_overdue])) } " "
                }
                @if i.key_person { span.badge.key { (t(lang, "families.key_badge")) } }
            }
            dl.facts {
                dt { (word(lang, "contact_role", &i.role)) }
                dd { (i.contact.name) }
                dt { (t(lang, "work.due_on")) }
                dd { (date(lang, i.due_on)) }
                dt { (t(lang, "work.last_visit")) }
                dd {
                    @match i.last_visit_on {
                        Some(d) => (date(lang, d)),
                        None => (t(lang, "work.never")),
                    }
                }
            }
            @if who.is_recorder() {
                div.actions.wide {
                    a.button.work-visit href=(format!("/families/{}/visit?role={}", i.family_id, i.role)) {
                        (t(lang, "work.record_visit"))
                    }
                }
            }
        }
    }
}

fn due_section(lang: Lang, who: &WebUser, title: &str, items: &[&DueItem], empty: &str) -> Markup {
    html! {
        h2 { (title) }
        @if items.is_empty() {
            p.muted { (empty) }
        } @else {
            ul.items { @for i in items.iter().take(SHOWN) { (due_item(lang, who, i)) } }
            @if items.len() > SHOWN {
                p { a href="/overdue" { (tf(lang, "work.more", &[&(items.len() - SHOWN)])) } }
            }
        }
    }
}

fn alert_item(lang: Lang, a: &Alert) -> Markup {
    html! {
        li {
            (family_link(lang, a.family_id, &a.village_code))
            @if a.level > 0 { " " span.badge.urgent { (tf(lang, "work.escalated", &[&a.level])) } }
            dl.facts {
                dt { (word(lang, "contact_role", &a.role)) }
                dd { (a.contact_name) }
                dt { (t(lang, "work.due_on")) }
                dd { (date(lang, a.due_on)) }
                dt { (t(lang, "work.raised_on")) }
                dd { (date(lang, a.raised_on)) }
            }
        }
    }
}

/// A caseworker's work today.
pub async fn my_work(State(state): State<AppState>, who: WebUser, _query: RawQuery) -> Response {
    let lang = who.lang;
    let today = state.reads().today();
    let (items, more_due) = match due_items(&state, &who, today).await {
        Ok(r) => r,
        Err(e) => return read_failed(lang, e),
    };
    let (alerts, more_alerts) = match open_alerts(&state, &who).await {
        Ok(r) => r,
        Err(e) => return read_failed(lang, e),
    };
    let (urgent, rest): (Vec<&DueItem>, Vec<&DueItem>) = items.iter().partition(|i| i.urgent);
    let (overdue, week): (Vec<&DueItem>, Vec<&DueItem>) = rest.into_iter().partition(|i| i.overdue);
    let content = html! {
        p.muted { (tf(lang, "work.today", &[&date(lang, today)])) }
        div.stats {
            div.stat { span.n { (count(urgent.len(), more_due)) } (t(lang, "work.count_urgent")) }
            div.stat { span.n { (count(overdue.len(), more_due)) } (t(lang, "work.count_overdue")) }
            div.stat { span.n { (count(week.len(), more_due)) } (t(lang, "work.count_week")) }
            div.stat { span.n { (count(alerts.len(), more_alerts)) } (t(lang, "work.count_alerts")) }
        }
        @if !urgent.is_empty() {
            (due_section(lang, &who, t(lang, "work.urgent_visits"), &urgent, ""))
        }
        (due_section(lang, &who, t(lang, "work.overdue"), &overdue, t(lang, "work.none_overdue")))
        (due_section(lang, &who, t(lang, "work.week"), &week, t(lang, "work.none_week")))
        h2 { (t(lang, "work.alerts")) }
        @if alerts.is_empty() {
            p.muted { (t(lang, "work.none_alerts")) }
        } @else {
            ul.items { @for a in alerts.iter().take(SHOWN) { (alert_item(lang, a)) } }
            @if alerts.len() > SHOWN {
                p { a href="/alerts" { (tf(lang, "work.more", &[&(alerts.len() - SHOWN)])) } }
            }
        }
    };
    page(&who, t(lang, "nav.work"), "/", content)
}
