//! The quality bar of every main page, for each role, on both stores: it
//! answers, is Chinese by default, labels every field, holds no inline
//! script or style (the Content-Security-Policy forbids them), weighs at
//! most 100 KB with its stylesheet, and shows no full ID number.

use nuanxin_tests::web::{Page, WebClient};
use nuanxin_tests::*;
use regex::Regex;
use serde_json::json;

both_stores!(every_main_page_meets_the_quality_bar);

/// The full ID number of the first member of `family_body`.
const FULL_ID: &str = "110105195003010016";

fn check(path: &str, page: &Page, css_bytes: usize) {
    assert_eq!(page.status, 200, "{path}: {}", page.body);
    let html = &page.body;
    assert!(
        html.contains(r#"<html lang="zh-CN">"#),
        "{path}: not Chinese"
    );
    assert!(!html.contains(FULL_ID), "{path}: a full ID number");
    assert!(!html.contains(" style="), "{path}: an inline style");
    assert!(
        !Regex::new(r"<script(?:\s[^>]*)?>\s*\S")
            .unwrap()
            .is_match(html),
        "{path}: an inline script"
    );
    assert!(
        html.len() + css_bytes <= 100 * 1024,
        "{path}: {} bytes with the stylesheet",
        html.len() + css_bytes
    );
    // Every visible field has a label naming it (or sits inside one).
    let field = Regex::new(r#"<(input|select|textarea)\b([^>]*)>"#).unwrap();
    let attr = |tag: &str, name: &str| {
        Regex::new(&format!(r#"\b{name}="([^"]*)""#))
            .unwrap()
            .captures(tag)
            .map(|c| c[1].to_owned())
    };
    for f in field.captures_iter(html) {
        let tag = &f[2];
        let kind = attr(tag, "type").unwrap_or_default();
        if matches!(kind.as_str(), "hidden" | "submit") {
            continue;
        }
        let labelled = attr(tag, "aria-label").is_some()
            || attr(tag, "id").is_some_and(|id| html.contains(&format!(r#"for="{id}""#)))
            || (kind == "radio" || kind == "checkbox")
                && html[..f.get(0).unwrap().start()]
                    .rfind("<label")
                    .is_some_and(|open| {
                        !html[open..f.get(0).unwrap().start()].contains("</label>")
                    });
        assert!(
            labelled,
            "{path}: a field without a label: <{} {tag}>",
            &f[1]
        );
    }
}

async fn pages(web: &WebClient, paths: &[String], css_bytes: usize) {
    for path in paths {
        let page = web.get(path).await;
        check(path, &page, css_bytes);
    }
}

async fn every_main_page_meets_the_quality_bar(app: TestApp) {
    let cw = app.web_user("caseworker", "450305").await;
    let sup = app.web_user("supervisor", "4503").await;
    // A busy family: contacts, a visit, a voided note, an emergency contact.
    let family = app.register(&cw.token, "450305001001").await;
    for role in ["village", "township"] {
        let r = app
            .post(
                &format!("/api/v1/families/{family}/contacts"),
                &cw.token,
                contact_body(role, "2026-01-10"),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let r = app
        .post(
            &format!("/api/v1/families/{family}/visits"),
            &cw.token,
            visit_body("village", "home", "2026-02-01"),
        )
        .await;
    assert_eq!(r.status, 201);
    let note = app
        .post(
            &format!("/api/v1/families/{family}/notes"),
            &cw.token,
            json!({"text": "a first note"}),
        )
        .await;
    assert_eq!(note.status, 201, "{}", note.text);
    // Many families, so lists are full pages.
    for _ in 0..60 {
        app.register(&cw.token, "450305001002").await;
    }
    let css_path = {
        let home = cw.get("/").await;
        Regex::new(r#"href="(/static/[^"]+\.css)""#)
            .unwrap()
            .captures(&home.body)
            .expect("a stylesheet")[1]
            .to_owned()
    };
    let css = cw
        .client
        .get(format!("{}{css_path}", cw.base))
        .send()
        .await
        .unwrap();
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    let css_bytes = css.bytes().await.unwrap().len();

    let anon = app.web_anonymous();
    check("/login", &anon.get("/login").await, css_bytes);
    pages(
        &cw,
        &[
            "/".into(),
            "/families".into(),
            format!("/families/{family}"),
            format!("/families/{family}/visit?role=village"),
            format!("/families/{family}/note"),
            "/families/new".into(),
            "/overdue".into(),
            "/alerts".into(),
            "/account".into(),
        ],
        css_bytes,
    )
    .await;
    pages(
        &sup,
        &[
            "/".into(),
            "/?prefix=450305".into(),
            "/families".into(),
            format!("/families/{family}"),
            format!("/families/{family}/history"),
            "/overdue".into(),
            "/coverage".into(),
            "/alerts".into(),
            "/reports".into(),
        ],
        css_bytes,
    )
    .await;
    let admin = app.web_user("admin", "").await;
    pages(
        &admin,
        &[
            "/".into(),
            "/admin/users".into(),
            "/admin/access-log".into(),
        ],
        css_bytes,
    )
    .await;
}
