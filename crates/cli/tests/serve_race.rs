//! Double booking is impossible, and it is the database that guarantees it.
//!
//! Two real `carefront serve` processes share one database (a fresh
//! PostgreSQL database with CAREFRONT_TEST_POSTGRES, else one SQLite file)
//! and many front-desk clients race through both of them, over HTTP, for the
//! same free slots at the same moment. The servers share no memory: each can
//! only see what the other has committed, so when both check a slot, find it
//! free and go on to book it, nothing but the database's claims
//! (`appointment_claims`, see ARCHITECTURE.md "Scheduling") stands between
//! them and a double booking. The test proves that exactly one request wins
//! each slot (201), every other one gets a clear conflict (409 with an
//! OperationOutcome), and the database holds exactly as many new bookings as
//! there were winners, each in its slot, with every claim consistent.

use jiff::{Timestamp, ToSpan};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::Barrier;
use std::time::Duration;

/// Slots raced for.
const SLOTS: usize = 4;
/// Clients racing for each slot, half through each server.
const RACERS_PER_SLOT: usize = 16;
/// Demo patients: one per racer, and a few to spare.
const PATIENTS: usize = 80;

#[tokio::test]
async fn two_servers_on_one_database_book_each_slot_exactly_once() {
    let url = carefront_store::testing::fresh_url().await.unwrap();
    carefront(&["demo", "--patients", &PATIENTS.to_string()], &url);
    let created = carefront(
        &["token", "create", "--name", "race", "--role", "front_desk"],
        &url,
    );
    let token = created.trim().lines().last().unwrap().to_string();
    assert!(token.starts_with("cft_"), "{created}");

    let db = carefront_store::Db::connect(&url).await.unwrap();
    let org_id = db.organizations().await.unwrap()[0].0.clone();
    let one_seat = OneSeat::in_clinic(&db, &org_id).await;
    let stored_before = stored_appointments(&db, &org_id).await;

    let servers = [serve(&url), serve(&url)];
    let api = |i: usize| Api {
        addr: servers[i % 2].addr.clone(),
        token: token.clone(),
    };

    let slots = free_slots(&api(0), &one_seat);
    let patients = patients(&api(1));
    assert!(
        patients.len() >= SLOTS * RACERS_PER_SLOT,
        "only {} bookable patients",
        patients.len()
    );

    // Every racer gets ready, then all post at once: racer r of slot s goes
    // through server r % 2, each for a patient of its own.
    let racers = SLOTS * RACERS_PER_SLOT;
    let start = Barrier::new(racers);
    let replies: Vec<(usize, Reply)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..racers)
            .map(|n| {
                let (slot, racer) = (n / RACERS_PER_SLOT, n % RACERS_PER_SLOT);
                let api = api(racer);
                let body = booking(&slots[slot], &patients[n]).to_string();
                let start = &start;
                scope.spawn(move || {
                    start.wait();
                    (slot, api.call("POST", "/fhir/R4/Appointment", Some(&body)))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    let mut winners = vec![Vec::new(); SLOTS];
    for (slot, reply) in &replies {
        match reply.status {
            201 => {
                assert_eq!(reply.body["resourceType"], "Appointment", "{reply:?}");
                assert_eq!(reply.body["status"], "booked", "{reply:?}");
                winners[*slot].push(reply.body["id"].as_str().unwrap().to_string());
            }
            409 => {
                assert_eq!(reply.body["resourceType"], "OperationOutcome", "{reply:?}");
                let issue = &reply.body["issue"][0];
                assert_eq!(issue["code"], "conflict", "{reply:?}");
                assert!(issue["diagnostics"].as_str().is_some_and(|d| !d.is_empty()));
            }
            _ => panic!("slot {slot}: neither 201 nor 409: {reply:?}"),
        }
    }
    for (slot, won) in winners.iter().enumerate() {
        assert_eq!(
            won.len(),
            1,
            "slot {slot} ({}) had {} winners",
            slots[slot]["start"],
            won.len()
        );
    }
    let won = winners.iter().flatten().count();
    let conflicts = replies.iter().filter(|(_, r)| r.status == 409).count();
    assert_eq!((won, conflicts), (SLOTS, racers - SLOTS));

    // Read each slot back (through either server: they share one truth):
    // the one booking there is the winner's.
    for (slot, proposal) in slots.iter().enumerate() {
        let booked = booked_in(&api(slot), proposal);
        assert_eq!(booked, winners[slot], "slot {slot}: {}", proposal["start"]);
    }

    // And in the database: as many new appointments as winners, every claim
    // held by an appointment within its seats.
    assert_eq!(
        stored_appointments(&db, &org_id).await - stored_before,
        won as i64
    );
    assert_eq!(
        db.check_claims(&org_id).await.unwrap(),
        Vec::<String>::new()
    );
}

/// Runs the `carefront` command on `url`, which must succeed; its stdout.
fn carefront(args: &[&str], url: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_carefront"))
        .args(args)
        .env("CAREFRONT_DATABASE_URL", url)
        .env("CAREFRONT_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "carefront {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A `carefront serve` process on a free port, stopped when the test ends,
/// passed or failed.
struct Server {
    addr: String,
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(url: &str) -> Server {
    // In the guard from the start: stopped even if it never gets ready.
    let mut server = Server {
        addr: String::new(),
        child: Command::new(env!("CARGO_BIN_EXE_carefront"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("CAREFRONT_DATABASE_URL", url)
            .env("CAREFRONT_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    };
    let mut lines = BufReader::new(server.child.stdout.take().unwrap()).lines();
    loop {
        let line = lines.next().expect("serve exited early").unwrap();
        if let Some(rest) = line.strip_prefix("Carefront is serving http://") {
            server.addr = rest.split('/').next().unwrap().to_string();
            // Keep reading, so the server never blocks on a full pipe.
            std::thread::spawn(move || lines.for_each(drop));
            return server;
        }
    }
}

/// What a contested slot must be for exactly one booking to win it, whoever
/// the patient: its provider's schedule allows no overbooking (the slot
/// has one seat) and its appointment type is open to new and established
/// patients alike.
struct OneSeat {
    providers: BTreeSet<String>,
    types: BTreeSet<String>,
}

impl OneSeat {
    async fn in_clinic(db: &carefront_store::Db, org_id: &str) -> OneSeat {
        use carefront_domain::scheduling::{ExceptionKind, PatientEligibility};
        let templates = db.templates(org_id, None).await.unwrap();
        let today = Timestamp::now()
            .to_zoned(jiff::tz::TimeZone::UTC)
            .datetime();
        let exceptions = db
            .schedule_exceptions(org_id, today - 2.days(), today + 10.days())
            .await
            .unwrap();
        let overbooking: BTreeSet<&str> = templates
            .iter()
            .filter(|t| {
                let t = &t.value;
                t.overbook_limit > 0 || t.blocks.iter().any(|b| t.block_overbook_limit(b) > 0)
            })
            .map(|t| t.value.practitioner_id.as_str())
            .chain(exceptions.iter().filter_map(|e| match &e.value.kind {
                ExceptionKind::ExtraSession {
                    practitioner_id,
                    overbook_limit,
                    ..
                } if *overbook_limit > 0 => Some(practitioner_id.as_str()),
                _ => None,
            }))
            .collect();
        let providers = templates
            .iter()
            .map(|t| t.value.practitioner_id.as_str())
            .filter(|p| !overbooking.contains(p))
            .map(str::to_string)
            .collect();
        let types = db
            .appointment_types(org_id, false)
            .await
            .unwrap()
            .into_iter()
            .filter(|t| t.value.eligibility == PatientEligibility::Any)
            .map(|t| t.id)
            .collect();
        OneSeat { providers, types }
    }

    fn allows(&self, proposal: &Value) -> bool {
        let type_id = proposal["serviceType"][0]["coding"][0]["code"].as_str();
        actor(proposal, "Practitioner").is_some_and(|p| self.providers.contains(p))
            && type_id.is_some_and(|t| self.types.contains(t))
    }
}

/// Appointments stored in the organization, whatever their status.
async fn stored_appointments(db: &carefront_store::Db, org_id: &str) -> i64 {
    let everything = carefront_store::Page {
        offset: 0,
        count: 0,
    };
    db.appointments(org_id, &Default::default(), everything)
        .await
        .unwrap()
        .1
}

/// [`SLOTS`] free slots proposed by `$find` over the coming week, of
/// the kind [`OneSeat`] allows, no two overlapping in time (so they share no
/// provider or room and each race is on its own).
fn free_slots(api: &Api, one_seat: &OneSeat) -> Vec<Value> {
    let tomorrow = Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
        .tomorrow()
        .unwrap();
    // Only the types any patient may book (`|` percent-encoded).
    let types: String = one_seat
        .types
        .iter()
        .map(|t| {
            format!("&visit-type=http://carefront.example/fhir/CodeSystem/appointment-type%7C{t}")
        })
        .collect();
    let mut proposals = Vec::new();
    for day in 0..7 {
        let date = tomorrow + day.days();
        let reply = api.call(
            "GET",
            &format!("/fhir/R4/Appointment/$find?start={date}&end={date}&_count=100{types}"),
            None,
        );
        assert_eq!(reply.status, 200, "{reply:?}");
        proposals.extend(entries(&reply.body).filter(|p| one_seat.allows(p)).cloned());
    }
    let when = |p: &Value, field: &str| p[field].as_str().unwrap().parse::<Timestamp>().unwrap();
    proposals.sort_by_key(|p| when(p, "start"));
    let mut slots: Vec<Value> = Vec::new();
    for p in proposals {
        if slots.len() == SLOTS {
            break;
        }
        if slots
            .last()
            .is_none_or(|last| when(last, "end") <= when(&p, "start"))
        {
            slots.push(p);
        }
    }
    assert_eq!(
        slots.len(),
        SLOTS,
        "$find proposed too few separate free slots"
    );
    slots
}

/// The create body for a proposed slot and a patient (the shape the
/// benchmark's booking race uses).
fn booking(proposal: &Value, patient_id: &str) -> Value {
    let mut body = proposal.clone();
    let o = body.as_object_mut().unwrap();
    o.remove("id");
    o.remove("comment");
    o.insert("status".into(), "booked".into());
    let participants = o["participant"].as_array_mut().unwrap();
    for p in participants.iter_mut() {
        p["status"] = "accepted".into();
    }
    participants.insert(
        0,
        json!({
            "actor": { "reference": format!("Patient/{patient_id}") },
            "status": "accepted",
        }),
    );
    body
}

/// Demo patients that can be booked (not merged away).
fn patients(api: &Api) -> Vec<String> {
    let reply = api.call("GET", "/fhir/R4/Patient?_count=100", None);
    assert_eq!(reply.status, 200, "{reply:?}");
    entries(&reply.body)
        .filter(|p| p.get("link").is_none() && p["active"] != false)
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect()
}

/// Ids of the booked appointments of the proposal's provider starting within
/// its slot.
fn booked_in(api: &Api, proposal: &Value) -> Vec<String> {
    let practitioner = actor(proposal, "Practitioner").unwrap();
    let (start, end) = (
        proposal["start"].as_str().unwrap(),
        proposal["end"].as_str().unwrap(),
    );
    let reply = api.call(
        "GET",
        &format!(
            "/fhir/R4/Appointment?practitioner=Practitioner/{practitioner}\
             &date=ge{start}&date=lt{end}&status=booked&_count=100"
        ),
        None,
    );
    assert_eq!(reply.status, 200, "{reply:?}");
    entries(&reply.body)
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect()
}

/// The resources of a searchset Bundle (outcomes left out).
fn entries(bundle: &Value) -> impl Iterator<Item = &Value> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| &e["resource"])
        .filter(|r| r["resourceType"] != "OperationOutcome")
}

/// The id of a participant `Kind/id` of an appointment.
fn actor<'a>(appointment: &'a Value, kind: &str) -> Option<&'a str> {
    appointment["participant"]
        .as_array()?
        .iter()
        .filter_map(|p| {
            p["actor"]["reference"]
                .as_str()?
                .strip_prefix(kind)?
                .strip_prefix('/')
        })
        .next()
}

/// One server's FHIR API with the front desk's bearer token.
struct Api {
    addr: String,
    token: String,
}

#[derive(Debug)]
struct Reply {
    status: u16,
    body: Value,
}

impl Api {
    /// One HTTP/1.1 request on its own connection (plain std, as cli.rs
    /// probes its server); a body that is not JSON comes back as a string.
    fn call(&self, method: &str, path: &str, body: Option<&str>) -> Reply {
        let mut stream = TcpStream::connect(&self.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let body = body.unwrap_or_default();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
             Accept: application/fhir+json\r\nContent-Type: application/fhir+json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.addr,
            self.token,
            body.len()
        )
        .unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).unwrap();
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("an HTTP response");
        let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
        let mut content = raw[split + 4..].to_vec();
        if head.contains("\r\ntransfer-encoding: chunked") {
            content = dechunk(&content);
        }
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        let body = serde_json::from_slice(&content)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&content).into_owned()));
        Reply { status, body }
    }
}

/// The payload of a chunked HTTP/1.1 body.
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = raw.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = std::str::from_utf8(&raw[..line_end]).unwrap();
        let size = usize::from_str_radix(size.split(';').next().unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        raw = &raw[line_end + 2..];
        out.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}
