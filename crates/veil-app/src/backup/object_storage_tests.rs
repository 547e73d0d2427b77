//! Object-storage backups against a real S3-compatible server: moto (`python3 -m pip install 'moto[server]'`,
//! installed by `.ci/run`), started on a free port for each test. Without moto the tests skip with a message, and
//! fail under `CI`.

use super::tests::{
    assert_no_plaintext, customer, decrypted_customers, known_customer, open_restored, Keys,
};
use super::*;
use crate::testing::{free_port, storage_settings, EmptyDatabase, Harness, MotoServer};
use crate::users::Role;

const BUCKET: &str = "veil-backups";

/// Archive files (complete or partial) left in `directory`.
fn local_archives(directory: &Path) -> Vec<String> {
    std::fs::read_dir(directory)
        .map(|entries| {
            entries
                .flatten()
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .filter(|name| name.starts_with(FILE_PREFIX))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_storage_round_trip_create_list_verify_restore() {
    let Some(server) = MotoServer::start() else {
        return;
    };
    server.create_bucket(BUCKET);
    let harness = Harness::sqlite().await;
    let veil = &harness.veil;
    let keys = Keys::new();
    let backups = harness.dir.path().join("backups");
    veil.set_backup_settings(BackupSettings {
        object_storage: Some(server.settings(&format!("s3://{BUCKET}/veil/prod/"))),
        ..keys.settings(&backups)
    });
    let admin = harness.actor("root", Role::Admin, None).await;
    veil.create_customer(&admin, &known_customer(), false)
        .await
        .unwrap();
    veil.create_customer(&admin, &customer("张伟", "13800000001"), false)
        .await
        .unwrap();

    let created = veil
        .create_backup_in_object_storage(Some(&admin), None, false, &())
        .await
        .unwrap();
    let prefix = format!("s3://{BUCKET}/veil/prod/veil-backup-");
    assert!(
        created.location.starts_with(&prefix) && created.location.ends_with(".age"),
        "{}",
        created.location
    );
    assert!(
        local_archives(&backups).is_empty(),
        "the local copy is deleted after the upload: {:?}",
        local_archives(&backups)
    );
    let uploaded = server.object(&created.location);
    assert_eq!(uploaded.len() as i64, created.size_bytes);
    assert_no_plaintext(&uploaded, "the uploaded object");

    let listed = veil.list_backups(Some(&admin)).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].location, created.location);

    let report = veil
        .verify_backup(Some(&admin), &created.id, &())
        .await
        .unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.location, created.location);
    assert_eq!(report.checks.len(), 5, "{report:?}");
    assert!(veil.latest_verified_backup_age().await.unwrap().is_some());

    // Restore (what `veil backup restore ID` does): download, then the local restore.
    let settings = veil.backup_settings().unwrap();
    let local = LocalArchive::fetch(&created.location, &settings)
        .await
        .unwrap();
    let target = EmptyDatabase::sqlite();
    let target_store = Store::connect(&target.url).await.unwrap();
    let restored = restore(
        local.path(),
        &keys.decryption(),
        &target_store,
        &RestoreOptions::default(),
        &(),
    )
    .await
    .unwrap();
    assert_eq!(restored.backup_id, created.id);
    target_store.close().await;
    let downloaded = local.path().to_owned();
    drop(local);
    assert!(!downloaded.exists(), "the temporary download is removed");
    let restored_veil = open_restored(&target.url, &harness).await;
    assert_eq!(
        decrypted_customers(&restored_veil).await,
        decrypted_customers(veil).await,
        "every customer decrypts to the same values"
    );
    assert_eq!(restored_veil.count_customers().await.unwrap(), 2);
    restored_veil.store().close().await;

    // --keep-local keeps the archive built locally besides the upload.
    let kept = veil
        .create_backup_in_object_storage(Some(&admin), None, true, &())
        .await
        .unwrap();
    assert_eq!(local_archives(&backups).len(), 1);
    assert!(kept.location.starts_with(&prefix));
    target.finish().await;
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_uploads_leave_no_catalogue_row_and_no_object() {
    let Some(server) = MotoServer::start() else {
        return;
    };
    server.create_bucket(BUCKET);
    let harness = Harness::sqlite().await;
    let veil = &harness.veil;
    let keys = Keys::new();
    let backups = harness.dir.path().join("backups");
    veil.create_customer(
        &harness.actor("root", Role::Admin, None).await,
        &known_customer(),
        false,
    )
    .await
    .unwrap();

    // The bucket does not exist: the multipart upload cannot start.
    veil.set_backup_settings(BackupSettings {
        object_storage: Some(server.settings("s3://no-such-bucket/veil")),
        ..keys.settings(&backups)
    });
    let error = veil
        .create_backup_in_object_storage(None, None, true, &())
        .await
        .unwrap_err();
    assert!(
        matches!(error, AppError::Backup(BackupError::ObjectStorage { .. })),
        "{error}"
    );

    // The server is gone (killed before the upload): nothing is listed, nothing is left locally.
    let closed = format!("http://127.0.0.1:{}", free_port());
    veil.set_backup_settings(BackupSettings {
        object_storage: Some(storage_settings(&closed, &format!("s3://{BUCKET}/veil"))),
        ..keys.settings(&backups)
    });
    let error = veil
        .create_backup_in_object_storage(None, None, false, &())
        .await
        .unwrap_err();
    assert!(
        matches!(error, AppError::Backup(BackupError::ObjectStorage { .. })),
        "{error}"
    );
    assert!(veil.list_backups(None).await.unwrap().is_empty());
    assert!(
        local_archives(&backups).is_empty(),
        "{:?}",
        local_archives(&backups)
    );
    let listing = server.listing(BUCKET);
    assert!(!listing.contains("<Key>"), "no object: {listing}");

    // Without object storage configured, the error says what to set.
    veil.set_backup_settings(keys.settings(&backups));
    let error = veil
        .create_backup_in_object_storage(None, None, false, &())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("VEIL_BACKUP_S3_URL"), "{error}");
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_stopped_after_a_part_resumes_from_its_journal() {
    let Some(server) = MotoServer::start() else {
        return;
    };
    server.create_bucket(BUCKET);
    let settings = server.settings(&format!("s3://{BUCKET}/resume"));
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("veil-backup-test.age");
    // Two full parts and a short one, of bytes that differ per part (a part sent twice or out of place shows).
    let size = 2 * object_storage::PART_BYTES + 12_345;
    let bytes: Vec<u8> = (0..size).map(|index| (index % 251) as u8).collect();
    std::fs::write(&archive, &bytes).unwrap();
    let journal_path = UploadJournal::path_for(&archive);
    let target = format!("s3://{BUCKET}/resume/veil-backup-test.age");
    let journal = UploadJournal {
        target: target.clone(),
        upload_id: String::new(),
        part_bytes: object_storage::PART_BYTES as u64,
        parts: Vec::new(),
        keep_local: false,
        row: BackupRow {
            id: "test".to_owned(),
            location: target.clone(),
            size_bytes: size as i64,
            sha256: String::new(),
            state: "complete".to_owned(),
            backend: "sqlite".to_owned(),
            schema_version: 1,
            table_count: 0,
            total_rows: 0,
            created_by: None,
            created_at: 0,
            verified_at: None,
            verify_ok: None,
            verify_detail: None,
        },
    };

    // The first run dies right after its first part (a panic stands in for SIGKILL: nothing after it runs).
    let stopped = {
        let (settings, archive, journal_path, mut journal) = (
            settings.clone(),
            archive.clone(),
            journal_path.clone(),
            journal.clone(),
        );
        tokio::spawn(async move {
            let die = || panic!("killed after the first part");
            object_storage::upload(&settings, &archive, &mut journal, &journal_path, &die).await
        })
        .await
    };
    assert!(stopped.unwrap_err().is_panic());
    let left = UploadJournal::load(&journal_path).unwrap();
    assert_eq!(left.parts.len(), 1, "{left:?}");
    assert!(!left.upload_id.is_empty());
    assert!(!server.listing(BUCKET).contains("<Key>"), "nothing visible");
    assert_eq!(
        server
            .multipart_uploads(BUCKET)
            .matches("<UploadId>")
            .count(),
        1
    );

    // The next run sends only the missing parts and completes the same upload.
    let mut resumed = left;
    let sent = object_storage::upload(&settings, &archive, &mut resumed, &journal_path, &|| {})
        .await
        .unwrap();
    assert_eq!(sent as usize, size - object_storage::PART_BYTES);
    assert_eq!(resumed.parts.len(), 3);
    assert_eq!(
        server.object(&target),
        bytes,
        "the object is the archive, byte for byte"
    );
    assert_eq!(
        server
            .multipart_uploads(BUCKET)
            .matches("<UploadId>")
            .count(),
        0
    );

    // An upload that cannot be resumed is aborted: its parts are gone.
    let mut abandoned = UploadJournal {
        target: format!("s3://{BUCKET}/resume/abandoned.age"),
        upload_id: String::new(),
        parts: Vec::new(),
        ..journal
    };
    let abandoned_path = dir.path().join("abandoned.age.upload");
    let stopped = {
        let (settings, archive, abandoned_path) =
            (settings.clone(), archive.clone(), abandoned_path.clone());
        let mut abandoned = abandoned.clone();
        tokio::spawn(async move {
            let die = || panic!("killed after the first part");
            object_storage::upload(&settings, &archive, &mut abandoned, &abandoned_path, &die).await
        })
        .await
    };
    assert!(stopped.unwrap_err().is_panic());
    abandoned = UploadJournal::load(&abandoned_path).unwrap();
    assert_eq!(
        server
            .multipart_uploads(BUCKET)
            .matches("<UploadId>")
            .count(),
        1
    );
    object_storage::abort(&settings, &abandoned).await;
    assert_eq!(
        server
            .multipart_uploads(BUCKET)
            .matches("<UploadId>")
            .count(),
        0
    );
    assert_eq!(server.listing(BUCKET).matches("<Key>").count(), 1);
}
