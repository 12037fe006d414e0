//! Operations endpoints and the OpenAPI document.

use nuanxin_tests::*;

both_stores!(health_ready_metrics);

async fn health_ready_metrics(app: TestApp) {
    let h = app
        .send(reqwest::Method::GET, "/healthz", None, None, &[])
        .await;
    assert_eq!(h.status, 200);
    let r = app
        .send(reqwest::Method::GET, "/readyz", None, None, &[])
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["status"], "ready");
    assert_eq!(r.body["projection_lag_events"], 0);
    let cw = app.user("caseworker", "45").await;
    app.register(&cw, "450305001001").await;
    let m = app
        .send(reqwest::Method::GET, "/metrics", None, None, &[])
        .await;
    assert_eq!(m.status, 200);
    assert!(
        m.text
            .contains("nuanxin_commands_total{outcome=\"recorded\"} 1"),
        "{}",
        m.text
    );
    assert!(m.text.contains("nuanxin_event_log_head 1"), "{}", m.text);
    assert!(
        m.text.contains("nuanxin_projection_lag_events "),
        "{}",
        m.text
    );
    let unknown = app
        .send(reqwest::Method::GET, "/nope", None, None, &[])
        .await;
    unknown.assert_problem(404);
}

#[tokio::test]
async fn openapi_describes_the_whole_contract() {
    let app = TestApp::spawn(Store::Sqlite).await.unwrap();
    let doc = app
        .send(
            reqwest::Method::GET,
            "/api/v1/openapi.json",
            None,
            None,
            &[],
        )
        .await;
    assert_eq!(doc.status, 200);
    let paths = doc.body["paths"].as_object().expect("paths");
    for (path, method) in [
        ("/api/v1/families", "post"),
        ("/api/v1/families", "get"),
        ("/api/v1/families/{id}", "get"),
        ("/api/v1/families/{id}/history", "get"),
        ("/api/v1/families/{id}/members/{member_id}/status", "post"),
        ("/api/v1/families/{id}/contacts", "post"),
        ("/api/v1/families/{id}/contacts/{role}/release", "post"),
        ("/api/v1/families/{id}/visits", "post"),
        ("/api/v1/families/{id}/emergency-contacts", "post"),
        ("/api/v1/families/{id}/emergencies", "post"),
        ("/api/v1/families/{id}/elderly-care", "post"),
        ("/api/v1/families/{id}/assistance", "post"),
        ("/api/v1/families/{id}/notes", "post"),
        ("/api/v1/families/{id}/voids", "post"),
        ("/api/v1/families/{id}/transfer", "post"),
        ("/api/v1/families/{id}/close", "post"),
        ("/api/v1/families/{id}/reopen", "post"),
        ("/api/v1/users", "post"),
        ("/api/v1/me", "get"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing"
        );
    }
    let schemas = doc.body["components"]["schemas"]
        .as_object()
        .expect("schemas");
    for s in [
        "RegisterFamilyRequest",
        "CaseFileView",
        "Problem",
        "CommandResponse",
    ] {
        assert!(schemas.contains_key(s), "schema {s} missing");
    }
}
