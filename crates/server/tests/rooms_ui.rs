//! Rooms and supplies over HTTP, in-process, on SQLite and (with
//! CAREFRONT_TEST_POSTGRES) on PostgreSQL: an administrator sets each room
//! kind's cleaning checklist and supply par levels at `/admin/rooms` (a bad
//! line is named and nothing saved, a stale form is refused) and the wait
//! thresholds the board uses; the desk counts supplies on the rooms board,
//! which opens, updates and closes the room's restock task, and closes
//! tasks as done or dismissed, audited; who may do what.

mod common;
mod schedule_setup;

use axum::http::StatusCode;
use carefront_domain::Role;
use carefront_domain::directory::RoomKind;
use carefront_domain::visit::{RoomChecklist, SupplyPar, WaitThresholds};
use carefront_store::{AuditFilter, RestockTask, TaskStatus};
use common::*;
use schedule_setup::{Derm, Desk, audit_details, dermatology};

const SUPPLIES: &str = "Gloves (box): 4\nGauze: 20";

/// The part of a page inside the element with `id` up to the end of its
/// section.
fn section<'h>(html: &'h str, id: &str) -> &'h str {
    let start = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in {html}"));
    let end = html[start..].find("</section>").unwrap() + start;
    &html[start..end]
}

/// The version the exam rooms' form carries.
async fn exam_version(admin: &Desk<'_>) -> String {
    let (status, html) = admin.get("/admin/rooms").await;
    assert_eq!(status, StatusCode::OK);
    hidden_value(section(&html, "checklist-exam"), "version").unwrap()
}

async fn save_exam(
    admin: &Desk<'_>,
    version: &str,
    cleaning: &str,
    supplies: &str,
) -> (StatusCode, String, String) {
    let fields = [
        ("kind", "exam"),
        ("version", version),
        ("cleaning", cleaning),
        ("supplies", supplies),
    ];
    admin.post("/admin/rooms", &fields).await
}

async fn exam_checklist(app: &TestApp) -> Option<RoomChecklist> {
    let stored = app.db.room_checklist(&app.org_id, RoomKind::Exam).await;
    stored.unwrap().map(|c| c.value)
}

/// The first exam room at the dermatologist's location: (id, name).
async fn exam_room(app: &TestApp, d: &Derm) -> (String, String) {
    let board = app.db.room_board(&app.org_id, &d.location).await.unwrap();
    let r = board.rooms.into_iter().find(|r| r.kind == RoomKind::Exam);
    let r = r.expect("the demo location has an exam room");
    (r.room_id, r.name)
}

async fn restock(app: &TestApp, d: &Derm, status: TaskStatus) -> Vec<RestockTask> {
    app.db
        .restock_tasks(&app.org_id, &d.location, status)
        .await
        .unwrap()
}

fn rooms_board(d: &Derm) -> String {
    format!("/today/rooms?location={}", d.location)
}

/// The rooms of the board events of the location after `after`: what
/// open boards of the location are told.
async fn rooms_told(app: &TestApp, d: &Derm, after: i64) -> Vec<String> {
    let events = app
        .db
        .board_events_since(&app.org_id, &d.location, after, 100)
        .await
        .unwrap();
    events
        .into_iter()
        .flat_map(|e| e.change.rooms.into_iter().map(|r| r.room_id))
        .collect()
}

/// A count posted from the board's form: (status, Location, body).
async fn count(
    desk: &Desk<'_>,
    room: &str,
    gloves: &str,
    gauze: &str,
) -> (StatusCode, String, String) {
    let fields = [
        ("change", "count"),
        ("item", "Gloves (box)"),
        ("on_hand", gloves),
        ("item", "Gauze"),
        ("on_hand", gauze),
    ];
    desk.post(&format!("/today/rooms/{room}"), &fields).await
}

/// The exam rooms' checklist saved through the admin page.
async fn set_up_exam_supplies(app: &TestApp) {
    let admin = Desk::new(app, Role::Admin).await;
    let version = exam_version(&admin).await;
    let (status, _, body) = save_exam(&admin, &version, "Wipe table", SUPPLIES).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
}

fn restock_filter(id: &str) -> AuditFilter {
    AuditFilter {
        resource_type: Some("RestockTask".into()),
        resource_id: Some(id.into()),
        ..AuditFilter::default()
    }
}

#[tokio::test]
async fn an_admin_sets_supplies_and_par_levels_and_the_board_offers_their_count() {
    let app = TestApp::new().await;
    let d = dermatology(&app).await;
    let admin = Desk::new(&app, Role::Admin).await;
    let (_, home) = admin.get("/admin").await;
    assert!(home.contains("href=\"/admin/rooms\""));
    let (status, html) = admin.get("/admin/rooms").await;
    assert_eq!(status, StatusCode::OK);
    for kind in ["exam", "procedure", "consult", "ultrasound"] {
        let form = section(&html, &format!("checklist-{kind}"));
        assert!(form.contains(&format!("<label for=\"f-{kind}-cleaning\">")));
        assert!(form.contains(&format!("<label for=\"f-{kind}-supplies\">")));
    }
    assert!(!html.contains("style="), "the CSP allows no inline style");
    let version = exam_version(&admin).await;
    assert_eq!(version, "0", "nothing saved yet");

    let (status, to, body) = save_exam(
        &admin,
        &version,
        "Wipe table\n\n  Replace paper  ",
        SUPPLIES,
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(to, "/admin/rooms?saved=exam");
    let saved = exam_checklist(&app).await.unwrap();
    assert_eq!(saved.cleaning, ["Wipe table", "Replace paper"]);
    assert_eq!(
        saved.supplies,
        [
            SupplyPar {
                item: "Gloves (box)".into(),
                par: 4
            },
            SupplyPar {
                item: "Gauze".into(),
                par: 20
            }
        ]
    );
    let (_, html) = admin.get(&to).await;
    let exam = section(&html, "checklist-exam");
    assert!(exam.contains("Saved. Exam rooms now use this checklist"));
    assert!(
        exam.contains(">Gloves (box): 4\nGauze: 20</textarea>"),
        "{exam}"
    );
    assert_eq!(hidden_value(exam, "version").unwrap(), "1");
    let filter = AuditFilter {
        resource_type: Some("RoomChecklist".into()),
        ..AuditFilter::default()
    };
    let (events, _) = app
        .db
        .audit_events(&app.org_id, &filter, 0, 10)
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].entry.actor_name, app.staff(Role::Admin).username);

    // The desk's rooms board offers each exam room's count, labelled.
    let (room, room_name) = exam_room(&app, &d).await;
    let desk = Desk::new(&app, Role::FrontDesk).await;
    let (status, html) = desk.get(&rooms_board(&d)).await;
    assert_eq!(status, StatusCode::OK);
    let counts = section(&html, "counts-title");
    let form = &counts[counts.find(&format!("id=\"count-{room}\"")).unwrap()..];
    assert!(form.contains(&room_name));
    assert!(form.contains(&format!(
        "<label for=\"count-{room}-0\">Gloves (box) <span class=\"hint\">(par 4)</span></label>"
    )));
    assert!(form.contains(&format!("id=\"count-{room}-1\" type=\"number\"")));
    assert!(html.contains("No supplies are waiting to be restocked"));
    // Kinds without supplies have no count.
    let board = app.db.room_board(&app.org_id, &d.location).await.unwrap();
    for r in board.rooms.iter().filter(|r| r.kind != RoomKind::Exam) {
        assert!(!html.contains(&format!("id=\"count-{}\"", r.room_id)));
    }
}

#[tokio::test]
async fn a_bad_line_is_named_at_its_field_and_nothing_is_saved() {
    let app = TestApp::new().await;
    let admin = Desk::new(&app, Role::Admin).await;
    let version = exam_version(&admin).await;
    let supplies = "Gauze: 20\ngloves: many\nMasks\nGauze: 0";
    let cleaning = "Wipe table\nwipe table";
    let (status, _, html) = save_exam(&admin, &version, cleaning, supplies).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let exam = section(&html, "checklist-exam");
    for message in [
        "Supplies line 2 (“gloves: many”): the par level must be a whole number",
        "Supplies line 3 (“Masks”): the par level is missing; write it after a colon, as “Gloves (box): 4”",
        "Supplies line 4 (“Gauze: 0”): the item is listed twice",
        "Supplies line 4 (“Gauze: 0”): the par level must be 1 to 10000",
        "Cleaning checklist line 2 (“wipe table”) is listed twice",
    ] {
        // In the summary, linked to its field, and at the field.
        assert!(
            exam.contains(&format!("{message}</a>")),
            "{message}: {exam}"
        );
        assert!(exam.contains(&format!("{message}. ")), "{message}: {exam}");
    }
    assert!(exam.contains("href=\"#f-exam-supplies\""));
    assert!(exam.contains("id=\"f-exam-supplies-error\""));
    assert!(exam.contains("aria-invalid=\"true\""));
    assert!(
        exam.contains(&format!(">{supplies}</textarea>")),
        "kept as typed"
    );
    assert!(!section(&html, "checklist-procedure").contains("aria-invalid"));
    assert_eq!(exam_checklist(&app).await, None);
    let filter = AuditFilter {
        resource_type: Some("RoomChecklist".into()),
        ..AuditFilter::default()
    };
    assert!(audit_details(&app, filter).await.is_empty());

    let (status, _, _) = admin
        .post("/admin/rooms", &[("kind", "garage"), ("version", "0")])
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_form_shown_before_someone_elses_save_is_refused_and_keeps_what_was_typed() {
    let app = TestApp::new().await;
    let admin = Desk::new(&app, Role::Admin).await;
    let other = Desk::new(&app, Role::Admin).await;
    let version = exam_version(&admin).await;
    let (status, _, _) = save_exam(&other, &version, "Theirs", "Gauze: 10").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let theirs = exam_checklist(&app).await.unwrap();

    let (status, _, html) = save_exam(&admin, &version, "Mine", SUPPLIES).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let exam = section(&html, "checklist-exam");
    assert!(
        exam.contains(
            "This checklist was saved by someone else meanwhile: check it, then save again to replace it with yours"
        ),
        "{exam}"
    );
    assert!(exam.contains("Supplies: Gauze: 10"), "theirs is shown");
    assert!(exam.contains(">Mine</textarea>"), "mine is kept");
    assert!(exam.contains(&format!(">{SUPPLIES}</textarea>")));
    assert_eq!(exam_checklist(&app).await.unwrap(), theirs);

    // Saving again, having seen theirs, replaces it.
    let newer = hidden_value(exam, "version").unwrap();
    let (status, _, _) = save_exam(&admin, &newer, "Mine", SUPPLIES).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(exam_checklist(&app).await.unwrap().cleaning, ["Mine"]);
    // A stale version of an update is refused too.
    let (status, _, _) = save_exam(&other, &newer, "Theirs again", "").await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(exam_checklist(&app).await.unwrap().cleaning, ["Mine"]);
}

#[tokio::test]
async fn a_count_below_par_opens_a_restock_task_and_a_full_count_closes_it() {
    let app = TestApp::new().await;
    let d = dermatology(&app).await;
    set_up_exam_supplies(&app).await;
    let (room, room_name) = exam_room(&app, &d).await;
    let desk = Desk::new(&app, Role::FrontDesk).await;

    // A count that is not a number is refused at its input.
    let (status, _, html) = count(&desk, &room, "many", "").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains(&format!(
        "Nothing was changed for {room_name}. Gloves (box): “many” is not a whole number. Gauze: enter how many are there (0 if none)."
    )));
    let form = section(&html, "counts-title");
    let form = &form[form.find(&format!("id=\"count-{room}\"")).unwrap()..];
    assert!(form.contains(" open>"), "the refused count stays open");
    assert!(form.contains("value=\"many\""), "kept as typed");
    assert!(form.contains(&format!("aria-describedby=\"count-{room}-0-error\"")));
    assert!(restock(&app, &d, TaskStatus::Open).await.is_empty());

    let seq = app.db.board_seq(&app.org_id, &d.location).await.unwrap();
    let (status, back, body) = count(&desk, &room, "1", "20").await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    // Open rooms boards learn of it (and reload their table).
    assert_eq!(rooms_told(&app, &d, seq).await, [room.as_str()]);
    let open = restock(&app, &d, TaskStatus::Open).await;
    assert_eq!(open.len(), 1);
    let task = &open[0];
    assert_eq!(task.room_id, room);
    assert_eq!(task.created_by, app.staff(Role::FrontDesk).username);
    let (_, html) = desk.get(&back).await;
    assert!(
        html.contains(&format!(
            "{room_name}: supplies counted. Short: 3 Gloves (box). The restock task is open."
        )),
        "{html}"
    );
    let row = section(&html, "restock-title");
    let row = &row[row.find(&format!("id=\"restock-{}\"", task.id)).unwrap()..];
    assert!(row.contains(&room_name));
    assert!(row.contains("<strong>3</strong> Gloves (box)"));
    assert!(row.contains("(1 of 4 on hand)"));
    assert!(row.contains("since "));
    assert!(row.contains(&app.staff(Role::FrontDesk).username));
    assert!(row.contains("value=\"done\""));
    assert!(row.contains("value=\"dismissed\""));

    // A later count updates the same task, a full one closes it.
    let (status, _, _) = count(&desk, &room, "4", "5").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let open = restock(&app, &d, TaskStatus::Open).await;
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].id, task.id);
    assert_eq!(open[0].shortfall[0].item, "Gauze");
    assert_eq!(open[0].shortfall[0].needed, 15);
    let (status, back, _) = count(&desk, &room, "6", "20").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(restock(&app, &d, TaskStatus::Open).await.is_empty());
    let done = restock(&app, &d, TaskStatus::Done).await;
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].id, task.id);
    let (_, html) = desk.get(&back).await;
    assert!(html.contains(&format!("{room_name}: supplies counted, all at par.")));
    assert!(html.contains("No supplies are waiting to be restocked"));
    let details = audit_details(&app, restock_filter(&task.id)).await;
    assert_eq!(
        details,
        [
            format!("room {room}: all supplies at par"),
            format!("room {room}: short 15 Gauze"),
            format!("room {room}: short 3 Gloves (box)"),
        ]
    );
}

#[tokio::test]
async fn restock_tasks_are_closed_as_done_or_dismissed_and_audited() {
    let app = TestApp::new().await;
    let d = dermatology(&app).await;
    set_up_exam_supplies(&app).await;
    let (room, room_name) = exam_room(&app, &d).await;
    let desk = Desk::new(&app, Role::FrontDesk).await;
    let clinician = Desk::new(&app, Role::Clinician).await;

    for (by, status, notice) in [
        (&desk, "done", format!("{room_name}: restocked.")),
        (
            &clinician,
            "dismissed",
            format!("{room_name}: restock task dismissed."),
        ),
    ] {
        count(by, &room, "0", "0").await;
        let task = restock(&app, &d, TaskStatus::Open).await.remove(0);
        let fields = [
            ("status", status),
            ("location", d.location.as_str()),
            ("room", room.as_str()),
        ];
        let path = format!("/today/restock/{}", task.id);
        let seq = app.db.board_seq(&app.org_id, &d.location).await.unwrap();
        let (code, back, body) = by.post(&path, &fields).await;
        assert_eq!(code, StatusCode::SEE_OTHER, "{body}");
        assert_eq!(rooms_told(&app, &d, seq).await, [room.as_str()]);
        let (_, html) = by.get(&back).await;
        assert!(html.contains(&notice), "{html}");
        assert!(!html.contains(&format!("id=\"restock-{}\"", task.id)));
        let closed = if status == "done" {
            TaskStatus::Done
        } else {
            TaskStatus::Dismissed
        };
        let found = restock(&app, &d, closed).await;
        let found = found.iter().find(|t| t.id == task.id).unwrap();
        assert!(found.closed_at.is_some());
        let filter = AuditFilter {
            actor_name: Some(found.closed_by.clone().unwrap()),
            ..restock_filter(&task.id)
        };
        assert_eq!(audit_details(&app, filter).await[0], status);

        // Closing it again is refused with the reason.
        let (code, _, html) = by.post(&path, &fields).await;
        assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(html.contains(&format!(
            "Nothing was changed for {room_name}. The restock task is already {status}."
        )));
    }
    let (code, _, _) = desk
        .post(
            "/today/restock/no-such-task",
            &[("status", "done"), ("location", d.location.as_str())],
        )
        .await;
    assert_eq!(code, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_wait_threshold_saved_for_a_location_is_what_its_board_uses() {
    let app = TestApp::new().await;
    let d = dermatology(&app).await;
    let admin = Desk::new(&app, Role::Admin).await;
    let desk = Desk::new(&app, Role::FrontDesk).await;
    let board = format!("/today?location={}", d.location);
    let (_, html) = desk.get(&board).await;
    assert!(html.contains("Patients waiting more than 15 minutes"));

    let (_, html) = admin.get("/admin/rooms").await;
    let wait = section(&html, "wait-title");
    assert!(wait.contains("name=\"default_minutes\" type=\"number\""));
    assert!(wait.contains("value=\"15\""), "the default");
    let field = format!("by_location.{}", d.location);
    assert!(wait.contains(&format!("{} (minutes)</label>", d.location_name)));
    assert!(wait.contains(&format!("name=\"by_location.{}\"", d.location)));

    // Bad values are named at their inputs and nothing is saved.
    let (status, _, html) = admin
        .post(
            "/admin/rooms/wait",
            &[("default_minutes", "soon"), (field.as_str(), "0")],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let wait = section(&html, "wait-title");
    assert!(
        wait.contains("Default wait threshold must be a whole number of minutes, 1 to 240."),
        "{wait}"
    );
    assert!(wait.contains(&format!(
        "Wait threshold at {} must be 1 to 240 minutes.",
        d.location_name
    )));
    assert!(wait.contains("value=\"soon\""), "kept as typed");
    let stored: WaitThresholds = app.db.setting(&app.org_id).await.unwrap();
    assert_eq!(stored, WaitThresholds::default());

    let (status, to, _) = admin
        .post(
            "/admin/rooms/wait",
            &[("default_minutes", "20"), (field.as_str(), "5")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(to, "/admin/rooms?saved=wait");
    let stored: WaitThresholds = app.db.setting(&app.org_id).await.unwrap();
    assert_eq!(stored.default_minutes, 20);
    assert_eq!(stored.by_location.get(&d.location), Some(&5));
    let filter = AuditFilter {
        resource_id: Some("wait_thresholds".into()),
        ..AuditFilter::default()
    };
    assert_eq!(
        audit_details(&app, filter).await,
        [format!(
            "wait thresholds in minutes: default 20, {} 5",
            d.location_name
        )]
    );
    let (_, html) = desk.get(&board).await;
    assert!(html.contains("Patients waiting more than 5 minutes"));
    assert!(html.contains("data-threshold-ms=\"300000\""));

    // Emptied, the location falls back to the default.
    let (status, _, _) = admin
        .post(
            "/admin/rooms/wait",
            &[("default_minutes", "20"), (field.as_str(), "")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, html) = desk.get(&board).await;
    assert!(html.contains("Patients waiting more than 20 minutes"));
}

#[tokio::test]
async fn only_admins_set_up_rooms_and_only_the_visit_flow_counts_and_restocks() {
    let app = TestApp::new().await;
    let d = dermatology(&app).await;
    set_up_exam_supplies(&app).await;
    let (room, _) = exam_room(&app, &d).await;
    for role in [Role::FrontDesk, Role::Lead, Role::Clinician, Role::Billing] {
        let other = Desk::new(&app, role).await;
        assert_eq!(
            other.get("/admin/rooms").await.0,
            StatusCode::FORBIDDEN,
            "{role}"
        );
        let (status, _, _) = save_exam(&other, "1", "Forged", "").await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{role}");
        let (status, _, _) = other
            .post("/admin/rooms/wait", &[("default_minutes", "1")])
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{role}");
    }
    assert_eq!(exam_checklist(&app).await.unwrap().cleaning, ["Wipe table"]);

    let desk = Desk::new(&app, Role::FrontDesk).await;
    count(&desk, &room, "0", "0").await;
    let task = restock(&app, &d, TaskStatus::Open).await.remove(0);
    let billing = Desk::new(&app, Role::Billing).await;
    let (status, html) = billing.get(&rooms_board(&d)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains(&format!("id=\"restock-{}\"", task.id)),
        "billing sees it"
    );
    assert!(!html.contains("value=\"dismissed\""), "but has no buttons");
    assert!(!html.contains("id=\"counts-title\""), "and no count");
    for role in [Role::Billing, Role::Admin, Role::Auditor] {
        let other = Desk::new(&app, role).await;
        let (status, _, _) = count(&other, &room, "9", "99").await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{role}");
        let path = format!("/today/restock/{}", task.id);
        let (status, _, _) = other.post(&path, &[("status", "done")]).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{role}");
    }
    assert_eq!(restock(&app, &d, TaskStatus::Open).await, [task]);
}
