//! The OpenAPI document: the operations come from the routes themselves
//! (`routes::api`), this adds the title, shared schemas and security.

use std::sync::LazyLock;

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::dto;

pub mod fields;

#[derive(OpenApi)]
#[openapi(
    info(title = "Nuanxin", description = "Case management for family-planning special families."),
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

static DOCUMENT: LazyLock<utoipa::openapi::OpenApi> =
    LazyLock::new(|| crate::routes::api().split_for_parts().1);

/// The document served at `/api/v1/openapi.json`.
pub fn document() -> utoipa::openapi::OpenApi {
    DOCUMENT.clone()
}
