//! The domain and storage suite, run against SQLite and PostgreSQL alike (see [`crate::testing`]).

use veil_store::sqlx;
use veil_store::{CustomerScope, SensitiveField};

use crate::both_backends;
use crate::customers::reveal::{open_fields, verify_all_decrypt, RevealAuthority};
use crate::customers::{CustomerInput, CustomerPatch, ExactSearch};
use crate::testing::Harness;
use crate::users::{Password, Role};
use crate::{AppError, CustomerId, Veil};

const NAME: &str = "欧阳娜娜";
const PHONE: &str = "13912345678";
const ID_NUMBER: &str = "110101198402276151";
const EMAIL: &str = "nana.ouyang@example.com";
const ADDRESS: &str = "北京市朝阳区建国路88号SOHO现代城5号楼1203室";
const BANK_CARD: &str = "6222021234567890128";

fn known_customer() -> CustomerInput {
    CustomerInput {
        name: Some(NAME.to_owned()),
        phone: Some(PHONE.to_owned()),
        id_number: Some(ID_NUMBER.to_owned()),
        email: Some(EMAIL.to_owned()),
        address: Some(ADDRESS.to_owned()),
        bank_card: Some(BANK_CARD.to_owned()),
        tags: Some(vec!["vip".to_owned()]),
        ..CustomerInput::default()
    }
}

fn customer(name: &str, phone: &str) -> CustomerInput {
    CustomerInput {
        name: Some(name.to_owned()),
        phone: Some(phone.to_owned()),
        ..CustomerInput::default()
    }
}

/// Every plaintext of [`known_customer`] as it could appear in storage (raw UTF-8 and lower-case hex).
fn plaintext_needles() -> Vec<(String, Vec<u8>)> {
    let mut needles = Vec::new();
    for value in [
        NAME,
        PHONE,
        ID_NUMBER,
        EMAIL,
        ADDRESS,
        BANK_CARD,
        "建国路88号",
    ] {
        needles.push((value.to_owned(), value.as_bytes().to_vec()));
        let hex: String = value.bytes().map(|byte| format!("{byte:02x}")).collect();
        needles.push((format!("hex of {value}"), hex.into_bytes()));
    }
    needles
}

fn assert_no_plaintext(haystack: &[u8], what: &str) {
    for (label, needle) in plaintext_needles() {
        assert!(
            !haystack
                .windows(needle.len())
                .any(|window| window == needle.as_slice()),
            "plaintext {label} found in {what}"
        );
    }
}

async fn raw_postgres_text(harness: &Harness) -> Vec<u8> {
    let veil_store::Pool::Postgres(pool) = harness.veil.store().pool() else {
        unreachable!("only called on PostgreSQL");
    };
    let mut all = Vec::new();
    for table in [
        "customer",
        "customer_key",
        "keyring",
        "master_key_meta",
        "erasure",
        "app_user",
        "auth_token",
    ] {
        let text: Option<String> =
            sqlx::query_scalar(&format!("SELECT string_agg(t::text, '|') FROM {table} t"))
                .fetch_one(pool)
                .await
                .expect("dump table");
        all.extend_from_slice(text.unwrap_or_default().as_bytes());
    }
    all
}

fn sealed_row_of(rows: &mut Vec<u8>, path: &std::path::Path) {
    if let Ok(bytes) = std::fs::read(path) {
        rows.extend_from_slice(&bytes);
    }
}

both_backends!(plaintext_never_reaches_storage, |harness| {
    let admin = harness.actor("boss", Role::Admin, None).await;
    for _ in 0..3 {
        harness
            .veil
            .create_customer(&admin, &known_customer(), true)
            .await
            .expect("create");
    }
    // The masked view is really masked.
    let page = harness.veil.list_customers(&admin, None, 10).await.unwrap();
    let shown = serde_json::to_string(&page).unwrap();
    assert_no_plaintext(shown.as_bytes(), "the masked list");
    assert!(shown.contains("139****5678"), "{shown}");
    assert!(shown.contains("110101********6151"), "{shown}");

    match harness.sqlite_path() {
        Some(path) => {
            // Before the checkpoint the rows live in the WAL; after it, in the main file. Scan both times.
            let wal = path.with_extension("db-wal");
            let mut before = Vec::new();
            sealed_row_of(&mut before, &path);
            sealed_row_of(&mut before, &wal);
            assert!(!before.is_empty());
            assert_no_plaintext(&before, "the SQLite file and WAL before checkpoint");
            harness.veil.store().checkpoint().await.unwrap();
            let mut after = Vec::new();
            sealed_row_of(&mut after, &path);
            sealed_row_of(&mut after, &wal);
            assert_no_plaintext(&after, "the SQLite file and WAL after checkpoint");
            // Sanity: the scan does see what is stored in clear (masked values), so it would see plaintext too.
            assert!(after
                .windows(11)
                .any(|window| window == "139****5678".as_bytes()));
        }
        None => {
            let dump = raw_postgres_text(&harness).await;
            assert!(dump
                .windows(11)
                .any(|window| window == "139****5678".as_bytes()));
            assert_no_plaintext(&dump, "the PostgreSQL tables");
        }
    }
});

both_backends!(
    ciphertext_moved_between_customers_fails_integrity,
    |harness| {
        let admin = harness.actor("boss", Role::Admin, None).await;
        let first = harness
            .veil
            .create_customer(&admin, &known_customer(), true)
            .await
            .unwrap();
        let second = harness
            .veil
            .create_customer(&admin, &customer("李四", "13700001111"), true)
            .await
            .unwrap();
        let store = harness.veil.store();
        let authority = RevealAuthority::for_tests();
        let first_row = store
            .customer_row(&first.id.to_string())
            .await
            .unwrap()
            .unwrap();
        let mut second_row = store
            .customer_row(&second.id.to_string())
            .await
            .unwrap()
            .unwrap();
        let second_key = store
            .customer_key(&second.id.to_string())
            .await
            .unwrap()
            .unwrap();

        // The untouched row decrypts.
        let opened = open_fields(
            &harness.veil,
            &authority,
            &second_row,
            &second_key,
            &[SensitiveField::Phone],
        )
        .unwrap();
        assert_eq!(opened[&SensitiveField::Phone].as_str(), "13700001111");

        // A's phone ciphertext pasted into B's row, written to the database and read back.
        let expected = second_row.profile.updated_at;
        second_row.values.insert(
            SensitiveField::Phone,
            first_row.values[&SensitiveField::Phone].clone(),
        );
        store.update_customer(&second_row, expected).await.unwrap();
        let tampered = store
            .customer_row(&second.id.to_string())
            .await
            .unwrap()
            .unwrap();
        let result = open_fields(
            &harness.veil,
            &authority,
            &tampered,
            &second_key,
            &[SensitiveField::Phone],
        );
        assert!(
            matches!(
                result,
                Err(AppError::Integrity(veil_mask::CryptoError::Integrity))
            ),
            "{result:?}"
        );

        // A ciphertext moved to another field of the same customer fails too.
        let mut shuffled = first_row.clone();
        let email = shuffled.values[&SensitiveField::Email].clone();
        shuffled.values.insert(SensitiveField::Phone, email);
        let first_key = store
            .customer_key(&first.id.to_string())
            .await
            .unwrap()
            .unwrap();
        let result = open_fields(
            &harness.veil,
            &authority,
            &shuffled,
            &first_key,
            &[SensitiveField::Phone],
        );
        assert!(matches!(result, Err(AppError::Integrity(_))), "{result:?}");

        // B's wrapped data key does not open A's row either.
        let result = open_fields(
            &harness.veil,
            &authority,
            &first_row,
            &second_key,
            &[SensitiveField::Name],
        );
        assert!(matches!(result, Err(AppError::Integrity(_))), "{result:?}");
    }
);

both_backends!(key_rotation_rewraps_and_retires, |harness| {
    let admin = harness.actor("boss", Role::Admin, None).await;
    // A second server opened before the rotation keeps a stale keyring.
    let stale = harness.reopen().await;
    for index in 0..7 {
        harness
            .veil
            .create_customer(
                &admin,
                &customer("王五", &format!("1370000{index:04}")),
                true,
            )
            .await
            .unwrap();
    }
    let (report, retired) = harness.veil.rotate_keys(&()).await.unwrap();
    assert_eq!(report.new_version, 2);
    assert_eq!(report.rewrapped, 7);
    assert_eq!(retired, vec![1]);
    let status = crate::keys::key_status(harness.veil.store()).await.unwrap();
    assert_eq!(status.current_kek_version, 2);
    let v1 = status
        .kek_versions
        .iter()
        .find(|version| version.version == 1)
        .unwrap();
    assert_eq!((v1.state.as_str(), v1.data_keys), ("retired", 0));
    let rows = harness.veil.store().keyring_rows().await.unwrap();
    assert!(rows
        .iter()
        .any(|row| row.purpose == "kek" && row.version == 1 && row.wrapped.is_none()));

    // Everything decrypts with the new hierarchy, also from a freshly opened instance that never saw v1.
    assert_eq!(verify_all_decrypt(&harness.veil).await.unwrap(), 7);
    let fresh = harness.reopen().await;
    assert_eq!(verify_all_decrypt(&fresh).await.unwrap(), 7);

    // The stale server's write is refused under the retired KEK, reloads, and lands under v2.
    let created = stale
        .create_customer(&admin, &customer("赵六", "13600001111"), true)
        .await
        .unwrap();
    let key = harness
        .veil
        .store()
        .customer_key(&created.id.to_string())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(key.kek_version, 2);
    assert_eq!(verify_all_decrypt(&fresh).await.unwrap(), 8);

    // A second rotation works the same way.
    let (report, retired) = harness.veil.rotate_keys(&()).await.unwrap();
    assert_eq!(
        (report.new_version, report.rewrapped, retired),
        (3, 8, vec![2])
    );
    assert_eq!(
        verify_all_decrypt(&harness.reopen().await).await.unwrap(),
        8
    );
    stale.store().close().await;
    fresh.store().close().await;
});

both_backends!(invalid_input_is_rejected_and_nothing_written, |harness| {
    let admin = harness.actor("boss", Role::Admin, None).await;
    let cases: Vec<(&str, CustomerInput)> = vec![
        (
            "id_number",
            CustomerInput {
                id_number: Some("110101198402276152".into()),
                ..customer("张三", "13812345678")
            },
        ),
        (
            "id_number",
            CustomerInput {
                id_number: Some("110101198402306151".into()),
                ..customer("张三", "13812345678")
            },
        ),
        ("phone", customer("张三", "12012345678")),
        ("phone", customer("张三", "1381234567")),
        (
            "email",
            CustomerInput {
                email: Some("zhang@@example".into()),
                ..customer("张三", "13812345678")
            },
        ),
        (
            "bank_card",
            CustomerInput {
                bank_card: Some("6222021234567890123".into()),
                ..customer("张三", "13812345678")
            },
        ),
        (
            "name",
            CustomerInput {
                name: None,
                ..customer("张三", "13812345678")
            },
        ),
        (
            "birth_date",
            CustomerInput {
                birth_date: Some("1990-01-01".into()),
                id_number: Some(ID_NUMBER.into()),
                ..customer("张三", "13812345678")
            },
        ),
        (
            "gender",
            CustomerInput {
                gender: Some("x".into()),
                ..customer("张三", "13812345678")
            },
        ),
        (
            "attributes",
            CustomerInput {
                attributes: Some(serde_json::json!([1, 2])),
                ..customer("张三", "13812345678")
            },
        ),
    ];
    for (field, input) in cases {
        let before = harness.veil.count_customers().await.unwrap();
        match harness.veil.create_customer(&admin, &input, false).await {
            Err(AppError::Validation(errors)) => {
                assert!(
                    errors.iter().any(|error| error.field == field),
                    "{field}: {errors:?}"
                );
                let text = format!("{errors:?}");
                for secret in ["110101198402276152", "12012345678", "6222021234567890123"] {
                    assert!(!text.contains(secret), "error echoes the value: {text}");
                }
            }
            other => panic!("{field}: expected a validation error, got {other:?}"),
        }
        assert_eq!(
            harness.veil.count_customers().await.unwrap(),
            before,
            "{field}"
        );
    }
});

both_backends!(duplicates_are_found_through_the_blind_index, |harness| {
    let admin = harness.actor("boss", Role::Admin, None).await;
    let first = harness
        .veil
        .create_customer(&admin, &known_customer(), false)
        .await
        .unwrap();
    // Same mobile written differently.
    let again = customer("另一个人", "+86 139-1234-5678");
    match harness.veil.create_customer(&admin, &again, false).await {
        Err(AppError::Duplicate { field, existing }) => {
            assert_eq!(field, "phone");
            assert_eq!(existing, first.id);
        }
        other => panic!("expected duplicate, got {other:?}"),
    }
    let same_id = CustomerInput {
        id_number: Some("11010119840227615１".into()),
        ..customer("重名", "13500000000")
    };
    assert!(matches!(
        harness.veil.create_customer(&admin, &same_id, false).await,
        Err(AppError::Duplicate {
            field: "id_number",
            ..
        })
    ));
    harness
        .veil
        .create_customer(&admin, &again, true)
        .await
        .expect("allowed duplicate");
    let found = harness
        .veil
        .search_customers(
            &admin,
            &ExactSearch {
                field: SensitiveField::Phone,
                value: "１３９ １２３４ ５６７８".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(found.len(), 2);
    let by_email = harness
        .veil
        .search_customers(
            &admin,
            &ExactSearch {
                field: SensitiveField::Email,
                value: " Nana.Ouyang@Example.com ".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(by_email.len(), 1);
    assert!(harness
        .veil
        .search_customers(
            &admin,
            &ExactSearch {
                field: SensitiveField::Phone,
                value: "13900000000".into()
            }
        )
        .await
        .unwrap()
        .is_empty());
});

both_backends!(ownership_scopes_reads_and_searches, |harness| {
    let admin = harness.actor("boss", Role::Admin, None).await;
    let alice = harness.actor("alice", Role::Sales, Some("east")).await;
    let bob = harness.actor("bob", Role::Sales, Some("east")).await;
    let carol = harness.actor("carol", Role::Sales, Some("west")).await;
    let manager = harness.actor("mia", Role::Manager, Some("east")).await;
    let dpo = harness.actor("dora", Role::Dpo, None).await;
    let own = harness
        .veil
        .create_customer(&alice, &customer("甲", "13811110000"), false)
        .await
        .unwrap();
    let bobs = harness
        .veil
        .create_customer(&bob, &customer("乙", "13822220000"), false)
        .await
        .unwrap();
    let west = harness
        .veil
        .create_customer(&carol, &customer("丙", "13833330000"), false)
        .await
        .unwrap();
    assert_eq!(own.team.as_deref(), Some("east"));

    assert!(harness.veil.get_customer(&alice, own.id).await.is_ok());
    assert!(matches!(
        harness.veil.get_customer(&alice, bobs.id).await,
        Err(AppError::NotFound)
    ));
    let alice_list = harness.veil.list_customers(&alice, None, 50).await.unwrap();
    assert_eq!(
        alice_list.items.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![own.id]
    );
    // Exact search cannot confirm a number outside the caller's scope.
    let probe = ExactSearch {
        field: SensitiveField::Phone,
        value: "13822220000".into(),
    };
    assert!(harness
        .veil
        .search_customers(&alice, &probe)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        harness
            .veil
            .search_customers(&bob, &probe)
            .await
            .unwrap()
            .len(),
        1
    );
    // The manager sees the team, not the other team.
    let team: Vec<CustomerId> = harness
        .veil
        .list_customers(&manager, None, 50)
        .await
        .unwrap()
        .items
        .iter()
        .map(|c| c.id)
        .collect();
    assert!(team.contains(&own.id) && team.contains(&bobs.id) && !team.contains(&west.id));
    assert_eq!(
        harness
            .veil
            .list_customers(&admin, None, 50)
            .await
            .unwrap()
            .items
            .len(),
        3
    );
    assert!(matches!(
        harness.veil.list_customers(&dpo, None, 50).await,
        Err(AppError::Forbidden(_))
    ));
    // Sales cannot create for someone else, nor erase.
    let foreign = CustomerInput {
        owner: Some(bob.user_id.to_string()),
        ..customer("丁", "13844440000")
    };
    assert!(matches!(
        harness.veil.create_customer(&alice, &foreign, false).await,
        Err(AppError::Forbidden(_))
    ));
    assert!(matches!(
        harness.veil.delete_customer(&alice, own.id).await,
        Err(AppError::Forbidden(_))
    ));
    assert!(matches!(
        harness.veil.delete_customer(&alice, bobs.id).await,
        Err(AppError::NotFound)
    ));
    // Updates outside the scope are not found.
    let patch = CustomerPatch {
        name: Some("改名".into()),
        ..CustomerPatch::default()
    };
    assert!(matches!(
        harness
            .veil
            .update_customer(&alice, bobs.id, &patch, false)
            .await,
        Err(AppError::NotFound)
    ));
});

both_backends!(erasure_destroys_the_data_key, |harness| {
    let admin = harness.actor("boss", Role::Admin, None).await;
    let created = harness
        .veil
        .create_customer(&admin, &known_customer(), false)
        .await
        .unwrap();
    let id = created.id.to_string();
    let row_before = harness
        .veil
        .store()
        .customer_row(&id)
        .await
        .unwrap()
        .unwrap();
    let key_before = harness
        .veil
        .store()
        .customer_key(&id)
        .await
        .unwrap()
        .unwrap();
    harness
        .veil
        .delete_customer(&admin, created.id)
        .await
        .unwrap();
    assert!(harness
        .veil
        .store()
        .customer_key(&id)
        .await
        .unwrap()
        .is_none());
    assert!(harness
        .veil
        .store()
        .customer_row(&id)
        .await
        .unwrap()
        .is_none());
    assert!(matches!(
        harness.veil.get_customer(&admin, created.id).await,
        Err(AppError::NotFound)
    ));
    assert!(matches!(
        harness.veil.delete_customer(&admin, created.id).await,
        Err(AppError::NotFound)
    ));
    // A copy of the row taken before (a backup, say) is useless without the key: no data key exists to open it,
    // and no other customer's key opens it.
    let other = harness
        .veil
        .create_customer(&admin, &customer("路人", "13700009999"), false)
        .await
        .unwrap();
    let other_key = harness
        .veil
        .store()
        .customer_key(&other.id.to_string())
        .await
        .unwrap()
        .unwrap();
    let forged = veil_store::CustomerKeyRow {
        customer_id: id.clone(),
        ..other_key
    };
    assert!(open_fields(
        &harness.veil,
        &RevealAuthority::for_tests(),
        &row_before,
        &forged,
        &[SensitiveField::Phone]
    )
    .is_err());
    // With the original wrapped key it would open — which is why the key row is what gets destroyed.
    assert!(open_fields(
        &harness.veil,
        &RevealAuthority::for_tests(),
        &row_before,
        &key_before,
        &[SensitiveField::Phone]
    )
    .is_ok());
    // The erasure is recorded for restores.
    let erased = match harness.veil.store().pool() {
        veil_store::Pool::Sqlite(pool) => {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM erasure WHERE customer_id = $1")
                .bind(&id)
                .fetch_one(pool)
                .await
                .unwrap()
        }
        veil_store::Pool::Postgres(pool) => {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM erasure WHERE customer_id = $1")
                .bind(&id)
                .fetch_one(pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(erased, 1);
});

both_backends!(updates_reseal_remask_and_reindex, |harness| {
    let admin = harness.actor("boss", Role::Admin, None).await;
    let created = harness
        .veil
        .create_customer(&admin, &known_customer(), false)
        .await
        .unwrap();
    let other = harness
        .veil
        .create_customer(&admin, &customer("别人", "13600002222"), false)
        .await
        .unwrap();
    let patch = CustomerPatch {
        phone: Some(Some("137 0000 3333".into())),
        email: Some(None),
        ..CustomerPatch::default()
    };
    let updated = harness
        .veil
        .update_customer(&admin, created.id, &patch, false)
        .await
        .unwrap();
    assert_eq!(updated.phone.as_deref(), Some("137****3333"));
    assert!(updated.email.is_none());
    assert_eq!(updated.name, created.name);
    let search = |value: &str| ExactSearch {
        field: SensitiveField::Phone,
        value: value.into(),
    };
    assert!(harness
        .veil
        .search_customers(&admin, &search(PHONE))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        harness
            .veil
            .search_customers(&admin, &search("13700003333"))
            .await
            .unwrap()
            .len(),
        1
    );
    let row = harness
        .veil
        .store()
        .customer_row(&created.id.to_string())
        .await
        .unwrap()
        .unwrap();
    let key = harness
        .veil
        .store()
        .customer_key(&created.id.to_string())
        .await
        .unwrap()
        .unwrap();
    let opened = open_fields(
        &harness.veil,
        &RevealAuthority::for_tests(),
        &row,
        &key,
        &[SensitiveField::Phone, SensitiveField::Name],
    )
    .unwrap();
    assert_eq!(opened[&SensitiveField::Phone].as_str(), "13700003333");
    assert_eq!(opened[&SensitiveField::Name].as_str(), NAME);
    // Taking another customer's number is a duplicate unless allowed; a bad value changes nothing.
    let steal = CustomerPatch {
        phone: Some(Some("13600002222".into())),
        ..CustomerPatch::default()
    };
    assert!(
        matches!(harness.veil.update_customer(&admin, created.id, &steal, false).await, Err(AppError::Duplicate { existing, .. }) if existing == other.id)
    );
    let bad = CustomerPatch {
        id_number: Some(Some("110101198402276152".into())),
        ..CustomerPatch::default()
    };
    assert!(matches!(
        harness
            .veil
            .update_customer(&admin, created.id, &bad, false)
            .await,
        Err(AppError::Validation(_))
    ));
    let unchanged = harness.veil.get_customer(&admin, created.id).await.unwrap();
    assert_eq!(unchanged.id_number, created.id_number);
    assert_eq!(unchanged.phone.as_deref(), Some("137****3333"));
});

both_backends!(cursor_pagination_walks_every_customer_once, |harness| {
    let admin = harness.actor("boss", Role::Admin, None).await;
    let inputs: Vec<CustomerInput> = (0..7)
        .map(|index| customer("分页", &format!("1590000{index:04}")))
        .collect();
    let ids = harness
        .veil
        .create_customers_batch(&admin, &inputs)
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = harness
            .veil
            .list_customers(&admin, cursor.as_deref(), 3)
            .await
            .unwrap();
        pages += 1;
        seen.extend(page.items.iter().map(|item| item.id));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let mut expected = ids.clone();
    expected.sort();
    expected.reverse();
    assert_eq!(seen, expected, "newest first, no gaps, no repeats");
    assert!(matches!(
        harness
            .veil
            .list_customers(&admin, Some("nonsense"), 3)
            .await,
        Err(AppError::Validation(_))
    ));
});

both_backends!(wrong_master_key_is_refused, |harness| {
    let other_key = harness.dir.path().join("other.key");
    crate::keys::create_master_key_file(&other_key).unwrap();
    let store = veil_store::Store::connect(&harness.url).await.unwrap();
    let result = Veil::open(store, &crate::MasterKeySource::File(other_key)).await;
    assert!(
        matches!(result, Err(AppError::WrongMasterKey)),
        "{result:?}"
    );
});

both_backends!(sessions_expire_with_revocation_and_disable, |harness| {
    let password = Password::new("correct horse battery".to_owned());
    harness.actor("erin", Role::Sales, None).await;
    assert!(matches!(
        harness
            .veil
            .login("erin", &Password::new("wrong password!".into()))
            .await,
        Err(AppError::Unauthenticated)
    ));
    assert!(matches!(
        harness.veil.login("nobody", &password).await,
        Err(AppError::Unauthenticated)
    ));
    let session = harness.veil.login("erin", &password).await.unwrap();
    let token = session.token.expose().to_owned();
    assert_eq!(
        harness.veil.authenticate(&token).await.unwrap().username,
        "erin"
    );
    harness.veil.logout(&token).await.unwrap();
    assert!(matches!(
        harness.veil.authenticate(&token).await,
        Err(AppError::Unauthenticated)
    ));
    let again = harness.veil.login("erin", &password).await.unwrap();
    harness.veil.disable_user("erin").await.unwrap();
    assert!(matches!(
        harness.veil.authenticate(again.token.expose()).await,
        Err(AppError::Unauthenticated)
    ));
    assert!(matches!(
        harness.veil.login("erin", &password).await,
        Err(AppError::Unauthenticated)
    ));
    // Tokens are stored hashed.
    let stored = match harness.veil.store().pool() {
        veil_store::Pool::Sqlite(pool) => {
            sqlx::query_scalar::<_, Vec<u8>>("SELECT token_hash FROM auth_token")
                .fetch_all(pool)
                .await
                .unwrap()
        }
        veil_store::Pool::Postgres(pool) => {
            sqlx::query_scalar::<_, Vec<u8>>("SELECT token_hash FROM auth_token")
                .fetch_all(pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(stored.len(), 2);
    assert!(stored.iter().all(|hash| hash.len() == 32
        && !token
            .as_bytes()
            .windows(32)
            .any(|window| window == hash.as_slice())));
});

#[tokio::test]
async fn passphrase_master_key_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let url =
        veil_store::DatabaseUrl::new(format!("sqlite://{}", dir.path().join("p.db").display()));
    let source = crate::MasterKeySource::Passphrase(crate::keys::Passphrase::new(
        "a long enough passphrase".into(),
    ));
    let veil = Veil::initialise(veil_store::Store::connect(&url).await.unwrap(), &source)
        .await
        .unwrap();
    let admin = {
        veil.add_user(
            "root",
            Role::Admin,
            None,
            &Password::new("correct horse battery".into()),
        )
        .await
        .unwrap();
        veil.actor_by_username("root").await.unwrap()
    };
    veil.create_customer(&admin, &known_customer(), false)
        .await
        .unwrap();
    veil.store().close().await;
    let reopened = Veil::open(veil_store::Store::connect(&url).await.unwrap(), &source)
        .await
        .unwrap();
    assert_eq!(verify_all_decrypt(&reopened).await.unwrap(), 1);
    let wrong = crate::MasterKeySource::Passphrase(crate::keys::Passphrase::new(
        "a long enough passphrasf".into(),
    ));
    assert!(matches!(
        Veil::open(veil_store::Store::connect(&url).await.unwrap(), &wrong).await,
        Err(AppError::WrongMasterKey)
    ));
    let _ = CustomerScope::default();
}

both_backends!(master_key_replacement_rewraps_the_keyring_only, |harness| {
    let admin = harness.actor("boss", Role::Admin, None).await;
    for index in 0..3 {
        harness
            .veil
            .create_customer(
                &admin,
                &customer("钱七", &format!("1350000{index:04}")),
                true,
            )
            .await
            .unwrap();
    }
    let before: Vec<_> = harness
        .veil
        .store()
        .customer_keys_below_kek(i64::MAX, 100)
        .await
        .unwrap();
    let new_key = harness.dir.path().join("new.key");
    crate::keys::create_master_key_file(&new_key).unwrap();
    let new_source = crate::MasterKeySource::File(new_key);
    harness.veil.replace_master_key(&new_source).await.unwrap();
    // Data keys were not touched; the keyring now opens only under the new master key.
    let after: Vec<_> = harness
        .veil
        .store()
        .customer_keys_below_kek(i64::MAX, 100)
        .await
        .unwrap();
    assert_eq!(
        before
            .iter()
            .map(|row| row.wrapped.clone())
            .collect::<Vec<_>>(),
        after
            .iter()
            .map(|row| row.wrapped.clone())
            .collect::<Vec<_>>()
    );
    let old = Veil::open(
        veil_store::Store::connect(&harness.url).await.unwrap(),
        &harness.master,
    )
    .await;
    assert!(matches!(old, Err(AppError::WrongMasterKey)), "{old:?}");
    let reopened = Veil::open(
        veil_store::Store::connect(&harness.url).await.unwrap(),
        &new_source,
    )
    .await
    .unwrap();
    assert_eq!(verify_all_decrypt(&reopened).await.unwrap(), 3);
    // The running instance keeps working too.
    harness
        .veil
        .create_customer(&admin, &customer("孙八", "13500009999"), true)
        .await
        .unwrap();
    assert_eq!(verify_all_decrypt(&reopened).await.unwrap(), 4);
    reopened.store().close().await;
});

both_backends!(
    notes_are_masked_on_write_and_sealed_under_the_customer_key,
    |harness| {
        let sales = harness.actor("sally", Role::Sales, Some("east")).await;
        let other = harness.actor("sam", Role::Sales, Some("east")).await;
        let created = harness
            .veil
            .create_customer(&sales, &customer("周九", "13600001234"), false)
            .await
            .unwrap();
        let text = format!("客户来电，手机{PHONE}，身份证{ID_NUMBER}，邮箱{EMAIL}。订单号20261129000013812345678已发货。");
        let note = harness
            .veil
            .add_note(
                &sales,
                created.id,
                &crate::notes::NoteInput { body: text.clone() },
            )
            .await
            .unwrap();
        assert!(note.body.contains("139****5678"), "{}", note.body);
        assert!(note.body.contains("110101********6151"), "{}", note.body);
        assert!(
            note.body.contains("20261129000013812345678"),
            "order numbers are not personal data: {}",
            note.body
        );
        assert_no_plaintext(note.body.as_bytes(), "the masked note");
        let kinds: Vec<&str> = note.pii.iter().map(|span| span.kind.as_str()).collect();
        assert!(
            kinds.contains(&"cn_mobile") && kinds.contains(&"cn_id") && kinds.contains(&"email"),
            "{kinds:?}"
        );
        for span in &note.pii {
            let shown: String = note
                .body
                .chars()
                .skip(span.start)
                .take(span.end - span.start)
                .collect();
            assert!(shown.contains('*'), "span {span:?} points at {shown}");
        }
        // Only readers of the customer read its notes.
        assert!(matches!(
            harness.veil.list_notes(&other, created.id, None, 50).await,
            Err(AppError::NotFound)
        ));
        let listed = harness
            .veil
            .list_notes(&sales, created.id, None, 50)
            .await
            .unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].body, note.body);
        // The originals open with the customer's key, and only with it.
        let rows = harness
            .veil
            .store()
            .list_notes(&created.id.to_string(), None, 10)
            .await
            .unwrap();
        let key_row = harness
            .veil
            .store()
            .customer_key(&created.id.to_string())
            .await
            .unwrap()
            .unwrap();
        let dek = harness.veil.unwrap_customer_key(&key_row).await.unwrap();
        let spans = crate::notes::open_spans(&dek, &rows[0], key_row.dek_version).unwrap();
        assert!(spans
            .iter()
            .any(|(kind, value)| *kind == veil_pii::PiiKind::CnMobile && value.as_str() == PHONE));
        let stranger = veil_mask::SecretKey::generate();
        assert!(crate::notes::open_spans(&stranger, &rows[0], key_row.dek_version).is_err());
        // Nothing of the note's plaintext is at rest.
        if let Some(path) = harness.sqlite_path() {
            harness.veil.store().checkpoint().await.unwrap();
            let mut bytes = Vec::new();
            sealed_row_of(&mut bytes, &path);
            sealed_row_of(&mut bytes, &path.with_extension("db-wal"));
            assert_no_plaintext(&bytes, "the SQLite file after a note");
        } else {
            let veil_store::Pool::Postgres(pool) = harness.veil.store().pool() else {
                unreachable!()
            };
            let dump: Option<String> =
                sqlx::query_scalar("SELECT string_agg(t::text, '|') FROM customer_note t")
                    .fetch_one(pool)
                    .await
                    .unwrap();
            assert_no_plaintext(dump.unwrap_or_default().as_bytes(), "the PostgreSQL notes");
        }
        // Erasing the customer erases the notes.
        let admin = harness.actor("root", Role::Admin, None).await;
        harness
            .veil
            .delete_customer(&admin, created.id)
            .await
            .unwrap();
        assert!(harness
            .veil
            .store()
            .list_notes(&created.id.to_string(), None, 10)
            .await
            .unwrap()
            .is_empty());
        // Empty and oversized notes are refused.
        let again = harness
            .veil
            .create_customer(&sales, &customer("吴十", "13600004321"), false)
            .await
            .unwrap();
        for body in [
            String::new(),
            "   ".to_owned(),
            "字".repeat(crate::notes::MAX_NOTE_CHARS + 1),
        ] {
            assert!(matches!(
                harness
                    .veil
                    .add_note(&sales, again.id, &crate::notes::NoteInput { body })
                    .await,
                Err(AppError::Validation(_))
            ));
        }
    }
);

both_backends!(
    policy_changes_are_recorded_validated_and_admin_only,
    |harness| {
        let admin = harness.actor("root", Role::Admin, None).await;
        let dpo = harness.actor("dora", Role::Dpo, None).await;
        let (version, default) = harness.veil.current_policy().await.unwrap();
        assert_eq!(version, 0);
        let document = default.to_json();
        assert!(matches!(
            harness
                .veil
                .record_policy_change(&dpo, &document, "why not")
                .await,
            Err(AppError::Forbidden(_))
        ));
        assert!(matches!(
            harness
                .veil
                .record_policy_change(&admin, &document, "  ")
                .await,
            Err(AppError::Validation(_))
        ));
        // fpe cannot apply to an email: the whole document is refused and the error says where.
        let mut invalid: serde_json::Value = serde_json::from_str(&document).unwrap();
        invalid["fields"]["email"]["display"] = serde_json::json!({"op": "fpe"});
        match harness
            .veil
            .record_policy_change(&admin, &invalid.to_string(), "try fpe")
            .await
        {
            Err(AppError::Validation(errors)) => {
                assert!(errors[0].message.contains("fields.email"), "{errors:?}")
            }
            other => panic!("expected a validation error, got {other:?}"),
        }
        let recorded = harness
            .veil
            .record_policy_change(&admin, &document, "annual review")
            .await
            .unwrap();
        assert_eq!(recorded.version, 1);
        let again = harness
            .veil
            .record_policy_change(&admin, &document, "second review")
            .await
            .unwrap();
        assert_eq!(again.version, 2);
        let (version, policy) = harness.veil.current_policy().await.unwrap();
        assert_eq!((version, policy.version), (2, 2));
        let state = harness.veil.policy_state(&dpo).await.unwrap();
        let reasons: Vec<&str> = state
            .history
            .iter()
            .map(|row| row.reason.as_str())
            .collect();
        assert_eq!(reasons, vec!["second review", "annual review"]);
    }
);
