//! Table mappings of the clinic directory.

use crate::records::{Record, Val};
use carefront_domain::directory::{
    Address, AdministrativeGender, Location, Organization, Practitioner, PractitionerRole, Room,
    RoomKind,
};
use sqlx::Row;
use sqlx::any::AnyRow;

pub(crate) fn flag(row: &AnyRow, col: &str) -> Result<bool, sqlx::Error> {
    Ok(row.try_get::<i64, _>(col)? == 1)
}

pub(crate) fn decode_err(col: &str, message: String) -> sqlx::Error {
    sqlx::Error::ColumnDecode {
        index: col.to_string(),
        source: message.into(),
    }
}

pub(crate) fn address_values(a: &Address) -> Vec<Val> {
    vec![
        a.line1.clone().into(),
        a.line2.clone().into(),
        a.city.clone().into(),
        a.state.clone().into(),
        a.postal_code.clone().into(),
        a.country.clone().into(),
    ]
}

pub(crate) fn address_from_row(row: &AnyRow) -> Result<Address, sqlx::Error> {
    Ok(Address {
        line1: row.try_get("line1")?,
        line2: row.try_get("line2")?,
        city: row.try_get("city")?,
        state: row.try_get("state")?,
        postal_code: row.try_get("postal_code")?,
        country: row.try_get("country")?,
    })
}

impl Record for Organization {
    const KIND: &'static str = "Organization";
    const TABLE: &'static str = "organizations";
    const COLUMNS: &'static [&'static str] = &["name", "phone", "address_json", "active"];
    const SORT: &'static str = "name";

    fn values(&self) -> Vec<Val> {
        let address = self
            .address
            .as_ref()
            .map(|a| serde_json::to_string(a).expect("an address always serializes"));
        vec![
            self.name.clone().into(),
            self.phone.clone().into(),
            address.into(),
            self.active.into(),
        ]
    }

    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        let address: Option<String> = row.try_get("address_json")?;
        Ok(Organization {
            name: row.try_get("name")?,
            phone: row.try_get("phone")?,
            address: address
                .map(|a| serde_json::from_str(&a))
                .transpose()
                .map_err(|e| decode_err("address_json", e.to_string()))?,
            active: flag(row, "active")?,
        })
    }
}

impl Record for Location {
    const KIND: &'static str = "Location";
    const TABLE: &'static str = "locations";
    const SCHEDULE_SETUP: bool = true;
    const COLUMNS: &'static [&'static str] = &[
        "name",
        "timezone",
        "line1",
        "line2",
        "city",
        "state",
        "postal_code",
        "country",
        "phone",
        "active",
    ];
    const SORT: &'static str = "name";

    fn values(&self) -> Vec<Val> {
        let mut v = vec![self.name.clone().into(), self.timezone.clone().into()];
        v.extend(address_values(&self.address));
        v.push(self.phone.clone().into());
        v.push(self.active.into());
        v
    }

    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Location {
            name: row.try_get("name")?,
            timezone: row.try_get("timezone")?,
            address: address_from_row(row)?,
            phone: row.try_get("phone")?,
            active: flag(row, "active")?,
        })
    }
}

impl Record for Room {
    const KIND: &'static str = "Room";
    const TABLE: &'static str = "rooms";
    const COLUMNS: &'static [&'static str] = &["location_id", "name", "kind"];
    const SORT: &'static str = "name";

    fn values(&self) -> Vec<Val> {
        let kind = serde_json::to_value(self.kind).expect("room kinds serialize");
        vec![
            self.location_id.clone().into(),
            self.name.clone().into(),
            kind.as_str().unwrap_or_default().into(),
        ]
    }

    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        let kind: String = row.try_get("kind")?;
        Ok(Room {
            location_id: row.try_get("location_id")?,
            name: row.try_get("name")?,
            kind: serde_json::from_value::<RoomKind>(serde_json::Value::String(kind))
                .map_err(|e| decode_err("kind", e.to_string()))?,
        })
    }
}

impl Record for Practitioner {
    const KIND: &'static str = "Practitioner";
    const TABLE: &'static str = "practitioners";
    const SCHEDULE_SETUP: bool = true;
    const COLUMNS: &'static [&'static str] = &[
        "npi", "prefix", "given", "family", "suffix", "gender", "phone", "email", "active",
    ];
    const SORT: &'static str = "family, given";

    fn values(&self) -> Vec<Val> {
        vec![
            self.npi.clone().into(),
            self.prefix.clone().into(),
            self.given.clone().into(),
            self.family.clone().into(),
            self.suffix.clone().into(),
            self.gender.map(|g| g.code().to_string()).into(),
            self.phone.clone().into(),
            self.email.clone().into(),
            self.active.into(),
        ]
    }

    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        let gender: Option<String> = row.try_get("gender")?;
        Ok(Practitioner {
            npi: row.try_get("npi")?,
            prefix: row.try_get("prefix")?,
            given: row.try_get("given")?,
            family: row.try_get("family")?,
            suffix: row.try_get("suffix")?,
            gender: gender.as_deref().and_then(AdministrativeGender::from_code),
            phone: row.try_get("phone")?,
            email: row.try_get("email")?,
            active: flag(row, "active")?,
        })
    }
}

impl Record for PractitionerRole {
    const KIND: &'static str = "PractitionerRole";
    const TABLE: &'static str = "practitioner_roles";
    const SCHEDULE_SETUP: bool = true;
    const COLUMNS: &'static [&'static str] =
        &["practitioner_id", "location_id", "specialty", "active"];
    const SORT: &'static str = "practitioner_id, location_id";

    fn values(&self) -> Vec<Val> {
        vec![
            self.practitioner_id.clone().into(),
            self.location_id.clone().into(),
            self.specialty.clone().into(),
            self.active.into(),
        ]
    }

    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(PractitionerRole {
            practitioner_id: row.try_get("practitioner_id")?,
            location_id: row.try_get("location_id")?,
            specialty: row.try_get("specialty")?,
            active: flag(row, "active")?,
        })
    }
}
