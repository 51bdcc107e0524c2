//! The payer directory, coverages and card images, run on SQLite and (with
//! CAREFRONT_TEST_POSTGRES) on PostgreSQL.

use carefront_domain::coverage::{
    COMMON_PAYERS, CardSide, Coverage, CoverageOrder, Payer, Subscriber, SubscriberRelationship,
};
use carefront_domain::directory::Organization;
use carefront_store::testing::fresh_database;
use carefront_store::{Db, Filter, Page, StoreError, new_id};
use jiff::civil::date;

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
    assert_eq!(tx.seed_payers("test").await.unwrap(), COMMON_PAYERS.len());
    tx.commit().await.unwrap();
    org_id
}

async fn patients(db: &Db, org_id: &str, n: u64) -> Vec<String> {
    let generator = carefront_synth::PatientGenerator::new(5);
    let mut tx = db.begin(org_id).await.unwrap();
    let mut ids = Vec::new();
    for p in generator.iter(0..n) {
        ids.push(tx.create_patient(&new_id(), p, "t").await.unwrap().id);
    }
    tx.commit().await.unwrap();
    ids
}

async fn payer_id(db: &Db, org_id: &str, code: &str) -> String {
    db.payers(org_id)
        .await
        .unwrap()
        .into_iter()
        .find(|p| p.value.payer_id == code)
        .unwrap()
        .id
}

fn coverage(patient_id: &str, payer_ref: &str, order: CoverageOrder) -> Coverage {
    Coverage {
        patient_id: patient_id.into(),
        payer_ref: payer_ref.into(),
        plan_name: Some("Choice POS II".into()),
        member_id: "W123456789".into(),
        group_number: Some("0012345".into()),
        relationship: SubscriberRelationship::Itself,
        subscriber: None,
        order,
        start: Some(date(2026, 1, 1)),
        end: None,
        active: true,
    }
}

const ALL: Page = Page {
    offset: 0,
    count: 100,
};

#[tokio::test]
async fn new_organizations_get_the_common_payers_once() {
    let (db, _) = fresh_database().await.unwrap();
    let org_id = org(&db).await;
    let payers = db.payers(&org_id).await.unwrap();
    assert_eq!(payers.len(), COMMON_PAYERS.len());
    for (name, code) in COMMON_PAYERS {
        assert!(
            payers
                .iter()
                .any(|p| p.value.name == name && p.value.payer_id == code && p.value.active)
        );
    }
    // Seeding again adds nothing; another organization gets its own.
    let mut tx = db.begin(&org_id).await.unwrap();
    assert_eq!(tx.seed_payers("test").await.unwrap(), 0);
    tx.commit().await.unwrap();
    let other = org(&db).await;
    assert_eq!(db.payers(&other).await.unwrap().len(), COMMON_PAYERS.len());
    assert_eq!(db.payers(&org_id).await.unwrap().len(), COMMON_PAYERS.len());
    // The tenant list is unchanged by payers.
    assert_eq!(db.organizations().await.unwrap().len(), 2);

    // An admin adds a regional plan; a second entry with its payer ID is refused.
    let regional = Payer {
        name: "Molina Healthcare of Texas".into(),
        payer_id: "20554".into(),
        active: true,
    }
    .validate()
    .unwrap();
    let mut tx = db.begin(&org_id).await.unwrap();
    tx.create(&new_id(), &regional, "admin").await.unwrap();
    tx.commit().await.unwrap();
    let mut tx = db.begin(&org_id).await.unwrap();
    let dup = tx.create(&new_id(), &regional, "admin").await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    drop(tx);
    let found = db
        .search::<Payer>(&org_id, &[Filter::Eq("payer_id", "20554".into())], ALL)
        .await
        .unwrap();
    assert_eq!(found.1, 1);
}

#[tokio::test]
async fn coverages_are_stored_with_history_and_found_by_patient_and_payer() {
    let (db, _) = fresh_database().await.unwrap();
    let org_id = org(&db).await;
    let ids = patients(&db, &org_id, 3).await;
    let aetna = payer_id(&db, &org_id, "60054").await;
    let cigna = payer_id(&db, &org_id, "62308").await;

    let primary = coverage(&ids[0], &aetna, CoverageOrder::Primary)
        .validate()
        .unwrap();
    let mut secondary = coverage(&ids[0], &cigna, CoverageOrder::Secondary);
    secondary.relationship = SubscriberRelationship::Spouse;
    secondary.subscriber = Some(Subscriber {
        given: "Ana".into(),
        family: "Reyes".into(),
        birth_date: Some(date(1980, 2, 29)),
    });
    secondary.plan_name = None;
    secondary.group_number = None;
    let secondary = secondary.validate().unwrap();
    let mut tx = db.begin(&org_id).await.unwrap();
    let p = tx.create(&new_id(), &primary, "t").await.unwrap();
    let s = tx.create(&new_id(), &secondary, "t").await.unwrap();
    tx.create(
        &new_id(),
        &coverage(&ids[1], &aetna, CoverageOrder::Primary),
        "t",
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    assert_eq!(
        db.get::<Coverage>(&org_id, &p.id).await.unwrap().value,
        primary
    );
    assert_eq!(
        db.get::<Coverage>(&org_id, &s.id).await.unwrap().value,
        secondary
    );
    let mine = db.coverages_of(&org_id, &ids[0]).await.unwrap();
    let orders: Vec<CoverageOrder> = mine.iter().map(|c| c.value.order).collect();
    assert_eq!(orders, [CoverageOrder::Primary, CoverageOrder::Secondary]);
    assert!(db.coverages_of(&org_id, &ids[2]).await.unwrap().is_empty());
    let by_payer = db
        .search::<Coverage>(
            &org_id,
            &[Filter::Eq("payer_ref", aetna.as_str().into())],
            ALL,
        )
        .await
        .unwrap();
    assert_eq!(by_payer.1, 2);
    let at = db
        .coverage_at(&org_id, &ids[0], CoverageOrder::Secondary)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(at.id, s.id);

    // An edit keeps the earlier version.
    let mut ended = primary.clone();
    ended.end = Some(date(2026, 6, 30));
    let mut tx = db.begin(&org_id).await.unwrap();
    tx.update(&p.id, &ended, Some(1), "t").await.unwrap();
    tx.commit().await.unwrap();
    let history = db.history::<Coverage>(&org_id, &p.id).await.unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[1].value, primary);
    assert_eq!(history[0].value.end, Some(date(2026, 6, 30)));
}

#[tokio::test]
async fn the_database_keeps_one_active_coverage_per_order_and_real_references() {
    let (db, _) = fresh_database().await.unwrap();
    let org_id = org(&db).await;
    let ids = patients(&db, &org_id, 1).await;
    let aetna = payer_id(&db, &org_id, "60054").await;
    let humana = payer_id(&db, &org_id, "61101").await;
    let mut tx = db.begin(&org_id).await.unwrap();
    let first = tx
        .create(
            &new_id(),
            &coverage(&ids[0], &aetna, CoverageOrder::Primary),
            "t",
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();

    // A second active primary is refused by the unique index.
    let mut tx = db.begin(&org_id).await.unwrap();
    let second = tx
        .create(
            &new_id(),
            &coverage(&ids[0], &humana, CoverageOrder::Primary),
            "t",
        )
        .await;
    assert!(matches!(second, Err(StoreError::Conflict(_))), "{second:?}");
    drop(tx);

    // Once the first is inactive, the new primary fits.
    let mut inactive = coverage(&ids[0], &aetna, CoverageOrder::Primary);
    inactive.active = false;
    let mut tx = db.begin(&org_id).await.unwrap();
    tx.update(&first.id, &inactive, None, "t").await.unwrap();
    tx.create(
        &new_id(),
        &coverage(&ids[0], &humana, CoverageOrder::Primary),
        "t",
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(db.coverages_of(&org_id, &ids[0]).await.unwrap().len(), 2);

    // Unknown patients and payers, and the tenant as payer, are refused.
    for (patient, payer) in [
        ("nobody", aetna.as_str()),
        (ids[0].as_str(), "no-such-payer"),
        (ids[0].as_str(), org_id.as_str()),
    ] {
        let mut tx = db.begin(&org_id).await.unwrap();
        let res = tx
            .create(
                &new_id(),
                &coverage(patient, payer, CoverageOrder::Tertiary),
                "t",
            )
            .await;
        assert!(matches!(res, Err(StoreError::Conflict(_))), "{res:?}");
    }

    // Direct SQL cannot store a dependant's coverage without the subscriber.
    let raw = format!(
        "INSERT INTO coverages (org_id, id, patient_id, payer_ref, member_id, relationship, \
         coverage_order, active, version, updated_at_us) \
         VALUES ('{org_id}', 'raw', '{}', '{aetna}', 'M1', 'child', 3, 1, 1, 0)",
        ids[0]
    );
    assert!(db.execute_unchecked(&raw).await.is_err());
    assert!(
        db.execute_unchecked(&raw.replace("'child'", "'self'"))
            .await
            .is_ok()
    );
    // Nor a payer sharing the tenant's id.
    let raw_payer = format!(
        "INSERT INTO payers (org_id, id, name, payer_id, version, updated_at_us) \
         VALUES ('{org_id}', '{org_id}', 'X', 'X1', 1, 0)"
    );
    assert!(db.execute_unchecked(&raw_payer).await.is_err());
}

#[tokio::test]
async fn card_images_keep_the_newest_per_side() {
    let (db, _) = fresh_database().await.unwrap();
    let org_id = org(&db).await;
    let ids = patients(&db, &org_id, 1).await;
    let aetna = payer_id(&db, &org_id, "60054").await;
    let mut tx = db.begin(&org_id).await.unwrap();
    let c = tx
        .create(
            &new_id(),
            &coverage(&ids[0], &aetna, CoverageOrder::Primary),
            "t",
        )
        .await
        .unwrap();
    let jpeg = [0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3];
    let png = b"\x89PNG\r\n\x1a\nrest".to_vec();
    tx.add_coverage_card(&c.id, CardSide::Front, "image/jpeg", &jpeg, "desk")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let mut tx = db.begin(&org_id).await.unwrap();
    let newer = tx
        .add_coverage_card(&c.id, CardSide::Front, "image/png", &png, "desk")
        .await
        .unwrap();
    let back = tx
        .add_coverage_card(&c.id, CardSide::Back, "image/jpeg", &jpeg, "desk")
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let cards = db.coverage_cards(&org_id, &c.id).await.unwrap();
    let shown: Vec<(CardSide, &str)> = cards.iter().map(|c| (c.side, c.id.as_str())).collect();
    assert_eq!(
        shown,
        [
            (CardSide::Front, newer.id.as_str()),
            (CardSide::Back, back.id.as_str())
        ]
    );
    assert_eq!(cards[0].size, png.len());
    let (info, bytes) = db.coverage_card(&org_id, &newer.id).await.unwrap();
    assert_eq!(bytes, png);
    assert_eq!(info.content_type, "image/png");
    assert_eq!(info.uploaded_by, "desk");

    // Other organizations cannot read it; unknown coverages and types are refused.
    let other = org(&db).await;
    assert!(matches!(
        db.coverage_card(&other, &newer.id).await,
        Err(StoreError::NotFound)
    ));
    let mut tx = db.begin(&org_id).await.unwrap();
    let res = tx
        .add_coverage_card("nope", CardSide::Back, "image/jpeg", &jpeg, "desk")
        .await;
    assert!(matches!(res, Err(StoreError::Conflict(_))), "{res:?}");
    drop(tx);
    let mut tx = db.begin(&org_id).await.unwrap();
    assert!(
        tx.add_coverage_card(&c.id, CardSide::Back, "image/svg+xml", &jpeg, "desk")
            .await
            .is_err()
    );
}
