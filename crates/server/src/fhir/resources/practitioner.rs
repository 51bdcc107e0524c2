//! Practitioner, identified by NPI.

use crate::fhir::json::{Issues, Obj, telecom_expression, telecom_from_fhir, telecom_to_fhir};
use crate::fhir::outcome::{FhirError, Issue};
use crate::fhir::resource::FhirResource;
use crate::fhir::search::{SearchParam, nothing, token};
use carefront_domain::directory::{AdministrativeGender, Practitioner, PractitionerRole};
use carefront_domain::{Area, ValidationErrors};
use carefront_store::{Db, Filter, Page};
use serde_json::{Value, json};

pub const NPI_SYSTEM: &str = "http://hl7.org/fhir/sid/us-npi";

/// Names hold several words in FHIR arrays and one string in the domain.
fn words(s: &Option<String>) -> Vec<&str> {
    s.as_deref()
        .map(|s| s.split_whitespace().collect())
        .unwrap_or_default()
}

fn joined(parts: Vec<String>) -> Option<String> {
    (!parts.is_empty()).then(|| parts.join(" "))
}

impl FhirResource for Practitioner {
    const READ: Area = Area::DirectoryRead;
    const WRITE: Area = Area::Admin;
    const ELEMENTS: &'static [&'static str] =
        &["identifier", "active", "name", "telecom", "gender"];
    const SEARCH: &'static [SearchParam<Vec<Filter>>] = &[
        SearchParam {
            name: "name",
            kind: "string",
            doc: "Given or family name starts with, ignoring case.",
            apply: |f, v| {
                f.push(Filter::Prefix(&["given", "family"], v.to_string()));
                Ok(())
            },
        },
        SearchParam {
            name: "family",
            kind: "string",
            doc: "Family name starts with, ignoring case.",
            apply: |f, v| {
                f.push(Filter::Prefix(&["family"], v.to_string()));
                Ok(())
            },
        },
        SearchParam {
            name: "given",
            kind: "string",
            doc: "Given name starts with, ignoring case.",
            apply: |f, v| {
                f.push(Filter::Prefix(&["given"], v.to_string()));
                Ok(())
            },
        },
        SearchParam {
            name: "identifier",
            kind: "token",
            doc: "NPI: http://hl7.org/fhir/sid/us-npi|1234567893 or the bare number.",
            apply: |f, v| {
                f.push(match token(v, NPI_SYSTEM) {
                    Some(npi) => Filter::Eq("npi", npi.into()),
                    None => nothing(),
                });
                Ok(())
            },
        },
    ];
    const DOC: &'static str = "A clinician. Keeps one name (family, given, prefix, suffix), \
        the NPI as identifier (system http://hl7.org/fhir/sid/us-npi, check digit verified, \
        unique: 409 on a duplicate), one phone, one email, gender and active. A practitioner \
        with practitioner roles cannot be deleted (409).";

    fn to_fhir(&self) -> Value {
        json!({
            "identifier": [self.npi.as_ref().map(|n| json!({ "system": NPI_SYSTEM, "value": n }))],
            "active": self.active,
            "name": [{
                "family": self.family,
                "given": words(&Some(self.given.clone())),
                "prefix": words(&self.prefix),
                "suffix": words(&self.suffix),
            }],
            "telecom": telecom_to_fhir(&self.phone, &self.email),
            "gender": self.gender.map(AdministrativeGender::code),
        })
    }

    fn from_fhir(r: &Obj, issues: &mut Issues) -> Self {
        let npi = r
            .single("identifier", &["system", "value"], issues)
            .and_then(|id| {
                if id.string("system", issues).as_deref() != Some(NPI_SYSTEM) {
                    let path = id.child("system");
                    issues.push(Issue::at(
                        "not-supported",
                        &path,
                        format!("{path} must be {NPI_SYSTEM}"),
                    ));
                }
                id.string("value", issues)
            });
        let name = r.single("name", &["family", "given", "prefix", "suffix"], issues);
        let part = |key: &str, issues: &mut Issues| {
            name.as_ref().and_then(|n| joined(n.strings(key, issues)))
        };
        let given = part("given", issues).unwrap_or_default();
        let prefix = part("prefix", issues);
        let suffix = part("suffix", issues);
        let family = name
            .as_ref()
            .and_then(|n| n.string("family", issues))
            .unwrap_or_default();
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
        let telecom = telecom_from_fhir(r, issues, &["phone", "email"]);
        Practitioner {
            npi,
            prefix,
            given,
            family,
            suffix,
            gender,
            phone: telecom.phone,
            email: telecom.email,
            active: r.boolean("active", issues).unwrap_or(true),
        }
    }

    fn validated(self) -> Result<Self, ValidationErrors> {
        self.validate()
    }

    fn expression(field: &str) -> String {
        match field {
            "npi" => format!("Practitioner.identifier.where(system='{NPI_SYSTEM}').value"),
            "given" | "family" | "prefix" | "suffix" => format!("Practitioner.name[0].{field}"),
            "phone" | "email" => telecom_expression("Practitioner", field),
            _ => format!("Practitioner.{field}"),
        }
    }

    async fn check_delete(db: &Db, org_id: &str, id: &str) -> Result<(), FhirError> {
        let roles = [Filter::Eq("practitioner_id", id.into())];
        let none = Page {
            offset: 0,
            count: 0,
        };
        let (_, n) = db.search::<PractitionerRole>(org_id, &roles, none).await?;
        if n == 0 {
            return Ok(());
        }
        Err(FhirError::Conflict(Issue::new(
            "conflict",
            format!("Practitioner/{id} still holds {n} PractitionerRole; delete those first."),
        )))
    }
}
