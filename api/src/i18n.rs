//! Problem details in the reader's language. Users read Chinese: a request
//! whose `Accept-Language` prefers `zh` gets its problem+json `title`,
//! `detail` and every `errors[].message` in Chinese; any other request gets
//! English, the language the code writes them in.
//!
//! This module is the **one catalogue** of those texts, self-contained (no
//! other module of the crate is used) so that a web UI can take the same
//! one: [`title`] by problem type (the last segment of `type`, e.g.
//! `validation`), [`message`] by the English text of a detail or a field
//! message — the text is the key, so a message keeps one wording in the
//! code and one translation here. Templates with `{}` cover messages built
//! with a field name, a role or a number. Field names (`visited_on`) stay
//! as they are: they are the API's names. A text with no entry stays
//! English (a test in this module fails for any message the code can
//! produce that has none).
//!
//! [`localize`] is the middleware that rewrites problem documents.

use std::borrow::Cow;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::Value;

/// A language of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Zh,
}

impl Lang {
    /// The language an `Accept-Language` header prefers among ours: the
    /// range with the highest `q` that is `zh…` or `en…` (or `*`: English);
    /// English without a header or a match.
    pub fn from_accept_language(value: Option<&str>) -> Lang {
        let Some(value) = value else {
            return Lang::En;
        };
        let mut best: Option<(f32, Lang)> = None;
        for range in value.split(',') {
            let mut parts = range.split(';');
            let tag = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            let q = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let lang = if tag == "zh" || tag.starts_with("zh-") {
                Lang::Zh
            } else if tag == "en" || tag.starts_with("en-") || tag == "*" {
                Lang::En
            } else {
                continue;
            };
            if q > 0.0 && best.is_none_or(|(b, _)| q > b) {
                best = Some((q, lang));
            }
        }
        best.map_or(Lang::En, |(_, lang)| lang)
    }

    /// The `Content-Language` of a translated answer.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh-CN",
        }
    }
}

/// Problem titles by problem type (the slug ending `type`).
const TITLES: &[(&str, &str)] = &[
    ("malformed-request", "请求格式错误"),
    ("unauthorized", "未登录或令牌无效"),
    ("forbidden", "无权进行此操作"),
    ("not-found", "未找到"),
    ("conflict", "与案件当前状态冲突"),
    ("method-not-allowed", "不支持该请求方法"),
    ("request-timeout", "请求超时"),
    ("payload-too-large", "请求内容过大"),
    ("validation", "字段校验未通过"),
    ("internal", "服务器内部错误"),
    ("too-many-connections", "连接过多"),
];

/// Details and field messages: English (the key, `{}` for a variable
/// part) and Chinese.
const MESSAGES: &[(&str, &str)] = &[
    // Authentication, roles, scope.
    ("missing or invalid bearer token", "缺少访问令牌或令牌无效"),
    (
        "your role may read but not record actions",
        "您的角色只能查看，不能记录操作",
    ),
    ("this needs the admin role", "此操作需要管理员角色"),
    (
        "scanning for alerts needs the admin or supervisor role",
        "扫描预警需要管理员或督导角色",
    ),
    (
        "the new user's scope must lie within yours",
        "新用户的管辖范围必须在您的管辖范围之内",
    ),
    // The user lifecycle: disabling users and rotating tokens.
    ("no such user in your scope", "您的管辖范围内没有这个用户"),
    ("you cannot disable yourself", "您不能停用自己的账号"),
    ("the user is already disabled", "该用户已被停用"),
    (
        "the user is disabled and gets no token",
        "该用户已被停用，不能获得新令牌",
    ),
    (
        "the village code is outside your scope",
        "该村级区划代码不在您的管辖范围内",
    ),
    (
        "the target village code is outside your scope",
        "迁入地的村级区划代码不在您的管辖范围内",
    ),
    // Sign-in: logins and passwords.
    (
        "must be 3 to 32 of a-z, 0-9, '.', '_', '-'",
        "须为3到32个字符，只能用小写字母 a-z、数字 0-9 和 . _ -",
    ),
    ("must be at least 10 characters", "至少需要10个字符"),
    ("must be at most 128 characters", "最多128个字符"),
    ("the login is taken", "该登录名已被使用"),
    ("the current password is wrong", "当前密码不正确"),
    ("the user is disabled", "该用户已被停用"),
    // Not found.
    ("no such family in your scope", "您的管辖范围内没有这个家庭"),
    ("no such alert in your scope", "您的管辖范围内没有这条预警"),
    ("no such member in this family", "该家庭没有这个成员"),
    (
        "no such emergency contact in this family",
        "该家庭没有这个紧急联系人",
    ),
    ("no such contact role", "没有这个联系人岗位"),
    ("no such endpoint", "没有这个接口"),
    ("no such resource", "没有这个资源"),
    // The request itself.
    (
        "this endpoint does not take that method",
        "该接口不支持此请求方法",
    ),
    (
        "the request body was not received in time",
        "请求内容未能在规定时间内收到",
    ),
    ("request body is too large", "请求内容过大"),
    (
        "an internal error occurred; if this was a command, retry it with the same Idempotency-Key",
        "服务器内部错误；如果这是一次记录操作，请使用相同的 Idempotency-Key 重试",
    ),
    (
        "the body must be JSON with Content-Type: application/json",
        "请求内容必须是 JSON，并带有 Content-Type: application/json",
    ),
    ("the body could not be read", "无法读取请求内容"),
    ("the body is not valid JSON", "请求内容不是有效的 JSON"),
    (
        "the body has content after its JSON value",
        "JSON 内容之后还有多余内容",
    ),
    ("the query string is malformed", "查询字符串格式错误"),
    ("the query parameter `{}` is invalid", "查询参数 `{}` 无效"),
    (
        "limit must be between 1 and 500",
        "limit 必须在 1 到 500 之间",
    ),
    (
        "If-Match must be a case version number",
        "If-Match 必须是案件版本号",
    ),
    (
        "Idempotency-Key must be 1 to 200 visible ASCII characters",
        "Idempotency-Key 必须是 1 至 200 个可见 ASCII 字符",
    ),
    (
        "as_of must be an RFC 3339 instant",
        "as_of 必须是 RFC 3339 格式的时间",
    ),
    (
        "status must be open or closed",
        "status 必须是 open 或 closed",
    ),
    ("{} must be a UUID", "{} 必须是 UUID"),
    (
        "{} must be an RFC 3339 instant",
        "{} 必须是 RFC 3339 格式的时间",
    ),
    ("from must not be after to", "from 不能晚于 to"),
    // Commands against the case's state.
    (
        "the case is at version {}, not the version given in If-Match",
        "案件当前版本为 {}，与 If-Match 中的版本不符",
    ),
    (
        "the case kept changing under this command; try again",
        "处理期间案件不断被修改，请重试",
    ),
    (
        "this Idempotency-Key was already used with a different request",
        "此 Idempotency-Key 已用于另一个不同的请求",
    ),
    ("the family is not registered", "该家庭尚未登记"),
    ("the family is already registered", "该家庭已经登记"),
    (
        "the case is closed; only reopen is allowed",
        "案件已结案，只能重新开案",
    ),
    ("the case is not closed", "案件尚未结案"),
    (
        "`{}` is before the family's registration date",
        "`{}` 早于家庭登记日期",
    ),
    ("`{}` is in the future", "`{}` 晚于今天"),
    (
        "`{}` is before the contact was assigned",
        "`{}` 早于联系人指派日期",
    ),
    ("`{}` is before the case was closed", "`{}` 早于结案日期"),
    ("no {} contact is assigned", "尚未指派{}联系人"),
    (
        "no action with that id in this case",
        "本案件中没有该 id 的操作",
    ),
    ("that action is already voided", "该操作已被作废"),
    (
        "that kind of action cannot be voided; record the opposite action instead",
        "此类操作不能作废，请改为记录相反的操作",
    ),
    (
        "no member with that id in this family",
        "该家庭没有该 id 的成员",
    ),
    ("the member is deceased", "该成员已去世"),
    (
        "no emergency contact with that id in this family",
        "该家庭没有该 id 的紧急联系人",
    ),
    ("the family is already in that village", "该家庭已在这个村"),
    ("the alert is {}, not open", "该预警状态为{}，不是待处理"),
    (
        "is after today ({}): only today or an earlier day can be scanned",
        "晚于今天（{}）：只能扫描今天或更早的日期",
    ),
    // Field messages.
    ("is required", "必填"),
    ("is invalid", "无效"),
    ("is not one of the allowed values", "不是允许的取值"),
    ("has the wrong type or format", "类型或格式错误"),
    (
        "holds a field that is not allowed (allowed: {})",
        "含有不允许的字段（允许的字段：{}）",
    ),
    (
        "holds a field that is not allowed (it takes no fields)",
        "含有不允许的字段（此处不接受任何字段）",
    ),
    ("must be one of: {}", "必须是以下之一：{}"),
    ("must not be empty", "不能为空"),
    ("is too long", "过长"),
    (
        "is too long (at most {} characters)",
        "过长（最多 {} 个字符）",
    ),
    ("must be at most {} characters", "最多 {} 个字符"),
    (
        "must not contain control characters (other than tab and line breaks)",
        "不能包含控制字符（制表符和换行除外）",
    ),
    (
        "must not contain control characters (such as NUL)",
        "不能包含控制字符（如 NUL）",
    ),
    (
        "must be one line without control characters",
        "必须是一行文字，不能包含控制字符",
    ),
    (
        "must be a 12-digit village code",
        "必须是 12 位村级区划代码",
    ),
    (
        "must start with a valid province code",
        "必须以有效的省级区划代码开头",
    ),
    (
        "must not have a city, county, township or village part of all zeros",
        "市、县、乡镇、村各级代码都不能全为零",
    ),
    (
        "must be an administrative code prefix of 0, 2, 4, 6, 9 or 12 digits",
        "必须是 0、2、4、6、9 或 12 位的区划代码前缀",
    ),
    (
        "must be a village-code prefix of up to 12 digits",
        "必须是不超过 12 位数字的区划代码前缀",
    ),
    (
        "must be on or after `from`, at most ten years later",
        "不能早于 `from`，且最多晚十年",
    ),
    ("reaches before the calendar begins", "早于日历的起点"),
    // `nuanxin import families` (its error report's `message_zh`).
    ("the file cannot be read: {}", "文件无法读取：{}"),
    ("the header has no column `{}`", "表头缺少列 `{}`"),
    ("a CSV file must be UTF-8", "CSV 文件必须是 UTF-8 编码"),
    ("the workbook has no sheet", "工作簿中没有工作表"),
    ("the file is empty", "文件为空"),
    (
        "the list has more than {} rows: narrow it with `village_code_prefix`",
        "列表超过 {} 行，请用 `village_code_prefix` 缩小范围",
    ),
    (
        "the file is not an Excel workbook (.xlsx)",
        "文件不是 Excel 工作簿（.xlsx）",
    ),
    ("repeats the family_ref of row {}", "与第 {} 行的台账编号重复"),
    (
        "is outside the importing user's scope",
        "不在导入用户的管辖范围内",
    ),
    ("is required with the contact's name", "填写联系人姓名时必填"),
    (
        "must be a date YYYY-MM-DD or an Excel date",
        "必须是 YYYY-MM-DD 格式的日期或 Excel 日期",
    ),
    (
        "was imported before with other values",
        "此前已以不同的内容导入",
    ),
    ("is not a year", "不是有效的年份"),
    (
        "must be 18 characters: 17 digits and a check character",
        "必须为 18 位：17 位数字加 1 位校验码",
    ),
    (
        "check digit does not match (GB 11643)",
        "校验码不符（GB 11643）",
    ),
    (
        "must hold a real birth date from 1900 on (digits 7 to 14)",
        "第 7 至 14 位必须是 1900 年以后真实存在的出生日期",
    ),
    ("does not agree with the birth date", "与出生日期不一致"),
    (
        "does not agree with the sex (17th digit)",
        "与性别不一致（第 17 位）",
    ),
    (
        "must be a phone number of 5 to 20 digits",
        "必须是 5 至 20 位数字的电话号码",
    ),
    ("must not be negative", "不能为负数"),
    ("is implausibly large", "数额过大，不合常理"),
    ("must be a date YYYY-MM-DD", "必须是 YYYY-MM-DD 格式的日期"),
    ("must be a day from {} to {}", "必须是 {} 至 {} 之间的日期"),
    ("must be a day from {} on", "必须是 {} 或以后的日期"),
    ("must not be before {}", "不能早于 {}"),
    ("must be a UUID", "必须是 UUID"),
    (
        "must be an RFC 3339 instant, e.g. 2026-03-01T08:30:00+08:00",
        "必须是 RFC 3339 格式的时间，例如 2026-03-01T08:30:00+08:00",
    ),
    ("is already used in this case", "在本案件中已被使用"),
    ("must be between {} and {}", "必须在 {} 到 {} 之间"),
    ("must be unique", "不能重复"),
    (
        "must change at least one of deceased_on, living_alone, self_care, phone",
        "必须至少修改 deceased_on、living_alone、self_care、phone 中的一项",
    ),
    ("must list at least one member", "至少要列出一名成员"),
    ("must list {} to {} members", "必须列出 {} 至 {} 名成员"),
    ("must list at most {} needs", "最多列出 {} 项需求"),
    ("must not be before `from`", "不能早于 `from`"),
    (
        "must be at least {} years before the registration date",
        "必须早于登记日期至少 {} 年",
    ),    // Insurance, activities, inspections, checkpoints.
    (
        "no such insurance claim in this family",
        "该家庭没有这笔保险理赔",
    ),
    (
        "no such record in your scope",
        "您的管辖范围内没有这条记录",
    ),
    (
        "no such activity in your scope",
        "您的管辖范围内没有这项活动",
    ),
    (
        "no such inspection in your scope",
        "您的管辖范围内没有这次检查",
    ),
    (
        "no such follow-up in this inspection",
        "这次检查没有这项整改事项",
    ),
    (
        "no such insurance enrolment in this family",
        "该家庭没有这条参保记录",
    ),
    (
        "`family_ids` names no registered family in your scope at position {}",
        "`family_ids` 第 {} 项不是您管辖范围内已登记的家庭（从 0 开始计）",
    ),
    (
        "checkpoints are for supervisors and admins",
        "审计检查点仅供督导和管理员使用",
    ),
    (
        "inspections are recorded by supervisors and admins",
        "检查只能由督导或管理员记录",
    ),
    (
        "that jurisdiction is outside your scope",
        "该辖区不在您的管辖范围内",
    ),
    (
        "some families are not in your scope",
        "部分家庭不在您的管辖范围内",
    ),
    (
        "the records kept changing under this command; try again",
        "处理期间记录不断被修改，请重试",
    ),
    (
        "no insurance enrolment with that id in this family",
        "该家庭没有该 id 的参保记录",
    ),
    (
        "no insurance claim with that id in this family",
        "该家庭没有该 id 的理赔记录",
    ),
    (
        "the member is already enrolled in that product for that policy year",
        "该成员在该保险年度已参加这一险种",
    ),
    (
        "the enrolment is already withdrawn",
        "该参保记录已退保",
    ),
    (
        "the enrolment was withdrawn before the occurrence: the cover had ended",
        "出险前已退保：保障已经终止",
    ),
    (
        "the claim is already decided; void the decision to decide it again",
        "该理赔已有结论；如需重新决定，请先作废原结论",
    ),
    (
        "the enrolment has claims; void them first",
        "该参保记录下有理赔，请先作废理赔",
    ),
    (
        "is only for a paid claim",
        "仅适用于已赔付的理赔",
    ),
    (
        "is only for a rejected claim",
        "仅适用于被拒赔的理赔",
    ),
    (
        "is required for a paid claim",
        "已赔付的理赔必须填写",
    ),
    (
        "is required for a rejected claim",
        "被拒赔的理赔必须填写",
    ),
    (
        "is after the policy year",
        "晚于保险年度",
    ),
    (
        "is before `occurred_on`",
        "早于 `occurred_on`",
    ),
    (
        "is before the claim was filed",
        "早于理赔申请日期",
    ),
    (
        "is more than one year ahead",
        "超过今天一年以上",
    ),
    (
        "is outside the enrolment's policy year",
        "不在参保的保险年度之内",
    ),
    (
        "is required: the cover is voluntary, so record when the family agreed and who explained it",
        "必填：保险自愿参加，请记录家庭同意的日期和讲解人",
    ),
    (
        "must be a year between 2000 and 2100",
        "必须是 2000 至 2100 之间的年份",
    ),
    (
        "must be at least 1 for a paid claim; record a rejection instead",
        "已赔付的理赔金额至少为 1；否则请记录拒赔",
    ),
    (
        "must not exceed the amount claimed",
        "不能超过申请金额",
    ),
    (
        "the family is already recorded as attending that activity",
        "该家庭已记录为参加了这项活动",
    ),
    (
        "the family is not recorded as attending that activity",
        "该家庭未被记录为参加这项活动",
    ),
    (
        "the family's personal data is erased; nothing more can be recorded for it",
        "该家庭的个人信息已删除，不能再为其记录任何操作",
    ),
    (
        "not an erasure",
        "这不是删除个人信息的操作",
    ),
    (
        "must be ticked: an erasure cannot be undone",
        "必须勾选：删除后无法恢复",
    ),
    (
        "the case is open; close it before erasing the family's personal data",
        "个案尚未结案；请先结案，再删除该家庭的个人信息",
    ),
    (
        "must be purpose_ended, consent_withdrawn or retention_expired",
        "必须是 purpose_ended（处理目的已实现）、consent_withdrawn（撤回同意）或 retention_expired（保存期限届满）",
    ),
    (
        "is before 2000",
        "早于 2000 年",
    ),
    (
        "must be a county, township or village code (6, 9 or 12 digits)",
        "必须是县、乡镇或村级区划代码（6、9 或 12 位）",
    ),
    (
        "must name at least one family",
        "至少要列出一个家庭",
    ),
    (
        "names a family not recorded as attending",
        "列出了未记录为参加的家庭",
    ),
    (
        "names more than 500 families; send them in several requests",
        "列出的家庭超过 500 个，请分几次提交",
    ),
    (
        "no such activity",
        "没有这项活动",
    ),
    (
        "the activity is already recorded",
        "这项活动已经记录",
    ),
    (
        "is required for an inspection of a province",
        "检查省级辖区时必须填写",
    ),
    (
        "is before the inspection",
        "早于检查日期",
    ),
    (
        "lists more than 50 follow-ups",
        "整改事项超过 50 项",
    ),
    (
        "must be a jurisdiction, not the whole country",
        "必须是一个辖区，不能是全国",
    ),
    (
        "must be a level above the jurisdiction inspected",
        "必须比被检查辖区高一级或以上",
    ),
    (
        "must be an administrative code prefix of 2, 4, 6, 9 or 12 digits",
        "必须是 2、4、6、9 或 12 位的区划代码前缀",
    ),
    (
        "no follow-up with that id in this inspection",
        "这次检查没有该 id 的整改事项",
    ),
    (
        "no such inspection",
        "没有这次检查",
    ),
    (
        "that follow-up is already marked done",
        "该整改事项已标记为完成",
    ),
    (
        "the inspection is already recorded",
        "这次检查已经记录",
    ),
    (
        "the inspection is voided",
        "这次检查已作废",
    ),
];

/// Words that fill a template's `{}` and read better translated.
const WORDS: &[(&str, &str)] = &[
    ("village", "村级"),
    ("township", "乡镇级"),
    ("open", "待处理"),
    ("acknowledged", "已确认"),
    ("resolved", "已解决"),
];

/// The title of problem type `slug`.
pub fn title(slug: &str, lang: Lang) -> Option<&'static str> {
    match lang {
        Lang::En => None,
        Lang::Zh => TITLES.iter().find(|(s, _)| *s == slug).map(|(_, t)| *t),
    }
}

/// `english` (a detail or a field message) in `lang`; itself when the
/// catalogue has no entry.
pub fn message(english: &str, lang: Lang) -> Cow<'_, str> {
    if lang == Lang::En {
        return Cow::Borrowed(english);
    }
    if let Some(t) = lookup(english) {
        return Cow::Owned(t);
    }
    // "the query parameter `on` must be …": a field message after a lead.
    if let Some(rest) = english.strip_prefix("the query parameter ") {
        if let Some(t) = field_message(rest) {
            return Cow::Owned(format!("查询参数 {t}"));
        }
    }
    // "`visited_on` is before …": a field and its message.
    match field_message(english) {
        Some(t) => Cow::Owned(t),
        None => Cow::Borrowed(english),
    }
}

/// "`field` message" with the message translated.
fn field_message(text: &str) -> Option<String> {
    let rest = text.strip_prefix('`')?;
    let (field, message) = rest.split_once("` ")?;
    lookup(message).map(|t| format!("`{field}` {t}"))
}

fn lookup(english: &str) -> Option<String> {
    MESSAGES
        .iter()
        .find_map(|(en, zh)| fill(en, english).map(|captures| substitute(zh, &captures)))
}

/// The parts of `text` that fill the `{}` of `template`, if it matches.
fn fill<'a>(template: &str, text: &'a str) -> Option<Vec<&'a str>> {
    let literals: Vec<&str> = template.split("{}").collect();
    let (first, rest) = literals.split_first()?;
    let mut remaining = text.strip_prefix(first)?;
    let mut captures = Vec::new();
    for (i, literal) in rest.iter().enumerate() {
        let last = i + 1 == rest.len();
        let at = if last {
            if literal.is_empty() {
                remaining.len()
            } else {
                remaining.strip_suffix(literal).map(str::len)?
            }
        } else {
            remaining.find(literal)?
        };
        let capture = &remaining[..at];
        if capture.is_empty() {
            return None;
        }
        captures.push(capture);
        remaining = &remaining[at + literal.len()..];
    }
    remaining.is_empty().then_some(captures)
}

fn substitute(template: &str, captures: &[&str]) -> String {
    let mut out = String::new();
    let mut parts = template.split("{}");
    out.push_str(parts.next().unwrap_or_default());
    for (part, capture) in parts.zip(captures) {
        let word = WORDS
            .iter()
            .find(|(en, _)| en == capture)
            .map_or(*capture, |(_, zh)| *zh);
        out.push_str(word);
        out.push_str(part);
    }
    out
}

/// Translates a problem document (`title`, `detail`, `errors[].message`)
/// into `lang`.
pub fn translate_problem(problem: &mut Value, lang: Lang) {
    if lang == Lang::En {
        return;
    }
    let slug = problem["type"]
        .as_str()
        .and_then(|t| t.rsplit('/').next())
        .unwrap_or_default()
        .to_owned();
    if let Some(t) = title(&slug, lang) {
        problem["title"] = Value::from(t);
    }
    if let Some(errors) = problem.get_mut("errors").and_then(Value::as_array_mut) {
        let mut detail = Vec::new();
        for e in errors.iter_mut() {
            let field = e["field"].as_str().unwrap_or_default().to_owned();
            if let Some(m) = e["message"].as_str() {
                let t = message(m, lang).into_owned();
                detail.push(format!("`{field}` {t}"));
                e["message"] = Value::from(t);
            }
        }
        problem["detail"] = Value::from(detail.join("；"));
    } else if let Some(d) = problem["detail"].as_str() {
        let t = message(d, lang).into_owned();
        problem["detail"] = Value::from(t);
    }
}

/// Middleware: a problem+json answer to a request that prefers `zh` is
/// translated (with `Content-Language: zh-CN`); every problem answer says
/// `Vary: Accept-Language`.
pub async fn localize(req: Request, next: Next) -> Response {
    let lang = preferred(req.headers());
    let response = next.run(req).await;
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if !is_problem {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    parts
        .headers
        .append(header::VARY, HeaderValue::from_static("accept-language"));
    if lang == Lang::En {
        return Response::from_parts(parts, body);
    }
    // Problem documents are small; anything else is passed on untouched.
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let Ok(mut problem) = serde_json::from_slice::<Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    translate_problem(&mut problem, lang);
    let body = serde_json::to_vec(&problem).unwrap_or_else(|_| bytes.to_vec());
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_LANGUAGE,
        HeaderValue::from_static(lang.tag()),
    );
    Response::from_parts(parts, Body::from(body))
}

fn preferred(headers: &HeaderMap) -> Lang {
    Lang::from_accept_language(
        headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_preferred_of_ours() {
        let l = |h| Lang::from_accept_language(Some(h));
        assert_eq!(Lang::from_accept_language(None), Lang::En);
        assert_eq!(l("zh"), Lang::Zh);
        assert_eq!(l("zh-CN,zh;q=0.9,en;q=0.8"), Lang::Zh);
        assert_eq!(l("en-US,en;q=0.9,zh-CN;q=0.8"), Lang::En);
        assert_eq!(l("fr, zh;q=0.5"), Lang::Zh);
        assert_eq!(l("zh;q=0, en"), Lang::En);
        assert_eq!(l("de"), Lang::En);
        assert_eq!(l("ZH-hans-cn"), Lang::Zh);
    }

    #[test]
    fn templates_fill_and_translate_their_words() {
        let zh = |s| message(s, Lang::Zh).into_owned();
        assert_eq!(zh("no village contact is assigned"), "尚未指派村级联系人");
        assert_eq!(zh("`visited_on` is in the future"), "`visited_on` 晚于今天");
        assert_eq!(
            zh("the case is at version 3, not the version given in If-Match"),
            "案件当前版本为 3，与 If-Match 中的版本不符"
        );
        assert_eq!(
            zh("`members.id_number` does not agree with the birth date"),
            "`members.id_number` 与出生日期不一致"
        );
        assert_eq!(
            zh("the query parameter `on` must be a date YYYY-MM-DD"),
            "查询参数 `on` 必须是 YYYY-MM-DD 格式的日期"
        );
        assert_eq!(
            zh("must be one of: village township"),
            "必须是以下之一：village township"
        );
        assert_eq!(zh("something new"), "something new", "no entry: English");
        assert_eq!(
            message("`x` is in the future", Lang::En),
            "`x` is in the future"
        );
    }

    #[test]
    fn a_validation_problem_is_translated_whole() {
        let mut p = serde_json::json!({
            "type": "https://nuanxin.invalid/problems/validation",
            "title": "Unprocessable Entity", "status": 422,
            "detail": "`text` must not be empty; `needs` must list at most 20 needs",
            "errors": [{"field": "text", "message": "must not be empty"},
                       {"field": "needs", "message": "must list at most 20 needs"}]
        });
        translate_problem(&mut p, Lang::Zh);
        assert_eq!(p["title"], "字段校验未通过");
        assert_eq!(p["errors"][0]["message"], "不能为空");
        assert_eq!(p["errors"][0]["field"], "text", "field names stay");
        assert_eq!(p["detail"], "`text` 不能为空；`needs` 最多列出 20 项需求");
    }

    /// Texts in the scanned code that never reach a reader: `Display` of
    /// variants answered with other text (a 422's list, a 500, a 404 from
    /// the executor, store errors), the lead of a detail handled by
    /// [`message`] itself, and pieces of serde's and `concat!`'s texts.
    const NEVER_SHOWN: &[&str] = &[
        "{} invalid field(s)",
        "internal error",
        "checking a password failed",
        "the query parameter {}",
        "unknown variant",
        "must be one of:",
        "family not found",
        "not found",
        "store error: {}",
    ];

    /// Every message the code can produce has a Chinese entry: the string
    /// literals handed to the error types and value errors of the API, the
    /// domain and the command executor are read from the source and looked
    /// up (a `{name}` in a `format!` matches a `{}` of the catalogue).
    #[test]
    fn every_message_in_the_code_is_in_the_catalogue() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let files = [
            "api/src/error.rs",
            "api/src/extract.rs",
            "api/src/routes/alerts.rs",
            "api/src/routes/audit.rs",
            "api/src/routes/care_actions.rs",
            "api/src/routes/dto.rs",
            "api/src/routes/families.rs",
            "api/src/routes/schedule.rs",
            "api/src/routes/sheets.rs",
            "api/src/web/import.rs",
            "api/src/routes/users.rs",
            "api/src/routes/activities.rs",
            "api/src/routes/inspections.rs",
            "api/src/routes/checkpoints.rs",
            "api/src/routes/params.rs",
            "api/src/routes/dto/insurance.rs",
            "api/src/app.rs",
            "domain/src/values.rs",
            "domain/src/aggregate.rs",
            "domain/src/activity.rs",
            "domain/src/inspection.rs",
            "domain/src/insurance.rs",
            "infra/src/commands.rs",
            "infra/src/commands/streams.rs",
            "infra/src/streams.rs",
            "infra/src/alerts.rs",
            "infra/src/bulletin.rs",
            "api/src/routes/reports.rs",
            "infra/src/reads/reports.rs",
            "infra/src/reads/streams.rs",
            "infra/src/reports.rs",
            "infra/src/import.rs",
            "infra/src/accounts.rs",
            "api/src/web/auth.rs",
            "api/src/web/form.rs",
            "api/src/web/forms.rs",
            "api/src/web/forms/body.rs",
            "api/src/web/forms/care.rs",
            "api/src/web/forms/contacts.rs",
            "api/src/web/forms/family.rs",
            "api/src/web/forms/insurance.rs",
            "api/src/web/supervisor.rs",
            "api/src/web/supervisor/alerts.rs",
            "api/src/web/supervisor/history.rs",
            "api/src/web/supervisor/reports.rs",
            "api/src/web/admin/users.rs",
            "api/src/web/forms/visit.rs",
            "api/src/web/forms/void.rs",
        ];
        let markers = [
            "ValueError(",
            "ApiError::BadRequest(",
            "ApiError::Forbidden(",
            "ApiError::NotFound(",
            "ApiError::Conflict(",
            "ApiError::field(",
            "ExecError::Forbidden(",
            "message: ",
            "#[error(",
            ".push(",
            "bad_request(",
        ];
        let mut missing = Vec::new();
        for file in files {
            let Ok(source) = std::fs::read_to_string(root.join(file)) else {
                continue;
            };
            for literal in message_literals(&source, &markers) {
                let probe = literal.replace("{}", "X");
                let known = NEVER_SHOWN.contains(&literal.as_str())
                    || lookup(&probe).is_some()
                    || field_message(&probe).is_some()
                    || TITLES.iter().any(|(s, _)| *s == literal);
                if !known {
                    missing.push(format!("{file}: {literal}"));
                }
            }
        }
        assert!(
            missing.is_empty(),
            "no Chinese for:\n{}",
            missing.join("\n")
        );
    }

    /// The message-like string literals (with a space, starting with a
    /// lower-case letter, a backtick or a header name, not SQL) in the
    /// three lines from each of `markers`.
    fn message_literals(source: &str, markers: &[&str]) -> Vec<String> {
        let mut out = Vec::new();
        let lines: Vec<&str> = source.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if line.trim_start().starts_with("//") || !markers.iter().any(|m| line.contains(m)) {
                continue;
            }
            let window = lines[i..(i + 3).min(lines.len())].join(" ");
            let start = markers
                .iter()
                .filter_map(|m| window.find(m))
                .min()
                .unwrap_or(0);
            let mut rest = &window[start..];
            while let Some(open) = rest.find('"') {
                let after = &rest[open + 1..];
                let Some(len) = after.find('"') else {
                    break;
                };
                let literal = placeholders(&after[..len]);
                rest = &after[len + 1..];
                let words: String = literal
                    .replace("{}", "")
                    .chars()
                    .filter(|c| c.is_alphabetic())
                    .collect();
                let is_message = literal.contains(' ')
                    && words.len() > 3
                    && !literal.starts_with("SELECT")
                    && !literal.starts_with("INSERT")
                    && !literal.starts_with("https://")
                    && literal
                        .chars()
                        .next()
                        .is_some_and(|c| c.is_lowercase() || c == '`' || c == '{' || c == 'I');
                if is_message {
                    out.push(literal);
                }
            }
        }
        out
    }

    /// `{name}`, `{field}`, `{0}`, `{today}` → `{}`.
    fn placeholders(literal: &str) -> String {
        let mut out = String::new();
        let mut rest = literal;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            match rest[open..].find('}') {
                Some(close) => {
                    out.push_str("{}");
                    rest = &rest[open + close + 1..];
                }
                None => {
                    out.push_str(&rest[open..]);
                    rest = "";
                }
            }
        }
        out.push_str(rest);
        out
    }
}
