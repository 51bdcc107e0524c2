//! `carefront import patients`, run as a real process against the backend
//! under test (SQLite, or PostgreSQL with CAREFRONT_TEST_POSTGRES).

use carefront_domain::patient::Patient;
use carefront_store::{Db, Filter, Page};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn carefront(args: &[&str], url: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_carefront"))
        .args(args)
        .env("CAREFRONT_DATABASE_URL", url)
        .env("CAREFRONT_LOG", "warn")
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A migrated database with one organization, and a directory for files.
async fn setup() -> (String, Db, String, PathBuf) {
    let url = carefront_store::testing::fresh_url().await.unwrap();
    let out = carefront(
        &["org", "create", "--name", "Riverside Family Practice"],
        &url,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let db = Db::connect(&url).await.unwrap();
    let org_id = db.organizations().await.unwrap()[0].0.clone();
    let dir = std::env::temp_dir().join(format!("cf_import_{}", uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    (url, db, org_id, dir)
}

fn uuid_like() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{}_{t}", std::process::id())
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn import(url: &str, file: &Path) -> Output {
    carefront(&["import", "patients", file.to_str().unwrap()], url)
}

async fn patients(db: &Db, org_id: &str) -> Vec<Patient> {
    let (found, _) = db
        .search::<Patient>(
            org_id,
            &[],
            Page {
                offset: 0,
                count: 1000,
            },
        )
        .await
        .unwrap();
    found.into_iter().map(|p| p.value).collect()
}

const HEADER: &str = "source_system,source_id,given,middle,family,birth_date,sex,phone_mobile,sms_consent,email,line1,city,state,postal_code,language,interpreter_needed";

fn summary(o: &Output) -> String {
    let text = stdout(o);
    text.lines()
        .find(|l| l.starts_with("Imported"))
        .unwrap_or_else(|| panic!("no summary in: {text} / {}", stderr(o)))
        .to_string()
}

#[tokio::test]
async fn csv_import_creates_and_running_it_again_creates_nothing_twice() {
    let (url, db, org_id, dir) = setup().await;
    let csv = format!(
        "{HEADER}\n\
         urn:legacy,A1,Ana,,Reyes,1962-03-14,F,(512) 555-0142,yes,ana@example.com,12 Oak St,Austin,TX,78701,es,yes\n\
         urn:legacy,A2,John,Paul,Smith,03/04/1980,male,212.555.0123,no,,9 Elm Rd,New York,NY,10001,,no\n\
         urn:legacy,A3,Mei,,\"Chen, Jr\",2001-12-01,female,+1 415 555 0199,no,,1 Bay St,San Francisco,CA,94105,zh-Hant,\n"
    );
    let file = write(&dir, "patients.csv", &csv);
    let out = import(&url, &file);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        summary(&out).contains("3 created, 0 updated, 0 unchanged, 0 rejected"),
        "{}",
        summary(&out)
    );
    assert!(!dir.join("patients.rejected.csv").exists());
    // Not on a terminal: plain progress lines instead of the bar, the last
    // when everything is saved.
    let progress: Vec<String> = stderr(&out)
        .lines()
        .filter(|l| l.starts_with("imported "))
        .map(str::to_string)
        .collect();
    assert_eq!(
        progress.last().map(String::as_str),
        Some("imported 3 of 3 rows (100%)"),
        "{}",
        stderr(&out)
    );
    let stored = patients(&db, &org_id).await;
    assert_eq!(stored.len(), 3);
    let ana = stored.iter().find(|p| p.given == "Ana").unwrap();
    assert_eq!(ana.phones[0].number, "+15125550142", "normalized");
    assert!(ana.phones[0].sms_consent);
    assert!(ana.interpreter_needed);
    assert_eq!(ana.identifiers[0].system, "urn:legacy");
    assert_eq!(ana.identifiers[0].value, "A1");
    assert!(!ana.mrn.is_empty());
    let john = stored.iter().find(|p| p.given == "John").unwrap();
    assert_eq!(john.birth_date.to_string(), "1980-03-04", "MM/DD/YYYY");
    let mut mrns: Vec<&str> = stored.iter().map(|p| p.mrn.as_str()).collect();
    mrns.sort();
    mrns.dedup();
    assert_eq!(mrns.len(), 3, "distinct MRNs");

    // The same file again: nothing created, nothing changed.
    let out = import(&url, &file);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        summary(&out).contains("0 created, 0 updated, 3 unchanged, 0 rejected"),
        "{}",
        summary(&out)
    );
    assert_eq!(patients(&db, &org_id).await.len(), 3);

    // A changed row updates its patient, found by identifier; the MRN stays.
    let changed = csv.replace("ana@example.com", "ana.reyes@example.org");
    let file = write(&dir, "patients.csv", &changed);
    let out = import(&url, &file);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        summary(&out).contains("0 created, 1 updated, 2 unchanged, 0 rejected"),
        "{}",
        summary(&out)
    );
    let (found, _) = db
        .search::<Patient>(
            &org_id,
            &[Filter::HasKey("i:urn:legacy|A1".into())],
            Page {
                offset: 0,
                count: 10,
            },
        )
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].version, 2);
    assert_eq!(
        found[0].value.email.as_deref(),
        Some("ana.reyes@example.org")
    );
    assert_eq!(found[0].value.mrn, ana.mrn);
    let history = db.history::<Patient>(&org_id, &found[0].id).await.unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].changed_by, "import");
    // The search keys follow the change.
    let by_new_email = db
        .ids_by_keys::<Patient>(&org_id, &["e:ana.reyes@example.org".into()], 10)
        .await
        .unwrap();
    assert_eq!(by_new_email, vec![found[0].id.clone()]);
    let by_old_email = db
        .ids_by_keys::<Patient>(&org_id, &["e:ana@example.com".into()], 10)
        .await
        .unwrap();
    assert!(by_old_email.is_empty());

    // Imports are audited and the chain holds.
    let out = carefront(&["audit", "verify"], &url);
    assert!(out.status.success(), "{}", stdout(&out));
    let (events, _) = db
        .audit_events(&org_id, &Default::default(), 0, 100)
        .await
        .unwrap();
    assert!(
        events.iter().any(|e| e
            .entry
            .detail
            .as_deref()
            .unwrap_or("")
            .contains("import of patients.csv")),
        "no import audit event"
    );
}

#[tokio::test]
async fn rejected_rows_name_their_columns_and_nothing_is_written_for_them() {
    let (url, db, org_id, dir) = setup().await;
    let csv = format!(
        "{HEADER}\n\
         urn:legacy,B1,Ana,,Reyes,1962-03-14,F,(512) 555-0142,yes,ana@example.com,12 Oak St,Austin,TX,78701,es,yes\n\
         urn:legacy,B2,Bad,,Date,02/30/1980,male,212.555.0123,no,,9 Elm Rd,New York,NY,10001,,no\n\
         urn:legacy,B3,Bad,,Phone,1970-01-01,male,12,no,,9 Elm Rd,New York,NY,10001,,no\n\
         urn:legacy,B4,Bad,,Places,1970-01-01,female,212.555.0123,no,not-an-email,9 Elm Rd,New York,XX,1000,,no\n\
         urn:legacy,,No,,Identifier,1970-01-01,female,212.555.0123,no,,9 Elm Rd,New York,NY,10001,,no\n\
         urn:legacy,B1,Same,,Again,1970-01-01,female,212.555.0123,no,,9 Elm Rd,New York,NY,10001,,no\n\
         urn:legacy,B7,Short,,Row\n"
    );
    let file = write(&dir, "legacy export.csv", &csv);
    let out = import(&url, &file);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        summary(&out).contains("1 created, 0 updated, 0 unchanged, 6 rejected"),
        "{}",
        summary(&out)
    );
    let rejected_path = dir.join("legacy export.rejected.csv");
    assert!(stdout(&out).contains("legacy export.rejected.csv"));
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(&rejected_path)
        .unwrap();
    let header = reader.headers().unwrap().clone();
    assert_eq!(header.get(header.len() - 1), Some("reason"));
    assert_eq!(header.get(header.len() - 2), Some("line"));
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let reason = |id: &str, family: &str| -> String {
        rows.iter()
            .find(|r| r.get(1) == Some(id) && r.get(4) == Some(family))
            .unwrap_or_else(|| panic!("{id} {family} not rejected"))
            .iter()
            .next_back()
            .unwrap()
            .to_string()
    };
    assert!(
        reason("B2", "Date").starts_with("birth_date:"),
        "{}",
        reason("B2", "Date")
    );
    assert!(
        reason("B3", "Phone").contains("phone_mobile:"),
        "{}",
        reason("B3", "Phone")
    );
    let places = reason("B4", "Places");
    for field in ["email:", "state:", "postal_code:"] {
        assert!(places.contains(field), "{places}");
    }
    assert!(reason("", "Identifier").contains("source_id:"));
    let again = reason("B1", "Again");
    assert!(again.contains("line 2"), "{again}");
    assert!(reason("B7", "Row").contains("row:"));
    // The original row is kept as it was, with its line number.
    let b2 = rows.iter().find(|r| r.get(1) == Some("B2")).unwrap();
    assert_eq!(b2.get(5), Some("02/30/1980"));
    assert_eq!(b2.get(header.len() - 2), Some("3"));

    let stored = patients(&db, &org_id).await;
    assert_eq!(stored.len(), 1, "only the good row is stored");
    assert_eq!(stored[0].given, "Ana");

    // A clean run removes the previous run's rejected rows.
    let good: String = csv.lines().take(2).map(|l| format!("{l}\n")).collect();
    let file = write(&dir, "legacy export.csv", &good);
    let out = import(&url, &file);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!rejected_path.exists());
}

#[tokio::test]
async fn files_without_some_columns_update_what_they_have() {
    let (url, db, org_id, dir) = setup().await;
    let file = write(
        &dir,
        "full.csv",
        &format!(
            "{HEADER}\nurn:legacy,C1,Ana,,Reyes,1962-03-14,F,(512) 555-0142,yes,ana@example.com,12 Oak St,Austin,TX,78701,es,yes\n"
        ),
    );
    let out = import(&url, &file);
    assert!(out.status.success(), "{}", stderr(&out));
    let mrn = patients(&db, &org_id).await[0].mrn.clone();

    // Only names and emails, found by MRN (leading zeros optional) or identifier.
    let partial = format!(
        "mrn,source_system,source_id,given,family,birth_date,sex,email\n\
         {},,,Ana,Reyes-Lopez,1962-03-14,female,ana@example.com\n\
         ,urn:legacy,C9,New,Person,1990-01-01,male,\n\
         99999,,,Nobody,Here,1990-01-01,male,\n",
        mrn.trim_start_matches('0')
    );
    let file = write(&dir, "partial.csv", &partial);
    let out = import(&url, &file);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        summary(&out).contains("0 created, 1 updated, 0 unchanged, 2 rejected"),
        "{}",
        summary(&out)
    );
    let stored = patients(&db, &org_id).await;
    assert_eq!(stored.len(), 1);
    let ana = &stored[0];
    assert_eq!(ana.family, "Reyes-Lopez");
    assert_eq!(
        ana.phones.len(),
        1,
        "phones kept: the file has no phone column"
    );
    assert_eq!(ana.addresses.len(), 1, "address kept");
    assert_eq!(ana.language.as_deref(), Some("es"));
    let rejected = std::fs::read_to_string(dir.join("partial.rejected.csv")).unwrap();
    assert!(rejected.contains("no phone column"), "{rejected}");
    assert!(
        rejected.contains("mrn: no patient has this MRN"),
        "{rejected}"
    );
}

#[tokio::test]
async fn a_file_without_identity_columns_is_refused_up_front() {
    let (url, db, org_id, dir) = setup().await;
    let file = write(
        &dir,
        "anonymous.csv",
        "given,family,birth_date,sex\nAna,Reyes,1962-03-14,F\n",
    );
    let out = import(&url, &file);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("source_id"), "{}", stderr(&out));
    let file = write(&dir, "nodob.csv", "source_id,given,family\nA,Ana,Reyes\n");
    let out = import(&url, &file);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("birth_date, sex"), "{}", stderr(&out));
    let out = import(&url, &dir.join("missing.csv"));
    assert_eq!(out.status.code(), Some(1));
    let out = carefront(&["import", "patients", "x.txt"], &url);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--format"), "{}", stderr(&out));
    assert!(patients(&db, &org_id).await.is_empty());
}

/// A FHIR Patient resource as an import file carries it.
fn fhir_patient(id: &str, given: &str, family: &str, birth: &str) -> serde_json::Value {
    serde_json::json!({
        "resourceType": "Patient",
        "id": format!("src-{id}"),
        "meta": { "versionId": "3", "lastUpdated": "2024-05-01T10:00:00Z" },
        "extension": [{
            "url": "http://hl7.org/fhir/StructureDefinition/patient-interpreterRequired",
            "valueBoolean": true,
        }],
        "identifier": [{ "system": "urn:oid:1.2.36.146.595.217.0.1", "value": id }],
        "name": [
            { "use": "official", "family": family, "given": [given, "Maria"] },
            { "use": "usual", "given": ["Annie"] },
        ],
        "telecom": [
            {
                "system": "phone",
                "value": "(512) 555-0142",
                "use": "mobile",
                "extension": [{
                    "url": "http://carefront.example/fhir/StructureDefinition/sms-consent",
                    "valueBoolean": true,
                }],
            },
            { "system": "email", "value": format!("{}@example.com", given.to_lowercase()) },
        ],
        "gender": "female",
        "birthDate": birth,
        "address": [{
            "use": "home",
            "line": ["12 Oak St"],
            "city": "Austin",
            "state": "TX",
            "postalCode": "78701",
            "country": "US",
        }],
        "communication": [{
            "language": { "coding": [{ "system": "urn:ietf:bcp:47", "code": "es" }] },
            "preferred": true,
        }],
    })
}

/// The lines of a rejected-resources file, as JSON.
fn rejected_json(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn fhir_ndjson_import_creates_patients_rejects_bad_lines_and_is_idempotent() {
    let (url, db, org_id, dir) = setup().await;
    let mut no_identifier = fhir_patient("X", "Nobody", "Known", "1990-01-01");
    no_identifier.as_object_mut().unwrap().remove("identifier");
    let lines = [
        fhir_patient("P1", "Ana", "Reyes", "1962-03-14").to_string(),
        "{ this is not json".to_string(),
        fhir_patient("P2", "Mei", "Chen", "2999-01-01").to_string(),
        fhir_patient("P3", "John", "Smith", "1980-03-04").to_string(),
        String::new(),
        no_identifier.to_string(),
    ];
    let file = write(&dir, "patients.ndjson", &(lines.join("\n") + "\n"));
    let out = import(&url, &file);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        summary(&out).contains("2 created, 0 updated, 0 unchanged, 3 rejected"),
        "{}",
        summary(&out)
    );
    let stored = patients(&db, &org_id).await;
    assert_eq!(stored.len(), 2, "only the good lines are stored");
    let ana = stored.iter().find(|p| p.given == "Ana").unwrap();
    assert_eq!(ana.family, "Reyes");
    assert_eq!(ana.middle.as_deref(), Some("Maria"));
    assert_eq!(ana.preferred_name.as_deref(), Some("Annie"));
    assert_eq!(ana.birth_date.to_string(), "1962-03-14");
    assert_eq!(ana.sex.code(), "female");
    assert_eq!(ana.phones.len(), 1);
    assert_eq!(ana.phones[0].number, "+15125550142", "normalized");
    assert!(ana.phones[0].sms_consent);
    assert_eq!(ana.email.as_deref(), Some("ana@example.com"));
    let address = ana.home_address().unwrap();
    assert_eq!(
        (address.line1.as_str(), address.city.as_str()),
        ("12 Oak St", "Austin")
    );
    assert_eq!(address.postal_code, "78701");
    assert_eq!(ana.language.as_deref(), Some("es"));
    assert!(ana.interpreter_needed);
    assert_eq!(ana.identifiers.len(), 1);
    assert_eq!(ana.identifiers[0].system, "urn:oid:1.2.36.146.595.217.0.1");
    assert_eq!(ana.identifiers[0].value, "P1");
    assert!(!ana.mrn.is_empty(), "an MRN is assigned");

    // Rejected lines: the resource (or the text) as it was, its line and a
    // reason naming the element.
    let rejected_path = dir.join("patients.rejected.ndjson");
    assert!(stdout(&out).contains("patients.rejected.ndjson"));
    let rejected = rejected_json(&rejected_path);
    assert_eq!(rejected.len(), 3, "{rejected:?}");
    let at = |line: u64| {
        rejected
            .iter()
            .find(|r| r["line"] == line)
            .unwrap_or_else(|| panic!("line {line} not rejected: {rejected:?}"))
    };
    let not_json = at(2);
    assert!(
        not_json["reason"].as_str().unwrap().contains("not JSON"),
        "{not_json}"
    );
    assert_eq!(not_json["resource"], "{ this is not json");
    let future = at(3);
    let reason = future["reason"].as_str().unwrap();
    assert!(reason.contains("Patient.birthDate"), "{reason}");
    assert!(reason.contains("future"), "{reason}");
    assert_eq!(future["resource"]["identifier"][0]["value"], "P2");
    let anonymous = at(6);
    assert!(
        anonymous["reason"]
            .as_str()
            .unwrap()
            .contains("Patient.identifier"),
        "{anonymous}"
    );

    // The same file again: nothing created, nothing changed.
    let out = import(&url, &file);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        summary(&out).contains("0 created, 0 updated, 2 unchanged, 3 rejected"),
        "{}",
        summary(&out)
    );
    assert_eq!(patients(&db, &org_id).await.len(), 2);

    // A resource naming a patient by the Carefront MRN updates that patient
    // and keeps its identifiers; an MRN nobody has creates nothing.
    let mut by_mrn = fhir_patient("P1", "Ana", "Reyes-Lopez", "1962-03-14");
    by_mrn["identifier"] = serde_json::json!([{
        "system": "http://carefront.example/fhir/sid/mrn",
        "value": ana.mrn.trim_start_matches('0'),
    }]);
    let mut unknown = by_mrn.clone();
    unknown["identifier"][0]["value"] = serde_json::json!("99999999");
    let file = write(&dir, "by-mrn.jsonl", &format!("{by_mrn}\n{unknown}\n"));
    let out = import(&url, &file);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        summary(&out).contains("0 created, 1 updated, 0 unchanged, 1 rejected"),
        "{}",
        summary(&out)
    );
    let stored = patients(&db, &org_id).await;
    assert_eq!(stored.len(), 2);
    let ana_now = stored.iter().find(|p| p.mrn == ana.mrn).unwrap();
    assert_eq!(ana_now.family, "Reyes-Lopez");
    assert_eq!(ana_now.identifiers, ana.identifiers, "identifiers kept");
    let rejected = rejected_json(&dir.join("by-mrn.rejected.ndjson"));
    assert!(
        rejected[0]["reason"]
            .as_str()
            .unwrap()
            .contains("no patient has this MRN"),
        "{rejected:?}"
    );

    // Imports are audited and the chain holds.
    let out = carefront(&["audit", "verify"], &url);
    assert!(out.status.success(), "{}", stdout(&out));
}

#[tokio::test]
async fn fhir_bundle_import_reads_entry_resources_and_rejects_other_resource_types() {
    let (url, db, org_id, dir) = setup().await;
    let bundle = serde_json::json!({
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            { "fullUrl": "urn:uuid:1", "resource": fhir_patient("B1", "Ana", "Reyes", "1962-03-14") },
            { "fullUrl": "urn:uuid:2", "resource": {
                "resourceType": "Observation",
                "status": "final",
                "code": { "text": "weight" },
            } },
            { "fullUrl": "urn:uuid:3", "resource": fhir_patient("B3", "John", "Smith", "1980-03-04") },
            { "fullUrl": "urn:uuid:4", "resource": fhir_patient("B1", "Ana", "Again", "1962-03-14") },
        ],
    });
    let file = write(&dir, "bundle.json", &bundle.to_string());
    let out = import(&url, &file);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        summary(&out).contains("2 created, 0 updated, 0 unchanged, 2 rejected"),
        "{}",
        summary(&out)
    );
    let stored = patients(&db, &org_id).await;
    assert_eq!(stored.len(), 2);
    let john = stored.iter().find(|p| p.given == "John").unwrap();
    assert_eq!(john.family, "Smith");
    assert_eq!(john.birth_date.to_string(), "1980-03-04");
    assert_eq!(john.identifiers[0].value, "B3");

    // Rejected entries are named by their index in Bundle.entry.
    let rejected = rejected_json(&dir.join("bundle.rejected.ndjson"));
    assert_eq!(rejected.len(), 2, "{rejected:?}");
    let observation = rejected.iter().find(|r| r["entry"] == 1).unwrap();
    let reason = observation["reason"].as_str().unwrap();
    assert!(reason.contains("resourceType"), "{reason}");
    assert_eq!(observation["resource"]["resourceType"], "Observation");
    let again = rejected.iter().find(|r| r["entry"] == 3).unwrap();
    let reason = again["reason"].as_str().unwrap();
    assert!(reason.contains("Patient.identifier"), "{reason}");
    assert!(reason.contains("entry 0"), "{reason}");

    // The same Bundle again creates nothing.
    let out = import(&url, &file);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        summary(&out).contains("0 created, 0 updated, 2 unchanged, 2 rejected"),
        "{}",
        summary(&out)
    );
    assert_eq!(patients(&db, &org_id).await.len(), 2);

    // A JSON file that is not a Bundle is refused as a whole.
    let file = write(
        &dir,
        "one.json",
        &fhir_patient("B9", "Solo", "Patient", "1970-01-01").to_string(),
    );
    let out = import(&url, &file);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("Bundle"), "{}", stderr(&out));
    assert_eq!(patients(&db, &org_id).await.len(), 2);
}

#[tokio::test]
async fn one_patient_named_twice_in_a_file_is_changed_once() {
    let (url, db, org_id, dir) = setup().await;
    let file = write(
        &dir,
        "first.csv",
        &format!(
            "{HEADER}\nurn:legacy,D1,Ana,,Reyes,1962-03-14,F,(512) 555-0142,yes,,12 Oak St,Austin,TX,78701,es,yes\n"
        ),
    );
    assert!(import(&url, &file).status.success());
    let mrn = patients(&db, &org_id).await[0].mrn.clone();
    let file = write(
        &dir,
        "second.csv",
        &format!(
            "source_system,source_id,mrn,given,family,birth_date,sex,email\n\
             urn:legacy,D1,,Ana,Reyes,1962-03-14,F,ana@example.com\n\
             ,,{mrn},Ana,Reyes,1962-03-14,F,other@example.com\n"
        ),
    );
    let out = import(&url, &file);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        summary(&out).contains("0 created, 1 updated, 0 unchanged, 1 rejected"),
        "{}",
        summary(&out)
    );
    let stored = patients(&db, &org_id).await;
    assert_eq!(stored[0].email.as_deref(), Some("ana@example.com"));
    let rejected = std::fs::read_to_string(dir.join("second.rejected.csv")).unwrap();
    assert!(rejected.contains("on line 2"), "{rejected}");
}

/// The batches of one file are looked up ahead of the writer (`--batch` is
/// hidden, for tests like this one): each must still see every row before
/// it, and a part committed by `--commit-every` before its own lookups.
#[tokio::test]
async fn later_batches_see_the_rows_and_parts_before_them() {
    const COLUMNS: &str = "source_system,source_id,mrn,given,family,birth_date,sex,phone_mobile,email,line1,city,state,postal_code";
    for commit_every in ["0", "2"] {
        let (url, db, org_id, dir) = setup().await;
        let first = write(
            &dir,
            "first.csv",
            &format!(
                "{COLUMNS}\nurn:legacy,Z1,,Zoe,Park,1975-05-05,F,(512) 555-0100,zoe@example.com,1 Elm St,Austin,TX,78701\n"
            ),
        );
        assert!(import(&url, &first).status.success());
        let zoe_mrn = patients(&db, &org_id).await[0].mrn.clone();
        // Ana, created on line 2, gets the next MRN.
        let ana_mrn = format!(
            "{:0width$}",
            zoe_mrn.parse::<u64>().unwrap() + 1,
            width = zoe_mrn.len()
        );
        let rows = [
            // Batch 1: a new patient and an update of Zoe.
            "urn:legacy,E1,,Ana,Reyes,1962-03-14,F,(512) 555-0142,ana@example.com,12 Oak St,Austin,TX,78701",
            "urn:legacy,Z1,,Zoe,Park,1975-05-05,F,(512) 555-0100,zoe.park@example.com,1 Elm St,Austin,TX,78701",
            // Batch 2: Ana again by identifier, Zoe again by MRN.
            "urn:legacy,E1,,Ana,Again,1962-03-14,F,(512) 555-0142,,12 Oak St,Austin,TX,78701",
            &format!(",,{zoe_mrn},Zoe,Again,1975-05-05,F,(512) 555-0100,,1 Elm St,Austin,TX,78701"),
            // Batch 3: Ana by the MRN this run gave her, and a new patient.
            &format!(
                ",,{ana_mrn},Ana,Reyes,1962-03-14,F,(512) 555-0142,ana.new@example.com,12 Oak St,Austin,TX,78701"
            ),
            "urn:legacy,E3,,Mei,Chen,2001-12-01,F,(415) 555-0199,,1 Bay St,San Francisco,CA,94105",
        ];
        let file = write(
            &dir,
            "batches.csv",
            &format!("{COLUMNS}\n{}\n", rows.join("\n")),
        );
        let run = || {
            carefront(
                &[
                    "import",
                    "patients",
                    file.to_str().unwrap(),
                    "--batch",
                    "2",
                    "--commit-every",
                    commit_every,
                ],
                &url,
            )
        };
        let out = run();
        assert!(out.status.success(), "{}", stderr(&out));
        let rejected = std::fs::read_to_string(dir.join("batches.rejected.csv")).unwrap();
        let reason = |line: &str| {
            rejected
                .lines()
                .find(|l| l.contains(&format!(",{line},")))
                .unwrap_or_else(|| panic!("line {line} not rejected: {rejected}"))
                .to_string()
        };
        assert!(reason("4").contains("on line 2"), "{rejected}");
        assert!(reason("5").contains("on line 3"), "{rejected}");
        let ana_email = if commit_every == "0" {
            // One transaction: Ana is not committed when line 6 is looked up.
            assert!(
                summary(&out).contains("2 created, 1 updated, 0 unchanged, 3 rejected"),
                "{}",
                summary(&out)
            );
            assert!(
                reason("6").contains("no patient has this MRN"),
                "{rejected}"
            );
            "ana@example.com"
        } else {
            // The part with line 2 was committed before line 6 was looked up.
            assert!(
                summary(&out).contains("2 created, 2 updated, 0 unchanged, 2 rejected"),
                "{}",
                summary(&out)
            );
            "ana.new@example.com"
        };
        let stored = patients(&db, &org_id).await;
        assert_eq!(stored.len(), 3);
        let ana = stored.iter().find(|p| p.given == "Ana").unwrap();
        assert_eq!(ana.mrn, ana_mrn);
        assert_eq!(ana.family, "Reyes");
        assert_eq!(ana.email.as_deref(), Some(ana_email));
        let zoe = stored.iter().find(|p| p.given == "Zoe").unwrap();
        assert_eq!(zoe.family, "Park");
        assert_eq!(zoe.email.as_deref(), Some("zoe.park@example.com"));

        // The same file again creates nothing; line 6 now finds Ana, already
        // reached on line 2 (which takes her email back when line 6 had
        // changed it).
        let out = run();
        assert!(out.status.success(), "{}", stderr(&out));
        let again = if commit_every == "0" {
            "0 created, 0 updated, 3 unchanged, 3 rejected"
        } else {
            "0 created, 1 updated, 2 unchanged, 3 rejected"
        };
        assert!(summary(&out).contains(again), "{}", summary(&out));
        assert_eq!(patients(&db, &org_id).await.len(), 3);
        let out = carefront(&["audit", "verify"], &url);
        assert!(out.status.success(), "{}", stdout(&out));
    }
}

#[tokio::test]
async fn mailing_address_columns_and_every_fhir_address_are_imported() {
    use carefront_domain::patient::{AddressType, AddressUse};
    let (url, db, org_id, dir) = setup().await;
    let header = format!("{HEADER},mailing_line1,mailing_city,mailing_state,mailing_postal_code");
    let csv = format!(
        "{header}\n\
         urn:legacy,M1,Ana,,Reyes,1962-03-14,F,(512) 555-0142,yes,,12 Oak St,Austin,TX,78701,,no,PO Box 88,Austin,TX,78767\n\
         urn:legacy,M2,John,,Smith,1980-03-04,M,(212) 555-0123,no,,9 Elm Rd,New York,NY,10001,,no,,,,\n\
         urn:legacy,M3,Mei,,Chen,2001-12-01,F,(415) 555-0199,no,,1 Bay St,San Francisco,CA,94105,,no,PO Box 1,San Francisco,CA,941\n"
    );
    let file = write(&dir, "mailing.csv", &csv);
    let out = import(&url, &file);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        summary(&out).contains("2 created, 0 updated, 0 unchanged, 1 rejected"),
        "{}",
        summary(&out)
    );
    let rejected = std::fs::read_to_string(dir.join("mailing.rejected.csv")).unwrap();
    assert!(
        rejected.contains("mailing_postal_code: must be a US ZIP code"),
        "{rejected}"
    );
    let stored = patients(&db, &org_id).await;
    let ana = stored.iter().find(|p| p.given == "Ana").unwrap();
    let kept: Vec<_> = ana
        .addresses
        .iter()
        .map(|a| (a.use_, a.type_, a.address.line1.as_str()))
        .collect();
    assert_eq!(
        kept,
        [
            (AddressUse::Home, None, "12 Oak St"),
            (AddressUse::Home, Some(AddressType::Postal), "PO Box 88"),
        ]
    );
    assert_eq!(ana.mailing_address().unwrap().postal_code, "78767");
    let john = stored.iter().find(|p| p.given == "John").unwrap();
    assert_eq!(john.addresses.len(), 1, "no mailing address given");

    // A new mailing address replaces the old one; the home address stays.
    let file = write(&dir, "mailing.csv", &csv.replace("PO Box 88", "PO Box 99"));
    let out = import(&url, &file);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        summary(&out).contains("0 created, 1 updated, 1 unchanged, 1 rejected"),
        "{}",
        summary(&out)
    );
    let stored = patients(&db, &org_id).await;
    let ana = stored.iter().find(|p| p.given == "Ana").unwrap();
    assert_eq!(ana.addresses.len(), 2);
    assert_eq!(ana.home_address().unwrap().line1, "12 Oak St");
    assert_eq!(ana.mailing_address().unwrap().line1, "PO Box 99");

    // FHIR: every address of the resource.
    let mut resource = fhir_patient("F1", "Ines", "Ortiz", "1975-06-01");
    resource["address"].as_array_mut().unwrap().extend([
        serde_json::json!({ "use": "work", "line": ["1 Congress Ave"], "city": "Austin", "state": "TX", "postalCode": "78701" }),
        serde_json::json!({ "use": "old", "line": ["3 Pine St"], "city": "Austin", "state": "TX", "postalCode": "78702" }),
    ]);
    let file = write(&dir, "fhir.ndjson", &(resource.to_string() + "\n"));
    let out = import(&url, &file);
    assert!(out.status.success(), "{}", stderr(&out));
    let stored = patients(&db, &org_id).await;
    let ines = stored.iter().find(|p| p.given == "Ines").unwrap();
    let uses: Vec<AddressUse> = ines.addresses.iter().map(|a| a.use_).collect();
    assert_eq!(uses, [AddressUse::Home, AddressUse::Work, AddressUse::Old]);
}
