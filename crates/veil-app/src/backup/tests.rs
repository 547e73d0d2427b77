//! Backup tests on both backends: round trip with erasure replay, SQLite → PostgreSQL, failed verifications with
//! their reasons, no plaintext in archives, interrupted backups.

use std::io::Read;
use std::path::{Path, PathBuf};

use age::secrecy::{ExposeSecret, SecretString};
use veil_store::{SensitiveField, Store};

use super::archive::{self, Decryption, Encryption};
use super::*;
use crate::both_backends;
use crate::customers::reveal::{open_fields, RevealAuthority};
use crate::customers::CustomerInput;
use crate::testing::{EmptyDatabase, Harness};
use crate::users::Role;

const NAME: &str = "欧阳娜娜";
const NAMES: [&str; 8] = [
    "张伟", "王芳", "李娜", "刘洋", "陈静", "杨帆", "赵磊", "黄敏",
];
const PHONE: &str = "13912345678";
const ID_NUMBER: &str = "110101198402276151";
const EMAIL: &str = "nana.ouyang@example.com";
const ADDRESS: &str = "北京市朝阳区建国路88号SOHO现代城5号楼1203室";
const BANK_CARD: &str = "6222021234567890128";

pub(super) fn known_customer() -> CustomerInput {
    CustomerInput {
        name: Some(NAME.to_owned()),
        phone: Some(PHONE.to_owned()),
        id_number: Some(ID_NUMBER.to_owned()),
        email: Some(EMAIL.to_owned()),
        address: Some(ADDRESS.to_owned()),
        bank_card: Some(BANK_CARD.to_owned()),
        ..CustomerInput::default()
    }
}

pub(super) fn customer(name: &str, phone: &str) -> CustomerInput {
    CustomerInput {
        name: Some(name.to_owned()),
        phone: Some(phone.to_owned()),
        email: Some(format!("{phone}@example.com")),
        ..CustomerInput::default()
    }
}

pub(super) fn assert_no_plaintext(haystack: &[u8], what: &str) {
    for value in [
        NAME,
        PHONE,
        ID_NUMBER,
        EMAIL,
        ADDRESS,
        BANK_CARD,
        "建国路88号",
    ] {
        assert!(
            !haystack
                .windows(value.len())
                .any(|window| window == value.as_bytes()),
            "plaintext {value} found in {what}"
        );
    }
}

pub(super) struct Keys {
    pub(super) identity: age::x25519::Identity,
}

impl Keys {
    pub(super) fn new() -> Keys {
        Keys {
            identity: age::x25519::Identity::generate(),
        }
    }

    fn encryption(&self) -> Encryption {
        Encryption::Recipients(vec![self.identity.to_public()])
    }

    pub(super) fn decryption(&self) -> Decryption {
        Decryption::Identities(self.identity.to_string())
    }

    pub(super) fn settings(&self, directory: &Path) -> BackupSettings {
        BackupSettings {
            directory: directory.to_owned(),
            encryption: Some(self.encryption()),
            decryption: Some(self.decryption()),
            max_age_days: DEFAULT_MAX_AGE_DAYS,
            object_storage: None,
        }
    }
}

/// The archive's entries, decrypted with `keys`.
fn entries(path: &Path, keys: &Keys) -> Vec<(String, Vec<u8>)> {
    let file = std::fs::File::open(path).unwrap();
    let decryptor = age::Decryptor::new(std::io::BufReader::new(file)).unwrap();
    let reader = decryptor
        .decrypt(std::iter::once(&keys.identity as &dyn age::Identity))
        .unwrap();
    let mut archive = tar::Archive::new(reader);
    let mut out = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        out.push((name, bytes));
    }
    out
}

/// Writes `entries` as a new archive encrypted to `keys` (to forge tampered backups).
fn write_entries(path: &Path, keys: &Keys, entries: &[(String, Vec<u8>)]) {
    let file = std::fs::File::create(path).unwrap();
    let encryptor = age::Encryptor::with_recipients(std::iter::once(
        &keys.identity.to_public() as &dyn age::Recipient
    ))
    .unwrap();
    let sink = encryptor.wrap_output(file).unwrap();
    let mut builder = tar::Builder::new(sink);
    for (name, bytes) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o600);
        builder
            .append_data(&mut header, name, bytes.as_slice())
            .unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap();
}

/// Every customer's fields decrypted (test-only authority), by id.
pub(super) async fn decrypted_customers(
    veil: &Veil,
) -> std::collections::BTreeMap<String, Vec<(SensitiveField, String)>> {
    let authority = RevealAuthority::for_tests();
    let mut out = std::collections::BTreeMap::new();
    for id in veil.store().sample_customer_ids(10_000).await.unwrap() {
        let row = veil.store().customer_row(&id).await.unwrap().unwrap();
        let key_row = veil.store().customer_key(&id).await.unwrap().unwrap();
        let fields = open_fields(veil, &authority, &row, &key_row, &SensitiveField::ALL)
            .unwrap()
            .into_iter()
            .map(|(field, value)| (field, value.to_string()))
            .collect();
        out.insert(id, fields);
    }
    out
}

pub(super) async fn open_restored(url: &veil_store::DatabaseUrl, harness: &Harness) -> Veil {
    let store = Store::connect(url).await.unwrap();
    Veil::open(store, &harness.master).await.unwrap()
}

both_backends!(
    round_trip_restores_every_customer_and_keeps_erasures,
    |harness| {
        let veil = &harness.veil;
        let keys = Keys::new();
        let backups = harness.dir.path().join("backups");
        veil.set_backup_settings(keys.settings(&backups));
        let admin = harness.actor("root", Role::Admin, None).await;
        veil.add_team(&admin, "east", None).await.unwrap();
        veil.add_team(&admin, "east-sh", Some("east"))
            .await
            .unwrap();
        let known = veil
            .create_customer(&admin, &known_customer(), false)
            .await
            .unwrap();
        let mut others = Vec::new();
        for (index, name) in NAMES.iter().enumerate().take(7) {
            let view = veil
                .create_customer(
                    &admin,
                    &customer(name, &format!("1380000{index:04}")),
                    false,
                )
                .await
                .unwrap();
            others.push(view.id.to_string());
        }
        // Purchases, so that the purchase statistics and neighbour lists (derived, not in the archive) have rows.
        let mut products = Vec::new();
        for sku in ["A", "B", "C"] {
            let product = veil
                .create_product(
                    &admin,
                    &crate::orders::ProductInput {
                        sku: sku.to_owned(),
                        name: format!("product {sku}"),
                        category: "digital".to_owned(),
                        price_fen: 100,
                        currency: None,
                        active: Some(true),
                    },
                )
                .await
                .unwrap();
            products.push(product.id);
        }
        for (buyer, bought) in [
            (known.id.to_string(), [0, 1]),
            (others[1].clone(), [1, 2]),
            (others[2].clone(), [0, 2]),
        ] {
            let input = crate::orders::OrderInput {
                items: bought
                    .iter()
                    .map(|index| crate::orders::OrderItemInput {
                        product_id: products[*index].clone(),
                        quantity: 1,
                    })
                    .collect(),
                status: Some(crate::orders::OrderStatus::Paid),
                placed_at: None,
            };
            veil.create_order(&admin, buyer.parse().unwrap(), &input)
                .await
                .unwrap();
        }
        // Erased before the backup: absent from it.
        veil.delete_customer(&admin, others[0].parse().unwrap())
            .await
            .unwrap();

        let created = veil.create_backup(Some(&admin), None, &()).await.unwrap();
        assert_eq!(created.state, "complete");
        assert!(created.location.ends_with(".age"), "{}", created.location);
        let archive_path = PathBuf::from(&created.location);

        // Erased after the backup: the restore must not bring it back.
        veil.delete_customer(&admin, others[1].parse().unwrap())
            .await
            .unwrap();

        let report = veil
            .verify_backup(Some(&admin), &created.id, &())
            .await
            .unwrap();
        assert!(report.ok, "{report:?}");
        let names: Vec<&str> = report
            .checks
            .iter()
            .map(|check| check.name.as_str())
            .collect();
        assert_eq!(
            names,
            [
                "decrypt_and_checksums",
                "restore_counts",
                "master_key",
                "sample_decrypt",
                "erasure"
            ]
        );
        let listed = veil.list_backups(Some(&admin)).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert!(listed[0]
            .verification
            .as_ref()
            .is_some_and(|verification| verification.ok));
        let age = veil.latest_verified_backup_age().await.unwrap().unwrap();
        assert!(age < 60_000, "{age}");

        // No plaintext in the encrypted file nor in any decrypted part.
        assert_no_plaintext(
            &std::fs::read(&archive_path).unwrap(),
            "the encrypted archive",
        );
        let parts = entries(&archive_path, &keys);
        // SQLite is backed up as a page image in several chunks, PostgreSQL as table parts.
        let data_prefix = if harness.sqlite_path().is_none() {
            "tables/customer/"
        } else {
            "image/"
        };
        assert!(
            parts
                .iter()
                .filter(|(name, _)| name.starts_with(data_prefix))
                .count()
                >= 2,
            "{:?}",
            parts.iter().map(|(name, _)| name).collect::<Vec<_>>()
        );
        let whole_image: Vec<u8> = parts
            .iter()
            .filter(|(name, _)| name.starts_with("image/"))
            .flat_map(|(_, bytes)| zstd::decode_all(bytes.as_slice()).unwrap())
            .collect();
        assert_no_plaintext(&whole_image, "the database image");
        for (name, bytes) in &parts {
            let plain = if name.ends_with(".zst") {
                zstd::decode_all(bytes.as_slice()).unwrap()
            } else {
                bytes.clone()
            };
            assert_no_plaintext(&plain, name);
            assert_no_plaintext(bytes, name);
        }
        // No master key material: the key file's contents are nowhere in the archive.
        let crate::keys::MasterKeySource::File(key_path) = &harness.master else {
            unreachable!()
        };
        let master = std::fs::read_to_string(key_path).unwrap();
        for (name, bytes) in &parts {
            let plain = if name.ends_with(".zst") {
                zstd::decode_all(bytes.as_slice()).unwrap()
            } else {
                bytes.clone()
            };
            assert!(
                !String::from_utf8_lossy(&plain).contains(master.trim()),
                "master key in {name}"
            );
        }

        // Restore into a fresh database of the same backend, replaying the live erasure list.
        let Some(target) = EmptyDatabase::like(&harness).await else {
            return;
        };
        let options = RestoreOptions {
            erasures: veil.store().erasures().await.unwrap(),
            ..RestoreOptions::default()
        };
        // What `veil backup restore` does: into SQLite, the image replaces the target file.
        let (restored, target_store) = restore_to(
            &archive_path,
            &keys.decryption(),
            &target.url,
            &options,
            &(),
        )
        .await
        .unwrap();
        assert_eq!(restored.backup_id, created.id);
        let expected_version = if harness.sqlite_path().is_none() {
            archive::LOGICAL_FORMAT_VERSION
        } else {
            archive::FORMAT_VERSION
        };
        assert_eq!(restored.format_version, expected_version);
        assert_eq!(
            restored.erasures_replayed, 1,
            "the customer erased after the backup"
        );
        // Indexes dropped for the bulk load are all back.
        let indexes = target_store.index_names().await.unwrap();
        assert!(indexes.contains("customer_phone_bidx"), "{indexes:?}");
        assert_eq!(indexes, veil.store().index_names().await.unwrap());
        // So are the foreign keys PostgreSQL's load drops for the duration.
        let foreign_keys = target_store.foreign_keys().await.unwrap();
        assert!(
            foreign_keys.iter().any(|key| key.table == "customer_key"),
            "{foreign_keys:?}"
        );
        assert_eq!(foreign_keys, veil.store().foreign_keys().await.unwrap());
        target_store.close().await;
        let restored_veil = open_restored(&target.url, &harness).await;
        assert_eq!(
            decrypted_customers(&restored_veil).await,
            decrypted_customers(veil).await,
            "every customer decrypts to the same values"
        );
        assert_eq!(restored_veil.count_customers().await.unwrap(), 6);
        // The dashboard's counts are not in the archive (derived data); loading the customers rebuilt them, with
        // the erasure replayed.
        let restored_admin = restored_veil.actor_by_username("root").await.unwrap();
        assert_eq!(
            restored_veil
                .customer_industry_counts(&restored_admin)
                .await
                .unwrap(),
            vec![(None, 6)]
        );
        assert_eq!(
            veil.customer_industry_counts(&admin).await.unwrap(),
            vec![(None, 6)]
        );
        // Likewise the purchase counts; the neighbour lists come back marked, and the refresh job recomputes them.
        assert_eq!(
            restored_veil.store().kept_purchase_stats().await.unwrap(),
            veil.store().kept_purchase_stats().await.unwrap()
        );
        assert!(restored_veil.refresh_product_neighbours().await.unwrap() > 0);
        veil.refresh_product_neighbours().await.unwrap();
        let lists = veil.store().product_neighbour_lists().await.unwrap();
        assert_eq!(lists.len(), 3, "{lists:?}");
        assert_eq!(
            restored_veil
                .store()
                .product_neighbour_lists()
                .await
                .unwrap(),
            lists
        );
        for erased in &others[..2] {
            assert!(restored_veil
                .store()
                .customer_key(erased)
                .await
                .unwrap()
                .is_none());
            assert!(restored_veil
                .store()
                .customer_row(erased)
                .await
                .unwrap()
                .is_none());
        }
        assert!(restored_veil
            .store()
            .customer_row(&known.id.to_string())
            .await
            .unwrap()
            .is_some());
        let chain = restored_veil.verify_audit_chain().await.unwrap();
        assert!(chain.ok, "the restored audit trail verifies: {chain:?}");
        assert!(restored_veil.list_backups(None).await.unwrap().is_empty());

        // A non-empty target is refused without --force and replaced with it (on SQLite, the image goes through
        // the logical loader here: the target is an open store).
        let again = restore(
            &archive_path,
            &keys.decryption(),
            restored_veil.store(),
            &RestoreOptions::default(),
            &(),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(again, AppError::Backup(BackupError::TargetNotEmpty)),
            "{again}"
        );
        let forced = RestoreOptions {
            force: true,
            ..RestoreOptions::default()
        };
        restore(
            &archive_path,
            &keys.decryption(),
            restored_veil.store(),
            &forced,
            &(),
        )
        .await
        .unwrap();
        // Without the live list, the customer erased after the backup is back (the archive predates it)…
        assert_eq!(restored_veil.count_customers().await.unwrap(), 7);
        restored_veil.store().close().await;
        // …and the same holds for an image replacing a file with --force; a refused one leaves the file as it was.
        if harness.sqlite_path().is_some() {
            let refused = restore_to(
                &archive_path,
                &keys.decryption(),
                &target.url,
                &RestoreOptions::default(),
                &(),
            )
            .await
            .unwrap_err();
            assert!(
                matches!(refused, AppError::Backup(BackupError::TargetNotEmpty)),
                "{refused}"
            );
            let forced = RestoreOptions {
                force: true,
                ..options.clone()
            };
            let (report, replaced) =
                restore_to(&archive_path, &keys.decryption(), &target.url, &forced, &())
                    .await
                    .unwrap();
            assert_eq!(report.erasures_replayed, 1);
            replaced.close().await;
            let replaced = open_restored(&target.url, &harness).await;
            assert_eq!(replaced.count_customers().await.unwrap(), 6);
            assert!(replaced.verify_audit_chain().await.unwrap().ok);
            replaced.store().close().await;
        }
        target.finish().await;
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_moves_to_postgres_by_restore() {
    let harness = Harness::sqlite().await;
    let Some(target) = EmptyDatabase::postgres().await else {
        harness.finish().await;
        return;
    };
    let keys = Keys::new();
    let veil = &harness.veil;
    veil.set_backup_settings(keys.settings(&harness.dir.path().join("backups")));
    let admin = harness.actor("root", Role::Admin, None).await;
    veil.add_team(&admin, "north", None).await.unwrap();
    veil.add_team(&admin, "north-bj", Some("north"))
        .await
        .unwrap();
    veil.create_customer(&admin, &known_customer(), false)
        .await
        .unwrap();
    for (index, name) in NAMES.iter().enumerate().take(4) {
        veil.create_customer(
            &admin,
            &customer(name, &format!("1370000{index:04}")),
            false,
        )
        .await
        .unwrap();
    }
    let created = veil.create_backup(None, None, &()).await.unwrap();
    let target_store = Store::connect(&target.url).await.unwrap();
    let restored = restore(
        Path::new(&created.location),
        &keys.decryption(),
        &target_store,
        &RestoreOptions::default(),
        &(),
    )
    .await
    .unwrap();
    assert_eq!(restored.source_backend, "sqlite");
    target_store.close().await;
    let moved = open_restored(&target.url, &harness).await;
    assert_eq!(moved.store().backend(), veil_store::Backend::Postgres);
    assert_eq!(
        decrypted_customers(&moved).await,
        decrypted_customers(veil).await
    );
    assert!(moved.verify_audit_chain().await.unwrap().ok);
    // The moved installation keeps working: a new customer, found by its blind index.
    let view = moved
        .create_customer(
            &admin_on(&moved).await,
            &customer("新客户", "13600001111"),
            false,
        )
        .await
        .unwrap();
    assert_eq!(view.phone.as_deref(), Some("136****1111"));
    moved.store().close().await;
    target.finish().await;
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_1_archives_still_verify_and_restore() {
    let harness = Harness::sqlite().await;
    let keys = Keys::new();
    let veil = &harness.veil;
    veil.set_backup_settings(keys.settings(&harness.dir.path().join("backups")));
    let admin = harness.actor("root", Role::Admin, None).await;
    veil.create_customer(&admin, &known_customer(), false)
        .await
        .unwrap();
    for (index, name) in NAMES.iter().enumerate().take(3) {
        veil.create_customer(
            &admin,
            &customer(name, &format!("1330000{index:04}")),
            false,
        )
        .await
        .unwrap();
    }
    // The version 1 writer, as PostgreSQL sources and older Veils use it, on an SQLite source.
    let logical = veil.create_logical_backup(&()).await.unwrap();
    let parts = entries(Path::new(&logical.location), &keys);
    assert_eq!(parts[0].0, archive::HEADER_NAME);
    let header: archive::Header = serde_json::from_slice(&parts[0].1).unwrap();
    assert_eq!(header.format_version, archive::LOGICAL_FORMAT_VERSION);
    assert!(parts
        .iter()
        .any(|(name, _)| name.starts_with("tables/customer/")));
    assert!(!parts.iter().any(|(name, _)| name.starts_with("image/")));
    let (restored_veil, target) =
        verified_sqlite_restore(&harness, &keys, &logical, archive::LOGICAL_FORMAT_VERSION).await;
    assert_eq!(
        decrypted_customers(&restored_veil).await,
        decrypted_customers(veil).await
    );
    restored_veil.store().close().await;
    target.finish().await;
    harness.finish().await;
}

/// Verifies `backup` (which must pass), restores it into a fresh SQLite file, checks the archive's format version
/// and opens the restored server (the file lives as long as the returned database).
async fn verified_sqlite_restore(
    harness: &Harness,
    keys: &Keys,
    backup: &BackupView,
    format_version: u32,
) -> (Veil, EmptyDatabase) {
    let report = harness
        .veil
        .verify_backup(None, &backup.id, &())
        .await
        .unwrap();
    assert!(report.ok, "{report:?}");
    let target = EmptyDatabase::sqlite();
    let (restored, store) = restore_to(
        Path::new(&backup.location),
        &keys.decryption(),
        &target.url,
        &RestoreOptions::default(),
        &(),
    )
    .await
    .unwrap();
    assert_eq!(restored.format_version, format_version);
    store.close().await;
    (open_restored(&target.url, harness).await, target)
}

async fn admin_on(veil: &Veil) -> crate::Actor {
    veil.actor_by_username("root").await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_names_what_is_wrong() {
    let harness = Harness::sqlite().await;
    let keys = Keys::new();
    let veil = &harness.veil;
    veil.set_backup_settings(keys.settings(&harness.dir.path().join("backups")));
    let admin = harness.actor("root", Role::Admin, None).await;
    for (index, name) in NAMES.iter().enumerate().take(5) {
        veil.create_customer(
            &admin,
            &customer(name, &format!("1350000{index:04}")),
            false,
        )
        .await
        .unwrap();
    }
    let created = veil.create_backup(None, None, &()).await.unwrap();
    let logical = veil.create_logical_backup(&()).await.unwrap();
    let work = harness.dir.path().join("forged");
    std::fs::create_dir_all(&work).unwrap();
    let verify = |path: PathBuf| {
        let veil = &harness.veil;
        async move {
            veil.verify_backup(None, path.to_str().unwrap(), &())
                .await
                .unwrap()
        }
    };

    // The same damage to a page image (version 2) and to table parts (version 1).
    for (backup, data_prefix) in [(&created, "image/"), (&logical, "tables/customer/")] {
        let good = PathBuf::from(&backup.location);
        let label = data_prefix.trim_end_matches('/').replace('/', "-");
        // One flipped byte in the encrypted file.
        let mut bytes = std::fs::read(&good).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x01;
        let tampered = work.join(format!("{label}-tampered.age"));
        std::fs::write(&tampered, &bytes).unwrap();
        let report = verify(tampered).await;
        assert!(!report.ok);
        let reason = report.reason.unwrap();
        assert!(
            reason.contains("modified, corrupted or truncated"),
            "{reason}"
        );

        // A part or chunk removed (the archive re-encrypted by someone holding the key).
        let original = entries(&good, &keys);
        let missing_name = original
            .iter()
            .find(|(name, _)| name.starts_with(data_prefix))
            .unwrap()
            .0
            .clone();
        let without: Vec<(String, Vec<u8>)> = original
            .iter()
            .filter(|(name, _)| *name != missing_name)
            .cloned()
            .collect();
        let missing = work.join(format!("{label}-missing.age"));
        write_entries(&missing, &keys, &without);
        let report = verify(missing).await;
        assert!(!report.ok, "{report:?}");
        let reason = report.reason.unwrap();
        assert!(
            reason.contains(&missing_name) && reason.contains("missing from the archive"),
            "{reason}"
        );

        // A part's or chunk's bytes changed (still valid zstd).
        let changed: Vec<(String, Vec<u8>)> = original
            .iter()
            .map(|(name, bytes)| {
                if *name != missing_name {
                    return (name.clone(), bytes.clone());
                }
                let mut plain = zstd::decode_all(bytes.as_slice()).unwrap();
                if data_prefix == "image/" {
                    let middle = plain.len() / 2;
                    plain[middle] ^= 0x01;
                } else {
                    plain = String::from_utf8(plain)
                        .unwrap()
                        .replace("\"customer\"", "\"customer\" ")
                        .into_bytes();
                }
                (name.clone(), zstd::encode_all(plain.as_slice(), 3).unwrap())
            })
            .collect();
        let modified = work.join(format!("{label}-modified.age"));
        write_entries(&modified, &keys, &changed);
        let report = verify(modified).await;
        assert!(!report.ok);
        let reason = report.reason.unwrap();
        assert!(reason.contains("fails its SHA-256 check"), "{reason}");
    }
    let original = entries(Path::new(&created.location), &keys);

    // The manifest missing: an incomplete archive.
    let headless: Vec<(String, Vec<u8>)> = original
        .iter()
        .filter(|(name, _)| name != archive::MANIFEST_NAME)
        .cloned()
        .collect();
    let incomplete = work.join("incomplete.age");
    write_entries(&incomplete, &keys, &headless);
    let reason = verify(incomplete).await.reason.unwrap();
    assert!(reason.contains("no manifest"), "{reason}");

    // The wrong age identity.
    let other = Keys::new();
    veil.set_backup_settings(BackupSettings {
        decryption: Some(other.decryption()),
        ..keys.settings(&harness.dir.path().join("backups"))
    });
    let report = veil.verify_backup(None, &created.id, &()).await.unwrap();
    assert!(!report.ok);
    let reason = report.reason.clone().unwrap();
    assert!(reason.contains("wrong age identity"), "{reason}");
    // The failure is stored in the catalogue, and no verified backup exists.
    let listed = veil.list_backups(None).await.unwrap();
    let row = listed.iter().find(|view| view.id == created.id).unwrap();
    assert_eq!(row.verification.as_ref().map(|v| v.ok), Some(false));
    assert_eq!(veil.latest_verified_backup_age().await.unwrap(), None);

    // No plaintext in the failure reasons or the audit trail's verify entries.
    assert!(!reason.contains(PHONE));
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_backups_are_never_listed_and_are_cleaned_up() {
    let harness = Harness::sqlite().await;
    let keys = Keys::new();
    let veil = &harness.veil;
    let backups = harness.dir.path().join("backups");
    std::fs::create_dir_all(&backups).unwrap();
    veil.set_backup_settings(keys.settings(&backups));
    // What a backup killed half-way leaves: a partial file, old, and one still being written by someone else.
    let stale = backups.join("veil-backup-20260101T000000Z-dead.age.partial");
    std::fs::write(&stale, b"half an archive").unwrap();
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&stale)
        .unwrap()
        .set_modified(old)
        .unwrap();
    // The page image copy a killed image backup leaves is removed the same way.
    let stale_copy = backups.join("veil-backup-20260101T000000Z-dead.db.partial");
    std::fs::write(&stale_copy, b"half a copy").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&stale_copy)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let fresh = backups.join("veil-backup-20260101T000001Z-busy.age.partial");
    std::fs::write(&fresh, b"being written").unwrap();
    assert!(veil.list_backups(None).await.unwrap().is_empty());

    let created = veil.create_backup(None, None, &()).await.unwrap();
    assert!(!stale.exists(), "a stale partial file is removed");
    assert!(!stale_copy.exists(), "a stale image copy is removed");
    assert!(
        fresh.exists(),
        "a recent partial file may belong to a running backup"
    );
    let listed = veil.list_backups(None).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, created.id);
    // The partial file cannot be verified as a backup either.
    let report = veil
        .verify_backup(None, fresh.to_str().unwrap(), &())
        .await
        .unwrap();
    assert!(!report.ok);
    // A writer that stops before its manifest leaves a file that fails verification, never a listed backup.
    let cut = backups.join("cut.age");
    let bytes = std::fs::read(&created.location).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let report = veil
        .verify_backup(None, cut.to_str().unwrap(), &())
        .await
        .unwrap();
    assert!(!report.ok, "{report:?}");
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passphrase_backups_and_clear_configuration_errors() {
    let harness = Harness::sqlite().await;
    let veil = &harness.veil;
    let backups = harness.dir.path().join("backups");
    let error = veil.create_backup(None, None, &()).await.unwrap_err();
    assert!(error.to_string().contains("not configured"), "{error}");
    let passphrase = SecretString::from("correct horse battery staple backup".to_owned());
    veil.set_backup_settings(BackupSettings {
        directory: backups.clone(),
        encryption: Some(Encryption::Passphrase(passphrase.clone())),
        decryption: Some(Decryption::Passphrase(passphrase.clone())),
        max_age_days: DEFAULT_MAX_AGE_DAYS,
        object_storage: None,
    });
    let created = veil.create_backup(None, None, &()).await.unwrap();
    let report = veil.verify_backup(None, &created.id, &()).await.unwrap();
    assert!(report.ok, "{report:?}");
    // An identity cannot open a passphrase archive, and the message says what to set.
    let keys = Keys::new();
    veil.set_backup_settings(BackupSettings {
        decryption: Some(keys.decryption()),
        ..keys.settings(&backups)
    });
    let report = veil.verify_backup(None, &created.id, &()).await.unwrap();
    assert!(report.reason.unwrap().contains("VEIL_BACKUP_PASSPHRASE"));
    assert!(!passphrase.expose_secret().is_empty());
    // Only admins create backups; auditors may list them.
    let auditor = harness.actor("audrey", Role::Auditor, None).await;
    assert!(matches!(
        veil.create_backup(Some(&auditor), None, &()).await,
        Err(AppError::Forbidden(_))
    ));
    assert_eq!(veil.list_backups(Some(&auditor)).await.unwrap().len(), 1);
    harness.finish().await;
}

both_backends!(
    scheduled_runs_verify_prune_by_retention_and_alert_on_failure,
    |harness| {
        let veil = &harness.veil;
        let keys = Keys::new();
        let backups = harness.dir.path().join("backups");
        veil.set_backup_settings(keys.settings(&backups));
        let admin = harness.actor("root", Role::Admin, None).await;
        veil.create_customer(&admin, &known_customer(), false)
            .await
            .unwrap();
        // Three older backups, moved back to 3, 2 and 1 days ago.
        let mut old = Vec::new();
        for days in [3_i64, 2, 1] {
            let view = veil.create_backup(None, None, &()).await.unwrap();
            let at = now_ms() - days * 24 * 60 * 60 * 1000;
            let sql = format!(
                "UPDATE backup SET created_at = {at} WHERE id = '{}'",
                view.id
            );
            harness.raw_sql(&sql).await.unwrap();
            old.push(view);
        }
        let schedule = schedule::BackupSchedule {
            cron: "0 2 * * *".to_owned(),
            keep_daily: 2,
            keep_weekly: 0,
            keep_monthly: 0,
        };
        let run = veil.run_scheduled_backup(&schedule).await.unwrap();
        assert!(run.verified, "the restore test passes");
        // Kept: today's new backup and yesterday's; the two older ones are pruned and their files gone.
        let mut pruned = run.pruned.clone();
        pruned.sort();
        let mut expected = vec![old[0].id.clone(), old[1].id.clone()];
        expected.sort();
        assert_eq!(pruned, expected);
        assert!(!Path::new(&old[0].location).exists());
        assert!(Path::new(&old[2].location).exists());
        let states: Vec<(String, String)> = veil
            .store()
            .list_backups(100)
            .await
            .unwrap()
            .into_iter()
            .map(|row| (row.id, row.state))
            .collect();
        assert!(states.contains(&(old[0].id.clone(), "pruned".to_owned())));
        assert!(states.contains(&(old[2].id.clone(), "complete".to_owned())));
        // A restore test that cannot decrypt (the wrong identity) raises an alert.
        let mut broken = keys.settings(&backups);
        broken.decryption = Some(Decryption::Identities(SecretString::from(
            age::x25519::Identity::generate()
                .to_string()
                .expose_secret()
                .to_owned(),
        )));
        veil.set_backup_settings(broken);
        let run = veil.run_scheduled_backup(&schedule).await.unwrap();
        assert!(!run.verified);
        let alerts = veil
            .store()
            .list_security_alerts(&veil_store::AlertFilter::default(), 10)
            .await
            .unwrap();
        assert!(
            alerts
                .iter()
                .any(|alert| alert.rule == "restore_test_failed"),
            "{alerts:?}"
        );
    }
);

#[test]
fn clients_choose_only_among_configured_destinations() {
    let keys = Keys::new();
    let local_only = keys.settings(Path::new("/srv/veil/backups"));
    let with_s3 = BackupSettings {
        object_storage: Some(crate::testing::storage_settings(
            "http://127.0.0.1:9",
            "s3://veil-backups/prod/",
        )),
        ..keys.settings(Path::new("/srv/veil/backups"))
    };
    let check = |settings: &BackupSettings, to: &str, expected: Option<BackupDestination>| {
        let resolved = settings.destination(to);
        match expected {
            Some(destination) => assert_eq!(resolved.unwrap(), destination, "{to}"),
            None => {
                let error = resolved.unwrap_err();
                assert!(
                    matches!(error, BackupError::UnknownDestination(_)),
                    "{to}: {error}"
                );
                assert!(error.to_string().contains("\"local\""), "{error}");
            }
        }
    };
    use BackupDestination::{Local, ObjectStorage};
    for settings in [&local_only, &with_s3] {
        check(settings, "local", Some(Local));
        check(settings, " local ", Some(Local));
        check(settings, "/srv/veil/backups", Some(Local));
        check(settings, "/srv/veil/backups/", Some(Local));
        check(settings, "/srv/veil/backups/../../etc", None);
        check(settings, "/tmp", None);
        check(settings, "backups", None);
        check(settings, "", None);
        check(settings, "s3://veil-backups/other", None);
        check(settings, "s3://attacker/prod", None);
        check(settings, "file:///srv/veil/backups", None);
    }
    check(&with_s3, "s3", Some(ObjectStorage));
    check(&with_s3, "s3://veil-backups/prod", Some(ObjectStorage));
    check(&with_s3, "s3://veil-backups/prod/", Some(ObjectStorage));
    check(&local_only, "s3", None);
    check(&local_only, "s3://veil-backups/prod", None);
    let error = local_only.destination("s3").unwrap_err().to_string();
    assert!(error.contains("no object storage is configured"), "{error}");
    let error = with_s3.destination("/tmp").unwrap_err().to_string();
    assert!(
        error.contains("\"s3\" (s3://veil-backups/prod/)") && !error.contains("/tmp"),
        "{error}"
    );
}

/// Adds teams through the live server the first time a chunk of the image is sent, while the image's read
/// transaction is still open (the pipeline's bounded queues hold the reader back until the chunk is taken).
struct WritesMidway<'a> {
    veil: &'a Veil,
    admin: &'a crate::Actor,
    written: std::sync::atomic::AtomicBool,
}

impl Progress for WritesMidway<'_> {
    fn update(&self, _done: u64, _total: u64) {}

    fn reached(&self, point: &'static str) {
        if point != "backup.chunk_sent"
            || self.written.swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            return;
        }
        tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(async {
                for index in 0..200 {
                    self.veil
                        .add_team(self.admin, &format!("midway-{index:03}"), None)
                        .await
                        .unwrap();
                }
            })
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_image_is_one_point_in_time_while_the_server_writes() {
    let harness = Harness::sqlite().await;
    let keys = Keys::new();
    let veil = &harness.veil;
    veil.set_backup_settings(keys.settings(&harness.dir.path().join("backups")));
    let admin = harness.actor("root", Role::Admin, None).await;
    for (index, name) in NAMES.iter().cycle().take(40).enumerate() {
        veil.create_customer(
            &admin,
            &customer(name, &format!("1380000{index:04}")),
            false,
        )
        .await
        .unwrap();
    }
    let teams_before = veil.list_teams().await.unwrap().len();
    let progress = WritesMidway {
        veil,
        admin: &admin,
        written: false.into(),
    };
    let created = veil
        .create_backup(Some(&admin), None, &progress)
        .await
        .unwrap();
    assert!(
        progress.written.into_inner(),
        "the image spans several chunks"
    );
    assert_eq!(veil.list_teams().await.unwrap().len(), teams_before + 200);

    // The manifest counts what the image holds: the teams as they were when its read transaction began.
    let parts = entries(Path::new(&created.location), &keys);
    let manifest: archive::Manifest = serde_json::from_slice(
        &parts
            .iter()
            .find(|(name, _)| name == archive::MANIFEST_NAME)
            .unwrap()
            .1,
    )
    .unwrap();
    let team_rows = manifest
        .tables
        .iter()
        .find(|table| table.name == "team")
        .unwrap()
        .rows;
    assert_eq!(team_rows, teams_before as u64);
    // More chunks than the pipeline holds in flight (two queued for the writer, one compressing, one queued for
    // the compressor, one filling): the reader was still inside its transaction when the teams were added.
    assert!(manifest.image.len() > 6, "{} chunks", manifest.image.len());

    // Verification restores the image and runs `PRAGMA quick_check`; a restore counts every table again.
    let (restored_veil, target) =
        verified_sqlite_restore(&harness, &keys, &created, archive::FORMAT_VERSION).await;
    assert_eq!(
        restored_veil.list_teams().await.unwrap().len(),
        teams_before
    );
    assert_eq!(
        decrypted_customers(&restored_veil).await.len(),
        40,
        "every customer of the point in time"
    );
    restored_veil.store().close().await;
    target.finish().await;
    harness.finish().await;
}
