//! Location, with its IANA time zone in an extension.

use crate::fhir::json::{
    ADDRESS_ELEMENTS, Issues, Obj, address_expression, address_from_fhir, address_to_fhir,
    telecom_expression, telecom_from_fhir, telecom_to_fhir,
};
use crate::fhir::outcome::{FhirError, Issue};
use crate::fhir::resource::FhirResource;
use crate::fhir::search::SearchParam;
use carefront_domain::directory::{Location, PractitionerRole, Room};
use carefront_domain::{Area, ValidationErrors};
use carefront_store::{Db, Filter, Page, Record};
use serde_json::{Value, json};

/// The location's IANA time zone (`valueCode`, e.g. `America/Chicago`),
/// required on every Location: every local time there is read in it.
pub const TIMEZONE_EXTENSION: &str =
    "http://carefront.example/fhir/StructureDefinition/location-timezone";

impl FhirResource for Location {
    const READ: Area = Area::DirectoryRead;
    const WRITE: Area = Area::Admin;
    const ELEMENTS: &'static [&'static str] =
        &["extension", "status", "name", "telecom", "address"];
    const SEARCH: &'static [SearchParam<Vec<Filter>>] = &[
        SearchParam {
            name: "name",
            kind: "string",
            doc: "Starts with, ignoring case.",
            apply: |f, v| {
                f.push(Filter::Prefix(&["name"], v.to_string()));
                Ok(())
            },
        },
        SearchParam {
            name: "address-state",
            kind: "string",
            doc: "Two-letter US state code.",
            apply: |f, v| {
                f.push(Filter::Prefix(&["state"], v.to_string()));
                Ok(())
            },
        },
    ];
    const DOC: &'static str = "A clinic site. Its IANA time zone is required, in the extension \
        http://carefront.example/fhir/StructureDefinition/location-timezone (valueCode, e.g. \
        America/Chicago). Keeps name, status (active | inactive), one phone and a US address. \
        A location that practitioner roles or rooms still use cannot be deleted (409).";

    fn to_fhir(&self) -> Value {
        json!({
            "extension": [{ "url": TIMEZONE_EXTENSION, "valueCode": self.timezone }],
            "status": if self.active { "active" } else { "inactive" },
            "name": self.name,
            "telecom": telecom_to_fhir(&self.phone, &None),
            "address": address_to_fhir(&self.address),
        })
    }

    fn from_fhir(r: &Obj, issues: &mut Issues) -> Self {
        let mut timezone = String::new();
        for ext in r.objects("extension", &["url", "valueCode"], issues) {
            if ext.string("url", issues).as_deref() == Some(TIMEZONE_EXTENSION) {
                timezone = ext.string("valueCode", issues).unwrap_or_default();
            } else {
                let path = ext.child("url");
                issues.push(Issue::at(
                    "not-supported",
                    &path,
                    format!("{path}: the only extension supported is {TIMEZONE_EXTENSION}"),
                ));
            }
        }
        let active = match r.string("status", issues).as_deref() {
            None | Some("active") => true,
            Some("inactive") => false,
            Some(other) => {
                let path = r.child("status");
                issues.push(Issue::at(
                    "value",
                    &path,
                    format!("{path} '{other}' is not supported (active | inactive)"),
                ));
                true
            }
        };
        Location {
            name: r.string("name", issues).unwrap_or_default(),
            timezone,
            address: r
                .object("address", ADDRESS_ELEMENTS, issues)
                .map(|a| address_from_fhir(&a, issues))
                .unwrap_or_default(),
            phone: telecom_from_fhir(r, issues, &["phone"]).phone,
            active,
        }
    }

    fn validated(self) -> Result<Self, ValidationErrors> {
        self.validate()
    }

    fn expression(field: &str) -> String {
        match field.strip_prefix("address.") {
            Some(f) => address_expression("Location.address", f),
            None => match field {
                "timezone" => format!("Location.extension('{TIMEZONE_EXTENSION}')"),
                "phone" => telecom_expression("Location", "phone"),
                _ => format!("Location.{field}"),
            },
        }
    }

    async fn check_delete(db: &Db, org_id: &str, id: &str) -> Result<(), FhirError> {
        let users = [
            (
                PractitionerRole::KIND,
                in_use::<PractitionerRole>(db, org_id, id).await?,
            ),
            (Room::KIND, in_use::<Room>(db, org_id, id).await?),
        ];
        let used: Vec<String> = users
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(kind, n)| format!("{n} {kind}"))
            .collect();
        if used.is_empty() {
            return Ok(());
        }
        Err(FhirError::Conflict(Issue::new(
            "conflict",
            format!("Location/{id} is still used by {}.", used.join(" and ")),
        )))
    }
}

/// How many live records of `R` sit at location `id`.
async fn in_use<R: Record>(db: &Db, org_id: &str, id: &str) -> Result<i64, FhirError> {
    let at = [Filter::Eq("location_id", id.into())];
    let none = Page {
        offset: 0,
        count: 0,
    };
    Ok(db.search::<R>(org_id, &at, none).await?.1)
}
