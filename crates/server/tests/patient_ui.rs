//! The patient screens over HTTP, in-process, on SQLite and (with
//! CAREFRONT_TEST_POSTGRES) on PostgreSQL: registration with its duplicate
//! check, the summary, editing with versions, merging and undoing.

mod common;

use axum::http::StatusCode;
use carefront_domain::Role;
use carefront_domain::audit::{Action, AuditEvent};
use carefront_domain::patient::Patient;
use carefront_store::{AuditFilter, Page};
use common::*;

/// A registration as the front desk types it.
fn marisol() -> Vec<(&'static str, &'static str)> {
    vec![
        ("given", "Marisol"),
        ("family", "Quintanilla"),
        ("birth_date", "1984-07-09"),
        ("sex", "female"),
        ("addresses[0].line1", "418 Juniper Ln"),
        ("addresses[0].city", "Austin"),
        ("addresses[0].state", "tx"),
        ("addresses[0].postal_code", "78704"),
        ("phones[0].number", "(512) 555-0187"),
        ("phones[0].kind", "mobile"),
        ("phones[0].sms_consent", "on"),
        ("phones[1].number", ""),
        ("phones[1].kind", "home"),
        ("email", "marisol.q@example.com"),
        ("preferred_contact", "sms"),
        ("language", "es"),
        ("interpreter_needed", "on"),
        ("contacts[0].name", "Rafael Quintanilla"),
        ("contacts[0].relationship", "SPS"),
        ("contacts[0].phone", "512-555-0142"),
        ("contacts[0].emergency", "on"),
        ("contacts[0].guarantor", "on"),
        ("contacts[1].name", ""),
        ("contacts[1].relationship", ""),
        ("contacts[1].phone", ""),
        ("alerts", "Needs wheelchair\r\nHard of hearing"),
        ("identifiers[0].system", ""),
        ("identifiers[0].value", ""),
    ]
}

/// The same person registered again, with a typo in the family name and
/// the phone typed another way.
fn marisol_typo() -> Vec<(&'static str, &'static str)> {
    with(
        marisol(),
        &[
            ("family", "Quintanila"),
            ("phones[0].number", "512.555.0187"),
        ],
    )
}

fn with<'a>(
    mut fields: Vec<(&'a str, &'a str)>,
    changes: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    for (k, v) in changes {
        match fields.iter_mut().find(|(name, _)| name == k) {
            Some(f) => f.1 = v,
            None => fields.push((k, v)),
        }
    }
    fields
}

struct Desk<'a> {
    app: &'a TestApp,
    cookie: String,
    csrf: String,
}

impl<'a> Desk<'a> {
    async fn new(app: &'a TestApp, role: Role) -> Desk<'a> {
        let cookie = app.sign_in(role).await;
        let csrf = app.csrf(&cookie).await;
        Desk { app, cookie, csrf }
    }

    async fn post(&self, path: &str, fields: &[(&str, &str)]) -> (StatusCode, String, String) {
        let mut all = vec![("csrf", self.csrf.as_str())];
        all.extend_from_slice(fields);
        let res = self.app.post_form(path, &self.cookie, &all).await;
        let status = res.status();
        let to = location(&res);
        (status, to, body_text(res).await)
    }

    async fn get(&self, path: &str) -> (StatusCode, String) {
        let res = self.app.send(get(path, Some(&self.cookie))).await;
        let status = res.status();
        (status, body_text(res).await)
    }

    /// Registers, expecting success; returns the new patient's id.
    async fn register(&self, fields: &[(&str, &str)]) -> String {
        let (status, to, body) = self.post("/patients/new", fields).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
        to.strip_prefix("/patients/").unwrap().to_string()
    }
}

/// The table rows (`<tr>…</tr>`) of a page.
fn rows(html: &str) -> Vec<&str> {
    html.split("<tr")
        .skip(1)
        .map(|r| r.split("</tr>").next().unwrap_or(r))
        .collect()
}

async fn patient_count(app: &TestApp) -> i64 {
    app.db
        .search::<Patient>(
            &app.org_id,
            &[],
            Page {
                offset: 0,
                count: 0,
            },
        )
        .await
        .unwrap()
        .1
}

async fn events(app: &TestApp, action: Action, patient_id: &str) -> Vec<AuditEvent> {
    let filter = AuditFilter {
        action: Some(action),
        patient_id: Some(patient_id.to_string()),
        ..Default::default()
    };
    app.db
        .audit_events(&app.org_id, &filter, 0, 100)
        .await
        .unwrap()
        .0
}

#[tokio::test]
async fn a_registered_patient_has_a_summary_with_everything_on_it() {
    let app = TestApp::new().await;
    let desk = Desk::new(&app, Role::FrontDesk).await;
    let (status, body) = desk.get("/patients/new").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("id=\"f-given\""));
    assert!(
        body.contains("for=\"f-phones-0-number\""),
        "every input is labelled"
    );

    let id = desk.register(&marisol()).await;
    let stored = app.db.get::<Patient>(&app.org_id, &id).await.unwrap();
    assert_eq!(stored.value.phones[0].number, "+15125550187");
    assert!(!stored.value.mrn.is_empty());

    let (status, html) = desk.get(&format!("/patients/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    for expected in [
        "Quintanilla, Marisol",
        &format!("MRN <strong>{}</strong>", stored.value.mrn),
        "07/09/1984",
        "role=\"note\"",
        "Needs wheelchair",
        "Hard of hearing",
        "(512) 555-0187",
        "texts OK",
        "marisol.q@example.com",
        "418 Juniper Ln",
        "Spanish (es)",
        "Interpreter needed",
        "Text message",
        "Rafael Quintanilla",
        "Guarantor",
        "Emergency",
        "Coverage",
        "Appointments",
        "Balance",
        "Messages and calls",
        "Tasks",
        "No upcoming appointment.",
        "Arrives with the money capability",
        "Registered",
        &format!("href=\"/patients/{id}/edit\""),
    ] {
        assert!(html.contains(expected), "the summary shows {expected}");
    }
    assert!(
        !html.contains("/merge\""),
        "merging is offered to leads only"
    );

    // Created and viewed, both audited under the patient.
    let created = events(&app, Action::Create, &id).await;
    assert_eq!(created.len(), 1);
    assert!(
        created[0]
            .entry
            .detail
            .as_deref()
            .unwrap()
            .contains("no candidates")
    );
    let reads = events(&app, Action::Read, &id).await;
    assert_eq!(reads.len(), 1);
    assert_eq!(reads[0].entry.actor_name, "frontdesk");

    // The search results link to the summary, with the date of birth, the
    // age and the MRN in the patient's row.
    let (_, results) = desk.get("/patients?q=quintanilla+marisol").await;
    let link = format!("href=\"/patients/{id}\"");
    let row = rows(&results)
        .into_iter()
        .find(|r| r.contains(&link))
        .expect("a result row links to the summary");
    let age = stored.value.age_on(jiff::Zoned::now().date());
    for (what, cell) in [
        ("date of birth", "<td>07/09/1984</td>".to_string()),
        ("age", format!("<td>{age}</td>")),
        ("MRN", format!("<td>{}</td>", stored.value.mrn)),
        ("phone", "<td>(512) 555-0187</td>".to_string()),
    ] {
        assert!(row.contains(&cell), "the result shows the {what}: {row}");
    }

    // A lead sees the merge button; unknown ids are 404.
    let lead = Desk::new(&app, Role::Lead).await;
    let (_, html) = lead.get(&format!("/patients/{id}")).await;
    assert!(html.contains(&format!("href=\"/patients/{id}/merge\"")));
    assert_eq!(
        lead.get("/patients/no-such-patient").await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn bad_input_names_each_field_and_writes_nothing() {
    let app = TestApp::new().await;
    let desk = Desk::new(&app, Role::FrontDesk).await;
    let patients = patient_count(&app).await;
    let audit = app.audit_count().await;
    let bad = with(
        marisol(),
        &[
            ("given", " "),
            ("birth_date", "2999-01-01"),
            ("phones[0].number", "12"),
            ("email", "marisol@"),
            ("addresses[0].postal_code", "7870"),
            ("contacts[0].name", ""),
            ("contacts[0].phone", "5"),
            ("sex", "dragon"),
        ],
    );
    let (status, _, html) = desk.post("/patients/new", &bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("Nothing was saved. Please correct:"));
    for id in [
        "f-given",
        "f-birth_date",
        "f-sex",
        "f-phones-0-number",
        "f-email",
        "f-addresses-0-postal_code",
        "f-contacts-0-name",
        "f-contacts-0-phone",
    ] {
        assert!(
            html.contains(&format!("id=\"{id}-error\"")),
            "inline error for {id}"
        );
        assert!(
            html.contains(&format!("aria-describedby=\"{id}-error\"")),
            "{id} is described by its error"
        );
        assert!(
            html.contains(&format!("href=\"#{id}\"")),
            "summary links {id}"
        );
    }
    assert!(html.contains("Date of birth cannot be in the future."));
    assert!(
        html.contains("value=\"marisol@\""),
        "what was typed is kept"
    );
    assert_eq!(patient_count(&app).await, patients, "no row");
    assert_eq!(app.audit_count().await, audit, "no audit event");
}

#[tokio::test]
async fn a_duplicate_with_a_typo_is_stopped_until_the_desk_gives_a_reason() {
    let app = TestApp::new().await;
    let desk = Desk::new(&app, Role::FrontDesk).await;
    let first = desk.register(&marisol()).await;
    let mrn = app
        .db
        .get::<Patient>(&app.org_id, &first)
        .await
        .unwrap()
        .value
        .mrn;
    let patients = patient_count(&app).await;

    // 1. The panel: score, grade, fields that agree and disagree; not saved.
    let (status, _, html) = desk.post("/patients/new", &marisol_typo()).await;
    assert_eq!(status, StatusCode::CONFLICT);
    for expected in [
        "Stop: this patient is probably registered already",
        "Nothing was saved yet.",
        "Almost certainly the same person",
        &format!("MRN {mrn}"),
        &format!("href=\"/patients/{first}\""),
        "Use this patient",
        "Similar",
        "Same",
        "Quintanila",
        "id=\"f-override_reason\"",
    ] {
        assert!(html.contains(expected), "the panel shows {expected}");
    }
    let reviewed = hidden_value(&html, "reviewed").unwrap();
    assert_eq!(reviewed, first);
    assert_eq!(patient_count(&app).await, patients);
    let shown = events(&app, Action::Search, &first).await;
    assert!(
        shown.iter().any(|e| e
            .entry
            .detail
            .as_deref()
            .unwrap()
            .contains("possible duplicate")),
        "showing the candidate is audited"
    );

    // 2. Submitting again without a reason still saves nothing.
    let again = with(marisol_typo(), &[("reviewed", &reviewed)]);
    let (status, _, html) = desk.post("/patients/new", &again).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("id=\"f-override_reason-error\""));
    assert_eq!(patient_count(&app).await, patients);

    // 3. With a reason it is saved, and the reason is audited.
    let reason = "Twin sister, a different person";
    let with_reason = with(
        marisol_typo(),
        &[("reviewed", &reviewed), ("override_reason", reason)],
    );
    let second = desk.register(&with_reason).await;
    assert_ne!(second, first);
    assert_eq!(patient_count(&app).await, patients + 1);
    let created = events(&app, Action::Create, &second).await;
    let detail = created[0].entry.detail.clone().unwrap();
    assert!(
        detail.contains(&format!("override reason: {reason}")),
        "{detail}"
    );
    assert!(detail.contains(&format!("Patient/{first}")), "{detail}");
}

#[tokio::test]
async fn possible_matches_are_shown_once_then_the_desk_may_go_on() {
    let app = TestApp::new().await;
    let desk = Desk::new(&app, Role::FrontDesk).await;
    let first = desk.register(&marisol()).await;
    let other = with(
        marisol(),
        &[
            ("given", "Marisela"),
            ("phones[0].number", "(512) 555-0111"),
            ("addresses[0].line1", "9 Elm St"),
            ("addresses[0].postal_code", "78701"),
            ("email", "marisela@example.com"),
            ("contacts[0].name", ""),
            ("contacts[0].relationship", ""),
            ("contacts[0].phone", ""),
            ("contacts[0].guarantor", ""),
        ],
    );
    let (status, _, html) = desk.post("/patients/new", &other).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(html.contains("Check: possible existing patients"), "{html}");
    assert!(html.contains("None of these: register new patient"));
    assert!(
        !html.contains("id=\"f-override_reason\""),
        "no reason needed"
    );
    let reviewed = hidden_value(&html, "reviewed").unwrap();
    assert_eq!(reviewed, first);
    let second = desk
        .register(&with(other, &[("reviewed", &reviewed)]))
        .await;
    assert_ne!(second, first);
}

#[tokio::test]
async fn a_home_and_a_mailing_address_are_registered_shown_and_edited() {
    use carefront_domain::patient::{AddressType, AddressUse};
    let app = TestApp::new().await;
    let desk = Desk::new(&app, Role::FrontDesk).await;

    // The form: the home address as before, and a labelled block for
    // another address behind a disclosure (no script needed).
    let (_, form) = desk.get("/patients/new").await;
    for expected in [
        "<legend>Home address</legend>",
        "for=\"f-addresses-0-line1\"",
        "<summary>Add another address</summary>",
        "for=\"f-addresses-1-use\"",
        "for=\"f-addresses-1-type\"",
        "for=\"f-addresses-1-line1\"",
        "name=\"addresses[1].postal_code\"",
    ] {
        assert!(form.contains(expected), "the form has {expected}");
    }

    let mailing = [
        ("addresses[1].use", "home"),
        ("addresses[1].type", "postal"),
        ("addresses[1].line1", "PO Box 2211"),
        ("addresses[1].city", "Austin"),
        ("addresses[1].state", "TX"),
        ("addresses[1].postal_code", "78768"),
        ("addresses[1].start", ""),
        ("addresses[1].end", ""),
    ];
    // A mistake in the second address is named at its input; nothing saved.
    let patients = patient_count(&app).await;
    let bad = with(
        with(marisol(), &mailing),
        &[("addresses[1].postal_code", "787")],
    );
    let (status, _, html) = desk.post("/patients/new", &bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        html.contains("id=\"f-addresses-1-postal_code-error\""),
        "{html}"
    );
    assert!(html.contains("href=\"#f-addresses-1-postal_code\""));
    assert!(html.contains("Address 2 ZIP code must be a US ZIP code"));
    assert!(
        html.contains("value=\"PO Box 2211\""),
        "what was typed is kept"
    );
    assert!(
        html.contains("name=\"addresses[2].line1\""),
        "and another blank block waits"
    );
    assert!(
        html.contains("f-addresses-0-postal_code")
            && !html.contains("f-addresses-0-postal_code-error"),
        "the home address is fine"
    );
    // A second home address where the patient lives is refused at its use.
    let two_homes = with(
        with(marisol(), &mailing),
        &[
            ("addresses[1].type", ""),
            ("addresses[1].line1", "9 Elm St"),
        ],
    );
    let (status, _, html) = desk.post("/patients/new", &two_homes).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("id=\"f-addresses-1-use-error\""), "{html}");
    assert!(html.contains("second home address"));
    assert_eq!(patient_count(&app).await, patients);

    let id = desk.register(&with(marisol(), &mailing)).await;
    let stored = app.db.get::<Patient>(&app.org_id, &id).await.unwrap();
    let kept: Vec<_> = stored
        .value
        .addresses
        .iter()
        .map(|a| {
            (
                a.use_,
                a.type_,
                a.address.line1.as_str(),
                a.address.state.as_str(),
            )
        })
        .collect();
    assert_eq!(
        kept,
        [
            (AddressUse::Home, None, "418 Juniper Ln", "TX"),
            (
                AddressUse::Home,
                Some(AddressType::Postal),
                "PO Box 2211",
                "TX"
            ),
        ]
    );

    // The summary lists each address with its use.
    let (_, html) = desk.get(&format!("/patients/{id}")).await;
    for expected in [
        "<dt>Home address</dt>",
        "418 Juniper Ln",
        "<dt>Mailing address</dt>",
        "PO Box 2211",
        "Austin, TX 78768",
    ] {
        assert!(html.contains(expected), "the summary shows {expected}");
    }

    // The edit form shows both; a blank block is one more to add.
    let edit = format!("/patients/{id}/edit");
    let (_, form) = desk.get(&edit).await;
    assert!(form.contains("value=\"418 Juniper Ln\""));
    assert!(form.contains("<legend>Address 2</legend>"), "{form}");
    assert!(form.contains("value=\"PO Box 2211\""));
    assert!(form.contains("name=\"addresses[2].line1\""));

    // Emptying the block removes the address; the home address stays.
    let mut removed = with(marisol(), &[("version", "1")]);
    removed.extend(mailing.iter().map(|(k, _)| (*k, "")));
    let (status, _, body) = desk.post(&edit, &removed).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let stored = app.db.get::<Patient>(&app.org_id, &id).await.unwrap();
    assert_eq!(stored.value.addresses.len(), 1);
    assert_eq!(stored.value.home_address().unwrap().line1, "418 Juniper Ln");
    let updates = events(&app, Action::Update, &id).await;
    assert_eq!(
        updates[0].entry.detail.as_deref(),
        Some("changed: Addresses")
    );
}

#[tokio::test]
async fn a_stale_edit_overwrites_nothing_and_history_shows_each_change() {
    let app = TestApp::new().await;
    let alice = Desk::new(&app, Role::FrontDesk).await;
    let bob = Desk::new(&app, Role::Lead).await;
    let id = alice.register(&marisol()).await;
    let edit = format!("/patients/{id}/edit");

    let (status, form) = alice.get(&edit).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(hidden_value(&form, "version").as_deref(), Some("1"));
    assert!(form.contains("value=\"Marisol\""), "the form is filled in");
    assert!(
        events(&app, Action::Read, &id)
            .await
            .iter()
            .any(|e| e.entry.detail.as_deref() == Some("edit form"))
    );

    // Alice changes the email from version 1.
    let alices = with(marisol(), &[("version", "1"), ("email", "mq@example.org")]);
    let (status, to, _) = alice.post(&edit, &alices).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(to, format!("/patients/{id}"));

    // Bob, who also opened version 1, changes the phone: refused.
    let bobs = with(
        marisol(),
        &[("version", "1"), ("phones[0].number", "(512) 555-0199")],
    );
    let (status, _, html) = bob.post(&edit, &bobs).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(html.contains("Nothing was saved: someone else changed this record"));
    assert!(html.contains("changed Email"), "says what changed: {html}");
    assert!(
        html.contains("value=\"(512) 555-0199\""),
        "Bob's entries are kept"
    );
    assert_eq!(hidden_value(&html, "version").as_deref(), Some("2"));
    let stored = app.db.get::<Patient>(&app.org_id, &id).await.unwrap();
    assert_eq!(stored.version, 2);
    assert_eq!(stored.value.email.as_deref(), Some("mq@example.org"));
    assert_eq!(stored.value.phones[0].number, "+15125550187");

    // Bad input on an edit saves nothing either.
    let bad = with(marisol(), &[("version", "2"), ("birth_date", "")]);
    let (status, _, html) = bob.post(&edit, &bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("id=\"f-birth_date-error\""));
    let history = app.db.history::<Patient>(&app.org_id, &id).await.unwrap();
    assert_eq!(history.len(), 2);

    // The summary's history: who, and which fields changed.
    let (_, summary) = bob.get(&format!("/patients/{id}")).await;
    let desk_name = app.staff(Role::FrontDesk).display_name.clone();
    assert!(summary.contains("<td>Email</td>"), "{summary}");
    assert!(summary.contains(&desk_name));
    let updates = events(&app, Action::Update, &id).await;
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].entry.detail.as_deref(), Some("changed: Email"));
}

#[tokio::test]
async fn leads_merge_and_undo_and_the_front_desk_may_not() {
    let app = TestApp::new().await;
    let desk = Desk::new(&app, Role::FrontDesk).await;
    let lead = Desk::new(&app, Role::Lead).await;
    let survivor = desk.register(&marisol()).await;
    let (_, _, html) = desk.post("/patients/new", &marisol_typo()).await;
    let reviewed = hidden_value(&html, "reviewed").unwrap();
    let duplicate = desk
        .register(&with(
            with(
                marisol_typo(),
                &[
                    ("reviewed", &reviewed),
                    ("override_reason", "caller insisted"),
                ],
            ),
            &[("alerts", "Latex allergy")],
        ))
        .await;
    let merge_page = format!("/patients/{duplicate}/merge");

    // Front desk: refused, and nothing changes.
    assert_eq!(desk.get(&merge_page).await.0, StatusCode::FORBIDDEN);
    let fields = [
        ("other", survivor.as_str()),
        ("survivor", survivor.as_str()),
        ("this_version", "1"),
        ("other_version", "1"),
    ];
    assert_eq!(
        desk.post(&merge_page, &fields).await.0,
        StatusCode::FORBIDDEN
    );

    // The lead finds the survivor among the likely duplicates, compares.
    let (status, html) = lead.get(&merge_page).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Likely duplicates of this record"));
    assert!(html.contains(&format!("other={survivor}")));
    // The listed score is the one the comparison shows (both weigh names by
    // how common they are among the organization's patients).
    let row = &html[html.find(&format!("other={survivor}")).unwrap() - 400..];
    let listed = row[..row.find("Compare").unwrap()]
        .rsplit("<td>")
        .nth(1)
        .and_then(|cell| cell.split('<').next())
        .unwrap()
        .to_string();
    let (status, html) = lead.get(&format!("{merge_page}?other={survivor}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains(&format!("Match score <strong>{listed}</strong>")),
        "score {listed} on the comparison"
    );
    assert!(html.contains("Which record survives?"));
    assert!(html.contains("class=\"differs\""), "differences are marked");

    // Stale versions are refused.
    let stale = [
        ("other", survivor.as_str()),
        ("survivor", survivor.as_str()),
        ("this_version", "1"),
        ("other_version", "9"),
    ];
    let (status, _, html) = lead.post(&merge_page, &stale).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(html.contains("changed since you compared them"));

    let (status, to, _) = lead
        .post(
            &merge_page,
            &[
                ("other", survivor.as_str()),
                ("survivor", survivor.as_str()),
                ("this_version", "1"),
                ("other_version", "1"),
                ("reason", "registered twice"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(to, format!("/patients/{survivor}"));

    let dup = app
        .db
        .get::<Patient>(&app.org_id, &duplicate)
        .await
        .unwrap();
    assert_eq!(dup.value.replaced_by.as_deref(), Some(survivor.as_str()));
    let surv = app.db.get::<Patient>(&app.org_id, &survivor).await.unwrap();
    assert!(surv.value.alerts.contains(&"Latex allergy".to_string()));
    assert!(
        surv.value
            .identifiers
            .iter()
            .any(|i| i.value == dup.value.mrn)
    );
    for id in [&survivor, &duplicate] {
        let merged = events(&app, Action::Merge, id).await;
        assert_eq!(merged.len(), 1, "the merge is audited under {id}");
        let d = merged[0].entry.detail.clone().unwrap();
        assert!(
            d.contains(&format!(
                "Patient/{}",
                if id == &survivor {
                    &duplicate
                } else {
                    &survivor
                }
            )),
            "each event names the other patient: {d}"
        );
    }

    // The duplicate's summary links to the survivor; searches skip it.
    let (_, html) = desk.get(&format!("/patients/{duplicate}")).await;
    assert!(html.contains("This record was merged into"));
    assert!(html.contains(&format!("href=\"/patients/{survivor}\"")));
    assert_eq!(
        desk.get(&format!("/patients/{duplicate}/edit")).await.0,
        StatusCode::CONFLICT,
        "merged records are not edited"
    );
    let (_, results) = desk.get("/patients?q=quintanilla").await;
    assert!(!results.contains(&format!("href=\"/patients/{duplicate}\"")));

    // The survivor lists the merge with an undo button for leads only.
    let merge_id = app.db.patient_merges(&app.org_id, &survivor).await.unwrap()[0]
        .id
        .clone();
    let undo = format!("/patient-merges/{merge_id}/undo");
    let (_, html) = lead.get(&format!("/patients/{survivor}")).await;
    assert!(html.contains("Merged records"));
    assert!(html.contains(&format!("action=\"{undo}\"")));
    assert!(html.contains("registered twice"));

    // The duplicate's history is the survivor's too: its rows, interleaved
    // by time, each marked with the duplicate's MRN; showing it reads the
    // duplicate's record, audited under it.
    let from_duplicate = format!("from MRN {}", dup.value.mrn);
    let history = &html[html.find("id=\"s-history\"").unwrap()..];
    let lines = rows(history);
    let registered_there = lines
        .iter()
        .position(|r| r.contains("Registered") && r.contains(&from_duplicate))
        .expect("the duplicate's registration is in the survivor's history");
    let registered_here = lines
        .iter()
        .position(|r| r.contains("Registered") && !r.contains("from MRN"))
        .expect("the survivor's own registration");
    assert!(
        registered_there < registered_here,
        "newest first: the duplicate was registered after the survivor"
    );
    assert!(
        lines.iter().any(
            |r| r.contains(&format!("merged into MRN {}", surv.value.mrn))
                && r.contains(&from_duplicate)
        ),
        "the duplicate's merge version is there too"
    );
    let history_reads = || async {
        events(&app, Action::Read, &duplicate)
            .await
            .into_iter()
            .filter(|e| {
                e.entry.resource_id.as_deref() == Some(duplicate.as_str())
                    && e.entry.detail.as_deref().is_some_and(|d| {
                        d.starts_with(&format!(
                            "history shown on the summary of Patient/{survivor}"
                        ))
                    })
            })
            .count()
    };
    assert_eq!(
        history_reads().await,
        1,
        "the duplicate's history read is audited"
    );
    let (_, html) = desk.get(&format!("/patients/{survivor}")).await;
    assert!(!html.contains(&undo));
    assert_eq!(desk.post(&undo, &[]).await.0, StatusCode::FORBIDDEN);

    let (status, to, _) = lead.post(&undo, &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(to, format!("/patients/{survivor}"));
    let dup = app
        .db
        .get::<Patient>(&app.org_id, &duplicate)
        .await
        .unwrap();
    assert!(dup.value.replaced_by.is_none());
    assert!(dup.value.active);
    let surv_after = app.db.get::<Patient>(&app.org_id, &survivor).await.unwrap();
    assert!(
        !surv_after
            .value
            .alerts
            .contains(&"Latex allergy".to_string())
    );
    for id in [&survivor, &duplicate] {
        assert_eq!(events(&app, Action::Unmerge, id).await.len(), 1);
    }
    // Undone, the survivor's history shows nothing of the duplicate.
    let reads_before = history_reads().await;
    let (_, html) = lead.get(&format!("/patients/{survivor}")).await;
    let history = &html[html.find("id=\"s-history\"").unwrap()..];
    assert!(
        !history.contains(&from_duplicate),
        "no row of the duplicate after undo"
    );
    assert_eq!(
        history_reads().await,
        reads_before,
        "and no read of its history"
    );
    let (status, _, html) = lead.post(&undo, &[]).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(html.contains("already undone"));
}

#[tokio::test]
async fn every_patient_screen_audits_its_patient() {
    let app = TestApp::new().await;
    let lead = Desk::new(&app, Role::Lead).await;
    let id = lead.register(&marisol()).await;
    for (path, detail) in [
        (format!("/patients/{id}"), "patient summary"),
        (format!("/patients/{id}/edit"), "edit form"),
        (format!("/patients/{id}/merge"), "merge page"),
        (format!("/patients/{id}/coverages/new"), "add coverage form"),
    ] {
        let before = events(&app, Action::Read, &id).await.len();
        let (status, html) = lead.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(html.contains("Needs wheelchair"), "{path} shows the alerts");
        let reads = events(&app, Action::Read, &id).await;
        assert_eq!(reads.len(), before + 1, "{path} is audited");
        assert!(
            reads
                .iter()
                .any(|e| e.entry.detail.as_deref() == Some(detail)
                    && e.entry.resource_id.as_deref() == Some(id.as_str())),
            "{path}"
        );
    }

    // The coverage edit form shows them too.
    let payer = app.db.payers(&app.org_id).await.unwrap()[0].id.clone();
    let (status, _, body) = lead
        .post(
            &format!("/patients/{id}/coverages/new"),
            &[
                ("payer", payer.as_str()),
                ("plan_name", "Choice POS II"),
                ("member_id", "W123456789"),
                ("group_number", ""),
                ("relationship", "self"),
                ("order", "1"),
                ("start", "2026-01-01"),
                ("end", ""),
                ("active", "on"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let coverage = app.db.coverages_of(&app.org_id, &id).await.unwrap()[0]
        .id
        .clone();
    let (status, html) = lead.get(&format!("/coverages/{coverage}/edit")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("Needs wheelchair") && html.contains("Hard of hearing"),
        "the coverage edit form shows the alerts"
    );
}
