//! The self check-in kiosk: a tablet at a location's entrance, signed in as
//! a kiosk device for that location (its own credential, the `cf_kiosk`
//! cookie; never a staff session), so it can reach nothing but these
//! screens. The patient finds today's appointment with their name and date
//! of birth, confirms their contact details (shown masked), signs the
//! consent, and the board shows them "arrived (kiosk)".
//!
//! The kiosk keeps nothing between screens: each step posts back what the
//! patient typed and the server checks it all again, so a forged step can
//! reach no other visit. After `Config::kiosk_idle_secs` without a touch
//! the script returns to the start screen, replacing the page in history.
//!
//! Each step looks the patient up again, so each is refused while the
//! device is locked out (`KioskLookup::LOCKOUT`: too many lookups in a row
//! found nothing), before any lookup runs: whoever stands at the kiosk
//! cannot try names and dates of birth until one shows who has an
//! appointment. The count is the device's, in the database, so servers
//! sharing it count together; a check-in at the kiosk resets it.

use super::registration::{Fields, spec};
use super::schedule::{clock, day_bounds, today_in};
use super::{CsrfForm, error_page};
use crate::auth::{client_addr, sha256_hex, split_credential};
use crate::{AppState, ops};
use axum::Extension;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use carefront_domain::ValidationErrors;
use carefront_domain::audit::{Action, AuditEntry, Outcome};
use carefront_domain::directory::{Location, Versioned};
use carefront_domain::patient::{Patient, RegistrationRules};
use carefront_domain::visit::{
    CONSENT_TO_TREAT, ContactInput, ContactUpdate, KioskLookup, Signature, VisitStatus,
    mask_addresses, mask_email, mask_phone,
};
use carefront_store::{
    AppointmentQuery, AppointmentRecord, KioskArrival, KioskSession, Page, StoreError,
};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;

pub const KIOSK_COOKIE: &str = "cf_kiosk";

/// Seconds the "you are checked in" screen stays before the next patient.
const DONE_SECONDS: i64 = 10;

/// What a locked kiosk says instead of looking anyone up.
const TOO_MANY_TRIES: &str = "Too many tries. Please see the front desk.";

/// How long a closing screen stays: never longer than the idle timeout.
fn done_seconds(state: &AppState) -> i64 {
    DONE_SECONDS.min(state.config.kiosk_idle_secs)
}

pub fn routes(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/kiosk", get(start))
        .route("/kiosk/find", post(find))
        .route("/kiosk/contact", post(contact))
        .route("/kiosk/check-in", post(check_in))
        .layer(from_fn_with_state(state, require_kiosk))
}

/// Who is asking on the kiosk's screens: the device, from where.
#[derive(Clone)]
struct KioskClient {
    session: KioskSession,
    addr: Option<String>,
}

impl KioskClient {
    fn entry(&self, action: Action, outcome: Outcome) -> AuditEntry {
        let mut e = AuditEntry::new(format!("kiosk {}", self.session.device.id), action, outcome);
        e.client_addr = self.addr.clone();
        e
    }
}

/// Middleware: only a signed-in kiosk device reaches the kiosk's screens.
async fn require_kiosk(
    State(state): State<AppState>,
    jar: CookieJar,
    mut req: Request,
    next: Next,
) -> Response {
    let credential = jar
        .get(KIOSK_COOKIE)
        .and_then(|c| split_credential(c.value()).map(|(o, s)| (o.to_string(), s.to_string())));
    let session = match credential {
        Some((org_id, secret)) => match state.db.kiosk_session(&org_id, &sha256_hex(&secret)).await
        {
            Ok(s) => s,
            Err(e) => return ops::internal_error(e),
        },
        None => None,
    };
    let Some(session) = session else {
        return error_page(
            StatusCode::FORBIDDEN,
            "Not a kiosk",
            "This device is not signed in as a self check-in kiosk. An administrator sets kiosks up under Admin → Kiosks, on the device itself.",
        );
    };
    let addr = client_addr(&req);
    req.extensions_mut().insert(session.clone());
    req.extensions_mut().insert(KioskClient { session, addr });
    next.run(req).await
}

/// Everything the screens post; each step posts the earlier steps' inputs
/// again (hidden), so the server can check them again.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct KioskInput {
    family: String,
    given: String,
    birth_date: String,
    appointment_id: String,
    phone: String,
    email: String,
    #[serde(rename = "address.line1")]
    line1: String,
    #[serde(rename = "address.city")]
    city: String,
    #[serde(rename = "address.state")]
    state: String,
    #[serde(rename = "address.postal_code")]
    postal_code: String,
    signature: String,
    signature_typed: String,
}

impl KioskInput {
    fn contact(&self) -> ContactInput<'_> {
        ContactInput {
            phone: &self.phone,
            email: &self.email,
            line1: &self.line1,
            city: &self.city,
            state: &self.state,
            postal_code: &self.postal_code,
        }
    }
}

/// The kiosk's location, read on each request.
struct Site {
    location: Location,
    tz: TimeZone,
}

async fn site(state: &AppState, k: &KioskClient) -> Result<Site, Response> {
    let location = state
        .db
        .get::<Location>(&k.session.org_id, &k.session.device.location_id)
        .await
        .map_err(ops::internal_error)?
        .value;
    let tz = TimeZone::get(&location.timezone).map_err(ops::internal_error)?;
    Ok(Site { location, tz })
}

/// The appointment a patient found, with their record.
struct Found {
    patient: Versioned<Patient>,
    appointment: Versioned<AppointmentRecord>,
}

enum Lookup {
    Invalid(ValidationErrors),
    /// Nobody of that name and birth date has an appointment here today.
    NotFound,
    /// Their visits today are all under way or over.
    AlreadyHere,
    Found(Box<Found>),
}

/// Finds today's appointment at the kiosk's location of the patient typed
/// (the earliest one not yet arrived; `appointment_id` when a later step
/// names it). Matching is strict: a near miss is sent to the desk.
async fn look_up(
    state: &AppState,
    k: &KioskClient,
    site: &Site,
    input: &KioskInput,
) -> Result<Lookup, StoreError> {
    let org_id = &k.session.org_id;
    let today = today_in(&site.tz);
    let lookup = match KioskLookup::parse(&input.family, &input.given, &input.birth_date, today) {
        Ok(l) => l,
        Err(e) => return Ok(Lookup::Invalid(e)),
    };
    let key = format!("d:{}", lookup.birth_date);
    let people = state
        .db
        .records_by_keys::<Patient>(org_id, &[key], 1000)
        .await?;
    let (from, until) = day_bounds(&site.tz, today);
    let mut waiting = Vec::new();
    let mut under_way = false;
    for patient in people
        .into_iter()
        .filter(|p| p.value.active && p.value.replaced_by.is_none() && lookup.matches(&p.value))
    {
        let query = AppointmentQuery {
            patient_id: Some(patient.id.clone()),
            practitioner_id: None,
            location_id: Some(k.session.device.location_id.clone()),
            from: Some(from),
            until: Some(until),
            statuses: Vec::new(),
        };
        let page = Page {
            offset: 0,
            count: 20,
        };
        let (visits, _) = state
            .db
            .visits(org_id, &query, None, &[], None, page)
            .await?;
        for (appointment, visit, _) in visits {
            match visit.status {
                VisitStatus::Scheduled => waiting.push((appointment, patient.clone())),
                VisitStatus::Cancelled | VisitStatus::NoShow => {}
                _ => under_way = true,
            }
        }
    }
    waiting.sort_by_key(|(a, _)| a.value.appointment.start);
    let chosen = match input.appointment_id.as_str() {
        "" => waiting.into_iter().next(),
        id => waiting.into_iter().find(|(a, _)| a.id == id),
    };
    Ok(match chosen {
        Some((appointment, patient)) => Lookup::Found(Box::new(Found {
            patient,
            appointment,
        })),
        None if under_way => Lookup::AlreadyHere,
        None => Lookup::NotFound,
    })
}

fn kiosk_sentence(field: &str, message: &str) -> String {
    let label = match field {
        "family" => "Last name",
        "given" => "First name",
        "birth_date" => "Date of birth",
        "phone" => "Phone",
        "email" => "Email",
        "address.line1" => "Street address",
        "address.city" => "City",
        "address.state" => "State",
        "address.postal_code" => "ZIP code",
        "signature" => "Signature",
        other => other,
    };
    format!("{label} {message}.")
}

/// A kiosk screen: the location's name, no navigation, no staff data. The
/// body's `data-kiosk-idle` is what the script counts down from.
fn screen(site: &Site, idle_seconds: i64, title: &str, content: Markup) -> Html<String> {
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (title) " · " (site.location.name) }
                    link rel="icon" href="/assets/favicon.svg" type="image/svg+xml";
                    link rel="stylesheet" href="/assets/app.css";
                    script src="/assets/kiosk.js" defer {}
                }
                body.kiosk data-kiosk-idle=(idle_seconds) {
                    header.kiosk-top {
                        span.kiosk-site { (site.location.name) }
                        span { "Self check-in" }
                    }
                    main #main tabindex="-1" {
                        h1 { (title) }
                        (content)
                    }
                    footer.kiosk-foot {
                        p { "Need help? Please see the front desk." }
                        a.button.secondary href="/kiosk" data-kiosk-restart { "Start over" }
                    }
                }
            }
        }
        .into_string(),
    )
}

fn hidden_identity(csrf: &str, input: &KioskInput, appointment_id: &str) -> Markup {
    html! {
        input type="hidden" name="csrf" value=(csrf);
        input type="hidden" name="family" value=(input.family);
        input type="hidden" name="given" value=(input.given);
        input type="hidden" name="birth_date" value=(input.birth_date);
        input type="hidden" name="appointment_id" value=(appointment_id);
    }
}

fn start_screen(
    state: &AppState,
    k: &KioskClient,
    site: &Site,
    input: &KioskInput,
    errors: &ValidationErrors,
    notice: Option<&str>,
) -> Html<String> {
    let f = Fields {
        errors,
        sentence: kiosk_sentence,
    };
    screen(
        site,
        state.config.kiosk_idle_secs,
        "Welcome! Check in for your appointment",
        html! {
            @if let Some(n) = notice {
                p.notice.kiosk-notice role="alert" { (n) }
            } @else if !errors.is_empty() {
                p.notice.kiosk-notice role="alert" { "Please check what is marked below." }
            }
            form.stack.kiosk-form method="post" action="/kiosk/find" autocomplete="off" novalidate {
                input type="hidden" name="csrf" value=(k.session.csrf_token);
                (f.text("given", "First name", &input.given, spec("text", "w-l").req(true).focus(true)))
                (f.text("family", "Last name", &input.family, spec("text", "w-l").req(true)))
                (f.text("birth_date", "Date of birth", &input.birth_date,
                    spec("text", "w-m").req(true).hint("Month / day / year, such as 04/27/1985")))
                button.big type="submit" { "Find my appointment" }
            }
        },
    )
}

/// `GET /kiosk`: the start screen, empty (saying so while the device
/// refuses lookups).
async fn start(State(state): State<AppState>, Extension(k): Extension<KioskClient>) -> Response {
    let locked = k.session.device.lookups_locked(Timestamp::now());
    match site(&state, &k).await {
        Ok(site) => start_screen(
            &state,
            &k,
            &site,
            &KioskInput::default(),
            &ValidationErrors::new(),
            locked.then_some(TOO_MANY_TRIES),
        )
        .into_response(),
        Err(r) => r,
    }
}

/// Answers a step while the device refuses lookups: the start screen,
/// empty, saying so; the refusal is audited.
async fn too_many_tries(state: &AppState, k: &KioskClient, site: &Site) -> Response {
    let entry = k.entry(Action::Search, Outcome::Denied).detail(
        "self check-in: lookup refused, too many lookups at this kiosk found no appointment",
    );
    if let Err(e) = state.audit.append(&k.session.org_id, vec![entry]).await {
        return ops::internal_error(e);
    }
    locked_screen(state, k, site)
}

fn locked_screen(state: &AppState, k: &KioskClient, site: &Site) -> Response {
    let page = start_screen(
        state,
        k,
        site,
        &KioskInput::default(),
        &ValidationErrors::new(),
        Some(TOO_MANY_TRIES),
    );
    (StatusCode::TOO_MANY_REQUESTS, page).into_response()
}

/// Counts a lookup that found nothing against the device, and audits it.
/// Returns whether the device now refuses lookups.
async fn count_failed_lookup(state: &AppState, k: &KioskClient) -> Result<bool, StoreError> {
    let now = Timestamp::now();
    let mut tx = state.db.begin(&k.session.org_id).await?;
    let after = tx
        .kiosk_lookup_failed(&k.session, k.addr.clone(), now)
        .await?;
    tx.commit().await?;
    Ok(KioskLookup::LOCKOUT.is_locked(after.locked_until_us, now.as_microsecond()))
}

/// Answers a step whose lookup did not find a visit to check in: the start
/// screen again, saying why (never whose record was near).
async fn not_found(
    state: &AppState,
    k: &KioskClient,
    site: &Site,
    input: &KioskInput,
    lookup: Lookup,
) -> Response {
    let (status, errors, notice) = match lookup {
        Lookup::Invalid(e) => (StatusCode::UNPROCESSABLE_ENTITY, e, None),
        Lookup::NotFound => (
            StatusCode::OK,
            ValidationErrors::new(),
            Some(
                "We could not find an appointment here today for that name and date of birth. \
                 Please check what you typed, or see the front desk.",
            ),
        ),
        Lookup::AlreadyHere => {
            return screen(
                site,
                done_seconds(state),
                "You are already checked in",
                html! { p.kiosk-lead { "Please have a seat. We will call you shortly." } },
            )
            .into_response();
        }
        Lookup::Found(_) => unreachable!("a found visit is answered by its step"),
    };
    if notice.is_some() {
        match count_failed_lookup(state, k).await {
            Ok(false) => {}
            Ok(true) => return locked_screen(state, k, site),
            Err(e) => return ops::internal_error(e),
        }
    }
    (status, start_screen(state, k, site, input, &errors, notice)).into_response()
}

fn contact_screen(
    state: &AppState,
    k: &KioskClient,
    site: &Site,
    found: &Found,
    input: &KioskInput,
    errors: &ValidationErrors,
) -> Html<String> {
    let p = &found.patient.value;
    let f = Fields {
        errors,
        sentence: kiosk_sentence,
    };
    let at = clock(
        found
            .appointment
            .value
            .appointment
            .start
            .to_zoned(site.tz.clone())
            .datetime(),
    );
    screen(
        site,
        state.config.kiosk_idle_secs,
        "Are your contact details still right?",
        html! {
            p.kiosk-lead { "Hello, " (p.preferred_name.as_deref().unwrap_or(&p.given)) ". We found your appointment at " strong { (at) } "." }
            @if !errors.is_empty() {
                p.notice.kiosk-notice role="alert" { "Please check what is marked below." }
            }
            dl.kiosk-on-file {
                dt { "Phone" } dd { (p.phones.first().map(|ph| mask_phone(&ph.number)).unwrap_or_else(|| "none on file".into())) }
                dt { "Email" } dd { (p.email.as_deref().map(mask_email).unwrap_or_else(|| "none on file".into())) }
                dt { "Home address" } dd { (mask_addresses(p)) }
            }
            form.stack.kiosk-form method="post" action="/kiosk/contact" autocomplete="off" novalidate {
                (hidden_identity(&k.session.csrf_token, input, &found.appointment.id))
                p { "If something changed, type the new details. Leave a box empty to keep what we have. The front desk will confirm changes with you." }
                (f.text("phone", "New phone number", &input.phone, spec("tel", "w-m")))
                (f.text("email", "New email", &input.email, spec("email", "w-l")))
                fieldset {
                    legend { "New home address" }
                    (f.text("address.line1", "Street address", &input.line1, spec("text", "w-l")))
                    (f.text("address.city", "City", &input.city, spec("text", "w-m")))
                    (f.text("address.state", "State", &input.state, spec("text", "w-s").hint("Two letters, such as TX")))
                    (f.text("address.postal_code", "ZIP code", &input.postal_code, spec("text", "w-s")))
                }
                button.big type="submit" { "Continue" }
            }
        },
    )
}

/// Audits that the kiosk showed this patient's (masked) details.
async fn audit_shown(state: &AppState, k: &KioskClient, found: &Found) -> Result<(), Response> {
    let entry = k
        .entry(Action::Read, Outcome::Success)
        .resource("Appointment", Some(&found.appointment.id))
        .patient(&found.patient.id)
        .detail("self check-in: the patient found their appointment");
    state
        .audit
        .append(&k.session.org_id, vec![entry])
        .await
        .map_err(ops::internal_error)
}

/// `POST /kiosk/find`: the start screen's name and date of birth.
async fn find(
    State(state): State<AppState>,
    Extension(k): Extension<KioskClient>,
    CsrfForm(input): CsrfForm<KioskInput>,
) -> Response {
    let (site, found) = match found_visit(&state, &k, &input).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    if let Err(r) = audit_shown(&state, &k, &found).await {
        return r;
    }
    let fresh = KioskInput {
        family: input.family,
        given: input.given,
        birth_date: input.birth_date,
        ..KioskInput::default()
    };
    contact_screen(&state, &k, &site, &found, &fresh, &ValidationErrors::new()).into_response()
}

/// The visit a step's posted identity names, or the page answering that
/// there is none to check in.
async fn found_visit(
    state: &AppState,
    k: &KioskClient,
    input: &KioskInput,
) -> Result<(Site, Box<Found>), Response> {
    let site = site(state, k).await?;
    // The device was read for this request (`require_kiosk`).
    if k.session.device.lookups_locked(Timestamp::now()) {
        return Err(too_many_tries(state, k, &site).await);
    }
    match look_up(state, k, &site, input).await {
        Ok(Lookup::Found(found)) => Ok((site, found)),
        Ok(lookup) => Err(not_found(state, k, &site, input, lookup).await),
        Err(e) => Err(ops::internal_error(e)),
    }
}

/// The contact changes posted, or the contact screen again naming the
/// fields that are wrong.
async fn contact_update(
    state: &AppState,
    k: &KioskClient,
    site: &Site,
    found: &Found,
    input: &KioskInput,
) -> Result<ContactUpdate, Response> {
    let rules = state
        .db
        .setting::<RegistrationRules>(&k.session.org_id)
        .await
        .map_err(ops::internal_error)?;
    ContactUpdate::parse(&input.contact(), &rules.phone_region).map_err(|errors| {
        let page = contact_screen(state, k, site, found, input, &errors);
        (StatusCode::UNPROCESSABLE_ENTITY, page).into_response()
    })
}

fn consent_screen(
    state: &AppState,
    k: &KioskClient,
    site: &Site,
    found: &Found,
    input: &KioskInput,
    errors: &ValidationErrors,
) -> Html<String> {
    let f = Fields {
        errors,
        sentence: kiosk_sentence,
    };
    let (invalid, error_id, block) = f.error_block("signature");
    screen(
        site,
        state.config.kiosk_idle_secs,
        "Please read and sign",
        html! {
            form.stack.kiosk-form method="post" action="/kiosk/check-in" autocomplete="off" novalidate {
                (hidden_identity(&k.session.csrf_token, input, &found.appointment.id))
                input type="hidden" name="phone" value=(input.phone);
                input type="hidden" name="email" value=(input.email);
                input type="hidden" name="address.line1" value=(input.line1);
                input type="hidden" name="address.city" value=(input.city);
                input type="hidden" name="address.state" value=(input.state);
                input type="hidden" name="address.postal_code" value=(input.postal_code);
                section.kiosk-consent aria-labelledby="consent-title" {
                    h2 #consent-title { (CONSENT_TO_TREAT.title) }
                    p { (CONSENT_TO_TREAT.text) }
                }
                div.field.invalid[invalid.is_some()] {
                    p #signature-label.label { "Sign with your finger in the box" }
                    div.signature-pad hidden data-signature-pad {
                        canvas #signature-canvas width="600" height="200"
                            aria-labelledby="signature-label" aria-describedby=[error_id.as_deref()] {}
                        input #signature type="hidden" name="signature" value="";
                        button.secondary type="button" data-signature-clear { "Clear the signature" }
                    }
                    (block)
                }
                (f.text("signature_typed", "Or type your full name to sign", &input.signature_typed, spec("text", "w-l")))
                button.big type="submit" { "Sign and check in" }
            }
        },
    )
}

/// `POST /kiosk/contact`: the contact changes (optional); then the consent.
async fn contact(
    State(state): State<AppState>,
    Extension(k): Extension<KioskClient>,
    CsrfForm(input): CsrfForm<KioskInput>,
) -> Response {
    let (site, found) = match found_visit(&state, &k, &input).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    if let Err(r) = contact_update(&state, &k, &site, &found, &input).await {
        return r;
    }
    consent_screen(&state, &k, &site, &found, &input, &ValidationErrors::new()).into_response()
}

/// `POST /kiosk/check-in`: the signature; the visit becomes arrived.
async fn check_in(
    State(state): State<AppState>,
    Extension(k): Extension<KioskClient>,
    CsrfForm(input): CsrfForm<KioskInput>,
) -> Response {
    let (site, found) = match found_visit(&state, &k, &input).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let contact = match contact_update(&state, &k, &site, &found, &input).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let signature = match Signature::parse(
        &input.signature,
        &input.signature_typed,
        &found.patient.value,
    ) {
        Ok(s) => s,
        Err(errors) => {
            let page = consent_screen(&state, &k, &site, &found, &input, &errors);
            return (StatusCode::UNPROCESSABLE_ENTITY, page).into_response();
        }
    };
    let saved = async {
        let mut tx = state.db.begin(&k.session.org_id).await?;
        let arrival = KioskArrival {
            appointment_id: &found.appointment.id,
            consent: &CONSENT_TO_TREAT,
            signature: &signature,
            contact: &contact,
        };
        tx.kiosk_check_in(&k.session, &arrival, k.addr.clone(), Timestamp::now())
            .await?;
        tx.commit().await
    }
    .await;
    match saved {
        Ok(()) => {}
        // Checked in meanwhile (another kiosk, or the desk).
        Err(StoreError::Invalid(_) | StoreError::Conflict(_)) => {
            return not_found(&state, &k, &site, &input, Lookup::AlreadyHere).await;
        }
        Err(e) => return ops::internal_error(e),
    }
    screen(
        &site,
        done_seconds(&state),
        "You are checked in",
        html! {
            p.kiosk-lead { "Thank you. Please have a seat; we will call you shortly." }
            @if !contact.is_empty() {
                p { "The front desk will confirm your new contact details with you." }
            }
        },
    )
    .into_response()
}

/// `GET /assets/kiosk.js` is public; the kiosk's own styles are in app.css.
pub const KIOSK_JS: &str = include_str!("../../assets/kiosk.js");

/// Sets a kiosk's credential on the browser that asked.
pub fn kiosk_cookie(state: &AppState, value: String) -> Cookie<'static> {
    Cookie::build((KIOSK_COOKIE, value))
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(state.config.secure_cookies)
        .path("/kiosk")
        // A kiosk stays signed in until an administrator revokes it.
        .permanent()
        .build()
}
