//! The lists as XLSX workbooks (`format=xlsx` of `GET /api/v1/families`,
//! `/overdue-visits` and `/coverage-gaps`, and the web pages' "下载 Excel"):
//! one sheet with the list — Chinese column headers, a frozen header row
//! with a filter, column widths, dates as Excel dates, yes/no as 是/否 —
//! and a second sheet, `说明`, with the list's parameters (filters, when it
//! was exported, how many rows).
//!
//! A workbook holds exactly the fields the JSON list answers (family ids,
//! village codes, contact names, dates): no member's name, ID number or
//! phone. Every text cell passes through [`neutralise`].

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use nuanxin_projections::case_file::CaseSummary;
use nuanxin_projections::schedule::{CoverageGap, DueItem};
use rust_xlsxwriter::{
    DocProperties, ExcelDateTime, Format, FormatAlign, FormatBorder, Workbook, XlsxError,
};

use crate::export::neutralise;

/// The most rows one workbook holds; a longer list is refused (narrow it
/// with a village-code prefix).
pub const MAX_ROWS: usize = 100_000;

/// What a workbook says about itself: its title (document property and
/// the first line of `说明`), the instant it was made, and the parameters
/// of the list, as (label, value) lines of `说明`.
#[derive(Debug, Clone)]
pub struct About {
    pub title: String,
    pub created: DateTime<Utc>,
    pub params: Vec<(String, String)>,
}

/// One cell of a list's row.
enum Cell {
    Text(String),
    Day(Option<NaiveDate>),
    Number(i64),
    YesNo(bool),
}

/// A column: its Chinese header, its width (in characters) and its cell.
struct Column<T> {
    header: &'static str,
    width: f64,
    cell: fn(&T) -> Cell,
}

/// `village` / `township` as the web app names the role.
fn role(role: &str) -> String {
    match role {
        "village" => "村级联系人".to_owned(),
        "township" => "乡镇联系人".to_owned(),
        other => other.to_owned(),
    }
}

const CASES: &[Column<CaseSummary>] = &[
    Column {
        header: "家庭编号",
        width: 38.0,
        cell: |s| Cell::Text(s.id.to_string()),
    },
    Column {
        header: "村级区划代码",
        width: 16.0,
        cell: |s| Cell::Text(s.village_code.clone()),
    },
    Column {
        header: "状态",
        width: 9.0,
        cell: |s| {
            Cell::Text(match s.status.as_str() {
                "open" => "在册".to_owned(),
                "closed" => "已结案".to_owned(),
                other => other.to_owned(),
            })
        },
    },
    Column {
        header: "有重点人员",
        width: 11.0,
        cell: |s| Cell::YesNo(s.key_person),
    },
    Column {
        header: "村级联系人",
        width: 14.0,
        cell: |s| Cell::Text(s.village_contact_name.clone().unwrap_or_default()),
    },
    Column {
        header: "乡镇联系人",
        width: 14.0,
        cell: |s| Cell::Text(s.township_contact_name.clone().unwrap_or_default()),
    },
    Column {
        header: "村级下次应访",
        width: 14.0,
        cell: |s| Cell::Day(s.village_next_due_on),
    },
    Column {
        header: "乡镇下次应访",
        width: 14.0,
        cell: |s| Cell::Day(s.township_next_due_on),
    },
];

const DUE: &[Column<DueItem>] = &[
    Column {
        header: "家庭编号",
        width: 38.0,
        cell: |i| Cell::Text(i.family_id.to_string()),
    },
    Column {
        header: "村级区划代码",
        width: 16.0,
        cell: |i| Cell::Text(i.village_code.clone()),
    },
    Column {
        header: "联系人岗位",
        width: 12.0,
        cell: |i| Cell::Text(role(&i.role)),
    },
    Column {
        header: "联系人",
        width: 14.0,
        cell: |i| Cell::Text(i.contact.name.clone()),
    },
    Column {
        header: "应访日期",
        width: 12.0,
        cell: |i| Cell::Day(Some(i.due_on)),
    },
    Column {
        header: "逾期天数",
        width: 9.0,
        cell: |i| Cell::Number(i.days_overdue),
    },
    Column {
        header: "上次走访",
        width: 12.0,
        cell: |i| Cell::Day(i.last_visit_on),
    },
    Column {
        header: "上次入户走访",
        width: 13.0,
        cell: |i| Cell::Day(i.last_home_visit_on),
    },
    Column {
        header: "有重点人员",
        width: 11.0,
        cell: |i| Cell::YesNo(i.key_person),
    },
    Column {
        header: "紧急",
        width: 7.0,
        cell: |i| Cell::YesNo(i.urgent),
    },
];

const GAPS: &[Column<CoverageGap>] = &[
    Column {
        header: "家庭编号",
        width: 38.0,
        cell: |g| Cell::Text(g.family_id.to_string()),
    },
    Column {
        header: "村级区划代码",
        width: 16.0,
        cell: |g| Cell::Text(g.village_code.clone()),
    },
    Column {
        header: "缺少村级联系人",
        width: 15.0,
        cell: |g| Cell::YesNo(g.missing_roles.iter().any(|r| r == "village")),
    },
    Column {
        header: "缺少乡镇联系人",
        width: 15.0,
        cell: |g| Cell::YesNo(g.missing_roles.iter().any(|r| r == "township")),
    },
];

/// The case list (`GET /api/v1/families`) on sheet `家庭列表`.
pub fn case_list(items: &[CaseSummary], about: &About) -> Result<Vec<u8>, XlsxError> {
    workbook("家庭列表", CASES, items, about)
}

/// The overdue list (`GET /api/v1/overdue-visits`) on sheet `逾期走访`, in
/// the API's order (the oldest due first).
pub fn overdue_list(items: &[DueItem], about: &About) -> Result<Vec<u8>, XlsxError> {
    workbook("逾期走访", DUE, items, about)
}

/// The coverage gaps (`GET /api/v1/coverage-gaps`) on sheet `联系人空缺`.
pub fn coverage_gaps(items: &[CoverageGap], about: &About) -> Result<Vec<u8>, XlsxError> {
    workbook("联系人空缺", GAPS, items, about)
}

/// An Excel date, when the day lies within Excel's calendar (1900–9999).
fn excel_day(day: NaiveDate) -> Option<ExcelDateTime> {
    let year = u16::try_from(day.year())
        .ok()
        .filter(|y| (1900..=9999).contains(y))?;
    ExcelDateTime::from_ymd(year, day.month() as u8, day.day() as u8).ok()
}

fn workbook<T>(
    name: &str,
    columns: &[Column<T>],
    items: &[T],
    about: &About,
) -> Result<Vec<u8>, XlsxError> {
    let mut book = Workbook::new();
    let created = ExcelDateTime::from_timestamp(about.created.timestamp())
        .or_else(|_| ExcelDateTime::from_timestamp(0))?;
    book.set_properties(
        &DocProperties::new()
            .set_title(&about.title)
            .set_author("Nuanxin")
            .set_creation_datetime(&created),
    );
    let header = Format::new()
        .set_bold()
        .set_align(FormatAlign::Center)
        .set_border_bottom(FormatBorder::Thin)
        .set_background_color("#F2F2F2");
    let text = Format::new().set_num_format("@");
    let day = Format::new().set_num_format("yyyy-mm-dd");
    let bold = Format::new().set_bold();

    let sheet = book.add_worksheet();
    sheet.set_name(name)?;
    for (c, column) in columns.iter().enumerate() {
        let c = c as u16;
        sheet.write_string_with_format(0, c, column.header, &header)?;
        sheet.set_column_width(c, column.width)?;
    }
    sheet.set_freeze_panes(1, 0)?;
    for (i, item) in items.iter().enumerate() {
        let r = i as u32 + 1;
        for (c, column) in columns.iter().enumerate() {
            let c = c as u16;
            match (column.cell)(item) {
                Cell::Text(s) => {
                    if !s.is_empty() {
                        sheet.write_string_with_format(r, c, neutralise(&s), &text)?;
                    }
                }
                Cell::Day(None) => {}
                Cell::Day(Some(d)) => match excel_day(d) {
                    Some(x) => {
                        sheet.write_date_with_format(r, c, &x, &day)?;
                    }
                    None => {
                        sheet.write_string_with_format(r, c, d.to_string(), &text)?;
                    }
                },
                Cell::Number(n) => {
                    sheet.write_number(r, c, n as f64)?;
                }
                Cell::YesNo(b) => {
                    sheet.write_string(r, c, if b { "是" } else { "否" })?;
                }
            }
        }
    }
    if !columns.is_empty() {
        sheet.autofilter(0, 0, items.len() as u32, columns.len() as u16 - 1)?;
    }

    let notes = book.add_worksheet();
    notes.set_name("说明")?;
    notes.set_column_width(0, 20)?;
    notes.set_column_width(1, 48)?;
    notes.write_string_with_format(0, 0, neutralise(&about.title), &bold)?;
    let mut r = 2;
    for (label, value) in &about.params {
        notes.write_string_with_format(r, 0, neutralise(label), &bold)?;
        notes.write_string_with_format(r, 1, neutralise(value), &text)?;
        r += 1;
    }
    notes.write_string_with_format(r, 0, "行数", &bold)?;
    notes.write_number(r, 1, items.len() as f64)?;
    notes.write_string(
        r + 2,
        0,
        "本表只含列表本身的字段，不含家庭成员的姓名、身份证号和电话。",
    )?;
    book.save_to_buffer()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excel_days_stay_within_excels_calendar() {
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
        assert!(excel_day(d(2026, 6, 30)).is_some());
        assert!(excel_day(d(1900, 1, 1)).is_some());
        assert!(excel_day(d(10_000, 1, 1)).is_none());
        assert!(excel_day(d(1899, 12, 31)).is_none());
        assert!(excel_day(d(-5, 1, 1)).is_none());
    }
}
