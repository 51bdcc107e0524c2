//! PractitionerRole: a practitioner's specialty (NUCC taxonomy) at a
//! location.

use crate::fhir::json::{Issues, Obj, REFERENCE_ELEMENTS, read_reference};
use crate::fhir::outcome::{FhirError, Issue};
use crate::fhir::resource::FhirResource;
use crate::fhir::search::{SearchParam, nothing, reference, token};
use carefront_domain::directory::{
    Location, NUCC_TAXONOMY_SYSTEM, Practitioner, PractitionerRole, Specialty,
};
use carefront_domain::{Area, ValidationErrors};
use carefront_store::{Db, Filter, Record, StoreError};
use serde_json::{Value, json};

impl FhirResource for PractitionerRole {
    const READ: Area = Area::DirectoryRead;
    const WRITE: Area = Area::Admin;
    const ELEMENTS: &'static [&'static str] = &["active", "practitioner", "location", "specialty"];
    const SEARCH: &'static [SearchParam<Vec<Filter>>] = &[
        SearchParam {
            name: "practitioner",
            kind: "reference",
            doc: "Practitioner/id or the bare id.",
            apply: |f, v| {
                f.push(Filter::Eq(
                    "practitioner_id",
                    reference(v, "Practitioner")?.into(),
                ));
                Ok(())
            },
        },
        SearchParam {
            name: "location",
            kind: "reference",
            doc: "Location/id or the bare id.",
            apply: |f, v| {
                f.push(Filter::Eq("location_id", reference(v, "Location")?.into()));
                Ok(())
            },
        },
        SearchParam {
            name: "specialty",
            kind: "token",
            doc: "NUCC taxonomy: http://nucc.org/provider-taxonomy|CODE or the bare code.",
            apply: |f, v| {
                f.push(match token(v, NUCC_TAXONOMY_SYSTEM) {
                    Some(code) => Filter::Eq("specialty", code.into()),
                    None => nothing(),
                });
                Ok(())
            },
        },
    ];
    const DOC: &'static str = "A practitioner's specialty at one location. Keeps practitioner \
        and exactly one location (references that must resolve to live resources, else 422), \
        one specialty coded with NUCC provider taxonomy (http://nucc.org/provider-taxonomy) \
        and active.";

    fn to_fhir(&self) -> Value {
        let specialty = Specialty::by_code(&self.specialty);
        json!({
            "active": self.active,
            "practitioner": { "reference": format!("Practitioner/{}", self.practitioner_id) },
            "location": [{ "reference": format!("Location/{}", self.location_id) }],
            "specialty": [{ "coding": [{
                "system": NUCC_TAXONOMY_SYSTEM,
                "code": self.specialty,
                "display": specialty.map(|s| s.display),
            }] }],
        })
    }

    fn from_fhir(r: &Obj, issues: &mut Issues) -> Self {
        let practitioner = r
            .object("practitioner", REFERENCE_ELEMENTS, issues)
            .and_then(|p| read_reference(&p, issues, Practitioner::KIND));
        let location = r
            .single("location", REFERENCE_ELEMENTS, issues)
            .and_then(|l| read_reference(&l, issues, Location::KIND));
        let specialty = r
            .single("specialty", &["coding", "text"], issues)
            .and_then(|s| {
                let codings = s.objects("coding", &["system", "code", "display"], issues);
                let nucc = codings
                    .iter()
                    .find(|c| c.string("system", issues).as_deref() == Some(NUCC_TAXONOMY_SYSTEM));
                if nucc.is_none() {
                    let path = s.child("coding");
                    issues.push(Issue::at(
                        "code-invalid",
                        &path,
                        format!("{path} needs a coding from {NUCC_TAXONOMY_SYSTEM}"),
                    ));
                }
                nucc.and_then(|c| c.string("code", issues))
            });
        PractitionerRole {
            practitioner_id: practitioner.unwrap_or_default(),
            location_id: location.unwrap_or_default(),
            specialty: specialty.unwrap_or_default(),
            active: r.boolean("active", issues).unwrap_or(true),
        }
    }

    fn validated(self) -> Result<Self, ValidationErrors> {
        self.validate()
    }

    fn expression(field: &str) -> String {
        match field {
            "specialty" => format!(
                "PractitionerRole.specialty[0].coding.where(system='{NUCC_TAXONOMY_SYSTEM}').code"
            ),
            "location" => "PractitionerRole.location[0]".into(),
            _ => format!("PractitionerRole.{field}"),
        }
    }

    async fn check_references(&self, db: &Db, org_id: &str) -> Result<(), FhirError> {
        let mut issues = Vec::new();
        let mut check =
            |found: Result<(), StoreError>, kind: &str, id: &str, path: &str| match found {
                Ok(()) => Ok(()),
                Err(StoreError::NotFound | StoreError::Gone) => {
                    issues.push(Issue::at(
                        "business-rule",
                        path,
                        format!(
                            "{path} refers to {kind}/{id}, which does not exist or was deleted"
                        ),
                    ));
                    Ok(())
                }
                Err(e) => Err(FhirError::from(e)),
            };
        let p = db
            .get::<Practitioner>(org_id, &self.practitioner_id)
            .await
            .map(drop);
        check(
            p,
            Practitioner::KIND,
            &self.practitioner_id,
            "PractitionerRole.practitioner",
        )?;
        let l = db
            .get::<Location>(org_id, &self.location_id)
            .await
            .map(drop);
        check(
            l,
            Location::KIND,
            &self.location_id,
            "PractitionerRole.location[0]",
        )?;
        if issues.is_empty() {
            Ok(())
        } else {
            Err(FhirError::BusinessRule(issues))
        }
    }
}
