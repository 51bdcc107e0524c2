//! Organization: the tenant's own organization, read and updated only.

use crate::fhir::json::{
    ADDRESS_ELEMENTS, Issues, Obj, address_expression, address_from_fhir, address_to_fhir,
    telecom_expression, telecom_from_fhir, telecom_to_fhir,
};
use crate::fhir::resource::FhirResource;
use crate::fhir::search::SearchParam;
use carefront_domain::directory::Organization;
use carefront_domain::{Area, ValidationErrors};
use carefront_store::Filter;
use serde_json::{Value, json};

impl FhirResource for Organization {
    const READ: Area = Area::DirectoryRead;
    const WRITE: Area = Area::Admin;
    const CREATE_DELETE: bool = false;
    const ELEMENTS: &'static [&'static str] = &["active", "name", "telecom", "address"];
    const SEARCH: &'static [SearchParam<Vec<Filter>>] = &[SearchParam {
        name: "name",
        kind: "string",
        doc: "Starts with, ignoring case.",
        apply: |f, v| {
            f.push(Filter::Prefix(&["name"], v.to_string()));
            Ok(())
        },
    }];
    const DOC: &'static str = "The clinic's own organization (the tenant): one resource, \
        which can be read and updated but not created or deleted. Keeps name, active, one \
        phone and one address.";

    fn to_fhir(&self) -> Value {
        json!({
            "active": self.active,
            "name": self.name,
            "telecom": telecom_to_fhir(&self.phone, &None),
            "address": [self.address.as_ref().map(address_to_fhir)],
        })
    }

    fn from_fhir(r: &Obj, issues: &mut Issues) -> Self {
        Organization {
            name: r.string("name", issues).unwrap_or_default(),
            phone: telecom_from_fhir(r, issues, &["phone"]).phone,
            address: r
                .single("address", ADDRESS_ELEMENTS, issues)
                .map(|a| address_from_fhir(&a, issues)),
            active: r.boolean("active", issues).unwrap_or(true),
        }
    }

    fn validated(self) -> Result<Self, ValidationErrors> {
        self.validate()
    }

    fn expression(field: &str) -> String {
        match field.strip_prefix("address.") {
            Some(f) => address_expression("Organization.address[0]", f),
            None if field == "phone" => telecom_expression("Organization", "phone"),
            None => format!("Organization.{field}"),
        }
    }
}
