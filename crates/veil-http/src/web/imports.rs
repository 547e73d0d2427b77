//! `/imports`: customer import in the browser. An upload form (a CSV or XLSX file, an optional column mapping,
//! an optional industry template for the rows — whose custom fields headers may then name — and "check only"), the result of a run (the mapping used, counts imported / invalid / duplicates, each refused row's
//! row, column, field and reason — never a value from the file), the caller's recent import jobs, and one job's
//! stored result at `/imports/{id}`.
//!
//! The upload is `multipart/form-data` with the session's CSRF token as a field, checked before the file is
//! used. The file is held in memory for the run (up to the API's limit) and dropped; it is never written to disk or
//! logged. The run is the API's `Veil::import_customers` (validation, detection, encryption, de-duplication and
//! audit are its); jobs are read back with `Veil::list_import_jobs` and `import_job_detail`.

use askama::Template;
use axum::extract::{FromRequest, FromRequestParts, Multipart, Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use veil_app::import_jobs::ImportJobView;
use veil_app::imports::{
    parse_map, ColumnMapping, FileFormat, ImportIssue, ImportOptions, ImportSource,
};
use veil_app::AppError;

use super::i18n::Tr;
use super::session::{same_token, WebUser};
use super::{error_page, message_page, render, Layout, Page};
use crate::AppState;

/// Issues shown on the page, at most (the job keeps them all; the API and CLI report them).
const MAX_SHOWN_ISSUES: usize = 500;

/// A job as listed.
pub struct JobLine {
    id: String,
    created: String,
    state_key: String,
    format: String,
    imported: i64,
    invalid: i64,
    duplicates: i64,
}

/// A refused row as shown.
pub struct IssueLine {
    row: u64,
    column: String,
    field: String,
    reason: String,
}

/// An industry template in the form's select.
pub struct IndustryChoice {
    key: &'static str,
    label_key: String,
    selected: bool,
}

/// A column of the mapping as shown.
pub struct MappingLine {
    column: String,
    header: String,
    target: String,
    source_key: String,
}

/// The result of a run or of a stored job.
pub struct Outcome {
    job_id: Option<String>,
    dry_run: bool,
    rows: Option<u64>,
    imported: i64,
    invalid: i64,
    duplicates: i64,
    mapping: Vec<MappingLine>,
    issues: Vec<IssueLine>,
    issues_more: bool,
}

#[derive(Template)]
#[template(path = "imports.html")]
struct ImportsTemplate {
    t: Tr,
    layout: Layout,
    outcome: Option<Outcome>,
    jobs: Vec<JobLine>,
    map: String,
    /// The industry templates to choose from.
    industries: Vec<IndustryChoice>,
    errors: Vec<String>,
}

fn job_line(tr: Tr, job: ImportJobView) -> JobLine {
    JobLine {
        created: tr.datetime(&job.created_at),
        state_key: format!("imports.state.{}", job.state),
        format: job.format.to_uppercase(),
        imported: job.imported,
        invalid: job.invalid,
        duplicates: job.duplicates,
        id: job.id,
    }
}

fn issue_lines(tr: Tr, issues: &[ImportIssue]) -> Vec<IssueLine> {
    issues
        .iter()
        .take(MAX_SHOWN_ISSUES)
        .map(|issue| IssueLine {
            row: issue.row,
            column: issue.column.clone().unwrap_or_default(),
            field: issue
                .field
                .as_deref()
                .map(|field| {
                    let key = format!("field.{field}");
                    match tr.get(&key) {
                        text if text == key => field.to_owned(),
                        text => text.to_owned(),
                    }
                })
                .unwrap_or_default(),
            reason: match (issue.kind.as_str(), &issue.duplicate_of_row) {
                ("duplicate", Some(row)) => {
                    tr.fill("imports.duplicate_of_row", &[("row", &row.to_string())])
                }
                ("duplicate", None) => tr.get("imports.duplicate_of_customer").to_owned(),
                _ => tr.field_error(&issue.reason).to_owned(),
            },
        })
        .collect()
}

fn mapping_lines(tr: Tr, mapping: &[ColumnMapping]) -> Vec<MappingLine> {
    mapping
        .iter()
        .map(|column| MappingLine {
            column: column.letter.clone(),
            header: column.header.clone().unwrap_or_default(),
            target: match column.target.as_deref() {
                Some(target) => {
                    let key = format!("field.{target}");
                    match tr.get(&key) {
                        text if text == key => target.to_owned(),
                        text => text.to_owned(),
                    }
                }
                None => tr.get("imports.ignored").to_owned(),
            },
            source_key: format!("imports.source.{}", column.source),
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
async fn show(
    state: &AppState,
    page: &Page,
    user: &WebUser,
    outcome: Option<Outcome>,
    map: String,
    industry: &str,
    errors: Vec<String>,
    status: StatusCode,
) -> Response {
    let tr = page.tr;
    let jobs = match state.veil.list_import_jobs(&user.actor).await {
        Ok(jobs) => jobs,
        Err(error) => return error_page(page, Some(user), &error),
    };
    let template = ImportsTemplate {
        t: tr,
        layout: Layout::new(page, Some(user)),
        outcome,
        jobs: jobs.into_iter().map(|job| job_line(tr, job)).collect(),
        map,
        industries: veil_app::industries::industry_keys()
            .map(|key| IndustryChoice {
                key,
                label_key: format!("industry.{key}"),
                selected: key == industry,
            })
            .collect(),
        errors,
    };
    render(&template, tr, status)
}

/// The import page: the upload form and the recent jobs.
pub async fn page(State(state): State<AppState>, page: Page, user: WebUser) -> Response {
    show(
        &state,
        &page,
        &user,
        None,
        String::new(),
        "",
        Vec::new(),
        StatusCode::OK,
    )
    .await
}

/// One job's stored result.
pub async fn job(
    State(state): State<AppState>,
    page: Page,
    user: WebUser,
    Path(id): Path<String>,
) -> Response {
    let tr = page.tr;
    let detail = match state.veil.import_job_detail(&user.actor, &id).await {
        Ok(detail) => detail,
        Err(error) => return error_page(&page, Some(&user), &error),
    };
    let outcome = Outcome {
        job_id: Some(detail.job.id.clone()),
        dry_run: false,
        rows: None,
        imported: detail.job.imported,
        invalid: detail.job.invalid,
        duplicates: detail.job.duplicates,
        mapping: Vec::new(),
        issues_more: detail.issues_truncated || detail.issues.len() > MAX_SHOWN_ISSUES,
        issues: issue_lines(tr, &detail.issues),
    };
    show(
        &state,
        &page,
        &user,
        Some(outcome),
        String::new(),
        "",
        Vec::new(),
        StatusCode::OK,
    )
    .await
}

/// The upload as read: its text fields and the file.
struct Upload {
    csrf: String,
    map: String,
    industry: String,
    dry_run: bool,
    file_name: String,
    bytes: Vec<u8>,
}

async fn read_upload(request: Request, state: &AppState) -> Result<Upload, StatusCode> {
    let mut multipart = Multipart::from_request(request, state)
        .await
        .map_err(|_| StatusCode::BAD_REQUEST)?;
    let mut upload = Upload {
        csrf: String::new(),
        map: String::new(),
        industry: String::new(),
        dry_run: false,
        file_name: String::new(),
        bytes: Vec::new(),
    };
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(error) => return Err(error.status()),
        };
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "file" => {
                upload.file_name = field.file_name().unwrap_or_default().to_owned();
                upload.bytes = field
                    .bytes()
                    .await
                    .map_err(|error| error.status())?
                    .to_vec();
            }
            "csrf" | "map" | "industry" | "dry_run" => {
                let text = field.text().await.map_err(|error| error.status())?;
                match name.as_str() {
                    "csrf" => upload.csrf = text,
                    "map" => upload.map = text,
                    "industry" => upload.industry = text,
                    _ => upload.dry_run = true,
                }
            }
            // Anything else is ignored (and not read into memory).
            _ => {}
        }
    }
    Ok(upload)
}

/// Runs an import from the upload form and shows its result.
pub async fn upload(State(state): State<AppState>, request: Request) -> Response {
    let (mut parts, body) = request.into_parts();
    let page = Page::from_parts(&parts);
    let tr = page.tr;
    let user = match WebUser::from_request_parts(&mut parts, &state).await {
        Ok(user) => user,
        Err(response) => return response,
    };
    let upload = match read_upload(Request::from_parts(parts, body), &state).await {
        Ok(upload) => upload,
        Err(StatusCode::PAYLOAD_TOO_LARGE) => {
            return (StatusCode::PAYLOAD_TOO_LARGE, tr.get("error.too_large")).into_response()
        }
        Err(_) => return (StatusCode::BAD_REQUEST, tr.get("error.bad_form")).into_response(),
    };
    if upload.csrf.is_empty() || !same_token(&upload.csrf, &user.csrf) {
        tracing::warn!(user = %user.actor.user_id, "web: import refused, CSRF token missing or wrong");
        return message_page(
            &page,
            Some(&user),
            StatusCode::FORBIDDEN,
            "error.csrf_title",
            "error.csrf",
        );
    }
    if upload.bytes.is_empty() {
        let errors = vec![tr.get("imports.no_file").to_owned()];
        return show(
            &state,
            &page,
            &user,
            None,
            upload.map,
            &upload.industry,
            errors,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let lower = upload.file_name.to_lowercase();
    let format = if lower.ends_with(".xlsx") {
        FileFormat::Xlsx
    } else if lower.ends_with(".csv") {
        FileFormat::Csv
    } else {
        FileFormat::sniff(&upload.bytes)
    };
    let result = match parse_map(&upload.map) {
        Ok(map) => {
            let options = ImportOptions {
                format,
                map,
                dry_run: upload.dry_run,
                industry: Some(upload.industry.trim().to_owned()).filter(|text| !text.is_empty()),
                cache_mib: veil_app::imports::UPLOAD_IMPORT_CACHE_MIB,
                ..ImportOptions::default()
            };
            state
                .veil
                .import_customers(
                    &user.actor,
                    ImportSource::Bytes(&upload.bytes),
                    &options,
                    &(),
                )
                .await
        }
        Err(error) => Err(error),
    };
    match result {
        Ok(report) => {
            let outcome = Outcome {
                job_id: report.job_id.clone(),
                dry_run: report.dry_run,
                rows: Some(report.rows),
                imported: report.imported as i64,
                invalid: report.invalid as i64,
                duplicates: report.duplicates as i64,
                mapping: mapping_lines(tr, &report.mapping),
                issues_more: report.issues_truncated || report.issues.len() > MAX_SHOWN_ISSUES,
                issues: issue_lines(tr, &report.issues),
            };
            show(
                &state,
                &page,
                &user,
                Some(outcome),
                upload.map,
                &upload.industry,
                Vec::new(),
                StatusCode::OK,
            )
            .await
        }
        Err(AppError::Validation(errors)) => {
            // The field names the option (`map`, `format`, …) or the file's problem; never a value.
            let messages = errors
                .iter()
                .map(|error| {
                    let key = format!("imports.field.{}", error.field);
                    let label = match tr.get(&key) {
                        text if text == key => error.field.clone(),
                        text => text.to_owned(),
                    };
                    format!("{label}: {}", tr.field_error(&error.code))
                })
                .collect();
            show(
                &state,
                &page,
                &user,
                None,
                upload.map,
                &upload.industry,
                messages,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(error) => error_page(&page, Some(&user), &error),
    }
}
