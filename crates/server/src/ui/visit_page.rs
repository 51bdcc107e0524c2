//! What the pages of one visit (check-in, checkout) open with: the visit,
//! its appointment and patient, and the way back to its board.

use super::patient_summary::load as load_patient;
use super::schedule::{Directory, href, local};
use super::{error_page, shell};
use crate::audit::{AuditNote, note};
use crate::auth::Principal;
use crate::{AppState, ops};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use carefront_domain::Area;
use carefront_domain::audit::Action;
use carefront_domain::directory::Versioned;
use carefront_domain::patient::Patient;
use carefront_domain::visit::Visit;
use carefront_store::{AppointmentQuery, AppointmentRecord, Page};
use jiff::civil::Date;
use maud::Markup;

pub struct OpenVisit {
    pub appointment: Versioned<AppointmentRecord>,
    pub visit: Visit,
    pub patient: Versioned<Patient>,
    pub dir: Directory,
}

impl OpenVisit {
    /// The visit of appointment `id`, or the page answering that it is not
    /// there (or the patient cannot be shown).
    pub async fn load(state: &AppState, p: &Principal, id: &str) -> Result<Self, Response> {
        let org_id = p.org_id.as_str();
        let one = Page {
            offset: 0,
            count: 1,
        };
        let found = state
            .db
            .visits(
                org_id,
                &AppointmentQuery::default(),
                Some(id),
                &[],
                None,
                one,
            )
            .await
            .map_err(ops::internal_error)?;
        let Some((appointment, visit, _)) = found.0.into_iter().next() else {
            return Err(error_page(
                StatusCode::NOT_FOUND,
                "Visit not found",
                "There is no visit on today's boards at this address. Go back to today's board.",
            ));
        };
        let patient =
            load_patient(state, org_id, &appointment.value.appointment.patient_id).await?;
        let dir = Directory::load(state, org_id)
            .await
            .map_err(ops::internal_error)?;
        Ok(OpenVisit {
            appointment,
            visit,
            patient,
            dir,
        })
    }

    pub fn location_id(&self) -> &str {
        &self.appointment.value.appointment.location_id
    }

    /// The visit's local day at its location.
    pub fn day(&self) -> Date {
        let a = &self.appointment.value.appointment;
        local(&self.dir.tz(&a.location_id), a.start).date()
    }

    /// A page of the visit: `content` in the shell under Today, showing the
    /// patient audited with `detail`.
    pub fn respond(
        &self,
        state: &AppState,
        p: &Principal,
        status: StatusCode,
        title: &str,
        content: Markup,
        detail: String,
    ) -> Response {
        let mut response = (
            status,
            shell(
                p,
                state.config.idle_timeout_secs,
                Area::Today,
                title,
                content,
            ),
        )
            .into_response();
        note(
            &mut response,
            AuditNote::new(Action::Read, "Patient", Some(&self.patient.id))
                .patient(&self.patient.id)
                .detail(detail),
        );
        response
    }

    /// The visit's board, with `extra` query pairs.
    pub fn board(&self, extra: &[(&str, &str)]) -> String {
        let day = self.day().to_string();
        let mut pairs = vec![("location", self.location_id()), ("date", day.as_str())];
        pairs.extend_from_slice(extra);
        href("/today", &pairs)
    }
}
