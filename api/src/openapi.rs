//! The OpenAPI document, generated from the handlers and types.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::{alerts, audit, dto, families, schedule, users};

#[derive(OpenApi)]
#[openapi(
    info(title = "Nuanxin", description = "Case management for family-planning special families."),
    paths(
        families::register, families::list, families::case_file,
        families::member_status, families::assign_contact, families::release_contact,
        families::record_visit, families::set_emergency_contact, families::remove_emergency_contact,
        families::record_emergency, families::record_elderly_care, families::record_assistance,
        families::add_note, families::void_action, families::transfer, families::close,
        families::reopen, users::create_user, users::me,
        schedule::overdue_visits, schedule::due_visits, schedule::coverage_gaps,
        audit::history, audit::history_csv, audit::access_log,
        alerts::scan, alerts::list, alerts::detail, alerts::acknowledge,
    ),
    components(schemas(dto::CommandResponse, crate::error::Problem, crate::error::FieldError)),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
