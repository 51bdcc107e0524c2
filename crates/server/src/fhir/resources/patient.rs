//! Patient: the registration record. Served with its own create (the MRN is
//! assigned here, conditional create on `If-None-Exist`) and update (the
//! MRN and the merge link are kept), no delete (duplicates are merged, not
//! deleted), the generic read, vread, history and search, and `$match`.
//!
//! # Mapping
//!
//! | domain | FHIR |
//! | --- | --- |
//! | `mrn` | `identifier` with system [`MRN_SYSTEM`], type `v2-0203#MR`, use `usual`; assigned by the server, ignored on input |
//! | `identifiers` | further `identifier`s (system, value) |
//! | `given`, `middle`, `family`, `suffix` | `name[0]` (use `official`): `given` = [given, middle], `family`, `suffix` |
//! | `preferred_name` | `name[1]` (use `usual`): `given` |
//! | `phones` | `telecom` system `phone`, `use` mobile / home / work, [`SMS_CONSENT_EXTENSION`] valueBoolean |
//! | `email` | `telecom` system `email` |
//! | `sex` | `gender` |
//! | `birth_date` | `birthDate` |
//! | `addresses` | `address[]`: `use` home / work / temp / billing / old (absent: home), `type` postal / physical / both, `period` start and end (dates; a dateTime's date is kept); the home address first |
//! | `language` | `communication[0].language.coding[0]` (system `urn:ietf:bcp:47`), `preferred` true |
//! | `interpreter_needed` | extension [`INTERPRETER_EXTENSION`] valueBoolean |
//! | `preferred_contact` | extension [`PREFERRED_CONTACT_EXTENSION`] valueCode phone / sms / email / mail / portal |
//! | `alerts` | extension [`ALERT_EXTENSION`] valueString, one per alert |
//! | `gender_identity`, `pronouns` | extensions [`GENDER_IDENTITY_EXTENSION`], [`PRONOUNS_EXTENSION`] (R5 backport): sub-extension `value`, valueCodeableConcept.text |
//! | `contacts` | `contact[]`: relationship (`v3-RoleCode` code, or text), `v2-0131#C` when an emergency contact, `name.text`, one phone in `telecom`, [`GUARANTOR_EXTENSION`] valueBoolean |
//! | `active` | `active` |
//! | `replaced_by` | `link` {other: Patient/survivor, type: replaced-by}; set by merge, ignored on input |

use crate::AppState;
use crate::fhir::capability;
use crate::fhir::json::{
    ADDRESS_ELEMENTS, Issues, Obj, REFERENCE_ELEMENTS, address_expression, address_from_fhir,
    address_to_fhir, telecom_expression,
};
use crate::fhir::operations::patient_match;
use crate::fhir::outcome::{FhirError, Issue};
use crate::fhir::resource::{
    self, FhirResource, about, check_resource, if_match, known_elements, read_json,
};
use crate::fhir::search::{self, COMMON, SearchParam, nothing, token};
use crate::fhir::{Ctx, finish, note};
use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use carefront_domain::audit::{Action, Outcome};
use carefront_domain::directory::{AdministrativeGender, Versioned};
use carefront_domain::patient::{
    AddressType, AddressUse, ContactMethod, Identifier, Patient, PatientAddress, PatientContact,
    Phone, PhoneKind, RegistrationRules,
};
use carefront_domain::patient_search::{MRN_WIDTH, fold_term};
use carefront_domain::{Area, ValidationErrors};
use carefront_store::{Filter, Page, StoreError, Val, new_id};
use jiff::ToSpan;
use jiff::civil::Date;
use serde_json::{Value, json};

const KIND: &str = "Patient";

/// The system of Carefront's medical record numbers.
pub const MRN_SYSTEM: &str = "http://carefront.example/fhir/sid/mrn";
/// On a phone `telecom`: the patient agreed to text messages on it (valueBoolean).
pub const SMS_CONSENT_EXTENSION: &str =
    "http://carefront.example/fhir/StructureDefinition/sms-consent";
/// How the patient prefers to be reached (valueCode: phone, sms, email, mail, portal).
pub const PREFERRED_CONTACT_EXTENSION: &str =
    "http://carefront.example/fhir/StructureDefinition/preferred-contact-method";
/// One alert shown on every screen, e.g. "needs wheelchair" (valueString; repeats).
pub const ALERT_EXTENSION: &str = "http://carefront.example/fhir/StructureDefinition/patient-alert";
/// On a `contact`: financially responsible for the patient's bills (valueBoolean).
pub const GUARANTOR_EXTENSION: &str =
    "http://carefront.example/fhir/StructureDefinition/contact-guarantor";
pub const INTERPRETER_EXTENSION: &str =
    "http://hl7.org/fhir/StructureDefinition/patient-interpreterRequired";
pub const GENDER_IDENTITY_EXTENSION: &str =
    "http://hl7.org/fhir/StructureDefinition/individual-genderIdentity";
pub const PRONOUNS_EXTENSION: &str = "http://hl7.org/fhir/StructureDefinition/individual-pronouns";
pub const BCP47_SYSTEM: &str = "urn:ietf:bcp:47";
pub const ROLE_CODE_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-RoleCode";
/// `C` (emergency contact) marks emergency contacts; `EP` is read as the same.
pub const CONTACT_ROLE_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v2-0131";
const IDENTIFIER_TYPE_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v2-0203";
const GENDER_SYSTEM: &str = "http://hl7.org/fhir/administrative-gender";

pub const ELEMENTS: &[&str] = &[
    "extension",
    "identifier",
    "active",
    "name",
    "telecom",
    "gender",
    "birthDate",
    "address",
    "contact",
    "communication",
    "link",
];

/// Today where the server runs: dates of birth may not be after it.
fn today() -> Date {
    jiff::Zoned::now().date()
}

pub fn register(router: Router<AppState>) -> Router<AppState> {
    router
        .route(
            &format!("/{KIND}"),
            get(resource::search_type::<Patient>).post(create),
        )
        .route(
            &format!("/{KIND}/$match"),
            post(patient_match::match_patients),
        )
        .route(
            &format!("/{KIND}/{{id}}"),
            get(resource::read::<Patient>).put(update),
        )
        .route(
            &format!("/{KIND}/{{id}}/_history"),
            get(resource::history::<Patient>),
        )
        .route(
            &format!("/{KIND}/{{id}}/_history/{{vid}}"),
            get(resource::vread::<Patient>),
        )
}

pub fn capability_entry() -> Value {
    let mut entry = capability::entry(
        KIND,
        <Patient as FhirResource>::DOC,
        &[
            "read",
            "vread",
            "update",
            "history-instance",
            "search-type",
            "create",
        ],
        true,
        &[<Patient as FhirResource>::SEARCH, COMMON],
    );
    entry["conditionalCreate"] = json!(true);
    entry["operation"] = json!([{
        "name": "match",
        "definition": patient_match::DEFINITION,
        "documentation": patient_match::DOC,
    }]);
    entry
}

// ---------------------------------------------------------------------------
// Writing

fn extension_value(url: &str, key: &str, value: Value) -> Value {
    json!({ "url": url, key: value })
}

/// An R5-backport complex extension holding free text in `value`.
fn text_extension(url: &str, text: &Option<String>) -> Option<Value> {
    text.as_ref().map(|t| {
        json!({
            "url": url,
            "extension": [{ "url": "value", "valueCodeableConcept": { "text": t } }],
        })
    })
}

/// Whether a relationship is an HL7 v3 RoleCode (`SPS`, `MTH`, `CHILD`)
/// rather than free text.
fn is_role_code(relationship: &str) -> bool {
    !relationship.is_empty()
        && relationship.len() <= 10
        && relationship.bytes().all(|b| b.is_ascii_uppercase())
}

/// `contact.relationship` / `RelatedPerson.relationship`.
pub fn relationship_to_fhir(c: &PatientContact) -> Value {
    let role = if is_role_code(&c.relationship) {
        json!({ "coding": [{ "system": ROLE_CODE_SYSTEM, "code": c.relationship }] })
    } else {
        json!({ "text": c.relationship })
    };
    let emergency = c.emergency.then(|| {
        json!({
            "coding": [{
                "system": CONTACT_ROLE_SYSTEM,
                "code": "C",
                "display": "Emergency Contact",
            }],
        })
    });
    json!([role, emergency])
}

/// The guarantor marker on a contact or RelatedPerson.
pub fn guarantor_extension(c: &PatientContact) -> Value {
    json!([c
        .guarantor
        .then(|| extension_value(GUARANTOR_EXTENSION, "valueBoolean", json!(true)))])
}

fn patient_json(p: &Patient) -> Value {
    let mut extensions: Vec<Value> = Vec::new();
    if p.interpreter_needed {
        extensions.push(extension_value(
            INTERPRETER_EXTENSION,
            "valueBoolean",
            json!(true),
        ));
    }
    if let Some(m) = p.preferred_contact {
        extensions.push(extension_value(
            PREFERRED_CONTACT_EXTENSION,
            "valueCode",
            json!(m.code()),
        ));
    }
    extensions.extend(text_extension(
        GENDER_IDENTITY_EXTENSION,
        &p.gender_identity,
    ));
    extensions.extend(text_extension(PRONOUNS_EXTENSION, &p.pronouns));
    extensions.extend(
        p.alerts
            .iter()
            .map(|a| extension_value(ALERT_EXTENSION, "valueString", json!(a))),
    );

    let mut identifiers = vec![json!({
        "use": "usual",
        "type": { "coding": [{
            "system": IDENTIFIER_TYPE_SYSTEM,
            "code": "MR",
            "display": "Medical record number",
        }] },
        "system": MRN_SYSTEM,
        "value": p.mrn,
    })];
    identifiers.extend(
        p.identifiers
            .iter()
            .map(|i| json!({ "system": i.system, "value": i.value })),
    );

    let mut names = vec![json!({
        "use": "official",
        "family": p.family,
        "given": [Some(&p.given), p.middle.as_ref()],
        "suffix": [p.suffix],
    })];
    if let Some(preferred) = &p.preferred_name {
        names.push(json!({ "use": "usual", "given": [preferred] }));
    }

    let mut telecom: Vec<Value> = p
        .phones
        .iter()
        .map(|ph| {
            json!({
                "extension": [extension_value(SMS_CONSENT_EXTENSION, "valueBoolean", json!(ph.sms_consent))],
                "system": "phone",
                "value": ph.number,
                "use": ph.kind.code(),
            })
        })
        .collect();
    if let Some(e) = &p.email {
        telecom.push(json!({ "system": "email", "value": e }));
    }

    let contacts: Vec<Value> = p
        .contacts
        .iter()
        .map(|c| {
            json!({
                "extension": guarantor_extension(c),
                "relationship": relationship_to_fhir(c),
                "name": { "text": c.name },
                "telecom": [c.phone.as_ref().map(|ph| json!({ "system": "phone", "value": ph }))],
            })
        })
        .collect();

    let addresses: Vec<Value> = p
        .addresses
        .iter()
        .map(|a| {
            let mut v = address_to_fhir(&a.address);
            v["use"] = json!(a.use_.code());
            if let Some(t) = a.type_ {
                v["type"] = json!(t.code());
            }
            if a.start.is_some() || a.end.is_some() {
                v["period"] = json!({
                    "start": a.start.map(|d| d.to_string()),
                    "end": a.end.map(|d| d.to_string()),
                });
            }
            v
        })
        .collect();

    json!({
        "extension": extensions,
        "identifier": identifiers,
        "active": p.active,
        "name": names,
        "telecom": telecom,
        "gender": p.sex.code(),
        "birthDate": p.birth_date.to_string(),
        "address": addresses,
        "contact": contacts,
        "communication": [p.language.as_ref().map(|l| json!({
            "language": { "coding": [{ "system": BCP47_SYSTEM, "code": l }] },
            "preferred": true,
        }))],
        "link": [p.replaced_by.as_ref().map(|survivor| json!({
            "other": { "reference": format!("Patient/{survivor}") },
            "type": "replaced-by",
        }))],
    })
}

// ---------------------------------------------------------------------------
// Reading

/// Where each part of the domain record was read from, so a validation
/// error names the element the client sent (`Patient.telecom[2].value`).
#[derive(Debug, Default)]
pub struct Paths {
    official: Option<String>,
    usual: Option<String>,
    phones: Vec<String>,
    email: Option<String>,
    communication: Option<String>,
    contact_phones: Vec<Option<String>>,
    alerts: Vec<String>,
    identifiers: Vec<String>,
    /// `Patient.address[i]` of each address read, in the domain's order.
    addresses: Vec<String>,
    gender_identity: Option<String>,
    pronouns: Option<String>,
    preferred_contact: Option<String>,
}

/// `phones[2].number` → `(2, ".number")` for `list` = `phones`.
fn indexed<'f>(field: &'f str, list: &str) -> Option<(usize, &'f str)> {
    let rest = field.strip_prefix(list)?.strip_prefix('[')?;
    let (n, rest) = rest.split_once(']')?;
    Some((n.parse().ok()?, rest))
}

impl Paths {
    /// The FHIRPath of a domain field named by [`Patient::validate`].
    pub fn expression(&self, field: &str) -> String {
        let ext = |tracked: &Option<String>, url: &str| {
            tracked
                .clone()
                .unwrap_or_else(|| format!("Patient.extension('{url}')"))
        };
        let official = self.official.as_deref().unwrap_or("Patient.name[0]");
        if let Some((i, rest)) = indexed(field, "addresses") {
            let base = self
                .addresses
                .get(i)
                .cloned()
                .unwrap_or_else(|| format!("Patient.address[{i}]"));
            return match rest.trim_start_matches('.') {
                "" => base,
                "start" => format!("{base}.period.start"),
                "end" => format!("{base}.period.end"),
                sub => address_expression(&base, sub),
            };
        }
        if let Some((i, _)) = indexed(field, "phones") {
            return match self.phones.get(i) {
                Some(path) => format!("{path}.value"),
                None => format!("Patient.telecom.where(system='phone')[{i}].value"),
            };
        }
        if let Some((i, rest)) = indexed(field, "contacts") {
            return match rest {
                ".phone" => match self.contact_phones.get(i).cloned().flatten() {
                    Some(path) => format!("{path}.value"),
                    None => format!("Patient.contact[{i}].telecom.where(system='phone').value"),
                },
                ".relationship" => format!("Patient.contact[{i}].relationship"),
                _ => format!("Patient.contact[{i}].name"),
            };
        }
        if let Some((i, _)) = indexed(field, "alerts") {
            return match self.alerts.get(i) {
                Some(path) => format!("{path}.valueString"),
                None => format!("Patient.extension('{ALERT_EXTENSION}')[{i}].valueString"),
            };
        }
        if let Some((i, rest)) = indexed(field, "identifiers") {
            let element = if rest == ".system" { "system" } else { "value" };
            return match self.identifiers.get(i) {
                Some(path) => format!("{path}.{element}"),
                None => format!("Patient.identifier.where(system!='{MRN_SYSTEM}')[{i}].{element}"),
            };
        }
        match field {
            "given" => format!("{official}.given[0]"),
            "middle" => format!("{official}.given"),
            "family" => format!("{official}.family"),
            "suffix" => format!("{official}.suffix"),
            "preferred_name" => format!(
                "{}.given",
                self.usual
                    .as_deref()
                    .unwrap_or("Patient.name.where(use='usual')")
            ),
            "birth_date" => "Patient.birthDate".into(),
            "phones" => "Patient.telecom".into(),
            "email" => match &self.email {
                Some(path) => format!("{path}.value"),
                None => telecom_expression(KIND, "email"),
            },
            "addresses" => "Patient.address".into(),
            "language" => format!(
                "{}.language",
                self.communication
                    .as_deref()
                    .unwrap_or("Patient.communication[0]")
            ),
            "preferred_contact" => ext(&self.preferred_contact, PREFERRED_CONTACT_EXTENSION),
            "gender_identity" => ext(&self.gender_identity, GENDER_IDENTITY_EXTENSION),
            "pronouns" => ext(&self.pronouns, PRONOUNS_EXTENSION),
            "contacts" => "Patient.contact".into(),
            "alerts" => format!("Patient.extension('{ALERT_EXTENSION}')"),
            "sex" => "Patient.gender".into(),
            other => format!("Patient.{other}"),
        }
    }
}

/// A submitted Patient: the domain record (not yet validated) and what the
/// domain type cannot leave out but FHIR can.
#[derive(Debug)]
pub struct Parsed {
    /// With a placeholder birth date when none was sent.
    pub patient: Patient,
    pub birth_date: Option<Date>,
    pub gender: Option<AdministrativeGender>,
    pub paths: Paths,
    /// The values of the identifiers with system [`MRN_SYSTEM`]: not kept
    /// (the server assigns MRNs), but they name an existing patient.
    pub mrns: Vec<String>,
}

fn unsupported(issues: &mut Issues, path: &str, message: impl std::fmt::Display) {
    issues.push(Issue::at(
        "not-supported",
        path,
        format!("{path} {message}"),
    ));
}

/// The text of a CodeableConcept: `text`, else the first coding's display
/// or code.
fn concept_text(c: &Obj, issues: &mut Issues) -> Option<String> {
    let codings = c.objects("coding", &["system", "code", "display"], issues);
    let text = c.string("text", issues);
    text.or_else(|| {
        codings.first().and_then(|coding| {
            let display = coding.string("display", issues);
            display.or_else(|| coding.string("code", issues))
        })
    })
}

/// Reads an R5-backport extension whose `value` sub-extension holds a
/// CodeableConcept.
fn read_text_extension(ext: &Obj, issues: &mut Issues) -> Option<String> {
    let mut text = None;
    for sub in ext.objects("extension", &["url", "valueCodeableConcept"], issues) {
        if sub.string("url", issues).as_deref() == Some("value") {
            text = sub
                .object("valueCodeableConcept", &["coding", "text"], issues)
                .and_then(|c| concept_text(&c, issues));
        } else {
            unsupported(
                issues,
                &sub.child("url"),
                "is not kept: only the 'value' sub-extension is",
            );
        }
    }
    text
}

fn read_extensions(r: &Obj, p: &mut Patient, paths: &mut Paths, issues: &mut Issues) {
    let known = [
        "url",
        "valueBoolean",
        "valueCode",
        "valueString",
        "extension",
    ];
    let mut seen: Vec<String> = Vec::new();
    for ext in r.objects("extension", &known, issues) {
        let url = ext.string("url", issues).unwrap_or_default();
        if url != ALERT_EXTENSION && seen.contains(&url) {
            unsupported(
                issues,
                &ext.path,
                format!("repeats {url}, which is kept once"),
            );
            continue;
        }
        seen.push(url.clone());
        match url.as_str() {
            INTERPRETER_EXTENSION => {
                p.interpreter_needed = ext.boolean("valueBoolean", issues).unwrap_or(false);
            }
            PREFERRED_CONTACT_EXTENSION => {
                let code = ext.string("valueCode", issues).unwrap_or_default();
                p.preferred_contact = ContactMethod::from_code(&code);
                if p.preferred_contact.is_none() {
                    let path = ext.child("valueCode");
                    issues.push(Issue::at(
                        "code-invalid",
                        &path,
                        format!(
                            "{path} '{code}' is not one of phone | sms | email | mail | portal"
                        ),
                    ));
                }
                paths.preferred_contact = Some(ext.path.clone());
            }
            ALERT_EXTENSION => {
                if let Some(a) = ext
                    .string("valueString", issues)
                    .filter(|a| !a.trim().is_empty())
                {
                    p.alerts.push(a);
                    paths.alerts.push(ext.path.clone());
                }
            }
            GENDER_IDENTITY_EXTENSION => {
                p.gender_identity = read_text_extension(&ext, issues);
                paths.gender_identity = Some(ext.path.clone());
            }
            PRONOUNS_EXTENSION => {
                p.pronouns = read_text_extension(&ext, issues);
                paths.pronouns = Some(ext.path.clone());
            }
            _ => unsupported(
                issues,
                &ext.child("url"),
                format!(
                    "'{url}' is not an extension this server keeps (see the CapabilityStatement)"
                ),
            ),
        }
    }
}

/// Reads the identifiers into `p` and returns the MRNs named (the values of
/// those with system [`MRN_SYSTEM`], which are not kept).
fn read_identifiers(
    r: &Obj,
    p: &mut Patient,
    paths: &mut Paths,
    issues: &mut Issues,
) -> Vec<String> {
    let mut mrns = Vec::new();
    for (path, v) in r.list("identifier", issues) {
        let is_mrn = v.get("system").and_then(Value::as_str) == Some(MRN_SYSTEM);
        // The MRN is the server's: whatever is sent for it is ignored.
        let known: &[&str] = if is_mrn {
            &["use", "type", "system", "value"]
        } else {
            &["system", "value"]
        };
        let Some(id) = Obj::new(path.clone(), v, known, issues) else {
            continue;
        };
        if is_mrn {
            // Not kept, only reported to callers that find patients by it.
            mrns.extend(
                v.get("value")
                    .and_then(Value::as_str)
                    .map(str::trim)
                    .filter(|m| !m.is_empty())
                    .map(str::to_string),
            );
            continue;
        }
        p.identifiers.push(Identifier {
            system: id.string("system", issues).unwrap_or_default(),
            value: id.string("value", issues).unwrap_or_default(),
        });
        paths.identifiers.push(path);
    }
    mrns
}

fn read_names(r: &Obj, p: &mut Patient, paths: &mut Paths, issues: &mut Issues) {
    for (path, v) in r.list("name", issues) {
        match v.get("use").and_then(Value::as_str) {
            None | Some("official") => {
                let Some(name) = Obj::new(
                    path.clone(),
                    v,
                    &["use", "family", "given", "suffix"],
                    issues,
                ) else {
                    continue;
                };
                if paths.official.is_some() {
                    unsupported(issues, &path, "is a second official name; one is kept");
                    continue;
                }
                let mut given = name.strings("given", issues).into_iter();
                p.given = given.next().unwrap_or_default();
                let middle: Vec<String> = given.collect();
                p.middle = (!middle.is_empty()).then(|| middle.join(" "));
                p.family = name.string("family", issues).unwrap_or_default();
                let suffix = name.strings("suffix", issues);
                p.suffix = (!suffix.is_empty()).then(|| suffix.join(" "));
                paths.official = Some(path);
            }
            Some("usual") => {
                let Some(name) = Obj::new(path.clone(), v, &["use", "given"], issues) else {
                    continue;
                };
                if paths.usual.is_some() {
                    unsupported(issues, &path, "is a second usual name; one is kept");
                    continue;
                }
                let given = name.strings("given", issues);
                p.preferred_name = (!given.is_empty()).then(|| given.join(" "));
                paths.usual = Some(path);
            }
            Some(other) => unsupported(
                issues,
                &format!("{path}.use"),
                format!(
                    "'{other}' is not kept: a patient has an official name and a usual (preferred) one"
                ),
            ),
        }
    }
}

fn read_telecom(r: &Obj, p: &mut Patient, paths: &mut Paths, issues: &mut Issues) {
    for (path, v) in r.list("telecom", issues) {
        match v.get("system").and_then(Value::as_str) {
            Some("phone") => {
                let known = ["system", "value", "use", "extension"];
                let Some(t) = Obj::new(path.clone(), v, &known, issues) else {
                    continue;
                };
                let kind = match t.string("use", issues) {
                    None => PhoneKind::Mobile,
                    Some(code) => PhoneKind::from_code(&code).unwrap_or_else(|| {
                        let at = t.child("use");
                        issues.push(Issue::at(
                            "code-invalid",
                            &at,
                            format!("{at} '{code}' is not kept: use mobile, home or work"),
                        ));
                        PhoneKind::Mobile
                    }),
                };
                let mut sms_consent = false;
                for ext in t.objects("extension", &["url", "valueBoolean"], issues) {
                    if ext.string("url", issues).as_deref() == Some(SMS_CONSENT_EXTENSION) {
                        sms_consent = ext.boolean("valueBoolean", issues).unwrap_or(false);
                    } else {
                        unsupported(
                            issues,
                            &ext.child("url"),
                            format!(
                                "is not kept: the only phone extension is {SMS_CONSENT_EXTENSION}"
                            ),
                        );
                    }
                }
                p.phones.push(Phone {
                    number: t.string("value", issues).unwrap_or_default(),
                    kind,
                    sms_consent,
                });
                paths.phones.push(path);
            }
            Some("email") => {
                let Some(t) = Obj::new(path.clone(), v, &["system", "value"], issues) else {
                    continue;
                };
                if paths.email.is_some() {
                    unsupported(issues, &path, "is a second email; one is kept");
                    continue;
                }
                p.email = t.string("value", issues);
                paths.email = Some(path);
            }
            other => {
                let at = format!("{path}.system");
                let what = other.map_or("missing".to_string(), |s| format!("'{s}'"));
                issues.push(Issue::at(
                    "not-supported",
                    &at,
                    format!("{at} is {what}: phone and email are kept"),
                ));
            }
        }
    }
}

fn read_contacts(r: &Obj, p: &mut Patient, paths: &mut Paths, issues: &mut Issues) {
    let known = ["extension", "relationship", "name", "telecom"];
    for c in r.objects("contact", &known, issues) {
        let mut contact = PatientContact {
            name: String::new(),
            relationship: String::new(),
            phone: None,
            emergency: false,
            guarantor: false,
        };
        for rel in c.objects("relationship", &["coding", "text"], issues) {
            let text = rel.string("text", issues);
            let mut coded = false;
            for coding in rel.objects("coding", &["system", "code", "display"], issues) {
                let system = coding.string("system", issues).unwrap_or_default();
                let code = coding.string("code", issues).unwrap_or_default();
                match system.as_str() {
                    CONTACT_ROLE_SYSTEM if code == "C" || code == "EP" => contact.emergency = true,
                    ROLE_CODE_SYSTEM if contact.relationship.is_empty() => {
                        contact.relationship = code;
                    }
                    _ => unsupported(
                        issues,
                        &coding.path,
                        format!(
                            "is not kept: relationships are {ROLE_CODE_SYSTEM} codes, \
                             free text, or {CONTACT_ROLE_SYSTEM}#C for an emergency contact"
                        ),
                    ),
                }
                coded = true;
            }
            if !coded && contact.relationship.is_empty() {
                contact.relationship = text.unwrap_or_default();
            }
        }
        if let Some(name) = c.object("name", &["text", "family", "given"], issues) {
            let text = name.string("text", issues);
            let parts: Vec<String> = name
                .strings("given", issues)
                .into_iter()
                .chain(name.string("family", issues))
                .collect();
            contact.name = text.unwrap_or_else(|| parts.join(" "));
        }
        let mut phone_path = None;
        for (path, v) in c.list("telecom", issues) {
            let Some(t) = Obj::new(path.clone(), v, &["system", "value"], issues) else {
                continue;
            };
            match t.string("system", issues).as_deref() {
                Some("phone") if phone_path.is_none() => {
                    contact.phone = t.string("value", issues);
                    phone_path = Some(path);
                }
                _ => unsupported(
                    issues,
                    &path,
                    "is not kept: a contact keeps one phone number",
                ),
            }
        }
        for ext in c.objects("extension", &["url", "valueBoolean"], issues) {
            if ext.string("url", issues).as_deref() == Some(GUARANTOR_EXTENSION) {
                contact.guarantor = ext.boolean("valueBoolean", issues).unwrap_or(false);
            } else {
                unsupported(
                    issues,
                    &ext.child("url"),
                    format!("is not kept: the only contact extension is {GUARANTOR_EXTENSION}"),
                );
            }
        }
        p.contacts.push(contact);
        paths.contact_phones.push(phone_path);
    }
}

fn read_communication(r: &Obj, p: &mut Patient, paths: &mut Paths, issues: &mut Issues) {
    let Some(comm) = r.single("communication", &["language", "preferred"], issues) else {
        return;
    };
    let _ = comm.boolean("preferred", issues);
    paths.communication = Some(comm.path.clone());
    let Some(language) = comm.object("language", &["coding", "text"], issues) else {
        return;
    };
    let _ = language.string("text", issues);
    let coding = language.single("coding", &["system", "code", "display"], issues);
    let Some(coding) = coding else {
        let path = language.child("coding");
        issues.push(Issue::at(
            "required",
            &path,
            format!("{path} must hold a BCP-47 code (system {BCP47_SYSTEM}), e.g. es or zh-Hant"),
        ));
        return;
    };
    match coding.string("system", issues) {
        None => {}
        Some(s) if s == BCP47_SYSTEM => {}
        Some(s) => unsupported(
            issues,
            &coding.child("system"),
            format!("'{s}' is not kept: languages are {BCP47_SYSTEM} codes"),
        ),
    }
    let _ = coding.string("display", issues);
    p.language = coding.string("code", issues);
}

/// A FHIR `date` or `dateTime` (whose date is kept) at `path`.
fn period_date(obj: &Obj, key: &str, issues: &mut Issues) -> Option<Date> {
    let text = obj.string(key, issues)?;
    let parsed = text.get(..10).and_then(|d| d.parse::<Date>().ok());
    if parsed.is_none() {
        let path = obj.child(key);
        issues.push(Issue::at(
            "value",
            &path,
            format!("{path} '{text}' must be a full date such as 2024-05-31"),
        ));
    }
    parsed
}

fn read_addresses(r: &Obj, p: &mut Patient, paths: &mut Paths, issues: &mut Issues) {
    let known = [ADDRESS_ELEMENTS, &["use", "type", "period"]].concat();
    for a in r.objects("address", &known, issues) {
        let use_ = match a.string("use", issues) {
            None => AddressUse::Home,
            Some(code) => AddressUse::from_code(&code).unwrap_or_else(|| {
                let at = a.child("use");
                issues.push(Issue::at(
                    "code-invalid",
                    &at,
                    format!("{at} '{code}' is not one of home | work | temp | billing | old"),
                ));
                AddressUse::Home
            }),
        };
        let type_ = a.string("type", issues).and_then(|code| {
            let parsed = AddressType::from_code(&code);
            if parsed.is_none() {
                let at = a.child("type");
                issues.push(Issue::at(
                    "code-invalid",
                    &at,
                    format!("{at} '{code}' is not one of postal | physical | both"),
                ));
            }
            parsed
        });
        let (start, end) = match a.object("period", &["start", "end"], issues) {
            Some(period) => (
                period_date(&period, "start", issues),
                period_date(&period, "end", issues),
            ),
            None => (None, None),
        };
        p.addresses.push(PatientAddress {
            use_,
            type_,
            start,
            end,
            address: address_from_fhir(&a, issues),
        });
        paths.addresses.push(a.path.clone());
    }
}

/// Reads a Patient resource. Problems with its structure go to `issues`;
/// the domain's rules are checked afterwards by [`Patient::validate`].
pub fn parse(r: &Obj, issues: &mut Issues) -> Parsed {
    let mut paths = Paths::default();
    let mut p = Patient {
        mrn: String::new(),
        given: String::new(),
        middle: None,
        family: String::new(),
        suffix: None,
        preferred_name: None,
        birth_date: jiff::civil::date(1900, 1, 1),
        sex: AdministrativeGender::Unknown,
        gender_identity: None,
        pronouns: None,
        addresses: Vec::new(),
        phones: Vec::new(),
        email: None,
        language: None,
        interpreter_needed: false,
        preferred_contact: None,
        contacts: Vec::new(),
        alerts: Vec::new(),
        identifiers: Vec::new(),
        active: r.boolean("active", issues).unwrap_or(true),
        replaced_by: None,
    };
    read_extensions(r, &mut p, &mut paths, issues);
    let mrns = read_identifiers(r, &mut p, &mut paths, issues);
    read_names(r, &mut p, &mut paths, issues);
    read_telecom(r, &mut p, &mut paths, issues);
    read_contacts(r, &mut p, &mut paths, issues);
    read_communication(r, &mut p, &mut paths, issues);
    let gender = r.string("gender", issues).and_then(|g| {
        let parsed = AdministrativeGender::from_code(&g);
        if parsed.is_none() {
            let path = r.child("gender");
            issues.push(Issue::at(
                "code-invalid",
                &path,
                format!("{path} '{g}' is not one of male | female | other | unknown"),
            ));
        }
        parsed
    });
    p.sex = gender.unwrap_or(AdministrativeGender::Unknown);
    let birth_date = r.string("birthDate", issues).and_then(|d| {
        let parsed = (d.len() == 10).then(|| d.parse::<Date>().ok()).flatten();
        if parsed.is_none() {
            let path = r.child("birthDate");
            issues.push(Issue::at(
                "value",
                &path,
                format!("{path} '{d}' must be a full date such as 1962-03-14"),
            ));
        }
        parsed
    });
    if let Some(d) = birth_date {
        p.birth_date = d;
    }
    read_addresses(r, &mut p, &mut paths, issues);
    // The merge link is the server's; it is read only to check its shape.
    for link in r.objects("link", &["other", "type"], issues) {
        let _ = link.object("other", REFERENCE_ELEMENTS, issues);
        let _ = link.string("type", issues);
    }
    Parsed {
        patient: p,
        birth_date,
        gender,
        paths,
        mrns,
    }
}

/// [`parse`] for registering a patient, where the date of birth the domain
/// record cannot leave out is required.
fn parse_registration(r: &Obj, issues: &mut Issues) -> Parsed {
    let parsed = parse(r, issues);
    if parsed.birth_date.is_none()
        && !issues
            .iter()
            .any(|i| i.expression.as_deref() == Some("Patient.birthDate"))
    {
        issues.push(Issue::at(
            "required",
            "Patient.birthDate",
            "Patient.birthDate is required",
        ));
    }
    parsed
}

/// A Patient resource read by [`patient_from_fhir`].
#[derive(Debug, Clone, PartialEq)]
pub struct FhirPatient {
    /// Validated and normalized, without an MRN (it is assigned on create,
    /// kept on update).
    pub patient: Patient,
    /// The MRNs the resource names (identifiers with system [`MRN_SYSTEM`],
    /// as sent): never stored from here, but they name an existing patient.
    pub mrns: Vec<String>,
}

/// Reads a Patient resource (FHIR R4 JSON, `resourceType` included) into a
/// domain patient checked against the organization's registration `rules`
/// (dates of birth may not be after `today`). This is the one reading of a
/// submitted Patient: FHIR create and update and `carefront import` use it.
///
/// On failure nothing should be stored; every problem is an [`Issue`] whose
/// `expression` names the element (`Patient.birthDate`,
/// `Patient.telecom[1].value`) and whose `diagnostics` begin with it.
pub fn patient_from_fhir(
    value: &Value,
    rules: &RegistrationRules,
    today: Date,
) -> Result<FhirPatient, Vec<Issue>> {
    let found = value.get("resourceType").and_then(Value::as_str);
    if found != Some(KIND) {
        return Err(vec![Issue::at(
            "invalid",
            "resourceType",
            format!(
                "resourceType must be '{KIND}' (got {})",
                found.map_or("none".into(), |k| format!("'{k}'"))
            ),
        )]);
    }
    let mut issues = Vec::new();
    let known = known_elements(ELEMENTS);
    let parsed = Obj::new(KIND.to_string(), value, &known, &mut issues)
        .map(|obj| parse_registration(&obj, &mut issues));
    let Some(Parsed {
        patient,
        paths,
        mrns,
        ..
    }) = parsed.filter(|_| issues.is_empty())
    else {
        return Err(issues);
    };
    let patient = patient
        .validate(rules, today)
        .map_err(|e| Issue::from_validation(&e, |f| paths.expression(f)))?;
    Ok(FhirPatient { patient, mrns })
}

/// Reads a submitted Patient and checks it against the organization's
/// registration rules ([`patient_from_fhir`]); nothing is written unless
/// this succeeds. MRNs sent are ignored: the server assigns and keeps them.
async fn validated(ctx: &Ctx, value: &Value) -> Result<Patient, FhirError> {
    let rules = ctx.state.db.setting::<RegistrationRules>(ctx.org()).await?;
    patient_from_fhir(value, &rules, today())
        .map(|read| read.patient)
        .map_err(FhirError::Invalid)
}

// ---------------------------------------------------------------------------
// Create and update

/// The audit entry of a write of patient `id`, committed with the data.
fn write_entry(
    ctx: &Ctx,
    action: Action,
    id: &str,
    what: &str,
) -> carefront_domain::audit::AuditEntry {
    note(action, KIND, Some(id), what)
        .patient(id)
        .entry(&ctx.principal, Outcome::Success)
}

/// `If-None-Exist`: the patients its search finds (at most two are read).
async fn existing(ctx: &Ctx, query: &str) -> Result<(Vec<Versioned<Patient>>, i64), FhirError> {
    let query = query.trim().trim_start_matches('?');
    let mut filters = Vec::new();
    let parsed = search::parse(
        Some(query),
        &[<Patient as FhirResource>::SEARCH, COMMON],
        &mut filters,
    )
    .map_err(|e| match e {
        FhirError::Invalid(mut issues) => {
            for i in &mut issues {
                i.diagnostics = format!("If-None-Exist: {}", i.diagnostics);
            }
            FhirError::Invalid(issues)
        }
        other => other,
    })?;
    if parsed.params.is_empty() {
        return Err(FhirError::invalid(
            "If-None-Exist must hold a search, e.g. identifier=http://example.org/mrn|123.",
        ));
    }
    let page = Page {
        offset: 0,
        count: 2,
    };
    Ok(ctx
        .state
        .db
        .search::<Patient>(ctx.org(), &filters, page)
        .await?)
}

async fn create(ctx: Ctx, headers: HeaderMap, body: Body) -> Response {
    let mut note = note(Action::Create, KIND, None, "create");
    let result = async {
        ctx.require(Area::Patients)?;
        let value = read_json(&headers, body).await?;
        check_resource(&value, KIND, None)?;
        let mut tx = ctx.state.db.begin(ctx.org()).await?;
        if let Some(condition) = headers.get("if-none-exist") {
            let condition = condition
                .to_str()
                .map_err(|_| FhirError::invalid("If-None-Exist must be a query string."))?;
            // Two clients sending the same condition at once create one
            // patient: the second looks only after the first committed.
            tx.lock(&format!("Patient?{}", condition.trim())).await?;
            let (found, total) = existing(&ctx, condition).await?;
            match (total, found.first()) {
                (0, _) => {}
                (1, Some(v)) => {
                    // Nothing created: the existing patient is shown, and
                    // audited as a read of it.
                    note.action = Action::Read;
                    note.resource_id = Some(v.id.clone());
                    note.patient_id = Some(v.id.clone());
                    note.detail = Some(format!(
                        "FHIR conditional create: If-None-Exist {condition} matched, nothing created"
                    ));
                    return Ok(ctx.version(StatusCode::OK, v, true));
                }
                (n, _) => {
                    return Err(FhirError::PreconditionFailed(format!(
                        "If-None-Exist '{condition}' matches {n} patients; nothing was created."
                    )));
                }
            }
        }
        let patient = validated(&ctx, &value).await?;
        let id = new_id();
        let saved = tx
            .create_patient(&id, patient, &ctx.principal.actor_name)
            .await?;
        tx.audit(write_entry(&ctx, Action::Create, &id, "create"))
            .await?;
        tx.commit().await?;
        Ok(ctx.written(StatusCode::CREATED, &saved, &headers))
    }
    .await;
    finish(note, result)
}

async fn update(ctx: Ctx, Path(id): Path<String>, headers: HeaderMap, body: Body) -> Response {
    let note = note(Action::Update, KIND, Some(&id), "update").patient(&id);
    let result = async {
        ctx.require(Area::Patients)?;
        let if_match = if_match(&headers)?;
        let value = read_json(&headers, body).await?;
        check_resource(&value, KIND, Some(&id))?;
        let mut patient = validated(&ctx, &value).await?;
        let name = format!("{KIND}/{id}");
        let current = match ctx.state.db.get::<Patient>(ctx.org(), &id).await {
            Err(StoreError::NotFound) => Err(FhirError::MethodNotAllowed(format!(
                "{name} does not exist; register patients with POST (no update-as-create)."
            ))),
            other => other.map_err(about(KIND, &id)),
        }?;
        // The MRN and the merge link are the server's.
        patient.mrn = current.value.mrn.clone();
        patient.replaced_by = current.value.replaced_by.clone();
        let expected = if_match.unwrap_or(current.version);
        let mut tx = ctx.state.db.begin(ctx.org()).await?;
        let saved = match tx
            .update(&id, &patient, Some(expected), &ctx.principal.actor_name)
            .await
        {
            // Without If-Match, only a concurrent writer can cause this.
            Err(StoreError::VersionConflict { current }) if if_match.is_none() => {
                Err(FhirError::Conflict(Issue::new(
                    "conflict",
                    format!("{name} changed to version {current} meanwhile; try again."),
                )))
            }
            other => other.map_err(about(KIND, &id)),
        }?;
        tx.audit(write_entry(&ctx, Action::Update, &id, "update"))
            .await?;
        tx.commit().await?;
        Ok(ctx.written(StatusCode::OK, &saved, &headers))
    }
    .await;
    finish(note, result)
}

// ---------------------------------------------------------------------------
// Search

/// The words of a name search, folded as names are indexed.
fn name_terms(value: &str) -> Result<Vec<String>, String> {
    let terms: Vec<String> = value
        .split(|c: char| c.is_whitespace() || c == ',')
        .map(fold_term)
        .filter(|t| !t.is_empty())
        .collect();
    if terms.is_empty() {
        return Err("must contain letters".into());
    }
    Ok(terms)
}

/// National significant digits of a phone number as the index keeps them.
fn phone_filter(value: &str) -> Filter {
    let digits: String = value.chars().filter(char::is_ascii_digit).collect();
    let national = match digits.len() {
        11 if digits.starts_with('1') => &digits[1..],
        _ => digits.as_str(),
    };
    match national.len() {
        7 => Filter::HasKey(format!("p7:{national}")),
        n if n >= 8 => Filter::HasKey(format!("p:{national}")),
        _ => nothing(),
    }
}

fn email_filter(value: &str) -> Filter {
    Filter::HasKey(format!("e:{}", value.trim().to_lowercase()))
}

fn mrn_filter(value: &str) -> Filter {
    let value = value.trim();
    if !value.is_empty() && value.len() < MRN_WIDTH && value.bytes().all(|b| b.is_ascii_digit()) {
        Filter::HasKey(format!("m:{value:0>MRN_WIDTH$}"))
    } else {
        Filter::HasKey(format!("m:{value}"))
    }
}

/// `[from, until)` birth dates of a FHIR date search with prefix.
fn birth_dates(value: &str) -> Result<(Option<Date>, Option<Date>), String> {
    let (prefix, text) = match value.get(..2) {
        Some(p) if p.bytes().all(|b| b.is_ascii_alphabetic()) => (p, &value[2..]),
        _ => ("eq", value),
    };
    let bad = || format!("'{text}' is not a date (1962, 1962-03 or 1962-03-14)");
    let parts: Vec<&str> = text.split('-').collect();
    let num = |s: &str| s.parse::<i16>().ok();
    let (start, end) = match parts[..] {
        [y] if y.len() == 4 => {
            let start = Date::new(num(y).ok_or_else(bad)?, 1, 1).map_err(|_| bad())?;
            (start, start.checked_add(1.year()))
        }
        [y, m] if y.len() == 4 && m.len() == 2 => {
            let month = i8::try_from(num(m).ok_or_else(bad)?).map_err(|_| bad())?;
            let start = Date::new(num(y).ok_or_else(bad)?, month, 1).map_err(|_| bad())?;
            (start, start.checked_add(1.month()))
        }
        [_, _, _] if text.len() == 10 => {
            let start: Date = text.parse().map_err(|_| bad())?;
            (start, start.checked_add(1.day()))
        }
        _ => return Err(bad()),
    };
    let end = end.map_err(|_| bad())?;
    match prefix {
        "eq" => Ok((Some(start), Some(end))),
        "ge" => Ok((Some(start), None)),
        "gt" => Ok((Some(end), None)),
        "le" => Ok((None, Some(end))),
        "lt" => Ok((None, Some(start))),
        other => Err(format!(
            "prefix '{other}' is not supported (use eq, ge, gt, le, lt)"
        )),
    }
}

const SEARCH: &[SearchParam<Vec<Filter>>] = &[
    SearchParam {
        name: "name",
        kind: "string",
        doc: "Every word begins some part of the name (given, middle, family, preferred), \
              ignoring case, accents, hyphens and apostrophes: name=smi jo.",
        apply: |f, v| {
            f.extend(
                name_terms(v)?
                    .into_iter()
                    .map(|t| Filter::HasKeyPrefix(format!("n:{t}"))),
            );
            Ok(())
        },
    },
    SearchParam {
        name: "family",
        kind: "string",
        doc: "Every word begins a part of the family name (from its third letter on the \
              index tells family from given names), ignoring case and accents.",
        apply: |f, v| {
            for t in name_terms(v)? {
                if t.len() >= 3 {
                    f.push(Filter::HasKeyPrefix(format!("fg:{}|", &t[..3])));
                }
                f.push(Filter::HasKeyPrefix(format!("n:{t}")));
            }
            Ok(())
        },
    },
    SearchParam {
        name: "given",
        kind: "string",
        doc: "Every word begins a part of the name, ignoring case and accents (given, \
              middle and preferred names; the index does not tell them from family names).",
        apply: |f, v| {
            f.extend(
                name_terms(v)?
                    .into_iter()
                    .map(|t| Filter::HasKeyPrefix(format!("n:{t}"))),
            );
            Ok(())
        },
    },
    SearchParam {
        name: "birthdate",
        kind: "date",
        doc: "Date of birth: 1962-03-14, or a whole month or year; prefixes eq, ge, gt, le, lt.",
        apply: |f, v| {
            let (from, until) = birth_dates(v)?;
            f.extend(from.map(|d| Filter::AtLeast("birth_date", Val::from(d.to_string()))));
            f.extend(until.map(|d| Filter::Below("birth_date", Val::from(d.to_string()))));
            Ok(())
        },
    },
    SearchParam {
        name: "identifier",
        kind: "token",
        doc: "http://carefront.example/fhir/sid/mrn|00000042 (or a bare MRN, leading zeros \
              optional), or system|value of an external identifier.",
        apply: |f, v| {
            f.push(match v.split_once('|') {
                None => mrn_filter(v),
                Some((MRN_SYSTEM, mrn)) => mrn_filter(mrn),
                Some(("", _)) => nothing(),
                Some((system, value)) => Filter::HasKey(format!("i:{system}|{value}")),
            });
            Ok(())
        },
    },
    SearchParam {
        name: "phone",
        kind: "token",
        doc: "Any phone, in any format: +12125550123, (212) 555-0123, 2125550123, or the last \
              seven digits.",
        apply: |f, v| {
            f.push(phone_filter(token(v, "phone").unwrap_or_default()));
            Ok(())
        },
    },
    SearchParam {
        name: "email",
        kind: "token",
        doc: "The email address, ignoring case.",
        apply: |f, v| {
            f.push(email_filter(token(v, "email").unwrap_or_default()));
            Ok(())
        },
    },
    SearchParam {
        name: "telecom",
        kind: "token",
        doc: "phone|number, email|address, or a bare value (an email when it has '@').",
        apply: |f, v| {
            f.push(match v.split_once('|') {
                Some(("phone", n)) => phone_filter(n),
                Some(("email", e)) => email_filter(e),
                Some(_) => nothing(),
                None if v.contains('@') => email_filter(v),
                None => phone_filter(v),
            });
            Ok(())
        },
    },
    SearchParam {
        name: "gender",
        kind: "token",
        doc: "Administrative gender: male | female | other | unknown.",
        apply: |f, v| {
            f.push(
                match token(v, GENDER_SYSTEM).and_then(AdministrativeGender::from_code) {
                    Some(g) => Filter::Eq("sex", g.code().into()),
                    None => nothing(),
                },
            );
            Ok(())
        },
    },
];

impl FhirResource for Patient {
    const READ: Area = Area::Patients;
    const WRITE: Area = Area::Patients;
    /// Patients are registered by this module's own create; never deleted.
    const CREATE_DELETE: bool = false;
    const ELEMENTS: &'static [&'static str] = ELEMENTS;
    const SEARCH: &'static [SearchParam<Vec<Filter>>] = SEARCH;
    const DOC: &'static str = "A registered patient; roles front_desk, lead, clinician and \
        billing. Mapping: identifier = the MRN (system http://carefront.example/fhir/sid/mrn, \
        type v2-0203#MR; assigned by the server, a submitted MRN identifier is ignored) plus \
        external identifiers (system|value); name[0] use=official (family, given = [given, \
        middle...], suffix), name[1] use=usual (the preferred name, given); telecom phones with \
        use mobile|home|work and extension \
        http://carefront.example/fhir/StructureDefinition/sms-consent (valueBoolean), one email; \
        gender; birthDate (full date, required); addresses with use home|work|temp|billing|old \
        (absent: home), type postal|physical|both and period (dates), at most one home address \
        and one home mailing address in use at a time, read back with the home address first; \
        communication[0].language \
        (urn:ietf:bcp:47 code, preferred=true); extensions \
        http://hl7.org/fhir/StructureDefinition/patient-interpreterRequired (valueBoolean), \
        http://carefront.example/fhir/StructureDefinition/preferred-contact-method (valueCode \
        phone|sms|email|mail|portal), http://carefront.example/fhir/StructureDefinition/patient-alert \
        (valueString, one per alert shown on every screen), \
        http://hl7.org/fhir/StructureDefinition/individual-genderIdentity and \
        http://hl7.org/fhir/StructureDefinition/individual-pronouns (sub-extension value, \
        valueCodeableConcept.text); contact[] with relationship (v3-RoleCode code or text, plus \
        v2-0131#C for an emergency contact), name.text, one phone and extension \
        http://carefront.example/fhir/StructureDefinition/contact-guarantor (valueBoolean); \
        active; link type replaced-by to the surviving record after a merge (set by merge, \
        ignored on input). Validated with the organization's registration rules: each problem \
        is an issue whose expression names the element, and nothing is saved. Conditional \
        create: If-None-Exist with any of the search parameters (0 matches creates, 1 returns \
        it with 200, more answer 412). No delete: duplicates are merged. The contacts are also \
        served as RelatedPerson. Every read, search result and write is audited with the \
        patient's id.";

    fn to_fhir(&self) -> Value {
        patient_json(self)
    }

    fn from_fhir(resource: &Obj, issues: &mut Issues) -> Self {
        parse_registration(resource, issues).patient
    }

    fn validated(self) -> Result<Self, ValidationErrors> {
        self.validate(&RegistrationRules::default(), today())
    }

    fn expression(field: &str) -> String {
        Paths::default().expression(field)
    }

    fn patient_of(&self, id: &str) -> Option<String> {
        Some(id.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn birth_date_searches_cover_their_precision() {
        let d = |s: &str| Some(s.parse::<Date>().unwrap());
        assert_eq!(
            birth_dates("1962-03-14").unwrap(),
            (d("1962-03-14"), d("1962-03-15"))
        );
        assert_eq!(
            birth_dates("1962").unwrap(),
            (d("1962-01-01"), d("1963-01-01"))
        );
        assert_eq!(birth_dates("ge1962-03").unwrap(), (d("1962-03-01"), None));
        assert_eq!(birth_dates("lt1962-03").unwrap(), (None, d("1962-03-01")));
        assert!(birth_dates("1962-3-14").is_err());
        assert!(birth_dates("ne1962").is_err());
        assert!(birth_dates("x").is_err());
    }

    #[test]
    fn validation_fields_name_the_elements_sent() {
        let paths = Paths {
            phones: vec!["Patient.telecom[1]".into(), "Patient.telecom[2]".into()],
            email: Some("Patient.telecom[0]".into()),
            contact_phones: vec![Some("Patient.contact[0].telecom[0]".into())],
            ..Paths::default()
        };
        assert_eq!(
            paths.expression("phones[1].number"),
            "Patient.telecom[2].value"
        );
        assert_eq!(paths.expression("email"), "Patient.telecom[0].value");
        assert_eq!(
            paths.expression("contacts[0].phone"),
            "Patient.contact[0].telecom[0].value"
        );
        assert_eq!(
            paths.expression("contacts[0].name"),
            "Patient.contact[0].name"
        );
        assert_eq!(paths.expression("birth_date"), "Patient.birthDate");
        assert_eq!(
            paths.expression("addresses[0].postal_code"),
            "Patient.address[0].postalCode"
        );
        let paths = Paths {
            addresses: vec!["Patient.address[0]".into(), "Patient.address[2]".into()],
            ..Paths::default()
        };
        assert_eq!(
            paths.expression("addresses[1].line1"),
            "Patient.address[2].line[0]"
        );
        assert_eq!(
            paths.expression("addresses[1].use"),
            "Patient.address[2].use"
        );
        assert_eq!(
            paths.expression("addresses[0].end"),
            "Patient.address[0].period.end"
        );
        assert_eq!(paths.expression("addresses"), "Patient.address");
        assert_eq!(paths.expression("given"), "Patient.name[0].given[0]");
        assert_eq!(
            paths.expression("language"),
            "Patient.communication[0].language"
        );
    }

    #[test]
    fn a_resource_is_read_validated_and_names_its_mrns() {
        let rules = RegistrationRules {
            require_phone: false,
            require_address: false,
            ..RegistrationRules::default()
        };
        let today = jiff::civil::date(2025, 1, 1);
        let mut resource = json!({
            "resourceType": "Patient",
            "id": "ignored",
            "identifier": [
                { "system": MRN_SYSTEM, "value": "00000042" },
                { "system": "urn:legacy", "value": "A1" },
            ],
            "name": [{ "family": "Reyes", "given": ["Ana"] }],
            "gender": "female",
            "birthDate": "1962-03-14",
        });
        let read = patient_from_fhir(&resource, &rules, today).unwrap();
        assert_eq!(read.mrns, vec!["00000042".to_string()]);
        assert_eq!(read.patient.mrn, "", "never taken from the resource");
        assert_eq!(read.patient.identifiers.len(), 1);
        assert_eq!(read.patient.family, "Reyes");

        resource["birthDate"] = json!("2999-01-01");
        let issues = patient_from_fhir(&resource, &rules, today).unwrap_err();
        assert_eq!(issues[0].expression.as_deref(), Some("Patient.birthDate"));

        resource["resourceType"] = json!("Observation");
        let issues = patient_from_fhir(&resource, &rules, today).unwrap_err();
        assert_eq!(issues[0].expression.as_deref(), Some("resourceType"));
    }

    #[test]
    fn phones_in_any_format_reach_the_same_key() {
        for typed in [
            "+12125550123",
            " 12125550123",
            "(212) 555-0123",
            "2125550123",
        ] {
            assert_eq!(
                phone_filter(typed),
                Filter::HasKey("p:2125550123".into()),
                "{typed}"
            );
        }
        assert_eq!(
            phone_filter("555-0123"),
            Filter::HasKey("p7:5550123".into())
        );
        assert_eq!(phone_filter("x"), nothing());
        assert_eq!(mrn_filter("42"), Filter::HasKey("m:00000042".into()));
    }
}
