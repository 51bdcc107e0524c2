//! Storage behaviour, run on SQLite and (with CAREFRONT_TEST_POSTGRES) on
//! PostgreSQL.

use carefront_domain::Role;
use carefront_domain::audit::{Action, AuditEntry, Outcome};
use carefront_domain::directory::{Address, Location, Organization, Practitioner};
use carefront_store::testing::fresh_database;
use carefront_store::{AuditFilter, AuditWriter, Db, Filter, NewUser, Page, StoreError, new_id};

async fn org(db: &Db, name: &str) -> String {
    let org_id = new_id();
    let mut tx = db.begin(&org_id).await.unwrap();
    let org = Organization {
        name: name.into(),
        phone: None,
        address: None,
        active: true,
    };
    tx.create(&org_id, &org, "test").await.unwrap();
    tx.commit().await.unwrap();
    org_id
}

fn location(name: &str) -> Location {
    Location {
        name: name.into(),
        timezone: "America/New_York".into(),
        address: Address {
            line1: "10 Elm St".into(),
            line2: None,
            city: "Albany".into(),
            state: "NY".into(),
            postal_code: "12207".into(),
            country: "US".into(),
        },
        phone: None,
        active: true,
    }
}

fn practitioner(npi: &str) -> Practitioner {
    Practitioner {
        npi: Some(npi.into()),
        prefix: None,
        given: "Ana".into(),
        family: "Reyes".into(),
        suffix: Some("MD".into()),
        gender: None,
        phone: None,
        email: None,
        active: true,
    }
}

#[tokio::test]
async fn migrations_are_idempotent() {
    let (db, _) = fresh_database().await.unwrap();
    db.migrate().await.unwrap();
    db.ping().await.unwrap();
}

#[tokio::test]
async fn versioned_records_keep_history_and_refuse_stale_updates() {
    let (db, _) = fresh_database().await.unwrap();
    let org_id = org(&db, "Clinic").await;
    let id = new_id();
    let mut tx = db.begin(&org_id).await.unwrap();
    let v1 = tx.create(&id, &location("North"), "alice").await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(v1.version, 1);

    let mut tx = db.begin(&org_id).await.unwrap();
    let v2 = tx
        .update(&id, &location("North Campus"), Some(1), "bob")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(v2.version, 2);

    let mut tx = db.begin(&org_id).await.unwrap();
    let stale = tx.update(&id, &location("Stale"), Some(1), "carol").await;
    assert!(matches!(
        stale,
        Err(StoreError::VersionConflict { current: 2 })
    ));
    drop(tx);
    assert_eq!(
        db.get::<Location>(&org_id, &id).await.unwrap().value.name,
        "North Campus"
    );

    let history = db.history::<Location>(&org_id, &id).await.unwrap();
    let names: Vec<_> = history
        .iter()
        .map(|h| (h.version, h.value.name.as_str(), h.changed_by.as_str()))
        .collect();
    assert_eq!(
        names,
        vec![(2, "North Campus", "bob"), (1, "North", "alice")]
    );

    let mut tx = db.begin(&org_id).await.unwrap();
    assert_eq!(tx.delete::<Location>(&id, "dave").await.unwrap(), 3);
    tx.commit().await.unwrap();
    assert!(matches!(
        db.get::<Location>(&org_id, &id).await,
        Err(StoreError::Gone)
    ));
    assert!(db.history::<Location>(&org_id, &id).await.unwrap()[0].deleted);
}

#[tokio::test]
async fn records_are_invisible_to_other_organizations() {
    let (db, _) = fresh_database().await.unwrap();
    let a = org(&db, "A").await;
    let b = org(&db, "B").await;
    let id = new_id();
    let mut tx = db.begin(&a).await.unwrap();
    tx.create(&id, &location("Only A"), "t").await.unwrap();
    tx.commit().await.unwrap();
    assert!(matches!(
        db.get::<Location>(&b, &id).await,
        Err(StoreError::NotFound)
    ));
    let (found, total) = db
        .search::<Location>(
            &b,
            &[],
            Page {
                offset: 0,
                count: 10,
            },
        )
        .await
        .unwrap();
    assert!(found.is_empty());
    assert_eq!(total, 0);
}

#[tokio::test]
async fn search_filters_by_prefix_case_insensitively_and_pages() {
    let (db, _) = fresh_database().await.unwrap();
    let org_id = org(&db, "Clinic").await;
    let mut tx = db.begin(&org_id).await.unwrap();
    for name in ["Northgate", "north Hills", "Southside", "100%_Care"] {
        tx.create(&new_id(), &location(name), "t").await.unwrap();
    }
    tx.commit().await.unwrap();
    let filter = [Filter::Prefix(&["name"], "NORTH".into())];
    let (first, total) = db
        .search::<Location>(
            &org_id,
            &filter,
            Page {
                offset: 0,
                count: 1,
            },
        )
        .await
        .unwrap();
    assert_eq!(total, 2);
    assert_eq!(first.len(), 1);
    let (second, _) = db
        .search::<Location>(
            &org_id,
            &filter,
            Page {
                offset: 1,
                count: 1,
            },
        )
        .await
        .unwrap();
    assert_ne!(first[0].id, second[0].id);
    // LIKE wildcards in the input are literal.
    let (pct, total) = db
        .search::<Location>(
            &org_id,
            &[Filter::Prefix(&["name"], "100%_".into())],
            Page {
                offset: 0,
                count: 5,
            },
        )
        .await
        .unwrap();
    assert_eq!((pct.len(), total), (1, 1));
}

#[tokio::test]
async fn database_enforces_unique_usernames_and_npis() {
    let (db, _) = fresh_database().await.unwrap();
    let org_id = org(&db, "Clinic").await;
    let user = NewUser {
        username: "maria".into(),
        display_name: "Maria".into(),
        role: Role::FrontDesk,
        password_hash: "x".into(),
    };
    let mut tx = db.begin(&org_id).await.unwrap();
    tx.create_user(&new_id(), &user).await.unwrap();
    tx.commit().await.unwrap();
    let mut tx = db.begin(&org_id).await.unwrap();
    let again = tx.create_user(&new_id(), &user).await;
    assert!(matches!(again, Err(StoreError::Conflict(m)) if m.contains("maria")));
    drop(tx);
    assert_eq!(db.users(&org_id).await.unwrap().len(), 1);

    let mut tx = db.begin(&org_id).await.unwrap();
    tx.create(&new_id(), &practitioner("1234567893"), "t")
        .await
        .unwrap();
    let dup = tx.create(&new_id(), &practitioner("1234567893"), "t").await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))));
}

#[tokio::test]
async fn audit_chain_verifies_and_names_an_edited_event() {
    let (db, _) = fresh_database().await.unwrap();
    let org_id = org(&db, "Clinic").await;
    for i in 0..10 {
        db.audit(
            &org_id,
            AuditEntry::new("alice", Action::Read, Outcome::Success)
                .resource("Patient", Some(&format!("p{i}")))
                .patient(&format!("p{i}")),
        )
        .await
        .unwrap();
    }
    let stats = db
        .verify_audit_chain(&org_id, |_| {})
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stats.verified, 10);

    // Someone with database access rewrites who looked at a record.
    db.execute_unchecked(&format!(
        "UPDATE audit_events SET actor_name = 'mallory' WHERE org_id = '{org_id}' AND seq = 4"
    ))
    .await
    .unwrap();
    let brk = db
        .verify_audit_chain(&org_id, |_| {})
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(brk.seq, 4);
}

#[tokio::test]
async fn deleting_the_newest_audit_event_is_detected() {
    let (db, _) = fresh_database().await.unwrap();
    let org_id = org(&db, "Clinic").await;
    for _ in 0..3 {
        db.audit(
            &org_id,
            AuditEntry::new("a", Action::SignIn, Outcome::Success),
        )
        .await
        .unwrap();
    }
    db.execute_unchecked(&format!(
        "DELETE FROM audit_events WHERE org_id = '{org_id}' AND seq = 3"
    ))
    .await
    .unwrap();
    let brk = db
        .verify_audit_chain(&org_id, |_| {})
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(brk.seq, 3);
}

#[tokio::test]
async fn concurrent_audit_appends_form_one_unbroken_chain() {
    let (db, url) = fresh_database().await.unwrap();
    let org_id = org(&db, "Clinic").await;
    // A second connection pool stands in for a second server process.
    let other = Db::connect(&url).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..40 {
        let db = if i % 2 == 0 {
            db.clone()
        } else {
            other.clone()
        };
        let org_id = org_id.clone();
        tasks.push(tokio::spawn(async move {
            db.audit(
                &org_id,
                AuditEntry::new(format!("u{i}"), Action::Read, Outcome::Success),
            )
            .await
            .unwrap()
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let stats = db
        .verify_audit_chain(&org_id, |_| {})
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stats.verified, 40);
}

/// On SQLite, what commits add to the WAL reaches the database file by the
/// checkpointer's hand, well before the writer would checkpoint itself
/// (its threshold is 10,000 frames; these commits write a few hundred).
#[tokio::test]
async fn commits_reach_the_sqlite_file_without_the_writer_checkpointing() {
    let (db, url) = fresh_database().await.unwrap();
    let Some(path) = url.strip_prefix("sqlite://") else {
        return; // PostgreSQL checkpoints by itself.
    };
    let file_len = || std::fs::metadata(path).unwrap().len();
    let org_id = org(&db, "North").await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let before = file_len();
    for batch in 0..20 {
        let mut tx = db.begin(&org_id).await.unwrap();
        let entries = (0..50)
            .map(|i| {
                AuditEntry::new("desk".to_string(), Action::Read, Outcome::Success)
                    .resource("Patient", Some(&format!("{batch}-{i}")))
                    .detail("x".repeat(1_000))
            })
            .collect();
        tx.audit_many(entries).await.unwrap();
        tx.commit().await.unwrap();
    }
    // A megabyte of events: in the file once checkpointed, not before.
    let mut waited = 0;
    while file_len() < before + 1_000_000 {
        assert!(
            waited < 100,
            "the WAL was not checkpointed: {} bytes",
            file_len()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        waited += 1;
    }
    let (events, total) = db
        .audit_events(&org_id, &AuditFilter::default(), 0, 1)
        .await
        .unwrap();
    assert_eq!((events.len(), total), (1, 1_000));
    db.close().await;
}

#[tokio::test]
async fn group_committed_audits_land_whole_and_in_order_per_caller() {
    let (db, url) = fresh_database().await.unwrap();
    let clinics = [org(&db, "North").await, org(&db, "South").await];
    // Two writers stand in for two server processes on one database.
    let writers = [
        AuditWriter::start(db.clone()),
        AuditWriter::start(Db::connect(&url).await.unwrap()),
    ];
    let mut callers = Vec::new();
    for i in 0..60 {
        let writer = writers[i % 2].clone();
        let org_id = clinics[i % 3 % 2].clone();
        callers.push(tokio::spawn(async move {
            let entries = (0..3)
                .map(|k| {
                    AuditEntry::new(format!("caller{i}"), Action::Read, Outcome::Success)
                        .resource("Patient", Some(&k.to_string()))
                })
                .collect();
            writer.append(&org_id, entries).await.unwrap();
        }));
    }
    for c in callers {
        c.await.unwrap();
    }
    writers[0].append(&clinics[0], Vec::new()).await.unwrap();
    let mut total = 0;
    for org_id in &clinics {
        let verified = db
            .verify_audit_chain(org_id, |_| {})
            .await
            .unwrap()
            .unwrap()
            .verified;
        total += verified;
        let (mut events, _) = db
            .audit_events(org_id, &AuditFilter::default(), 0, 1_000)
            .await
            .unwrap();
        events.sort_by_key(|e| e.seq);
        // Each caller's three events are consecutive and in the order given.
        for three in events.chunks(3) {
            let caller = &three[0].entry.actor_name;
            let order: Vec<_> = three
                .iter()
                .map(|e| (&e.entry.actor_name, e.entry.resource_id.as_deref()))
                .collect();
            assert_eq!(
                order,
                [
                    (caller, Some("0")),
                    (caller, Some("1")),
                    (caller, Some("2"))
                ]
            );
        }
    }
    assert_eq!(total, 180);
}

#[tokio::test]
async fn mrns_are_sequential_per_organization() {
    let (db, _) = fresh_database().await.unwrap();
    let a = org(&db, "A").await;
    let b = org(&db, "B").await;
    let patient = carefront_synth::PatientGenerator::new(3).patient(0);
    let mut mrns = Vec::new();
    for org_id in [&a, &a, &b] {
        let mut tx = db.begin(org_id).await.unwrap();
        mrns.push(
            tx.create_patient(&new_id(), patient.clone(), "t")
                .await
                .unwrap()
                .value
                .mrn,
        );
        tx.commit().await.unwrap();
    }
    assert_eq!(mrns, vec!["00000001", "00000002", "00000001"]);
    let stored = db
        .search::<carefront_domain::patient::Patient>(
            &a,
            &[],
            Page {
                offset: 0,
                count: 10,
            },
        )
        .await
        .unwrap()
        .0;
    assert_eq!(stored[0].value.birth_date, patient.birth_date);
    assert_eq!(stored[0].value.phones, patient.phones);
}

#[tokio::test]
async fn every_single_address_reads_back_as_it_was_saved() {
    use carefront_domain::patient::{AddressType, AddressUse, Patient, PatientAddress};
    let (db, _) = fresh_database().await.unwrap();
    let org_id = org(&db, "A").await;
    let base = carefront_synth::PatientGenerator::new(5).patient(0);
    let street = Address {
        line1: "77 Birch Rd".into(),
        line2: Some("Apt 2".into()),
        city: "Reno".into(),
        state: "NV".into(),
        postal_code: "89501".into(),
        country: "US".into(),
    };
    let mut postal = PatientAddress::home(street.clone());
    postal.type_ = Some(AddressType::Postal);
    let mut moved_in = PatientAddress::home(street.clone());
    moved_in.start = Some(jiff::civil::date(2021, 3, 1));
    let cases = [
        vec![],
        vec![PatientAddress::home(street.clone())],
        vec![postal],
        vec![moved_in],
        vec![PatientAddress::new(AddressUse::Work, street.clone())],
        vec![PatientAddress::new(AddressUse::Old, street)],
    ];
    let mut tx = db.begin(&org_id).await.unwrap();
    let mut ids = Vec::new();
    for addresses in &cases {
        let patient = Patient {
            addresses: addresses.clone(),
            ..base.clone()
        };
        let id = new_id();
        tx.create_patient(&id, patient, "t").await.unwrap();
        ids.push(id);
    }
    let bulk: Vec<(String, Patient)> = cases
        .iter()
        .map(|addresses| {
            let patient = Patient {
                addresses: addresses.clone(),
                ..base.clone()
            };
            (new_id(), patient)
        })
        .collect();
    ids.extend(bulk.iter().map(|(id, _)| id.clone()));
    tx.create_patients(bulk, "import").await.unwrap();
    tx.commit().await.unwrap();
    for (id, addresses) in ids.iter().zip(cases.iter().chain(cases.iter())) {
        let stored = db.get::<Patient>(&org_id, id).await.unwrap();
        assert_eq!(&stored.value.addresses, addresses);
    }
}

#[tokio::test]
async fn several_addresses_are_kept_and_rows_from_before_read_as_the_home_address() {
    use carefront_domain::patient::{AddressType, AddressUse, Patient, PatientAddress};
    let (db, url) = fresh_database().await.unwrap();
    let org_id = org(&db, "A").await;
    let street = |line1: &str, zip: &str| Address {
        line1: line1.into(),
        line2: None,
        city: "Austin".into(),
        state: "TX".into(),
        postal_code: zip.into(),
        country: "US".into(),
    };
    let mut patient = carefront_synth::PatientGenerator::new(3).patient(0);
    let mut mailing = PatientAddress::home(street("PO Box 12", "78767"));
    mailing.type_ = Some(AddressType::Postal);
    let mut old = PatientAddress::new(AddressUse::Old, street("9 Elm St", "78702"));
    old.end = Some(jiff::civil::date(2024, 5, 31));
    patient.addresses = vec![
        PatientAddress::home(street("418 Juniper Ln", "78704")),
        mailing,
        old,
    ];
    let id = new_id();
    let mut tx = db.begin(&org_id).await.unwrap();
    tx.create_patient(&id, patient.clone(), "t").await.unwrap();
    tx.commit().await.unwrap();
    let stored = db.get::<Patient>(&org_id, &id).await.unwrap();
    assert_eq!(stored.value.addresses, patient.addresses);
    // Each address is a household key for duplicate detection.
    for key in ["ad:78704:418 juniper ln", "ad:78702:9 elm st"] {
        let found = db
            .ids_with_keys::<Patient>(&org_id, &[key.to_string()])
            .await
            .unwrap();
        assert_eq!(found.len(), 1, "{key}");
    }

    // A row and a history entry as they were written before patients had
    // several addresses: the one address, in the address columns and as
    // `address` in the history's JSON, is the home address.
    let raw = sqlx::AnyPool::connect(&url).await.unwrap();
    sqlx::query("UPDATE patients SET addresses_json = NULL WHERE org_id = $1 AND id = $2")
        .bind(&org_id)
        .bind(&id)
        .execute(&raw)
        .await
        .unwrap();
    let mut legacy = serde_json::to_value(&patient).unwrap();
    let one = legacy["addresses"][0]["address"].clone();
    legacy.as_object_mut().unwrap().remove("addresses");
    legacy["address"] = one;
    sqlx::query("UPDATE record_history SET data = $1 WHERE org_id = $2 AND record_id = $3")
        .bind(legacy.to_string())
        .bind(&org_id)
        .bind(&id)
        .execute(&raw)
        .await
        .unwrap();
    raw.close().await;
    let home_only = vec![patient.addresses[0].clone()];
    assert_eq!(
        db.get::<Patient>(&org_id, &id)
            .await
            .unwrap()
            .value
            .addresses,
        home_only
    );
    let history = db.history::<Patient>(&org_id, &id).await.unwrap();
    assert_eq!(history[0].value.addresses, home_only);
    // Saving it again writes the list.
    let mut tx = db.begin(&org_id).await.unwrap();
    let mut edited = stored.value.clone();
    edited.addresses.truncate(2);
    tx.update(&id, &edited, Some(stored.version), "t")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        db.get::<Patient>(&org_id, &id)
            .await
            .unwrap()
            .value
            .addresses,
        edited.addresses
    );
}

#[tokio::test]
async fn patients_are_found_however_the_desk_types_and_keys_follow_edits() {
    use carefront_domain::patient::Patient;
    use carefront_domain::patient_search::parse;
    let (db, _) = fresh_database().await.unwrap();
    let org_id = org(&db, "Clinic").await;
    let generator = carefront_synth::PatientGenerator::new(11);
    let mut tx = db.begin(&org_id).await.unwrap();
    let mut stored = Vec::new();
    for p in generator.iter(0..60) {
        stored.push(tx.create_patient(&new_id(), p, "t").await.unwrap());
    }
    tx.commit().await.unwrap();
    let today = jiff::civil::date(2026, 11, 23);
    let target = stored
        .iter()
        .find(|p| !p.value.phones.is_empty())
        .unwrap()
        .clone();
    let p = &target.value;
    let digits: String = p.phones[0]
        .number
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    let phone_typed = format!("({}) {}-{}", &digits[1..4], &digits[4..7], &digits[7..]);
    let given_prefix: String = carefront_domain::text::fold(&p.given)
        .chars()
        .take(2)
        .collect();
    let queries = [
        format!("{}, {}", p.family, p.given),
        format!("{} {}", given_prefix, p.family),
        format!("{} {}", p.family, p.birth_date.strftime("%m/%d/%Y")),
        phone_typed,
        p.mrn.trim_start_matches('0').to_string(),
    ];
    for typed in &queries {
        let hits = db
            .search_patients(&org_id, &parse(typed, today), 25)
            .await
            .unwrap();
        assert!(
            hits.hits.iter().any(|(h, _)| h.id == target.id),
            "'{typed}' did not find {}",
            p.display_name()
        );
    }

    // Renaming moves the keys: the old name no longer finds the patient.
    let mut renamed = p.clone();
    renamed.family = "Zyzzyva".into();
    let mut tx = db.begin(&org_id).await.unwrap();
    tx.update(&target.id, &renamed, Some(1), "t").await.unwrap();
    tx.commit().await.unwrap();
    let by_new = db
        .search_patients(&org_id, &parse("zyzzyva", today), 25)
        .await
        .unwrap();
    assert_eq!(by_new.hits.len(), 1);
    let old = format!("{}, {}", p.family, p.given);
    let by_old = db
        .search_patients(&org_id, &parse(&old, today), 25)
        .await
        .unwrap();
    assert!(by_old.hits.iter().all(|(h, _)| h.id != target.id));

    let mut tx = db.begin(&org_id).await.unwrap();
    tx.delete::<Patient>(&target.id, "t").await.unwrap();
    tx.commit().await.unwrap();
    assert!(
        db.search_patients(&org_id, &parse("zyzzyva", today), 25)
            .await
            .unwrap()
            .hits
            .is_empty()
    );
}

#[tokio::test]
async fn a_misspelled_registration_finds_the_existing_patient_as_a_candidate() {
    use carefront_domain::matching::{MatchGrade, MatchRecord, Thresholds};
    use carefront_domain::patient::Patient;
    let (db, _) = fresh_database().await.unwrap();
    let org_id = org(&db, "Clinic").await;
    let mut tx = db.begin(&org_id).await.unwrap();
    let mut ids = Vec::new();
    for p in carefront_synth::PatientGenerator::new(5).iter(0..80) {
        ids.push(tx.create_patient(&new_id(), p, "t").await.unwrap().id);
    }
    tx.commit().await.unwrap();
    let existing = db.get::<Patient>(&org_id, &ids[7]).await.unwrap();
    let mut typo = existing.value.clone();
    typo.family.push('e');
    let found = db
        .match_candidates(&org_id, &MatchRecord::from(&typo), &Thresholds::DEFAULT)
        .await
        .unwrap();
    assert_eq!(found[0].0.id, existing.id);
    assert!(matches!(
        found[0].1.grade,
        MatchGrade::Certain | MatchGrade::Probable
    ));

    let by_key = db
        .search::<Patient>(
            &org_id,
            &[Filter::HasKey(format!("m:{}", existing.value.mrn))],
            Page {
                offset: 0,
                count: 5,
            },
        )
        .await
        .unwrap();
    assert_eq!(by_key.1, 1);
    assert_eq!(by_key.0[0].id, existing.id);
}

#[tokio::test]
async fn batched_audit_appends_continue_the_chain() {
    let (db, _) = fresh_database().await.unwrap();
    let org_id = org(&db, "Clinic").await;
    db.audit(
        &org_id,
        AuditEntry::new("a", Action::SignIn, Outcome::Success),
    )
    .await
    .unwrap();
    let mut tx = db.begin(&org_id).await.unwrap();
    let batch: Vec<AuditEntry> = (0..450)
        .map(|i| AuditEntry::new("a", Action::Search, Outcome::Success).patient(&format!("p{i}")))
        .collect();
    let events = tx.audit_many(batch).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(events.first().unwrap().seq, 2);
    assert_eq!(events.last().unwrap().seq, 451);
    db.audit(
        &org_id,
        AuditEntry::new("a", Action::SignOut, Outcome::Success),
    )
    .await
    .unwrap();
    let stats = db
        .verify_audit_chain(&org_id, |_| {})
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stats.verified, 452);
}

#[tokio::test]
async fn settings_default_until_set_and_belong_to_one_organization() {
    use carefront_domain::patient::RegistrationRules;
    let (db, _) = fresh_database().await.unwrap();
    let a = org(&db, "A").await;
    let b = org(&db, "B").await;
    assert_eq!(
        db.setting::<RegistrationRules>(&a).await.unwrap(),
        RegistrationRules::default()
    );
    let strict = RegistrationRules {
        require_email: true,
        phone_region: "CA".into(),
        ..RegistrationRules::default()
    };
    for _ in 0..2 {
        let mut tx = db.begin(&a).await.unwrap();
        tx.set_setting(&strict, "admin").await.unwrap();
        tx.commit().await.unwrap();
    }
    assert_eq!(db.setting::<RegistrationRules>(&a).await.unwrap(), strict);
    assert_eq!(
        db.setting::<RegistrationRules>(&b).await.unwrap(),
        RegistrationRules::default()
    );
}

/// A setting counting its own changes: each change reads it and adds one.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct ChangeCount {
    changes: i64,
}

impl carefront_store::Setting for ChangeCount {
    const NAME: &'static str = "test_change_count";
}

#[tokio::test]
async fn two_servers_changing_one_setting_take_turns() {
    let (db, url) = fresh_database().await.unwrap();
    let org_id = org(&db, "Settings Clinic").await;
    let other = Db::connect(&url).await.unwrap();
    let change = |db: Db, org_id: String| async move {
        for _ in 0..10 {
            let mut tx = db.begin(&org_id).await.unwrap();
            let mut count: ChangeCount = tx.setting_for_update().await.unwrap();
            // Give the other server every chance to read the same value.
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            count.changes += 1;
            tx.set_setting(&count, "test").await.unwrap();
            tx.commit().await.unwrap();
        }
    };
    tokio::join!(
        change(db.clone(), org_id.clone()),
        change(other, org_id.clone())
    );
    let count: ChangeCount = db.setting(&org_id).await.unwrap();
    assert_eq!(count.changes, 20, "no change was lost");
}
