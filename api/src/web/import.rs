//! `/import`: importing an association's register (台账) in the web app,
//! as `nuanxin import families FILE` does on the command line
//! (`nuanxin_infra::import`: the same reading, checks, idempotency keys and
//! error report; docs/import.md).
//!
//! - `GET /import`: the upload form — a `.xlsx` or `.csv` file (at most
//!   [`MAX_UPLOAD`] bytes) and "仅检查，不导入" (a dry run).
//! - `POST /import` (`multipart/form-data`, with the form token): reads the
//!   file, checks every row, and records the good ones **as the signed-in
//!   user** (rows outside their scope are rejected one by one); answers the
//!   summary (imported, already imported, rejected), the columns ignored and
//!   the errors (row, column, message — never a value from the file).
//! - `POST /import/errors.csv`: the error report as CSV, the same file as
//!   the command's `--errors` (the result page posts the errors it showed
//!   back, with the form token; nothing is kept on the server).
//!
//! Only users who may record (caseworkers, admins) may import; others get
//! the 403 page. A file that is not `.xlsx`/`.csv`, cannot be read or lacks
//! a required column imports nothing and says why. Once the rows are
//! checked the import runs in a task of its own, so a browser that gives
//! up waiting does not cut it short (running the file again is safe: rows
//! already imported are counted as such).

use std::time::Duration;

use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Multipart, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup};
use nuanxin_infra::export::Csv;
use nuanxin_infra::import::{self, FileKind, ImportError, RowError, Summary};

use super::form::{self, csrf_field, FormState};
use super::layout::{message_page, page};
use super::session::{same, same_origin, WebPost, WebUser};
use super::text::{t, tf, Lang};
use crate::state::AppState;

/// The page's path.
pub const PATH: &str = "/import";
/// The largest file taken (20 MB).
pub const MAX_UPLOAD: usize = 20 * 1024 * 1024;
/// How long an upload's body may take to arrive (a register over a slow
/// line), instead of the server's body timeout when that is shorter.
pub const UPLOAD_TIMEOUT: Duration = Duration::from_secs(300);
/// Errors listed on the page (the error report holds them all).
const SHOWN_ERRORS: usize = 500;

pub fn router() -> Router<AppState> {
    // Room for the form's other fields and the multipart framing.
    let upload = DefaultBodyLimit::max(MAX_UPLOAD + 64 * 1024);
    Router::new()
        .route(PATH, get(show).post(upload_file).layer(upload))
        .route(
            "/import/errors.csv",
            post(errors_csv).layer(DefaultBodyLimit::max(4 * MAX_UPLOAD)),
        )
}

/// `GET /import`: the upload form.
async fn show(who: WebUser) -> Response {
    if !who.is_recorder() {
        return super::supervisor::forbidden(&who);
    }
    import_page(&who, &FormState::default(), None, StatusCode::OK)
}

/// The page: the outcome of an upload (if any) above the form.
fn import_page(
    who: &WebUser,
    state: &FormState,
    outcome: Option<Markup>,
    status: StatusCode,
) -> Response {
    let lang = who.lang;
    let mut r = page(
        who,
        t(lang, "import.title"),
        PATH,
        html! {
            @if let Some(outcome) = outcome { (outcome) }
            @if let Some(m) = &state.message { div.alert-box role="alert" { (m) } }
            p { (t(lang, "import.intro")) }
            p.hint { (t(lang, "import.required")) }
            form method="post" action=(PATH) enctype="multipart/form-data" {
                (csrf_field(who))
                label for="file" { (t(lang, "import.file")) }
                input #file type="file" name="file" accept=".xlsx,.csv" required aria-describedby="file-hint";
                p.hint #file-hint { (tf(lang, "import.file_hint", &[&(MAX_UPLOAD / 1024 / 1024)])) }
                (form::checkbox(lang, state, "dry_run", t(lang, "import.dry_run")))
                div.actions { button type="submit" { (t(lang, "import.submit")) } }
            }
        },
    );
    *r.status_mut() = status;
    r
}

/// The form shown again with `message` (nothing was imported).
fn refused(who: &WebUser, dry_run: bool, status: StatusCode, message: String) -> Response {
    let mut state = FormState::with(&[("dry_run", if dry_run { "true" } else { "" }.to_owned())]);
    state.message = Some(message);
    import_page(who, &state, None, status)
}

/// What the form sent.
struct Upload {
    csrf: String,
    dry_run: bool,
    file: Option<(String, Vec<u8>)>,
}

/// Why an upload could not be read.
enum UploadError {
    TooLarge,
    Broken,
}

async fn read_upload(multipart: &mut Multipart) -> Result<Upload, UploadError> {
    let failed = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            UploadError::TooLarge
        } else {
            UploadError::Broken
        }
    };
    let mut upload = Upload {
        csrf: String::new(),
        dry_run: false,
        file: None,
    };
    while let Some(mut field) = multipart.next_field().await.map_err(failed)? {
        match field.name().unwrap_or_default() {
            "_csrf" => upload.csrf = field.text().await.map_err(failed)?,
            "dry_run" => upload.dry_run = !field.text().await.map_err(failed)?.is_empty(),
            "file" => {
                let name = field.file_name().unwrap_or_default().to_owned();
                let mut bytes = Vec::new();
                while let Some(chunk) = field.chunk().await.map_err(failed)? {
                    if bytes.len() + chunk.len() > MAX_UPLOAD {
                        return Err(UploadError::TooLarge);
                    }
                    bytes.extend_from_slice(&chunk);
                }
                upload.file = Some((name, bytes));
            }
            _ => while field.chunk().await.map_err(failed)?.is_some() {},
        }
    }
    Ok(upload)
}

/// `POST /import`: check the file's rows and, unless a dry run, import the
/// good ones as the signed-in user.
async fn upload_file(State(state): State<AppState>, req: Request) -> Response {
    let (mut parts, body) = req.into_parts();
    let who = match WebUser::from_request_parts(&mut parts, &state).await {
        Ok(who) => who,
        Err(r) => return r,
    };
    let lang = who.lang;
    if !who.is_recorder() {
        return super::supervisor::forbidden(&who);
    }
    let csrf_refused = || {
        (
            StatusCode::FORBIDDEN,
            message_page(lang, "error.csrf_title", "error.csrf"),
        )
            .into_response()
    };
    if !same_origin(&parts.headers) {
        return csrf_refused();
    }
    let mut multipart =
        match Multipart::from_request(Request::from_parts(parts, body), &state).await {
            Ok(m) => m,
            Err(_) => {
                return refused(
                    &who,
                    false,
                    StatusCode::BAD_REQUEST,
                    t(lang, "import.no_file").into(),
                )
            }
        };
    let upload = match read_upload(&mut multipart).await {
        Ok(u) => u,
        Err(UploadError::TooLarge) => {
            return refused(
                &who,
                false,
                StatusCode::PAYLOAD_TOO_LARGE,
                tf(lang, "import.too_large", &[&(MAX_UPLOAD / 1024 / 1024)]),
            )
        }
        Err(UploadError::Broken) => {
            return refused(
                &who,
                false,
                StatusCode::BAD_REQUEST,
                t(lang, "import.broken").into(),
            )
        }
    };
    if !same(&upload.csrf, &who.csrf) {
        return csrf_refused();
    }
    let dry_run = upload.dry_run;
    let refuse = |status, message: String| refused(&who, dry_run, status, message);
    let Some((name, bytes)) = upload.file.filter(|(n, b)| !n.is_empty() || !b.is_empty()) else {
        return refuse(StatusCode::BAD_REQUEST, t(lang, "import.no_file").into());
    };
    let Some(kind) = FileKind::of_name(&name) else {
        return refuse(StatusCode::BAD_REQUEST, t(lang, "import.wrong_type").into());
    };

    // Reading and checking every row: work for a blocking thread.
    let scope = who.user.scope.clone();
    let today = state.core().today();
    let offset = state.core().services().offset;
    let planned = tokio::task::spawn_blocking(move || {
        let table = import::read_bytes(kind, &bytes)?;
        import::plan(&table, &scope, today, offset)
    })
    .await;
    let (rows, summary) = match planned {
        Ok(Ok(planned)) => planned,
        Ok(Err(ImportError::Unreadable(m))) => {
            return refuse(StatusCode::BAD_REQUEST, unreadable(lang, &m));
        }
        Ok(Err(e)) => return failed(&who, &e.to_string()),
        Err(e) => return failed(&who, &e.to_string()),
    };

    // Recording: in a task of its own, which a dropped request does not end.
    let app_state = state.clone();
    let user = who.user.clone();
    let task = tokio::spawn(async move {
        let mut summary = summary;
        import::run(app_state.app(), &user, rows, dry_run, &mut summary, |_| {})
            .await
            .map(|()| summary)
    });
    let mut summary = match task.await {
        Ok(Ok(summary)) => summary,
        Ok(Err(e)) => return failed(&who, &e.to_string()),
        Err(e) => return failed(&who, &e.to_string()),
    };
    summary.errors.sort_by_key(|e| e.row);
    tracing::info!(
        imported = summary.imported,
        already_imported = summary.already_imported,
        rejected = summary.rejected,
        dry_run,
        "a register was imported from the web app"
    );
    let state = FormState::with(&[("dry_run", if dry_run { "true" } else { "" }.to_owned())]);
    import_page(
        &who,
        &state,
        Some(outcome(&who, &summary, dry_run)),
        StatusCode::OK,
    )
}

/// A file that cannot be read: the page's words, and the reader's reason
/// when the catalogue knows it (a missing column, not UTF-8, empty …;
/// another reader's words are not shown in Chinese).
fn unreadable(lang: Lang, reason: &str) -> String {
    let said = crate::i18n::message(reason, lang);
    let known = lang == Lang::En || said.as_ref() != reason;
    if known {
        format!("{}{}", t(lang, "import.unreadable"), said)
    } else {
        t(lang, "import.unreadable_plain").to_owned()
    }
}

/// The import stopped for a reason of the server's (the store): logged,
/// and the page says so (rows recorded so far stay; running the file again
/// imports the rest).
fn failed(who: &WebUser, error: &str) -> Response {
    tracing::error!(error, "a web import failed");
    refused(
        who,
        false,
        StatusCode::INTERNAL_SERVER_ERROR,
        t(who.lang, "import.failed").into(),
    )
}

/// The column an error names, as the register's header says it.
fn column_text(lang: Lang, column: &str) -> String {
    if column == "row" {
        return t(lang, "import.whole_row").to_owned();
    }
    match (lang, import::chinese_header(column)) {
        (Lang::Zh, Some(zh)) => format!("{zh}（{column}）"),
        _ => column.to_owned(),
    }
}

/// The summary, the ignored columns and the errors of an upload.
fn outcome(who: &WebUser, summary: &Summary, dry_run: bool) -> Markup {
    let lang = who.lang;
    let counts: [&dyn std::fmt::Display; 3] = [
        &summary.imported,
        &summary.already_imported,
        &summary.rejected,
    ];
    let report = serde_json::to_string(
        &summary
            .errors
            .iter()
            .map(|e| (e.row, &e.column, &e.message))
            .collect::<Vec<_>>(),
    )
    .unwrap_or_default();
    html! {
        section.import-result aria-labelledby="result" {
            h2 #result { (t(lang, if dry_run { "import.dry_result" } else { "import.result" })) }
            @let line = tf(lang, if dry_run { "import.dry_summary" } else { "import.summary" }, &counts);
            @if summary.rejected == 0 {
                p.flash role="status" { (line) }
            } @else {
                div.alert-box role="status" { (line) }
            }
            @if !summary.ignored_columns.is_empty() {
                p.muted { (tf(lang, "import.ignored", &[&summary.ignored_columns.join(t(lang, "families.list_sep"))])) }
            }
            @if !summary.errors.is_empty() {
                h3 { (t(lang, "import.errors")) }
                p.hint { (t(lang, "import.errors_hint")) }
                form.inline method="post" action="/import/errors.csv" {
                    (csrf_field(who))
                    input type="hidden" name="report" value=(report);
                    button.secondary type="submit" { (t(lang, "import.download_errors")) }
                }
                div.table-wrap {
                    table.import-errors {
                        thead {
                            tr {
                                th.num scope="col" { (t(lang, "import.row")) }
                                th scope="col" { (t(lang, "import.column")) }
                                th scope="col" { (t(lang, "import.message")) }
                            }
                        }
                        tbody {
                            @for e in summary.errors.iter().take(SHOWN_ERRORS) {
                                tr {
                                    td.num { (e.row) }
                                    td { (column_text(lang, &e.column)) }
                                    td { (crate::i18n::message(&e.message, lang)) }
                                }
                            }
                        }
                    }
                }
                @if summary.errors.len() > SHOWN_ERRORS {
                    p.muted { (tf(lang, "import.more_errors", &[&SHOWN_ERRORS, &summary.errors.len()])) }
                }
            }
        }
    }
}

/// The error report, as `nuanxin import families --errors` writes it: one
/// line per problem (`row`, `column`, `message`, `message_zh`), UTF-8 with
/// a byte-order mark for Excel. It holds no value from the file.
pub fn error_report(errors: &[RowError]) -> Vec<u8> {
    let mut csv = Csv::new(true);
    csv.row(["row", "column", "message", "message_zh"]);
    for e in errors {
        let zh = crate::i18n::message(&e.message, crate::i18n::Lang::Zh);
        csv.row([
            e.row.to_string(),
            e.column.clone(),
            e.message.clone(),
            zh.into_owned(),
        ]);
    }
    csv.into_bytes()
}

/// `POST /import/errors.csv`: the errors an upload's page showed, posted
/// back, as the CSV error report.
async fn errors_csv(post: WebPost) -> Response {
    let who = &post.who;
    if !who.is_recorder() {
        return super::supervisor::forbidden(who);
    }
    let Ok(rows) = serde_json::from_str::<Vec<(usize, String, String)>>(post.form.get("report"))
    else {
        return refused(
            who,
            false,
            StatusCode::BAD_REQUEST,
            t(who.lang, "import.broken").into(),
        );
    };
    let errors: Vec<RowError> = rows
        .into_iter()
        .map(|(row, column, message)| RowError {
            row,
            column,
            message,
        })
        .collect();
    let mut r = error_report(&errors).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"import-errors.csv\""),
    );
    r
}
