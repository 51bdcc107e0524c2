//! Patient merges and their undoing, run on SQLite and (with
//! CAREFRONT_TEST_POSTGRES) on PostgreSQL.

use carefront_domain::coverage::{Coverage, CoverageOrder, SubscriberRelationship};
use carefront_domain::directory::{Address, Organization};
use carefront_domain::mpi::MRN_SYSTEM;
use carefront_domain::patient::{AddressUse, Identifier, Patient, PatientAddress, PatientContact};
use carefront_domain::patient_search::parse;
use carefront_store::testing::fresh_database;
use carefront_store::{Db, StoreError, new_id};

async fn org(db: &Db) -> String {
    let org_id = new_id();
    let mut tx = db.begin(&org_id).await.unwrap();
    let org = Organization {
        name: "Clinic".into(),
        phone: None,
        address: None,
        active: true,
    };
    tx.create(&org_id, &org, "test").await.unwrap();
    tx.seed_payers("test").await.unwrap();
    tx.commit().await.unwrap();
    org_id
}

fn contact(name: &str, guarantor: bool) -> PatientContact {
    PatientContact {
        name: name.into(),
        relationship: "SPS".into(),
        phone: None,
        emergency: true,
        guarantor,
    }
}

/// Two records of one person (the second registered again, with a
/// contact, an alert, an external identifier and a work address of its
/// own).
async fn two_records(db: &Db, org_id: &str) -> (String, String) {
    let mut survivor = carefront_synth::PatientGenerator::new(9).patient(0);
    survivor.contacts = vec![contact("Dana Smith", true)];
    survivor.alerts = vec!["Hard of hearing".into()];
    survivor.identifiers = vec![];
    survivor.addresses = vec![PatientAddress::home(Address {
        line1: "418 Juniper Ln".into(),
        line2: None,
        city: "Austin".into(),
        state: "TX".into(),
        postal_code: "78704".into(),
        country: "US".into(),
    })];
    let mut duplicate = survivor.clone();
    duplicate.contacts = vec![contact("dana smith", false), contact("Lee Park", true)];
    duplicate.alerts = vec!["Needs wheelchair".into()];
    duplicate.identifiers = vec![Identifier {
        system: "urn:example:old-system".into(),
        value: "A-77".into(),
    }];
    let mut work = duplicate.addresses[0].address.clone();
    work.line1 = "1 Congress Ave".into();
    duplicate
        .addresses
        .push(PatientAddress::new(AddressUse::Work, work));
    let mut tx = db.begin(org_id).await.unwrap();
    let s = tx.create_patient(&new_id(), survivor, "t").await.unwrap();
    let d = tx.create_patient(&new_id(), duplicate, "t").await.unwrap();
    tx.commit().await.unwrap();
    (s.id, d.id)
}

async fn coverage(db: &Db, org_id: &str, patient_id: &str, order: CoverageOrder) -> String {
    let payer = db.payers(org_id).await.unwrap()[0].id.clone();
    let c = Coverage {
        patient_id: patient_id.into(),
        payer_ref: payer,
        plan_name: None,
        member_id: format!("M{}", order.rank()),
        group_number: None,
        relationship: SubscriberRelationship::Itself,
        subscriber: None,
        order,
        start: None,
        end: None,
        active: true,
    };
    let id = new_id();
    let mut tx = db.begin(org_id).await.unwrap();
    tx.create(&id, &c, "t").await.unwrap();
    tx.commit().await.unwrap();
    id
}

async fn get(db: &Db, org_id: &str, id: &str) -> Patient {
    db.get::<Patient>(org_id, id).await.unwrap().value
}

#[tokio::test]
async fn a_merge_moves_everything_to_the_survivor_and_undo_restores_exactly() {
    let (db, _) = fresh_database().await.unwrap();
    let org_id = org(&db).await;
    let (s_id, d_id) = two_records(&db, &org_id).await;
    let s_before = db.get::<Patient>(&org_id, &s_id).await.unwrap();
    let d_before = db.get::<Patient>(&org_id, &d_id).await.unwrap();
    // Both have a primary coverage (the same card, registered twice); the
    // duplicate also has a secondary one.
    let s_primary = coverage(&db, &org_id, &s_id, CoverageOrder::Primary).await;
    let d_primary = coverage(&db, &org_id, &d_id, CoverageOrder::Primary).await;
    let d_secondary = coverage(&db, &org_id, &d_id, CoverageOrder::Secondary).await;

    let merge_id = new_id();
    let mut tx = db.begin(&org_id).await.unwrap();
    let merge = tx
        .merge_patients(
            &merge_id,
            &s_id,
            Some(s_before.version),
            &d_id,
            Some(d_before.version),
            "lead",
            Some("same person, registered twice"),
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(merge.snapshot.moved.len(), 2);

    let s = get(&db, &org_id, &s_id).await;
    let d = get(&db, &org_id, &d_id).await;
    assert_eq!(d.replaced_by.as_deref(), Some(s_id.as_str()));
    // The duplicate's MRN, typed in the search box, now finds the survivor.
    let typed = carefront_domain::patient_search::parse(&d.mrn, jiff::civil::date(2026, 11, 23));
    let hits = db.search_patients(&org_id, &typed, 10).await.unwrap().hits;
    assert_eq!(
        hits.iter().map(|(h, _)| h.id.as_str()).collect::<Vec<_>>(),
        [s_id.as_str()]
    );
    assert!(!d.active);
    assert_eq!(
        s.contacts
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        ["Dana Smith", "Lee Park"],
        "contacts appended without the one already there"
    );
    assert_eq!(
        s.contacts.iter().filter(|c| c.guarantor).count(),
        1,
        "one guarantor"
    );
    assert_eq!(s.alerts, ["Hard of hearing", "Needs wheelchair"]);
    assert!(s.identifiers.contains(&Identifier {
        system: MRN_SYSTEM.into(),
        value: d_before.value.mrn.clone()
    }));
    assert!(s.identifiers.iter().any(|i| i.value == "A-77"));
    // The survivor's home address stays; the duplicate's other address is
    // kept as an old one.
    assert_eq!(s.home_address(), s_before.value.home_address());
    assert_eq!(
        s.addresses
            .iter()
            .map(|a| (a.use_, a.address.line1.as_str()))
            .skip(1)
            .collect::<Vec<_>>(),
        [(AddressUse::Old, "1 Congress Ave")]
    );

    // Coverages follow; the second primary arrives inactive.
    let covs = db.coverages_of(&org_id, &s_id).await.unwrap();
    assert_eq!(covs.len(), 3);
    assert!(db.coverages_of(&org_id, &d_id).await.unwrap().is_empty());
    let moved_primary = covs.iter().find(|c| c.id == d_primary).unwrap();
    assert!(!moved_primary.value.active);
    assert!(
        covs.iter()
            .find(|c| c.id == s_primary)
            .unwrap()
            .value
            .active
    );
    assert!(
        covs.iter()
            .find(|c| c.id == d_secondary)
            .unwrap()
            .value
            .active
    );

    // Searches no longer show the duplicate.
    let today = jiff::civil::date(2026, 6, 1);
    let hits = db
        .search_patients(&org_id, &parse(&s.family, today), 50)
        .await
        .unwrap();
    assert!(hits.hits.iter().any(|(p, _)| p.id == s_id));
    assert!(!hits.hits.iter().any(|(p, _)| p.id == d_id));

    // History keeps every version, with who merged.
    let history = db.history::<Patient>(&org_id, &d_id).await.unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].changed_by, "lead");

    let listed = db.patient_merges(&org_id, &s_id).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        listed[0].reason.as_deref(),
        Some("same person, registered twice")
    );
    assert_eq!(db.patient_merges(&org_id, &d_id).await.unwrap().len(), 1);

    // Undo: both records as they were, coverages back where they were.
    let mut tx = db.begin(&org_id).await.unwrap();
    let undone = tx.unmerge_patients(&merge_id, "lead2").await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(undone.undone_by.as_deref(), Some("lead2"));
    assert_eq!(get(&db, &org_id, &s_id).await, s_before.value);
    assert_eq!(get(&db, &org_id, &d_id).await, d_before.value);
    let d_covs = db.coverages_of(&org_id, &d_id).await.unwrap();
    assert_eq!(d_covs.len(), 2);
    assert!(d_covs.iter().all(|c| c.value.active));
    assert_eq!(db.coverages_of(&org_id, &s_id).await.unwrap().len(), 1);
    assert!(
        db.patient_merge(&org_id, &merge_id)
            .await
            .unwrap()
            .undone_at_us
            .is_some()
    );

    // Undoing twice is refused and changes nothing.
    let mut tx = db.begin(&org_id).await.unwrap();
    let again = tx.unmerge_patients(&merge_id, "lead2").await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    drop(tx);
    assert_eq!(get(&db, &org_id, &s_id).await, s_before.value);

    // After an undo the pair can be merged again.
    let mut tx = db.begin(&org_id).await.unwrap();
    tx.merge_patients(&new_id(), &s_id, None, &d_id, None, "lead", None)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn merges_that_cannot_be_right_are_refused_and_change_nothing() {
    let (db, _) = fresh_database().await.unwrap();
    let org_id = org(&db).await;
    let (a, b) = two_records(&db, &org_id).await;
    let (c, _) = two_records(&db, &org_id).await;
    let a_before = get(&db, &org_id, &a).await;

    // With itself.
    let mut tx = db.begin(&org_id).await.unwrap();
    let r = tx
        .merge_patients(&new_id(), &a, None, &a, None, "lead", None)
        .await;
    assert!(matches!(r, Err(StoreError::Invalid(_))), "{r:?}");
    drop(tx);

    // A record changed since the lead compared them.
    let mut tx = db.begin(&org_id).await.unwrap();
    let r = tx
        .merge_patients(&new_id(), &a, Some(7), &b, None, "lead", None)
        .await;
    assert!(
        matches!(r, Err(StoreError::VersionConflict { current: 1 })),
        "{r:?}"
    );
    drop(tx);
    assert_eq!(get(&db, &org_id, &a).await, a_before);

    // Merge b into a; then b cannot be merged again, nothing can be merged
    // into b, and a merge into a of c works.
    let first = new_id();
    let mut tx = db.begin(&org_id).await.unwrap();
    tx.merge_patients(&first, &a, None, &b, None, "lead", None)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    for (survivor, duplicate) in [(&c, &b), (&b, &c)] {
        let mut tx = db.begin(&org_id).await.unwrap();
        let r = tx
            .merge_patients(&new_id(), survivor, None, duplicate, None, "lead", None)
            .await;
        assert!(matches!(r, Err(StoreError::Conflict(_))), "{r:?}");
    }

    // a merged into c: the b→a merge cannot be undone before a→c is.
    let second = new_id();
    let mut tx = db.begin(&org_id).await.unwrap();
    tx.merge_patients(&second, &c, None, &a, None, "lead", None)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let mut tx = db.begin(&org_id).await.unwrap();
    let r = tx.unmerge_patients(&first, "lead").await;
    assert!(
        matches!(&r, Err(StoreError::Conflict(m)) if m.contains("undo that merge first")),
        "{r:?}"
    );
    drop(tx);
    assert!(db.patient_merge(&org_id, &first).await.unwrap().is_active());
    let mut tx = db.begin(&org_id).await.unwrap();
    tx.unmerge_patients(&second, "lead").await.unwrap();
    tx.unmerge_patients(&first, "lead").await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(get(&db, &org_id, &a).await, a_before);

    // Unknown merges.
    let mut tx = db.begin(&org_id).await.unwrap();
    assert!(matches!(
        tx.unmerge_patients("no-such-merge", "lead").await,
        Err(StoreError::NotFound)
    ));
}

#[tokio::test]
async fn the_database_allows_one_active_merge_per_duplicate() {
    let (db, _) = fresh_database().await.unwrap();
    let org_id = org(&db).await;
    let (a, b) = two_records(&db, &org_id).await;
    let (c, _) = two_records(&db, &org_id).await;
    let mut tx = db.begin(&org_id).await.unwrap();
    tx.merge_patients(&new_id(), &a, None, &b, None, "lead", None)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    // A second active merge of b, written behind the store's back.
    let r = db
        .execute_unchecked(&format!(
            "INSERT INTO patient_merges (org_id, id, survivor_id, duplicate_id, merged_at_us, \
             merged_by, snapshot_json) VALUES ('{org_id}', 'x', '{c}', '{b}', 1, 'x', '{{}}')"
        ))
        .await;
    assert!(r.is_err(), "a second active merge of one duplicate");
}

#[tokio::test]
async fn two_leads_merging_the_same_duplicate_at_once_make_one_merge() {
    let (db, _) = fresh_database().await.unwrap();
    let org_id = org(&db).await;
    let (a, b) = two_records(&db, &org_id).await;
    let (c, _) = two_records(&db, &org_id).await;
    let tasks: Vec<_> = [a.clone(), c.clone()]
        .into_iter()
        .map(|survivor| {
            let (db, org_id, b) = (db.clone(), org_id.clone(), b.clone());
            tokio::spawn(async move {
                let mut tx = db.begin(&org_id).await?;
                tx.merge_patients(&new_id(), &survivor, None, &b, Some(1), "lead", None)
                    .await?;
                tx.commit().await
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        if t.await.unwrap().is_ok() {
            ok += 1;
        }
    }
    assert_eq!(ok, 1);
    let merges = db.patient_merges(&org_id, &b).await.unwrap();
    assert_eq!(merges.len(), 1);
    let d = get(&db, &org_id, &b).await;
    assert_eq!(
        d.replaced_by.as_deref(),
        Some(merges[0].survivor_id.as_str())
    );
}
