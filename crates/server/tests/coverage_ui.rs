//! Coverage in the staff application: the summary section, add and edit
//! forms, card images and the admin payer directory (SQLite, or PostgreSQL
//! with CAREFRONT_TEST_POSTGRES).

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use carefront_domain::Role;
use carefront_domain::audit::{Action, Outcome};
use carefront_domain::coverage::{CardSide, Coverage, CoverageOrder, Payer};
use carefront_domain::patient::Patient;
use carefront_server::auth::{Principal, Via};
use carefront_server::ui::coverage::coverage_section;
use carefront_store::{AuditFilter, Page};
use common::*;
use http_body_util::BodyExt;

const BOUNDARY: &str = "----carefront-test-boundary";
const JPEG: [u8; 8] = [0xFF, 0xD8, 0xFF, 0xE0, 0, 16, b'J', b'F'];

async fn patients_by_coverage(app: &TestApp) -> (String, String) {
    let (patients, _) = app
        .db
        .search::<Patient>(
            &app.org_id,
            &[],
            Page {
                offset: 0,
                count: 100,
            },
        )
        .await
        .unwrap();
    let (mut insured, mut uninsured) = (None, None);
    for p in patients {
        let has = !app
            .db
            .coverages_of(&app.org_id, &p.id)
            .await
            .unwrap()
            .is_empty();
        if has {
            insured.get_or_insert(p.id);
        } else {
            uninsured.get_or_insert(p.id);
        }
    }
    (insured.unwrap(), uninsured.unwrap())
}

async fn payer(app: &TestApp, code: &str) -> String {
    app.db
        .payers(&app.org_id)
        .await
        .unwrap()
        .into_iter()
        .find(|p| p.value.payer_id == code)
        .unwrap()
        .id
}

async fn coverage_count(app: &TestApp) -> i64 {
    let none = Page {
        offset: 0,
        count: 0,
    };
    app.db
        .search::<Coverage>(&app.org_id, &[], none)
        .await
        .unwrap()
        .1
}

fn multipart(fields: &[(&str, &str)], file: Option<&[u8]>) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .bytes(),
        );
    }
    if let Some(bytes) = file {
        body.extend(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"card.jpg\"\r\n\
                 Content-Type: image/jpeg\r\n\r\n"
            )
            .bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend(b"\r\n");
    }
    body.extend(format!("--{BOUNDARY}--\r\n").bytes());
    body
}

async fn upload(
    app: &TestApp,
    coverage_id: &str,
    cookie: &str,
    fields: &[(&str, &str)],
    file: Option<&[u8]>,
) -> axum::http::Response<Body> {
    app.send(
        Request::post(format!("/coverages/{coverage_id}/cards"))
            .header(header::COOKIE, cookie)
            .header(
                header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={BOUNDARY}"),
            )
            .body(Body::from(multipart(fields, file)))
            .unwrap(),
    )
    .await
}

fn principal(app: &TestApp, role: Role) -> Principal {
    Principal {
        org_id: app.org_id.clone(),
        actor_id: "test".into(),
        actor_name: app.staff(role).username.clone(),
        display_name: "Test".into(),
        role,
        via: Via::Session {
            token_hash: String::new(),
            csrf: "x".into(),
        },
        client_addr: None,
    }
}

fn coverage_fields<'a>(payer: &'a str, order: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("payer", payer),
        ("plan_name", "Choice POS II"),
        ("member_id", "W123456789"),
        ("group_number", "0012345"),
        ("relationship", "self"),
        ("order", order),
        ("start", "2026-01-01"),
        ("end", ""),
        ("active", "on"),
    ]
}

#[tokio::test]
async fn the_desk_adds_and_edits_coverage_and_bad_input_saves_nothing() {
    let app = TestApp::new().await;
    let (_, patient) = patients_by_coverage(&app).await;
    let aetna = payer(&app, "60054").await;
    let cookie = app.sign_in(Role::FrontDesk).await;
    let csrf = app.csrf(&cookie).await;

    let form = app
        .send(get(
            &format!("/patients/{patient}/coverages/new"),
            Some(&cookie),
        ))
        .await;
    assert_eq!(form.status(), StatusCode::OK);
    let html = body_text(form).await;
    assert!(html.contains("Aetna (60054)"));
    assert!(html.contains("name=\"member_id\""));

    let before = coverage_count(&app).await;
    let path = format!("/patients/{patient}/coverages/new");
    // A dependant without the subscriber, a member ID with spaces, no payer.
    let mut bad = coverage_fields("", "1");
    bad[2] = ("member_id", "W12 34");
    bad[4] = ("relationship", "child");
    bad.push(("csrf", &csrf));
    let res = app.post_form(&path, &cookie, &bad).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = body_text(res).await;
    for id in [
        "cov-payer-error",
        "cov-member_id-error",
        "cov-subscriber_given-error",
    ] {
        assert!(html.contains(&format!("id=\"{id}\"")), "{id}");
    }
    assert!(
        html.contains("value=\"W12 34\""),
        "the form keeps what was typed"
    );
    // Dates the desk types are checked too.
    let mut bad_dates = coverage_fields(&aetna, "1");
    bad_dates[6] = ("start", "2026-13-45");
    bad_dates[7] = ("end", "12/31/2025");
    bad_dates.push(("csrf", &csrf));
    let res = app.post_form(&path, &cookie, &bad_dates).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = body_text(res).await;
    assert!(html.contains("id=\"cov-start-error\""));
    // Without the CSRF token nothing happens either.
    let res = app
        .post_form(&path, &cookie, &coverage_fields(&aetna, "1"))
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(coverage_count(&app).await, before);

    // A dependant's coverage with the subscriber named.
    let mut good = coverage_fields(&aetna, "1");
    good[4] = ("relationship", "child");
    good.extend([
        ("subscriber_given", "Grace"),
        ("subscriber_family", "Okafor"),
        ("subscriber_birth_date", "07/02/1984"),
        ("csrf", &csrf),
    ]);
    let res = app.post_form(&path, &cookie, &good).await;
    assert_eq!(
        res.status(),
        StatusCode::SEE_OTHER,
        "{}",
        body_text(res).await
    );
    assert_eq!(location(&res), format!("/patients/{patient}#coverage"));
    let saved = app.db.coverages_of(&app.org_id, &patient).await.unwrap();
    assert_eq!(saved.len(), 1);
    let c = &saved[0];
    assert_eq!(c.value.order, CoverageOrder::Primary);
    let s = c.value.subscriber.as_ref().unwrap();
    assert_eq!(s.birth_date, Some(jiff::civil::date(1984, 7, 2)));
    let writes = AuditFilter {
        patient_id: Some(patient.clone()),
        action: Some(Action::Create),
        resource_type: Some("Coverage".into()),
        ..Default::default()
    };
    assert_eq!(
        app.db
            .audit_events(&app.org_id, &writes, 0, 10)
            .await
            .unwrap()
            .1,
        1
    );

    // A second active primary is refused on the order field.
    let humana = payer(&app, "61101").await;
    let mut second = coverage_fields(&humana, "1");
    second.push(("csrf", &csrf));
    let res = app.post_form(&path, &cookie, &second).await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    let html = body_text(res).await;
    assert!(html.contains("id=\"cov-order-error\""));
    assert!(html.contains("W123456789"), "names the coverage holding it");
    assert_eq!(coverage_count(&app).await, before + 1);
    // As secondary it fits.
    let mut second = coverage_fields(&humana, "2");
    second.push(("csrf", &csrf));
    let res = app.post_form(&path, &cookie, &second).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);

    // Edit: the form shows the coverage; a change makes a new version.
    let edit = format!("/coverages/{}/edit", c.id);
    let html = body_text(app.send(get(&edit, Some(&cookie))).await).await;
    assert!(html.contains("value=\"Okafor\""));
    assert!(html.contains("name=\"version\" value=\"1\""));
    let mut changed = good.clone();
    changed[3] = ("group_number", "0099999");
    changed.push(("version", "1"));
    let res = app.post_form(&edit, &cookie, &changed).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let now = app.db.get::<Coverage>(&app.org_id, &c.id).await.unwrap();
    assert_eq!(now.version, 2);
    assert_eq!(now.value.group_number.as_deref(), Some("0099999"));
    // A stale form is refused and shows the newer version.
    let res = app.post_form(&edit, &cookie, &changed).await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    // Bad input on edit changes nothing.
    let mut bad_edit = changed.clone();
    bad_edit[2] = ("member_id", "");
    bad_edit.retain(|(k, _)| *k != "version");
    let res = app.post_form(&edit, &cookie, &bad_edit).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        app.db
            .get::<Coverage>(&app.org_id, &c.id)
            .await
            .unwrap()
            .version,
        2
    );
    // Unknown patients and coverages are not found.
    let res = app
        .send(get("/patients/nobody/coverages/new", Some(&cookie)))
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = app
        .send(get("/coverages/nothing/edit", Some(&cookie)))
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn card_images_are_uploaded_viewed_with_audit_and_kept_from_clinicians() {
    let app = TestApp::new().await;
    let (patient, _) = patients_by_coverage(&app).await;
    let coverage = app.db.coverages_of(&app.org_id, &patient).await.unwrap()[0].clone();
    let cookie = app.sign_in(Role::FrontDesk).await;
    let csrf = app.csrf(&cookie).await;

    // Larger than the general 1 MiB body limit, within the 5 MiB card limit.
    let mut photo = JPEG.to_vec();
    photo.resize(2 * 1024 * 1024, 7);
    let res = upload(
        &app,
        &coverage.id,
        &cookie,
        &[("csrf", &csrf), ("side", "front")],
        Some(&photo),
    )
    .await;
    assert_eq!(
        res.status(),
        StatusCode::SEE_OTHER,
        "{}",
        body_text(res).await
    );
    assert_eq!(
        location(&res),
        format!("/coverages/{}/edit#cards", coverage.id)
    );
    let cards = app
        .db
        .coverage_cards(&app.org_id, &coverage.id)
        .await
        .unwrap();
    assert_eq!(cards.len(), 1);
    assert_eq!(cards[0].side, CardSide::Front);
    assert_eq!(cards[0].size, photo.len());
    let card = cards[0].id.clone();
    let uploads = AuditFilter {
        patient_id: Some(patient.clone()),
        resource_type: Some("CoverageCard".into()),
        action: Some(Action::Create),
        ..Default::default()
    };
    assert_eq!(
        app.db
            .audit_events(&app.org_id, &uploads, 0, 10)
            .await
            .unwrap()
            .1,
        1
    );

    // Refused uploads store nothing: no token, not an image, too large.
    let res = upload(
        &app,
        &coverage.id,
        &cookie,
        &[("side", "back")],
        Some(&JPEG),
    )
    .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = upload(
        &app,
        &coverage.id,
        &cookie,
        &[("csrf", &csrf), ("side", "back")],
        Some(b"<svg onload=alert(1)>"),
    )
    .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = body_text(res).await;
    assert!(html.contains("id=\"cov-file-error\""));
    let res = upload(
        &app,
        &coverage.id,
        &cookie,
        &[("csrf", &csrf), ("side", "sideways")],
        Some(&JPEG),
    )
    .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let mut huge = JPEG.to_vec();
    huge.resize(6 * 1024 * 1024, 0);
    let res = upload(
        &app,
        &coverage.id,
        &cookie,
        &[("csrf", &csrf), ("side", "back")],
        Some(&huge),
    )
    .await;
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        app.db
            .coverage_cards(&app.org_id, &coverage.id)
            .await
            .unwrap()
            .len(),
        1
    );

    // Viewing: the bytes, never cached, audited under the patient.
    let views = AuditFilter {
        patient_id: Some(patient.clone()),
        resource_type: Some("CoverageCard".into()),
        action: Some(Action::Read),
        ..Default::default()
    };
    let res = app
        .send(get(&format!("/coverage-cards/{card}"), Some(&cookie)))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()[header::CONTENT_TYPE], "image/jpeg");
    assert_eq!(res.headers()[header::CACHE_CONTROL], "no-store");
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(bytes.len(), photo.len());
    let (events, n) = app
        .db
        .audit_events(&app.org_id, &views, 0, 10)
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(events[0].entry.outcome, Outcome::Success);
    assert_eq!(
        events[0].entry.actor_name,
        app.staff(Role::FrontDesk).username
    );
    // Billing may see cards too.
    let billing = app.sign_in(Role::Billing).await;
    let res = app
        .send(get(&format!("/coverage-cards/{card}"), Some(&billing)))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        app.db
            .audit_events(&app.org_id, &views, 0, 10)
            .await
            .unwrap()
            .1,
        2
    );

    // The edit page shows the card to the desk, and not to clinicians.
    let edit = format!("/coverages/{}/edit", coverage.id);
    let html = body_text(app.send(get(&edit, Some(&cookie))).await).await;
    assert!(html.contains(&format!("src=\"/coverage-cards/{card}\"")));
    assert!(html.contains("enctype=\"multipart/form-data\""));
    let clinician = app.sign_in(Role::Clinician).await;
    let res = app.send(get(&edit, Some(&clinician))).await;
    assert_eq!(res.status(), StatusCode::OK);
    let html = body_text(res).await;
    assert!(!html.contains("/coverage-cards/"));
    assert!(html.contains("not shown to your role"));

    // Clinicians are refused the image and the upload, and the refusal is audited.
    let denied_before = app
        .db
        .audit_events(
            &app.org_id,
            &AuditFilter {
                action: Some(Action::Read),
                ..Default::default()
            },
            0,
            10_000,
        )
        .await
        .unwrap()
        .0
        .iter()
        .filter(|e| e.entry.outcome == Outcome::Denied)
        .count();
    let res = app
        .send(get(&format!("/coverage-cards/{card}"), Some(&clinician)))
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let clinician_csrf = app.csrf(&clinician).await;
    let res = upload(
        &app,
        &coverage.id,
        &clinician,
        &[("csrf", &clinician_csrf), ("side", "back")],
        Some(&JPEG),
    )
    .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let denied_after = app
        .db
        .audit_events(
            &app.org_id,
            &AuditFilter {
                action: Some(Action::Read),
                ..Default::default()
            },
            0,
            10_000,
        )
        .await
        .unwrap()
        .0
        .iter()
        .filter(|e| e.entry.outcome == Outcome::Denied)
        .count();
    assert_eq!(denied_after, denied_before + 2);
    assert_eq!(
        app.db
            .audit_events(&app.org_id, &views, 0, 10)
            .await
            .unwrap()
            .1,
        2,
        "no successful view by the clinician"
    );
    let res = app
        .send(get("/coverage-cards/no-such-card", Some(&cookie)))
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_summary_section_lists_coverage_with_its_standing_and_cards() {
    let app = TestApp::new().await;
    let (patient, uninsured) = patients_by_coverage(&app).await;
    let coverages = app.db.coverages_of(&app.org_id, &patient).await.unwrap();
    let first = &coverages[0];
    let payers = app.db.payers(&app.org_id).await.unwrap();
    let payer: &Payer = &payers
        .iter()
        .find(|p| p.id == first.value.payer_ref)
        .unwrap()
        .value;
    let mut tx = app.db.begin(&app.org_id).await.unwrap();
    tx.add_coverage_card(&first.id, CardSide::Back, "image/jpeg", &JPEG, "t")
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let desk = principal(&app, Role::FrontDesk);
    let html = coverage_section(&app.state, &desk, &patient)
        .await
        .unwrap()
        .into_string();
    assert!(html.contains("id=\"coverage\""));
    assert!(html.contains(&payer.name));
    assert!(html.contains(&first.value.member_id));
    assert!(html.contains(first.value.order.label()));
    assert!(html.contains("In force") || html.contains("Not in force"));
    assert!(html.contains(&format!("/coverages/{}/edit", first.id)));
    assert!(html.contains(&format!("/patients/{patient}/coverages/new")));
    let card = app
        .db
        .coverage_cards(&app.org_id, &first.id)
        .await
        .unwrap()
        .remove(0);
    assert!(html.contains(&format!("/coverage-cards/{}", card.id)));

    let clinician = principal(&app, Role::Clinician);
    let html = coverage_section(&app.state, &clinician, &patient)
        .await
        .unwrap()
        .into_string();
    assert!(html.contains(&first.value.member_id));
    assert!(!html.contains("/coverage-cards/"));
    assert!(html.contains("On file"));

    let html = coverage_section(&app.state, &desk, &uninsured)
        .await
        .unwrap()
        .into_string();
    assert!(html.contains("No insurance on file"));
}

#[tokio::test]
async fn admins_keep_the_payer_directory() {
    let app = TestApp::new().await;
    let cookie = app.sign_in(Role::Admin).await;
    let csrf = app.csrf(&cookie).await;
    let html = body_text(app.send(get("/admin", Some(&cookie))).await).await;
    assert!(html.contains("Payer directory"));
    assert!(html.contains("UnitedHealthcare"));
    assert!(html.contains("87726"));
    assert!(html.contains("action=\"/admin/payers\""));

    let before = app.db.payers(&app.org_id).await.unwrap().len();
    let res = app
        .post_form(
            "/admin/payers",
            &cookie,
            &[("csrf", &csrf), ("name", ""), ("payer_id", "20 554")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = body_text(res).await;
    assert!(html.contains("id=\"payer-name-error\""));
    assert!(html.contains("id=\"payer-payer_id-error\""));
    let res = app
        .post_form(
            "/admin/payers",
            &cookie,
            &[
                ("csrf", &csrf),
                ("name", "Aetna Again"),
                ("payer_id", "60054"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    assert_eq!(app.db.payers(&app.org_id).await.unwrap().len(), before);

    let res = app
        .post_form(
            "/admin/payers",
            &cookie,
            &[
                ("csrf", &csrf),
                ("name", "Molina Healthcare of Texas"),
                ("payer_id", "20554"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/admin#payers");
    let payers = app.db.payers(&app.org_id).await.unwrap();
    assert_eq!(payers.len(), before + 1);
    let molina = payers.iter().find(|p| p.value.payer_id == "20554").unwrap();
    let added = AuditFilter {
        resource_id: Some(molina.id.clone()),
        ..Default::default()
    };
    assert_eq!(
        app.db
            .audit_events(&app.org_id, &added, 0, 10)
            .await
            .unwrap()
            .1,
        1
    );

    // Front desk cannot add payers.
    let desk = app.sign_in(Role::FrontDesk).await;
    let desk_csrf = app.csrf(&desk).await;
    let res = app
        .post_form(
            "/admin/payers",
            &desk,
            &[("csrf", &desk_csrf), ("name", "X"), ("payer_id", "X1")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}
