//! Scheduling setup for administrators over HTTP, in-process, on SQLite and
//! (with CAREFRONT_TEST_POSTGRES) on PostgreSQL: a template made in the
//! form offers slots on the day view, time off takes them away, opening
//! hours bound them, edits and deletes (once confirmed) keep history and
//! audit; rooms and equipment are added, edited and made bookable; bad
//! input names the field and saves nothing; a stale version is refused;
//! only administrators reach the pages, and only with the form's CSRF
//! token.

mod common;
mod schedule_setup;

use axum::http::{Request, StatusCode, header};
use carefront_domain::Role;
use carefront_domain::audit::Action;
use carefront_domain::directory::{Location, Room, RoomKind, Versioned};
use carefront_domain::scheduling::{
    AppointmentType, ExceptionKind, Modality, OpeningHours, Resource, ResourceKind,
    ScheduleException, Template,
};
use carefront_store::{AuditFilter, LocationOpeningHours, StoreError};
use common::*;
use schedule_setup::{ALL, DERMATOLOGY, Derm, TYPE_ID, dermatology};

const SETUP: &str = "/admin/schedule";
const NEW_TEMPLATE: &str = "/admin/schedule/templates/new";
const NEW_EXCEPTION: &str = "/admin/schedule/exceptions/new";
const NEW_TYPE: &str = "/admin/schedule/types/new";
const NEW_RESOURCE: &str = "/admin/schedule/resources/new";

struct Staff<'a> {
    app: &'a TestApp,
    cookie: String,
    csrf: String,
    username: String,
}

impl<'a> Staff<'a> {
    async fn new(app: &'a TestApp, role: Role) -> Staff<'a> {
        let cookie = app.sign_in(role).await;
        let csrf = app.csrf(&cookie).await;
        let username = app.staff(role).username.clone();
        Staff {
            app,
            cookie,
            csrf,
            username,
        }
    }

    async fn get(&self, path: &str) -> (StatusCode, String) {
        let res = self.app.send(get(path, Some(&self.cookie))).await;
        let status = res.status();
        (status, body_text(res).await)
    }

    /// The page at `path`, which must be answered.
    async fn page(&self, path: &str) -> String {
        let (status, html) = self.get(path).await;
        assert_eq!(status, StatusCode::OK, "GET {path}");
        html
    }

    /// Posts the form with the session's CSRF token: (status, redirect, page).
    async fn post(&self, path: &str, fields: &[(&str, &str)]) -> (StatusCode, String, String) {
        let mut all = vec![("csrf", self.csrf.as_str())];
        all.extend_from_slice(fields);
        let res = self.app.post_form(path, &self.cookie, &all).await;
        let status = res.status();
        let to = location(&res);
        (status, to, body_text(res).await)
    }

    /// Posts the form, which must lead to the overview saying `done`.
    async fn saved(&self, path: &str, fields: &[(&str, &str)], done: &str) {
        let (status, to, _) = self.post(path, fields).await;
        let overview = format!("{SETUP}?done={done}");
        assert_eq!(
            (status, to),
            (StatusCode::SEE_OTHER, overview),
            "POST {path}"
        );
    }

    /// Posts the form, which must be answered with `status` and a page
    /// saying each of `says`; the page.
    async fn refused(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        status: StatusCode,
        says: &[&str],
    ) -> String {
        let (answered, _, html) = self.post(path, fields).await;
        assert_eq!(answered, status, "POST {path}");
        assert_says(&html, says);
        html
    }

    /// [`Staff::refused`] as bad input.
    async fn invalid(&self, path: &str, fields: &[(&str, &str)], says: &[&str]) -> String {
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        self.refused(path, fields, status, says).await
    }
}

/// A form's fields, and what the page refusing them must say.
type Refusal<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str]);

fn assert_says(html: &str, says: &[&str]) {
    for text in says {
        assert!(html.contains(text), "{text:?} is not on the page: {html}");
    }
}

/// Everything the pages may change, and the audit trail's length.
#[derive(Debug, Clone, PartialEq)]
struct Snapshot {
    templates: Vec<(String, i64, Template)>,
    exceptions: Vec<(String, i64, ScheduleException)>,
    types: Vec<(String, i64, AppointmentType)>,
    hours: Vec<(String, i64, LocationOpeningHours)>,
    resources: Vec<(String, i64, Resource)>,
    audit: i64,
}

fn rows<T>(records: Vec<Versioned<T>>) -> Vec<(String, i64, T)> {
    records
        .into_iter()
        .map(|v| (v.id, v.version, v.value))
        .collect()
}

async fn snapshot(app: &TestApp) -> Snapshot {
    let org = app.org_id.as_str();
    let from = jiff::civil::date(2000, 1, 1).at(0, 0, 0, 0);
    let until = jiff::civil::date(2100, 1, 1).at(0, 0, 0, 0);
    let db = &app.db;
    let (locations, _) = db.search::<Location>(org, &[], ALL).await.unwrap();
    let mut hours = Vec::new();
    for l in locations {
        match db.get::<LocationOpeningHours>(org, &l.id).await {
            Ok(h) => hours.push(h),
            Err(StoreError::NotFound) => {}
            Err(e) => panic!("{e}"),
        }
    }
    Snapshot {
        templates: rows(db.templates(org, None).await.unwrap()),
        exceptions: rows(db.schedule_exceptions(org, from, until).await.unwrap()),
        types: rows(db.appointment_types(org, true).await.unwrap()),
        hours: rows(hours),
        resources: rows(db.schedule_resources(org, None).await.unwrap()),
        audit: app.audit_count().await,
    }
}

/// How many audit events `filter` finds (up to 10).
async fn audited(app: &TestApp, filter: AuditFilter) -> i64 {
    let db = &app.db;
    db.audit_events(&app.org_id, &filter, 0, 10)
        .await
        .unwrap()
        .1
}

/// The audit events of `staff`'s `action` on one record.
fn by(staff: &Staff, action: Action, kind: &str, id: &str) -> AuditFilter {
    AuditFilter {
        action: Some(action),
        resource_type: Some(kind.into()),
        resource_id: Some(id.into()),
        actor_name: Some(staff.username.clone()),
        ..Default::default()
    }
}

/// The dermatologist of `schedule_setup` without a template: no slots
/// until one is made.
async fn without_template(app: &TestApp) -> Derm {
    let d = dermatology(app).await;
    let actor = carefront_store::Actor::system("test-setup");
    for t in app
        .db
        .templates(&app.org_id, Some(&d.provider))
        .await
        .unwrap()
    {
        let mut tx = app.db.begin(&app.org_id).await.unwrap();
        tx.delete_template(&t.id, &actor).await.unwrap();
        tx.commit().await.unwrap();
    }
    d
}

const EVERY_DAY: [&str; 7] = ["1", "2", "3", "4", "5", "6", "7"];

/// A template form for the dermatologist: every day from `start` to `end`,
/// dermatology visits only, and a blank second block as the page sends it.
fn template_fields<'a>(
    d: &'a Derm,
    from: &'a str,
    start: &'a str,
    end: &'a str,
) -> Vec<(&'a str, &'a str)> {
    let mut fields = vec![
        ("practitioner_id", d.provider.as_str()),
        ("location_id", d.location.as_str()),
        ("effective_from", from),
        ("effective_until", ""),
        ("overbook_limit", "0"),
    ];
    fields.extend(EVERY_DAY.map(|day| ("rows[0].days", day)));
    fields.extend([
        ("rows[0].start", start),
        ("rows[0].end", end),
        ("rows[0].types", TYPE_ID),
        ("rows[0].overbook", ""),
        ("rows[1].start", ""),
        ("rows[1].end", ""),
        ("rows[1].overbook", ""),
    ]);
    fields
}

async fn day_view(desk: &Staff<'_>, d: &Derm) -> String {
    desk.page(&d.day_path()).await
}

#[tokio::test]
async fn a_template_made_by_an_admin_offers_slots_and_time_off_takes_them_away() {
    let app = TestApp::new().await;
    let d = without_template(&app).await;
    let org = app.org_id.as_str();
    let admin = Staff::new(&app, Role::Admin).await;
    let desk = Staff::new(&app, Role::FrontDesk).await;
    assert!(!day_view(&desk, &d).await.contains(&d.book_link(9, 0)));

    // The Admin page links to the setup, whose forms name the zone.
    let admin_page = admin.page("/admin").await;
    assert!(admin_page.contains("href=\"/admin/schedule\""));
    let html = admin.page(SETUP).await;
    assert!(html.contains("No provider has a weekly template yet"));
    let form = admin
        .page(&format!("{NEW_TEMPLATE}?provider={}", d.provider))
        .await;
    assert!(
        form.contains(d.tz.iana_name().unwrap()),
        "the zone is shown"
    );
    assert!(form.contains("Dermatology visit (20 min)"), "types offered");

    // Every day 9 to noon, from today at the location.
    let today = d.day.yesterday().unwrap().to_string();
    let fields = template_fields(&d, &today, "09:00", "12:00");
    admin.saved(NEW_TEMPLATE, &fields, "template-saved").await;
    let stored = app.db.templates(org, Some(&d.provider)).await.unwrap();
    assert_eq!(stored.len(), 1);
    let t = &stored[0];
    assert_eq!(t.value.location_id, d.location);
    assert_eq!(t.value.blocks.len(), 7, "one block per weekday");
    assert!(
        t.value
            .blocks
            .iter()
            .all(|b| b.appointment_type_ids == [TYPE_ID]
                && b.start.to_string() == "09:00:00"
                && b.end.to_string() == "12:00:00")
    );
    // Audited and kept in history as the administrator.
    let created = AuditFilter {
        action: Some(Action::Create),
        resource_type: Some("ScheduleTemplate".into()),
        resource_id: Some(t.id.clone()),
        ..Default::default()
    };
    let (events, _) = app.db.audit_events(org, &created, 0, 10).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].entry.actor_name, admin.username);
    assert_eq!(events[0].entry.role.as_deref(), Some("admin"));

    // The day view offers the template's slots, in local time.
    let html = day_view(&desk, &d).await;
    assert!(html.contains(&d.book_link(9, 0)), "9:00 AM is offered");
    assert!(html.contains(&d.book_link(11, 40)), "11:40 AM is offered");
    assert!(!html.contains(&d.book_link(12, 0)), "noon is not");
    assert!(!html.contains(&d.book_link(13, 0)), "nor the afternoon");

    // The overview lists it; the edit form shows what is stored.
    let html = admin.page(&format!("{SETUP}?done=template-saved")).await;
    let edit = format!("/admin/schedule/templates/{}/edit", t.id);
    assert_says(
        &html,
        &[
            "The template was saved.",
            "Every day</strong> 9:00 AM–12:00 PM",
            "Dermatology visit",
            &edit,
        ],
    );
    let form = admin.page(&edit).await;
    assert_says(
        &form,
        &[
            "name=\"rows[0].start\" type=\"time\" value=\"09:00\"",
            "name=\"version\" value=\"1\"",
        ],
    );

    // Ending at 11 takes the last hour away; the old version is refused.
    let mut fields = template_fields(&d, &today, "09:00", "11:00");
    fields.push(("version", "1"));
    admin.saved(&edit, &fields, "template-saved").await;
    let html = day_view(&desk, &d).await;
    assert!(html.contains(&d.book_link(10, 40)));
    assert!(!html.contains(&d.book_link(11, 0)));
    let stale = ["was changed by someone else"];
    admin
        .refused(&edit, &fields, StatusCode::CONFLICT, &stale)
        .await;
    let history = app.db.history::<Template>(org, &t.id).await.unwrap();
    assert_eq!(history.len(), 2);
    assert!(history.iter().all(|h| h.changed_by == admin.username));

    // A day off takes every slot of that day away.
    let day = d.day.to_string();
    let form = admin
        .page(&format!(
            "{NEW_EXCEPTION}?kind=time_off&provider={}",
            d.provider
        ))
        .await;
    assert!(form.contains("Leave the times blank for whole days."));
    let day_off = [
        ("kind", "time_off"),
        ("practitioner_id", &d.provider),
        ("start_date", &day),
        ("start_time", ""),
        ("end_date", &day),
        ("end_time", ""),
    ];
    admin
        .saved(NEW_EXCEPTION, &day_off, "exception-saved")
        .await;
    let exceptions = snapshot(&app).await.exceptions;
    assert_eq!(exceptions.len(), 1);
    let (exception_id, _, e) = &exceptions[0];
    assert_eq!(e.start, d.day.at(0, 0, 0, 0));
    assert_eq!(e.end, d.day.tomorrow().unwrap().at(0, 0, 0, 0));
    assert!(
        matches!(&e.kind, ExceptionKind::TimeOff { practitioner_id } if *practitioner_id == d.provider)
    );
    assert!(!day_view(&desk, &d).await.contains(&d.book_link(9, 0)));
    assert_says(&admin.page(SETUP).await, &["Time off", ", all day"]);

    // Time off for one hour instead: only that hour goes.
    let exception_edit = format!("/admin/schedule/exceptions/{exception_id}/edit");
    let form = admin.page(&exception_edit).await;
    assert!(form.contains(&format!(
        "name=\"start_date\" type=\"date\" value=\"{day}\""
    )));
    let one_hour = [
        ("kind", "holiday"),
        ("version", "1"),
        ("practitioner_id", &d.provider),
        ("start_date", &day),
        ("start_time", "10:00"),
        ("end_date", ""),
        ("end_time", "11:00"),
    ];
    admin
        .saved(&exception_edit, &one_hour, "exception-saved")
        .await;
    let exceptions = snapshot(&app).await.exceptions;
    assert!(
        matches!(exceptions[0].2.kind, ExceptionKind::TimeOff { .. }),
        "an edit keeps the kind"
    );
    let html = day_view(&desk, &d).await;
    assert!(html.contains(&d.book_link(9, 40)));
    assert!(!html.contains(&d.book_link(10, 0)));
    assert!(!html.contains(&d.book_link(10, 40)));

    // Deleting takes a ticked "I understand…": without it nothing goes.
    let form = admin.page(&exception_edit).await;
    assert_says(
        &form,
        &[
            "name=\"confirm\" value=\"yes\" required",
            "I understand that this time off will be deleted",
        ],
    );
    let exception_delete = format!("/admin/schedule/exceptions/{exception_id}/delete");
    let template_delete = format!("/admin/schedule/templates/{}/delete", t.id);
    let before_refusal = snapshot(&app).await;
    let unconfirmed = [
        "The “I understand” box must be ticked to delete.",
        "aria-invalid=\"true\" aria-describedby=\"f-confirm-error delete-hint\"",
        "href=\"#f-confirm\"",
    ];
    admin.invalid(&exception_delete, &[], &unconfirmed).await;
    assert_eq!(snapshot(&app).await, before_refusal, "nothing was deleted");
    admin.invalid(&template_delete, &[], &[]).await;
    assert_eq!(snapshot(&app).await, before_refusal, "nothing was deleted");

    // Confirmed, deleting the exception gives the time back; deleting the
    // template takes every slot away.
    let confirmed = [("confirm", "yes")];
    admin
        .saved(&exception_delete, &confirmed, "exception-deleted")
        .await;
    assert!(day_view(&desk, &d).await.contains(&d.book_link(10, 0)));
    admin
        .saved(&template_delete, &confirmed, "template-deleted")
        .await;
    assert!(!day_view(&desk, &d).await.contains(&d.book_link(9, 0)));
    let (status, _) = admin.get(&edit).await;
    assert_eq!(status, StatusCode::GONE);
    let deleted = AuditFilter {
        action: Some(Action::Delete),
        actor_name: Some(admin.username.clone()),
        ..Default::default()
    };
    assert_eq!(audited(&app, deleted).await, 2);
}

#[tokio::test]
async fn bad_input_names_the_field_and_saves_nothing() {
    let app = TestApp::new().await;
    let d = dermatology(&app).await;
    let admin = Staff::new(&app, Role::Admin).await;
    let before = snapshot(&app).await;
    let today = d.day.yesterday().unwrap().to_string();
    let day = d.day.to_string();

    // The end before the start, on the block's row.
    let fields = template_fields(&d, "2031-01-01", "12:00", "09:00");
    let says = [
        "Nothing was saved",
        "id=\"f-rows-0-end-error\"",
        "Block 1 end must be after the start.",
        "aria-invalid=\"true\" aria-describedby=\"f-rows-0-end-error\"",
    ];
    let html = admin.invalid(NEW_TEMPLATE, &fields, &says).await;
    assert!(
        html.contains("href=\"#f-rows-0-end\""),
        "the summary links to the input"
    );
    assert!(html.contains("value=\"09:00\""), "what was typed is kept");
    assert_eq!(
        html.matches("Block 1 end must be after the start").count(),
        2,
        "once in the summary and once at the input, not once per weekday"
    );

    // An appointment type that does not exist (the store's rule).
    let mut fields = template_fields(&d, "2031-01-01", "09:00", "12:00");
    fields.retain(|(k, _)| *k != "rows[0].types");
    fields.push(("rows[0].types", "no-such-type"));
    let says = [
        "id=\"f-rows-0-types-error\"",
        "Block 1 appointment types 'no-such-type' does not exist.",
    ];
    admin.invalid(NEW_TEMPLATE, &fields, &says).await;

    // A date that does not exist, and a time that is not one.
    let fields = template_fields(&d, "2026-02-30", "9 o'clock", "12:00");
    let says = [
        "id=\"f-effective_from-error\"",
        "Effective from '2026-02-30' is not a date",
        "id=\"f-rows-0-start-error\"",
    ];
    admin.invalid(NEW_TEMPLATE, &fields, &says).await;

    // Overlapping the provider's template (9–12 and 1–5 every day), named
    // by place and date rather than id.
    let fields = template_fields(&d, &today, "10:00", "11:00");
    let overlap = format!(
        "Block 1 start overlaps the provider's template at {} from",
        d.location_name
    );
    admin.invalid(NEW_TEMPLATE, &fields, &[&overlap]).await;
    // Blocks overlapping each other are named by row, not by weekday block.
    let mut fields: Vec<_> = fields
        .into_iter()
        .filter(|(k, _)| !k.starts_with("rows[1]"))
        .collect();
    fields.extend([
        ("rows[1].days", "3"),
        ("rows[1].start", "10:30"),
        ("rows[1].end", "10:45"),
    ]);
    let says = ["Block 2 start overlaps block 1 on the same weekday."];
    admin.invalid(NEW_TEMPLATE, &fields, &says).await;

    // No block at all.
    let fields = [
        ("practitioner_id", d.provider.as_str()),
        ("location_id", d.location.as_str()),
        ("effective_from", "2031-01-01"),
        ("rows[0].start", ""),
    ];
    let says = ["Weekly hours need at least one block"];
    admin.invalid(NEW_TEMPLATE, &fields, &says).await;

    // Exceptions: blocked time ending before it starts, a bad date, a
    // provider that does not exist, an extra session without its end or
    // with a type that does not exist.
    let blocked = format!("practitioner:{}", d.provider);
    let extra_session = [
        ("kind", "extra_session"),
        ("practitioner_id", &d.provider),
        ("location_id", &d.location),
        ("start_date", &day),
        ("start_time", "18:00"),
    ];
    let endless = [&extra_session[..], &[("end_time", "")]].concat();
    let unknown_type = [
        &extra_session[..],
        &[("end_time", "19:00"), ("types", "no-such-type")],
    ]
    .concat();
    let exceptions: [Refusal; 5] = [
        (
            &[
                ("kind", "blocked"),
                ("target", &blocked),
                ("reason", "Staff meeting"),
                ("start_date", &day),
                ("start_time", "13:00"),
                ("end_time", "12:00"),
            ],
            &[
                "id=\"f-end_time-error\"",
                "End time must be after the start.",
                "value=\"Staff meeting\"",
            ],
        ),
        (
            &[
                ("kind", "time_off"),
                ("practitioner_id", &d.provider),
                ("start_date", "next tuesday"),
            ],
            &["id=\"f-start_date-error\""],
        ),
        (
            &[
                ("kind", "time_off"),
                ("practitioner_id", "nobody"),
                ("start_date", &day),
            ],
            &["Provider 'nobody' does not exist."],
        ),
        (&endless, &["id=\"f-end_time-error\""]),
        (
            &unknown_type,
            &[
                "id=\"f-types-error\"",
                "Appointment types 'no-such-type' does not exist.",
            ],
        ),
    ];
    for (fields, says) in exceptions {
        admin.invalid(NEW_EXCEPTION, fields, says).await;
    }

    // Appointment types: a duration off the 5-minute grid, a code that
    // cannot be part of an address.
    let long_visit = [
        ("name", "Long dermatology visit"),
        ("duration_minutes", "12"),
        ("color", "#123456"),
        ("modality", "in_person"),
        ("eligibility", "any"),
        ("max_days_ahead", "90"),
    ];
    let mut fields = vec![("id", "derm/long"), ("specialties", DERMATOLOGY)];
    fields.extend(long_visit);
    admin
        .invalid(NEW_TYPE, &fields, &["id=\"f-id-error\""])
        .await;
    let says = [
        "id=\"f-duration_minutes-error\"",
        "Specialties or providers: tick at least one",
    ];
    admin.invalid(NEW_TYPE, &long_visit, &says).await;

    assert_eq!(snapshot(&app).await, before, "nothing was written");
}

#[tokio::test]
async fn appointment_types_are_added_and_edited() {
    let app = TestApp::new().await;
    let d = dermatology(&app).await;
    let admin = Staff::new(&app, Role::Admin).await;
    let derm_long = async || {
        let db = &app.db;
        db.get::<AppointmentType>(&app.org_id, "derm-long")
            .await
            .unwrap()
    };
    let fields = [
        ("id", "derm-long"),
        ("name", "Long dermatology visit"),
        ("duration_minutes", "40"),
        ("color", "#123456"),
        ("modality", "in_person"),
        ("eligibility", "established"),
        ("resource_kind", "procedure_room"),
        ("specialties", DERMATOLOGY),
        ("min_notice_minutes", "60"),
        ("max_days_ahead", "90"),
        ("instructions", "Arrive 10 minutes early."),
        ("active", "on"),
    ];
    admin.saved(NEW_TYPE, &fields, "type-saved").await;
    let t = derm_long().await;
    assert_eq!(t.value.duration_minutes, 40);
    assert_eq!(t.value.modality, Modality::InPerson);
    assert_eq!(t.value.specialties, [DERMATOLOGY]);
    assert_eq!(
        t.value.instructions.as_deref(),
        Some("Arrive 10 minutes early.")
    );
    // The same code again is refused at the code.
    let taken = ["Code is already used by another appointment type."];
    admin
        .refused(NEW_TYPE, &fields, StatusCode::CONFLICT, &taken)
        .await;

    // Deactivated (the box left unticked), it is no longer offered.
    let edit = "/admin/schedule/types/derm-long/edit";
    let form = admin.page(edit).await;
    assert!(form.contains("value=\"Long dermatology visit\""));
    let mut fields: Vec<(&str, &str)> = fields
        .into_iter()
        .filter(|(k, _)| *k != "active" && *k != "id")
        .collect();
    fields.push(("version", "1"));
    admin.saved(edit, &fields, "type-saved").await;
    let t = derm_long().await;
    assert!(!t.value.active);
    assert_eq!(t.version, 2);
    assert!(admin.page(SETUP).await.contains("Long dermatology visit"));
    let form = admin
        .page(&format!("{NEW_TEMPLATE}?provider={}", d.provider))
        .await;
    assert!(
        !form.contains("Long dermatology visit"),
        "inactive types are not offered"
    );
}

#[tokio::test]
async fn only_administrators_reach_the_pages_and_only_with_the_form_token() {
    let app = TestApp::new().await;
    let d = dermatology(&app).await;
    let before = snapshot(&app).await;
    let today = d.day.yesterday().unwrap().to_string();
    let fields = template_fields(&d, &today, "18:00", "19:00");
    let hours = format!("/admin/schedule/locations/{}/hours", d.location);
    let resource_edit = "/admin/schedule/resources/any-id/edit";

    for role in [Role::FrontDesk, Role::Lead, Role::Clinician] {
        let staff = Staff::new(&app, role).await;
        for path in [
            SETUP,
            NEW_TEMPLATE,
            "/admin/schedule/exceptions/new?kind=holiday",
            NEW_TYPE,
            &hours,
            NEW_RESOURCE,
            resource_edit,
        ] {
            let (status, _) = staff.get(path).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{role} GET {path}");
        }
        let posts: [(&str, &[(&str, &str)]); 5] = [
            (NEW_TEMPLATE, &fields),
            (
                &hours,
                &[
                    ("hours[0].weekday", "1"),
                    ("hours[0].open", "06:00"),
                    ("hours[0].close", "22:00"),
                ],
            ),
            (
                NEW_RESOURCE,
                &[
                    ("name", "Cart"),
                    ("kind", "ecg_machine"),
                    ("location_id", &d.location),
                ],
            ),
            (
                resource_edit,
                &[
                    ("name", "Renamed"),
                    ("kind", "exam_room"),
                    ("location_id", &d.location),
                ],
            ),
            (
                "/admin/schedule/resources/rooms",
                &[("room_id", "any-room")],
            ),
        ];
        for (path, fields) in posts {
            let (status, _, _) = staff.post(path, fields).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{role} POST {path}");
        }
    }
    let admin = Staff::new(&app, Role::Admin).await;
    let after_refusals = snapshot(&app).await;
    assert!(after_refusals.audit > before.audit, "refusals are audited");
    assert_eq!(
        Snapshot {
            audit: before.audit,
            ..after_refusals.clone()
        },
        before,
        "nothing was written"
    );

    // Without the token, with another one, or from another site: refused.
    let res = app.post_form(NEW_TEMPLATE, &admin.cookie, &fields).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(body_text(res).await.contains("Form expired"));
    let mut forged = vec![("csrf", "not-the-token")];
    forged.extend_from_slice(&fields);
    let res = app.post_form(NEW_TEMPLATE, &admin.cookie, &forged).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let mut signed = vec![("csrf", admin.csrf.as_str())];
    signed.extend_from_slice(&fields);
    let res = app
        .send(
            Request::post(NEW_TEMPLATE)
                .header(header::COOKIE, &admin.cookie)
                .header(header::ORIGIN, "https://evil.example")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(form_body(&signed).into())
                .unwrap(),
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let nothing = "/admin/schedule/exceptions/nothing-here/delete";
    admin
        .refused(nothing, &[("confirm", "yes")], StatusCode::NOT_FOUND, &[])
        .await;
    assert_eq!(snapshot(&app).await, after_refusals, "nothing was written");

    // With it, the same form saves.
    admin.saved(NEW_TEMPLATE, &fields, "template-saved").await;
}

/// The hours form's fields: `lines` of (weekday, open, close), and a blank
/// line as the page sends it.
fn hours_fields<'a>(
    lines: &'a [(String, &'a str, &'a str)],
    version: &'a str,
) -> Vec<(String, &'a str)> {
    let mut fields = vec![("version".to_string(), version)];
    for (i, (day, open, close)) in lines.iter().enumerate() {
        fields.push((format!("hours[{i}].weekday"), day.as_str()));
        fields.push((format!("hours[{i}].open"), open));
        fields.push((format!("hours[{i}].close"), close));
    }
    let blank = lines.len();
    for name in ["weekday", "open", "close"] {
        fields.push((format!("hours[{blank}].{name}"), ""));
    }
    fields
}

fn as_pairs<'a>(fields: &'a [(String, &'a str)]) -> Vec<(&'a str, &'a str)> {
    fields.iter().map(|(k, v)| (k.as_str(), *v)).collect()
}

#[tokio::test]
async fn opening_hours_edited_by_an_admin_bound_the_free_slots() {
    let app = TestApp::new().await;
    let d = dermatology(&app).await;
    let org = app.org_id.as_str();
    let admin = Staff::new(&app, Role::Admin).await;
    let desk = Staff::new(&app, Role::FrontDesk).await;
    // Open 7 AM to 7 PM every day: the whole template is offered.
    let html = day_view(&desk, &d).await;
    assert!(html.contains(&d.book_link(9, 0)));
    assert!(html.contains(&d.book_link(16, 40)));

    let path = format!("/admin/schedule/locations/{}/hours", d.location);
    let overview = admin.page(SETUP).await;
    assert!(overview.contains(&format!("href=\"{path}\"")), "{overview}");
    let form = admin.page(&path).await;
    assert!(
        form.contains(d.tz.iana_name().unwrap()),
        "the zone is shown"
    );
    assert!(
        form.contains("name=\"hours[0].open\" type=\"time\" value=\"07:00\""),
        "{form}"
    );
    let version = hidden_value(&form, "version").unwrap();

    // The day of the view opens 10 to 4, the others stay 7 to 7.
    let weekday = d.day.weekday().to_monday_one_offset();
    let lines: Vec<(String, &str, &str)> = (1..=7)
        .map(|w| match w == weekday {
            true => (w.to_string(), "10:00", "16:00"),
            false => (w.to_string(), "07:00", "19:00"),
        })
        .collect();
    let fields = hours_fields(&lines, &version);
    admin.saved(&path, &as_pairs(&fields), "hours-saved").await;
    let html = day_view(&desk, &d).await;
    assert!(!html.contains(&d.book_link(9, 0)), "closed at 9");
    assert!(html.contains(&d.book_link(10, 0)));
    assert!(html.contains(&d.book_link(15, 40)));
    assert!(!html.contains(&d.book_link(16, 0)), "closed at 4");
    let stored = app.db.location_hours(org, &d.location).await.unwrap();
    assert_eq!(stored.opening_hours.len(), 7);
    assert!(stored.opening_hours.contains(&OpeningHours {
        weekday: weekday as u8,
        open: "10:00".parse().unwrap(),
        close: "16:00".parse().unwrap(),
    }));
    let updated = by(&admin, Action::Update, "LocationHours", &d.location);
    assert_eq!(audited(&app, updated).await, 1);
    let overview = admin.page(&format!("{SETUP}?done=hours-saved")).await;
    assert_says(
        &overview,
        &["The opening hours were saved.", "10:00 AM–4:00 PM"],
    );

    // The same version again is stale: refused, nothing changes.
    let before = snapshot(&app).await;
    let stale = ["was changed by someone else"];
    let page = admin
        .refused(&path, &as_pairs(&fields), StatusCode::CONFLICT, &stale)
        .await;
    assert!(page.contains("value=\"10:00\""), "what was typed is kept");
    assert_eq!(snapshot(&app).await, before);
}

#[tokio::test]
async fn bad_opening_hours_name_the_line_and_save_nothing() {
    let app = TestApp::new().await;
    let d = dermatology(&app).await;
    let admin = Staff::new(&app, Role::Admin).await;
    let path = format!("/admin/schedule/locations/{}/hours", d.location);
    let form = admin.page(&path).await;
    let version = hidden_value(&form, "version").unwrap();
    let before = snapshot(&app).await;

    // Closing before opening and an unknown weekday: the domain's rules,
    // each on its line.
    let lines = [
        ("1".to_string(), "12:00", "09:00"),
        ("8".to_string(), "09:00", "17:00"),
    ];
    let says = [
        "Nothing was saved",
        "Line 1 closing time must be after the opening time.",
        "aria-invalid=\"true\" aria-describedby=\"f-hours-0-close-error\"",
        "href=\"#f-hours-0-close\"",
        "id=\"f-hours-1-weekday-error\"",
        "Line 2 day must be a day of the week, Monday to Sunday.",
    ];
    let fields = hours_fields(&lines, &version);
    let html = admin.invalid(&path, &as_pairs(&fields), &says).await;
    assert!(html.contains("value=\"12:00\""), "what was typed is kept");

    // What cannot be read: a weekday that is not one, a time that is not
    // one, a line without its day.
    let lines = [
        ("Funday".to_string(), "09:00", "17:00"),
        ("2".to_string(), "9 o'clock", "17:00"),
        (String::new(), "09:00", "17:00"),
    ];
    let says = [
        "Line 1 day 'Funday' is not a day of the week.",
        "id=\"f-hours-1-open-error\"",
        "Line 3 day is required.",
    ];
    let fields = hours_fields(&lines, &version);
    admin.invalid(&path, &as_pairs(&fields), &says).await;

    // A location that does not exist.
    let fields = hours_fields(&[], "0");
    let nowhere = "/admin/schedule/locations/nowhere/hours";
    admin
        .refused(nowhere, &as_pairs(&fields), StatusCode::NOT_FOUND, &[])
        .await;
    assert_eq!(snapshot(&app).await, before, "nothing was written");
}

#[tokio::test]
async fn rooms_and_equipment_are_added_edited_and_made_bookable() {
    let app = TestApp::new().await;
    let d = dermatology(&app).await;
    let org = app.org_id.as_str();
    let admin = Staff::new(&app, Role::Admin).await;
    let before = snapshot(&app).await;

    // Bad input names the field and saves nothing.
    let form = admin.page(NEW_RESOURCE).await;
    assert!(form.contains("ECG machine"), "the kinds are offered");
    let location = d.location.as_str();
    let bad = [
        (
            [
                ("name", "X-ray"),
                ("kind", "x_ray"),
                ("location_id", location),
            ],
            "id=\"f-kind-error\"",
            "Kind is not a kind of room or equipment.",
        ),
        (
            [
                ("name", ""),
                ("kind", "ecg_machine"),
                ("location_id", location),
            ],
            "id=\"f-name-error\"",
            "Name is required.",
        ),
        (
            [
                ("name", "ECG cart"),
                ("kind", "ecg_machine"),
                ("location_id", "nowhere"),
            ],
            "id=\"f-location_id-error\"",
            "Location 'nowhere' does not exist.",
        ),
    ];
    for (fields, error_id, message) in bad {
        admin
            .invalid(NEW_RESOURCE, &fields, &[error_id, message])
            .await;
    }
    assert_eq!(snapshot(&app).await, before, "nothing was written");

    // A piece of equipment, audited as the administrator.
    let fields = [
        ("name", "ECG cart"),
        ("kind", "ecg_machine"),
        ("location_id", location),
        ("active", "on"),
    ];
    admin.saved(NEW_RESOURCE, &fields, "resource-saved").await;
    let resources = app
        .db
        .schedule_resources(org, Some(&d.location))
        .await
        .unwrap();
    let cart = resources
        .iter()
        .find(|r| r.value.name == "ECG cart")
        .unwrap();
    assert_eq!(cart.value.kind, ResourceKind::EcgMachine);
    assert!(cart.value.active);
    let created = by(&admin, Action::Create, "ScheduleResource", &cart.id);
    assert_eq!(audited(&app, created).await, 1);
    let overview = admin.page(&format!("{SETUP}?done=resource-saved")).await;
    let edit = format!("/admin/schedule/resources/{}/edit", cart.id);
    assert_says(&overview, &["The room or equipment was saved.", &edit]);

    // Renamed and deactivated (the box left unticked); the old version is
    // refused.
    let form = admin.page(&edit).await;
    assert!(form.contains("value=\"ECG cart\""));
    let version = hidden_value(&form, "version").unwrap();
    let fields = [
        ("name", "ECG cart 2"),
        ("kind", "ecg_machine"),
        ("location_id", location),
        ("version", version.as_str()),
    ];
    admin.saved(&edit, &fields, "resource-saved").await;
    let stale = ["was changed by someone else"];
    admin
        .refused(&edit, &fields, StatusCode::CONFLICT, &stale)
        .await;
    let history = app.db.history::<Resource>(org, &cart.id).await.unwrap();
    assert_eq!(history.len(), 2);
    let stored = app.db.get::<Resource>(org, &cart.id).await.unwrap();
    assert_eq!(stored.value.name, "ECG cart 2");
    assert!(!stored.value.active);

    // A directory room that is not bookable yet becomes bookable, once.
    let room = Room {
        location_id: d.location.clone(),
        name: "Procedure 9".into(),
        kind: RoomKind::Procedure,
    };
    let mut tx = app.db.begin(org).await.unwrap();
    let room_id = tx
        .create(&carefront_store::new_id(), &room, "test-setup")
        .await
        .unwrap()
        .id;
    tx.commit().await.unwrap();
    let form = admin.page(NEW_RESOURCE).await;
    assert!(form.contains(&format!("value=\"{room_id}\"")), "{form}");
    let (rooms, fields) = (
        "/admin/schedule/resources/rooms",
        [("room_id", room_id.as_str())],
    );
    admin.saved(rooms, &fields, "resource-saved").await;
    let bookable = app.db.get::<Resource>(org, &room_id).await.unwrap().value;
    assert_eq!(bookable.kind, ResourceKind::ProcedureRoom);
    assert_eq!(bookable.name, "Procedure 9");
    let taken = ["Directory room is bookable already."];
    admin
        .refused(rooms, &fields, StatusCode::CONFLICT, &taken)
        .await;
}
