//! The bulk write path (imports, generated datasets), run on SQLite and
//! (with CAREFRONT_TEST_POSTGRES) on PostgreSQL: what it writes must be
//! indistinguishable from the one-by-one path.

use carefront_domain::directory::Organization;
use carefront_domain::patient::{Identifier, Patient};
use carefront_domain::patient_search::index_keys;
use carefront_store::testing::fresh_database;
use carefront_store::{Db, Filter, Page, StoreError, format_mrn, new_id};
use carefront_synth::PatientGenerator;

async fn org(db: &Db) -> String {
    let org_id = new_id();
    let mut tx = db.begin(&org_id).await.unwrap();
    let org = Organization {
        name: "Bulk Clinic".into(),
        phone: None,
        address: None,
        active: true,
    };
    tx.create(&org_id, &org, "test").await.unwrap();
    tx.commit().await.unwrap();
    org_id
}

async fn count(db: &Db, org_id: &str, filters: &[Filter]) -> i64 {
    db.search::<Patient>(
        org_id,
        filters,
        Page {
            offset: 0,
            count: 0,
        },
    )
    .await
    .unwrap()
    .1
}

#[tokio::test]
async fn bulk_creates_match_single_creates_and_share_the_mrn_sequence() {
    let (db, _) = fresh_database().await.unwrap();
    let org_id = org(&db).await;
    let generator = PatientGenerator::new(11);
    // One the ordinary way first: the bulk block follows its MRN.
    let mut tx = db.begin(&org_id).await.unwrap();
    let single = tx
        .create_patient(&new_id(), generator.patient(0), "desk")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(single.value.mrn, format_mrn(1));

    // More rows than fit in one statement, and a remainder of odd size.
    let rows: Vec<(String, Patient)> = generator.iter(1..338).map(|p| (new_id(), p)).collect();
    let mut tx = db.begin(&org_id).await.unwrap();
    let stored = tx.create_patients(rows, "import").await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(stored.len(), 337);
    assert_eq!(stored[0].1.mrn, format_mrn(2));
    assert_eq!(stored[336].1.mrn, format_mrn(338));
    assert_eq!(count(&db, &org_id, &[]).await, 338);

    for (id, patient) in [&stored[0], &stored[170], &stored[336]] {
        let read = db.get::<Patient>(&org_id, id).await.unwrap();
        assert_eq!(read.version, 1);
        assert_eq!(&read.value, patient);
        let history = db.history::<Patient>(&org_id, id).await.unwrap();
        assert_eq!(history.len(), 1);
        assert_eq!(history[0].changed_by, "import");
        assert_eq!(&history[0].value, patient);
        // Every search key finds it, as after a single create.
        for key in index_keys(patient) {
            let ids = db
                .ids_by_keys::<Patient>(&org_id, std::slice::from_ref(&key), 10_000)
                .await
                .unwrap();
            assert!(ids.contains(id), "{key} does not find {id}");
        }
    }
    // The next single registration continues after the block.
    let mut tx = db.begin(&org_id).await.unwrap();
    let after = tx
        .create_patient(&new_id(), generator.patient(400), "desk")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(after.value.mrn, format_mrn(339));
}

#[tokio::test]
async fn bulk_updates_change_keys_by_difference_and_refuse_stale_versions() {
    let (db, _) = fresh_database().await.unwrap();
    let org_id = org(&db).await;
    let rows: Vec<(String, Patient)> = PatientGenerator::new(12)
        .iter(0..150)
        .map(|p| (new_id(), p))
        .collect();
    let mut tx = db.begin(&org_id).await.unwrap();
    let stored = tx.create_patients(rows, "import").await.unwrap();
    tx.commit().await.unwrap();

    let ids: Vec<String> = stored.iter().map(|(id, _)| id.clone()).collect();
    let mut tx = db.begin(&org_id).await.unwrap();
    let current = tx.get_many::<Patient>(&ids).await.unwrap();
    assert_eq!(current.len(), 150);
    let changes: Vec<_> = current
        .iter()
        .map(|c| {
            let mut p = c.value.clone();
            p.family = format!("Renamed{}", &c.value.mrn[5..]);
            p.identifiers.push(Identifier {
                system: "urn:legacy".into(),
                value: c.value.mrn.clone(),
            });
            (c.clone(), p)
        })
        .collect();
    let updated = tx.update_many(changes, "import").await.unwrap();
    tx.commit().await.unwrap();
    assert!(updated.iter().all(|u| u.version == 2));

    let one = &current[42];
    let read = db.get::<Patient>(&org_id, &one.id).await.unwrap();
    assert_eq!(read.version, 2);
    assert!(read.value.family.starts_with("Renamed"));
    assert_eq!(
        db.history::<Patient>(&org_id, &one.id).await.unwrap().len(),
        2
    );
    let by_identifier = Filter::HasKey(format!("i:urn:legacy|{}", one.value.mrn));
    assert_eq!(count(&db, &org_id, &[by_identifier]).await, 1);
    // The old family name no longer finds it; the new one does.
    let old_family = format!("n:{}", one.value.family.to_lowercase());
    let still = db
        .ids_by_keys::<Patient>(&org_id, &[old_family], 10_000)
        .await
        .unwrap();
    assert!(!still.contains(&one.id));
    for key in index_keys(&read.value) {
        let ids = db
            .ids_by_keys::<Patient>(&org_id, std::slice::from_ref(&key), 10_000)
            .await
            .unwrap();
        assert!(ids.contains(&one.id), "{key}");
    }
    // Keys in both versions stay once.
    let dob = format!("d:{}", read.value.birth_date);
    let ids = db
        .ids_by_keys::<Patient>(&org_id, &[dob], 10_000)
        .await
        .unwrap();
    assert_eq!(ids.iter().filter(|i| **i == one.id).count(), 1);

    // Updating from version 1 again: refused, nothing written.
    let mut tx = db.begin(&org_id).await.unwrap();
    let stale = vec![(one.clone(), one.value.clone())];
    let err = tx.update_many(stale, "import").await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    drop(tx);
    assert_eq!(
        db.get::<Patient>(&org_id, &one.id).await.unwrap().version,
        2
    );
}

#[tokio::test]
async fn a_colliding_row_fails_the_whole_bulk_create() {
    let (db, _) = fresh_database().await.unwrap();
    let org_id = org(&db).await;
    let generator = PatientGenerator::new(13);
    let mut taken = generator.patient(0);
    taken.mrn = format_mrn(7);
    let mut tx = db.begin(&org_id).await.unwrap();
    tx.create_patient(&new_id(), taken, "desk").await.unwrap();
    tx.commit().await.unwrap();

    let mut rows: Vec<(String, Patient)> = generator.iter(1..40).map(|p| (new_id(), p)).collect();
    rows[20].1.mrn = format_mrn(7);
    let mut tx = db.begin(&org_id).await.unwrap();
    let err = tx.create_patients(rows, "import").await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    drop(tx);
    assert_eq!(count(&db, &org_id, &[]).await, 1);
}

#[tokio::test]
async fn counters_hand_out_blocks_that_never_overlap() {
    let (db, _) = fresh_database().await.unwrap();
    let org_id = org(&db).await;
    let mut tx = db.begin(&org_id).await.unwrap();
    assert_eq!(tx.reserve_counter("mrn", 5).await.unwrap(), 1);
    assert_eq!(tx.next_counter("mrn").await.unwrap(), 6);
    assert_eq!(tx.reserve_counter("mrn", 1000).await.unwrap(), 7);
    assert_eq!(tx.next_counter("mrn").await.unwrap(), 1007);
    assert!(tx.reserve_counter("mrn", 0).await.is_err());
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn keys_built_by_older_rules_are_rebuilt_once_across_servers() {
    let (db, url) = fresh_database().await.unwrap();
    let org_id = org(&db).await;
    let generator = PatientGenerator::new(12);
    let rows: Vec<(String, Patient)> = generator.iter(0..150).map(|p| (new_id(), p)).collect();
    let mut tx = db.begin(&org_id).await.unwrap();
    let stored = tx.create_patients(rows, "import").await.unwrap();
    tx.commit().await.unwrap();
    assert!(!db.keys_are_stale::<Patient>().await.unwrap());

    // As a database left by an older build: other keys, an older version.
    let probe = &stored[7];
    db.execute_unchecked("DELETE FROM search_keys WHERE key LIKE 'fg:%'")
        .await
        .unwrap();
    db.execute_unchecked("UPDATE search_key_versions SET version = 1")
        .await
        .unwrap();
    assert!(db.keys_are_stale::<Patient>().await.unwrap());
    let pair = index_keys(&probe.1)
        .into_iter()
        .find(|k| k.starts_with("fg:"))
        .expect("the patient has a pair key");
    let finds = |db: Db| {
        let (org_id, pair) = (org_id.clone(), pair.clone());
        async move {
            db.ids_by_keys::<Patient>(&org_id, &[pair], 10_000)
                .await
                .unwrap()
        }
    };
    assert!(!finds(db.clone()).await.contains(&probe.0));

    // Two servers start together: one rebuilds, the other finds it done.
    let other = Db::connect(&url).await.unwrap();
    let mut seen = Vec::new();
    let (a, b) = tokio::join!(
        db.rebuild_stale_keys(|done, total| seen.push((done, total))),
        other.rebuild_stale_keys(|_, _| {})
    );
    let mut rebuilt = [a.unwrap(), b.unwrap()];
    rebuilt.sort();
    assert_eq!(rebuilt, [0, 150]);
    assert!(!db.keys_are_stale::<Patient>().await.unwrap());
    assert!(finds(db.clone()).await.contains(&probe.0));
    if !seen.is_empty() {
        assert_eq!(seen.last(), Some(&(150, 150)));
    }
    // Every key of every patient is back, once.
    for (id, patient) in &stored {
        for key in index_keys(patient) {
            let ids = db
                .ids_by_keys::<Patient>(&org_id, std::slice::from_ref(&key), 10_000)
                .await
                .unwrap();
            assert!(ids.contains(id), "{key} does not find {id}");
        }
    }
    assert_eq!(db.rebuild_stale_keys(|_, _| {}).await.unwrap(), 0);
}
