//! `POST /api/v1/imports`: a customer import from a CSV or XLSX body (see `veil_app::imports`). The report names
//! rows, columns, fields and reasons, never a value from the file.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap};
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use veil_app::imports::{FileFormat, ImportOptions, ImportReport, ImportSource};

use crate::error::{ApiResult, Problem};
use crate::extract::{ApiQuery, CurrentUser};
use crate::AppState;

/// Largest file the API takes (larger files: `veil import customers`, which streams).
pub const MAX_IMPORT_BYTES: usize = 64 * 1024 * 1024;

/// How to import.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportParams {
    /// Explicit mapping, `手机=mobile,身份证号=cn_id,年收入=custom.annual_income` (COLUMN is a header, `#N` or a
    /// letter; `custom.KEY` is a custom field of the rows' industry template).
    pub map: Option<String>,
    /// Industry template (key or name) of rows without an industry column or cell; headers naming its custom
    /// fields (key, English or Chinese label) are then mapped to them.
    pub industry: Option<String>,
    /// Owner of the imported customers (username or user id); the caller by default.
    pub owner: Option<String>,
    /// Check and report only.
    pub dry_run: Option<bool>,
    /// Continue the interrupted import of the same file.
    pub resume: Option<bool>,
    /// `csv` or `xlsx`; else from the content type, else sniffed (an XLSX file is a ZIP archive).
    pub format: Option<String>,
}

/// Imports customers from the body: `text/csv` (UTF-8) or an XLSX workbook
/// (`application/vnd.openxmlformats-officedocument.spreadsheetml.sheet`). Columns are mapped by `map`, else by
/// header names and by sampling their values (custom fields of the rows' industry template: `custom.KEY` in `map`,
/// or a header naming the field when `industry` or an industry column gives the template); each row is validated
/// as a create is; rows whose mobile or ID
/// number a stored customer (or an earlier row) has are reported as duplicates; good rows are imported in
/// audited batches. 200 with the report (mapping, counts, each refused row's row, column and reason).
#[utoipa::path(post, path = "/api/v1/imports", tag = "crm", params(ImportParams),
    request_body(content = String, content_type = "text/csv"),
    responses((status = 200, body = ImportReport), (status = 403, body = Problem), (status = 409, body = Problem),
              (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn create_import(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiQuery(params): ApiQuery<ImportParams>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<ImportReport>> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let format = match params.format.as_deref() {
        Some("xlsx") => FileFormat::Xlsx,
        Some("csv") => FileFormat::Csv,
        _ if content_type.contains("spreadsheetml") => FileFormat::Xlsx,
        _ if content_type.starts_with("text/csv") => FileFormat::Csv,
        _ => FileFormat::sniff(&body),
    };
    let options = ImportOptions {
        format,
        map: match params.map.as_deref() {
            Some(text) => veil_app::imports::parse_map(text)?,
            None => Vec::new(),
        },
        owner: params.owner,
        industry: params.industry,
        dry_run: params.dry_run.unwrap_or(false),
        resume: params.resume.unwrap_or(false),
        cache_mib: veil_app::imports::UPLOAD_IMPORT_CACHE_MIB,
        ..ImportOptions::default()
    };
    let report = state
        .veil
        .import_customers(&user.actor, ImportSource::Bytes(&body), &options, &())
        .await?;
    Ok(Json(report))
}

/// The import routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_import))
        .layer(DefaultBodyLimit::max(MAX_IMPORT_BYTES))
}
