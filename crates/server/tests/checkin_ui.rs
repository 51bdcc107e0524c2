//! The guided check-in (`/today/visits/{id}/checkin`) over HTTP,
//! in-process, on SQLite and (with CAREFRONT_TEST_POSTGRES) on PostgreSQL:
//! the date of birth gates everything and a wrong one changes nothing; a
//! changed phone is marked before it is saved, then saved as an edit of
//! the record; outstanding items must be acknowledged and are recorded;
//! who may check in; the CSRF token.

mod common;
mod schedule_setup;

use axum::http::StatusCode;
use carefront_domain::Role;
use carefront_domain::audit::Action;
use carefront_domain::directory::Address;
use carefront_domain::patient::{AddressType, Patient, PatientAddress};
use carefront_domain::scheduling::AppointmentStatus;
use carefront_domain::visit::{VisitStatus, VisitStep};
use carefront_store::{Actor, AppointmentRecord, AuditFilter, FlowActor, new_id};
use common::*;
use jiff::Timestamp;
use schedule_setup::{Derm, Desk, audit_details, dermatology, visit_starting_now};
use std::collections::HashMap;

/// A visit of today with the dermatologist, the patient arrived; returns
/// the appointment's id and the patient's.
async fn arrived_visit(app: &TestApp, d: &Derm, patient: usize) -> (String, String) {
    let (id, _) = visit_starting_now(app, d, patient).await;
    let mut tx = app.db.begin(&app.org_id).await.unwrap();
    tx.visit_step(
        &id,
        &VisitStep::new(VisitStatus::Arrived, None).unwrap(),
        &FlowActor::Staff(Actor::system("kiosk-desk")),
        Timestamp::now(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    (id, d.patients[patient].0.clone())
}

async fn patient(app: &TestApp, id: &str) -> (i64, Patient) {
    let p = app.db.get::<Patient>(&app.org_id, id).await.unwrap();
    (p.version, p.value)
}

async fn visit_path(app: &TestApp, a: &str) -> Vec<VisitStatus> {
    let history = app.db.visit_history(&app.org_id, a).await.unwrap();
    history.iter().map(|e| e.to).collect()
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// A tag's attributes: `name="value"`, or bare (`checked`) as empty.
fn attributes(tag: &str) -> HashMap<String, String> {
    let mut found = HashMap::new();
    let mut rest = tag.trim();
    while !rest.is_empty() {
        let end = rest.find([' ', '=']).unwrap_or(rest.len());
        let name = rest[..end].to_string();
        rest = &rest[end..];
        if let Some(quoted) = rest.strip_prefix("=\"") {
            let close = quoted.find('"').unwrap();
            found.insert(name, unescape(&quoted[..close]));
            rest = &quoted[close + 1..];
        } else {
            found.insert(name, String::new());
        }
        rest = rest.trim_start();
    }
    found
}

/// What the check-in form posts, as a browser would: enabled inputs with
/// their values (checkboxes only when ticked) and each select's choice,
/// nothing inside a disabled fieldset; the buttons are left to the caller.
fn form_fields(html: &str) -> Vec<(String, String)> {
    let start = html.find("id=\"checkin-form\"").expect("the check-in form");
    let form = &html[start..start + html[start..].find("</form>").unwrap()];
    let mut fields = Vec::new();
    // Whether each open fieldset is disabled, itself or by an outer one.
    let mut fieldsets: Vec<bool> = Vec::new();
    let mut rest = form;
    while let Some(open) = rest.find('<') {
        rest = &rest[open + 1..];
        let tag = &rest[..rest.find('>').unwrap()];
        let locked = fieldsets.last().copied().unwrap_or(false);
        if let Some(attrs) = tag.strip_prefix("fieldset") {
            fieldsets.push(locked || attributes(attrs).contains_key("disabled"));
        } else if tag == "/fieldset" {
            fieldsets.pop();
        } else if locked {
            continue;
        } else if let Some(attrs) = tag.strip_prefix("input ") {
            let a = attributes(attrs);
            let checkbox = a.get("type").map(String::as_str) == Some("checkbox");
            if a.contains_key("disabled") || (checkbox && !a.contains_key("checked")) {
                continue;
            }
            fields.push((
                a["name"].clone(),
                a.get("value").cloned().unwrap_or_default(),
            ));
        } else if let Some(attrs) = tag.strip_prefix("select ") {
            let name = attributes(attrs)["name"].clone();
            let options = &rest[..rest.find("</select>").unwrap()];
            let values: Vec<HashMap<String, String>> = options
                .split("<option ")
                .skip(1)
                .map(|o| attributes(&o[..o.find('>').unwrap()]))
                .collect();
            let chosen = values
                .iter()
                .find(|o| o.contains_key("selected"))
                .unwrap_or(&values[0]);
            fields.push((name, chosen["value"].clone()));
        }
    }
    fields
}

fn set(fields: &mut Vec<(String, String)>, name: &str, value: &str) {
    fields.retain(|(k, _)| k != name);
    fields.push((name.to_string(), value.to_string()));
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A US date of birth as the desk types it: `3/14/62`.
fn short_us(p: &Patient) -> String {
    p.birth_date.strftime("%-m/%-d/%y").to_string()
}

/// The page with the date of birth confirmed.
async fn confirmed(desk: &Desk<'_>, path: &str, p: &Patient) -> String {
    let dob = short_us(p);
    let (status, _, html) = desk
        .post(path, &pairs(&[("birth_date", &dob), ("action", "review")]))
        .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("Date of birth confirmed."), "{html}");
    html
}

#[tokio::test]
async fn a_wrong_date_of_birth_refuses_and_changes_nothing() {
    let app = TestApp::new().await;
    let d = dermatology(&app).await;
    let (a, pid) = arrived_visit(&app, &d, 0).await;
    let desk = Desk::new(&app, Role::FrontDesk).await;
    let (version, before) = patient(&app, &pid).await;
    let path = format!("/today/visits/{a}/checkin");

    // The board offers the guided check-in beside the quick step.
    let date = Timestamp::now().to_zoned(d.tz.clone()).date();
    let (_, board) = desk
        .get(&format!("/today?location={}&date={date}", d.location))
        .await;
    assert!(
        board.contains(&format!("id=\"checkin-{a}\" href=\"{path}\"")),
        "{board}"
    );
    assert!(board.contains(&format!("id=\"step-{a}-checked-in\"")));

    let (status, html) = desk.get(&path).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<label for=\"f-birth_date\">Date of birth"));
    assert!(
        html.contains("autofocus"),
        "the cursor waits in the date of birth"
    );
    assert!(
        html.contains("id=\"step-demographics\" disabled"),
        "locked until the date of birth matches"
    );
    assert!(
        !html.contains(&short_us(&before)),
        "the record's date is not shown"
    );
    assert!(!html.contains("style="), "the CSP allows no inline style");
    // Sections in order, each with its state.
    let order: Vec<usize> = [
        "1. Identity",
        "2. Demographics",
        "3. Coverage",
        "4. Forms and consents",
        "5. Amount due",
    ]
    .iter()
    .map(|s| html.find(s).unwrap_or_else(|| panic!("no {s}")))
    .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
    assert!(html.contains("Not confirmed"));
    assert!(html.contains("consent to treatment not signed"));
    assert!(html.contains("shown when billing arrives"));

    let wrong = before
        .birth_date
        .tomorrow()
        .unwrap()
        .strftime("%m/%d/%Y")
        .to_string();
    let mut fields = form_fields(&html);
    set(&mut fields, "birth_date", &wrong);
    set(&mut fields, "action", "review");
    let (status, _, html) = desk.post(&path, &fields).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("role=\"alert\""));
    assert!(
        html.contains("Date of birth does not match the record"),
        "names the field: {html}"
    );
    assert!(html.contains("aria-invalid=\"true\""));
    assert!(html.contains("id=\"step-demographics\" disabled"));

    // Completing with the wrong date and a new phone typed into a forged
    // post: nothing is read, nothing changes.
    let posted = pairs(&[
        ("birth_date", wrong.as_str()),
        ("demographics_shown", "1"),
        ("phones[0].number", "(512) 555-0177"),
        ("reviewed", "phones"),
        ("version", &version.to_string()),
        ("action", "complete"),
    ]);
    let (status, _, html) = desk.post(&path, &posted).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    assert_eq!(patient(&app, &pid).await, (version, before));
    assert_eq!(visit_path(&app, &a).await, [VisitStatus::Arrived]);
    let record = app
        .db
        .get::<AppointmentRecord>(&app.org_id, &a)
        .await
        .unwrap();
    assert_eq!(record.value.appointment.status, AppointmentStatus::Arrived);
    // The attempt is in the audit trail under the patient.
    let reads = audit_details(
        &app,
        AuditFilter {
            patient_id: Some(pid.clone()),
            action: Some(Action::Read),
            ..AuditFilter::default()
        },
    )
    .await;
    assert!(
        reads[0].starts_with("check-in: the date of birth was not confirmed"),
        "{reads:?}"
    );
}

#[tokio::test]
async fn a_changed_phone_is_marked_before_it_is_saved_as_an_edit_of_the_record() {
    let app = TestApp::new().await;
    let d = dermatology(&app).await;
    let (a, pid) = arrived_visit(&app, &d, 1).await;
    let desk = Desk::new(&app, Role::FrontDesk).await;
    // Besides the home address, a mailing address: shown, and kept as it is.
    let (version, mut before) = patient(&app, &pid).await;
    let mut mailing = PatientAddress::home(Address {
        line1: "PO Box 77".into(),
        line2: None,
        city: "Austin".into(),
        state: "TX".into(),
        postal_code: "78767".into(),
        country: "US".into(),
    });
    mailing.type_ = Some(AddressType::Postal);
    before.addresses.push(mailing);
    let mut tx = app.db.begin(&app.org_id).await.unwrap();
    tx.update(&pid, &before, Some(version), "t").await.unwrap();
    tx.commit().await.unwrap();
    let (version, before) = patient(&app, &pid).await;
    let path = format!("/today/visits/{a}/checkin");

    let html = confirmed(&desk, &path, &before).await;
    assert!(
        html.contains("Mailing address: PO Box 77, Austin, TX 78767"),
        "{html}"
    );
    assert!(
        !html.contains("id=\"step-demographics\" disabled"),
        "open now"
    );
    assert!(html.contains("No changes to the demographics."));
    assert!(!html.contains("group changed"));

    // Checking in straight away with a new phone: the change is marked
    // first, nothing saved.
    let mut fields = form_fields(&html);
    set(&mut fields, "phones[0].number", "(512) 555-0177");
    set(&mut fields, "action", "complete");
    let ack = hidden_value(&html, "acknowledge").unwrap();
    set(&mut fields, "acknowledge", &ack);
    let (status, _, html) = desk.post(&path, &fields).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    assert!(
        html.contains("Demographics changed since the page was shown"),
        "{html}"
    );
    assert!(
        html.contains("class=\"group changed\" id=\"group-phones\""),
        "the phones are marked: {html}"
    );
    assert!(html.contains("<span class=\"tag attention\">Changed</span>"));
    assert!(!html.contains("class=\"group changed\" id=\"group-address\""));
    assert_eq!(patient(&app, &pid).await.0, version);
    assert_eq!(visit_path(&app, &a).await, [VisitStatus::Arrived]);

    // A bad email is refused at its field; the phone stays as typed.
    let mut fields = form_fields(&html);
    set(&mut fields, "email", "ana@");
    set(&mut fields, "action", "review");
    let (status, _, bad) = desk.post(&path, &fields).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        bad.contains("href=\"#f-email\">Email 'ana@' is not an email address.</a>"),
        "{bad}"
    );
    assert!(bad.contains("value=\"(512) 555-0177\""));
    assert!(
        bad.contains("class=\"group changed\" id=\"group-phones\""),
        "the marks seen stay while the input does not validate"
    );
    assert_eq!(patient(&app, &pid).await.0, version);

    // Seen marked, then checked in: saved with the step.
    let mut fields = form_fields(&html);
    set(&mut fields, "action", "complete");
    let ack = hidden_value(&html, "acknowledge").unwrap();
    set(&mut fields, "acknowledge", &ack);
    let (status, back, body) = desk.post(&path, &fields).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert!(back.starts_with("/today?"), "{back}");
    assert!(back.contains("done=checked-in"), "{back}");
    assert!(back.contains(&format!("a={a}")), "{back}");
    let (after_version, after) = patient(&app, &pid).await;
    assert_eq!(after_version, version + 1);
    assert_eq!(after.phones[0].number, "+15125550177");
    assert_eq!(after.family, before.family);
    assert_eq!(after.birth_date, before.birth_date);
    assert_eq!(after.addresses, before.addresses);
    assert_eq!(
        visit_path(&app, &a).await,
        [VisitStatus::Arrived, VisitStatus::CheckedIn]
    );
    let record = app
        .db
        .get::<AppointmentRecord>(&app.org_id, &a)
        .await
        .unwrap();
    assert_eq!(
        record.value.appointment.status,
        AppointmentStatus::CheckedIn
    );

    // The patient's history shows the change, by the desk user.
    let history = app.db.history::<Patient>(&app.org_id, &pid).await.unwrap();
    let desk_user = &app.staff(Role::FrontDesk).username;
    assert_eq!(&history[0].changed_by, desk_user);
    let (_, summary) = desk.get(&format!("/patients/{pid}")).await;
    let rows = &summary[summary.find("id=\"s-history\"").unwrap()..];
    assert!(rows.contains("<td>Phones</td>"), "{rows}");
    let updates = audit_details(
        &app,
        AuditFilter {
            resource_type: Some("Patient".into()),
            resource_id: Some(pid.clone()),
            action: Some(Action::Update),
            ..AuditFilter::default()
        },
    )
    .await;
    assert_eq!(updates, ["changed at check-in: Phones"]);
    // The board's notice says who was checked in.
    let (_, board) = desk.get(&back).await;
    assert!(board.contains("id=\"board-notice\""), "{board}");
    app.db
        .verify_audit_chain(&app.org_id, |_| {})
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn checking_in_with_outstanding_items_needs_them_acknowledged_and_records_them() {
    let app = TestApp::new().await;
    let d = dermatology(&app).await;
    let (a, pid) = arrived_visit(&app, &d, 2).await;
    let desk = Desk::new(&app, Role::FrontDesk).await;
    let (version, before) = patient(&app, &pid).await;
    let path = format!("/today/visits/{a}/checkin");
    let html = confirmed(&desk, &path, &before).await;
    let outstanding = &html[html.find("id=\"outstanding\"").unwrap()..];
    assert!(outstanding.contains("<strong>Forms and consents</strong>"));
    assert!(outstanding.contains("<strong>Amount due</strong>"));
    assert!(outstanding.contains("<strong>Coverage</strong>"));
    assert!(
        outstanding
            .contains("<label for=\"f-acknowledge\">Check in with 3 items outstanding</label>"),
        "{outstanding}"
    );
    let ack = hidden_value(&html, "acknowledge").unwrap();

    // Not ticked: refused, named, nothing changes.
    let mut fields = form_fields(&html);
    set(&mut fields, "action", "complete");
    let (status, _, body) = desk.post(&path, &fields).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body.contains("href=\"#f-acknowledge\">The acknowledgement must be ticked to check in with 3 items outstanding."),
        "{body}"
    );
    assert!(body.contains("id=\"f-acknowledge-error\""));
    // Ticked for another list than the one there now.
    set(&mut fields, "acknowledge", "forms:later");
    let (status, _, body) = desk.post(&path, &fields).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("no longer matches"), "{body}");
    assert_eq!(visit_path(&app, &a).await, [VisitStatus::Arrived]);

    set(&mut fields, "acknowledge", &ack);
    let (status, _, body) = desk.post(&path, &fields).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(
        visit_path(&app, &a).await,
        [VisitStatus::Arrived, VisitStatus::CheckedIn]
    );
    assert_eq!(patient(&app, &pid).await.0, version, "nothing to save");
    let visit_events = audit_details(
        &app,
        AuditFilter {
            resource_type: Some("Visit".into()),
            resource_id: Some(a.clone()),
            ..AuditFilter::default()
        },
    )
    .await;
    let recorded = &visit_events[0];
    assert!(
        recorded
            .starts_with("guided check-in: date of birth confirmed; outstanding, acknowledged: "),
        "{recorded}"
    );
    for item in [
        "Coverage (",
        "Forms and consents (consent to treatment not signed",
        "Amount due (shown when billing arrives",
    ] {
        assert!(recorded.contains(item), "{item} in {recorded}");
    }
    assert_eq!(visit_events[1], "status arrived -> checked-in");

    // Checked in: the page says it cannot be done again.
    let (status, html) = desk.get(&path).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        html.contains(
            "Checked in: this visit cannot be checked in (the visit already has this status)."
        ),
        "{html}"
    );
}

#[tokio::test]
async fn roles_without_visit_flow_are_refused_and_unknown_visits_are_not_found() {
    let app = TestApp::new().await;
    let d = dermatology(&app).await;
    let (a, _) = arrived_visit(&app, &d, 0).await;
    let path = format!("/today/visits/{a}/checkin");
    for role in [Role::Billing, Role::Admin, Role::Auditor] {
        let other = Desk::new(&app, role).await;
        let (status, _) = other.get(&path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{role}");
        let (status, _, _) = other.post(&path, &pairs(&[("action", "review")])).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{role}");
    }
    let billing = Desk::new(&app, Role::Billing).await;
    let date = Timestamp::now().to_zoned(d.tz.clone()).date();
    let (_, board) = billing
        .get(&format!("/today?location={}&date={date}", d.location))
        .await;
    assert!(!board.contains("checkin-"), "billing gets no link");
    let clinician = Desk::new(&app, Role::Clinician).await;
    let (status, _) = clinician.get(&path).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = clinician
        .get(&format!("/today/visits/{}/checkin", new_id()))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(visit_path(&app, &a).await, [VisitStatus::Arrived]);
}

#[tokio::test]
async fn a_check_in_needs_the_sessions_csrf_token() {
    let app = TestApp::new().await;
    let d = dermatology(&app).await;
    let (a, pid) = arrived_visit(&app, &d, 0).await;
    let desk = Desk::new(&app, Role::FrontDesk).await;
    let (_, p) = patient(&app, &pid).await;
    let path = format!("/today/visits/{a}/checkin");
    let dob = short_us(&p);
    let fields = [
        ("birth_date", dob.as_str()),
        ("action", "complete"),
        (
            "acknowledge",
            "coverage:attention,forms:attention,payment:later",
        ),
    ];
    let res = app.post_form(&path, &desk.cookie, &fields).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "no token");
    let mut forged = vec![("csrf", "not-the-token")];
    forged.extend_from_slice(&fields);
    let res = app.post_form(&path, &desk.cookie, &forged).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "a wrong token");
    assert_eq!(visit_path(&app, &a).await, [VisitStatus::Arrived]);
}
