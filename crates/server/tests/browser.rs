//! The staff web application in a real browser: headless Chromium driven
//! through chromedriver (both from Debian's `chromium` and `chromium-driver`
//! packages). Each step saves a screenshot to
//! `<target>/artifacts/browser/NN-name.png` and checks the browser console
//! for errors such as Content-Security-Policy violations.
//!
//! Without Chromium the tests print "skipped: chromium not installed" and
//! pass, unless `CAREFRONT_REQUIRE_BROWSER=1` (set in CI) makes that a
//! failure.

mod common;
mod schedule_setup;

use anyhow::{Context, Result, bail, ensure};
use carefront_domain::Role;
use carefront_domain::patient::Patient;
use carefront_server::Config;
use carefront_store::Page;
use common::TestApp;
use fantoccini::actions::{
    InputSource, KeyAction, KeyActions, MOUSE_BUTTON_LEFT, MouseActions, PointerAction,
};
use fantoccini::elements::Element;
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use std::io::{BufRead, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Longest explicit wait for a page to show an element.
const PAGE_WAIT: Duration = Duration::from_secs(15);
const WIDE: (u32, u32) = (1280, 900);
const NARROW: (u32, u32) = (400, 900);

#[tokio::test]
async fn front_desk_signs_in_finds_a_patient_and_signs_out() -> Result<()> {
    let Some(b) = Browser::start().await? else {
        return Ok(());
    };
    let app = TestApp::new().await;
    let base = app.spawn().await;
    let desk = app.staff(Role::FrontDesk).clone();

    // 1. Anonymous visitors are sent to sign-in; a wrong password is refused
    //    with an alert while the username stays filled in.
    b.client.goto(&format!("{base}/")).await?;
    let username = b.wait(Locator::Css("input#username")).await?;
    let url = b.client.current_url().await?;
    assert_eq!(url.path(), "/login", "/ redirects to sign-in, got {url}");
    username.send_keys(&desk.username).await?;
    b.find("input#password")
        .await?
        .send_keys("not-the-password-at-all")
        .await?;
    b.find(".signin button[type=submit]").await?.click().await?;
    let alert = b.wait(Locator::Css("#signin-error[role=alert]")).await?;
    assert_eq!(
        alert.text().await?,
        "The username or password is not correct."
    );
    assert_eq!(
        b.find("input#username").await?.prop("value").await?,
        Some(desk.username.clone()),
        "the username is kept after a failed sign-in"
    );
    assert_eq!(
        b.find("input#password").await?.prop("value").await?,
        Some(String::new()),
        "the password is never sent back"
    );
    assert_eq!(
        b.focused_id().await?,
        "password",
        "with the username kept, the cursor waits in the password field"
    );
    b.step("01-signin-wrong-password").await?;
    b.narrow_step("02-signin-wrong-password-narrow").await?;

    // 2. Keyboard only: username, Tab, password, Enter.
    b.client.goto(&format!("{base}/")).await?;
    b.wait(Locator::Css("input#username")).await?;
    assert_eq!(b.focused_id().await?, "username", "sign-in starts focused");
    b.keys(&desk.username).await?;
    b.keys(&Key::Tab.to_string()).await?;
    b.keys(&desk.password).await?;
    b.keys(&Key::Enter.to_string()).await?;
    b.wait(Locator::Css("nav[aria-label=Main]")).await?;
    assert_eq!(b.client.current_url().await?.path(), "/");
    assert_eq!(
        b.texts("nav[aria-label=Main] a").await?,
        ["Today", "Schedule", "Patients", "Worklists"],
        "front desk navigation, without Admin"
    );
    assert!(b.texts("header .who").await?[0].contains(&desk.display_name));
    b.keys("/").await?;
    assert_eq!(
        b.focused_id().await?,
        "global-search",
        "\"/\" focuses search"
    );
    assert_eq!(
        b.find("#global-search").await?.prop("value").await?,
        Some(String::new()),
        "the \"/\" is not typed into the box"
    );
    b.step("03-shell-search-focused").await?;

    // 3. The global search finds a demo patient by family name.
    let family = demo_family_name(&app).await;
    b.keys(&family).await?;
    b.keys(&Key::Enter.to_string()).await?;
    b.wait(Locator::Css("main table tbody tr")).await?;
    let url = b.client.current_url().await?;
    assert_eq!(url.path(), "/patients");
    let rows = b.texts("main table tbody tr").await?;
    assert!(
        rows[0].contains(&family),
        "the best match is a {family}: {rows:?}"
    );
    assert!(b.texts("main p[role=status]").await?[0].contains("match"));
    b.step("04-patient-search-results").await?;
    b.narrow_step("05-patient-search-results-narrow").await?;

    // 4. Signing out ends the session: /today asks for sign-in again.
    b.find("#logout-form button[type=submit]")
        .await?
        .click()
        .await?;
    let notice = b.wait(Locator::Css("p.notice[role=status]")).await?;
    assert_eq!(notice.text().await?, "You are signed out.");
    assert_eq!(b.client.current_url().await?.path(), "/login");
    b.step("06-signed-out").await?;
    b.client.goto(&format!("{base}/today")).await?;
    b.wait(Locator::Css("input#username")).await?;
    let url = b.client.current_url().await?;
    assert_eq!(url.path(), "/login", "/today needs sign-in again");
    assert_eq!(url.query(), Some("next=%2Ftoday"));
    b.check_console().await?;

    b.close().await
}

#[tokio::test]
async fn an_idle_page_signs_itself_out() -> Result<()> {
    let Some(b) = Browser::start().await? else {
        return Ok(());
    };
    let app = TestApp::with_config(Config {
        idle_timeout_secs: 3,
        ..Config::default()
    })
    .await;
    let base = app.spawn().await;
    let desk = app.staff(Role::FrontDesk).clone();

    // 5. Nobody touches the page: its timer posts the sign-out form.
    b.sign_in(&base, &desk.username, &desk.password).await?;
    let started = Instant::now();
    let notice = b
        .client
        .wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::Css("p.notice[role=status]"))
        .await?;
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(2500),
        "signed out too early, after {waited:?}"
    );
    assert_eq!(
        notice.text().await?,
        "You were signed out after 3 seconds without activity."
    );
    assert_eq!(b.client.current_url().await?.path(), "/login");
    b.step("07-idle-signed-out").await?;

    // Signing in again from that page lands in the shell, not on the
    // sign-out form's address.
    b.find("input#username")
        .await?
        .send_keys(&desk.username)
        .await?;
    b.find("input#password")
        .await?
        .send_keys(&desk.password)
        .await?;
    b.find(".signin button[type=submit]").await?.click().await?;
    b.wait(Locator::Css("nav[aria-label=Main]")).await?;
    assert_eq!(b.client.current_url().await?.path(), "/");
    b.check_console().await?;

    b.close().await
}

#[tokio::test]
async fn auditor_reads_the_log_and_admin_sees_field_errors() -> Result<()> {
    let Some(b) = Browser::start().await? else {
        return Ok(());
    };
    let app = TestApp::new().await;
    let base = app.spawn().await;
    let auditor = app.staff(Role::Auditor).clone();
    let admin = app.staff(Role::Admin).clone();

    // 6a. The auditor's log lists the sign-in that just happened.
    b.sign_in(&base, &auditor.username, &auditor.password)
        .await?;
    assert_eq!(b.texts("nav[aria-label=Main] a").await?, ["Audit log"]);
    b.client
        .find(Locator::LinkText("Audit log"))
        .await?
        .click()
        .await?;
    b.wait(Locator::Css("main table tbody tr")).await?;
    assert_eq!(b.client.current_url().await?.path(), "/audit");
    let rows = b.texts("main table tbody tr").await?;
    assert!(
        rows.iter()
            .any(|r| r.contains(&auditor.username) && r.contains("sign in")),
        "the auditor's sign-in is listed: {rows:?}"
    );
    b.step("08-audit-log").await?;
    b.narrow_step("09-audit-log-narrow").await?;

    // 6b. The administrator adds a user with a too-short password.
    b.find("#logout-form button[type=submit]")
        .await?
        .click()
        .await?;
    b.wait(Locator::Css("p.notice[role=status]")).await?;
    b.sign_in(&base, &admin.username, &admin.password).await?;
    b.client
        .find(Locator::LinkText("Admin"))
        .await?
        .click()
        .await?;
    b.wait(Locator::Css("input#new-username"))
        .await?
        .send_keys("newdesk")
        .await?;
    b.find("input#new-display_name")
        .await?
        .send_keys("Nia Desk")
        .await?;
    b.find("select#new-role")
        .await?
        .select_by_value("front_desk")
        .await?;
    b.find("input#new-password")
        .await?
        .send_keys("short")
        .await?;
    b.find("main form.stack button[type=submit]")
        .await?
        .click()
        .await?;
    let summary = b.wait(Locator::Css("main div.error[role=alert]")).await?;
    assert!(
        summary
            .text()
            .await?
            .contains("Initial password must be at least"),
        "the summary names the field by its label"
    );
    assert_eq!(
        b.focused_id().await?,
        "add-user-errors",
        "the summary takes the focus, so it is seen below the staff table"
    );
    let password = b.find("input#new-password").await?;
    assert_eq!(
        password.attr("aria-invalid").await?.as_deref(),
        Some("true")
    );
    assert_eq!(
        password.attr("aria-describedby").await?.as_deref(),
        Some("new-password-error")
    );
    let message = b.find("#new-password-error").await?.text().await?;
    assert!(
        message.contains("at least"),
        "the field says what is wrong: {message}"
    );
    assert_eq!(
        b.find("input#new-username").await?.prop("value").await?,
        Some("newdesk".to_string()),
        "entered values are kept"
    );
    b.step("10-admin-field-errors").await?;
    b.narrow_step("11-admin-field-errors-narrow").await?;

    b.close().await
}

#[tokio::test]
async fn front_desk_registers_is_warned_of_a_duplicate_and_finds_the_patient_by_phone() -> Result<()>
{
    let Some(b) = Browser::start().await? else {
        return Ok(());
    };
    let app = TestApp::new().await;
    let base = app.spawn().await;
    let desk = app.staff(Role::FrontDesk).clone();
    b.sign_in(&base, &desk.username, &desk.password).await?;
    let before = patient_count(&app).await;

    // 7a. Patients → Register: the cursor waits in the first field; the
    //     form is filled from the keyboard and saved.
    b.client
        .find(Locator::LinkText("Patients"))
        .await?
        .click()
        .await?;
    b.client
        .wait()
        .at_most(PAGE_WAIT)
        .for_element(Locator::LinkText("Register a new patient"))
        .await?
        .click()
        .await?;
    b.wait(Locator::Css("input#f-given")).await?;
    assert_eq!(
        b.focused_id().await?,
        "f-given",
        "registration starts focused"
    );
    // Sent empty: every missing field is named, nothing is saved.
    b.keys(&Key::Enter.to_string()).await?;
    let summary = b
        .wait(Locator::Css("main div.error#form-errors[role=alert]"))
        .await?;
    let listed = summary.text().await?;
    for field in [
        "Given name is required",
        "Date of birth is required",
        "Sex is required",
    ] {
        assert!(
            listed.contains(field),
            "the summary lists {field}: {listed}"
        );
    }
    assert_eq!(
        b.focused_id().await?,
        "form-errors",
        "the summary takes the focus"
    );
    let given = b.find("input#f-given").await?;
    assert_eq!(given.attr("aria-invalid").await?.as_deref(), Some("true"));
    assert_eq!(
        given.attr("aria-describedby").await?.as_deref(),
        Some("f-given-error")
    );
    b.full_step("20-register-errors").await?;
    assert_eq!(patient_count(&app).await, before);
    b.fill_registration("Quintanilla", "(512) 555-0187").await?;
    b.full_step("20-register").await?;
    b.find("#patient-form .form-actions button[type=submit]")
        .await?
        .click()
        .await?;
    b.wait(Locator::Css("section[aria-labelledby=s-demo]"))
        .await?;
    let first = b.client.current_url().await?.path().to_string();
    assert!(
        first.starts_with("/patients/"),
        "the summary opens: {first}"
    );
    assert_eq!(patient_count(&app).await, before + 1);

    // 7b. The same person again, with a typo in the family name and the
    //     phone typed another way: stopped, with the existing patient shown.
    b.client.goto(&format!("{base}/patients/new")).await?;
    b.wait(Locator::Css("input#f-given")).await?;
    b.fill_registration("Quintanila", "512.555.0187").await?;
    b.find("#patient-form .form-actions button[type=submit]")
        .await?
        .click()
        .await?;
    let panel = b.wait(Locator::Css("section#duplicates")).await?;
    let text = panel.text().await?;
    assert!(
        text.contains("Stop: this patient is probably registered already"),
        "{text}"
    );
    assert!(text.contains("Quintanilla, Marisol"), "{text}");
    assert!(text.contains("Almost certainly the same person"), "{text}");
    assert_eq!(
        b.focused_id().await?,
        "duplicates",
        "the warning takes the focus"
    );
    let use_link = b
        .find("section#duplicates article.candidate h3 a")
        .await?
        .attr("href")
        .await?;
    assert_eq!(use_link.as_deref(), Some(first.as_str()));
    assert_eq!(patient_count(&app).await, before + 1, "nothing saved");
    b.full_step("21-duplicate-warning").await?;
    b.narrow_step("21-duplicate-warning-narrow").await?;

    // 7c. "/" and the phone in yet another format find the first patient;
    //     the summary opens from the result.
    b.keys("/").await?;
    assert_eq!(b.focused_id().await?, "global-search");
    b.keys("512-555-0187").await?;
    b.keys(&Key::Enter.to_string()).await?;
    // The duplicate page has a table too: wait for the results page's own.
    b.wait(Locator::Css(
        "main table[aria-label='Search results'] tbody tr",
    ))
    .await?;
    let rows = b
        .texts("main table[aria-label='Search results'] tbody tr")
        .await?;
    assert_eq!(rows.len(), 1, "only the registered patient: {rows:?}");
    assert!(rows[0].contains("Quintanilla, Marisol"), "{rows:?}");
    assert!(rows[0].contains("(512) 555-0187"), "{rows:?}");
    b.client
        .find(Locator::LinkText("Quintanilla, Marisol"))
        .await?
        .click()
        .await?;
    b.wait(Locator::Css("section[aria-labelledby=s-demo]"))
        .await?;
    assert_eq!(b.client.current_url().await?.path(), first);
    assert_eq!(b.texts("main h1").await?, ["Quintanilla, Marisol"]);
    let alerts = b.texts("main .alerts[role=note]").await?;
    assert!(alerts[0].contains("Needs wheelchair"), "{alerts:?}");
    b.full_step("22-summary").await?;
    b.narrow_step("22-summary-narrow").await?;

    // 7d. A lead registers the typo anyway, with a reason, then merges the
    //     two records from the duplicate's summary.
    let lead = app.staff(Role::Lead).clone();
    b.find("#logout-form button[type=submit]")
        .await?
        .click()
        .await?;
    b.wait(Locator::Css("p.notice[role=status]")).await?;
    b.sign_in(&base, &lead.username, &lead.password).await?;
    b.client.goto(&format!("{base}/patients/new")).await?;
    b.wait(Locator::Css("input#f-given")).await?;
    b.fill_registration("Quintanila", "512.555.0187").await?;
    b.find("#patient-form .form-actions button[type=submit]")
        .await?
        .click()
        .await?;
    b.wait(Locator::Css("input#f-override_reason"))
        .await?
        .send_keys("Caller says she has never been here")
        .await?;
    b.check_console().await?;
    b.find("section#duplicates .decision button[type=submit]")
        .await?
        .click()
        .await?;
    b.wait(Locator::Css("section[aria-labelledby=s-demo]"))
        .await?;
    let second = b.client.current_url().await?.path().to_string();
    assert_ne!(second, first);
    b.client
        .find(Locator::LinkText("Merge with another record…"))
        .await?
        .click()
        .await?;
    b.client
        .wait()
        .at_most(PAGE_WAIT)
        .for_element(Locator::LinkText("Compare"))
        .await?
        .click()
        .await?;
    b.wait(Locator::Css("table.side-by-side")).await?;
    let survivor = b.find("input#survivor-other").await?;
    assert_eq!(
        survivor.prop("checked").await?.as_deref(),
        Some("true"),
        "the older record survives by default"
    );
    b.full_step("23-merge-compare").await?;
    b.find("form.merge-form button[type=submit]")
        .await?
        .click()
        .await?;
    b.wait(Locator::Css("section[aria-labelledby=s-merges]"))
        .await?;
    assert_eq!(b.client.current_url().await?.path(), first);
    b.full_step("24-merged-summary").await?;

    b.close().await
}

#[tokio::test]
async fn front_desk_finds_books_reschedules_and_cancels_a_dermatology_visit() -> Result<()> {
    let Some(b) = Browser::start().await? else {
        return Ok(());
    };
    let app = TestApp::new().await;
    let d = schedule_setup::dermatology(&app).await;
    let base = app.spawn().await;
    let desk = app.staff(Role::FrontDesk).clone();
    b.sign_in(&base, &desk.username, &desk.password).await?;
    let (patient_id, patient_name) = d.patients[0].clone();
    let family = patient_name
        .split(',')
        .next()
        .unwrap_or_default()
        .to_string();

    // 8a. Schedule → Find a slot: dermatology, the patient found by name.
    b.client
        .find(Locator::LinkText("Schedule"))
        .await?
        .click()
        .await?;
    b.wait(Locator::Css("table.day-grid")).await?;
    b.client
        .find(Locator::LinkText("Find a slot…"))
        .await?
        .click()
        .await?;
    b.wait(Locator::Css("select#f-type")).await?;
    assert_eq!(
        b.focused_id().await?,
        "f-type",
        "the finder starts at the type"
    );
    b.find("select#f-type")
        .await?
        .select_by_value(schedule_setup::TYPE_ID)
        .await?;
    b.find("select#f-specialty")
        .await?
        .select_by_value(schedule_setup::DERMATOLOGY)
        .await?;
    b.fill("input#f-q", &family).await?;
    b.keys(&Key::Enter.to_string()).await?;
    b.wait(Locator::Css("table#results tbody tr")).await?;
    let choose =
        format!("//ul[contains(@class, 'patient-choices')]/li[contains(., \"{patient_name}\")]/a");
    b.wait(Locator::XPath(&choose)).await?.click().await?;
    b.wait(Locator::Css("table#results tbody tr")).await?;
    let chosen = b.texts("main p.chosen").await?;
    assert!(chosen[0].contains(&patient_name), "{chosen:?}");
    let rows = b.texts("table#results tbody tr").await?;
    assert!(!rows.is_empty());
    let dermatologist = app
        .db
        .get::<carefront_domain::directory::Practitioner>(&app.org_id, &d.provider)
        .await?
        .value
        .family;
    assert!(
        rows.iter().all(|r| r.contains(&dermatologist)),
        "the dermatologist's times only: {rows:?}"
    );
    b.full_step("30-slot-finder").await?;
    b.narrow_step("31-slot-finder-narrow").await?;

    // 8b. Book the next available time in one click: the booking page has
    //     the time, provider and patient; the cursor waits in the reason.
    let first_row = rows[0].clone();
    b.find("table#results tbody tr:first-child a.button")
        .await?
        .click()
        .await?;
    b.wait(Locator::Css("form#book-form")).await?;
    assert_eq!(b.client.current_url().await?.path(), "/schedule/book");
    assert_eq!(b.focused_id().await?, "f-reason_for_visit");
    let slot = b.find("section.book-slot").await?.text().await?;
    assert!(slot.contains(d.tz.iana_name().unwrap_or("?")), "{slot}");
    b.keys("Itchy rash on both hands").await?;
    b.full_step("32-booking-form").await?;
    b.keys(&Key::Enter.to_string()).await?;

    // 8c. The day view of that date: a notice (with the focus) and the card.
    let notice = b.wait(Locator::Css("#done-notice")).await?;
    let text = notice.text().await?;
    assert!(text.starts_with("Booked: "), "{text}");
    assert!(text.contains(&patient_name), "{text}");
    assert_eq!(b.focused_id().await?, "done-notice");
    let card = b.find("article.appt.changed").await?.text().await?;
    assert!(card.contains(&patient_name), "{card}");
    assert!(card.contains("Itchy rash on both hands"), "{card}");
    assert!(card.contains("BOOKED") || card.contains("Booked"), "{card}");
    let time = first_row
        .split_whitespace()
        .find(|w| w.contains(':'))
        .unwrap_or_default()
        .to_string();
    assert!(card.contains(&time), "the card is at {time}: {card}");
    let booked_day = b.client.current_url().await?.to_string();
    b.full_step("33-day-view-booked").await?;
    b.narrow_step("34-day-view-booked-narrow").await?;

    // 8d. From the card: the appointment, then Reschedule… to the first free
    //     time of the next day with free times.
    b.find("article.appt.changed a.appt-link")
        .await?
        .click()
        .await?;
    b.wait(Locator::Css("section#appointment-actions")).await?;
    b.full_step("35-appointment").await?;
    b.client
        .find(Locator::LinkText("Reschedule…"))
        .await?
        .click()
        .await?;
    b.wait(Locator::Css("form#reschedule-form")).await?;
    let days = b.texts("fieldset.slot-choices .slot-day h3").await?;
    ensure!(days.len() >= 2, "free times on several days: {days:?}");
    let target = b
        .find("fieldset.slot-choices .slot-day:nth-of-type(2) input[type=radio]")
        .await?;
    let target_id = target.attr("id").await?.unwrap_or_default();
    let target_label = b
        .find(&format!("label[for='{target_id}']"))
        .await?
        .text()
        .await?;
    b.find(&format!("label[for='{target_id}']"))
        .await?
        .click()
        .await?;
    b.full_step("36-reschedule").await?;
    b.find("#reschedule-form button[type=submit]")
        .await?
        .click()
        .await?;
    let notice = b.wait(Locator::Css("#done-notice")).await?;
    let text = notice.text().await?;
    assert!(text.starts_with("Rescheduled: "), "{text}");
    let new_time = target_label
        .split(' ')
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    assert!(text.contains(&new_time), "moved to {new_time}: {text}");
    assert_ne!(b.client.current_url().await?.to_string(), booked_day);
    b.full_step("37-rescheduled-day").await?;

    // The old day shows the old time as rescheduled and free again.
    b.client.goto(&booked_day).await?;
    b.wait(Locator::Css("table.day-grid")).await?;
    let old = b
        .find("article.appt.status-cancelled")
        .await?
        .text()
        .await?;
    assert!(old.to_lowercase().contains("rescheduled"), "{old}");

    // 8e. Cancel the new appointment with a reason: the day view says so.
    b.client.back().await?;
    b.wait(Locator::Css("article.appt.changed")).await?;
    b.find("article.appt.changed a.appt-link")
        .await?
        .click()
        .await?;
    b.wait(Locator::Css("form.cancel-form")).await?;
    // Without a reason: named, nothing changed.
    b.find("form.cancel-form button[type=submit]")
        .await?
        .click()
        .await?;
    let summary = b.wait(Locator::Css("#form-errors[role=alert]")).await?;
    assert!(
        summary
            .text()
            .await?
            .contains("Cancellation reason is required"),
        "the summary names the field"
    );
    assert_eq!(b.focused_id().await?, "form-errors");
    b.full_step("38-cancel-needs-reason").await?;
    b.find("select#f-cancel_reason")
        .await?
        .select_by_value("pat-fb")
        .await?;
    b.find("form.cancel-form button[type=submit]")
        .await?
        .click()
        .await?;
    let notice = b.wait(Locator::Css("#done-notice")).await?;
    let text = notice.text().await?;
    assert!(
        text.starts_with("Cancelled: ") && text.contains("Patient: feeling better"),
        "{text}"
    );
    let card = b.find("article.appt.changed").await?.text().await?;
    assert!(card.to_lowercase().contains("cancelled"), "{card}");
    b.full_step("39-cancelled-day").await?;
    let stored = d.appointments(&app).await;
    assert!(
        stored
            .iter()
            .filter(|a| a.appointment.patient_id == patient_id)
            .all(|a| !a.appointment.status.holds_time()),
        "nothing left booked for the patient"
    );

    // 8f. "]" pages to the next day from the keyboard; the week view of the
    //     dermatologist.
    let before = b.client.current_url().await?;
    b.client
        .execute("document.activeElement.blur();", vec![])
        .await?;
    b.keys("]").await?;
    b.wait(Locator::Css("table.day-grid")).await?;
    let after = b.client.current_url().await?;
    assert_ne!(before.query(), after.query(), "\"]\" shows the next day");
    b.client
        .goto(&format!(
            "{base}/schedule/week?provider={}&location={}&date={}",
            d.provider, d.location, d.day
        ))
        .await?;
    b.wait(Locator::Css("table.day-grid")).await?;
    b.full_step("40-week-view").await?;

    // 8g. Nothing fits the patient's wishes (Saturday afternoons, and only
    //     yesterday): the finder offers the waitlist; the day view lists
    //     the patient there until taken off.
    let yesterday = d.day.checked_sub(jiff::ToSpan::days(2))?;
    b.client
        .goto(&format!(
            "{base}/schedule/find?type={}&from={yesterday}&to={yesterday}&weekday=6&part=afternoon&location={}&patient={patient_id}",
            schedule_setup::TYPE_ID,
            d.location
        ))
        .await?;
    let heading = b.wait(Locator::Css("#waitlist-add-title")).await?;
    assert_eq!(heading.text().await?, "Nothing fits: add to the waitlist");
    b.find("#waitlist-add button[type=submit]")
        .await?
        .click()
        .await?;
    let notice = b.wait(Locator::Css("#done-notice")).await?;
    assert!(notice.text().await?.contains("is on the waitlist"));
    assert_eq!(
        b.find("#waitlist-add-title").await?.text().await?,
        "On the waitlist",
        "the patient is not offered the waitlist twice"
    );
    b.full_step("41-waitlisted").await?;
    b.client.goto(&format!("{base}{}", d.day_path())).await?;
    let panel = b.wait(Locator::Css("aside.waitlist")).await?.text().await?;
    assert!(panel.contains(&patient_name), "{panel}");
    assert!(panel.contains("Saturdays; afternoons"), "{panel}");
    b.full_step("42-day-view-waitlist").await?;
    b.find("aside.waitlist form button[type=submit]")
        .await?
        .click()
        .await?;
    let notice = b.wait(Locator::Css("#done-notice")).await?;
    assert_eq!(notice.text().await?, "Taken off the waitlist.");
    assert!(
        !b.find("aside.waitlist")
            .await?
            .text()
            .await?
            .contains(&patient_name),
        "the patient is off the waitlist"
    );

    b.close().await
}

/// One patient's whole visit, driven from the front desk's window while a
/// second window (the lead's, on the same board) sees every step arrive
/// without reloading: arrival, the guided check-in, rooming, with the
/// provider, checkout with the instructions PDF, completed.
#[tokio::test]
async fn a_visit_from_arrival_to_completed_seen_live_in_a_second_window() -> Result<()> {
    let Some(desk) = Browser::start().await? else {
        return Ok(());
    };
    let Some(lead) = Browser::start().await? else {
        return Ok(());
    };
    let app = TestApp::new().await;
    let d = schedule_setup::dermatology(&app).await;
    let (id, date) = schedule_setup::visit_starting_now(&app, &d, 0).await;
    let patient = app.db.get::<Patient>(&app.org_id, &d.patients[0].0).await?;
    let base = app.spawn().await;
    let board = format!("{base}/today?location={}&date={date}", d.location);
    let row = format!("tr#visit-{id}");
    for (b, role) in [(&desk, Role::FrontDesk), (&lead, Role::Lead)] {
        let s = app.staff(role).clone();
        b.sign_in(&base, &s.username, &s.password).await?;
        b.client.goto(&board).await?;
        b.wait(Locator::Css(&row)).await?;
    }
    // Anything that reloads the lead's page loses this mark.
    lead.client.execute("window.stayed = true;", vec![]).await?;
    desk.full_step("50-board-scheduled").await?;

    let status = format!("{row} td.c-status");
    desk.find(&format!("#step-{id}-arrived"))
        .await?
        .click()
        .await?;
    desk.wait_text(&status, "Arrived").await?;
    lead.wait_text(&status, "Arrived").await?;
    lead.step("51-second-window-arrived").await?;

    // The guided check-in: the date of birth opens it, the outstanding
    // items are acknowledged.
    desk.find(&format!("#checkin-{id}")).await?.click().await?;
    let dob = patient.value.birth_date;
    desk.wait(Locator::Css("input#f-birth_date"))
        .await?
        .send_keys(&format!(
            "{:02}/{:02}/{}",
            dob.month(),
            dob.day(),
            dob.year()
        ))
        .await?;
    desk.find("button[name=action][value=review]")
        .await?
        .click()
        .await?;
    desk.wait(Locator::Css("#checkin-notice")).await?;
    desk.find("#f-acknowledge").await?.click().await?;
    desk.full_step("52-check-in").await?;
    desk.find("button[name=action][value=complete]")
        .await?
        .click()
        .await?;
    desk.wait_text(&status, "Checked in").await?;
    lead.wait_text(&status, "Checked in").await?;

    // Rooming takes the first ready room; the lead sees the room too.
    desk.find(&format!("#step-{id}-roomed"))
        .await?
        .click()
        .await?;
    desk.wait_text(&status, "Roomed").await?;
    lead.wait_text(&status, "Roomed").await?;
    let room = lead.texts(&format!("{row} td.c-room")).await?;
    ensure!(!room[0].trim().is_empty(), "the room shows: {room:?}");
    lead.step("53-second-window-roomed").await?;

    desk.find(&format!("#step-{id}-with-provider"))
        .await?
        .click()
        .await?;
    lead.wait_text(&status, "With provider").await?;
    desk.wait(Locator::Css(&format!("#step-{id}-checkout")))
        .await?
        .click()
        .await?;
    lead.wait_text(&status, "At checkout").await?;

    // Checkout: the follow-up and the instructions as a PDF.
    desk.wait(Locator::Css(&format!("#checkout-{id}")))
        .await?
        .click()
        .await?;
    let pdf = desk
        .wait(Locator::Css("a#instructions-download"))
        .await?
        .attr("href")
        .await?
        .context("the download link")?;
    let fetched = desk
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch(arguments[0]).then(r => r.arrayBuffer().then(b =>
               done([r.headers.get('content-type'),
                     String.fromCharCode(...new Uint8Array(b).slice(0, 5)), b.byteLength])));",
            vec![serde_json::json!(pdf)],
        )
        .await?;
    ensure!(
        fetched[0] == "application/pdf" && fetched[1] == "%PDF-",
        "instructions PDF: {fetched}"
    );
    desk.find("a#book-followup").await?;
    desk.full_step("54-checkout").await?;
    desk.find("form#checkout-form button[type=submit]")
        .await?
        .click()
        .await?;
    desk.wait_text(&status, "Completed").await?;
    lead.wait_text(&status, "Completed").await?;
    lead.step("55-second-window-completed").await?;
    let stayed = lead
        .client
        .execute("return window.stayed === true;", vec![])
        .await?;
    ensure!(stayed == true, "the second window never reloaded");

    desk.close().await?;
    lead.close().await
}

/// Self check-in at the entrance: an administrator turns the browser into
/// the location's kiosk; a patient finds their visit, keeps their contact
/// details, signs with a finger on the screen, and the desk's board (open
/// in another window) shows "Arrived (kiosk)" and the consent signed. Left alone, the kiosk goes
/// back to its start screen with nothing of what was typed.
#[tokio::test]
async fn a_patient_checks_in_at_the_kiosk_and_the_board_shows_it() -> Result<()> {
    let Some(kiosk) = Browser::start().await? else {
        return Ok(());
    };
    let Some(desk) = Browser::start().await? else {
        return Ok(());
    };
    let app = TestApp::with_config(Config {
        kiosk_idle_secs: 4,
        ..Config::default()
    })
    .await;
    let d = schedule_setup::dermatology(&app).await;
    let (id, date) = schedule_setup::visit_starting_now(&app, &d, 1).await;
    let patient = app
        .db
        .get::<Patient>(&app.org_id, &d.patients[1].0)
        .await?
        .value;
    let base = app.spawn().await;
    let front = app.staff(Role::FrontDesk).clone();
    desk.sign_in(&base, &front.username, &front.password)
        .await?;
    desk.client
        .goto(&format!("{base}/today?location={}&date={date}", d.location))
        .await?;
    let status = format!("tr#visit-{id} td.c-status");
    desk.wait(Locator::Css(&status)).await?;

    let admin = app.staff(Role::Admin).clone();
    kiosk
        .sign_in(&base, &admin.username, &admin.password)
        .await?;
    kiosk.client.goto(&format!("{base}/admin/kiosks")).await?;
    kiosk
        .wait(Locator::Css("input#kiosk-name"))
        .await?
        .send_keys("Front entrance")
        .await?;
    kiosk
        .find("select#kiosk-location")
        .await?
        .select_by_value(&d.location)
        .await?;
    kiosk.step("60-kiosk-setup").await?;
    kiosk
        .find("form[action='/admin/kiosks'] button[type=submit]")
        .await?
        .click()
        .await?;
    kiosk.wait(Locator::Css("body.kiosk input#f-given")).await?;
    ensure!(
        kiosk.client.find(Locator::Css("nav")).await.is_err(),
        "the kiosk shows no staff navigation"
    );
    kiosk.step("61-kiosk-start").await?;

    // Left alone half-way, the kiosk starts over and forgets.
    kiosk.fill("input#f-given", &patient.given).await?;
    kiosk.fill("input#f-family", &patient.family).await?;
    let dob = patient.birth_date;
    let typed_dob = format!("{}/{}/{}", dob.month(), dob.day(), dob.year());
    kiosk.fill("input#f-birth_date", &typed_dob).await?;
    kiosk
        .find("form[action='/kiosk/find'] button")
        .await?
        .click()
        .await?;
    kiosk.wait(Locator::Css("input#f-phone")).await?;
    kiosk.step("62-kiosk-contact").await?;
    let started = Instant::now();
    kiosk
        .wait(Locator::Css("form[action='/kiosk/find']"))
        .await?;
    ensure!(
        started.elapsed() >= Duration::from_secs(2),
        "the start screen came back by the timeout, not at once"
    );
    let given = kiosk.find("input#f-given").await?.prop("value").await?;
    ensure!(
        given.as_deref() == Some(""),
        "nothing typed stays: {given:?}"
    );
    kiosk.step("63-kiosk-timed-out").await?;

    kiosk.fill("input#f-given", &patient.given).await?;
    kiosk.fill("input#f-family", &patient.family).await?;
    kiosk.fill("input#f-birth_date", &typed_dob).await?;
    kiosk
        .find("form[action='/kiosk/find'] button")
        .await?
        .click()
        .await?;
    kiosk.wait(Locator::Css("input#f-phone")).await?;
    kiosk
        .find("form[action='/kiosk/contact'] button[type=submit]")
        .await?
        .click()
        .await?;
    let canvas = kiosk.wait(Locator::Css("canvas#signature-canvas")).await?;
    let mut pen = MouseActions::new("pen".to_string()).then(PointerAction::MoveToElement {
        element: canvas,
        duration: None,
        x: -150.0,
        y: 10.0,
    });
    pen = pen.then(PointerAction::Down {
        button: MOUSE_BUTTON_LEFT,
    });
    for (x, y) in [(40.0, -25.0), (40.0, 30.0), (50.0, -20.0), (60.0, 15.0)] {
        pen = pen.then(PointerAction::MoveBy {
            duration: Some(Duration::from_millis(50)),
            x,
            y,
        });
    }
    pen = pen.then(PointerAction::Up {
        button: MOUSE_BUTTON_LEFT,
    });
    kiosk.client.perform_actions(pen).await?;
    let path = kiosk.find("input#signature").await?.prop("value").await?;
    ensure!(
        path.as_deref()
            .is_some_and(|p| p.starts_with('M') && p.contains('L')),
        "the drawn signature is recorded: {path:?}"
    );
    kiosk.full_step("64-kiosk-consent-signed").await?;
    kiosk
        .find("form[action='/kiosk/check-in'] button[type=submit]")
        .await?
        .click()
        .await?;
    kiosk.wait_text("main h1", "You are checked in").await?;
    kiosk.step("65-kiosk-checked-in").await?;

    desk.wait_text(&status, "Arrived (kiosk)").await?;
    desk.wait_text(&format!("tr#visit-{id} td.c-forms"), "Consent signed")
        .await?;
    desk.step("66-board-arrived-kiosk").await?;
    // The done screen hands the kiosk to the next patient by itself.
    kiosk
        .wait(Locator::Css("form[action='/kiosk/find']"))
        .await?;

    kiosk.close().await?;
    desk.close().await
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

/// The family name of one of the demo clinic's patients.
async fn demo_family_name(app: &TestApp) -> String {
    let (found, _) = app
        .db
        .search::<Patient>(
            &app.org_id,
            &[],
            Page {
                offset: 0,
                count: 1,
            },
        )
        .await
        .unwrap();
    found[0].value.family.clone()
}

/// A Chromium session behind its own chromedriver.
struct Browser {
    client: Client,
    driver: Driver,
    shots: PathBuf,
}

impl Browser {
    /// Starts chromedriver and Chromium, or returns `None` (after saying so)
    /// when they are not installed and the browser is not required.
    async fn start() -> Result<Option<Browser>> {
        if !Path::new(CHROMIUM).exists() || !Path::new(CHROMEDRIVER).exists() {
            if std::env::var("CAREFRONT_REQUIRE_BROWSER").is_ok_and(|v| v == "1") {
                bail!(
                    "CAREFRONT_REQUIRE_BROWSER=1 but {CHROMIUM} or {CHROMEDRIVER} is missing \
                     (apt-get install chromium chromium-driver)"
                );
            }
            eprintln!("skipped: chromium not installed ({CHROMIUM}, {CHROMEDRIVER})");
            return Ok(None);
        }
        let mut driver = Driver::start()?;
        let profile = driver.profile.display().to_string();
        let capabilities = serde_json::json!({
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--disable-quic",
                    format!("--user-data-dir={profile}"),
                    format!("--window-size={},{}", WIDE.0, WIDE.1),
                ],
            },
            "goog:loggingPrefs": { "browser": "ALL" },
        });
        // sqlx brings rustls' ring provider and fantoccini aws-lc-rs; with
        // two, rustls needs to be told (an Err only says one is installed).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = ClientBuilder::rustls()?
            .capabilities(capabilities.as_object().cloned().unwrap_or_default())
            .connect(&format!("http://127.0.0.1:{}", driver.port))
            .await
            .context("starting a Chromium session")?;
        driver.session = client.session_id().await?;
        let shots = artifacts_dir();
        std::fs::create_dir_all(&shots).with_context(|| format!("creating {}", shots.display()))?;
        let _ = std::fs::remove_file(shots.join(format!("{}.png", failure_name())));
        Ok(Some(Browser {
            client,
            driver,
            shots,
        }))
    }

    async fn wait(&self, locator: Locator<'_>) -> Result<Element> {
        let found = self
            .client
            .wait()
            .at_most(PAGE_WAIT)
            .for_element(locator)
            .await;
        match found {
            Ok(e) => Ok(e),
            Err(e) => {
                let url = self.client.current_url().await?;
                let _ = self.screenshot(&failure_name()).await;
                Err(e).with_context(|| format!("waiting for {locator:?} on {url}"))
            }
        }
    }

    async fn find(&self, css: &str) -> Result<Element> {
        let url = self.client.current_url().await?;
        self.client
            .find(Locator::Css(css))
            .await
            .with_context(|| format!("finding {css} on {url}"))
    }

    /// The visible text of every element matching `css`, read in one go:
    /// live updates may swap elements between two WebDriver calls.
    async fn texts(&self, css: &str) -> Result<Vec<String>> {
        let texts = self
            .client
            .execute(
                "return [...document.querySelectorAll(arguments[0])].map(e => e.innerText);",
                vec![serde_json::json!(css)],
            )
            .await?;
        Ok(serde_json::from_value(texts)?)
    }

    /// Waits until an element matching `css` shows `text`.
    async fn wait_text(&self, css: &str, text: &str) -> Result<()> {
        let started = Instant::now();
        loop {
            let texts = self.texts(css).await?;
            if texts.iter().any(|t| t.contains(text)) {
                return Ok(());
            }
            if started.elapsed() > PAGE_WAIT {
                let _ = self.screenshot(&failure_name()).await;
                bail!("{css} never showed {text:?}: {texts:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The id of the element that has the keyboard focus.
    async fn focused_id(&self) -> Result<String> {
        let e = self.client.active_element().await?;
        Ok(e.attr("id").await?.unwrap_or_default())
    }

    /// Types on the keyboard, into whatever has the focus.
    async fn keys(&self, text: &str) -> Result<()> {
        let mut keys = KeyActions::new("keyboard".to_string());
        for c in text.chars() {
            keys = keys
                .then(KeyAction::Down { value: c })
                .then(KeyAction::Up { value: c });
        }
        self.client.perform_actions(keys).await?;
        Ok(())
    }

    /// Signs in through the form and waits for the staff shell.
    async fn sign_in(&self, base: &str, username: &str, password: &str) -> Result<()> {
        self.client.goto(&format!("{base}/login")).await?;
        self.wait(Locator::Css("input#username"))
            .await?
            .send_keys(username)
            .await?;
        self.find("input#password")
            .await?
            .send_keys(password)
            .await?;
        self.find(".signin button[type=submit]")
            .await?
            .click()
            .await?;
        self.wait(Locator::Css("nav[aria-label=Main]")).await?;
        Ok(())
    }

    /// Types into the input matching `css`.
    async fn fill(&self, css: &str, text: &str) -> Result<()> {
        self.find(css).await?.send_keys(text).await?;
        Ok(())
    }

    /// Fills the registration form for Marisol, with the family name and
    /// phone given.
    async fn fill_registration(&self, family: &str, phone: &str) -> Result<()> {
        self.fill("#f-given", "Marisol").await?;
        self.fill("#f-family", family).await?;
        self.fill("#f-preferred_name", "Mari").await?;
        // Chromium's date field takes the digits segment by segment.
        self.fill("#f-birth_date", "07091984").await?;
        let typed = self.find("#f-birth_date").await?.prop("value").await?;
        ensure!(
            typed.as_deref() == Some("1984-07-09"),
            "the date field holds {typed:?}"
        );
        self.find("#f-sex").await?.select_by_value("female").await?;
        self.fill("#f-pronouns", "she/her").await?;
        self.fill("#f-addresses-0-line1", "418 Juniper Ln").await?;
        self.fill("#f-addresses-0-city", "Austin").await?;
        self.fill("#f-addresses-0-state", "TX").await?;
        self.fill("#f-addresses-0-postal_code", "78704").await?;
        self.fill("#f-phones-0-number", phone).await?;
        self.find("#f-phones-0-sms_consent").await?.click().await?;
        self.fill("#f-email", "marisol.q@example.com").await?;
        self.find("#f-preferred_contact")
            .await?
            .select_by_value("sms")
            .await?;
        self.find("#f-language")
            .await?
            .select_by_value("es")
            .await?;
        self.find("#f-interpreter_needed").await?.click().await?;
        self.fill("#f-contacts-0-name", "Rafael Quintanilla")
            .await?;
        self.find("#f-contacts-0-relationship")
            .await?
            .select_by_value("SPS")
            .await?;
        self.fill("#f-contacts-0-phone", "512-555-0142").await?;
        self.find("#f-contacts-0-emergency").await?.click().await?;
        self.find("#f-contacts-0-guarantor").await?.click().await?;
        self.fill("#f-alerts", "Needs wheelchair\nHard of hearing")
            .await?;
        Ok(())
    }

    /// A step whose screenshot shows the whole page, not only the window.
    async fn full_step(&self, name: &str) -> Result<()> {
        let height = self
            .client
            .execute(
                "return Math.ceil(document.documentElement.scrollHeight);",
                vec![],
            )
            .await?
            .as_u64()
            .unwrap_or(u64::from(WIDE.1));
        let height = u32::try_from(height).unwrap_or(WIDE.1).clamp(WIDE.1, 4000);
        self.client.set_window_size(WIDE.0, height + 120).await?;
        self.client
            .execute("window.scrollTo(0, 0);", vec![])
            .await?;
        let result = self.step(name).await;
        self.client.set_window_size(WIDE.0, WIDE.1).await?;
        result
    }

    async fn screenshot(&self, name: &str) -> Result<PathBuf> {
        let png = self.client.screenshot().await?;
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, png).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    /// Ends a step: the console is clean, and a screenshot records the page.
    async fn step(&self, name: &str) -> Result<()> {
        self.check_console().await?;
        let path = self.screenshot(name).await?;
        eprintln!("screenshot: {}", path.display());
        Ok(())
    }

    /// The same page at a phone's width, where it must not scroll sideways
    /// (wide tables scroll inside the content).
    async fn narrow_step(&self, name: &str) -> Result<()> {
        self.client.set_window_size(NARROW.0, NARROW.1).await?;
        let result = async {
            self.step(name).await?;
            let overflow = self
                .client
                .execute(
                    "const w = document.documentElement.clientWidth;
                     return [...document.querySelectorAll('body *')]
                       .filter(e => e.getBoundingClientRect().right > w + 1
                         && !e.closest('main')?.contains(e.closest('table')))
                       .map(e => e.tagName + (e.id ? '#' + e.id : '') + ' ' +
                         Math.round(e.getBoundingClientRect().right));",
                    vec![],
                )
                .await?;
            ensure!(
                overflow.as_array().is_some_and(Vec::is_empty),
                "{name}: wider than the {}px window: {overflow}",
                NARROW.0
            );
            Ok(())
        }
        .await;
        self.client.set_window_size(WIDE.0, WIDE.1).await?;
        result
    }

    /// Fails on any error the pages logged since the last check, such as a
    /// Content-Security-Policy violation or a failed asset.
    async fn check_console(&self) -> Result<()> {
        let Some(session) = &self.driver.session else {
            return Ok(());
        };
        let body = webdriver_http(
            self.driver.port,
            "POST",
            &format!("/session/{session}/se/log"),
            r#"{"type":"browser"}"#,
        )
        .context("reading the browser console")?;
        let log: serde_json::Value = serde_json::from_str(&body)?;
        let url = self.client.current_url().await?;
        // A page's own status (401 for a wrong password, 422 for a form with
        // errors) is logged too; the tests check those pages themselves.
        let own_status = format!("{url} - Failed to load resource: the server responded");
        let errors: Vec<String> = log["value"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter(|entry| entry["level"] == "SEVERE" || entry["level"] == "WARNING")
            .map(|entry| entry["message"].as_str().unwrap_or_default().to_string())
            .filter(|message| !message.starts_with(&own_status))
            .collect();
        ensure!(
            errors.is_empty(),
            "the browser console has errors on {url}: {errors:#?}"
        );
        Ok(())
    }

    async fn close(self) -> Result<()> {
        self.client.close().await?;
        drop(self.driver);
        Ok(())
    }
}

/// A chromedriver process in its own process group, with a fresh Chromium
/// profile. Dropping it (also when a test panics) ends the browser session,
/// the driver and the browser it started, and removes the profile.
struct Driver {
    child: Child,
    port: u16,
    session: Option<String>,
    profile: PathBuf,
}

impl Driver {
    fn start() -> Result<Driver> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let profile =
            std::env::temp_dir().join(format!("carefront-chromium-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&profile)?;
        let child = {
            use std::os::unix::process::CommandExt;
            Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .with_context(|| format!("starting {CHROMEDRIVER}"))?
        };
        let mut driver = Driver {
            child,
            port,
            session: None,
            profile,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = driver.child.try_wait()? {
                bail!("chromedriver exited at start: {status}");
            }
            ensure!(
                Instant::now() < deadline,
                "chromedriver did not listen on port {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(driver)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            // Quits Chromium; harmless when the session was already closed.
            let _ = webdriver_http(self.port, "DELETE", &format!("/session/{session}"), "");
        }
        // Anything left of the driver's process group, Chromium included.
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// One blocking HTTP/1.1 request to chromedriver, for the commands fantoccini
/// does not offer; returns the body.
fn webdriver_http(port: u16, method: &str, path: &str, body: &str) -> Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    // chromedriver keeps the connection open: read the head, then exactly
    // Content-Length bytes.
    let mut reader = std::io::BufReader::new(stream);
    let mut status = String::new();
    reader.read_line(&mut status)?;
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse()?;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    ensure!(
        status.starts_with("HTTP/1.1 200"),
        "chromedriver answered {method} {path} with {}",
        status.trim_end()
    );
    Ok(String::from_utf8(body)?)
}

/// The screenshot taken when a wait fails: `failed-<test name>`.
fn failure_name() -> String {
    let test = std::thread::current()
        .name()
        .unwrap_or("test")
        .replace("::", "-");
    format!("failed-{test}")
}

/// `<target>/artifacts/browser`, in the workspace's target directory.
fn artifacts_dir() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if Path::new(&dir).is_absolute() => PathBuf::from(dir),
        Some(dir) => workspace.join(dir),
        None => workspace.join("target"),
    };
    target.join("artifacts").join("browser")
}
