//! Tests of the audit trail: what is recorded, that it never holds plaintext, that writes and their entries
//! commit together, that reveals fail closed, and that any edit, deletion, reordering or truncation is found.

use super::*;
use crate::customers::reveal::{reveal_fields, RevealAuthority, RevealContext};
use crate::customers::{CustomerInput, CustomerPatch, ExactSearch};
use crate::testing::Harness;
use crate::{both_backends, Role, SensitiveField};
use sha2::Digest;
use veil_store::sqlx;

const NAME: &str = "欧阳娜娜";
const PHONE: &str = "13912345678";
const ID_NUMBER: &str = "110101198402276151";
const EMAIL: &str = "nana.ouyang@example.com";

fn input() -> CustomerInput {
    CustomerInput {
        name: Some(NAME.to_owned()),
        phone: Some(PHONE.to_owned()),
        id_number: Some(ID_NUMBER.to_owned()),
        email: Some(EMAIL.to_owned()),
        ..CustomerInput::default()
    }
}

async fn entries(harness: &Harness) -> Vec<AuditEntry> {
    harness
        .veil
        .store()
        .audit_entries_after(0, 100_000)
        .await
        .unwrap()
}

/// Runs `sql` on the raw database, bypassing the application (what an attacker with file access does).
async fn raw(harness: &Harness, sql: &str) -> Result<(), sqlx::Error> {
    harness.raw_sql(sql).await
}

/// Drops the append-only triggers, as someone editing the database file directly could.
async fn drop_guards(harness: &Harness) {
    let sql = match harness.veil.store().backend() {
        veil_store::Backend::Sqlite => {
            "DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete; \
             DROP TRIGGER audit_head_forward_only;"
        }
        veil_store::Backend::Postgres => {
            "DROP TRIGGER audit_log_append_only ON audit_log; \
             DROP TRIGGER audit_head_forward_only ON audit_head;"
        }
    };
    raw(harness, sql).await.unwrap();
}

/// A chain of a few dozen real entries: users, customers, reads, a search, an update.
async fn populate(harness: &Harness) -> (Actor, String) {
    let veil = &harness.veil;
    let admin = harness.actor("root", Role::Admin, None).await;
    let created = veil.create_customer(&admin, &input(), false).await.unwrap();
    for _ in 0..5 {
        veil.get_customer(&admin, created.id).await.unwrap();
    }
    veil.list_customers(&admin, None, 10).await.unwrap();
    veil.search_customers(
        &admin,
        &ExactSearch {
            field: SensitiveField::Phone,
            value: PHONE.to_owned(),
        },
    )
    .await
    .unwrap();
    let patch = CustomerPatch {
        email: Some(Some("new.address@example.com".to_owned())),
        ..CustomerPatch::default()
    };
    veil.update_customer(&admin, created.id, &patch, false)
        .await
        .unwrap();
    (admin, created.id.to_string())
}

both_backends!(actions_are_recorded_without_plaintext, |harness| {
    let (admin, customer) = populate(&harness).await;
    let all = entries(&harness).await;
    let actions: Vec<&str> = all
        .iter()
        .map(|entry| entry.event.action.as_str())
        .collect();
    for wanted in [
        "user.add",
        "customer.create",
        "customer.read",
        "customer.list",
        "customer.search",
        "customer.update",
    ] {
        assert!(
            actions.contains(&wanted),
            "{wanted} not recorded: {actions:?}"
        );
    }
    let search = all
        .iter()
        .find(|entry| entry.event.action == "customer.search")
        .unwrap();
    assert_eq!(search.event.fields, vec!["phone".to_owned()]);
    assert_eq!(search.event.customer_ids, vec![customer.clone()]);
    assert_eq!(search.event.actor_id, Some(admin.user_id.to_string()));
    let update = all
        .iter()
        .find(|entry| entry.event.action == "customer.update")
        .unwrap();
    assert_eq!(update.event.fields, vec!["email".to_owned()]);
    // Sequence numbers run from 1 without gaps, and the head is the last entry.
    for (index, entry) in all.iter().enumerate() {
        assert_eq!(entry.seq, index as i64 + 1);
    }
    let (head, _) = harness.veil.store().audit_head().await.unwrap();
    assert_eq!(head, all.len() as i64);
    // No plaintext anywhere in the trail (including the value searched for and the replaced email).
    let text: String = all.iter().map(|entry| format!("{entry:?}")).collect();
    for needle in [NAME, PHONE, ID_NUMBER, EMAIL, "new.address@example.com"] {
        assert!(!text.contains(needle), "{needle} found in the audit trail");
    }
    // The subject report names the reads and the change, and who did them.
    let dpo = harness.actor("dpo", Role::Dpo, None).await;
    let report = harness
        .veil
        .subject_report(Some(&dpo), &customer)
        .await
        .unwrap();
    assert_eq!(report.accessed_by, vec!["root".to_owned()]);
    let reads = report
        .entries
        .iter()
        .filter(|entry| entry.action == "customer.read")
        .count();
    assert_eq!(reads, 5);
    assert!(report
        .entries
        .iter()
        .any(|entry| entry.action == "customer.update"));
    // Only the DPO produces it.
    assert!(matches!(
        harness.veil.subject_report(Some(&admin), &customer).await,
        Err(AppError::Forbidden(_))
    ));
});

both_backends!(clean_chain_verifies_with_checkpoints, |harness| {
    populate(&harness).await;
    let first = harness.veil.audit_checkpoint().await.unwrap().unwrap();
    // Nothing new: no second checkpoint of the same head.
    assert!(harness.veil.audit_checkpoint().await.unwrap().is_none());
    populate_more(&harness).await;
    harness.veil.audit_checkpoint().await.unwrap().unwrap();
    let report = harness.veil.verify_audit_chain().await.unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.checkpoints_checked, 2);
    assert!(report.last_checkpoint_seq.unwrap() > first.seq);
    assert_eq!(
        report.entries_checked as i64,
        harness.veil.store().count_audit_entries().await.unwrap()
    );
});

async fn populate_more(harness: &Harness) {
    let admin = harness.veil.actor_by_username("root").await.unwrap();
    harness.veil.list_customers(&admin, None, 5).await.unwrap();
}

both_backends!(the_database_refuses_changes_to_the_trail, |harness| {
    populate(&harness).await;
    assert!(raw(
        &harness,
        "UPDATE audit_log SET outcome = 'denied' WHERE seq = 2"
    )
    .await
    .is_err());
    assert!(raw(&harness, "DELETE FROM audit_log WHERE seq = 2")
        .await
        .is_err());
    assert!(raw(&harness, "DELETE FROM audit_subject").await.is_err());
    assert!(raw(&harness, "UPDATE audit_head SET seq = 1")
        .await
        .is_err());
    if harness.veil.store().backend() == veil_store::Backend::Postgres {
        assert!(raw(&harness, "TRUNCATE audit_log").await.is_err());
    }
    assert!(harness.veil.verify_audit_chain().await.unwrap().ok);
});

both_backends!(an_edited_entry_is_found, |harness| {
    populate(&harness).await;
    harness.veil.audit_checkpoint().await.unwrap();
    drop_guards(&harness).await;
    raw(
        &harness,
        "UPDATE audit_log SET actor_name = 'someone-else' WHERE seq = 4",
    )
    .await
    .unwrap();
    let report = harness.veil.verify_audit_chain().await.unwrap();
    assert!(!report.ok);
    assert_eq!(report.first_bad_seq, Some(4), "{report:?}");
    assert!(report.problem.unwrap().contains("altered"));
});

both_backends!(a_deleted_entry_is_found, |harness| {
    populate(&harness).await;
    drop_guards(&harness).await;
    raw(&harness, "DELETE FROM audit_log WHERE seq = 3")
        .await
        .unwrap();
    let report = harness.veil.verify_audit_chain().await.unwrap();
    assert!(!report.ok);
    assert_eq!(report.first_bad_seq, Some(3), "{report:?}");
});

both_backends!(reordered_entries_are_found, |harness| {
    populate(&harness).await;
    drop_guards(&harness).await;
    // Swap entries 5 and 6 wholesale (contents and hashes), keeping the sequence numbers in place.
    raw(
        &harness,
        "UPDATE audit_log SET seq = -5 WHERE seq = 5; UPDATE audit_log SET seq = 5 WHERE seq = 6; \
         UPDATE audit_log SET seq = 6 WHERE seq = -5;",
    )
    .await
    .unwrap();
    let report = harness.veil.verify_audit_chain().await.unwrap();
    assert!(!report.ok);
    assert_eq!(report.first_bad_seq, Some(5), "{report:?}");
});

both_backends!(truncation_is_found_by_the_checkpoint, |harness| {
    populate(&harness).await;
    let checkpoint = harness.veil.audit_checkpoint().await.unwrap().unwrap();
    drop_guards(&harness).await;
    // Remove the last three entries and wind the head back so the chain itself looks consistent.
    let keep = checkpoint.seq - 3;
    raw(
        &harness,
        &format!(
            "DELETE FROM audit_log WHERE seq > {keep}; \
             UPDATE audit_head SET seq = {keep}, hash = (SELECT hash FROM audit_log WHERE seq = {keep})"
        ),
    )
    .await
    .unwrap();
    let report = harness.veil.verify_audit_chain().await.unwrap();
    assert!(!report.ok);
    assert_eq!(report.first_bad_seq, Some(keep + 1), "{report:?}");
    assert!(report.problem.unwrap().contains("truncated"));
});

both_backends!(a_forged_checkpoint_is_found, |harness| {
    populate(&harness).await;
    // A checkpoint signed by another key (an attacker's) does not verify against the server's key.
    let forger = SigningKey::from_bytes(&[7; 32]);
    let (seq, head_hash) = harness.veil.store().audit_head().await.unwrap();
    let signature = forger.sign(&checkpoint_message(seq, &head_hash));
    harness
        .veil
        .store()
        .insert_audit_checkpoint(&CheckpointRow {
            seq,
            head_hash,
            at: now_ms(),
            public_key: forger.verifying_key().as_bytes().to_vec(),
            signature: signature.to_bytes().to_vec(),
        })
        .await
        .unwrap();
    let report = harness.veil.verify_audit_chain().await.unwrap();
    assert!(!report.ok);
    assert!(report.problem.unwrap().contains("signature"));
});

both_backends!(a_write_and_its_entry_commit_together, |harness| {
    let admin = harness.actor("root", Role::Admin, None).await;
    let before = harness.veil.count_customers().await.unwrap();
    // Sabotage the audit table: every insert fails.
    let sabotage = match harness.veil.store().backend() {
        veil_store::Backend::Sqlite => {
            "CREATE TRIGGER audit_sabotage BEFORE INSERT ON audit_log \
             BEGIN SELECT RAISE(ABORT, 'disk full'); END;"
        }
        veil_store::Backend::Postgres => {
            "CREATE FUNCTION audit_sabotage() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'disk full'; END; $$; \
             CREATE TRIGGER audit_sabotage BEFORE INSERT ON audit_log \
             FOR EACH ROW EXECUTE FUNCTION audit_sabotage();"
        }
    };
    raw(&harness, sabotage).await.unwrap();
    assert!(harness
        .veil
        .create_customer(&admin, &input(), false)
        .await
        .is_err());
    assert_eq!(harness.veil.count_customers().await.unwrap(), before);
    // Reads fail closed too: no page is returned without its audit entry.
    assert!(matches!(
        harness.veil.list_customers(&admin, None, 10).await,
        Err(AppError::AuditUnavailable)
    ));
});

both_backends!(
    a_reveal_whose_audit_write_fails_reveals_nothing,
    |harness| {
        let admin = harness.actor("root", Role::Admin, None).await;
        let created = harness
            .veil
            .create_customer(&admin, &input(), false)
            .await
            .unwrap();
        let id = created.id.to_string();
        let authority = RevealAuthority::for_tests();
        let context = RevealContext {
            grant_id: Some("grant-1".to_owned()),
            purpose: Some("customer_service".to_owned()),
        };
        // With a working trail the reveal returns the value and is recorded first.
        let revealed = reveal_fields(
            &harness.veil,
            &authority,
            &admin,
            &id,
            &[SensitiveField::Phone],
            &context,
        )
        .await
        .unwrap();
        assert_eq!(revealed[&SensitiveField::Phone].as_str(), PHONE);
        let last = entries(&harness).await.pop().unwrap();
        assert_eq!(last.event.action, "customer.reveal");
        assert_eq!(last.event.fields, vec!["phone".to_owned()]);
        assert_eq!(last.event.grant_id.as_deref(), Some("grant-1"));
        // With a failing trail it returns an error and no plaintext.
        let sabotage = match harness.veil.store().backend() {
            veil_store::Backend::Sqlite => {
                "CREATE TRIGGER audit_sabotage BEFORE INSERT ON audit_log \
             BEGIN SELECT RAISE(ABORT, 'disk full'); END;"
            }
            veil_store::Backend::Postgres => {
                "CREATE FUNCTION audit_sabotage() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'disk full'; END; $$; \
             CREATE TRIGGER audit_sabotage BEFORE INSERT ON audit_log \
             FOR EACH ROW EXECUTE FUNCTION audit_sabotage();"
            }
        };
        raw(&harness, sabotage).await.unwrap();
        let result = reveal_fields(
            &harness.veil,
            &authority,
            &admin,
            &id,
            &[SensitiveField::Phone],
            &context,
        )
        .await;
        match result {
            Err(error) => {
                assert!(matches!(error, AppError::AuditUnavailable));
                assert!(!format!("{error:?}").contains(PHONE));
            }
            Ok(_) => panic!("a reveal succeeded without its audit entry"),
        }
    }
);

both_backends!(exports_verify_offline_and_tampering_is_found, |harness| {
    populate(&harness).await;
    harness.veil.audit_checkpoint().await.unwrap().unwrap();
    populate_more(&harness).await;
    let key = harness
        .veil
        .audit_signing_key()
        .await
        .unwrap()
        .verifying_key();
    let mut jsonl = Vec::new();
    let written = harness
        .veil
        .export_audit(None, None, ExportFormat::Jsonl, &mut jsonl)
        .await
        .unwrap();
    assert!(written > 10);
    let report = verify_export(jsonl.as_slice(), Some(&key)).unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.entries_checked, written);
    assert_eq!(report.checkpoints_checked, 1);
    // Another key does not vouch for the checkpoint.
    let stranger = SigningKey::from_bytes(&[9; 32]).verifying_key();
    assert!(!verify_export(jsonl.as_slice(), Some(&stranger)).unwrap().ok);
    // An edited line is found and named.
    let text = String::from_utf8(jsonl.clone()).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let mut record: ExportLine = serde_json::from_str(&lines[2]).unwrap();
    if let ExportLine::Entry(entry) = &mut record {
        entry.outcome = "denied".to_owned();
    }
    lines[2] = serde_json::to_string(&record).unwrap();
    let report = verify_export(lines.join("\n").as_bytes(), Some(&key)).unwrap();
    assert!(!report.ok);
    assert_eq!(report.first_bad_seq, Some(3));
    // A dropped line is found.
    let mut dropped: Vec<String> = text.lines().map(str::to_owned).collect();
    dropped.remove(4);
    let report = verify_export(dropped.join("\n").as_bytes(), Some(&key)).unwrap();
    assert_eq!(report.first_bad_seq, Some(5));
    // CSV carries the same entries.
    let mut csv = Vec::new();
    let rows = harness
        .veil
        .export_audit(None, None, ExportFormat::Csv, &mut csv)
        .await
        .unwrap();
    assert_eq!(rows, written);
    assert_eq!(
        String::from_utf8(csv).unwrap().lines().count() as u64,
        written + 1
    );
});

both_backends!(denials_and_failed_logins_are_recorded, |harness| {
    let sales = harness.actor("sam", Role::Sales, None).await;
    let admin = harness.actor("root", Role::Admin, None).await;
    let created = harness
        .veil
        .create_customer(&admin, &input(), false)
        .await
        .unwrap();
    // Outside sam's scope: 404, recorded as denied.
    assert!(matches!(
        harness.veil.get_customer(&sales, created.id).await,
        Err(AppError::NotFound)
    ));
    // Not sam's role: 403, recorded as denied.
    assert!(harness.veil.audit_checkpoints(&sales).await.is_err());
    let _ = harness
        .veil
        .login(
            "sam",
            &crate::users::Password::new("wrong password".to_owned()),
        )
        .await;
    let _ = harness
        .veil
        .login(
            "nobody-hunter2",
            &crate::users::Password::new("x".to_owned()),
        )
        .await;
    let all = entries(&harness).await;
    let denied: Vec<&AuditEntry> = all
        .iter()
        .filter(|entry| entry.event.outcome == "denied")
        .collect();
    assert!(denied
        .iter()
        .any(|entry| entry.event.action == "customer.read"
            && entry.event.customer_ids == vec![created.id.to_string()]));
    assert!(denied
        .iter()
        .any(|entry| entry.event.action == "audit.verify"));
    let failed: Vec<&AuditEntry> = all
        .iter()
        .filter(|entry| entry.event.action == "auth.login" && entry.event.outcome == "failed")
        .collect();
    assert_eq!(failed.len(), 2);
    assert_eq!(failed[0].event.actor_name.as_deref(), Some("sam"));
    // An unknown name is kept only as a fingerprint (it may be a mistyped password).
    let unknown = failed[1].event.actor_name.as_deref().unwrap();
    assert!(unknown.starts_with("unknown:"), "{unknown}");
    assert!(!format!("{all:?}").contains("nobody-hunter2"));
    assert!(harness.veil.verify_audit_chain().await.unwrap().ok);
});

#[test]
fn hex_round_trips() {
    let bytes = [0u8, 1, 0xab, 0xff];
    assert_eq!(hex(&bytes), "0001abff");
    assert_eq!(unhex("0001abff"), Some(bytes.to_vec()));
    assert_eq!(unhex("0g"), None);
    assert_eq!(unhex("abc"), None);
}

#[test]
fn csv_cells_are_quoted_and_formula_guarded() {
    assert_eq!(csv_field("a,b"), "\"a,b\"");
    assert_eq!(csv_field("=cmd()"), "'=cmd()");
    assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
}

both_backends!(
    retention_prunes_only_the_expired_prefix_and_stays_verifiable,
    |harness| {
        let veil = &harness.veil;
        let day = 24 * 60 * 60 * 1000_i64;
        let now = now_ms();
        let old = |days: i64, action: &str| {
            let mut entry = event(None, action, Outcome::Ok);
            entry.at = now - days * day;
            entry
        };
        // Ten reads four years old, a risk assessment two and a half years old (kept five years), ten more old
        // reads, then today's traffic.
        let mut history: Vec<AuditEvent> = (0..10).map(|_| old(1500, "customer.read")).collect();
        history.push(old(900, "risk.assess"));
        history.extend((0..10).map(|_| old(1400, "customer.read")));
        veil.store().append_audit(&history).await.unwrap();
        populate(&harness).await;
        veil.audit_checkpoint().await.unwrap();
        let before = veil.store().count_audit_entries().await.unwrap();

        // Retention below the legal minimum is refused.
        assert!(matches!(
            veil.set_audit_retention(None, Some(400)).await,
            Err(AppError::Validation(_))
        ));
        let dry = veil.prune_audit(&mut Vec::new(), true).await.unwrap();
        assert_eq!(
            (dry.entries, dry.upto_seq),
            (10, Some(10)),
            "stops before the risk assessment"
        );

        let mut archive = Vec::new();
        let report = veil.prune_audit(&mut archive, false).await.unwrap();
        assert_eq!(report.entries, 10);
        assert_eq!(report.upto_seq, Some(10));
        assert_eq!(
            report.archive_sha256.as_deref(),
            Some(hex(&Sha256::digest(&archive)).as_str())
        );
        // The archive holds exactly the pruned entries and verifies offline.
        let key = veil.audit_signing_key().await.unwrap().verifying_key();
        let offline = verify_export(archive.as_slice(), Some(&key)).unwrap();
        assert!(offline.ok, "{offline:?}");
        assert_eq!((offline.first_seq, offline.last_seq), (Some(1), Some(10)));
        // The rest still verifies, from the signed anchor.
        assert_eq!(
            veil.store().count_audit_entries().await.unwrap(),
            before - 10 + 1,
            "ten removed, the prune recorded"
        );
        let chain = veil.verify_audit_chain().await.unwrap();
        assert!(chain.ok, "{chain:?}");
        assert_eq!(chain.pruned_through, Some(10));
        assert_eq!(chain.first_seq, Some(11));
        // Nothing newer than the anchor can be deleted, even now that deleting is possible at all.
        assert!(raw(&harness, "DELETE FROM audit_log WHERE seq = 11")
            .await
            .is_err());
        // A second prune has nothing to do.
        assert_eq!(
            veil.prune_audit(&mut Vec::new(), false)
                .await
                .unwrap()
                .entries,
            0
        );
        // Forging an anchor (someone deleting more and inserting a prune row) is found.
        drop_guards(&harness).await;
        raw(&harness, "DELETE FROM audit_log WHERE seq <= 12")
            .await
            .unwrap();
        let hash_sql = match veil.store().backend() {
            veil_store::Backend::Sqlite => {
                "INSERT INTO audit_prune VALUES (12, (SELECT hash FROM audit_head), 'x', 0)"
            }
            veil_store::Backend::Postgres => {
                "INSERT INTO audit_prune VALUES (12, (SELECT hash FROM audit_head), 'x', 0)"
            }
        };
        raw(&harness, hash_sql).await.unwrap();
        let forged = veil.verify_audit_chain().await.unwrap();
        assert!(!forged.ok);
        assert_eq!(forged.first_bad_seq, Some(12), "{forged:?}");
    }
);
