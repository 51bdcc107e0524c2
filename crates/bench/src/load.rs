//! Load drivers: many concurrent clients, latencies per request, over HTTP
//! against a real `carefront serve` process.

use crate::Args;
use crate::dataset::Dataset;
use crate::server::{Server, process_cpu_seconds};
use anyhow::{Context, Result, bail};
use carefront_domain::patient::Patient;
use carefront_domain::scheduling::{AppointmentType, PatientEligibility};
use carefront_synth::PatientGenerator;
use carefront_synth::duplicates::{Origin, evaluation_set};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Latencies of one kind of request.
#[derive(Debug, Default, Clone)]
pub struct Latencies {
    pub requests: u64,
    pub errors: u64,
    /// Requests whose answer was checked for an expected record, and how
    /// many contained it.
    pub checked: u64,
    pub found: u64,
    latencies_us: Vec<u64>,
}

impl Latencies {
    fn add(&mut self, other: Latencies) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.checked += other.checked;
        self.found += other.found;
        self.latencies_us.extend(other.latencies_us);
    }

    /// One answer that took `elapsed`; `ok` when it was what was asked for.
    pub fn record(&mut self, elapsed: Duration, ok: bool) {
        self.latencies_us.push(elapsed.as_micros() as u64);
        self.requests += 1;
        self.errors += u64::from(!ok);
    }

    pub fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let mut sorted = self.latencies_us.clone();
        sorted.sort_unstable();
        let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
        sorted[rank] as f64 / 1000.0
    }
}

#[derive(Debug, Default, Clone)]
pub struct Figures {
    pub all: Latencies,
    /// The same figures per kind of request (query form), by label.
    pub by_label: BTreeMap<&'static str, Latencies>,
    pub elapsed: Duration,
    /// Where measured: the CPU the server and the harness used meanwhile.
    pub cpu: Option<CpuUse>,
}

/// Cores busy on average over a run (CPU seconds per second).
#[derive(Debug, Clone, Copy)]
pub struct CpuUse {
    pub server_cores: f64,
    pub harness_cores: f64,
}

/// The server's and the harness's CPU seconds so far.
fn cpu_times(server: &Server) -> Option<(f64, f64)> {
    server
        .cpu_seconds()
        .zip(process_cpu_seconds(std::process::id()))
}

impl CpuUse {
    /// From [`cpu_times`] read `elapsed` apart.
    fn between(before: (f64, f64), after: (f64, f64), elapsed: Duration) -> CpuUse {
        let secs = elapsed.as_secs_f64().max(1e-9);
        CpuUse {
            server_cores: (after.0 - before.0) / secs,
            harness_cores: (after.1 - before.1) / secs,
        }
    }
}

impl Figures {
    pub fn throughput(&self) -> f64 {
        self.all.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// One request a client sends.
pub struct Request {
    pub label: &'static str,
    pub path: String,
    /// POSTed as `application/fhir+json` when present; GET otherwise.
    pub body: Option<String>,
    /// Text the answer must contain for the request to count as finding
    /// what it looked for.
    pub expect: Option<String>,
}

/// The value of a page's hidden `csrf` field: the sign-in form's token,
/// or on a signed-in page the session's, which every form post needs.
pub fn csrf_field(html: &str) -> Result<&str> {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).context("no csrf field")? + marker.len();
    let len = html[start..].find('"').context("no csrf field")?;
    Ok(&html[start..start + len])
}

/// Signs in through the form, as a browser does; returns the cookie header.
async fn sign_in(
    client: &reqwest::Client,
    base: &str,
    username: &str,
    password: &str,
) -> Result<String> {
    let page = client.get(format!("{base}/login")).send().await?;
    let login_cookie = page
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("cf_login_csrf="))
        .and_then(|v| v.split(';').next())
        .context("no sign-in cookie")?
        .to_string();
    let html = page.text().await?;
    let csrf = csrf_field(&html)?;
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("csrf", csrf)
        .append_pair("username", username)
        .append_pair("password", password)
        .finish();
    let res = client
        .post(format!("{base}/login"))
        .header("cookie", login_cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await?;
    let session = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("cf_session="))
        .and_then(|v| v.split(';').next())
        .context("sign-in failed")?
        .to_string();
    Ok(session)
}

/// Signs in as the demo clinic's front desk user of `seed` (every dataset
/// has that account); returns the cookie header.
pub async fn sign_in_front_desk(client: &reqwest::Client, base: &str, seed: u64) -> Result<String> {
    let staff = carefront_synth::demo_clinic(seed).staff;
    let desk = staff
        .iter()
        .find(|s| s.role == carefront_domain::Role::FrontDesk)
        .context("no front desk user in the demo clinic")?;
    sign_in(client, base, &desk.username, &desk.password).await
}

/// How requests are authenticated.
#[derive(Clone)]
pub enum Auth {
    /// `cookie` header of a staff session.
    Cookie(String),
    /// A FHIR bearer token.
    Bearer(String),
}

async fn send(
    client: &reqwest::Client,
    base: &str,
    auth: &Auth,
    r: &Request,
) -> (bool, Option<bool>) {
    let url = format!("{base}{}", r.path);
    let builder = match &r.body {
        Some(body) => client
            .post(&url)
            .header("content-type", "application/fhir+json")
            .body(body.clone()),
        None => client.get(&url),
    };
    let builder = match auth {
        Auth::Cookie(c) => builder.header("cookie", c),
        Auth::Bearer(t) => builder.header("authorization", format!("Bearer {t}")),
    };
    match builder.send().await {
        Ok(res) if res.status().is_success() => match res.text().await {
            Ok(text) => (true, r.expect.as_ref().map(|e| text.contains(e.as_str()))),
            Err(_) => (false, None),
        },
        _ => (false, None),
    }
}

/// Runs `clients` loops for `seconds`, each sending the requests that
/// `request_for(client, i)` describes.
pub async fn drive(
    client: reqwest::Client,
    base: &str,
    auth: Auth,
    args: &Args,
    request_for: Arc<dyn Fn(usize, u64) -> Request + Send + Sync>,
) -> Result<Figures> {
    // One untimed request first: the server's caches warm up as they would
    // in a clinic that has been open for a while.
    let (ok, _) = send(&client, base, &auth, &request_for(0, 0)).await;
    if !ok {
        bail!("the first request failed; is the scenario's endpoint served?");
    }
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..args.clients {
        let (client, base, auth, request_for) = (
            client.clone(),
            base.to_string(),
            auth.clone(),
            request_for.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut by_label: BTreeMap<&'static str, Latencies> = BTreeMap::new();
            let mut i = 0u64;
            while Instant::now() < deadline {
                let r = request_for(c, i);
                let t = Instant::now();
                let (ok, found) = send(&client, &base, &auth, &r).await;
                let f = by_label.entry(r.label).or_default();
                f.record(t.elapsed(), ok);
                if let Some(found) = found {
                    f.checked += 1;
                    f.found += u64::from(found);
                }
                i += 1;
            }
            by_label
        }));
    }
    let mut total = Figures::default();
    for t in tasks {
        for (label, f) in t.await? {
            total.all.add(f.clone());
            total.by_label.entry(label).or_default().add(f);
        }
    }
    total.elapsed = started.elapsed();
    if total.all.requests == 0 {
        bail!("no request completed");
    }
    Ok(total)
}

pub fn http_client() -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(64)
        .build()?)
}

fn url_encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Index of the dataset patient that client `c` asks about in its `i`th request.
fn pick(c: usize, i: u64, size: u64) -> u64 {
    (i.wrapping_mul(7919)
        .wrapping_add((c as u64).wrapping_mul(104_729)))
        % size.max(1)
}

/// A phone typed the ways the front desk types them.
fn typed_phone(e164: &str, style: u64) -> String {
    let n = e164.strip_prefix("+1").unwrap_or(e164);
    if n.len() != 10 {
        return e164.to_string();
    }
    let (a, b, c) = (&n[..3], &n[3..6], &n[6..]);
    match style % 4 {
        0 => format!("({a}) {b}-{c}"),
        1 => format!("{a}.{b}.{c}"),
        2 => format!("{a}{b}{c}"),
        _ => format!("+1 {a} {b} {c}"),
    }
}

fn lower_prefix(s: &str, n: usize) -> String {
    s.chars().take(n).collect::<String>().to_lowercase()
}

/// The query forms of the search box, each derived from one dataset
/// patient (so every query has at least that patient as its answer).
pub const QUERY_FORMS: [&str; 9] = [
    "full-name",
    "prefixes",
    "family-comma-given",
    "family-only",
    "family-dob-mdyy",
    "name-dob-iso",
    "phone",
    "mrn",
    "email",
];

/// What the front desk would type to find dataset patient `index`, in
/// query form `form`; `None` when the patient lacks what the form needs.
pub fn search_query(p: &Patient, index: u64, form: usize) -> Option<String> {
    let dob = p.birth_date;
    Some(match QUERY_FORMS[form] {
        "full-name" => format!("{} {}", p.given, p.family),
        "prefixes" => format!(
            "{} {}",
            lower_prefix(&p.family, 3),
            lower_prefix(&p.given, 2)
        ),
        "family-comma-given" => format!("{}, {}", p.family, p.given),
        "family-only" => p.family.clone(),
        "family-dob-mdyy" => format!(
            "{} {}/{}/{:02}",
            p.family,
            dob.month(),
            dob.day(),
            dob.year() % 100
        ),
        "name-dob-iso" => format!("{} {} {dob}", p.given, p.family),
        "phone" => typed_phone(&p.phones.first()?.number, index),
        "mrn" => (index + 1).to_string(),
        "email" => p.email.clone()?,
        _ => return None,
    })
}

/// The front desk's search box (`GET /patients?q=`), signed in as front
/// desk, with the query forms of [`QUERY_FORMS`] in turn, each for a
/// dataset patient picked deterministically.
pub async fn patient_search(server: &Server, data: &Dataset, args: &Args) -> Result<Figures> {
    let client = http_client()?;
    let cookie = sign_in_front_desk(&client, &server.base, args.seed).await?;
    let generator = PatientGenerator::new(args.seed);
    let size = args.size;
    let request_for = Arc::new(move |c: usize, i: u64| {
        let index = pick(c, i, size);
        let p = generator.patient(index);
        let first = (i as usize).wrapping_add(c) % QUERY_FORMS.len();
        // Forms the patient cannot serve (no phone, no email) fall to the next.
        let (form, q) = (0..QUERY_FORMS.len())
            .map(|k| (first + k) % QUERY_FORMS.len())
            .find_map(|f| search_query(&p, index, f).map(|q| (f, q)))
            .expect("every patient has a name");
        Request {
            label: QUERY_FORMS[form],
            path: format!("/patients?q={}", url_encode(&q)),
            body: None,
            // Dataset patient i has MRN i + 1; a query too broad to show
            // it (a common family name alone) says so on the page.
            expect: Some(carefront_store::format_mrn(index as i64 + 1)),
        }
    });
    drive(
        client,
        &server.base,
        Auth::Cookie(cookie),
        args,
        request_for,
    )
    .await
    .with_context(|| format!("patient-search against {}", data.display))
}

/// Base patients of the duplicate-check probes: duplicates of dataset
/// patients below this index are sent.
pub const PROBE_BASE: usize = 20_000;

/// A Patient resource as a registration would send it to `$match`.
fn fhir_patient(p: &Patient) -> serde_json::Value {
    let mut given = vec![p.given.clone()];
    given.extend(p.middle.clone());
    let mut telecom: Vec<serde_json::Value> = p
        .phones
        .iter()
        .map(|ph| serde_json::json!({ "system": "phone", "value": ph.number, "use": ph.kind.code() }))
        .collect();
    if let Some(e) = &p.email {
        telecom.push(serde_json::json!({ "system": "email", "value": e }));
    }
    let mut resource = serde_json::json!({
        "resourceType": "Patient",
        "name": [{ "family": p.family, "given": given }],
        "birthDate": p.birth_date.to_string(),
        "gender": p.sex.code(),
        "telecom": telecom,
    });
    if let Some(a) = p.home_address() {
        let mut line = vec![a.line1.clone()];
        line.extend(a.line2.clone());
        resource["address"] = serde_json::json!([{
            "line": line, "city": a.city, "state": a.state, "postalCode": a.postal_code
        }]);
    }
    resource
}

/// The registration duplicate check, as FHIR `POST /fhir/R4/Patient/$match`
/// with a bearer token of the front desk: each probe is a second
/// registration (with typos, a nickname, swapped day and month, a new
/// name...) of a dataset patient, from the labelled duplicates of
/// `carefront_synth::duplicates`; an answer "finds" it when the original's
/// MRN is among the candidates.
pub async fn duplicate_check(
    server: &Server,
    data: &Dataset,
    args: &Args,
    token: &str,
) -> Result<Figures> {
    let client = http_client()?;
    let base = (args.size as usize).min(PROBE_BASE);
    let set = evaluation_set(args.seed, base);
    let probes: Vec<(String, String)> = set
        .records
        .iter()
        .filter_map(|r| match &r.origin {
            Origin::Duplicate { of, .. } => Some((
                serde_json::json!({
                    "resourceType": "Parameters",
                    "parameter": [
                        { "name": "resource", "resource": fhir_patient(&r.patient) },
                        { "name": "onlyCertainMatches", "valueBoolean": false }
                    ]
                })
                .to_string(),
                carefront_store::format_mrn(*of as i64 + 1),
            )),
            _ => None,
        })
        .collect();
    if probes.is_empty() {
        bail!("the dataset is too small for duplicate probes");
    }
    let probes = Arc::new(probes);
    let request_for = Arc::new(move |c: usize, i: u64| {
        let (body, mrn) = &probes[pick(c, i, probes.len() as u64) as usize];
        Request {
            label: "patient-match",
            path: "/fhir/R4/Patient/$match".into(),
            body: Some(body.clone()),
            expect: Some(mrn.clone()),
        }
    });
    drive(
        client,
        &server.base,
        Auth::Bearer(token.to_string()),
        args,
        request_for,
    )
    .await
    .with_context(|| format!("duplicate-check against {}", data.display))
}

/// The same probes as [`duplicate_check`], through `Db::match_candidates`
/// in this process (the check registration runs before saving), for when
/// the server has no `$match` endpoint.
pub async fn duplicate_check_in_process(data: &Dataset, args: &Args) -> Result<Figures> {
    use carefront_domain::matching::{MatchRecord, Thresholds};
    let db = carefront_store::Db::connect(&data.url).await?;
    let base = (args.size as usize).min(PROBE_BASE);
    let set = evaluation_set(args.seed, base);
    let probes: Arc<Vec<(MatchRecord, String)>> = Arc::new(
        set.records
            .iter()
            .filter_map(|r| match &r.origin {
                Origin::Duplicate { of, .. } => Some((
                    MatchRecord::from(&r.patient),
                    carefront_store::format_mrn(*of as i64 + 1),
                )),
                _ => None,
            })
            .collect(),
    );
    if probes.is_empty() {
        bail!("the dataset is too small for duplicate probes");
    }
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..args.clients {
        let (db, probes, org_id) = (db.clone(), probes.clone(), data.org_id.clone());
        tasks.push(tokio::spawn(async move {
            let mut f = Latencies::default();
            let mut i = 0u64;
            while Instant::now() < deadline {
                let (record, mrn) = &probes[pick(c, i, probes.len() as u64) as usize];
                let t = Instant::now();
                let found = db
                    .match_candidates(&org_id, record, &Thresholds::DEFAULT)
                    .await;
                f.record(t.elapsed(), found.is_ok());
                if let Ok(candidates) = found {
                    f.checked += 1;
                    f.found += u64::from(candidates.iter().any(|(p, _)| &p.value.mrn == mrn));
                }
                i += 1;
            }
            f
        }));
    }
    let mut total = Figures::default();
    for t in tasks {
        let f = t.await?;
        total.all.add(f.clone());
        total.by_label.entry("match-candidates").or_default().add(f);
    }
    total.elapsed = started.elapsed();
    db.close().await;
    Ok(total)
}

/// The specialty `slot-search` and `book-race` ask for: family medicine,
/// which the demo clinic staffs at every location.
pub const SPECIALTY: &str = "207Q00000X";
/// Days of schedule a search covers.
pub const SEARCH_DAYS: i64 = 14;

/// The first day searched: tomorrow (UTC), so every slot offered is ahead.
fn first_day() -> jiff::civil::Date {
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    today.tomorrow().unwrap_or(today)
}

/// `GET /fhir/R4/Appointment/$find` for [`SPECIALTY`] from `from` for `days`
/// days (dates: `end` includes its day).
fn find_path(from: jiff::civil::Date, days: i64, count: usize) -> String {
    let until = from
        .checked_add(jiff::Span::new().days(days - 1))
        .unwrap_or(from);
    format!(
        "/fhir/R4/Appointment/$find?start={from}&end={until}&specialty={}&_count={count}",
        url_encode(&format!(
            "{}|{SPECIALTY}",
            carefront_domain::directory::NUCC_TAXONOMY_SYSTEM
        ))
    )
}

/// Days ahead the searches of new windows start on (the benchmark clinic's
/// templates run 90 days).
const NEW_WINDOW_DAYS: u64 = 60;

/// The front desk's slot search: FHIR `$find` for one specialty across all
/// its providers over [`SEARCH_DAYS`] days (the first 20 free slots, the
/// default page), with a front-desk bearer token. An answer "finds" when it
/// proposes at least one slot.
///
/// Three of four requests ask the same question (desks searching the same
/// specialty from tomorrow: the server may answer from what it keeps); the
/// fourth starts its window on one of [`NEW_WINDOW_DAYS`] days in turn, more
/// windows than the server keeps answers for, so each is computed from the
/// database. Each kind has its own figures.
pub async fn slot_search(
    server: &Server,
    data: &Dataset,
    args: &Args,
    token: &str,
) -> Result<Figures> {
    let client = http_client()?;
    let clients = args.clients as u64;
    let repeated = find_path(first_day(), SEARCH_DAYS, 20);
    let request_for = Arc::new(move |c: usize, i: u64| {
        if i % 4 != 3 {
            return Request {
                label: "find-specialty-14d (same question)",
                path: repeated.clone(),
                body: None,
                expect: Some("\"proposed\"".into()),
            };
        }
        let offset = ((i / 4) * clients + c as u64) % NEW_WINDOW_DAYS;
        let from = first_day()
            .checked_add(jiff::Span::new().days(offset as i64))
            .unwrap_or_else(|_| first_day());
        Request {
            label: "find-specialty-14d (new window)",
            path: find_path(from, SEARCH_DAYS, 20),
            body: None,
            expect: Some("\"proposed\"".into()),
        }
    });
    drive(
        client,
        &server.base,
        Auth::Bearer(token.to_string()),
        args,
        request_for,
    )
    .await
    .with_context(|| format!("slot-search against {}", data.display))
}

/// Concurrent clients of `book-race`.
pub const RACE_CLIENTS: usize = 64;
/// The popular slots every client keeps trying: the race proper.
const POPULAR_SLOTS: usize = 16;
/// One request in this many goes for a popular slot; the others book the
/// client's own next slot, as a desk booking its own caller does.
const POPULAR_EVERY: u64 = 4;
/// Bookings per second the race must be able to show (the target),
/// so it gathers enough free slots that it cannot run out first.
const TARGET_BOOKINGS_PER_SECOND: u64 = 2_000;
/// Days ahead searched for free slots, at most.
const RACE_DAYS: i64 = 80;

/// What `book-race` counted besides latencies.
#[derive(Debug, Default, Clone)]
pub struct Booking {
    /// Distinct free slots the clients raced for, and of those the popular
    /// ones every client tried.
    pub slots: usize,
    pub popular: usize,
    /// Answers 200 (booked), 409 Conflict, and anything else by status (0:
    /// no answer).
    pub booked: u64,
    pub conflicts: u64,
    pub other: BTreeMap<u16, u64>,
    /// 200s for the popular slots: at most one each.
    pub popular_booked: u64,
    /// Appointments stored before and after the race (read from the
    /// database once the server stopped).
    pub stored_before: i64,
    pub stored_after: i64,
    /// `Db::check_claims` after the race: empty when nothing is double booked.
    pub claim_problems: Vec<String>,
}

impl Booking {
    pub fn stored_created(&self) -> i64 {
        self.stored_after - self.stored_before
    }

    pub fn others(&self) -> u64 {
        self.other.values().sum()
    }

    pub fn counts_agree(&self) -> bool {
        self.stored_created() == self.booked as i64
    }

    /// Successful bookings per second over `elapsed`.
    pub fn per_second(&self, elapsed: Duration) -> f64 {
        self.booked as f64 / elapsed.as_secs_f64().max(1e-9)
    }
}

/// `GET /fhir/R4/Appointment/$find` at one location for one day.
fn find_at(location_id: &str, day: jiff::civil::Date) -> String {
    format!(
        "/fhir/R4/Appointment/$find?start={day}&end={day}&location=Location/{}&_count=100",
        url_encode(location_id)
    )
}

/// The free slots the race is about: `$find` at each location one day at a
/// time from tomorrow, until there are `wanted` or [`RACE_DAYS`] are
/// searched, turned into Appointments to book (without the patient).
/// Slots that overlap one already taken for the same provider (the same
/// time offered for another type) or the same room (offered with several
/// providers) are left out, so each slot is a booking of its own that only
/// a rival for that very slot can take.
async fn race_slots(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    locations: &[String],
    wanted: usize,
) -> Result<Vec<Value>> {
    let mut slots = Vec::new();
    let mut taken: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    'days: for day in 0..RACE_DAYS {
        let date = first_day()
            .checked_add(jiff::Span::new().days(day))
            .context("date out of range")?;
        for location in locations {
            if slots.len() >= wanted {
                break 'days;
            }
            let res = client
                .get(format!("{base}{}", find_at(location, date)))
                .header("authorization", format!("Bearer {token}"))
                .send()
                .await?;
            if !res.status().is_success() {
                bail!("$find answered {}: {}", res.status(), res.text().await?);
            }
            let bundle: Value = serde_json::from_str(&res.text().await?)?;
            for entry in bundle["entry"].as_array().into_iter().flatten() {
                let mut r = entry["resource"].clone();
                if r["resourceType"] != "Appointment" {
                    continue;
                }
                let (Some(start), Some(end)) = (r["start"].as_str(), r["end"].as_str()) else {
                    continue;
                };
                let (start, end) = (start.to_string(), end.to_string());
                // The provider and the room (a resource, by identifier).
                let holders: Vec<String> = r["participant"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|p| {
                        let reference = p["actor"]["reference"].as_str();
                        match reference {
                            Some(a) if a.starts_with("Practitioner/") => Some(a.to_string()),
                            Some(_) => None,
                            None => p["actor"]["identifier"]["value"]
                                .as_str()
                                .map(str::to_string),
                        }
                    })
                    .collect();
                // RFC 3339 instants in UTC compare as text.
                let overlaps = |holder: &String| {
                    taken
                        .get(holder)
                        .is_some_and(|b| b.iter().any(|(s, e)| *s < end && start < *e))
                };
                if holders.iter().any(overlaps) {
                    continue;
                }
                for holder in holders {
                    taken
                        .entry(holder)
                        .or_default()
                        .push((start.clone(), end.clone()));
                }
                if let Some(o) = r.as_object_mut() {
                    o.remove("id");
                    o.remove("comment");
                    o.insert("status".into(), "booked".into());
                }
                for p in r["participant"].as_array_mut().into_iter().flatten() {
                    p["status"] = "accepted".into();
                }
                slots.push(r);
            }
        }
    }
    if slots.len() <= POPULAR_SLOTS {
        bail!("$find proposed only {} free slots to race for", slots.len());
    }
    Ok(slots)
}

/// Appointments stored in the organization, whatever their status.
async fn stored_appointments(db: &carefront_store::Db, org_id: &str) -> Result<i64> {
    Ok(db
        .appointments(
            org_id,
            &carefront_store::AppointmentQuery::default(),
            carefront_store::Page {
                offset: 0,
                count: 0,
            },
        )
        .await?
        .1)
}

/// The patients `book-race` books, by whether the practice has seen them
/// (types for new or established patients refuse the other kind).
struct RacePatients {
    new: Vec<String>,
    established: Vec<String>,
    /// Appointment type id to who may book it.
    eligibility: BTreeMap<String, PatientEligibility>,
}

impl RacePatients {
    async fn sort(
        db: &carefront_store::Db,
        org_id: &str,
        patients: Vec<carefront_domain::directory::Versioned<Patient>>,
    ) -> Result<Self> {
        if patients.is_empty() {
            bail!("the dataset has no patients to book");
        }
        let now = jiff::Timestamp::now();
        let (mut new, mut established) = (Vec::new(), Vec::new());
        for p in patients {
            if db.patient_established(org_id, &p.id, now).await? {
                established.push(p.id);
            } else {
                new.push(p.id);
            }
        }
        let (types, _) = db
            .search::<AppointmentType>(
                org_id,
                &[],
                carefront_store::Page {
                    offset: 0,
                    count: 1000,
                },
            )
            .await?;
        let eligibility = types
            .into_iter()
            .map(|t| (t.id, t.value.eligibility))
            .collect();
        Ok(RacePatients {
            new,
            established,
            eligibility,
        })
    }

    /// The `n`th patient who may book the type of this Appointment.
    fn pick(&self, body: &Value, n: usize) -> Option<&String> {
        let type_id = body["serviceType"][0]["coding"][0]["code"].as_str()?;
        let among = match self.eligibility.get(type_id)? {
            PatientEligibility::New => &self.new,
            PatientEligibility::Established => &self.established,
            PatientEligibility::Any if n.is_multiple_of(2) && !self.new.is_empty() => &self.new,
            PatientEligibility::Any if self.established.is_empty() => &self.new,
            PatientEligibility::Any => &self.established,
        };
        if among.is_empty() {
            return None;
        }
        among.get(n % among.len())
    }
}

/// [`RACE_CLIENTS`] front-desk clients `POST /fhir/R4/Appointment/$book`
/// (IHE ITI-117: a Parameters resource whose `appointment-resource` is the
/// `$find` proposal with the patient added; each request with its own
/// `Idempotency-Key`) until `--seconds` run out: one request
/// in [`POPULAR_EVERY`] goes for one of [`POPULAR_SLOTS`] popular slots
/// that every client keeps trying (exactly one may win each; the rest
/// must get 409), the others book the client's own next free slot. Each
/// attempt books a different dataset patient. Afterwards the store is
/// checked: no claim inconsistency (no double booking) and as many new
/// appointments as 200 answers.
pub async fn book_race(
    server: &Server,
    data: &Dataset,
    args: &Args,
    token: &str,
) -> Result<(Figures, Booking)> {
    let client = http_client()?;
    let db = carefront_store::Db::connect(&data.url).await?;
    let all = carefront_store::Page {
        offset: 0,
        count: 1000,
    };
    let (patients, _) = db.search::<Patient>(&data.org_id, &[], all).await?;
    let patients = Arc::new(RacePatients::sort(&db, &data.org_id, patients).await?);
    let (locations, _) = db
        .search::<carefront_domain::directory::Location>(&data.org_id, &[], all)
        .await?;
    let locations: Vec<String> = locations
        .into_iter()
        .filter(|l| l.value.active)
        .map(|l| l.id)
        .collect();
    let mut booking = Booking {
        stored_before: stored_appointments(&db, &data.org_id).await?,
        ..Booking::default()
    };
    let wanted = (TARGET_BOOKINGS_PER_SECOND * args.seconds * 3 / 2) as usize + POPULAR_SLOTS;
    let slots = Arc::new(race_slots(&client, &server.base, token, &locations, wanted).await?);
    booking.slots = slots.len();
    booking.popular = POPULAR_SLOTS;
    eprintln!(
        "racing {RACE_CLIENTS} clients for {} free slots for {} s...",
        slots.len(),
        args.seconds
    );
    let cpu_before = cpu_times(server);
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..RACE_CLIENTS {
        let (client, base, token, slots, patients) = (
            client.clone(),
            server.base.clone(),
            token.to_string(),
            slots.clone(),
            patients.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut by_label: BTreeMap<&'static str, Latencies> = BTreeMap::new();
            let mut other: BTreeMap<u16, u64> = BTreeMap::new();
            let mut own = (POPULAR_SLOTS + c..slots.len()).step_by(RACE_CLIENTS);
            for i in 0u64.. {
                if Instant::now() >= deadline {
                    break;
                }
                let popular = i % POPULAR_EVERY == 0;
                let slot = if popular {
                    (c + (i / POPULAR_EVERY) as usize) % POPULAR_SLOTS
                } else {
                    match own.next() {
                        Some(s) => s,
                        None => break,
                    }
                };
                let mut body = slots[slot].clone();
                let Some(patient) = patients.pick(&body, c + RACE_CLIENTS * i as usize) else {
                    continue;
                };
                if let Some(list) = body["participant"].as_array_mut() {
                    list.insert(
                        0,
                        serde_json::json!({
                            "actor": { "reference": format!("Patient/{patient}") },
                            "status": "accepted",
                        }),
                    );
                }
                let parameters = serde_json::json!({
                    "resourceType": "Parameters",
                    "parameter": [{ "name": "appointment-resource", "resource": body }],
                });
                let t = Instant::now();
                let status = client
                    .post(format!("{base}/fhir/R4/Appointment/$book"))
                    .header("authorization", format!("Bearer {token}"))
                    .header("content-type", "application/fhir+json")
                    .header(
                        "idempotency-key",
                        format!("bench-race-{}-{c}-{i}", std::process::id()),
                    )
                    .body(parameters.to_string())
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0);
                let label = match (status, popular) {
                    (200, true) => "popular-booked-200",
                    (200, false) => "booked-200",
                    (409, _) => "conflict-409",
                    (status, _) => {
                        *other.entry(status).or_default() += 1;
                        "other"
                    }
                };
                by_label
                    .entry(label)
                    .or_default()
                    .record(t.elapsed(), label != "other");
            }
            (by_label, other)
        }));
    }
    let mut total = Figures::default();
    for t in tasks {
        let (by_label, other) = t.await?;
        for (status, n) in other {
            *booking.other.entry(status).or_default() += n;
        }
        for (label, f) in by_label {
            match label {
                "popular-booked-200" => {
                    booking.booked += f.requests;
                    booking.popular_booked += f.requests;
                }
                "booked-200" => booking.booked += f.requests,
                "conflict-409" => booking.conflicts += f.requests,
                _ => {}
            }
            total.all.add(f.clone());
            total.by_label.entry(label).or_default().add(f);
        }
    }
    total.elapsed = started.elapsed();
    total.cpu = cpu_before
        .zip(cpu_times(server))
        .map(|(before, after)| CpuUse::between(before, after, total.elapsed));
    db.close().await;
    if total.all.requests == 0 {
        bail!("no booking attempt completed");
    }
    Ok((total, booking))
}

/// The store's view after the race (run once the server has stopped).
pub async fn check_race(data: &Dataset, booking: &mut Booking) -> Result<()> {
    let db = carefront_store::Db::connect(&data.url).await?;
    booking.stored_after = stored_appointments(&db, &data.org_id).await?;
    booking.claim_problems = db.check_claims(&data.org_id).await?;
    db.close().await;
    Ok(())
}
