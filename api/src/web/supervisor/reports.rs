//! `/reports`: the period report form (from, to, jurisdiction, and "as
//! known at" if asked) and the report's main figures in the page, from
//! `Reads::report_summary` as the API computes them. Its CSV and XLSX are
//! `/reports/summary.csv` and `/reports/summary.xlsx`: the API's own
//! handler answers them for the session's user, so the bytes are the API's
//! (the page links them with the report's exact `known_at`, so the file is
//! the table shown).

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue};
use axum::response::Response;
use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, SecondsFormat, Utc};
use maud::{html, Markup};
use nuanxin_domain::values::parse_day;
use nuanxin_infra::ReadError;
use nuanxin_projections::summary::{SummaryReport, SummaryRow};

use super::{caller, error_page, link, percent, Params};
use crate::error::FieldError;
use crate::extract::Query;
use crate::routes::reports::{summary, ReportFormat, SummaryParams};
use crate::state::AppState;
use crate::web::form::{form_message, input, FormState, Kind};
use crate::web::layout::page;
use crate::web::session::WebUser;
use crate::web::text::{date, instant, money, t, tf, Lang};

/// The form's fields.
const FIELDS: [&str; 4] = ["from", "to", "prefix", "known_at"];

/// `GET /reports?from=&to=&prefix=&known_at=`: the form, and the report
/// once asked (`to` sent).
pub(super) async fn show(
    State(state): State<AppState>,
    who: WebUser,
    RawQuery(query): RawQuery,
) -> Response {
    let params = Params::parse(query.as_deref());
    let today = state.reads().today();
    let offset = state.core().services().offset;
    let mut form = FormState::with(&[
        (
            "from",
            params.get("from").unwrap_or_else(|| {
                NaiveDate::from_ymd_opt(today.year(), 1, 1)
                    .unwrap_or(today)
                    .to_string()
            }),
        ),
        ("to", params.get("to").unwrap_or_else(|| today.to_string())),
        (
            "prefix",
            params
                .get("prefix")
                .unwrap_or_else(|| who.user.scope.as_str().to_owned()),
        ),
        ("known_at", params.get("known_at").unwrap_or_default()),
    ]);
    let mut report = None;
    if params.has("to") {
        match asked(&form, offset) {
            Err(errors) => form.errors = errors,
            Ok((from, to, known_at)) => {
                let prefix = Some(form.value("prefix")).filter(|p| !p.is_empty());
                match state
                    .reads()
                    .report_summary(&who.user, prefix, from, to, known_at)
                    .await
                {
                    Ok(Some(r)) => report = Some(r),
                    Ok(None) => form
                        .errors
                        .push(field("prefix", "that jurisdiction is outside your scope")),
                    Err(ReadError::Invalid { field: f, message }) => {
                        let f = if f == "village_code_prefix" {
                            "prefix"
                        } else {
                            f
                        };
                        form.errors.push(field(f, message));
                    }
                    Err(e) => return error_page(&who, e.into()),
                }
            }
        }
    }
    let lang = who.lang;
    let mut r = page(
        &who,
        t(lang, "nav.reports"),
        "/reports",
        html! {
            form method="get" action="/reports" {
                (form_message(lang, &form, &FIELDS))
                div.grid.two {
                    div { (input(lang, &form, "from", t(lang, "supervisor_reports.from"), Kind::Date, true)) }
                    div { (input(lang, &form, "to", t(lang, "supervisor_reports.to"), Kind::Date, true)) }
                    div { (input(lang, &form, "prefix", t(lang, "supervisor_reports.prefix"), Kind::Text, false)) }
                    div { (known_at_field(lang, &form)) }
                }
                div.actions { button type="submit" { (t(lang, "supervisor_reports.make")) } }
            }
            @if let Some(report) = &report { (shown(lang, report)) }
        },
    );
    if !form.errors.is_empty() {
        *r.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
    }
    r
}

fn field(name: &str, message: &str) -> FieldError {
    FieldError {
        field: name.to_owned(),
        message: message.to_owned(),
    }
}

/// The optional "as known at" field: a local date and time.
fn known_at_field(lang: Lang, form: &FormState) -> Markup {
    let error = form.errors.iter().find(|e| e.field == "known_at");
    html! {
        label for="known_at" { (t(lang, "supervisor_reports.known_at")) span.hint { " " (t(lang, "form.optional")) } }
        input #known_at type="datetime-local" name="known_at" value=(form.value("known_at"))
            aria-invalid=[error.is_some().then_some("true")]
            aria-describedby=[error.is_some().then_some("known_at-error")];
        @if let Some(e) = error {
            p.field-error #known_at-error role="alert" { (crate::i18n::message(&e.message, lang)) }
        }
        p.hint { (t(lang, "supervisor_reports.known_at_hint")) }
    }
}

/// An "as known at" value as RFC 3339: a form's local date and time
/// (`2026-06-30T12:00`) in the server's time zone; anything else as sent.
fn instant_text(s: &str, offset: FixedOffset) -> String {
    ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .and_then(|local| local.and_local_timezone(offset).single())
        .map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, false))
        .unwrap_or_else(|| s.to_owned())
}

/// A report's first and last day, and the instant it counts records to.
type Period = (NaiveDate, NaiveDate, Option<DateTime<Utc>>);

/// The period and instant the form asks for, or the fields' errors.
fn asked(form: &FormState, offset: FixedOffset) -> Result<Period, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut day = |name: &str| match parse_day(form.value(name)) {
        Ok(d) => Some(d),
        Err(e) => {
            errors.push(field(name, e.0));
            None
        }
    };
    let (from, to) = (day("from"), day("to"));
    let known_at = Some(form.value("known_at"))
        .filter(|s| !s.is_empty())
        .and_then(
            |s| match DateTime::parse_from_rfc3339(&instant_text(s, offset)) {
                Ok(t) => Some(t.with_timezone(&Utc)),
                Err(_) => {
                    errors.push(field(
                        "known_at",
                        "must be an RFC 3339 instant, e.g. 2026-03-01T08:30:00+08:00",
                    ));
                    None
                }
            },
        );
    match (from, to) {
        (Some(from), Some(to)) if errors.is_empty() => Ok((from, to, known_at)),
        _ => Err(errors),
    }
}

/// The report in the page, with its downloads.
fn shown(lang: Lang, report: &SummaryReport) -> Markup {
    let known_at = report.known_at.to_rfc3339_opts(SecondsFormat::AutoSi, true);
    let params = [
        ("from", report.from.to_string()),
        ("to", report.to.to_string()),
        ("prefix", report.village_code_prefix.clone()),
        ("known_at", known_at),
    ];
    let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let scope = if report.village_code_prefix.is_empty() {
        t(lang, "scope.everything").to_owned()
    } else {
        report.village_code_prefix.clone()
    };
    html! {
        h2 { (tf(lang, "supervisor_reports.heading", &[&scope, &date(lang, report.from), &date(lang, report.to)])) }
        p.muted { (tf(lang, "supervisor_reports.as_known", &[&instant(lang, report.known_at)])) }
        p.actions {
            a.button.secondary href=(link("/reports/summary.csv", &params)) download { (t(lang, "supervisor_reports.csv")) }
            a.button.secondary href=(link("/reports/summary.xlsx", &params)) download { (t(lang, "supervisor_reports.xlsx")) }
        }
        div.table-wrap {
            table.figures {
                thead {
                    tr {
                        th scope="col" { (t(lang, "supervisor_dashboard.jurisdiction")) }
                        @for key in COLUMN_KEYS { th.num scope="col" { (t(lang, key)) } }
                    }
                }
                tbody {
                    @for r in report.rows.iter().filter(|r| !r.total) { (row(lang, r)) }
                }
                tfoot {
                    @for r in report.rows.iter().filter(|r| r.total) { (row(lang, r)) }
                }
            }
        }
        p.muted { (t(lang, "supervisor_reports.more_in_files")) }
    }
}

/// The columns shown in the page (the files hold every column).
const COLUMN_KEYS: [&str; 11] = [
    "supervisor_reports.families_open",
    "supervisor_reports.families_closed",
    "supervisor_reports.key_person",
    "supervisor_reports.dual_contact",
    "supervisor_reports.visits",
    "supervisor_reports.obligations_due",
    "supervisor_reports.met_on_time",
    "supervisor_reports.overdue_at_end",
    "supervisor_reports.emergencies",
    "supervisor_reports.assistance",
    "supervisor_reports.amount",
];

fn row(lang: Lang, r: &SummaryRow) -> Markup {
    let a = &r.assistance;
    let areas = [
        &a.living_support,
        &a.medical,
        &a.elderly_care,
        &a.psychological_comfort,
    ];
    let count: u64 = areas.iter().map(|x| x.count).sum();
    let amount: i64 = areas.iter().map(|x| x.amount_fen).sum();
    html! {
        tr {
            th scope="row" {
                @if r.total { (t(lang, "supervisor_dashboard.total")) } @else { (r.village_code_prefix) }
            }
            td.num { (r.families_open) }
            td.num { (r.families_closed) }
            td.num { (r.families_key_person) }
            td.num { (r.families_dual_contact) " (" (percent(r.dual_contact_coverage)) ")" }
            td.num { (r.visits) }
            td.num { (r.obligations_due) }
            td.num { (r.obligations_met_on_time) }
            td.num { (r.overdue_at_end) }
            td.num { (r.emergencies) " (" (r.emergencies_followed_in_time) ")" }
            td.num { (count) }
            td.num { (money(amount)) }
        }
    }
}

/// `GET /reports/summary.csv?from=&to=&prefix=&known_at=`.
pub(super) async fn csv(state: State<AppState>, who: WebUser, query: RawQuery) -> Response {
    download(state, who, query, ReportFormat::Csv).await
}

/// `GET /reports/summary.xlsx?from=&to=&prefix=&known_at=`.
pub(super) async fn xlsx(state: State<AppState>, who: WebUser, query: RawQuery) -> Response {
    download(state, who, query, ReportFormat::Xlsx).await
}

/// The report file, answered by the API's handler for the page's user.
async fn download(
    State(state): State<AppState>,
    who: WebUser,
    RawQuery(query): RawQuery,
    format: ReportFormat,
) -> Response {
    let params = Params::parse(query.as_deref());
    let offset = state.core().services().offset;
    let asked = SummaryParams {
        from: params.get("from"),
        to: params.get("to"),
        village_code_prefix: params.get("prefix"),
        known_at: params.get("known_at").map(|k| instant_text(&k, offset)),
        format: Some(format),
    };
    match summary(State(state), caller(&who), Query(asked)).await {
        Ok(mut r) => {
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(e) => error_page(&who, e),
    }
}
