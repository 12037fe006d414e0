//! `GET /api/v1/audit/checkpoints`: the signed checkpoints of the event log
//! (docs/audit.md), newest first, for supervisors and admins. Each item
//! carries the signed statement exactly as signed, so an item saved to a
//! file is itself a checkpoint `nuanxin audit verify --checkpoint` reads.
//! A checkpoint holds counts and hashes of the whole log — no family, no
//! personal data — so every scope sees the same list.

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use nuanxin_domain::UserRole;
use nuanxin_infra::store::audit_checkpoints::CheckpointRecord;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::error::{ApiError, Problem};
use crate::extract::{Caller, ListQuery};
use crate::routes::params::{Cursor, IdCursor, PageParams};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

/// The list takes only `limit` and `cursor`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointQuery {}

/// What a checkpoint states, as signed (`format` `nuanxin-checkpoint/1`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CheckpointStatement {
    /// `nuanxin-checkpoint/1`.
    pub format: String,
    pub id: Uuid,
    /// When it was taken (server clock).
    pub taken_at: DateTime<Utc>,
    /// `daily` (with the alert scan) or `on_demand` (`nuanxin audit checkpoint`).
    pub kind: String,
    /// `sqlite` or `postgres`.
    pub store: String,
    /// The highest position in the log among the events it covers.
    pub position: i64,
    /// How many events it covers.
    pub events: i64,
    /// How many streams (families) it covers.
    pub streams: i64,
    /// PostgreSQL: the snapshot it was read in (`xmin:xmax:xip,…`): it
    /// covers the events up to `position` that snapshot saw. `null` on
    /// SQLite (every event up to `position`).
    pub tx_snapshot: Option<String>,
    /// RFC 6962 Merkle root (hex) over every stream's head
    /// `[aggregate_type, aggregate_id, version, hash]`, sorted by type and id.
    pub merkle_root: String,
    /// The name of the heads file beside the statement file.
    pub heads_file: String,
    /// The first 16 hex digits of SHA-256 over the public key.
    pub key_id: String,
    /// The Ed25519 public key that signed it, 64 hex digits.
    pub public_key: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CheckpointItem {
    pub id: Uuid,
    /// `daily` or `on_demand`.
    pub kind: String,
    pub taken_at: DateTime<Utc>,
    /// The name of its statement file in the checkpoint directory.
    pub file: String,
    /// The signed statement, exactly as signed.
    #[schema(value_type = CheckpointStatement)]
    pub checkpoint: serde_json::Value,
    /// Ed25519 signature (hex) over the canonical JSON of `checkpoint`.
    pub signature: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CheckpointList {
    /// Newest first.
    pub items: Vec<CheckpointItem>,
    pub next_cursor: Option<String>,
}

impl TryFrom<CheckpointRecord> for CheckpointItem {
    type Error = ApiError;

    fn try_from(r: CheckpointRecord) -> Result<Self, ApiError> {
        let mut body: serde_json::Value =
            serde_json::from_str(&r.body).map_err(|e| ApiError::Internal(Box::new(e)))?;
        let signature = body["signature"].as_str().unwrap_or_default().to_owned();
        Ok(Self {
            id: r.id,
            kind: r.kind,
            taken_at: r.taken_at,
            file: r.file,
            checkpoint: body["checkpoint"].take(),
            signature,
        })
    }
}

#[utoipa::path(get, path = "/api/v1/audit/checkpoints", tag = "audit", params(PageParams<IdCursor>),
    responses((status = 200, body = CheckpointList), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem)))]
/// The signed checkpoints of the event log, newest first (supervisors and
/// admins). Save an item as a file to keep a copy: `nuanxin audit verify
/// --checkpoint FILE` proves the log still extends it.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ListQuery { page, params: _ }: ListQuery<CheckpointQuery>,
) -> Result<Json<CheckpointList>, ApiError> {
    if !matches!(caller.0.role, UserRole::Admin | UserRole::Supervisor) {
        return Err(ApiError::Forbidden(
            "checkpoints are for supervisors and admins".into(),
        ));
    }
    let before = page.after(IdCursor::decode)?;
    let records = state.reads().checkpoints(before, page.limit()).await?;
    let next_cursor = page.next_cursor(&records, |r| r.id.to_string());
    let items = records
        .into_iter()
        .map(CheckpointItem::try_from)
        .collect::<Result<_, _>>()?;
    Ok(Json(CheckpointList { items, next_cursor }))
}
