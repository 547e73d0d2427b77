//! Imports and masked exports on both backends.

use super::*;
use crate::both_backends;
use crate::testing::Harness;
use crate::users::Role;

// Synthetic, checksum-valid values (no real person).
const ID_A: &str = "110101198402276151";
const ID_B: &str = "11010119900307803X";
const PHONE_A: &str = "13912345678";
const PHONE_B: &str = "13812345679";
const PHONE_C: &str = "13712345670";
const PHONE_D: &str = "15012345671";

fn all_plaintexts() -> Vec<&'static str> {
    vec![
        ID_A,
        ID_B,
        PHONE_A,
        PHONE_B,
        PHONE_C,
        PHONE_D,
        "11010119840227615X",
        "1391234567",
        "欧阳娜娜",
        "张伟",
        "李娜",
        "王芳",
        "赵磊",
        "nana@example.com",
    ]
}

fn assert_clean(text: &str, what: &str) {
    for value in all_plaintexts() {
        assert!(!text.contains(value), "plaintext {value} in {what}");
    }
}

async fn import_csv(
    harness: &Harness,
    actor: &Actor,
    csv: &str,
    options: ImportOptions,
) -> AppResult<ImportReport> {
    harness
        .veil
        .import_customers(actor, ImportSource::Bytes(csv.as_bytes()), &options, &())
        .await
}

async fn audit_text(harness: &Harness) -> String {
    let entries = harness
        .veil
        .store()
        .audit_entries_after(0, 10_000)
        .await
        .unwrap();
    entries
        .iter()
        .map(|entry| {
            format!(
                "{} {:?} {}",
                entry.event.action, entry.event.fields, entry.event.detail
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

both_backends!(bad_rows_are_reported_and_good_rows_kept, |harness| {
    let admin = harness.actor("ada", Role::Admin, None).await;
    // A stored customer with ID_B: the file's row with ID_B is a duplicate of it.
    let existing = harness
        .veil
        .create_customer(
            &admin,
            &CustomerInput {
                name: Some("王芳".to_owned()),
                id_number: Some(ID_B.to_owned()),
                ..CustomerInput::default()
            },
            false,
        )
        .await
        .unwrap();
    // The create path's reason for a wrong check digit, to compare with the import's.
    let create_reason = match harness
        .veil
        .create_customer(
            &admin,
            &CustomerInput {
                name: Some("赵磊".to_owned()),
                id_number: Some("11010119840227615X".to_owned()),
                ..CustomerInput::default()
            },
            false,
        )
        .await
    {
        Err(AppError::Validation(errors)) => errors[0].code.clone(),
        other => panic!("expected a validation error, got {other:?}"),
    };
    let csv = format!(
        "姓名,手机号,身份证号,邮箱\n\
         欧阳娜娜,{PHONE_A},{ID_A},nana@example.com\n\
         赵磊,{PHONE_B},11010119840227615X,\n\
         李娜,1391234567,,\n\
         张伟,{PHONE_C},,\n\
         王芳,{PHONE_D},{ID_B},\n\
         ,{PHONE_D},,\n\
         张伟二,{PHONE_A},,\n"
    );
    let report = import_csv(&harness, &admin, &csv, ImportOptions::default())
        .await
        .unwrap();
    assert_eq!(report.rows, 7);
    assert_eq!(report.imported, 2, "{report:?}");
    assert_eq!(report.invalid, 3);
    assert_eq!(report.duplicates, 2);
    let by_row = |row: u64| report.issues.iter().filter(move |issue| issue.row == row);
    let bad_id = by_row(3).next().unwrap();
    assert_eq!(bad_id.kind, "invalid");
    assert_eq!(bad_id.column.as_deref(), Some("身份证号"));
    assert_eq!(bad_id.field.as_deref(), Some("id_number"));
    assert_eq!(bad_id.reason, create_reason);
    let bad_phone = by_row(4).next().unwrap();
    assert_eq!(bad_phone.column.as_deref(), Some("手机号"));
    assert_eq!(bad_phone.field.as_deref(), Some("phone"));
    let stored_duplicate = by_row(6).next().unwrap();
    assert_eq!(stored_duplicate.kind, "duplicate");
    assert_eq!(stored_duplicate.field.as_deref(), Some("id_number"));
    assert_eq!(
        stored_duplicate.existing_customer_id.as_deref(),
        Some(existing.id.to_string().as_str())
    );
    let missing_name = by_row(7).next().unwrap();
    assert_eq!(missing_name.reason, "required");
    assert_eq!(missing_name.field.as_deref(), Some("name"));
    let file_duplicate = by_row(8).next().unwrap();
    assert_eq!(file_duplicate.kind, "duplicate");
    assert_eq!(file_duplicate.field.as_deref(), Some("phone"));
    assert_eq!(file_duplicate.duplicate_of_row, Some(2));
    // The mapping says where each field came from.
    let sources: Vec<(Option<&str>, &str)> = report
        .mapping
        .iter()
        .map(|column| (column.target.as_deref(), column.source.as_str()))
        .collect();
    assert_eq!(sources[0], (Some("name"), "header"));
    assert_eq!(sources[1], (Some("phone"), "values"));
    assert_eq!(sources[2], (Some("id_number"), "header"));
    assert_eq!(harness.veil.count_customers().await.unwrap(), 3);
    // Imported like a create: found through the blind index, masked.
    let found = harness
        .veil
        .search_customers(
            &admin,
            &crate::customers::ExactSearch {
                field: SensitiveField::Phone,
                value: PHONE_C.to_owned(),
            },
        )
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].phone.as_deref(), Some("137****5670"));
    // Nothing in the report or the audit trail repeats a value; the batch is audited with its counts.
    assert_clean(&serde_json::to_string(&report).unwrap(), "the report");
    let audit = audit_text(&harness).await;
    assert_clean(&audit, "the audit trail");
    assert!(audit.contains("customer.import "), "{audit}");
    assert!(audit.contains("\"duplicates\":2"), "{audit}");
    assert!(audit.contains("customer.import.finish"), "{audit}");
    // Importing the same file again: every good row is now a duplicate of a stored customer.
    let again = import_csv(&harness, &admin, &csv, ImportOptions::default())
        .await
        .unwrap();
    assert_eq!(again.imported, 0);
    assert_eq!(again.duplicates, 4);
    assert_eq!(harness.veil.count_customers().await.unwrap(), 3);
    // A dry run writes nothing.
    let dry = import_csv(
        &harness,
        &admin,
        &format!("姓名,手机\n新客户,{PHONE_B}\n"),
        ImportOptions {
            dry_run: true,
            ..ImportOptions::default()
        },
    )
    .await
    .unwrap();
    assert_eq!((dry.imported, dry.job_id.is_none()), (1, true));
    assert_eq!(harness.veil.count_customers().await.unwrap(), 3);
});

both_backends!(
    mislabelled_and_headerless_columns_are_detected_by_values,
    |harness| {
        let admin = harness.actor("ada", Role::Admin, None).await;
        // "联系方式" (contact: usually the mobile) holds ID numbers; "备用" (spare) holds mobiles.
        let csv = format!("姓名,联系方式,备用\n张伟,{ID_A},{PHONE_A}\n李娜,{ID_B},{PHONE_B}\n");
        let report = import_csv(&harness, &admin, &csv, ImportOptions::default())
            .await
            .unwrap();
        assert_eq!(report.imported, 2, "{report:?}");
        assert_eq!(report.mapping[1].target.as_deref(), Some("id_number"));
        assert_eq!(report.mapping[1].source, "values");
        assert!(report.mapping[1].note.is_some());
        assert_eq!(report.mapping[2].target.as_deref(), Some("phone"));
        // No header at all: the first row is data (it holds valid numbers and no known header).
        let csv = format!("赵磊,{PHONE_C},{ID_A}\n王芳,{PHONE_D},\n");
        let options = ImportOptions {
            map: parse_map("#1=name").unwrap(),
            ..ImportOptions::default()
        };
        let report = import_csv(&harness, &admin, &csv, options).await.unwrap();
        assert!(!report.has_header);
        assert_eq!(report.rows, 2);
        assert_eq!(report.mapping[1].target.as_deref(), Some("phone"));
        assert_eq!(report.mapping[2].target.as_deref(), Some("id_number"));
        // Row 1 is ID_A again: a duplicate of the first import's row, reported at row 1; row 2 is new.
        assert_eq!((report.imported, report.duplicates), (1, 1), "{report:?}");
        assert_eq!(report.issues[0].row, 1);
        assert!(report.mapping.iter().all(|column| column.header.is_none()));
        assert_clean(&serde_json::to_string(&report).unwrap(), "the report");
    }
);

both_backends!(duplicates_are_caught_across_batches_read_ahead, |harness| {
    // Batches of two rows: the reading thread prepares batches while earlier ones are still being written,
    // so a row's earlier twin may be in the same batch, in one committed just before, or stored before the
    // import. Each is caught, and reported as it was before reading moved to its own thread.
    let admin = harness.actor("ada", Role::Admin, None).await;
    let mut generator = crate::demo_data::DemoGenerator::new(7);
    let people: Vec<_> = (0..8).map(|_| generator.next_customer()).collect();
    let stored = harness
        .veil
        .create_customer(
            &admin,
            &CustomerInput {
                name: Some(people[7].name.clone()),
                phone: Some(people[7].phone.clone()),
                ..CustomerInput::default()
            },
            false,
        )
        .await
        .unwrap();
    let stored_id = stored.id.to_string();
    let line = |index: usize, phone: usize, id: usize| {
        format!(
            "{},{},{}\n",
            people[index].name, people[phone].phone, people[id].id_number
        )
    };
    let csv = [
        "name,mobile,id_number\n".to_owned(),
        line(0, 0, 0), // row 2
        line(1, 1, 1), // row 3
        line(2, 0, 2), // row 4: row 2's mobile (the batch before)
        line(3, 3, 1), // row 5: row 3's ID number (the batch before)
        line(4, 7, 4), // row 6: the stored customer's mobile
        line(5, 5, 5), // row 7
        line(6, 6, 6), // row 8
        line(2, 6, 2), // row 9: row 8's mobile (the same batch)
    ]
    .concat();
    let options = ImportOptions {
        batch: 2,
        ..ImportOptions::default()
    };
    // (row, field, earlier row, stored customer) of each duplicate.
    type Found = (u64, Option<String>, Option<u64>, Option<String>);
    let found = |report: &ImportReport| -> Vec<Found> {
        assert_eq!(
            (
                report.rows,
                report.imported,
                report.duplicates,
                report.invalid
            ),
            (8, 4, 4, 0),
            "{report:?}"
        );
        report
            .issues
            .iter()
            .map(|issue| {
                (
                    issue.row,
                    issue.field.clone(),
                    issue.duplicate_of_row,
                    issue.existing_customer_id.clone(),
                )
            })
            .collect()
    };
    let phone = || Some("phone".to_owned());
    // A dry run (nothing sealed, nothing written): every twin in the file is an earlier row.
    let dry = import_csv(
        &harness,
        &admin,
        &csv,
        ImportOptions {
            dry_run: true,
            ..options.clone()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        found(&dry),
        vec![
            (4, phone(), Some(2), None),
            (5, Some("id_number".to_owned()), Some(3), None),
            (6, phone(), None, Some(stored_id.clone())),
            (9, phone(), Some(8), None),
        ]
    );
    assert_eq!(harness.veil.count_customers().await.unwrap(), 1);
    // The import: a twin in a committed batch is a stored customer by then (rows 2 and 3's).
    let report = import_csv(&harness, &admin, &csv, options).await.unwrap();
    let issues = found(&report);
    assert_eq!(harness.veil.count_customers().await.unwrap(), 5);
    let rows: Vec<(u64, Option<u64>)> = issues
        .iter()
        .map(|(row, _, earlier, _)| (*row, *earlier))
        .collect();
    assert_eq!(rows, vec![(4, None), (5, None), (6, None), (9, Some(8))]);
    let existing: Vec<Option<String>> = issues.into_iter().map(|(.., id)| id).collect();
    assert_eq!(existing[2].as_deref(), Some(stored_id.as_str()));
    assert!(existing[3].is_none());
    let from_row_2 = existing[0].clone().expect("row 2's customer");
    let from_row_3 = existing[1].clone().expect("row 3's customer");
    assert!(from_row_2 != stored_id && from_row_3 != stored_id && from_row_2 != from_row_3);
});

/// Fails the import right after the second committed batch, as a crash would.
struct CrashAfter(std::sync::atomic::AtomicUsize, usize);

impl Progress for CrashAfter {
    fn update(&self, _done: u64, _total: u64) {}

    fn reached(&self, point: &'static str) {
        if point == BATCH_COMMITTED
            && self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == self.1
        {
            panic!("simulated crash after a committed batch");
        }
    }
}

both_backends!(
    an_interrupted_import_resumes_without_duplicating,
    |harness| {
        let admin = harness.actor("ada", Role::Admin, None).await;
        let mut generator = crate::demo_data::DemoGenerator::new(99);
        let mut csv = String::from("name,mobile,id_number\n");
        for _ in 0..25 {
            let customer = generator.next_customer();
            csv.push_str(&format!(
                "{},{},{}\n",
                customer.name, customer.phone, customer.id_number
            ));
        }
        let options = ImportOptions {
            batch: 10,
            ..ImportOptions::default()
        };
        let veil = std::sync::Arc::new(harness.reopen().await);
        let crashed = {
            let (veil, admin, csv, options) =
                (veil.clone(), admin.clone(), csv.clone(), options.clone());
            tokio::spawn(async move {
                let crash = CrashAfter(Default::default(), 2);
                veil.import_customers(
                    &admin,
                    ImportSource::Bytes(csv.as_bytes()),
                    &options,
                    &crash,
                )
                .await
            })
            .await
        };
        assert!(crashed.is_err(), "the simulated crash must stop the import");
        assert_eq!(harness.veil.count_customers().await.unwrap(), 20);
        // Without --resume the interrupted job is not silently started over.
        let refused = import_csv(&harness, &admin, &csv, options.clone()).await;
        assert!(matches!(refused, Err(AppError::Conflict(_))), "{refused:?}");
        let report = import_csv(
            &harness,
            &admin,
            &csv,
            ImportOptions {
                resume: true,
                ..options.clone()
            },
        )
        .await
        .unwrap();
        assert!(report.resumed);
        assert_eq!(report.resumed_after_row, Some(21));
        assert_eq!(report.imported, 25);
        assert_eq!(report.duplicates, 0);
        assert_eq!(harness.veil.count_customers().await.unwrap(), 25);
        // The job is finished: nothing left to resume.
        let nothing = import_csv(
            &harness,
            &admin,
            &csv,
            ImportOptions {
                resume: true,
                ..options
            },
        )
        .await;
        assert!(matches!(nothing, Err(AppError::Conflict(_))));
    }
);

both_backends!(xlsx_round_trip_exports_masked_values_only, |harness| {
    let admin = harness.actor("ada", Role::Admin, None).await;
    let sales = harness.actor("sally", Role::Sales, Some("east")).await;
    // A workbook as a user would make it: the mobile typed as a number, the ID as text.
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    for (column, header) in ["客户姓名", "手机号码", "身份证号码", "性别"]
        .iter()
        .enumerate()
    {
        sheet.write_string(0, column as u16, *header).unwrap();
    }
    sheet.write_string(1, 0, "欧阳娜娜").unwrap();
    sheet.write_number(1, 1, 13_912_345_678.0).unwrap();
    sheet.write_string(1, 2, ID_A).unwrap();
    sheet.write_string(1, 3, "女").unwrap();
    sheet.write_string(2, 0, "张伟").unwrap();
    sheet.write_string(2, 1, PHONE_B).unwrap();
    sheet.write_string(2, 2, "bad").unwrap();
    let bytes = workbook.save_to_buffer().unwrap();
    let report = harness
        .veil
        .import_customers(
            &sales,
            ImportSource::Bytes(&bytes),
            &ImportOptions {
                format: FileFormat::Xlsx,
                ..ImportOptions::default()
            },
            &(),
        )
        .await
        .unwrap();
    assert_eq!((report.imported, report.invalid), (1, 1), "{report:?}");
    assert_eq!(report.issues[0].row, 3);
    assert_eq!(report.issues[0].column.as_deref(), Some("身份证号码"));
    // A salesperson imports only customers they own.
    let page = harness.veil.list_customers(&sales, None, 10).await.unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].gender.as_deref(), Some("female"));
    assert_eq!(
        page.items[0].owner.as_deref(),
        Some(sales.user_id.to_string().as_str())
    );
    let forbidden = harness
        .veil
        .import_customers(
            &sales,
            ImportSource::Bytes(&bytes),
            &ImportOptions {
                format: FileFormat::Xlsx,
                owner: Some("ada".to_owned()),
                dry_run: true,
                ..ImportOptions::default()
            },
            &(),
        )
        .await;
    assert!(matches!(forbidden, Err(AppError::Forbidden(_))));
    // Export masked as XLSX and read it back: masked displays only.
    let mut out = Vec::new();
    let summary = harness
        .veil
        .export_customers_masked(&admin, FileFormat::Xlsx, &mut out, &())
        .await
        .unwrap();
    assert_eq!(summary.rows, 1);
    let rows = read_xlsx(out).unwrap();
    assert_eq!(
        rows[0][..5],
        ["id", "name", "gender", "birth_date", "phone"]
    );
    assert_eq!(rows[1][4], "139****5678");
    assert_eq!(rows[1][5], "110101********6151");
    let text = format!("{rows:?}");
    assert_clean(&text, "the XLSX export");
    // CSV too.
    let mut out = Vec::new();
    harness
        .veil
        .export_customers_masked(&admin, FileFormat::Csv, &mut out, &())
        .await
        .unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("139****5678"), "{text}");
    assert_clean(&text, "the CSV export");
    assert!(audit_text(&harness)
        .await
        .contains("customer.export_masked"));
});

// ------------------------------------------------------------------------------------------- custom fields

/// A planted income (its text cannot occur in base64) and employer: sensitive custom fields of `finance`.
const INCOME: &str = "876543.21";
const EMPLOYER: &str = "上海浦江量子科技有限公司";
const EMPLOYER_PART: &str = "浦江量子";

fn assert_no_custom_plaintext(text: &str, what: &str) {
    for needle in [INCOME, EMPLOYER_PART] {
        assert!(!text.contains(needle), "{needle} in {what}: {text}");
    }
}

/// Every customer's `custom_fields` and `custom_sealed` columns, as stored.
async fn stored_custom_columns(harness: &Harness) -> Vec<(String, Option<String>)> {
    let sql = "SELECT custom_fields, custom_sealed FROM customer ORDER BY id";
    match harness.veil.store().pool() {
        veil_store::Pool::Sqlite(pool) => veil_store::sqlx::query_as(sql)
            .fetch_all(pool)
            .await
            .unwrap(),
        veil_store::Pool::Postgres(pool) => veil_store::sqlx::query_as(sql)
            .fetch_all(pool)
            .await
            .unwrap(),
    }
}

/// The create path's reason codes for `custom_fields` of a finance customer.
async fn create_reasons(
    harness: &Harness,
    actor: &Actor,
    custom_fields: serde_json::Value,
) -> Vec<(String, String)> {
    let input = CustomerInput {
        name: Some("赵磊".to_owned()),
        industry: Some("finance".to_owned()),
        custom_fields: Some(custom_fields),
        ..CustomerInput::default()
    };
    match harness.veil.create_customer(actor, &input, true).await {
        Err(AppError::Validation(errors)) => errors
            .into_iter()
            .map(|error| (error.field, error.code))
            .collect(),
        other => panic!("expected a validation error, got {other:?}"),
    }
}

both_backends!(
    custom_fields_are_imported_sealed_and_exported_masked,
    |harness| {
        let admin = harness.actor("ada", Role::Admin, None).await;
        // Headers are the finance template's Chinese labels; the rows name their industry (by key or by name).
        let csv = format!(
            "姓名,手机号,行业,风险等级,年收入（元）,工作单位,备注\n\
             欧阳理财,{PHONE_A},finance,R3,\"{INCOME}\",{EMPLOYER},老客户\n\
             李娜,{PHONE_B},银行/证券/保险,R9,120000,{EMPLOYER},\n\
             张伟,{PHONE_C},finance,R2,很多,{EMPLOYER},\n\
             王芳,{PHONE_D},,R2,,,\n"
        );
        let report = import_csv(&harness, &admin, &csv, ImportOptions::default())
            .await
            .unwrap();
        let mapped: Vec<(Option<&str>, &str)> = report
            .mapping
            .iter()
            .map(|column| (column.target.as_deref(), column.source.as_str()))
            .collect();
        assert_eq!(
            mapped,
            [
                (Some("name"), "header"),
                (Some("phone"), "values"),
                (Some("industry"), "header"),
                (Some("custom.risk_level"), "header"),
                (Some("custom.annual_income"), "header"),
                (Some("custom.employer"), "header"),
                (None, "ignored"),
            ]
        );
        let income_note = report.mapping[4].note.as_deref().unwrap_or_default();
        assert!(
            income_note.starts_with("sensitive custom field of finance"),
            "{income_note}"
        );
        assert!(report.mapping[3]
            .note
            .as_deref()
            .unwrap_or_default()
            .starts_with("custom field of finance"));
        // Bad values: reported by row and column with the create path's reasons, never the value; good rows kept.
        // Row 5 has custom values but no industry: the create path's `no_template`, on the industry column.
        assert_eq!(
            (report.imported, report.invalid, report.duplicates),
            (1, 3, 0),
            "{report:?}"
        );
        let issue = |row: u64| {
            let issue = report.issues.iter().find(|issue| issue.row == row).unwrap();
            (
                issue.column.as_deref().unwrap_or_default(),
                issue.field.as_deref().unwrap_or_default(),
                issue.reason.as_str(),
            )
        };
        let create_option =
            create_reasons(&harness, &admin, serde_json::json!({"risk_level": "R9"})).await;
        let create_type = create_reasons(
            &harness,
            &admin,
            serde_json::json!({"annual_income": "很多"}),
        )
        .await;
        assert_eq!(
            issue(3),
            (
                "风险等级",
                create_option[0].0.as_str(),
                create_option[0].1.as_str()
            )
        );
        assert_eq!(
            issue(3),
            ("风险等级", "custom_fields.risk_level", "invalid_option")
        );
        assert_eq!(
            issue(4),
            (
                "年收入（元）",
                create_type[0].0.as_str(),
                create_type[0].1.as_str()
            )
        );
        assert_eq!(issue(5), ("行业", "custom_fields", "no_template"));
        let report_text = serde_json::to_string(&report).unwrap();
        assert_no_custom_plaintext(&report_text, "the report");
        assert!(
            !report_text.contains("R9") && !report_text.contains("很多"),
            "{report_text}"
        );
        assert!(!report_text.contains("老客户"), "{report_text}");

        // Stored as a create stores it: the sensitive values sealed, the plain one as is; no plaintext in a column.
        let stored = stored_custom_columns(&harness).await;
        assert_eq!(stored.len(), 1);
        let (shown, sealed) = &stored[0];
        let sealed = sealed
            .as_deref()
            .expect("sensitive custom fields are sealed");
        let ciphertexts: BTreeMap<String, String> = serde_json::from_str(sealed).unwrap();
        assert_eq!(
            ciphertexts.keys().collect::<Vec<_>>(),
            ["annual_income", "employer"]
        );
        assert_no_custom_plaintext(&format!("{shown} {sealed}"), "the customer row");
        // Read masked, as the customer page shows it.
        let page = harness.veil.list_customers(&admin, None, 10).await.unwrap();
        let view = &page.items[0];
        assert_eq!(view.industry.as_deref(), Some("finance"));
        assert_eq!(view.custom_fields["risk_level"], "R3");
        assert_eq!(view.custom_fields["annual_income"], "******");
        let employer = view.custom_fields["employer"].as_str().unwrap();
        assert!(employer.starts_with("上海*"), "{employer}");
        assert!(view.masked.contains(&"custom.annual_income".to_owned()));
        assert!(view.masked.contains(&"custom.employer".to_owned()));
        // The import's audit entry names the custom fields, never their values.
        let audit = audit_text(&harness).await;
        assert!(audit.contains("custom.annual_income"), "{audit}");
        assert_no_custom_plaintext(&audit, "the audit trail");

        // The masked export: a `custom.KEY` column per field of the templates present, masked where sensitive.
        for format in [FileFormat::Csv, FileFormat::Xlsx] {
            let mut out = Vec::new();
            harness
                .veil
                .export_customers_masked(&admin, format, &mut out, &())
                .await
                .unwrap();
            let rows = match format {
                FileFormat::Csv => csv::ReaderBuilder::new()
                    .has_headers(false)
                    .from_reader(out.as_slice())
                    .records()
                    .map(|record| record.unwrap().iter().map(str::to_owned).collect())
                    .collect::<Vec<Vec<String>>>(),
                FileFormat::Xlsx => read_xlsx(out).unwrap(),
            };
            let header = &rows[0];
            let column = |name: &str| header.iter().position(|cell| cell == name).unwrap();
            assert_eq!(header[..EXPORT_COLUMNS.len()], EXPORT_COLUMNS);
            assert_eq!(
                header[EXPORT_COLUMNS.len()..],
                [
                    "custom.risk_level",
                    "custom.risk_assessed_on",
                    "custom.product_interest",
                    "custom.qualified_investor",
                    "custom.annual_income",
                    "custom.employer",
                ]
            );
            assert_eq!(rows[1][column("custom.risk_level")], "R3");
            assert_eq!(rows[1][column("custom.annual_income")], "******");
            assert_eq!(rows[1][column("custom.employer")], employer);
            assert_eq!(rows[1][column("custom.risk_assessed_on")], "");
            assert_no_custom_plaintext(&format!("{rows:?}"), "the masked export");
        }
    }
);

both_backends!(
    custom_fields_by_industry_option_explicit_map_and_header_precedence,
    |harness| {
        let admin = harness.actor("ada", Role::Admin, None).await;
        // The guardian's mobile comes first: by its values alone it would be taken for the customer's phone.
        let csv = format!(
            "姓名,监护人手机,手机号,学员姓名,意向\n\
             张伟,{PHONE_A},{PHONE_B},李小明,钢琴\n"
        );
        let options = |industry: Option<&str>, map: &str| ImportOptions {
            industry: industry.map(str::to_owned),
            map: parse_map(map).unwrap(),
            ..ImportOptions::default()
        };
        // The industry by its Chinese name; 意向 mapped explicitly to a plain text field.
        let report = import_csv(
            &harness,
            &admin,
            &csv,
            options(Some("教育培训"), "意向=custom.course_interest"),
        )
        .await
        .unwrap();
        let targets: Vec<Option<&str>> = report
            .mapping
            .iter()
            .map(|column| column.target.as_deref())
            .collect();
        assert_eq!(
            targets,
            [
                Some("name"),
                Some("custom.guardian_mobile"),
                Some("phone"),
                Some("custom.student_name"),
                Some("custom.course_interest"),
            ],
            "{report:?}"
        );
        assert_eq!(report.mapping[4].source, "explicit");
        assert_eq!(report.imported, 1, "{report:?}");

        // A header naming a plain custom field does not take a column of ID numbers: stored as a plain field,
        // they would not be encrypted. The values decide instead (the ID number, sealed).
        let mislabelled = format!("姓名,意向课程\n王芳,{ID_A}\n");
        let checked = import_csv(
            &harness,
            &admin,
            &mislabelled,
            ImportOptions {
                dry_run: true,
                ..options(Some("education"), "")
            },
        )
        .await
        .unwrap();
        assert_eq!(
            checked.mapping[1].target.as_deref(),
            Some("id_number"),
            "{checked:?}"
        );
        // With an ordinary value the header maps it.
        let ordinary = import_csv(
            &harness,
            &admin,
            "姓名,意向课程\n王芳,钢琴\n",
            ImportOptions {
                dry_run: true,
                ..options(Some("education"), "")
            },
        )
        .await
        .unwrap();
        assert_eq!(
            ordinary.mapping[1].target.as_deref(),
            Some("custom.course_interest"),
            "{ordinary:?}"
        );
        let page = harness.veil.list_customers(&admin, None, 10).await.unwrap();
        let view = &page.items[0];
        assert_eq!(view.industry.as_deref(), Some("education"));
        assert_eq!(view.phone.as_deref(), Some("138****5679"));
        assert_eq!(view.custom_fields["guardian_mobile"], "139****5678");
        assert_eq!(view.custom_fields["course_interest"], "钢琴");
        assert!(view.masked.contains(&"custom.student_name".to_owned()));
        assert_ne!(view.custom_fields["student_name"], "李小明");
        let stored = stored_custom_columns(&harness).await;
        let row = format!("{stored:?}");
        assert!(!row.contains(PHONE_A) && !row.contains("李小明"), "{row}");

        // Refusals before any row is read: each names the option, never a value.
        let refused = |result: AppResult<ImportReport>| match result {
            Err(AppError::Validation(errors)) => (errors[0].field.clone(), errors[0].code.clone()),
            other => panic!("expected a validation error, got {other:?}"),
        };
        let dry = |industry: Option<&'static str>, map: &'static str| {
            let mut options = options(industry, map);
            options.dry_run = true;
            options
        };
        assert_eq!(
            refused(import_csv(&harness, &admin, &csv, dry(Some("shipping"), "")).await),
            ("industry".to_owned(), "unknown".to_owned())
        );
        assert_eq!(
            refused(import_csv(&harness, &admin, &csv, dry(None, "意向=custom.shoe_size")).await),
            ("map".to_owned(), "unknown_field".to_owned())
        );
        assert_eq!(
            refused(
                import_csv(
                    &harness,
                    &admin,
                    &csv,
                    dry(Some("finance"), "意向=custom.course_interest")
                )
                .await
            ),
            ("map".to_owned(), "unknown_field".to_owned())
        );
        assert_eq!(
            refused(
                import_csv(
                    &harness,
                    &admin,
                    &csv,
                    dry(None, "意向=custom.course_interest")
                )
                .await
            ),
            ("mapping".to_owned(), "no_industry".to_owned())
        );
        // Without the industry, headers are not custom fields: the guardian's column is unmapped or a phone, never
        // a custom field, and nothing is sealed under a field the rows do not have.
        let unknown = import_csv(&harness, &admin, &csv, dry(None, ""))
            .await
            .unwrap();
        assert!(unknown.mapping.iter().all(|column| !column
            .target
            .as_deref()
            .unwrap_or_default()
            .starts_with("custom.")));
    }
);
