//! Coverage: a patient's insurance with a payer of the payer directory.
//! A subscriber other than the patient travels as a contained
//! RelatedPerson (`#subscriber`), since Carefront keeps their name and
//! birth date with the coverage.

use super::payer::payer_exists;
use crate::fhir::json::{Issues, Obj, REFERENCE_ELEMENTS, read_reference};
use crate::fhir::outcome::{FhirError, Issue};
use crate::fhir::resource::FhirResource;
use crate::fhir::search::{SearchParam, nothing, reference};
use carefront_domain::coverage::{Coverage, CoverageOrder, Subscriber, SubscriberRelationship};
use carefront_domain::patient::Patient;
use carefront_domain::{Area, ValidationErrors};
use carefront_store::{Db, Filter, StoreError};
use jiff::civil::Date;
use serde_json::{Value, json};

pub const SUBSCRIBER_RELATIONSHIP_SYSTEM: &str =
    "http://terminology.hl7.org/CodeSystem/subscriber-relationship";
pub const COVERAGE_CLASS_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/coverage-class";
/// The id of the contained RelatedPerson naming the subscriber.
const SUBSCRIBER_ID: &str = "subscriber";
const CONTAINED_ELEMENTS: &[&str] = &["resourceType", "id", "patient", "name", "birthDate"];

fn by_patient(f: &mut Vec<Filter>, v: &str) -> Result<(), String> {
    f.push(Filter::Eq("patient_id", reference(v, "Patient")?.into()));
    Ok(())
}

impl FhirResource for Coverage {
    const READ: Area = Area::Patients;
    const WRITE: Area = Area::Patients;
    const ELEMENTS: &'static [&'static str] = &[
        "contained",
        "status",
        "subscriber",
        "subscriberId",
        "beneficiary",
        "relationship",
        "period",
        "payor",
        "class",
        "order",
    ];
    const SEARCH: &'static [SearchParam<Vec<Filter>>] = &[
        SearchParam {
            name: "patient",
            kind: "reference",
            doc: "The beneficiary: Patient/id or the bare id.",
            apply: by_patient,
        },
        SearchParam {
            name: "beneficiary",
            kind: "reference",
            doc: "Patient/id or the bare id.",
            apply: by_patient,
        },
        SearchParam {
            name: "payor",
            kind: "reference",
            doc: "The payer: Organization/id or the bare id.",
            apply: |f, v| {
                f.push(Filter::Eq(
                    "payer_ref",
                    reference(v, "Organization")?.into(),
                ));
                Ok(())
            },
        },
        SearchParam {
            name: "status",
            kind: "token",
            doc: "active or cancelled (the only statuses kept).",
            apply: |f, v| {
                f.push(match v {
                    "active" => Filter::Eq("active", true.into()),
                    "cancelled" => Filter::Eq("active", false.into()),
                    // Other statuses are never stored.
                    _ => nothing(),
                });
                Ok(())
            },
        },
    ];
    const DOC: &'static str = "A patient's insurance. Keeps status (active or cancelled), \
        beneficiary (a Patient) and exactly one payor (a payer Organization of the payer \
        directory), both of which must exist (else 422); subscriberId (the member ID); \
        relationship (http://terminology.hl7.org/CodeSystem/subscriber-relationship, self when \
        absent); subscriber: the beneficiary itself, or a contained RelatedPerson '#subscriber' \
        with name and birthDate (required unless the relationship is self); class of type \
        group and plan (http://terminology.hl7.org/CodeSystem/coverage-class); order 1 \
        (primary, the default), 2 or 3, at most one active coverage per order and patient \
        (409); period start and end as dates.";

    fn patient_of(&self, _id: &str) -> Option<String> {
        Some(self.patient_id.clone())
    }

    fn to_fhir(&self) -> Value {
        let patient = format!("Patient/{}", self.patient_id);
        let contained = self.subscriber.as_ref().map(|s| {
            json!({
                "resourceType": "RelatedPerson",
                "id": SUBSCRIBER_ID,
                "patient": { "reference": patient },
                "name": [{ "family": s.family, "given": [s.given] }],
                "birthDate": s.birth_date.map(|d| d.to_string()),
            })
        });
        let subscriber = match contained {
            Some(_) => format!("#{SUBSCRIBER_ID}"),
            None => patient.clone(),
        };
        let class = |code: &str, value: &Option<String>| {
            value.as_ref().map(|v| {
                json!({
                    "type": { "coding": [{ "system": COVERAGE_CLASS_SYSTEM, "code": code }] },
                    "value": v,
                })
            })
        };
        json!({
            "contained": [contained],
            "status": if self.active { "active" } else { "cancelled" },
            "subscriber": { "reference": subscriber },
            "subscriberId": self.member_id,
            "beneficiary": { "reference": patient },
            "relationship": { "coding": [{
                "system": SUBSCRIBER_RELATIONSHIP_SYSTEM,
                "code": self.relationship.code(),
            }] },
            "period": {
                "start": self.start.map(|d| d.to_string()),
                "end": self.end.map(|d| d.to_string()),
            },
            "payor": [{ "reference": format!("Organization/{}", self.payer_ref) }],
            "class": [class("group", &self.group_number), class("plan", &self.plan_name)],
            "order": self.order.rank(),
        })
    }

    fn from_fhir(r: &Obj, issues: &mut Issues) -> Self {
        let active = match r.string("status", issues).as_deref() {
            Some("active") => true,
            Some("cancelled") => false,
            other => {
                let path = r.child("status");
                let message = match other {
                    Some(s) => format!("{path} must be active or cancelled (not '{s}')"),
                    None => format!("{path} is required: active or cancelled"),
                };
                issues.push(Issue::at("code-invalid", &path, message));
                true
            }
        };
        let patient_id = r
            .object("beneficiary", REFERENCE_ELEMENTS, issues)
            .and_then(|b| read_reference(&b, issues, "Patient"))
            .unwrap_or_default();
        let payer_ref = r
            .single("payor", REFERENCE_ELEMENTS, issues)
            .and_then(|p| read_reference(&p, issues, "Organization"))
            .unwrap_or_default();
        let relationship = read_relationship(r, issues);
        let subscriber = read_subscriber(r, &patient_id, issues);
        let relationship = match (relationship, &subscriber) {
            (Some(SubscriberRelationship::Itself), Some(_)) => {
                let path = r.child("subscriber");
                issues.push(Issue::at(
                    "business-rule",
                    &path,
                    format!("{path} must be the beneficiary when the relationship is self"),
                ));
                SubscriberRelationship::Itself
            }
            (Some(rel), _) => rel,
            (None, None) => SubscriberRelationship::Itself,
            (None, Some(_)) => {
                let path = r.child("relationship");
                issues.push(Issue::at(
                    "required",
                    &path,
                    format!("{path} is required when the subscriber is another person"),
                ));
                SubscriberRelationship::Other
            }
        };
        let (mut group_number, mut plan_name) = (None, None);
        for class in r.objects("class", &["type", "value", "name"], issues) {
            let code = class
                .object("type", &["coding", "text"], issues)
                .and_then(|t| {
                    let codings = t.objects("coding", &["system", "code", "display"], issues);
                    codings
                        .iter()
                        .find(|c| {
                            c.string("system", issues).as_deref() == Some(COVERAGE_CLASS_SYSTEM)
                        })
                        .and_then(|c| c.string("code", issues))
                });
            let value = class.string("value", issues);
            let name = class.string("name", issues);
            let slot = match code.as_deref() {
                Some("group") if name.is_none() => &mut group_number,
                // The plan's name is what the card shows; `value` carries it too.
                Some("plan") => &mut plan_name,
                Some("group") => {
                    let path = class.child("name");
                    issues.push(Issue::at(
                        "not-supported",
                        &path,
                        format!("{path} is not kept for a group; send the group number as value"),
                    ));
                    continue;
                }
                _ => {
                    let path = class.child("type");
                    issues.push(Issue::at(
                        "not-supported",
                        &path,
                        format!("{path} must be {COVERAGE_CLASS_SYSTEM} group or plan"),
                    ));
                    continue;
                }
            };
            if slot.is_some() {
                issues.push(Issue::at(
                    "not-supported",
                    &class.path,
                    "only one group and one plan are kept",
                ));
            }
            *slot = name.or(value);
        }
        let order = match r.integer("order", issues) {
            None => CoverageOrder::Primary,
            Some(n) => u8::try_from(n)
                .ok()
                .and_then(CoverageOrder::from_rank)
                .unwrap_or_else(|| {
                    let path = r.child("order");
                    issues.push(Issue::at(
                        "value",
                        &path,
                        format!("{path} must be 1 (primary), 2 (secondary) or 3 (tertiary)"),
                    ));
                    CoverageOrder::Primary
                }),
        };
        let (mut start, mut end) = (None, None);
        if let Some(period) = r.object("period", &["start", "end"], issues) {
            start = read_date(&period, "start", issues);
            end = read_date(&period, "end", issues);
        }
        Coverage {
            patient_id,
            payer_ref,
            plan_name,
            member_id: r.string("subscriberId", issues).unwrap_or_default(),
            group_number,
            relationship,
            subscriber,
            order,
            start,
            end,
            active,
        }
    }

    fn validated(self) -> Result<Self, ValidationErrors> {
        self.validate()
    }

    fn expression(field: &str) -> String {
        let class = |code: &str| format!("Coverage.class.where(type.coding.code='{code}').value");
        match field {
            "patient" => "Coverage.beneficiary".into(),
            "payer" => "Coverage.payor[0]".into(),
            "member_id" => "Coverage.subscriberId".into(),
            "plan_name" => class("plan"),
            "group_number" => class("group"),
            "subscriber.given" => "Coverage.contained[0].name[0].given[0]".into(),
            "subscriber.family" => "Coverage.contained[0].name[0].family".into(),
            "start" => "Coverage.period.start".into(),
            "end" => "Coverage.period.end".into(),
            other => format!("Coverage.{other}"),
        }
    }

    async fn check_references(&self, db: &Db, org_id: &str) -> Result<(), FhirError> {
        let mut issues = Vec::new();
        match db.get::<Patient>(org_id, &self.patient_id).await {
            Ok(_) => {}
            Err(StoreError::NotFound | StoreError::Gone) => issues.push(Issue::at(
                "business-rule",
                "Coverage.beneficiary",
                format!(
                    "Coverage.beneficiary refers to Patient/{}, which does not exist or was deleted",
                    self.patient_id
                ),
            )),
            Err(e) => return Err(e.into()),
        }
        if !payer_exists(db, org_id, &self.payer_ref).await? {
            issues.push(Issue::at(
                "business-rule",
                "Coverage.payor[0]",
                format!(
                    "Coverage.payor[0] refers to Organization/{}, which is not a payer of the \
                     payer directory",
                    self.payer_ref
                ),
            ));
        }
        if issues.is_empty() {
            Ok(())
        } else {
            Err(FhirError::BusinessRule(issues))
        }
    }
}

fn read_date(obj: &Obj, key: &str, issues: &mut Issues) -> Option<Date> {
    let text = obj.string(key, issues)?;
    match text.parse::<Date>() {
        Ok(d) if text.len() == 10 => Some(d),
        _ => {
            let path = obj.child(key);
            issues.push(Issue::at(
                "value",
                &path,
                format!("{path} must be a date such as 2026-01-01 (not '{text}')"),
            ));
            None
        }
    }
}

fn read_relationship(r: &Obj, issues: &mut Issues) -> Option<SubscriberRelationship> {
    let rel = r.object("relationship", &["coding", "text"], issues)?;
    let codings = rel.objects("coding", &["system", "code", "display"], issues);
    let code = codings
        .iter()
        .find(|c| c.string("system", issues).as_deref() == Some(SUBSCRIBER_RELATIONSHIP_SYSTEM))
        .and_then(|c| c.string("code", issues));
    let path = rel.child("coding");
    let found = code.as_deref().map(SubscriberRelationship::from_code);
    match found {
        Some(Some(r)) => Some(r),
        Some(None) => {
            issues.push(Issue::at(
                "code-invalid",
                &path,
                format!(
                    "{path} code '{}' is not in {SUBSCRIBER_RELATIONSHIP_SYSTEM}",
                    code.unwrap_or_default()
                ),
            ));
            None
        }
        None => {
            issues.push(Issue::at(
                "code-invalid",
                &path,
                format!("{path} needs a coding from {SUBSCRIBER_RELATIONSHIP_SYSTEM}"),
            ));
            None
        }
    }
}

/// The subscriber when it is another person than the beneficiary: the
/// contained RelatedPerson that `subscriber` points to.
fn read_subscriber(r: &Obj, patient_id: &str, issues: &mut Issues) -> Option<Subscriber> {
    let contained = r.objects("contained", CONTAINED_ELEMENTS, issues);
    if let Some(extra) = contained.get(1) {
        issues.push(Issue::at(
            "not-supported",
            &extra.path,
            "only the subscriber (one RelatedPerson) may be contained",
        ));
    }
    let reference = r
        .object("subscriber", REFERENCE_ELEMENTS, issues)
        .and_then(|s| Some((s.child("reference"), s.string("reference", issues)?)));
    let person = contained.first();
    let to_person = person
        .and_then(|p| p.string("id", issues))
        .map(|id| format!("#{id}"));
    let own = format!("Patient/{patient_id}");
    match reference {
        None if person.is_none() => return None,
        Some((_, ref v)) if *v == own => {
            if let Some(p) = person {
                issues.push(Issue::at(
                    "not-supported",
                    &p.path,
                    "a contained subscriber is only kept when Coverage.subscriber refers to it",
                ));
            }
            return None;
        }
        Some((_, ref v)) if Some(v) == to_person.as_ref() => {}
        other => {
            let path = other.map_or_else(|| r.child("subscriber"), |(path, _)| path);
            issues.push(Issue::at(
                "value",
                &path,
                format!(
                    "{path} must refer to the beneficiary or to the contained RelatedPerson \
                     (#{SUBSCRIBER_ID})"
                ),
            ));
            return None;
        }
    }
    let person = person?;
    if person.string("resourceType", issues).as_deref() != Some("RelatedPerson") {
        let path = person.child("resourceType");
        issues.push(Issue::at(
            "not-supported",
            &path,
            format!("{path} must be RelatedPerson"),
        ));
    }
    if let Some(p) = person.object("patient", REFERENCE_ELEMENTS, issues)
        && read_reference(&p, issues, "Patient").as_deref() != Some(patient_id)
    {
        let path = p.child("reference");
        issues.push(Issue::at(
            "value",
            &path,
            format!("{path} must be the beneficiary"),
        ));
    }
    let name = person.single("name", &["family", "given"], issues);
    let (given, family) = match &name {
        Some(n) => (
            n.strings("given", issues).join(" "),
            n.string("family", issues),
        ),
        None => (String::new(), None),
    };
    Some(Subscriber {
        given,
        family: family.unwrap_or_default(),
        birth_date: read_date(person, "birthDate", issues),
    })
}
