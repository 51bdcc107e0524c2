//! Staff roles and what each may reach. Every page and API route names the
//! [`Area`] it belongs to; [`Role::may`] is the one rule deciding access.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    FrontDesk,
    Lead,
    Clinician,
    Billing,
    Admin,
    Auditor,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::FrontDesk,
        Role::Lead,
        Role::Clinician,
        Role::Billing,
        Role::Admin,
        Role::Auditor,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Role::FrontDesk => "front_desk",
            Role::Lead => "lead",
            Role::Clinician => "clinician",
            Role::Billing => "billing",
            Role::Admin => "admin",
            Role::Auditor => "auditor",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Role::FrontDesk => "Front desk",
            Role::Lead => "Lead",
            Role::Clinician => "Clinician",
            Role::Billing => "Billing",
            Role::Admin => "Administrator",
            Role::Auditor => "Auditor",
        }
    }

    /// Least privilege: each role reaches only the areas its work needs.
    /// Auditors see the audit log and nothing clinical; administrators manage
    /// the clinic's set-up but are not given the audit log they could hide in.
    pub fn may(self, area: Area) -> bool {
        match area {
            Area::Home => true,
            Area::Today | Area::Schedule | Area::Patients | Area::Worklists => matches!(
                self,
                Role::FrontDesk | Role::Lead | Role::Clinician | Role::Billing
            ),
            Area::DirectoryRead => !matches!(self, Role::Auditor),
            Area::CoverageCards => matches!(self, Role::FrontDesk | Role::Lead | Role::Billing),
            Area::Reports => matches!(self, Role::Lead | Role::Billing | Role::Admin),
            Area::Admin => matches!(self, Role::Admin),
            Area::Audit => matches!(self, Role::Auditor),
            Area::PatientMerge => matches!(self, Role::Lead),
            Area::Scheduling => matches!(self, Role::FrontDesk | Role::Lead),
            Area::VisitFlow => matches!(self, Role::FrontDesk | Role::Lead | Role::Clinician),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown role '{0}' (expected one of front_desk, lead, clinician, billing, admin, auditor)"
)]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.code() == s)
            .ok_or_else(|| UnknownRole(s.to_string()))
    }
}

/// A part of the product a route belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Area {
    /// The signed-in shell itself.
    Home,
    Today,
    Schedule,
    Patients,
    Worklists,
    Reports,
    /// Organization, locations, practitioners: read by most staff.
    DirectoryRead,
    /// Images of insurance cards (front and back): the desk that scans them,
    /// its lead, and billing, who check them against claims. Clinicians see
    /// the coverage details but not the card images (minimum necessary).
    CoverageCards,
    /// Changing users and the clinic's set-up.
    Admin,
    /// The audit log and its exports.
    Audit,
    /// Merging duplicate patient records and undoing merges: leads only.
    PatientMerge,
    /// Changing the appointment book: booking, rescheduling, cancelling,
    /// arrivals and no-shows, the waitlist. The front desk and its leads;
    /// everyone with [`Area::Schedule`] may look at it. Booking past the
    /// schedule's rules is further limited to leads by
    /// `scheduling::may_override`.
    Scheduling,
    /// Moving patients through today's visits and turning rooms over
    /// (arrival, check-in, rooming, the provider, checkout, cleaning): the
    /// desk, its leads and the clinical staff who room and see patients;
    /// everyone with [`Area::Today`] may look at the boards.
    VisitFlow,
}

impl Area {
    /// The navigation entries of the staff shell, in order.
    pub const NAVIGATION: [(Area, &'static str, &'static str); 7] = [
        (Area::Today, "Today", "/today"),
        (Area::Schedule, "Schedule", "/schedule"),
        (Area::Patients, "Patients", "/patients"),
        (Area::Worklists, "Worklists", "/worklists"),
        (Area::Reports, "Reports", "/reports"),
        (Area::Admin, "Admin", "/admin"),
        (Area::Audit, "Audit log", "/audit"),
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_codes_round_trip() {
        for role in Role::ALL {
            assert_eq!(role.code().parse::<Role>().unwrap(), role);
        }
        assert!("superuser".parse::<Role>().is_err());
    }

    #[test]
    fn auditor_sees_audit_and_no_patient_areas() {
        assert!(Role::Auditor.may(Area::Audit));
        assert!(!Role::Auditor.may(Area::Patients));
        assert!(!Role::Auditor.may(Area::Schedule));
        assert!(!Role::Admin.may(Area::Audit));
    }

    #[test]
    fn card_images_are_for_the_desk_and_billing() {
        let allowed: Vec<Role> = Role::ALL
            .into_iter()
            .filter(|r| r.may(Area::CoverageCards))
            .collect();
        assert_eq!(allowed, [Role::FrontDesk, Role::Lead, Role::Billing]);
    }

    #[test]
    fn front_desk_cannot_administer() {
        assert!(Role::FrontDesk.may(Area::Patients));
        assert!(!Role::FrontDesk.may(Area::Admin));
        assert!(!Role::FrontDesk.may(Area::Reports));
    }

    #[test]
    fn the_desk_and_leads_change_the_schedule() {
        let allowed: Vec<Role> = Role::ALL
            .into_iter()
            .filter(|r| r.may(Area::Scheduling))
            .collect();
        assert_eq!(allowed, [Role::FrontDesk, Role::Lead]);
        for role in allowed {
            assert!(role.may(Area::Schedule), "{role} sees what it changes");
        }
    }

    #[test]
    fn the_desk_and_clinical_staff_move_visits() {
        let allowed: Vec<Role> = Role::ALL
            .into_iter()
            .filter(|r| r.may(Area::VisitFlow))
            .collect();
        assert_eq!(allowed, [Role::FrontDesk, Role::Lead, Role::Clinician]);
        for role in allowed {
            assert!(role.may(Area::Today), "{role} sees what it changes");
        }
    }

    #[test]
    fn only_leads_merge_patients() {
        for role in Role::ALL {
            assert_eq!(role.may(Area::PatientMerge), role == Role::Lead, "{role}");
        }
    }
}
