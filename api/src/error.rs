//! The one API error type. Every error leaves as `application/problem+json`
//! (RFC 9457). Infrastructure errors are logged once here, inside the
//! request span, and answered with a generic 500; domain errors map
//! explicitly (a broken rule of the case's state → 409, a bad field → 422).
//! Nothing internal and no personal data goes into `detail`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use nuanxin_domain::CaseError;
use nuanxin_infra::{ExecError, ProjectError, ReadError, StoreError};
use serde::Serialize;
use utoipa::ToSchema;

/// One invalid field of a 422.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("missing or invalid bearer token")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("this endpoint does not take that method")]
    MethodNotAllowed,
    #[error("the request body was not received in time")]
    RequestTimeout,
    #[error("request body is too large")]
    PayloadTooLarge,
    #[error("{} invalid field(s)", .0.len())]
    Validation(Vec<FieldError>),
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Validation(vec![FieldError {
            field: field.into(),
            message: message.into(),
        }])
    }

    pub fn not_found() -> Self {
        ApiError::NotFound("no such family in your scope".into())
    }

    fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn slug(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "malformed-request",
            ApiError::Unauthorized => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not-found",
            ApiError::Conflict(_) => "conflict",
            ApiError::MethodNotAllowed => "method-not-allowed",
            ApiError::RequestTimeout => "request-timeout",
            ApiError::PayloadTooLarge => "payload-too-large",
            ApiError::Validation(_) => "validation",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl From<CaseError> for ApiError {
    fn from(err: CaseError) -> Self {
        match err {
            CaseError::NotRegistered => ApiError::not_found(),
            CaseError::UnknownMember => ApiError::NotFound("no such member in this family".into()),
            CaseError::UnknownEmergencyContact => {
                ApiError::NotFound("no such emergency contact in this family".into())
            }
            CaseError::Invalid { field, message } => ApiError::field(field, message),
            CaseError::UnknownEnrolment => {
                ApiError::NotFound("no such insurance enrolment in this family".into())
            }
            CaseError::UnknownClaim => {
                ApiError::NotFound("no such insurance claim in this family".into())
            }
            other => ApiError::Conflict(other.to_string()),
        }
    }
}

impl From<ExecError> for ApiError {
    fn from(err: ExecError) -> Self {
        match err {
            ExecError::NotFound => ApiError::not_found(),
            ExecError::Forbidden(why) => ApiError::Forbidden(why.into()),
            ExecError::Case(e) => e.into(),
            e @ ExecError::VersionMismatch { .. } => ApiError::Conflict(e.to_string()),
            e @ ExecError::Conflict => ApiError::Conflict(e.to_string()),
            e @ ExecError::IdempotencyMismatch => ApiError::field("Idempotency-Key", e.to_string()),
            ExecError::Store(e) => ApiError::Internal(e),
        }
    }
}

impl From<ReadError> for ApiError {
    fn from(err: ReadError) -> Self {
        match err {
            ReadError::NotFound => ApiError::not_found(),
            e @ ReadError::Invalid { .. } => {
                ApiError::BadRequest(format!("the query parameter {e}"))
            }
            e @ ReadError::AccessLog(_) => ApiError::Internal(Box::new(e)),
            ReadError::Store(e) => ApiError::Internal(Box::new(e)),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        ApiError::Internal(Box::new(err))
    }
}

impl From<ProjectError> for ApiError {
    fn from(err: ProjectError) -> Self {
        ApiError::Internal(Box::new(err))
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        ApiError::Internal(Box::new(err))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let slug = self.slug();
        if let ApiError::Internal(source) = &self {
            // Logged once, here. Store errors carry no request payloads.
            tracing::error!(error = %source, "request failed");
        }
        let (detail, errors) = match self {
            ApiError::Validation(errors) => {
                let detail = errors
                    .iter()
                    .map(|e| format!("`{}` {}", e.field, e.message))
                    .collect::<Vec<_>>()
                    .join("; ");
                (detail, Some(errors))
            }
            ApiError::Internal(_) => (
                "an internal error occurred; if this was a command, retry it with the same Idempotency-Key".into(),
                None,
            ),
            other => (other.to_string(), None),
        };
        let problem = Problem {
            type_: format!("https://nuanxin.invalid/problems/{slug}"),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail,
            errors,
        };
        let mut response = (status, axum::Json(problem)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::REQUEST_TIMEOUT {
            // The rest of the body may never come: do not wait for it.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<nuanxin_infra::StreamError> for ApiError {
    fn from(err: nuanxin_infra::StreamError) -> Self {
        use nuanxin_domain::activity::ActivityError;
        use nuanxin_domain::inspection::InspectionError;
        use nuanxin_infra::StreamError as E;
        match err {
            E::NotFound => ApiError::NotFound("no such record in your scope".into()),
            E::Forbidden(why) => ApiError::Forbidden(why.into()),
            E::Activity(ActivityError::NotRecorded) => {
                ApiError::NotFound("no such activity in your scope".into())
            }
            E::Activity(ActivityError::Invalid { field, message })
            | E::Inspection(InspectionError::Invalid { field, message }) => {
                ApiError::field(field, message)
            }
            E::Inspection(InspectionError::NotRecorded) => {
                ApiError::NotFound("no such inspection in your scope".into())
            }
            E::Inspection(InspectionError::UnknownFollowUp) => {
                ApiError::NotFound("no such follow-up in this inspection".into())
            }
            E::Activity(e) => ApiError::Conflict(e.to_string()),
            E::Inspection(e) => ApiError::Conflict(e.to_string()),
            // Like a family outside scope anywhere else: not found (the
            // positions, never the ids, are named).
            E::UnknownFamilies(positions) => ApiError::NotFound(format!(
                "`family_ids` names no registered family in your scope at position {}",
                positions
                    .iter()
                    .map(usize::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            e @ E::Families(_) => ApiError::Conflict(e.to_string()),
            e @ E::IdempotencyMismatch => ApiError::field("Idempotency-Key", e.to_string()),
            e @ E::Conflict => ApiError::Conflict(e.to_string()),
            E::Store(e) => ApiError::Internal(e),
        }
    }
}
