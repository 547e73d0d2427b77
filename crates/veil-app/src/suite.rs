//! The domain and storage suite, run against SQLite and PostgreSQL alike (see [`crate::testing`]).

use veil_store::sqlx;
use veil_store::SensitiveField;

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
        store
            .update_customer(&second_row, expected, &Default::default(), &[])
            .await
            .unwrap();
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
        let authority = RevealAuthority::for_tests();
        let spans =
            crate::notes::open_spans(&authority, &dek, &rows[0], key_row.dek_version).unwrap();
        assert!(spans
            .iter()
            .any(|(kind, value)| kind == "cn_mobile" && value.as_str() == PHONE));
        let stranger = veil_mask::SecretKey::generate();
        assert!(
            crate::notes::open_spans(&authority, &stranger, &rows[0], key_row.dek_version).is_err()
        );
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

both_backends!(
    team_hierarchy_scopes_managers_and_transfers_are_recorded,
    |harness| {
        let admin = harness.actor("root", Role::Admin, None).await;
        harness.veil.add_team(&admin, "sales", None).await.unwrap();
        harness
            .veil
            .add_team(&admin, "east", Some("sales"))
            .await
            .unwrap();
        harness
            .veil
            .add_team(&admin, "shanghai", Some("east"))
            .await
            .unwrap();
        harness
            .veil
            .add_team(&admin, "west", Some("sales"))
            .await
            .unwrap();
        assert!(matches!(
            harness.veil.add_team(&admin, "east", None).await,
            Err(AppError::Conflict(_))
        ));
        assert!(matches!(
            harness
                .veil
                .add_team(&admin, "north", Some("nowhere"))
                .await,
            Err(AppError::Validation(_))
        ));
        let head = harness.actor("hana", Role::Manager, Some("sales")).await;
        let east_manager = harness.actor("eric", Role::Manager, Some("east")).await;
        assert!(matches!(
            harness.veil.add_team(&east_manager, "x", None).await,
            Err(AppError::Forbidden(_))
        ));
        let alice = harness.actor("alice", Role::Sales, Some("shanghai")).await;
        let bob = harness.actor("bob", Role::Sales, Some("west")).await;
        let carol = harness.actor("carol", Role::Sales, Some("east")).await;
        let in_shanghai = harness
            .veil
            .create_customer(&alice, &customer("甲", "13811112222"), false)
            .await
            .unwrap();
        let in_west = harness
            .veil
            .create_customer(&bob, &customer("乙", "13811113333"), false)
            .await
            .unwrap();
        // The east manager sees the sub-team's customers, not the sibling team's; the head of sales sees both.
        assert!(harness
            .veil
            .get_customer(&east_manager, in_shanghai.id)
            .await
            .is_ok());
        assert!(matches!(
            harness.veil.get_customer(&east_manager, in_west.id).await,
            Err(AppError::NotFound)
        ));
        assert_eq!(
            harness
                .veil
                .list_customers(&head, None, 50)
                .await
                .unwrap()
                .items
                .len(),
            2
        );
        // A transfer moves ownership and is recorded; sales may not transfer.
        let input = crate::teams::TransferInput {
            owner: carol.user_id.to_string(),
            team: None,
            reason: "alice left".into(),
        };
        assert!(matches!(
            harness
                .veil
                .transfer_customer(&alice, in_shanghai.id, &input)
                .await,
            Err(AppError::Forbidden(_))
        ));
        let history = harness
            .veil
            .transfer_customer(&east_manager, in_shanghai.id, &input)
            .await
            .unwrap();
        assert_eq!(history.len(), 1);
        assert_eq!(
            history[0].from_owner.as_deref(),
            Some(alice.user_id.to_string().as_str())
        );
        assert_eq!(history[0].to_team.as_deref(), Some("east"));
        assert_eq!(history[0].reason, "alice left");
        assert!(matches!(
            harness.veil.get_customer(&alice, in_shanghai.id).await,
            Err(AppError::NotFound)
        ));
        assert!(harness
            .veil
            .get_customer(&carol, in_shanghai.id)
            .await
            .is_ok());
        // A manager cannot move a customer out of their part of the tree.
        let away = crate::teams::TransferInput {
            owner: bob.user_id.to_string(),
            team: None,
            reason: "move".into(),
        };
        assert!(matches!(
            harness
                .veil
                .transfer_customer(&east_manager, in_shanghai.id, &away)
                .await,
            Err(AppError::Forbidden(_))
        ));
        // Bulk transfer when a salesperson leaves (admin).
        harness
            .veil
            .create_customer(&bob, &customer("丙", "13811114444"), false)
            .await
            .unwrap();
        let moved = harness
            .veil
            .transfer_all_customers(&admin, bob.user_id, carol.user_id, "bob left")
            .await
            .unwrap();
        assert_eq!(moved, 2);
        assert!(harness
            .veil
            .list_customers(&bob, None, 50)
            .await
            .unwrap()
            .items
            .is_empty());
        assert_eq!(
            harness
                .veil
                .list_customers(&carol, None, 50)
                .await
                .unwrap()
                .items
                .len(),
            3
        );
        assert!(matches!(
            harness
                .veil
                .transfer_all_customers(&east_manager, carol.user_id, bob.user_id, "no")
                .await,
            Err(AppError::Forbidden(_))
        ));
    }
);

// ---- Authentication security: lock-outs, TOTP MFA, recovery codes, step-up, password policy ----

mod auth_security {
    use super::*;
    pub use crate::mfa::{TotpSecret, STEP_UP_WINDOW_MS, TOTP_STEP_SECONDS};
    pub use crate::users::{LoginAttempt, LoginError, Session};

    pub const GOOD: &str = "correct horse battery";

    /// Runs one statement against whichever backend the harness uses.
    pub async fn execute(harness: &Harness, sql: &str) {
        match harness.veil.store().pool() {
            veil_store::Pool::Sqlite(pool) => {
                sqlx::query(sql).execute(pool).await.unwrap();
            }
            veil_store::Pool::Postgres(pool) => {
                sqlx::query(sql).execute(pool).await.unwrap();
            }
        }
    }

    pub async fn attempt(
        veil: &Veil,
        username: &str,
        password: &str,
        second_factor: Option<&str>,
        client: Option<&str>,
    ) -> Result<Session, LoginError> {
        let password = Password::new(password.to_owned());
        veil.login_with(LoginAttempt {
            username,
            password: &password,
            second_factor,
            client: client.map(|address| address.parse().unwrap()),
        })
        .await
    }

    pub fn now_seconds() -> u64 {
        (crate::now_ms() / 1000) as u64
    }

    /// The code for the current time step plus `offset` steps.
    pub fn code(secret: &TotpSecret, offset: u64) -> String {
        let step = now_seconds() / TOTP_STEP_SECONDS + offset;
        secret.code_at(step * TOTP_STEP_SECONDS).unwrap()
    }

    /// A six-digit code that matches no step within the accepted skew.
    pub fn wrong_code(secret: &TotpSecret) -> String {
        let window: Vec<String> = (0..4)
            .map(|offset| {
                let step = now_seconds() / TOTP_STEP_SECONDS + offset;
                secret.code_at((step - 1) * TOTP_STEP_SECONDS).unwrap()
            })
            .collect();
        (0..)
            .map(|n: u32| format!("{:06}", (n * 7919 + 123_457) % 1_000_000))
            .find(|candidate| !window.contains(candidate))
            .unwrap()
    }

    /// Enrols and confirms MFA for `username` (logging in first); returns the secret and the recovery codes.
    /// The confirmation uses the current time step, so a login may use the next one.
    pub async fn enable_mfa(veil: &Veil, username: &str) -> (TotpSecret, Vec<String>) {
        let actor = veil.actor_by_username(username).await.unwrap();
        let enrollment = veil.enroll_mfa(&actor).await.unwrap();
        let secret = TotpSecret::from_base32(&enrollment.secret).unwrap();
        let codes = veil.confirm_mfa(&actor, &code(&secret, 0)).await.unwrap();
        (secret, codes.expose())
    }

    pub fn is_locked(result: &Result<Session, LoginError>) -> Option<u64> {
        match result {
            Err(LoginError::Locked { retry_after_secs }) => Some(*retry_after_secs),
            _ => None,
        }
    }

    pub fn is_unauthenticated(result: &Result<Session, LoginError>) -> bool {
        matches!(result, Err(LoginError::App(AppError::Unauthenticated)))
    }

    /// Every byte of the tables the auth-security features write, as text (PostgreSQL) or the raw file and WAL
    /// (SQLite, before and after a checkpoint).
    pub async fn stored_bytes(harness: &Harness) -> Vec<Vec<u8>> {
        match harness.sqlite_path() {
            Some(path) => {
                let wal = path.with_extension("db-wal");
                let mut before = Vec::new();
                sealed_row_of(&mut before, &path);
                sealed_row_of(&mut before, &wal);
                harness.veil.store().checkpoint().await.unwrap();
                let mut after = Vec::new();
                sealed_row_of(&mut after, &path);
                sealed_row_of(&mut after, &wal);
                vec![before, after]
            }
            None => {
                let veil_store::Pool::Postgres(pool) = harness.veil.store().pool() else {
                    unreachable!()
                };
                let mut all = Vec::new();
                for table in [
                    "user_mfa",
                    "recovery_code",
                    "login_failure",
                    "keyring",
                    "auth_token",
                    "app_user",
                    "setting",
                    "token_vault",
                    "customer_display",
                ] {
                    let text: Option<String> = sqlx::query_scalar(&format!(
                        "SELECT string_agg(t::text, '|') FROM {table} t"
                    ))
                    .fetch_one(pool)
                    .await
                    .unwrap();
                    all.extend_from_slice(text.unwrap_or_default().as_bytes());
                }
                vec![all]
            }
        }
    }

    pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack
            .windows(needle.len())
            .any(|window| window == needle)
    }
}

both_backends!(login_locks_out_after_repeated_failures, |harness| {
    use auth_security::*;
    harness.actor("lou", Role::Sales, None).await;
    harness.actor("rita", Role::Sales, None).await;
    harness.actor("vic", Role::Sales, None).await;
    let veil = &harness.veil;

    // Five failures lock the account; then even the right password is refused, and so is a second server.
    for _ in 0..5 {
        let result = attempt(veil, "lou", "not the password", None, None).await;
        assert!(is_unauthenticated(&result), "{result:?}");
    }
    let locked = attempt(veil, "lou", GOOD, None, None).await;
    let retry = is_locked(&locked).expect("locked after five failures");
    assert!(
        (1..=60).contains(&retry),
        "first lock-out lasts a minute: {retry}"
    );
    let other_server = harness.reopen().await;
    assert!(is_locked(&attempt(&other_server, "lou", GOOD, None, None).await).is_some());
    assert!(matches!(
        veil.login("lou", &Password::new(GOOD.into())).await,
        Err(AppError::Forbidden(_))
    ));

    // An unknown username is treated exactly the same way.
    for _ in 0..5 {
        let result = attempt(veil, "nobody-here", GOOD, None, None).await;
        assert!(is_unauthenticated(&result), "{result:?}");
    }
    assert!(is_locked(&attempt(veil, "nobody-here", GOOD, None, None).await).is_some());

    // When the lock-out ends, the next five failures lock for twice as long.
    execute(&harness, "UPDATE login_failure SET locked_until = 1").await;
    for _ in 0..5 {
        assert!(is_unauthenticated(
            &attempt(veil, "lou", "still not it", None, None).await
        ));
    }
    let retry = is_locked(&attempt(veil, "lou", GOOD, None, None).await).unwrap();
    assert!(
        (61..=120).contains(&retry),
        "second lock-out lasts two minutes: {retry}"
    );

    // A successful login resets the account's counter: 4 + success + 4 failures never lock.
    for round in 0..2 {
        for _ in 0..4 {
            assert!(is_unauthenticated(
                &attempt(veil, "rita", "wrong", None, None).await
            ));
        }
        let result = attempt(veil, "rita", GOOD, None, None).await;
        assert!(result.is_ok(), "round {round}: {result:?}");
    }

    // Per address: 20 failures from one address, spread over many usernames, lock the address for everyone…
    for index in 0..20 {
        let username = format!("guess{index}");
        let result = attempt(veil, &username, "wrong", None, Some("203.0.113.9")).await;
        assert!(is_unauthenticated(&result), "{result:?}");
    }
    let from_bad = attempt(veil, "vic", GOOD, None, Some("203.0.113.9")).await;
    assert!(is_locked(&from_bad).is_some(), "{from_bad:?}");
    // … but not the account itself, from elsewhere; an IPv6 /64 counts as one address.
    assert!(attempt(veil, "vic", GOOD, None, Some("198.51.100.4"))
        .await
        .is_ok());
    assert!(attempt(veil, "vic", GOOD, None, Some("2001:db8::1"))
        .await
        .is_ok());
});

both_backends!(
    totp_is_required_after_confirm_and_accepted_once,
    |harness| {
        use auth_security::*;
        harness.actor("tina", Role::Admin, None).await;
        let veil = &harness.veil;
        let before = attempt(veil, "tina", GOOD, None, None).await.unwrap();
        assert!(
            before.mfa_enrollment_required,
            "admins must use MFA by default"
        );
        assert!(!before.mfa_verified);

        let actor = veil.actor_by_username("tina").await.unwrap();
        let enrollment = veil.enroll_mfa(&actor).await.unwrap();
        assert_eq!(enrollment.secret.len(), 32, "160-bit secret in base32");
        assert!(
            enrollment.otpauth_uri.starts_with(&format!(
                "otpauth://totp/Veil:tina?secret={}&issuer=Veil",
                enrollment.secret.as_str()
            )),
            "{}",
            enrollment.otpauth_uri.as_str()
        );
        assert!(enrollment
            .otpauth_uri
            .contains("algorithm=SHA1&digits=6&period=30"));
        // Until confirmed, MFA is not required at login.
        assert!(attempt(veil, "tina", GOOD, None, None).await.is_ok());
        let secret = TotpSecret::from_base32(&enrollment.secret).unwrap();
        assert!(matches!(
            veil.confirm_mfa(&actor, &wrong_code(&secret)).await,
            Err(AppError::Validation(_))
        ));
        let confirm_code = code(&secret, 0);
        let recovery = veil
            .confirm_mfa(&actor, &confirm_code)
            .await
            .unwrap()
            .expose();
        assert_eq!(recovery.len(), 10);
        assert!(matches!(
            veil.confirm_mfa(&actor, &code(&secret, 1)).await,
            Err(AppError::Conflict(_))
        ));
        assert!(matches!(
            veil.enroll_mfa(&actor).await,
            Err(AppError::Conflict(_))
        ));

        // The password alone no longer logs in; a wrong code does not; the confirmation's code cannot be replayed.
        assert!(matches!(
            attempt(veil, "tina", GOOD, None, None).await,
            Err(LoginError::MfaRequired)
        ));
        assert!(matches!(
            veil.login("tina", &Password::new(GOOD.into())).await,
            Err(AppError::Unauthenticated)
        ));
        assert!(matches!(
            attempt(veil, "tina", GOOD, Some(&wrong_code(&secret)), None).await,
            Err(LoginError::MfaInvalid)
        ));
        assert!(matches!(
            attempt(veil, "tina", GOOD, Some(&confirm_code), None).await,
            Err(LoginError::MfaInvalid)
        ));
        // A right code with a wrong password is still a wrong password.
        let next = code(&secret, 1);
        assert!(is_unauthenticated(
            &attempt(veil, "tina", "wrong password", Some(&next), None).await
        ));
        let session = attempt(veil, "tina", GOOD, Some(&next), None)
            .await
            .unwrap();
        assert!(session.mfa_verified);
        assert!(!session.mfa_enrollment_required);
        assert!(veil
            .recent_mfa(session.token.expose(), STEP_UP_WINDOW_MS)
            .await
            .unwrap());
        // The same code, again — here and on another server — is refused.
        assert!(matches!(
            attempt(veil, "tina", GOOD, Some(&next), None).await,
            Err(LoginError::MfaInvalid)
        ));
        let other_server = harness.reopen().await;
        assert!(matches!(
            attempt(&other_server, "tina", GOOD, Some(&next), None).await,
            Err(LoginError::MfaInvalid)
        ));
        // A recovery code still works.
        assert!(attempt(veil, "tina", GOOD, Some(&recovery[0]), None)
            .await
            .is_ok());

        // An administrator's reset removes MFA and ends the sessions.
        veil.reset_mfa("tina").await.unwrap();
        assert!(matches!(
            veil.authenticate(session.token.expose()).await,
            Err(AppError::Unauthenticated)
        ));
        let after_reset = attempt(veil, "tina", GOOD, None, None).await.unwrap();
        assert!(after_reset.mfa_enrollment_required);
    }
);

both_backends!(recovery_codes_work_once_each, |harness| {
    use auth_security::*;
    harness.actor("rob", Role::Dpo, None).await;
    let veil = &harness.veil;
    let (_secret, recovery) = enable_mfa(veil, "rob").await;
    assert_eq!(recovery.len(), 10);
    let distinct: std::collections::BTreeSet<&String> = recovery.iter().collect();
    assert_eq!(distinct.len(), 10);
    for code in &recovery {
        assert_eq!(code.len(), 19, "{code}");
        assert_eq!(code.matches('-').count(), 3, "{code}");
    }
    let user = veil.store().user_by_username("rob").await.unwrap().unwrap();
    assert_eq!(
        veil.store().unused_recovery_codes(&user.id).await.unwrap(),
        10
    );

    let first = attempt(veil, "rob", GOOD, Some(&recovery[0]), None)
        .await
        .unwrap();
    assert!(first.mfa_verified);
    assert!(matches!(
        attempt(veil, "rob", GOOD, Some(&recovery[0]), None).await,
        Err(LoginError::MfaInvalid)
    ));
    // Typed in upper case without dashes, a code still counts, once.
    let typed = recovery[1].replace('-', "").to_uppercase();
    assert!(attempt(veil, "rob", GOOD, Some(&typed), None).await.is_ok());
    assert!(matches!(
        attempt(veil, "rob", GOOD, Some(&recovery[1]), None).await,
        Err(LoginError::MfaInvalid)
    ));
    // A code of another user is worthless here.
    harness.actor("ria", Role::Dpo, None).await;
    let (_, others) = enable_mfa(veil, "ria").await;
    assert!(matches!(
        attempt(veil, "rob", GOOD, Some(&others[0]), None).await,
        Err(LoginError::MfaInvalid)
    ));
    assert_eq!(
        veil.store().unused_recovery_codes(&user.id).await.unwrap(),
        8
    );
});

both_backends!(step_up_verification_stamps_the_token, |harness| {
    use auth_security::*;
    harness.actor("sue", Role::Admin, None).await;
    harness.actor("sid", Role::Sales, None).await;
    let veil = &harness.veil;

    // Without MFA, no token is ever recent, and a step-up is a conflict.
    let plain = attempt(veil, "sid", GOOD, None, None).await.unwrap();
    assert!(
        !plain.mfa_enrollment_required,
        "sales is not required by default"
    );
    assert!(!veil
        .recent_mfa(plain.token.expose(), STEP_UP_WINDOW_MS)
        .await
        .unwrap());
    assert!(matches!(
        veil.require_recent_mfa(plain.token.expose()).await,
        Err(AppError::Forbidden(_))
    ));
    let sid = veil.actor_by_username("sid").await.unwrap();
    assert!(matches!(
        veil.verify_mfa(&sid, plain.token.expose(), "123456").await,
        Err(LoginError::App(AppError::Conflict(_)))
    ));

    let (secret, recovery) = enable_mfa(veil, "sue").await;
    let sue = veil.actor_by_username("sue").await.unwrap();
    let session = attempt(veil, "sue", GOOD, Some(&code(&secret, 1)), None)
        .await
        .unwrap();
    let token = session.token.expose().to_owned();
    veil.require_recent_mfa(&token).await.unwrap();
    // Eleven minutes later the stamp is stale.
    execute(
        &harness,
        &format!(
            "UPDATE auth_token SET mfa_verified_at = {}",
            crate::now_ms() - 11 * 60 * 1000
        ),
    )
    .await;
    assert!(!veil.recent_mfa(&token, STEP_UP_WINDOW_MS).await.unwrap());
    assert!(veil.recent_mfa(&token, 12 * 60 * 1000).await.unwrap());
    assert!(matches!(
        veil.require_recent_mfa(&token).await,
        Err(AppError::Forbidden(_))
    ));
    // A wrong code is refused; a good second factor stamps the token again.
    assert!(matches!(
        veil.verify_mfa(&sue, &token, &wrong_code(&secret)).await,
        Err(LoginError::App(AppError::Validation(_)))
    ));
    veil.verify_mfa(&sue, &token, &recovery[3]).await.unwrap();
    veil.require_recent_mfa(&token).await.unwrap();
    // Step-up failures count towards the lock-out (one failure so far, four more lock).
    for _ in 0..4 {
        assert!(veil
            .verify_mfa(&sue, &token, &wrong_code(&secret))
            .await
            .is_err());
    }
    assert!(matches!(
        veil.verify_mfa(&sue, &token, &recovery[4]).await,
        Err(LoginError::Locked { .. })
    ));
});

both_backends!(mfa_required_roles_come_from_a_setting, |harness| {
    use auth_security::*;
    harness.actor("ann", Role::Admin, None).await;
    harness.actor("dee", Role::Dpo, None).await;
    harness.actor("sam", Role::Sales, None).await;
    let veil = &harness.veil;
    assert_eq!(
        veil.mfa_required_roles().await.unwrap(),
        vec![Role::Admin, Role::Dpo]
    );
    for (username, required) in [("ann", true), ("dee", true), ("sam", false)] {
        let session = attempt(veil, username, GOOD, None, None).await.unwrap();
        assert_eq!(session.mfa_enrollment_required, required, "{username}");
        let actor = veil.actor_by_username(username).await.unwrap();
        assert_eq!(
            veil.mfa_status(&actor).await.unwrap().enrollment_required,
            required
        );
    }
    veil.set_mfa_required_roles(&[Role::Sales]).await.unwrap();
    for (username, required) in [("ann", false), ("dee", false), ("sam", true)] {
        let session = attempt(veil, username, GOOD, None, None).await.unwrap();
        assert_eq!(session.mfa_enrollment_required, required, "{username}");
    }
    enable_mfa(veil, "sam").await;
    let sam = veil.actor_by_username("sam").await.unwrap();
    let status = veil.mfa_status(&sam).await.unwrap();
    assert!(status.enabled && !status.enrollment_required);
});

both_backends!(
    mfa_secrets_and_counters_are_not_stored_in_clear,
    |harness| {
        use auth_security::*;
        harness.actor("zoe", Role::Admin, None).await;
        let veil = &harness.veil;
        let actor = veil.actor_by_username("zoe").await.unwrap();
        let enrollment = veil.enroll_mfa(&actor).await.unwrap();
        let base32 = enrollment.secret.as_str().to_owned();
        let secret = TotpSecret::from_base32(&base32).unwrap();
        let recovery = veil
            .confirm_mfa(&actor, &code(&secret, 0))
            .await
            .unwrap()
            .expose();
        // A failed login from a known address, for a username that does not exist.
        let _ = attempt(veil, "mallory-probe", "wrong", None, Some("198.51.100.23")).await;

        // Raw secret bytes, recovered from base32 by re-encoding a known-good secret round trip.
        let raw = {
            let mut bits = Vec::new();
            for character in base32.chars() {
                let value = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
                    .iter()
                    .position(|&a| a == character as u8)
                    .unwrap();
                for shift in (0..5).rev() {
                    bits.push((value >> shift) & 1);
                }
            }
            bits.chunks(8)
                .filter(|chunk| chunk.len() == 8)
                .map(|chunk| chunk.iter().fold(0u8, |byte, bit| (byte << 1) | *bit as u8))
                .collect::<Vec<u8>>()
        };
        assert_eq!(raw.len(), 20);
        let hex: String = raw.iter().map(|byte| format!("{byte:02x}")).collect();
        let mut needles: Vec<(String, Vec<u8>)> = vec![
            ("base32 secret".into(), base32.as_bytes().to_vec()),
            (
                "lower-case base32 secret".into(),
                base32.to_lowercase().into_bytes(),
            ),
            ("raw secret".into(), raw.clone()),
            ("hex secret".into(), hex.into_bytes()),
            // (The client address itself is in the audit trail by design: every entry records its source IP.)
            ("probed username".into(), b"mallory-probe".to_vec()),
        ];
        for code in &recovery {
            needles.push((format!("recovery code {code}"), code.as_bytes().to_vec()));
            needles.push((
                format!("compact recovery code {code}"),
                code.replace('-', "").into_bytes(),
            ));
        }
        let stored = stored_bytes(&harness).await;
        for bytes in &stored {
            assert!(!bytes.is_empty());
            // Sanity: the scan sees what is stored in clear.
            assert!(contains(bytes, b"zoe"), "the scan must see the username");
            for (label, needle) in &needles {
                assert!(!contains(bytes, needle), "{label} found in storage");
            }
        }
        // And the sealed secret still works after a restart (opened from the keyring, not a cache).
        let restarted = harness.reopen().await;
        assert!(
            attempt(&restarted, "zoe", GOOD, Some(&code(&secret, 1)), None)
                .await
                .is_ok()
        );
    }
);

both_backends!(
    password_policy_applies_to_new_and_reset_passwords,
    |harness| {
        let veil = &harness.veil;
        let codes_of = |result: crate::AppResult<crate::users::UserView>| match result {
            Err(AppError::Validation(errors)) => errors
                .into_iter()
                .map(|error| format!("{}:{}", error.field, error.code))
                .collect::<Vec<_>>(),
            other => panic!("expected a validation error, got {other:?}"),
        };
        for (username, password, expected) in [
            ("pat", "short", "password:too_short"),
            ("pat", "password1234", "password:common_password"),
            ("pat", "iloveyou12345", "password:common_password"),
            (
                "patricia",
                "patricia-rides-bikes-77",
                "password:contains_username",
            ),
            ("pat", "aaaaaaaaaaaaaaaa", "password:too_weak"),
        ] {
            let result = veil
                .add_user(
                    username,
                    Role::Sales,
                    None,
                    &Password::new(password.to_owned()),
                )
                .await;
            assert_eq!(codes_of(result), vec![expected.to_owned()], "{password}");
        }
        let too_long = "Zq7!".repeat(65);
        let result = veil
            .add_user("pat", Role::Sales, None, &Password::new(too_long))
            .await;
        assert_eq!(codes_of(result), vec!["password:too_long".to_owned()]);
        assert!(
            veil.list_users().await.unwrap().is_empty(),
            "nothing written"
        );

        harness.actor("pat", Role::Sales, None).await;
        assert!(matches!(
            veil.reset_password("pat", &Password::new("password1234".into()))
                .await,
            Err(AppError::Validation(_))
        ));
        assert!(matches!(
            veil.reset_password("pat", &Password::new("pat-pat-pat-pat-99".into()))
                .await,
            Err(AppError::Validation(_))
        ));
        // The old password still works: the refused reset changed nothing.
        veil.login("pat", &Password::new(auth_security::GOOD.into()))
            .await
            .unwrap();
        // Generated passwords (demo accounts, `veil user add` without --password-stdin) pass.
        let accounts = crate::demo::ensure_demo_accounts(veil).await.unwrap();
        assert!(!accounts.is_empty());
        let again = crate::demo::ensure_demo_accounts(veil).await.unwrap();
        assert_eq!(again.len(), accounts.len());
    }
);

both_backends!(service_staff_see_only_linked_customers, |harness| {
    let manager = harness.actor("mona", Role::Manager, Some("east")).await;
    let sales = harness.actor("sally", Role::Sales, Some("east")).await;
    let service = harness.actor("sue", Role::Service, Some("desk")).await;
    let linked = harness
        .veil
        .create_customer(&sales, &customer("甲", "13711112222"), false)
        .await
        .unwrap();
    let other = harness
        .veil
        .create_customer(&sales, &customer("乙", "13711113333"), false)
        .await
        .unwrap();
    assert!(harness
        .veil
        .list_customers(&service, None, 50)
        .await
        .unwrap()
        .items
        .is_empty());
    assert!(matches!(
        harness.veil.get_customer(&service, linked.id).await,
        Err(AppError::NotFound)
    ));
    // Sales may not link; the team's manager may; only service users can be linked.
    assert!(matches!(
        harness
            .veil
            .link_service_user(&sales, linked.id, service.user_id, "ticket")
            .await,
        Err(AppError::Forbidden(_))
    ));
    assert!(matches!(
        harness
            .veil
            .link_service_user(&manager, linked.id, sales.user_id, "ticket")
            .await,
        Err(AppError::Validation(_))
    ));
    harness
        .veil
        .link_service_user(&manager, linked.id, service.user_id, "ticket T-1")
        .await
        .unwrap();
    let listed = harness
        .veil
        .list_customers(&service, None, 50)
        .await
        .unwrap();
    assert_eq!(
        listed.items.iter().map(|item| item.id).collect::<Vec<_>>(),
        vec![linked.id]
    );
    assert!(harness.veil.get_customer(&service, linked.id).await.is_ok());
    assert!(matches!(
        harness.veil.get_customer(&service, other.id).await,
        Err(AppError::NotFound)
    ));
    // Read-only plus notes: no changes, no erasure, no creation.
    let patch = CustomerPatch {
        tags: Some(vec!["x".into()]),
        ..CustomerPatch::default()
    };
    assert!(matches!(
        harness
            .veil
            .update_customer(&service, linked.id, &patch, false)
            .await,
        Err(AppError::Forbidden(_))
    ));
    assert!(matches!(
        harness.veil.delete_customer(&service, linked.id).await,
        Err(AppError::Forbidden(_))
    ));
    assert!(matches!(
        harness
            .veil
            .create_customer(&service, &customer("丙", "13711114444"), false)
            .await,
        Err(AppError::Forbidden(_))
    ));
    harness
        .veil
        .add_note(
            &service,
            linked.id,
            &crate::notes::NoteInput {
                body: "客户来电咨询售后".into(),
            },
        )
        .await
        .unwrap();
    // Exact search stays inside the links too.
    let probe = ExactSearch {
        field: SensitiveField::Phone,
        value: "13711113333".into(),
    };
    assert!(harness
        .veil
        .search_customers(&service, &probe)
        .await
        .unwrap()
        .is_empty());
});

both_backends!(
    the_same_customer_reads_differently_per_role_under_the_policy,
    |harness| {
        let veil = &harness.veil;
        let admin = harness.actor("root", Role::Admin, None).await;
        let manager = harness.actor("mona", Role::Manager, Some("east")).await;
        let sales = harness.actor("sam", Role::Sales, Some("east")).await;
        let mut input = known_customer();
        input.owner = Some(sales.user_id.to_string());
        input.team = Some("east".to_owned());
        let created = veil.create_customer(&admin, &input, false).await.unwrap();
        // Salespeople see bank cards redacted; managers see phone numbers through an operator that needs the
        // original (a keyed hash), which reads never compute: fully masked.
        let (_, mut policy) = veil.current_policy().await.unwrap();
        policy.fields.get_mut("bank_card").unwrap().roles.insert(
            "sales".to_owned(),
            veil_mask::Rule::Apply(veil_mask::Operator::Redact {
                replacement: Some("[hidden]".to_owned()),
            }),
        );
        policy.fields.get_mut("phone").unwrap().roles.insert(
            "manager".to_owned(),
            veil_mask::Rule::Apply(veil_mask::Operator::Hash {
                encoding: Default::default(),
            }),
        );
        veil.record_policy_change(&admin, &policy.to_json(), "field visibility per role")
            .await
            .unwrap();
        let as_admin = veil.get_customer(&admin, created.id).await.unwrap();
        let as_manager = veil.get_customer(&manager, created.id).await.unwrap();
        let as_sales = veil.get_customer(&sales, created.id).await.unwrap();
        assert_eq!(as_admin.phone.as_deref(), Some("139****5678"));
        assert_eq!(as_admin.bank_card, created.bank_card);
        assert_eq!(as_sales.bank_card.as_deref(), Some("[hidden]"));
        assert_eq!(as_sales.phone.as_deref(), Some("139****5678"));
        assert_eq!(as_manager.phone.as_deref(), Some("******"));
        assert_eq!(as_manager.bank_card, created.bank_card);
        // Lists and searches follow the same rules.
        let page = veil.list_customers(&sales, None, 10).await.unwrap();
        assert_eq!(page.items[0].bank_card.as_deref(), Some("[hidden]"));
        let found = veil
            .search_customers(
                &manager,
                &ExactSearch {
                    field: SensitiveField::Phone,
                    value: PHONE.to_owned(),
                },
            )
            .await
            .unwrap();
        assert_eq!(found[0].phone.as_deref(), Some("******"));
        // Once the re-mask job has run, the manager reads the keyed hash computed from the original.
        veil.remask(&|_, _| {}).await.unwrap();
        let hashed = veil
            .get_customer(&manager, created.id)
            .await
            .unwrap()
            .phone
            .unwrap();
        assert_ne!(hashed, "******");
        assert!(!hashed.contains(PHONE) && hashed.len() >= 32);
        let mut twin = known_customer();
        twin.team = Some("east".to_owned());
        let twin = veil.create_customer(&admin, &twin, true).await.unwrap();
        let twin_hash = veil.get_customer(&manager, twin.id).await.unwrap().phone;
        assert_eq!(twin_hash.as_deref(), Some(hashed.as_str()));
    }
);

both_backends!(
    per_rule_displays_are_computed_on_write_and_by_the_resumable_remask_job,
    |harness| {
        use veil_mask::display::FULL_MASK;
        use veil_mask::operator::Generalization;
        use veil_mask::{MaskSpec, Operator, Rule};
        let veil = &harness.veil;
        let admin = harness.actor("root", Role::Admin, None).await;
        let sales = harness.actor("sam", Role::Sales, Some("east")).await;
        let mut input = known_customer();
        input.owner = Some(sales.user_id.to_string());
        input.team = Some("east".to_owned());
        let before = veil.create_customer(&admin, &input, false).await.unwrap();
        let mask_with = |mask_char: char| {
            Rule::Apply(Operator::Mask(MaskSpec {
                keep_leading: 3,
                keep_trailing: 0,
                mask_char,
                keep_separators: false,
            }))
        };
        let (_, mut policy) = veil.current_policy().await.unwrap();
        policy
            .fields
            .get_mut("phone")
            .unwrap()
            .roles
            .insert("sales".to_owned(), mask_with('#'));
        policy.fields.get_mut("id_number").unwrap().roles.insert(
            "sales".to_owned(),
            Rule::Apply(Operator::Generalize {
                to: Generalization::RegionAndBirthYear,
                band_width: None,
            }),
        );
        veil.record_policy_change(&admin, &policy.to_json(), "coarser views for sales")
            .await
            .unwrap();
        // Until the job reaches it, an older customer's new displays do not exist: fully masked, never decrypted.
        let seen = veil.get_customer(&sales, before.id).await.unwrap();
        assert_eq!(seen.phone.as_deref(), Some(FULL_MASK));
        assert_eq!(seen.id_number.as_deref(), Some(FULL_MASK));
        assert!(!veil.remask_status().await.unwrap().finished);
        // A customer written under the new policy has them at once.
        let mut other = known_customer();
        other.phone = Some("13800138000".to_owned());
        other.owner = Some(sales.user_id.to_string());
        other.team = Some("east".to_owned());
        let after = veil.create_customer(&admin, &other, true).await.unwrap();
        let seen = veil.get_customer(&sales, after.id).await.unwrap();
        assert_eq!(seen.phone.as_deref(), Some("138########"));
        assert_eq!(seen.id_number.as_deref(), Some("110101-1984"));
        // The job fills in the rest and reports complete; other roles keep the default displays.
        let calls = std::sync::atomic::AtomicU64::new(0);
        let status = veil
            .remask(&|_, _| {
                calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            })
            .await
            .unwrap();
        assert!(status.finished);
        assert_eq!(status.done, 2);
        assert!(calls.load(std::sync::atomic::Ordering::Relaxed) >= 1);
        let seen = veil.get_customer(&sales, before.id).await.unwrap();
        assert_eq!(seen.phone.as_deref(), Some("139########"));
        assert_eq!(seen.id_number.as_deref(), Some("110101-1984"));
        let page = veil.list_customers(&sales, None, 10).await.unwrap();
        assert!(page.items.iter().all(|item| item
            .phone
            .as_deref()
            .is_some_and(|p| p.ends_with("########"))));
        let as_admin = veil.get_customer(&admin, before.id).await.unwrap();
        assert_eq!(as_admin.phone.as_deref(), Some("139****5678"));
        // An update recomputes the changed field's displays.
        let patch = CustomerPatch {
            phone: Some(Some("13700001111".to_owned())),
            ..CustomerPatch::default()
        };
        veil.update_customer(&admin, before.id, &patch, true)
            .await
            .unwrap();
        let seen = veil.get_customer(&sales, before.id).await.unwrap();
        assert_eq!(seen.phone.as_deref(), Some("137########"));
        // What is stored is the display, never the value.
        let pairs =
            crate::displays::StoredRules::of(&veil.current_policy().await.unwrap().1).pairs();
        let stored = veil
            .store()
            .displays_for(&[before.id.to_string(), after.id.to_string()], &pairs)
            .await
            .unwrap();
        assert_eq!(stored.len(), 4);
        for display in stored.values() {
            for secret in [PHONE, ID_NUMBER, "13700001111", "13800138000"] {
                assert!(!display.contains(secret));
            }
        }
        // Interrupted after the first customer (ids ascend): a resumed run starts after the cursor.
        policy
            .fields
            .get_mut("phone")
            .unwrap()
            .roles
            .insert("sales".to_owned(), mask_with('@'));
        let version = veil
            .record_policy_change(&admin, &policy.to_json(), "another mask")
            .await
            .unwrap()
            .version;
        harness
            .raw_sql(&format!(
                "INSERT INTO remask_progress (policy_version, cursor, done, started_at) \
                 VALUES ({version}, '{}', 1, 0)",
                before.id
            ))
            .await
            .unwrap();
        let status = veil.remask(&|_, _| {}).await.unwrap();
        assert!(status.finished);
        assert_eq!(status.done, 2);
        let first = veil.get_customer(&sales, before.id).await.unwrap();
        let second = veil.get_customer(&sales, after.id).await.unwrap();
        assert_eq!(first.phone.as_deref(), Some(FULL_MASK));
        assert_eq!(second.phone.as_deref(), Some("138@@@@@@@@"));
    }
);

both_backends!(
    tokenized_displays_keep_their_values_sealed_in_the_database_vault,
    |harness| {
        use veil_mask::operator::SurrogateKind;
        use veil_mask::{Operator, Rule, VaultScope};
        let veil = &harness.veil;
        let admin = harness.actor("root", Role::Admin, None).await;
        let manager = harness.actor("mona", Role::Manager, Some("east")).await;
        let mut input = known_customer();
        input.team = Some("east".to_owned());
        let (_, mut policy) = veil.current_policy().await.unwrap();
        policy.fields.get_mut("phone").unwrap().roles.insert(
            "manager".to_owned(),
            Rule::Apply(Operator::Tokenize {
                deterministic: true,
            }),
        );
        veil.record_policy_change(&admin, &policy.to_json(), "managers see join keys")
            .await
            .unwrap();
        let first = veil.create_customer(&admin, &input, false).await.unwrap();
        let twin = veil.create_customer(&admin, &input, true).await.unwrap();
        let token = veil
            .get_customer(&manager, first.id)
            .await
            .unwrap()
            .phone
            .unwrap();
        assert!(token.starts_with("tok_"), "{token}");
        // Deterministic: the same number has the same token (joins work), recorded once.
        let twin_token = veil.get_customer(&manager, twin.id).await.unwrap().phone;
        assert_eq!(twin_token.as_deref(), Some(token.as_str()));
        assert_eq!(veil.store().vault_len().await.unwrap(), 1);
        // The vault resolves it (for the governed re-identification path only), and stores no plaintext.
        let scope = VaultScope {
            surrogate: SurrogateKind::Token,
            kind: Some(veil_pii::PiiKind::CnMobile),
            context: "phone",
        };
        let value = veil.vault_value(&scope, &token).await.unwrap().unwrap();
        assert_eq!(value.as_str(), PHONE);
        let wrong_scope = VaultScope {
            context: "email",
            ..scope
        };
        assert!(veil
            .vault_value(&wrong_scope, &token)
            .await
            .unwrap()
            .is_none());
        for bytes in auth_security::stored_bytes(&harness).await {
            assert!(!bytes
                .windows(PHONE.len())
                .any(|window| window == PHONE.as_bytes()));
        }
        // A new number gets a new token; erasing its customer deletes what the vault held for it.
        let patch = CustomerPatch {
            phone: Some(Some("13700001111".to_owned())),
            ..CustomerPatch::default()
        };
        veil.update_customer(&admin, twin.id, &patch, true)
            .await
            .unwrap();
        let new_token = veil
            .get_customer(&manager, twin.id)
            .await
            .unwrap()
            .phone
            .unwrap();
        assert!(new_token.starts_with("tok_") && new_token != token);
        assert_eq!(veil.store().vault_len().await.unwrap(), 2);
        veil.delete_customer(&admin, twin.id).await.unwrap();
        assert_eq!(veil.store().vault_len().await.unwrap(), 1);
        assert!(veil
            .vault_value(&scope, &new_token)
            .await
            .unwrap()
            .is_none());
    }
);

both_backends!(
    a_pseudonymised_partner_round_trip_reidentifies_every_row_under_a_grant,
    |harness| {
        use crate::governance::partner::QuasiIdentifier;
        use std::io::Read;
        let veil = &harness.veil;
        let admin = harness.actor("root", Role::Admin, None).await;
        let dpo = harness.actor("dora", Role::Dpo, None).await;
        let sales = harness.actor("sam", Role::Sales, Some("east")).await;
        let mut ids = Vec::new();
        for n in 0..6 {
            let mut input = known_customer();
            input.phone = Some(format!("1391234{n:04}"));
            input.gender = Some("female".to_owned());
            ids.push(
                veil.create_customer(&admin, &input, true)
                    .await
                    .unwrap()
                    .id
                    .to_string(),
            );
        }
        veil.add_partner(&dpo, "acme").await.unwrap();
        veil.add_partner(&dpo, "globex").await.unwrap();
        assert!(matches!(
            veil.add_partner(&sales, "initech").await,
            Err(AppError::Forbidden(_))
        ));
        let identity = age::x25519::Identity::generate();
        let fields = [SensitiveField::Phone, SensitiveField::IdNumber];
        let quasi = [
            QuasiIdentifier::BirthYear,
            QuasiIdentifier::Gender,
            QuasiIdentifier::Province,
        ];
        let (dpo_ref, ids_ref, fields_ref, quasi_ref) = (&dpo, &ids, &fields, &quasi);
        let export = |partner: &'static str, k: usize| {
            let recipient = identity.to_public();
            async move {
                veil.pseudonymised_export(
                    dpo_ref, partner, ids_ref, fields_ref, quasi_ref, k, &recipient,
                )
                .await
            }
        };
        let decrypt = |file: &[u8]| {
            let decryptor = age::Decryptor::new(file).unwrap();
            let mut text = String::new();
            decryptor
                .decrypt(std::iter::once(&identity as &dyn age::Identity))
                .unwrap()
                .read_to_string(&mut text)
                .unwrap();
            text
        };
        // Six people share birth year, gender and province: k = 5 holds without generalising; k = 7 cannot.
        let (file, report) = export("acme", 5).await.unwrap();
        assert_eq!((report.rows, report.smallest_class), (6, 6));
        assert_eq!(report.generalisation, "none");
        match export("acme", 7).await {
            Err(AppError::Validation(errors)) => assert_eq!(errors[0].code, "k_anonymity"),
            other => panic!("expected a k-anonymity refusal, got {other:?}"),
        }
        let text = decrypt(&file);
        assert!(
            !text.contains(PHONE) && !text.contains(ID_NUMBER) && !text.contains("13912340001")
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "pseudonym,phone,id_number,birth_year,gender,province"
        );
        let first: Vec<&str> = lines[1].split(',').collect();
        assert!(first[0].starts_with("p_"));
        assert!(
            first[1].len() == 11 && first[1].starts_with("139"),
            "{}",
            first[1]
        );
        assert!(veil_pii::validate(veil_pii::PiiKind::CnId, first[2], crate::today()).is_ok());
        assert_eq!(&first[3..], ["1984", "female", "北京市"]);
        // Another partner's pseudonyms of the same customers share nothing with acme's.
        let (other, _) = export("globex", 5).await.unwrap();
        let other = decrypt(&other);
        for (mine, theirs) in text.lines().skip(1).zip(other.lines().skip(1)) {
            let mine: Vec<&str> = mine.split(',').collect();
            let theirs: Vec<&str> = theirs.split(',').collect();
            assert_ne!(mine[0], theirs[0]);
            assert_ne!(mine[1], theirs[1]);
        }
        // The partner enriches the file and sends it back; under a grant on five of the six, five map back.
        let mut returned = String::from("pseudonym,score\n");
        for (n, line) in text.lines().skip(1).enumerate() {
            returned.push_str(&format!("{},{n}\n", line.split(',').next().unwrap()));
        }
        returned.push_str("p_00000000000000000000000000000000,9\n");
        let covered: Vec<&String> = ids.iter().take(5).collect();
        harness
            .raw_sql(&format!(
                "INSERT INTO unmask_grant (id, request_id, user_id, customer_ids, fields, mode, purpose, \
                 created_at, expires_at, max_reveals, reveals_used) VALUES ('g1', 'r1', '{}', '{}', \
                 '[\"phone\"]', 'export', 'partner_exchange', 0, {}, NULL, 0)",
                dpo.user_id,
                serde_json::to_string(&covered).unwrap(),
                crate::now_ms() + 3_600_000
            ))
            .await
            .unwrap();
        assert!(matches!(
            veil.reidentify(&dpo, "acme", "nope", &returned).await,
            Err(AppError::GrantRequired)
        ));
        // A live grant of another mode does not cover re-identification.
        harness
            .raw_sql(&format!(
                "INSERT INTO unmask_grant (id, request_id, user_id, customer_ids, fields, mode, purpose, \
                 created_at, expires_at, max_reveals, reveals_used) VALUES ('g2', 'r2', '{}', '{}', \
                 '[\"phone\"]', 'policy_change', 'partner_exchange', 0, {}, NULL, 0)",
                dpo.user_id,
                serde_json::to_string(&covered).unwrap(),
                crate::now_ms() + 3_600_000
            ))
            .await
            .unwrap();
        assert!(matches!(
            veil.reidentify(&dpo, "acme", "g2", &returned).await,
            Err(AppError::GrantRequired)
        ));
        let (mapped, report) = veil
            .reidentify(&dpo, "acme", "g1", &returned)
            .await
            .unwrap();
        assert_eq!(
            (report.matched, report.unknown, report.outside_grant),
            (5, 1, 1)
        );
        let mapped: Vec<&str> = mapped.lines().collect();
        assert_eq!(mapped[0], "customer_id,score");
        for (n, line) in mapped.iter().skip(1).enumerate() {
            assert_eq!(*line, format!("{},{n}", ids[n]));
        }
        // globex's file does not map through acme, and a retired partner's pseudonyms link to no one.
        let (_, crossed) = veil.reidentify(&dpo, "acme", "g1", &other).await.unwrap();
        assert_eq!(crossed.matched, 0);
        veil.retire_partner(&dpo, "acme").await.unwrap();
        match veil.reidentify(&dpo, "acme", "g1", &returned).await {
            Err(AppError::Validation(errors)) => assert_eq!(errors[0].code, "unknown_partner"),
            other => panic!("expected unknown_partner, got {other:?}"),
        }
        assert_eq!(
            veil.partners()
                .await
                .unwrap()
                .get("acme")
                .map(String::as_str),
            Some("retired")
        );
    }
);

/// An active export request and its grant over `customers`, as the DPO's approval would leave them.
async fn approved_export(
    harness: &Harness,
    id: &str,
    requester: &str,
    customers: &[String],
    recipient: &str,
) {
    let now = crate::now_ms();
    let customers = serde_json::to_string(customers).unwrap();
    auth_security::execute(
        harness,
        &format!(
            "INSERT INTO unmask_request (id, requester_id, requester_role, requester_team, purpose, purpose_detail, \
             legal_basis, jurisdiction, consent_ids, customer_ids, fields, mode, duration_minutes, recipient, \
             recipient_name, policy_change, max_reveals, risk, checks, approvals_needed, state, created_at, \
             updated_at) VALUES ('{id}', '{requester}', 'dpo', NULL, 'audit', 'test', 'legal_obligation', 'CN', \
             '[]', '{customers}', '[\"phone\",\"name\",\"id_number\"]', 'export', 60, '{recipient}', 'test', NULL, \
             NULL, 'low', '[]', 1, 'active', {now}, {now})"
        ),
    )
    .await;
    auth_security::execute(
        harness,
        &format!(
            "INSERT INTO unmask_grant (id, request_id, user_id, customer_ids, fields, mode, purpose, created_at, \
             expires_at, max_reveals, reveals_used) VALUES ('grant-{id}', '{id}', '{requester}', '{customers}', \
             '[\"phone\",\"name\",\"id_number\"]', 'export', 'audit', {now}, {}, 1, 0)",
            now + 3_600_000
        ),
    )
    .await;
}

both_backends!(
    export_skips_the_erased_and_refuses_moved_ciphertext,
    |harness| {
        use auth_security::{attempt, code, enable_mfa, GOOD};
        let veil = &harness.veil;
        let admin = harness.actor("ada", Role::Admin, None).await;
        let dpo = harness.actor("dora", Role::Dpo, None).await;
        let mut ids = Vec::new();
        for (name, phone) in [
            ("导出甲", "13911110001"),
            ("导出乙", "13911110002"),
            ("导出丙", "13911110003"),
        ] {
            let created = veil
                .create_customer(&admin, &customer(name, phone), false)
                .await
                .unwrap();
            ids.push(created.id.to_string());
        }
        veil.delete_customer(&admin, ids[1].parse().unwrap())
            .await
            .unwrap();
        let (secret, _) = enable_mfa(veil, "dora").await;
        let session = attempt(veil, "dora", GOOD, Some(&code(&secret, 1)), None)
            .await
            .unwrap();
        let token = session.token.expose().to_owned();
        let requester = dpo.user_id.to_string();

        let identity = age::x25519::Identity::generate();
        let recipient = identity.to_public().to_string();
        approved_export(&harness, "export-one", &requester, &ids, &recipient).await;
        let delivery = veil
            .run_export(&dpo, Some(&token), "export-one")
            .await
            .unwrap();
        let manifest = &delivery.manifest.manifest;
        assert_eq!(manifest.rows, 2, "the erased customer is skipped");
        assert_eq!(manifest.counts.get("phone"), Some(&2));
        assert_eq!(manifest.counts.get("id_number"), None, "no value, no count");
        use base64::Engine;
        let file = base64::engine::general_purpose::STANDARD
            .decode(&delivery.file_base64)
            .unwrap();
        let mut csv = String::new();
        std::io::Read::read_to_string(
            &mut age::Decryptor::new(file.as_slice())
                .unwrap()
                .decrypt(std::iter::once(&identity as &dyn age::Identity))
                .unwrap(),
            &mut csv,
        )
        .unwrap();
        let mut expected = vec![
            "customer_id,phone,name,id_number".to_owned(),
            format!("{},13911110001,导出甲,", ids[0]),
            format!("{},13911110003,导出丙,", ids[2]),
        ];
        expected.sort();
        let mut lines: Vec<String> = csv.lines().map(str::to_owned).collect();
        lines.sort();
        assert_eq!(lines, expected);

        // Move one customer's phone ciphertext onto another: the export fails closed, after its audit entry.
        auth_security::execute(
            &harness,
            &format!(
                "UPDATE customer SET phone_ct = (SELECT phone_ct FROM customer WHERE id = '{}') WHERE id = '{}'",
                ids[0], ids[2]
            ),
        )
        .await;
        approved_export(&harness, "export-two", &requester, &ids, &recipient).await;
        let refused = veil.run_export(&dpo, Some(&token), "export-two").await;
        assert!(
            matches!(refused, Err(AppError::Integrity(_))),
            "{refused:?}"
        );
        let trail = veil
            .store()
            .query_audit(
                &veil_store::AuditFilter {
                    action: Some("customer.export".to_owned()),
                    ..Default::default()
                },
                10,
            )
            .await
            .unwrap();
        assert_eq!(
            trail.len(),
            2,
            "both exports were audited before decrypting"
        );
    }
);

/// The dashboard's industry counts for `actor`, sorted.
async fn counts(veil: &Veil, actor: &crate::users::Actor) -> Vec<(Option<String>, i64)> {
    let mut counts = veil.customer_industry_counts(actor).await.unwrap();
    counts.sort();
    counts
}

/// The industry counts the dashboard reads: a GROUP BY over every customer, written out the slow way.
async fn industry_counts_by_scan(harness: &Harness) -> Vec<(Option<String>, i64)> {
    let sql = "SELECT industry, COUNT(*) FROM customer GROUP BY industry";
    let mut counts: Vec<(Option<String>, i64)> = match harness.veil.store().pool() {
        veil_store::Pool::Sqlite(pool) => sqlx::query_as(sql).fetch_all(pool).await.unwrap(),
        veil_store::Pool::Postgres(pool) => sqlx::query_as(sql).fetch_all(pool).await.unwrap(),
    };
    counts.sort();
    counts
}

both_backends!(industry_counts_stay_exact_through_every_write, |harness| {
    let admin = harness.actor("boss", Role::Admin, None).await;
    let alice = harness.actor("alice", Role::Sales, Some("east")).await;
    let with_industry = |name: &str, phone: &str, industry: Option<&str>| CustomerInput {
        industry: industry.map(str::to_owned),
        ..customer(name, phone)
    };
    let mut ids = Vec::new();
    for (index, industry) in [
        Some("finance"),
        Some("finance"),
        Some("retail"),
        None,
        Some("education"),
    ]
    .into_iter()
    .enumerate()
    {
        let created = harness
            .veil
            .create_customer(
                &alice,
                &with_industry("甲", &format!("1381111000{index}"), industry),
                false,
            )
            .await
            .unwrap();
        ids.push(created.id);
    }
    let expected = |pairs: &[(Option<&str>, i64)]| {
        let mut pairs: Vec<(Option<String>, i64)> = pairs
            .iter()
            .map(|(industry, count)| (industry.map(str::to_owned), *count))
            .collect();
        pairs.sort();
        pairs
    };
    let after_create = expected(&[
        (None, 1),
        (Some("education"), 1),
        (Some("finance"), 2),
        (Some("retail"), 1),
    ]);
    assert_eq!(counts(&harness.veil, &admin).await, after_create);
    assert_eq!(industry_counts_by_scan(&harness).await, after_create);
    // The salesperson's own scope is still a GROUP BY over her rows, and agrees.
    assert_eq!(counts(&harness.veil, &alice).await, after_create);

    // An industry change moves one customer; a change of anything else moves nothing; clearing counts as none.
    let patch = |industry: Option<Option<&str>>| CustomerPatch {
        industry: industry.map(|inner| inner.map(str::to_owned)),
        ..CustomerPatch::default()
    };
    for (id, change) in [
        (ids[0], patch(Some(Some("retail")))),
        (
            ids[1],
            CustomerPatch {
                name: Some("乙".to_owned()),
                ..CustomerPatch::default()
            },
        ),
        (ids[4], patch(Some(None))),
        (ids[3], patch(Some(Some("hotel")))),
    ] {
        harness
            .veil
            .update_customer(&admin, id, &change, false)
            .await
            .unwrap();
    }
    let after_update = expected(&[
        (None, 1),
        (Some("finance"), 1),
        (Some("hotel"), 1),
        (Some("retail"), 2),
    ]);
    assert_eq!(counts(&harness.veil, &admin).await, after_update);
    assert_eq!(industry_counts_by_scan(&harness).await, after_update);

    // Erasure takes the customer out of the counts; the last of an industry removes its row.
    harness.veil.delete_customer(&admin, ids[1]).await.unwrap();
    harness.veil.delete_customer(&admin, ids[3]).await.unwrap();
    let after_erasure = expected(&[(None, 1), (Some("retail"), 2)]);
    assert_eq!(counts(&harness.veil, &admin).await, after_erasure);
    assert_eq!(industry_counts_by_scan(&harness).await, after_erasure);
    // A batch insert goes through the same triggers.
    harness
        .veil
        .create_customers_batch(
            &admin,
            &[
                with_industry("丙", "13822220001", Some("retail")),
                with_industry("丁", "13822220002", Some("hotel")),
            ],
        )
        .await
        .unwrap();
    let after_batch = expected(&[(None, 1), (Some("hotel"), 1), (Some("retail"), 3)]);
    assert_eq!(counts(&harness.veil, &admin).await, after_batch);
    assert_eq!(industry_counts_by_scan(&harness).await, after_batch);
});

both_backends!(reveals_per_day_counts_successful_reveals, |harness| {
    let dpo = harness.actor("dora", Role::Dpo, None).await;
    let sales = harness.actor("sam", Role::Sales, Some("east")).await;
    let reveal = |outcome| crate::audit::event(Some(&sales), "customer.reveal", outcome);
    harness
        .veil
        .record(&[
            reveal(crate::audit::Outcome::Ok),
            reveal(crate::audit::Outcome::Ok),
            reveal(crate::audit::Outcome::Denied),
            crate::audit::event(Some(&sales), "customer.read", crate::audit::Outcome::Ok),
        ])
        .await
        .unwrap();
    let days = harness.veil.reveals_per_day(&dpo, 14).await.unwrap();
    assert_eq!(days.len(), 14);
    assert_eq!(days.last().unwrap().0, chrono::Utc::now().date_naive());
    assert_eq!(days.iter().map(|(_, count)| count).sum::<i64>(), 2);
    assert_eq!(days.last().unwrap().1, 2);
    assert!(matches!(
        harness.veil.reveals_per_day(&sales, 14).await,
        Err(AppError::Forbidden(_))
    ));
});

both_backends!(admins_manage_accounts_and_only_admins, |harness| {
    let admin = harness.actor("boss", Role::Admin, None).await;
    let sales = harness.actor("sam", Role::Sales, None).await;
    let password = Password::new("correct horse battery staple".to_owned());
    harness.veil.add_team(&admin, "east", None).await.unwrap();

    // Only admins, and only known teams.
    assert!(matches!(
        harness
            .veil
            .add_user_as(&sales, "newbie", Role::Sales, None, &password)
            .await,
        Err(AppError::Forbidden(_))
    ));
    let unknown = harness
        .veil
        .add_user_as(&admin, "newbie", Role::Sales, Some("nowhere"), &password)
        .await;
    assert!(
        matches!(&unknown, Err(AppError::Validation(errors)) if errors[0].field == "team"),
        "{unknown:?}"
    );
    let added = harness
        .veil
        .add_user_as(&admin, "newbie", Role::Sales, Some("east"), &password)
        .await
        .unwrap();
    assert_eq!(added.team.as_deref(), Some("east"));

    // A role change applies to the next request of the user.
    let session = harness.veil.login("newbie", &password).await.unwrap();
    let changed = harness
        .veil
        .change_user_role(&admin, "newbie", Role::Manager, Some("east"))
        .await
        .unwrap();
    assert_eq!(changed.role, Role::Manager);
    let now = harness
        .veil
        .authenticate(session.token.expose())
        .await
        .unwrap();
    assert_eq!(now.role, Role::Manager);
    // Nobody changes their own role or disables themselves.
    for refused in [
        harness
            .veil
            .change_user_role(&admin, "boss", Role::Sales, None)
            .await
            .map(|_| ()),
        harness.veil.set_user_disabled(&admin, "boss", true).await,
    ] {
        assert!(
            matches!(&refused, Err(AppError::Validation(errors)) if errors[0].code == "own_account"),
            "{refused:?}"
        );
    }

    // Disabling ends the sessions and refuses sign-in; enabling lets the user sign in again.
    harness
        .veil
        .set_user_disabled(&admin, "newbie", true)
        .await
        .unwrap();
    assert!(harness
        .veil
        .authenticate(session.token.expose())
        .await
        .is_err());
    assert!(harness.veil.login("newbie", &password).await.is_err());
    harness
        .veil
        .set_user_disabled(&admin, "newbie", false)
        .await
        .unwrap();
    assert!(harness.veil.login("newbie", &password).await.is_ok());

    // The overview shows the second factor and lock-outs.
    let wrong = Password::new("not the password at all".to_owned());
    for _ in 0..5 {
        let _ = harness.veil.login("sam", &wrong).await;
    }
    let overview = harness.veil.user_overview(&admin).await.unwrap();
    let row = |name: &str| {
        overview
            .iter()
            .find(|row| row.user.username == name)
            .unwrap()
            .clone()
    };
    assert!(row("sam").locked_for_ms.is_some());
    assert!(row("newbie").locked_for_ms.is_none());
    assert!(!row("boss").mfa_enabled && row("boss").mfa_missing);
    assert!(!row("newbie").user.disabled);
    assert!(matches!(
        harness.veil.user_overview(&sales).await,
        Err(AppError::Forbidden(_))
    ));
    // Each change names the admin who made it.
    let trail = harness
        .veil
        .store()
        .query_audit(
            &veil_store::AuditFilter {
                action: Some("user.".to_owned()),
                ..Default::default()
            },
            50,
        )
        .await
        .unwrap();
    for action in [
        "user.add",
        "user.change_role",
        "user.disable",
        "user.enable",
    ] {
        assert!(
            trail.iter().any(|entry| entry.event.action == action
                && entry.event.actor_name.as_deref() == Some("boss")),
            "{action} by boss"
        );
    }
});

both_backends!(
    sensitive_custom_fields_are_sealed_under_the_customer_key,
    |harness| {
        let sally = harness.actor("sally", Role::Sales, Some("east")).await;
        let admin = harness.actor("ada", Role::Admin, None).await;
        let input = CustomerInput {
            name: Some("学员家长".to_owned()),
            industry: Some("education".to_owned()),
            custom_fields: Some(serde_json::json!({
                "student_name": "欧阳小明", "guardian_mobile": "13700001111", "grade": "junior_high"
            })),
            ..CustomerInput::default()
        };
        let view = harness
            .veil
            .create_customer(&sally, &input, false)
            .await
            .unwrap();
        assert_eq!(view.custom_fields["guardian_mobile"], "137****1111");
        assert_eq!(view.custom_fields["grade"], "junior_high");
        assert!(view.masked.contains(&"custom.student_name".to_owned()));
        let id = view.id.to_string();
        let row = harness
            .veil
            .store()
            .customer_row(&id)
            .await
            .unwrap()
            .unwrap();
        assert!(!row.profile.custom_fields.contains("13700001111"));
        assert!(!row
            .custom_sealed
            .as_deref()
            .unwrap()
            .contains("13700001111"));
        // The ciphertexts open with this customer's key under their own field name, and with no other key.
        let key_row = harness
            .veil
            .store()
            .customer_key(&id)
            .await
            .unwrap()
            .unwrap();
        let dek = harness.veil.unwrap_customer_key(&key_row).await.unwrap();
        let authority = RevealAuthority::for_tests();
        let keys = ["guardian_mobile".to_owned(), "student_name".to_owned()];
        let opened = crate::industries::open_custom(
            &authority,
            &dek,
            &id,
            row.dek_version,
            row.custom_sealed.as_deref(),
            &keys,
        )
        .unwrap();
        assert_eq!(opened["guardian_mobile"].as_str(), "13700001111");
        assert_eq!(opened["student_name"].as_str(), "欧阳小明");
        let stranger = veil_mask::SecretKey::generate();
        assert!(crate::industries::open_custom(
            &authority,
            &stranger,
            &id,
            row.dek_version,
            row.custom_sealed.as_deref(),
            &keys,
        )
        .is_err());
        // Moved to another customer, a ciphertext does not open (the AAD names the record).
        assert!(crate::industries::open_custom(
            &authority,
            &dek,
            &CustomerId::new().to_string(),
            row.dek_version,
            row.custom_sealed.as_deref(),
            &keys,
        )
        .is_err());
        // A change of industry drops the fields the new industry does not define (sealed ones included).
        let patch = CustomerPatch {
            industry: Some(Some("ecommerce".to_owned())),
            custom_fields: Some(serde_json::json!({"membership_channel": "jd"})),
            ..CustomerPatch::default()
        };
        let moved = harness
            .veil
            .update_customer(&sally, view.id, &patch, false)
            .await
            .unwrap();
        assert_eq!(
            moved.custom_fields,
            serde_json::json!({"membership_channel": "jd"})
        );
        let row = harness
            .veil
            .store()
            .customer_row(&id)
            .await
            .unwrap()
            .unwrap();
        assert!(row.custom_sealed.is_none());
        // Erasure takes the row and the key.
        harness.veil.delete_customer(&admin, view.id).await.unwrap();
        assert!(harness
            .veil
            .store()
            .customer_row(&id)
            .await
            .unwrap()
            .is_none());
        assert!(harness
            .veil
            .store()
            .customer_key(&id)
            .await
            .unwrap()
            .is_none());
    }
);
