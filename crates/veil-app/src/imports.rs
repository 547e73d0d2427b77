//! Customer import from CSV and XLSX (issue 9): column mapping (explicit, else detected from header names in
//! Chinese and English and from sampling cell values with `veil-pii`'s validators), the create path's
//! validation per row, de-duplication by blind index (against stored customers and within the file, no
//! decryption), sealing exactly as a create does, batches committed with their audit entry and the job's
//! progress in one transaction, and resume after an interruption (a job keyed by the file's SHA-256 remembers its
//! last committed row). The report names rows, columns, fields and reasons — never a value.
//!
//! Columns may also fill the **custom fields** of the rows' industry template (`--map COLUMN=custom.KEY`, or a
//! header equal to a field's key or label when the rows' industry is known: an `industry` column or
//! [`ImportOptions::industry`]). Their values are checked and sealed by the create path's own code
//! ([`crate::customers::validate_input_with_custom`], then `seal_fields`), so a sensitive custom value is sealed with
//! the customer's data key and shown masked exactly as after `POST /api/v1/customers`.
//!
//! Masked export to CSV or XLSX is [`Veil::export_customers_masked`]; unmasked exports stay the governed
//! `POST /api/v1/unmask-requests/{id}/export`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use veil_pii::PiiKind;
use veil_store::{ImportBatchWrite, ImportIssueRow, ImportJobRow, SensitiveField};

use crate::audit::{self, EventExt, Outcome};
use crate::authz::Action;
use crate::customers::{
    input_industry, seal_fields, validate_input, validate_input_with_custom, CustomerInput,
    SealedFields, ValidatedCustomer,
};
use crate::error::{AppError, AppResult, FieldError};
use crate::governance::CUSTOM_PREFIX;
use crate::ids::UserId;
use crate::industries::{CustomFieldDef, FieldType};
use crate::keys::Progress;
use crate::users::Actor;
use crate::{now_ms, today, Veil};

/// Data rows per committed batch. Larger batches write each randomly placed blind-index page to the WAL (and
/// checkpoint it) fewer times: at 1,000,000 customers, batches of 25,000 import 1.3× as many rows per second as
/// batches of 10,000 (docs/benchmarks.md). A crash loses at most one batch of work (about a second), never rows.
pub const DEFAULT_BATCH: usize = 25_000;
/// The largest batch (`--batch`): a batch's sealed rows are held in memory until it commits.
pub const MAX_BATCH: usize = 50_000;
/// Rows sampled (after the header) to detect columns by their values.
const SAMPLE_ROWS: usize = 200;
/// Share of a column's sampled non-empty cells that must pass a kind's validator for the column to be that kind.
const VALUE_SHARE: f64 = 0.8;
/// Issues returned in a report (all are stored with the job).
pub const MAX_REPORTED_ISSUES: usize = 10_000;
/// Test hook point: a batch of an import job committed.
pub const BATCH_COMMITTED: &str = "import.batch_committed";

/// The file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    /// Comma-separated values, UTF-8 (a byte-order mark is skipped).
    Csv,
    /// An Excel workbook (its first sheet).
    Xlsx,
}

impl FileFormat {
    /// `csv` or `xlsx`.
    pub fn as_str(self) -> &'static str {
        match self {
            FileFormat::Csv => "csv",
            FileFormat::Xlsx => "xlsx",
        }
    }

    /// By the file name's extension.
    pub fn from_path(path: &std::path::Path) -> Option<FileFormat> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "csv" | "txt" => Some(FileFormat::Csv),
            "xlsx" | "xlsm" => Some(FileFormat::Xlsx),
            _ => None,
        }
    }

    /// By the content: an XLSX file is a ZIP archive.
    pub fn sniff(bytes: &[u8]) -> FileFormat {
        if bytes.starts_with(b"PK\x03\x04") {
            FileFormat::Xlsx
        } else {
            FileFormat::Csv
        }
    }
}

/// What a column can be imported as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    /// A sensitive field: sealed, masked, blind-indexed.
    Field(SensitiveField),
    /// `male`/`female`/`other`/`unknown` (男/女 accepted).
    Gender,
    /// Labels, split on `,;|、，；`.
    Tags,
    /// Lead source.
    Source,
    /// Industry.
    Industry,
    /// Team.
    Team,
}

impl Target {
    /// The customer field name (`phone`, `id_number`, `tags`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Target::Field(field) => field.as_str(),
            Target::Gender => "gender",
            Target::Tags => "tags",
            Target::Source => "source",
            Target::Industry => "industry",
            Target::Team => "team",
        }
    }

    /// Parses a target as `--map` names it: field names (`phone`), PII kind names (`cn_mobile`, `cn_id`,
    /// `person_name`) and short forms (`mobile`, `id`, `card`).
    pub fn parse(name: &str) -> Option<Target> {
        let name = name.trim().to_ascii_lowercase();
        Some(match name.as_str() {
            "name" | "person_name" => Target::Field(SensitiveField::Name),
            "birth_date" | "birthday" | "dob" => Target::Field(SensitiveField::BirthDate),
            "phone" | "mobile" | "cn_mobile" => Target::Field(SensitiveField::Phone),
            "id_number" | "cn_id" | "id" => Target::Field(SensitiveField::IdNumber),
            "email" => Target::Field(SensitiveField::Email),
            "address" => Target::Field(SensitiveField::Address),
            "bank_card" | "card" => Target::Field(SensitiveField::BankCard),
            "gender" | "sex" => Target::Gender,
            "tags" => Target::Tags,
            "source" => Target::Source,
            "industry" => Target::Industry,
            "team" => Target::Team,
            _ => return None,
        })
    }
}

/// Header names (lower-cased, without spaces, `_` or `-`) and what they mean.
const HEADER_SYNONYMS: &[(&str, Target)] = &[
    ("姓名", Target::Field(SensitiveField::Name)),
    ("名字", Target::Field(SensitiveField::Name)),
    ("客户姓名", Target::Field(SensitiveField::Name)),
    ("客户名称", Target::Field(SensitiveField::Name)),
    ("联系人", Target::Field(SensitiveField::Name)),
    ("name", Target::Field(SensitiveField::Name)),
    ("fullname", Target::Field(SensitiveField::Name)),
    ("customername", Target::Field(SensitiveField::Name)),
    ("出生日期", Target::Field(SensitiveField::BirthDate)),
    ("生日", Target::Field(SensitiveField::BirthDate)),
    ("birthdate", Target::Field(SensitiveField::BirthDate)),
    ("birthday", Target::Field(SensitiveField::BirthDate)),
    ("dob", Target::Field(SensitiveField::BirthDate)),
    ("手机", Target::Field(SensitiveField::Phone)),
    ("手机号", Target::Field(SensitiveField::Phone)),
    ("手机号码", Target::Field(SensitiveField::Phone)),
    ("电话", Target::Field(SensitiveField::Phone)),
    ("联系电话", Target::Field(SensitiveField::Phone)),
    ("联系方式", Target::Field(SensitiveField::Phone)),
    ("mobile", Target::Field(SensitiveField::Phone)),
    ("phone", Target::Field(SensitiveField::Phone)),
    ("cellphone", Target::Field(SensitiveField::Phone)),
    ("tel", Target::Field(SensitiveField::Phone)),
    ("身份证", Target::Field(SensitiveField::IdNumber)),
    ("身份证号", Target::Field(SensitiveField::IdNumber)),
    ("身份证号码", Target::Field(SensitiveField::IdNumber)),
    ("证件号", Target::Field(SensitiveField::IdNumber)),
    ("证件号码", Target::Field(SensitiveField::IdNumber)),
    ("idnumber", Target::Field(SensitiveField::IdNumber)),
    ("idcard", Target::Field(SensitiveField::IdNumber)),
    ("cnid", Target::Field(SensitiveField::IdNumber)),
    ("邮箱", Target::Field(SensitiveField::Email)),
    ("电子邮箱", Target::Field(SensitiveField::Email)),
    ("电子邮件", Target::Field(SensitiveField::Email)),
    ("email", Target::Field(SensitiveField::Email)),
    ("e-mail", Target::Field(SensitiveField::Email)),
    ("mail", Target::Field(SensitiveField::Email)),
    ("地址", Target::Field(SensitiveField::Address)),
    ("住址", Target::Field(SensitiveField::Address)),
    ("联系地址", Target::Field(SensitiveField::Address)),
    ("家庭住址", Target::Field(SensitiveField::Address)),
    ("通讯地址", Target::Field(SensitiveField::Address)),
    ("address", Target::Field(SensitiveField::Address)),
    ("银行卡", Target::Field(SensitiveField::BankCard)),
    ("银行卡号", Target::Field(SensitiveField::BankCard)),
    ("卡号", Target::Field(SensitiveField::BankCard)),
    ("bankcard", Target::Field(SensitiveField::BankCard)),
    ("cardnumber", Target::Field(SensitiveField::BankCard)),
    ("性别", Target::Gender),
    ("gender", Target::Gender),
    ("sex", Target::Gender),
    ("标签", Target::Tags),
    ("tags", Target::Tags),
    ("tag", Target::Tags),
    ("来源", Target::Source),
    ("客户来源", Target::Source),
    ("渠道", Target::Source),
    ("source", Target::Source),
    ("行业", Target::Industry),
    ("industry", Target::Industry),
    ("团队", Target::Team),
    ("team", Target::Team),
];

fn header_key(header: &str) -> String {
    header
        .trim()
        .trim_start_matches('\u{feff}')
        .chars()
        .filter(|c| {
            !c.is_whitespace() && *c != '_' && *c != '-' && *c != '*' && *c != ':' && *c != '：'
        })
        .flat_map(char::to_lowercase)
        .collect()
}

fn header_target(header: &str) -> Option<Target> {
    let key = header_key(header);
    HEADER_SYNONYMS
        .iter()
        .find(|(name, _)| header_key(name) == key)
        .map(|(_, target)| *target)
}

/// Kinds a column is recognised as by its values alone, most specific first. Names and addresses have no
/// checkable shape, so only their headers (or the scanner's name/address evidence) map them.
const VALUE_KINDS: [(PiiKind, SensitiveField); 5] = [
    (PiiKind::CnId, SensitiveField::IdNumber),
    (PiiKind::CnMobile, SensitiveField::Phone),
    (PiiKind::Email, SensitiveField::Email),
    (PiiKind::BankCard, SensitiveField::BankCard),
    (PiiKind::BirthDate, SensitiveField::BirthDate),
];

/// How an import runs.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The file's format.
    pub format: FileFormat,
    /// Explicit mapping: column (its header, `#N` or a letter like `C`) → target name.
    pub map: Vec<(String, String)>,
    /// Owner of every imported customer (user id or username); the caller by default.
    pub owner: Option<String>,
    /// Check and report, write nothing.
    pub dry_run: bool,
    /// Continue the interrupted job of the same file.
    pub resume: bool,
    /// Data rows per transaction.
    pub batch: usize,
    /// Page cache (MiB) of the import's own SQLite connection (see [`veil_store::Store::bulk_session`]).
    pub cache_mib: u32,
    /// WAL volume (MiB) between the import connection's checkpoints.
    pub checkpoint_mib: u32,
    /// The industry template (its key, or its English or Chinese name) of rows whose industry cell is empty — of
    /// every row when no column holds the industry. With it (or an `industry` column) headers naming the
    /// template's custom fields are mapped to them.
    pub industry: Option<String>,
}

/// Default page cache of an import's SQLite connection, MiB: a million customers' blind-index B-trees (three
/// random-order indexes of ~25 MiB each) and the pages the batches append to stay in memory.
pub const DEFAULT_IMPORT_CACHE_MIB: u32 = 512;
/// Page cache of an import uploaded to the server (at most 64 MiB of file), MiB: several can run at once in
/// `veil serve`, so each gets less than a command-line import.
pub const UPLOAD_IMPORT_CACHE_MIB: u32 = 128;
/// Default WAL volume between an import's checkpoints, MiB.
pub const DEFAULT_IMPORT_CHECKPOINT_MIB: u32 = 256;

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            format: FileFormat::Csv,
            map: Vec::new(),
            owner: None,
            dry_run: false,
            resume: false,
            batch: DEFAULT_BATCH,
            cache_mib: DEFAULT_IMPORT_CACHE_MIB,
            checkpoint_mib: DEFAULT_IMPORT_CHECKPOINT_MIB,
            industry: None,
        }
    }
}

/// Parses `--map "手机=mobile,身份证号=cn_id"`.
pub fn parse_map(text: &str) -> AppResult<Vec<(String, String)>> {
    let mut out = Vec::new();
    for pair in text
        .split([',', '，'])
        .filter(|pair| !pair.trim().is_empty())
    {
        let Some((column, target)) = pair.split_once('=') else {
            return Err(AppError::Validation(vec![FieldError::new(
                "map",
                "invalid",
                "each entry is COLUMN=FIELD",
            )]));
        };
        out.push((column.trim().to_owned(), target.trim().to_owned()));
    }
    Ok(out)
}

/// How one column of the file is used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ColumnMapping {
    /// 1-based column number.
    pub column: u32,
    /// The spreadsheet letter (`A`, `B`, … `AA`).
    pub letter: String,
    /// The header (personal data in it masked), when the file has a header row.
    pub header: Option<String>,
    /// The customer field it fills; `null`: ignored.
    pub target: Option<String>,
    /// `explicit` (`--map`), `header`, `values` (detected from the cells), or `ignored`.
    pub source: String,
    /// The PII kind most of the sampled cells are valid as, if any.
    pub detected_kind: Option<String>,
    /// Sampled non-empty cells, and how many were valid as `detected_kind`.
    pub sampled: u32,
    /// See `sampled`.
    pub valid: u32,
    /// Why, when the header and the values disagree or the column is ignored.
    pub note: Option<String>,
}

/// One problem with one row. Never holds the value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ImportIssue {
    /// Row in the file (the header, when present, is row 1), as a spreadsheet numbers it.
    pub row: u64,
    /// `invalid` or `duplicate`.
    pub kind: String,
    /// The column: its header (masked) or `column N`.
    pub column: Option<String>,
    /// The customer field.
    pub field: Option<String>,
    /// Stable reason code: the create path's validation codes (`bad_checksum`, `required`, …), or `duplicate`.
    pub reason: String,
    /// The reason in words.
    pub message: String,
    /// A duplicate of this stored customer.
    pub existing_customer_id: Option<String>,
    /// A duplicate of this earlier row of the file.
    pub duplicate_of_row: Option<u64>,
}

/// The outcome of an import (or of a dry run).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ImportReport {
    /// The job (absent for a dry run).
    pub job_id: Option<String>,
    /// SHA-256 (hex) of the file.
    pub file_sha256: String,
    /// `csv` or `xlsx`.
    pub format: FileFormat,
    /// Nothing was written.
    pub dry_run: bool,
    /// This run continued an interrupted job; its rows up to `resumed_after_row` were committed before.
    pub resumed: bool,
    /// See `resumed`.
    pub resumed_after_row: Option<u64>,
    /// Whether the first row was taken as a header.
    pub has_header: bool,
    /// The mapping used, column by column.
    pub mapping: Vec<ColumnMapping>,
    /// Data rows in the file.
    pub rows: u64,
    /// Customers imported (by the whole job, resumed runs included).
    pub imported: u64,
    /// Rows refused by validation.
    pub invalid: u64,
    /// Rows refused as duplicates.
    pub duplicates: u64,
    /// Each refused row's problems, in row order (at most [`MAX_REPORTED_ISSUES`]).
    pub issues: Vec<ImportIssue>,
    /// More issues exist than are listed.
    pub issues_truncated: bool,
}

impl From<&ImportIssueRow> for ImportIssue {
    fn from(row: &ImportIssueRow) -> Self {
        ImportIssue {
            row: row.row_number as u64,
            kind: row.kind.clone(),
            column: row.column_name.clone(),
            field: row.field.clone(),
            reason: row.reason.clone(),
            message: row.message.clone(),
            existing_customer_id: row.existing_customer_id.clone(),
            duplicate_of_row: row.duplicate_of_row.map(|row| row as u64),
        }
    }
}

/// The input file: a path (streamed) or bytes in memory (the API).
pub enum ImportSource<'a> {
    /// A file on disk.
    Path(&'a std::path::Path),
    /// The file's bytes.
    Bytes(&'a [u8]),
}

/// Rows of the file, one at a time, as text cells.
enum Rows {
    Csv {
        reader: csv::Reader<Box<dyn Read + Send>>,
        record: csv::StringRecord,
        total_bytes: u64,
    },
    Xlsx {
        rows: std::vec::IntoIter<Vec<String>>,
        total: u64,
    },
}

impl Rows {
    fn open(source: &ImportSource<'_>, format: FileFormat) -> AppResult<Rows> {
        match format {
            FileFormat::Csv => {
                let (reader, total_bytes): (Box<dyn Read + Send>, u64) = match source {
                    ImportSource::Path(path) => {
                        let file = std::fs::File::open(path).map_err(file_error)?;
                        let size = file.metadata().map(|meta| meta.len()).unwrap_or(0);
                        (
                            Box::new(std::io::BufReader::with_capacity(1 << 20, file)),
                            size,
                        )
                    }
                    ImportSource::Bytes(bytes) => (
                        Box::new(std::io::Cursor::new(bytes.to_vec())),
                        bytes.len() as u64,
                    ),
                };
                let reader = csv::ReaderBuilder::new()
                    .has_headers(false)
                    .flexible(true)
                    .from_reader(reader);
                Ok(Rows::Csv {
                    reader,
                    record: csv::StringRecord::new(),
                    total_bytes,
                })
            }
            FileFormat::Xlsx => {
                let bytes = match source {
                    ImportSource::Path(path) => std::fs::read(path).map_err(file_error)?,
                    ImportSource::Bytes(bytes) => bytes.to_vec(),
                };
                let rows = read_xlsx(bytes)?;
                let total = rows.len() as u64;
                Ok(Rows::Xlsx {
                    rows: rows.into_iter(),
                    total,
                })
            }
        }
    }

    /// The next row's cells into `cells`; `false` at the end.
    fn next(&mut self, cells: &mut Vec<String>) -> AppResult<bool> {
        cells.clear();
        match self {
            Rows::Csv { reader, record, .. } => {
                match reader.read_record(record) {
                    Ok(true) => {}
                    Ok(false) => return Ok(false),
                    Err(error) => {
                        let line = error
                            .position()
                            .map(|position| position.line())
                            .unwrap_or(0);
                        return Err(AppError::Validation(vec![FieldError::new(
                            "file",
                            "unreadable",
                            match error.kind() {
                                csv::ErrorKind::Utf8 { .. } => {
                                    format!("line {line} is not UTF-8: save the file as CSV UTF-8")
                                }
                                _ => format!("line {line} is not valid CSV"),
                            },
                        )]));
                    }
                }
                cells.extend(record.iter().map(str::to_owned));
                if let Some(first) = cells.first_mut() {
                    if let Some(rest) = first.strip_prefix('\u{feff}') {
                        *first = rest.to_owned();
                    }
                }
                Ok(true)
            }
            Rows::Xlsx { rows, .. } => match rows.next() {
                Some(row) => {
                    *cells = row;
                    Ok(true)
                }
                None => Ok(false),
            },
        }
    }

    /// (position, total) for progress: bytes of a CSV, rows of a workbook.
    fn progress(&self, rows_read: u64) -> (u64, u64) {
        match self {
            Rows::Csv {
                reader,
                total_bytes,
                ..
            } => (reader.position().byte(), *total_bytes),
            Rows::Xlsx { total, .. } => (rows_read, *total),
        }
    }
}

fn file_error(error: std::io::Error) -> AppError {
    AppError::Validation(vec![FieldError::new(
        "file",
        "unreadable",
        format!("cannot read the file: {}", error.kind()),
    )])
}

/// The first sheet of a workbook as text cells. Numbers that are whole print without a fraction (a mobile
/// typed as a number), dates as `YYYY-MM-DD`.
fn read_xlsx(bytes: Vec<u8>) -> AppResult<Vec<Vec<String>>> {
    use calamine::{Data, Reader};
    let unreadable = |what: &str| {
        AppError::Validation(vec![FieldError::new(
            "file",
            "unreadable",
            format!("not a readable XLSX workbook ({what})"),
        )])
    };
    let mut workbook: calamine::Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(bytes))
            .map_err(|_| unreadable("archive"))?;
    let range = workbook
        .worksheet_range_at(0)
        .ok_or_else(|| unreadable("no sheet"))?
        .map_err(|_| unreadable("sheet"))?;
    // Rows and columns before the used range's start are empty in the file: keep numbering as Excel does.
    let (first_row, first_column) = range.start().unwrap_or((0, 0));
    let mut rows = Vec::with_capacity(range.height() + first_row as usize);
    for _ in 0..first_row {
        rows.push(Vec::new());
    }
    for row in range.rows() {
        let mut cells: Vec<String> = vec![String::new(); first_column as usize];
        cells.extend(row.iter().map(|cell| match cell {
            Data::Empty => String::new(),
            Data::String(text) => text.clone(),
            Data::Float(number) => {
                if number.fract() == 0.0 && number.abs() < 1e17 {
                    format!("{}", *number as i64)
                } else {
                    number.to_string()
                }
            }
            Data::Int(number) => number.to_string(),
            Data::Bool(value) => value.to_string(),
            Data::DateTime(value) => excel_date(value.as_f64()),
            Data::DateTimeIso(text) => text.chars().take(10).collect(),
            Data::DurationIso(text) => text.clone(),
            Data::Error(_) => String::new(),
        }));
        rows.push(cells);
    }
    Ok(rows)
}

/// An Excel serial date (days since 1899-12-30) as `YYYY-MM-DD`.
fn excel_date(serial: f64) -> String {
    let days = serial.floor() as i64 - 25_569; // to days since 1970-01-01
                                               // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// `A`, `B`, …, `Z`, `AA`, … for a 0-based column.
fn column_letter(index: usize) -> String {
    let mut index = index + 1;
    let mut letters = Vec::new();
    while index > 0 {
        let rest = (index - 1) % 26;
        letters.push((b'A' + rest as u8) as char);
        index = (index - 1) / 26;
    }
    letters.iter().rev().collect()
}

/// A header as it may be shown: any personal data in it masked (a header row is labels, but a file whose first
/// row is data must not leak through the report).
fn shown_header(header: &str) -> String {
    crate::notes::mask_text(header.trim()).body
}

/// The mapping decided for a file: column index → target, plus the report's description.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Plan {
    has_header: bool,
    columns: Vec<ColumnMapping>,
    /// The industry template of rows without an industry cell ([`ImportOptions::industry`], as a key). Stored
    /// with the job, so a resumed run assembles its rows as the first run did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    industry: Option<String>,
}

impl Plan {
    fn targets(&self) -> Vec<(usize, Target)> {
        self.columns
            .iter()
            .filter_map(|column| {
                column
                    .target
                    .as_deref()
                    .and_then(Target::parse)
                    .map(|target| (column.column as usize - 1, target))
            })
            .collect()
    }

    /// The columns mapped to custom fields: (column index, field key).
    fn custom_targets(&self) -> Vec<(usize, String)> {
        self.columns
            .iter()
            .filter_map(|column| {
                let key = column.target.as_deref()?.strip_prefix(CUSTOM_PREFIX)?;
                Some((column.column as usize - 1, key.to_owned()))
            })
            .collect()
    }

    /// The column a custom-field error of the create path's validation is about: `custom_fields.KEY` is the
    /// column mapped to `custom.KEY`; `custom_fields` as a whole (the row's industry has no template) is the
    /// industry column, when there is one.
    fn custom_column(&self, field: &str) -> Option<usize> {
        let target = match field.strip_prefix("custom_fields") {
            Some("") => Target::Industry.as_str().to_owned(),
            Some(rest) => format!("{CUSTOM_PREFIX}{}", rest.strip_prefix('.')?),
            None => return None,
        };
        self.columns
            .iter()
            .find(|column| column.target.as_deref() == Some(target.as_str()))
            .map(|column| column.column as usize - 1)
    }

    fn column_label(&self, index: usize) -> String {
        match self
            .columns
            .get(index)
            .and_then(|column| column.header.clone())
        {
            Some(header) if !header.is_empty() => header,
            _ => format!("column {}", index + 1),
        }
    }
}

/// Counts, per column, how many sampled cells are valid as each value kind.
fn sample_kinds(
    sample: &[Vec<String>],
    column: usize,
) -> (u32, Option<(PiiKind, SensitiveField, u32)>) {
    let today = today();
    let cells: Vec<&str> = sample
        .iter()
        .filter_map(|row| row.get(column))
        .map(|cell| cell.trim())
        .filter(|cell| !cell.is_empty())
        .take(SAMPLE_ROWS)
        .collect();
    let sampled = cells.len() as u32;
    let mut best: Option<(PiiKind, SensitiveField, u32)> = None;
    for (kind, field) in VALUE_KINDS {
        let valid = cells
            .iter()
            .filter(|cell| veil_pii::validate(kind, cell, today).is_ok())
            .count() as u32;
        if best.is_none_or(|(_, _, most)| valid > most) {
            best = Some((kind, field, valid));
        }
    }
    (sampled, best.filter(|(_, _, valid)| *valid > 0))
}

/// Whether a column's cells look like names or addresses to the scanner (most cells one whole span).
fn scanner_kind(sample: &[Vec<String>], column: usize) -> Option<SensitiveField> {
    let scanner = veil_pii::scan::Scanner::new();
    let today = today();
    let cells: Vec<&str> = sample
        .iter()
        .filter_map(|row| row.get(column))
        .map(|cell| cell.trim())
        .filter(|cell| !cell.is_empty())
        .take(SAMPLE_ROWS)
        .collect();
    if cells.is_empty() {
        return None;
    }
    let mut names = 0usize;
    let mut addresses = 0usize;
    let mut spans = Vec::new();
    for cell in &cells {
        spans.clear();
        scanner.scan_into(cell, today, &mut spans);
        let length = cell.chars().count();
        for span in &spans {
            if (span.end - span.start) * 10 >= length * 8 {
                match span.kind {
                    PiiKind::PersonName => names += 1,
                    PiiKind::Address => addresses += 1,
                    _ => {}
                }
            }
        }
    }
    let needed = (cells.len() as f64 * VALUE_SHARE).ceil() as usize;
    if names >= needed {
        Some(SensitiveField::Name)
    } else if addresses >= needed {
        Some(SensitiveField::Address)
    } else {
        None
    }
}

/// Every template's custom fields (built-in and added), by industry key.
type Templates = BTreeMap<String, Vec<CustomFieldDef>>;

/// The template an industry cell or `--industry` names: its key, or its English or Chinese name (`Real estate`,
/// `房产`), compared as headers are; `None` when it names no template.
fn template_key(text: &str) -> Option<&'static str> {
    // Compared once per row of an industry column: the names are normalised once.
    static NAMES: std::sync::LazyLock<Vec<(String, &'static str)>> =
        std::sync::LazyLock::new(|| {
            crate::industries::BUILTIN
                .iter()
                .flat_map(|template| {
                    [&template.key, &template.name_en, &template.name_zh]
                        .map(|name| (header_key(name), template.key.as_str()))
                })
                .collect()
        });
    if let Some(template) = crate::industries::builtin(text.trim()) {
        return Some(template.key.as_str());
    }
    let wanted = header_key(text);
    NAMES
        .iter()
        .find(|(name, _)| !wanted.is_empty() && *name == wanted)
        .map(|(_, key)| *key)
}

/// Whether `header` names custom field `def`: its key (also as `custom.KEY`, the masked export's header) or its
/// English or Chinese label, with or without a trailing bracketed unit (`年收入（元）` or `年收入`), compared as
/// headers are.
fn names_custom_field(header: &str, def: &CustomFieldDef) -> bool {
    let wanted = header_key(header);
    if wanted.is_empty() {
        return false;
    }
    let without_unit = |label: &str| -> String {
        let label = label.trim();
        match label.find(['(', '（']) {
            Some(start) if start > 0 && label.ends_with([')', '）']) => label[..start].to_owned(),
            _ => label.to_owned(),
        }
    };
    [
        def.key.clone(),
        format!("{CUSTOM_PREFIX}{}", def.key),
        def.label_en.clone(),
        def.label_zh.clone(),
        without_unit(&def.label_en),
        without_unit(&def.label_zh),
    ]
    .iter()
    .any(|name| header_key(name) == wanted)
}

/// The report's note on a column mapped to custom field `key`: the templates that define it and whether it is
/// sealed.
fn custom_note(key: &str, industries: &[&str], templates: &Templates) -> String {
    let sensitive = industries.iter().any(|industry| {
        templates
            .get(*industry)
            .is_some_and(|defs| defs.iter().any(|def| def.key == key && def.sensitive))
    });
    format!(
        "{}custom field of {}{}",
        if sensitive { "sensitive " } else { "" },
        industries.join(", "),
        if sensitive {
            ": sealed, shown masked"
        } else {
            ""
        }
    )
}

/// Decides header or not and the mapping: explicit entries first, then headers naming a custom field of the rows'
/// industry template, then strong value evidence (a column of valid mobiles is `phone` whatever its header
/// says), then header names, then the scanner's names/addresses. A custom field's header comes before the value
/// evidence because values cannot tell a customer's mobile from a guardian's (`guardian_mobile`).
fn plan_mapping(
    first: &[String],
    sample: &[Vec<String>],
    map: &[(String, String)],
    industry: Option<&str>,
    templates: &Templates,
) -> AppResult<Plan> {
    let industry = match industry.map(str::trim).filter(|text| !text.is_empty()) {
        None => None,
        Some(text) => Some(template_key(text).ok_or_else(|| {
            AppError::Validation(vec![FieldError::new(
                "industry",
                "unknown",
                format!(
                    "not an industry template: use one of {}",
                    crate::industries::industry_keys()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )])
        })?),
    };
    let width = sample
        .iter()
        .map(Vec::len)
        .chain(std::iter::once(first.len()))
        .max()
        .unwrap_or(0);
    // The first row is a header unless none of its cells is a known header and some cell is valid personal data.
    let today = today();
    let any_header = first.iter().any(|cell| header_target(cell).is_some())
        || map
            .iter()
            .any(|(column, _)| first.iter().any(|cell| cell.trim() == column))
        || first.iter().any(|cell| {
            templates
                .values()
                .flatten()
                .any(|def| names_custom_field(cell, def))
        });
    let first_is_data = !any_header
        && first.iter().any(|cell| {
            VALUE_KINDS
                .iter()
                .any(|(kind, _)| veil_pii::validate(*kind, cell.trim(), today).is_ok())
        });
    let has_header = !first_is_data;
    let mut data_sample: Vec<Vec<String>> = Vec::with_capacity(sample.len() + 1);
    if !has_header {
        data_sample.push(first.to_vec());
    }
    data_sample.extend(sample.iter().cloned());
    let mut columns: Vec<ColumnMapping> = (0..width)
        .map(|index| ColumnMapping {
            column: index as u32 + 1,
            letter: column_letter(index),
            header: has_header
                .then(|| first.get(index).map(|cell| shown_header(cell)))
                .flatten(),
            target: None,
            source: "ignored".to_owned(),
            detected_kind: None,
            sampled: 0,
            valid: 0,
            note: None,
        })
        .collect();
    let mut taken: BTreeMap<Target, usize> = BTreeMap::new();
    // Custom fields by key → the column that fills it.
    let mut custom_taken: BTreeMap<String, usize> = BTreeMap::new();
    // 1. Explicit.
    let mut explicit = BTreeSet::new();
    for (column, target_name) in map {
        let custom_key = target_name.trim().strip_prefix(CUSTOM_PREFIX);
        let target = match custom_key {
            Some(_) => None,
            None => Some(Target::parse(target_name).ok_or_else(|| {
                AppError::Validation(vec![FieldError::new(
                    "map",
                    "unknown_field",
                    format!(
                        "unknown field {target_name:?}: use name, birth_date, phone (mobile), id_number (cn_id), \
                         email, address, bank_card, gender, tags, source, industry, team or custom.KEY (a custom \
                         field of the rows' industry template)"
                    ),
                )])
            })?),
        };
        let index = resolve_column(column, first, has_header, width).ok_or_else(|| {
            AppError::Validation(vec![FieldError::new(
                "map",
                "unknown_column",
                format!("no column {column:?} in the file (use its header, #N or a letter)"),
            )])
        })?;
        let Some(target) = target else {
            let key = custom_key.unwrap_or_default();
            if !templates.values().flatten().any(|def| def.key == key) {
                // A well-formed key is the caller's own field name (not personal data); anything else is described.
                let shown = if crate::industries::valid_key(key) {
                    format!("custom.{key} is not a field of any industry template")
                } else {
                    "custom.KEY names a field of an industry template by its key".to_owned()
                };
                return Err(AppError::Validation(vec![FieldError::new(
                    "map",
                    "unknown_field",
                    format!("{shown} (GET /api/v1/industries)"),
                )]));
            }
            if custom_taken.insert(key.to_owned(), index).is_some() {
                return Err(AppError::Validation(vec![FieldError::new(
                    "map",
                    "duplicate_field",
                    format!("two columns are mapped to custom.{key}"),
                )]));
            }
            explicit.insert(index);
            columns[index].target = Some(format!("{CUSTOM_PREFIX}{key}"));
            columns[index].source = "explicit".to_owned();
            continue;
        };
        if taken.contains_key(&target) {
            return Err(AppError::Validation(vec![FieldError::new(
                "map",
                "duplicate_field",
                format!("two columns are mapped to {}", target.as_str()),
            )]));
        }
        taken.insert(target, index);
        explicit.insert(index);
        columns[index].target = Some(target.as_str().to_owned());
        columns[index].source = "explicit".to_owned();
    }
    // Value evidence for every column.
    let mut by_values: Vec<Option<SensitiveField>> = vec![None; width];
    for (index, column) in columns.iter_mut().enumerate() {
        let (sampled, best) = sample_kinds(&data_sample, index);
        column.sampled = sampled;
        if let Some((kind, field, valid)) = best {
            column.detected_kind = Some(kind.as_str().to_owned());
            column.valid = valid;
            if sampled > 0 && f64::from(valid) >= f64::from(sampled) * VALUE_SHARE {
                by_values[index] = Some(field);
            }
        }
    }
    let headers: Vec<Option<Target>> = (0..width)
        .map(|index| {
            has_header
                .then(|| first.get(index).and_then(|cell| header_target(cell)))
                .flatten()
        })
        .collect();
    // The industries the rows are known to have: `--industry`, and the templates the industry column's sampled
    // cells name. Their custom fields are what headers may name.
    let industry_column = taken.get(&Target::Industry).copied().or_else(|| {
        (0..width)
            .find(|index| headers[*index] == Some(Target::Industry) && !explicit.contains(index))
    });
    let mut known: Vec<&str> = industry.into_iter().collect();
    if let Some(column) = industry_column {
        for row in &data_sample {
            if let Some(key) = row.get(column).and_then(|cell| template_key(cell)) {
                if !known.contains(&key) {
                    known.push(key);
                }
            }
        }
    }
    // 1b. Headers naming a custom field of a known industry (not a built-in field's header).
    for index in 0..width {
        let Some(header) = first.get(index).filter(|_| has_header) else {
            continue;
        };
        if explicit.contains(&index) || headers[index].is_some() {
            continue;
        }
        let mut keys: BTreeSet<&str> = BTreeSet::new();
        let mut plain = false;
        for industry in &known {
            for def in templates.get(*industry).into_iter().flatten() {
                if names_custom_field(header, def) {
                    keys.insert(def.key.as_str());
                    plain |= !def.sensitive;
                }
            }
        }
        // A plain (not sensitive) custom field is stored as it is: a column whose values are personal data is
        // not given to one by its header alone.
        if plain
            && !keys.is_empty()
            && (by_values[index].is_some() || scanner_kind(&data_sample, index).is_some())
        {
            columns[index].note = Some(
                "its values look like personal data, which a plain custom field would store unencrypted: \
                 not mapped (map it with --map COLUMN=FIELD)"
                    .to_owned(),
            );
            continue;
        }
        let key = match Vec::from_iter(keys).as_slice() {
            [] => continue,
            [key] => *key,
            _ => {
                columns[index].note = Some(
                    "names custom fields of several templates: map it with --map COLUMN=custom.KEY"
                        .to_owned(),
                );
                continue;
            }
        };
        if let Some(other) = custom_taken.get(key) {
            columns[index].note = Some(format!(
                "also looks like custom.{key}, which column {} already fills",
                other + 1
            ));
            continue;
        }
        custom_taken.insert(key.to_owned(), index);
        columns[index].target = Some(format!("{CUSTOM_PREFIX}{key}"));
        columns[index].source = "header".to_owned();
    }
    // 2. Strong value evidence, 3. headers, 4. the scanner's names and addresses.
    for pass in 0..3 {
        for index in 0..width {
            if explicit.contains(&index) || columns[index].target.is_some() {
                continue;
            }
            let candidate = match pass {
                0 => by_values[index].map(Target::Field),
                1 => headers[index],
                _ => (headers[index].is_none())
                    .then(|| scanner_kind(&data_sample, index))
                    .flatten()
                    .map(Target::Field),
            };
            let Some(target) = candidate else { continue };
            if let Some(other) = taken.get(&target) {
                columns[index].note = Some(format!(
                    "also looks like {}, which column {} already fills",
                    target.as_str(),
                    other + 1
                ));
                continue;
            }
            taken.insert(target, index);
            columns[index].target = Some(target.as_str().to_owned());
            columns[index].source = if pass == 1 { "header" } else { "values" }.to_owned();
            if pass == 0 {
                if let Some(header) = headers[index].filter(|header| *header != target) {
                    columns[index].note = Some(format!(
                        "the header says {} but the values are {}",
                        header.as_str(),
                        target.as_str()
                    ));
                }
            }
        }
    }
    if !taken.contains_key(&Target::Field(SensitiveField::Name)) {
        return Err(AppError::Validation(vec![FieldError::new(
            "mapping",
            "no_name_column",
            "no column holds the customer's name: name it 姓名/name in the header or map it with --map COLUMN=name",
        )]));
    }
    if !custom_taken.is_empty() {
        let industry_column = taken.get(&Target::Industry).copied();
        if industry_column.is_none() && industry.is_none() {
            return Err(AppError::Validation(vec![FieldError::new(
                "mapping",
                "no_industry",
                "custom fields need the rows' industry: add an industry (行业) column or give the industry \
                 (--industry KEY, API industry=KEY)",
            )]));
        }
        for (key, index) in &custom_taken {
            let defining: Vec<&str> = match industry_column {
                // Rows name their industries: the note lists the known ones that define the field.
                Some(_) => known
                    .iter()
                    .copied()
                    .filter(|industry| {
                        templates
                            .get(*industry)
                            .is_some_and(|defs| defs.iter().any(|def| def.key == *key))
                    })
                    .collect(),
                None => industry.into_iter().collect(),
            };
            // Every row has `--industry`: a field its template lacks would refuse every row, so say it once.
            if industry_column.is_none()
                && defining.iter().all(|industry| {
                    !templates
                        .get(*industry)
                        .is_some_and(|defs| defs.iter().any(|def| def.key == *key))
                })
            {
                return Err(AppError::Validation(vec![FieldError::new(
                    "map",
                    "unknown_field",
                    format!(
                        "custom.{key} is not a field of the {} template (GET /api/v1/industries)",
                        industry.unwrap_or_default()
                    ),
                )]));
            }
            if !defining.is_empty() {
                columns[*index].note = Some(custom_note(key, &defining, templates));
            }
        }
    }
    Ok(Plan {
        has_header,
        columns,
        industry: industry.map(str::to_owned),
    })
}

fn resolve_column(column: &str, first: &[String], has_header: bool, width: usize) -> Option<usize> {
    if has_header {
        if let Some(index) = first.iter().position(|cell| cell.trim() == column) {
            return Some(index);
        }
    }
    if let Some(number) = column.strip_prefix('#') {
        return number
            .parse::<usize>()
            .ok()
            .filter(|number| (1..=width).contains(number))
            .map(|number| number - 1);
    }
    if !column.is_empty() && column.len() <= 3 && column.chars().all(|c| c.is_ascii_uppercase()) {
        let index = column
            .bytes()
            .fold(0usize, |acc, byte| acc * 26 + usize::from(byte - b'A' + 1))
            - 1;
        return (index < width).then_some(index);
    }
    None
}

fn gender_value(cell: &str) -> String {
    match cell.trim() {
        "男" | "M" | "m" | "Male" | "MALE" => "male".to_owned(),
        "女" | "F" | "f" | "Female" | "FEMALE" => "female".to_owned(),
        "其他" => "other".to_owned(),
        "未知" => "unknown".to_owned(),
        other => other.to_ascii_lowercase(),
    }
}

/// What a row's custom-field cells are assembled with.
struct CustomColumns {
    /// The columns mapped to custom fields: (column index, field key).
    columns: Vec<(usize, String)>,
    /// The industry of rows without an industry cell.
    industry: Option<String>,
    /// Every template's fields, to read the cells by their field's type and to validate them.
    templates: Templates,
}

impl CustomColumns {
    fn new(plan: &Plan, templates: Templates) -> CustomColumns {
        CustomColumns {
            columns: plan.custom_targets(),
            industry: plan.industry.clone(),
            templates,
        }
    }

    /// The fields of `input`'s industry, when it has a template.
    fn defs(&self, input: &CustomerInput) -> Option<&[CustomFieldDef]> {
        input_industry(input)
            .and_then(|industry| self.templates.get(industry))
            .map(Vec::as_slice)
    }
}

/// `2024/5/1`, `2024.5.1` or `2024-5-1` as `2024-05-01`.
fn padded_date(cell: &str) -> Option<String> {
    let parts: Vec<&str> = cell.split(['/', '.', '-']).collect();
    let [year, month, day] = parts.as_slice() else {
        return None;
    };
    let all_digits =
        |part: &str| !part.is_empty() && part.bytes().all(|byte| byte.is_ascii_digit());
    if year.len() != 4 || month.len() > 2 || day.len() > 2 || !parts.iter().copied().all(all_digits)
    {
        return None;
    }
    Some(format!("{year}-{month:0>2}-{day:0>2}"))
}

/// A custom field's cell as the create path's JSON would carry it: a number as a JSON number (thousands
/// separators dropped), yes/no words (是/否) as booleans, an option's English or Chinese label as the option's
/// value, a slashed date as `YYYY-MM-DD`. Anything else stays text, and the create path's validation decides
/// (`invalid_type`, `invalid_option`, …), as it does for a cell whose row has no template defining the field.
fn custom_cell_value(def: Option<&CustomFieldDef>, cell: &str) -> serde_json::Value {
    let text = || serde_json::Value::String(cell.to_owned());
    let Some(def) = def else { return text() };
    match def.field_type {
        FieldType::Text => text(),
        FieldType::Number => cell
            .chars()
            .filter(|character| !matches!(character, ',' | '，' | ' '))
            .collect::<String>()
            .parse::<serde_json::Number>()
            .map(serde_json::Value::Number)
            .unwrap_or_else(|_| text()),
        FieldType::Bool => match cell.to_lowercase().as_str() {
            "true" | "yes" | "y" | "1" | "是" | "√" | "✓" => serde_json::Value::Bool(true),
            "false" | "no" | "n" | "0" | "否" | "×" | "✗" => serde_json::Value::Bool(false),
            _ => text(),
        },
        FieldType::Enum => {
            let wanted = header_key(cell);
            def.options
                .iter()
                .find(|option| option.value == cell)
                .or_else(|| {
                    def.options.iter().find(|option| {
                        [&option.value, &option.label_en, &option.label_zh]
                            .iter()
                            .any(|name| header_key(name) == wanted)
                    })
                })
                .map(|option| serde_json::Value::String(option.value.clone()))
                .unwrap_or_else(text)
        }
        FieldType::Date => padded_date(cell)
            .map(serde_json::Value::String)
            .unwrap_or_else(text),
    }
}

/// One row turned into the create path's input: built-in fields from `targets`, the industry (a template named
/// by key or name becomes its key; rows without one get `custom.industry`), and the custom fields of
/// `custom.columns` as a `custom_fields` object.
fn row_input(
    cells: &[String],
    targets: &[(usize, Target)],
    custom: &CustomColumns,
    owner: Option<&UserId>,
) -> CustomerInput {
    let mut input = CustomerInput {
        owner: owner.map(ToString::to_string),
        ..CustomerInput::default()
    };
    for (index, target) in targets {
        let Some(cell) = cells.get(*index).map(|cell| cell.trim()) else {
            continue;
        };
        if cell.is_empty() {
            continue;
        }
        let value = Some(cell.to_owned());
        match target {
            Target::Field(SensitiveField::Name) => input.name = value,
            Target::Field(SensitiveField::BirthDate) => input.birth_date = value,
            Target::Field(SensitiveField::Phone) => input.phone = value,
            Target::Field(SensitiveField::IdNumber) => input.id_number = value,
            Target::Field(SensitiveField::Email) => input.email = value,
            Target::Field(SensitiveField::Address) => input.address = value,
            Target::Field(SensitiveField::BankCard) => input.bank_card = value,
            Target::Gender => input.gender = Some(gender_value(cell)),
            Target::Tags => {
                input.tags = Some(
                    cell.split([',', ';', '|', '、', '，', '；'])
                        .map(str::trim)
                        .filter(|tag| !tag.is_empty())
                        .map(str::to_owned)
                        .collect(),
                )
            }
            Target::Source => input.source = value,
            Target::Industry => {
                input.industry =
                    Some(template_key(cell).map_or_else(|| cell.to_owned(), str::to_owned))
            }
            Target::Team => input.team = value,
        }
    }
    if input.industry.is_none() {
        input.industry = custom.industry.clone();
    }
    if !custom.columns.is_empty() {
        let defs = custom.defs(&input);
        let mut values = serde_json::Map::new();
        for (index, key) in &custom.columns {
            let Some(cell) = cells.get(*index).map(|cell| cell.trim()) else {
                continue;
            };
            if cell.is_empty() {
                continue;
            }
            let def = defs.and_then(|defs| defs.iter().find(|def| def.key == *key));
            values.insert(key.clone(), custom_cell_value(def, cell));
        }
        if !values.is_empty() {
            input.custom_fields = Some(serde_json::Value::Object(values));
        }
    }
    input
}

/// The keys imports de-duplicate on, as the create path does: mobile and resident ID number.
const DEDUP_FIELDS: [SensitiveField; 2] = [SensitiveField::Phone, SensitiveField::IdNumber];

/// A validated row waiting for its batch's ownership check and de-duplication.
struct Pending {
    row: u64,
    customer: ValidatedCustomer,
    keys: Vec<(SensitiveField, [u8; 16])>,
    /// Its fields sealed on the reading thread (not in a dry run).
    sealed: Option<SealedFields>,
}

/// What the reading thread hands over, in file order.
enum Prepared {
    /// A batch of rows, read, validated and sealed.
    Batch(PreparedBatch),
    /// The end of the file: data rows counted, and (position, total) of the reader.
    End { rows: u64, position: (u64, u64) },
}

/// One batch as the reading thread prepared it.
struct PreparedBatch {
    /// The rows that passed validation, in file order.
    valid: Vec<Pending>,
    /// The problems of the rows that did not.
    issues: Vec<ImportIssueRow>,
    /// Rows refused by validation.
    invalid: u64,
    /// The batch's last row of the file: where a resumed job continues once this batch is committed.
    last_row: u64,
    /// Data rows read so far, and (position, total) of the reader after this batch, for progress.
    rows: u64,
    position: (u64, u64),
}

/// A batch after its ownership check and de-duplication: the customers to insert and the job's counts.
struct ScreenedBatch {
    accepted: Vec<ValidatedCustomer>,
    sealed: Option<Vec<SealedFields>>,
    issues: Vec<ImportIssueRow>,
    invalid: i64,
    duplicates: i64,
    last_row: u64,
    position: (u64, u64),
}

/// Batches prepared ahead of the one being written: reading, validation and sealing of the next batch overlap
/// the current batch's de-duplication look-ups and insert, and memory stays bounded.
const BATCHES_AHEAD: usize = 2;

/// The reading side of an import, run on a blocking thread: parses rows, validates them as the create path
/// does, computes their de-duplication keys and (unless a dry run) seals their fields. Everything that needs the
/// database — ownership, de-duplication against stored customers and earlier rows, the insert — stays with the
/// caller, which takes the batches in file order, so the result is the same as doing it all in one loop.
struct RowReader {
    rows: Rows,
    /// The sampled rows (and a headerless file's first row), read before the mapping was decided.
    buffered: std::collections::VecDeque<Vec<String>>,
    exhausted: bool,
    row_number: u64,
    rows_read: u64,
    /// Rows up to this one were committed by an earlier run of the job.
    skip_until: u64,
    batch_size: usize,
    plan: Plan,
    targets: Vec<(usize, Target)>,
    custom: CustomColumns,
    column_of: HashMap<&'static str, usize>,
    owner: Option<UserId>,
    /// The keyring in force, refreshed by the writing side before each batch (a rotation reloads it).
    keyring: std::sync::Arc<std::sync::Mutex<std::sync::Arc<crate::Keyring>>>,
    seal: bool,
}

impl RowReader {
    /// Sends batches until the end of the file, an error, or the receiver going away (the import failed).
    fn run(mut self, sender: tokio::sync::mpsc::Sender<AppResult<Prepared>>) {
        loop {
            let message = match self.next_batch() {
                Ok(Some(batch)) => Ok(Prepared::Batch(batch)),
                Ok(None) => Ok(Prepared::End {
                    rows: self.rows_read,
                    position: self.rows.progress(self.rows_read),
                }),
                Err(error) => Err(error),
            };
            let last = !matches!(message, Ok(Prepared::Batch(_)));
            if sender.blocking_send(message).is_err() || last {
                return;
            }
        }
    }

    /// The next batch of rows that are neither blank nor committed by an earlier run, prepared; `None` at the end.
    fn next_batch(&mut self) -> AppResult<Option<PreparedBatch>> {
        let mut batch: Vec<(u64, Vec<String>)> = Vec::with_capacity(self.batch_size);
        while batch.len() < self.batch_size {
            let cells = match self.buffered.pop_front() {
                Some(cells) => cells,
                None if self.exhausted => break,
                None => {
                    let mut cells = Vec::new();
                    if !self.rows.next(&mut cells)? {
                        self.exhausted = true;
                        break;
                    }
                    cells
                }
            };
            self.row_number += 1;
            if self.row_number <= self.skip_until {
                self.rows_read += 1;
                continue;
            }
            if cells.iter().all(|cell| cell.trim().is_empty()) {
                continue;
            }
            self.rows_read += 1;
            batch.push((self.row_number, cells));
        }
        if batch.is_empty() {
            return Ok(None);
        }
        Ok(Some(self.prepare(batch)))
    }

    fn prepare(&self, batch: Vec<(u64, Vec<String>)>) -> PreparedBatch {
        let keyring = self
            .keyring
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        let last_row = batch.last().map_or(self.row_number, |(row, _)| *row);
        let mut issues = Vec::new();
        let mut invalid = 0;
        let mut valid = Vec::with_capacity(batch.len());
        for (row, cells) in batch {
            let input = row_input(&cells, &self.targets, &self.custom, self.owner.as_ref());
            drop(cells);
            let customer = match validate_input_with_custom(&input, self.custom.defs(&input)) {
                Ok(customer) => customer,
                Err(errors) => {
                    invalid += 1;
                    push_field_issues(&mut issues, row, &errors, &self.column_of, &self.plan);
                    continue;
                }
            };
            let keys = DEDUP_FIELDS
                .iter()
                .filter_map(|field| {
                    customer.value(*field).map(|normalized| {
                        (
                            *field,
                            keyring.blind_indexer().index(field.as_str(), normalized),
                        )
                    })
                })
                .collect();
            let sealed = self.seal.then(|| seal_fields(&keyring, &customer));
            valid.push(Pending {
                row,
                customer,
                keys,
                sealed,
            });
        }
        PreparedBatch {
            valid,
            issues,
            invalid,
            last_row,
            rows: self.rows_read,
            position: self.rows.progress(self.rows_read),
        }
    }
}

/// What a run accumulates.
#[derive(Default)]
struct Tally {
    imported: u64,
    invalid: u64,
    duplicates: u64,
    rows: u64,
    issues: Vec<ImportIssueRow>,
    issues_total: u64,
}

impl Veil {
    /// Imports customers from a CSV or XLSX file (see the module documentation). The report holds no value
    /// from the file. `progress` gets (position, total) after every batch — bytes of a CSV, rows of a workbook —
    /// and the point [`BATCH_COMMITTED`].
    pub async fn import_customers(
        &self,
        actor: &Actor,
        source: ImportSource<'_>,
        options: &ImportOptions,
        progress: &(dyn Progress + Sync),
    ) -> AppResult<ImportReport> {
        self.authorize(actor, Action::CustomerCreate, None).await?;
        let file_sha256 = match &source {
            ImportSource::Path(path) => {
                let mut file = std::fs::File::open(path).map_err(file_error)?;
                let mut hasher = Sha256::new();
                std::io::copy(&mut file, &mut hasher).map_err(file_error)?;
                crate::audit::hex(&hasher.finalize())
            }
            ImportSource::Bytes(bytes) => crate::audit::hex(&Sha256::digest(bytes)),
        };
        let owner = match options.owner.as_deref() {
            None => None,
            Some(text) => Some(self.resolve_import_owner(text).await?),
        };
        // Ownership is the same for every row: check it once (sales import only their own customers, …).
        let mut owner_teams = HashMap::new();
        {
            let mut probe = validate_input(&CustomerInput {
                name: Some("probe".to_owned()),
                owner: owner.map(|owner| owner.to_string()),
                ..CustomerInput::default()
            })
            .map_err(AppError::Validation)?;
            self.resolve_customer_ownership(actor, &mut probe, &mut owner_teams)
                .await?;
        }
        let running = self.store().running_import_job(&file_sha256).await?;
        let resume_job = match (&running, options.resume, options.dry_run) {
            (_, _, true) => None,
            (Some(job), true, false) => {
                if job.actor_id != actor.user_id.to_string() {
                    return Err(AppError::Conflict(
                        "the interrupted import of this file was started by someone else".to_owned(),
                    ));
                }
                Some(job.clone())
            }
            (None, true, false) => {
                return Err(AppError::Conflict(
                    "no interrupted import of this file to resume".to_owned(),
                ))
            }
            (Some(job), false, false) => {
                return Err(AppError::Conflict(format!(
                    "an interrupted import of this file exists (job {}, rows up to {} committed): resume it with \
                     --resume (API: resume=true)",
                    job.id, job.rows_done
                )))
            }
            (None, false, false) => None,
        };
        let mut rows = Rows::open(&source, options.format)?;
        let mut first = Vec::new();
        if !rows.next(&mut first)? {
            return Err(AppError::Validation(vec![FieldError::new(
                "file",
                "empty",
                "the file has no rows",
            )]));
        }
        let mut sample = Vec::new();
        let mut cells = Vec::new();
        while sample.len() < SAMPLE_ROWS && rows.next(&mut cells)? {
            sample.push(std::mem::take(&mut cells));
        }
        let templates = self.all_industry_field_defs().await?;
        let plan = match &resume_job {
            Some(job) => serde_json::from_str::<Plan>(&job.mapping)
                .map_err(|_| AppError::Internal("stored import mapping unreadable".to_owned()))?,
            None => plan_mapping(
                &first,
                &sample,
                &options.map,
                options.industry.as_deref(),
                &templates,
            )?,
        };
        let targets = plan.targets();
        let owner_id = owner;
        let job_id = match (&resume_job, options.dry_run) {
            (Some(job), _) => Some(job.id.clone()),
            (None, true) => None,
            (None, false) => {
                let now = now_ms();
                let job = ImportJobRow {
                    id: uuid::Uuid::now_v7().to_string(),
                    file_sha256: file_sha256.clone(),
                    actor_id: actor.user_id.to_string(),
                    owner_id: owner_id.map(|owner| owner.to_string()),
                    format: options.format.as_str().to_owned(),
                    has_header: plan.has_header,
                    mapping: serde_json::to_string(&plan)
                        .map_err(|error| AppError::Internal(error.to_string()))?,
                    state: "running".to_owned(),
                    rows_done: 0,
                    imported: 0,
                    invalid: 0,
                    duplicates: 0,
                    created_at: now,
                    updated_at: now,
                };
                self.store().create_import_job(&job).await?;
                Some(job.id)
            }
        };
        let skip_until = resume_job.as_ref().map_or(0, |job| job.rows_done as u64);
        let column_of: HashMap<&'static str, usize> = targets
            .iter()
            .map(|(index, target)| (target.as_str(), *index))
            .collect();
        let mut buffered: std::collections::VecDeque<Vec<String>> = sample.into();
        let mut row_number = 1u64;
        if !plan.has_header {
            buffered.push_front(first.clone());
            row_number = 0;
        }
        let keyring = std::sync::Arc::new(std::sync::Mutex::new(self.keyring()));
        let reader = RowReader {
            rows,
            buffered,
            exhausted: false,
            row_number,
            rows_read: 0,
            skip_until,
            batch_size: options.batch.clamp(1, MAX_BATCH),
            plan: plan.clone(),
            targets,
            custom: CustomColumns::new(&plan, templates),
            column_of: column_of.clone(),
            owner: owner_id,
            keyring: keyring.clone(),
            seal: job_id.is_some(),
        };
        // The de-duplication look-ups and the writes go through the import's own connection (a large page cache).
        let bulk = self
            .store()
            .bulk_session(options.cache_mib, options.checkpoint_mib)
            .await?;
        // Reading, validation and sealing run on a blocking thread, a few batches ahead of the writes here.
        let (sender, mut receiver) = tokio::sync::mpsc::channel(BATCHES_AHEAD);
        tokio::task::spawn_blocking(move || reader.run(sender));
        let mut tally = Tally::default();
        let mut seen: HashMap<[u8; 16], u64> = HashMap::new();
        let (position, total) = loop {
            *keyring
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()) = self.keyring();
            let message = receiver.recv().await.ok_or_else(|| {
                AppError::Internal("the import's reading thread stopped".to_owned())
            })??;
            match message {
                Prepared::Batch(batch) => {
                    tally.rows = batch.rows;
                    let batch = self
                        .screen_batch(
                            &bulk,
                            actor,
                            &plan,
                            &column_of,
                            &mut owner_teams,
                            batch,
                            job_id.is_some(),
                            &mut seen,
                            &mut tally,
                        )
                        .await?;
                    let (position, total) = batch.position;
                    if let Some(job_id) = job_id.as_deref() {
                        self.commit_batch(&bulk, actor, job_id, batch).await?;
                        progress.reached(BATCH_COMMITTED);
                    }
                    progress.update(position, total);
                }
                Prepared::End { rows, position } => {
                    tally.rows = rows;
                    break position;
                }
            }
        };
        bulk.close().await;
        progress.update(position.max(total), total);
        // The job's totals and issues (earlier runs of a resumed job included) come from the database.
        let (imported, invalid, duplicates, issues, issues_total) = match &job_id {
            Some(id) => {
                let job = self
                    .store()
                    .import_job(id)
                    .await?
                    .ok_or_else(|| AppError::Internal("import job vanished".to_owned()))?;
                let stored = self
                    .store()
                    .import_issues(id, MAX_REPORTED_ISSUES as i64 + 1)
                    .await?;
                let issues: Vec<ImportIssue> = stored.iter().map(ImportIssue::from).collect();
                let entry = audit::event(Some(actor), "customer.import.finish", Outcome::Ok).detail(
                    serde_json::json!({
                        "job_id": id, "format": options.format.as_str(), "rows": tally.rows,
                        "imported": job.imported, "invalid": job.invalid, "duplicates": job.duplicates,
                        "resumed": resume_job.is_some(),
                    }),
                );
                self.store()
                    .finish_import_job(id, now_ms(), &[entry])
                    .await?;
                let total = (job.invalid + job.duplicates) as u64;
                (
                    job.imported as u64,
                    job.invalid as u64,
                    job.duplicates as u64,
                    issues,
                    total,
                )
            }
            None => {
                let entry = audit::event(Some(actor), "customer.import.check", Outcome::Ok).detail(
                    serde_json::json!({
                        "dry_run": true, "format": options.format.as_str(), "rows": tally.rows,
                        "valid": tally.imported, "invalid": tally.invalid, "duplicates": tally.duplicates,
                    }),
                );
                self.record(&[entry]).await?;
                tally
                    .issues
                    .sort_by_key(|issue| (issue.row_number, issue.seq));
                let issues = tally.issues.iter().map(ImportIssue::from).collect();
                (
                    tally.imported,
                    tally.invalid,
                    tally.duplicates,
                    issues,
                    tally.issues_total,
                )
            }
        };
        let mut issues: Vec<ImportIssue> = issues;
        let issues_truncated =
            issues.len() > MAX_REPORTED_ISSUES || issues_total > issues.len() as u64;
        issues.truncate(MAX_REPORTED_ISSUES);
        tracing::info!(
            job = job_id.as_deref().unwrap_or("dry-run"),
            actor = %actor.user_id,
            imported, invalid, duplicates,
            "customer import finished"
        );
        Ok(ImportReport {
            job_id,
            file_sha256,
            format: options.format,
            dry_run: options.dry_run,
            resumed: resume_job.is_some(),
            resumed_after_row: resume_job.as_ref().map(|job| job.rows_done as u64),
            has_header: plan.has_header,
            mapping: plan.columns,
            rows: tally.rows,
            imported,
            invalid,
            duplicates,
            issues,
            issues_truncated,
        })
    }

    async fn resolve_import_owner(&self, text: &str) -> AppResult<UserId> {
        if let Ok(id) = text.parse::<UserId>() {
            if self.store().user_by_id(&id.to_string()).await?.is_some() {
                return Ok(id);
            }
        }
        let user = self.store().user_by_username(text).await?.ok_or_else(|| {
            AppError::Validation(vec![FieldError::new("owner", "unknown", "no such user")])
        })?;
        user.id
            .parse()
            .map_err(|_| AppError::Internal("stored user id is not a user id".to_owned()))
    }

    /// Checks ownership of and de-duplicates one prepared batch: what is left to commit (nothing in a dry run,
    /// whose counts and issues go straight to the tally).
    #[allow(clippy::too_many_arguments)]
    async fn screen_batch(
        &self,
        bulk: &veil_store::Store,
        actor: &Actor,
        plan: &Plan,
        column_of: &HashMap<&'static str, usize>,
        owner_teams: &mut HashMap<UserId, Option<String>>,
        batch: PreparedBatch,
        writes: bool,
        seen: &mut HashMap<[u8; 16], u64>,
        tally: &mut Tally,
    ) -> AppResult<ScreenedBatch> {
        let PreparedBatch {
            valid,
            mut issues,
            invalid,
            last_row,
            position,
            ..
        } = batch;
        let mut invalid = invalid as i64;
        let mut duplicates = 0i64;
        let mut pending: Vec<Pending> = Vec::with_capacity(valid.len());
        for mut item in valid {
            if let Err(error) = self
                .resolve_customer_ownership(actor, &mut item.customer, owner_teams)
                .await
            {
                let errors = match error {
                    AppError::Validation(errors) => errors,
                    AppError::Forbidden(why) => vec![FieldError::new("team", "forbidden", why)],
                    other => return Err(other),
                };
                invalid += 1;
                push_field_issues(&mut issues, item.row, &errors, column_of, plan);
                continue;
            }
            pending.push(item);
        }
        // Stored customers with the same mobile or ID number, a few indexed look-ups for the whole batch.
        let mut existing: HashMap<[u8; 16], String> = HashMap::new();
        for field in DEDUP_FIELDS {
            let wanted: Vec<Vec<u8>> = pending
                .iter()
                .flat_map(|pending| pending.keys.iter())
                .filter(|(key_field, _)| *key_field == field)
                .map(|(_, key)| key.to_vec())
                .collect();
            if wanted.is_empty() {
                continue;
            }
            for (key, id) in bulk.customers_by_blind_indexes(field, &wanted).await? {
                if let Ok(key) = <[u8; 16]>::try_from(key.as_slice()) {
                    existing.insert(key, id);
                }
            }
        }
        let mut accepted: Vec<ValidatedCustomer> = Vec::with_capacity(pending.len());
        let mut sealed: Option<Vec<SealedFields>> = Some(Vec::with_capacity(pending.len()));
        for item in pending {
            let mut duplicate = None;
            for (field, key) in &item.keys {
                if let Some(id) = existing.get(key) {
                    duplicate = Some((*field, Some(id.clone()), None));
                    break;
                }
                if let Some(row) = seen.get(key) {
                    duplicate = Some((*field, None, Some(*row)));
                    break;
                }
            }
            match duplicate {
                Some((field, existing_id, earlier_row)) => {
                    duplicates += 1;
                    let index = column_of.get(field.as_str()).copied();
                    issues.push(ImportIssueRow {
                        row_number: item.row as i64,
                        seq: 0,
                        kind: "duplicate".to_owned(),
                        column_name: index.map(|index| plan.column_label(index)),
                        field: Some(field.as_str().to_owned()),
                        reason: "duplicate".to_owned(),
                        message: match (&existing_id, earlier_row) {
                            (Some(_), _) => {
                                format!("a stored customer has the same {}", field.as_str())
                            }
                            _ => format!(
                                "an earlier row of this file has the same {}",
                                field.as_str()
                            ),
                        },
                        existing_customer_id: existing_id,
                        duplicate_of_row: earlier_row.map(|row| row as i64),
                    });
                }
                None => {
                    for (_, key) in &item.keys {
                        seen.insert(*key, item.row);
                    }
                    accepted.push(item.customer);
                    sealed = match (sealed, item.sealed) {
                        (Some(mut sealed), Some(fields)) => {
                            sealed.push(fields);
                            Some(sealed)
                        }
                        _ => None,
                    };
                }
            }
        }
        tally.invalid += invalid as u64;
        tally.duplicates += duplicates as u64;
        tally.issues_total += issues.len() as u64;
        if !writes {
            tally.imported += accepted.len() as u64;
            if tally.issues.len() <= MAX_REPORTED_ISSUES {
                tally.issues.extend(issues);
            }
            issues = Vec::new();
        }
        Ok(ScreenedBatch {
            accepted,
            sealed,
            issues,
            invalid,
            duplicates,
            last_row,
            position,
        })
    }

    /// Inserts a screened batch with its audit entry and the job's progress, in one transaction on the import's
    /// connection.
    async fn commit_batch(
        &self,
        bulk: &veil_store::Store,
        actor: &Actor,
        job_id: &str,
        batch: ScreenedBatch,
    ) -> AppResult<()> {
        let ScreenedBatch {
            accepted,
            sealed,
            issues,
            invalid,
            duplicates,
            last_row,
            ..
        } = batch;
        let imported = accepted.len() as i64;
        let write = ImportBatchWrite {
            job_id: job_id.to_owned(),
            rows_done: last_row as i64,
            imported,
            invalid,
            duplicates,
            issues,
            now: now_ms(),
        };
        let detail = serde_json::json!({
            "job_id": job_id, "count": imported, "up_to_row": last_row,
            "invalid": invalid, "duplicates": duplicates,
        });
        self.insert_validated_in(
            bulk,
            &accepted,
            sealed,
            actor,
            "customer.import",
            detail,
            Some(&write),
            veil_store::customers::LIFECYCLE_CUSTOMER,
        )
        .await?;
        Ok(())
    }
}

/// Columns of a masked export, in order; after them, one `custom.KEY` column per custom field of the industry
/// templates the exported customers have ([`Veil::export_customers_masked`]).
pub const EXPORT_COLUMNS: [&str; 15] = [
    "id",
    "name",
    "gender",
    "birth_date",
    "phone",
    "id_number",
    "email",
    "address",
    "bank_card",
    "tags",
    "owner",
    "team",
    "source",
    "industry",
    "created_at",
];

/// What a masked export wrote.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ExportSummary {
    /// `csv` or `xlsx`.
    pub format: FileFormat,
    /// The export profile (`masked`).
    pub profile: String,
    /// Customers written.
    pub rows: u64,
}

/// A cell a spreadsheet would not run as a formula (CSV only; XLSX cells are written as strings).
fn csv_cell(text: &str) -> std::borrow::Cow<'_, str> {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        std::borrow::Cow::Owned(format!("'{text}"))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

impl Veil {
    /// Writes the caller's customers (their list scope) in the `masked` export profile: each field as the
    /// policy's masked export says — the masked display stored at write time by default, a redaction, or a
    /// stored per-rule display (fully masked where none is stored). Custom fields follow as `custom.KEY` columns
    /// (the fields of every template some customer in scope has, in template order) holding what the customer
    /// page shows: the masked display of a sensitive one, the value of a plain one. Nothing is decrypted. Each page of 1,000
    /// customers is audited (`customer.export_masked`, naming them) before it is written. Unmasked exports are
    /// the governed `POST /api/v1/unmask-requests/{id}/export`, which needs an approved grant.
    pub async fn export_customers_masked(
        &self,
        actor: &Actor,
        format: FileFormat,
        out: &mut (dyn std::io::Write + Send),
        progress: &(dyn Progress + Sync),
    ) -> AppResult<ExportSummary> {
        use veil_mask::policy::{ExportProfile, View};
        let scope = self.authorize(actor, Action::CustomerList, None).await?;
        let total = self.store().count_customers().await?.max(0) as u64;
        let (_, policy) = self.current_policy().await?;
        // Per field: None keeps the stored masked display; Some(Ok(text)) replaces it; Some(Err(key)) reads the
        // stored display of that rule.
        let mut rules: Vec<(SensitiveField, Result<String, String>)> = Vec::new();
        for field in SensitiveField::ALL {
            match policy.export(field.as_str(), ExportProfile::Masked) {
                View::Apply(veil_mask::Operator::DefaultMask) => {}
                View::Apply(veil_mask::Operator::Redact { replacement }) => rules.push((
                    field,
                    Ok(replacement
                        .clone()
                        .unwrap_or_else(|| veil_mask::display::FULL_MASK.to_owned())),
                )),
                View::Apply(operator) => {
                    rules.push((field, Err(crate::displays::rule_key(operator))))
                }
                // A masked profile never shows originals: fail safe.
                View::Plaintext => {
                    rules.push((field, Ok(veil_mask::display::FULL_MASK.to_owned())))
                }
            }
        }
        let custom_columns = self.export_custom_columns(&scope).await?;
        let header: Vec<String> = EXPORT_COLUMNS
            .iter()
            .map(|name| (*name).to_owned())
            .chain(
                custom_columns
                    .iter()
                    .map(|key| format!("{CUSTOM_PREFIX}{key}")),
            )
            .collect();
        let mut csv_writer = match format {
            FileFormat::Csv => Some(csv::Writer::from_writer(&mut *out)),
            FileFormat::Xlsx => None,
        };
        let mut workbook = rust_xlsxwriter::Workbook::new();
        let xlsx_error = |error: rust_xlsxwriter::XlsxError| AppError::Internal(error.to_string());
        let csv_error =
            |error: csv::Error| AppError::Internal(format!("cannot write the export: {error}"));
        let sheet = workbook.add_worksheet();
        match csv_writer.as_mut() {
            Some(writer) => writer.write_record(&header).map_err(csv_error)?,
            None => {
                for (column, name) in header.iter().enumerate() {
                    sheet
                        .write_string(0, column as u16, name)
                        .map_err(xlsx_error)?;
                }
            }
        }
        let mut cursor: Option<String> = None;
        let mut rows = 0u64;
        loop {
            let page = self
                .store()
                .list_masked_customers(&scope, &Default::default(), cursor.as_deref(), 1_000)
                .await?;
            let Some(last) = page.last() else { break };
            cursor = Some(last.id.clone());
            self.record(&[
                audit::event(Some(actor), "customer.export_masked", Outcome::Ok)
                    .customers(page.iter().map(|row| row.id.clone()))
                    .detail(
                        serde_json::json!({"profile": "masked", "format": format.as_str(),
                                           "returned": page.len()}),
                    ),
            ])
            .await?;
            let stored = {
                let wanted: Vec<(String, String)> = rules
                    .iter()
                    .filter_map(|(field, rule)| {
                        rule.as_ref()
                            .err()
                            .map(|key| (field.as_str().to_owned(), key.clone()))
                    })
                    .collect();
                if wanted.is_empty() {
                    Default::default()
                } else {
                    let ids: Vec<String> = page.iter().map(|row| row.id.clone()).collect();
                    self.store().displays_for(&ids, &wanted).await?
                }
            };
            for row in page {
                let mut view = Veil::view(row);
                for (field, rule) in &rules {
                    let display = match rule {
                        Ok(text) => text.clone(),
                        Err(key) => stored
                            .get(&(view.id.to_string(), field.as_str().to_owned(), key.clone()))
                            .cloned()
                            .unwrap_or_else(|| veil_mask::display::FULL_MASK.to_owned()),
                    };
                    crate::customers::set_display(&mut view, field.as_str(), display);
                }
                let custom = custom_columns
                    .iter()
                    .map(|key| custom_export_cell(view.custom_fields.get(key)))
                    .collect::<Vec<_>>();
                let mut record: Vec<String> = vec![
                    view.id.to_string(),
                    view.name,
                    view.gender.unwrap_or_default(),
                    view.birth_date.unwrap_or_default(),
                    view.phone.unwrap_or_default(),
                    view.id_number.unwrap_or_default(),
                    view.email.unwrap_or_default(),
                    view.address.unwrap_or_default(),
                    view.bank_card.unwrap_or_default(),
                    view.tags.join(","),
                    view.owner.unwrap_or_default(),
                    view.team.unwrap_or_default(),
                    view.source.unwrap_or_default(),
                    view.industry.unwrap_or_default(),
                    view.created_at,
                ];
                record.extend(custom);
                rows += 1;
                match csv_writer.as_mut() {
                    Some(writer) => writer
                        .write_record(
                            record
                                .iter()
                                .map(|cell| csv_cell(cell))
                                .collect::<Vec<_>>()
                                .iter()
                                .map(|cell| cell.as_ref()),
                        )
                        .map_err(csv_error)?,
                    None => {
                        let row_index = u32::try_from(rows).map_err(|_| {
                            AppError::Validation(vec![FieldError::new(
                                "format",
                                "too_many_rows",
                                "more customers than one XLSX sheet holds: export as CSV",
                            )])
                        })?;
                        for (column, cell) in record.iter().enumerate() {
                            sheet
                                .write_string(row_index, column as u16, cell)
                                .map_err(xlsx_error)?;
                        }
                    }
                }
            }
            progress.update(rows, total);
        }
        let wrote_csv = match csv_writer.take() {
            Some(mut writer) => {
                writer.flush().map_err(|error| {
                    AppError::Internal(format!("cannot write the export: {error}"))
                })?;
                true
            }
            None => false,
        };
        drop(csv_writer);
        if !wrote_csv {
            let bytes = workbook.save_to_buffer().map_err(xlsx_error)?;
            out.write_all(&bytes)
                .map_err(|error| AppError::Internal(format!("cannot write the export: {error}")))?;
        }
        tracing::info!(actor = %actor.user_id, rows, format = format.as_str(), "masked customer export");
        Ok(ExportSummary {
            format,
            profile: "masked".to_owned(),
            rows,
        })
    }
}

/// A custom field's export cell: text as it is (a sensitive field's value is its masked display), numbers and
/// booleans as JSON writes them, nothing for a field the customer has no value for.
fn custom_export_cell(value: Option<&serde_json::Value>) -> String {
    match value {
        None | Some(serde_json::Value::Null) => String::new(),
        Some(serde_json::Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    }
}

impl Veil {
    /// The custom-field keys a masked export of `scope` has columns for: the fields (built-in, then added) of each
    /// template that customers in scope have, in template order, each key once. One grouped count, no decryption.
    async fn export_custom_columns(
        &self,
        scope: &veil_store::CustomerScope,
    ) -> AppResult<Vec<String>> {
        let present: BTreeSet<String> = self
            .store()
            .customer_industry_counts(scope, 1_000)
            .await?
            .into_iter()
            .filter_map(|(industry, _)| industry)
            .collect();
        let mut keys: Vec<String> = Vec::new();
        for template in self.list_industries_unchecked().await? {
            if !present.contains(&template.key) {
                continue;
            }
            for def in template.fields {
                if !keys.contains(&def.key) {
                    keys.push(def.key);
                }
            }
        }
        Ok(keys)
    }
}

fn push_field_issues(
    issues: &mut Vec<ImportIssueRow>,
    row: u64,
    errors: &[FieldError],
    column_of: &HashMap<&'static str, usize>,
    plan: &Plan,
) {
    for (seq, error) in errors.iter().enumerate() {
        let index = column_of
            .get(error.field.as_str())
            .copied()
            .or_else(|| plan.custom_column(&error.field));
        issues.push(ImportIssueRow {
            row_number: row as i64,
            seq: seq as i64,
            kind: "invalid".to_owned(),
            column_name: index.map(|index| plan.column_label(index)),
            field: Some(error.field.clone()),
            reason: error.code.clone(),
            message: error.message.clone(),
            existing_customer_id: None,
            duplicate_of_row: None,
        });
    }
}

#[cfg(test)]
mod backend_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_in_both_languages() {
        assert_eq!(
            header_target(" 手机号 "),
            Some(Target::Field(SensitiveField::Phone))
        );
        assert_eq!(
            header_target("ID_Number"),
            Some(Target::Field(SensitiveField::IdNumber))
        );
        assert_eq!(
            header_target("身份证号码"),
            Some(Target::Field(SensitiveField::IdNumber))
        );
        assert_eq!(
            header_target("E-mail"),
            Some(Target::Field(SensitiveField::Email))
        );
        assert_eq!(header_target("备注"), None);
        assert_eq!(
            Target::parse("cn_id"),
            Some(Target::Field(SensitiveField::IdNumber))
        );
        assert_eq!(
            Target::parse("mobile"),
            Some(Target::Field(SensitiveField::Phone))
        );
    }

    #[test]
    fn letters_and_dates() {
        assert_eq!(column_letter(0), "A");
        assert_eq!(column_letter(25), "Z");
        assert_eq!(column_letter(26), "AA");
        assert_eq!(excel_date(45_658.0), "2025-01-01");
        assert_eq!(excel_date(25_569.0), "1970-01-01");
        assert_eq!(resolve_column("C", &[], false, 5), Some(2));
        assert_eq!(resolve_column("#2", &[], false, 5), Some(1));
    }

    #[test]
    fn custom_cells_are_read_as_their_field_type() {
        let finance: &'static [CustomFieldDef] =
            &crate::industries::builtin("finance").unwrap().fields;
        let services: &'static [CustomFieldDef] =
            &crate::industries::builtin("services").unwrap().fields;
        let field =
            |defs: &'static [CustomFieldDef], key: &str| -> Option<&'static CustomFieldDef> {
                defs.iter().find(|def| def.key == key)
            };
        let check = |def: Option<&CustomFieldDef>, cell: &str, expected: serde_json::Value| {
            assert_eq!(custom_cell_value(def, cell), expected, "{cell}");
        };
        let income = field(finance, "annual_income");
        check(income, "1,200,000", serde_json::json!(1_200_000));
        check(income, "876543.21", serde_json::json!(876_543.21));
        check(income, "很多", serde_json::json!("很多"));
        let qualified = field(finance, "qualified_investor");
        check(qualified, "是", serde_json::json!(true));
        check(qualified, "No", serde_json::json!(false));
        check(qualified, "maybe", serde_json::json!("maybe"));
        let risk = field(finance, "risk_level");
        check(risk, "R3", serde_json::json!("R3"));
        check(risk, "r3", serde_json::json!("R3"));
        check(risk, "R3 平衡型", serde_json::json!("R3"));
        check(risk, "R9", serde_json::json!("R9"));
        check(
            field(services, "membership_level"),
            "金卡",
            serde_json::json!("gold"),
        );
        let assessed = field(finance, "risk_assessed_on");
        check(assessed, "2024/5/1", serde_json::json!("2024-05-01"));
        check(assessed, "2024-05-01", serde_json::json!("2024-05-01"));
        check(assessed, "5/1/2024", serde_json::json!("5/1/2024"));
        check(
            field(finance, "employer"),
            "  上海 ",
            serde_json::json!("  上海 "),
        );
        // No definition (the row's industry lacks the field): text, for the validation to refuse.
        check(None, "42", serde_json::json!("42"));
    }

    #[test]
    fn headers_and_industries_name_templates() {
        let finance = &crate::industries::builtin("finance").unwrap().fields;
        let income = finance
            .iter()
            .find(|def| def.key == "annual_income")
            .unwrap();
        for header in [
            "annual_income",
            "Annual Income",
            "custom.annual_income",
            "年收入（元）",
            "年收入",
            "Annual income (CNY)",
        ] {
            assert!(names_custom_field(header, income), "{header}");
        }
        for header in ["收入", "income", "", "annual"] {
            assert!(!names_custom_field(header, income), "{header}");
        }
        assert_eq!(template_key("finance"), Some("finance"));
        assert_eq!(template_key(" 房产 "), Some("real_estate"));
        assert_eq!(template_key("Real Estate"), Some("real_estate"));
        assert_eq!(template_key("银行/证券/保险"), Some("finance"));
        assert_eq!(template_key("shipping"), None);
        assert_eq!(template_key(""), None);
    }

    #[test]
    fn parses_map() {
        let map = parse_map("手机=mobile,身份证号=cn_id").unwrap();
        assert_eq!(map.len(), 2);
        assert_eq!(map[0], ("手机".to_owned(), "mobile".to_owned()));
        assert!(parse_map("nonsense").is_err());
    }
}
