//! The waitlist that fills cancellations. When a slot frees up, entries for
//! its appointment type are ranked: first by how well the slot fits what the
//! patient asked for, then by days waited plus days gained (how much earlier
//! the slot is than the appointment they already hold), one day of each
//! counting the same, so neither the longest-waiting nor the most urgent
//! patient always wins.

use super::model::Preferences;
use super::slots::Slot;
use crate::ValidationErrors;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitlistEntry {
    pub id: String,
    pub patient_id: String,
    pub appointment_type_id: String,
    pub preferences: Preferences,
    pub added_at: Timestamp,
    /// Start of the appointment the patient already has and would move
    /// from, if any. A slot that is not earlier is of no use to them.
    pub current_appointment_start: Option<Timestamp>,
}

impl WaitlistEntry {
    pub fn validate(mut self) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        self.patient_id =
            crate::validation::required_text(&mut errors, "patient_id", &self.patient_id, 64);
        self.appointment_type_id = crate::validation::required_text(
            &mut errors,
            "appointment_type_id",
            &self.appointment_type_id,
            64,
        );
        match self.preferences.validate() {
            Ok(p) => self.preferences = p,
            Err(e) => {
                for fe in e.errors() {
                    errors.add(format!("preferences.{}", fe.field), fe.message.clone());
                }
                return Err(errors);
            }
        }
        errors.into_result(self)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RankedEntry {
    pub entry_id: String,
    pub patient_id: String,
    /// Share of the patient's stated preferences the slot meets, in percent
    /// (100 when they stated none).
    pub fit_percent: u8,
    pub waited: SignedDuration,
    /// How much earlier than their current appointment; zero without one.
    pub gained: SignedDuration,
}

/// Entries that could take `slot`, best first. Entries for another type, or
/// whose current appointment is not later than the slot, are left out.
pub fn rank_waitlist(entries: &[WaitlistEntry], slot: &Slot, now: Timestamp) -> Vec<RankedEntry> {
    let mut ranked: Vec<(RankedEntry, Timestamp)> = entries
        .iter()
        .filter(|e| e.appointment_type_id == slot.appointment_type_id)
        .filter(|e| e.current_appointment_start.is_none_or(|c| slot.start < c))
        .map(|e| {
            let (met, stated) =
                e.preferences
                    .fit(&slot.practitioner_id, &slot.location_id, slot.local_start);
            // No stated preference: any slot fits.
            let fit_percent = (met * 100).checked_div(stated).map_or(100, |p| p as u8);
            let entry = RankedEntry {
                entry_id: e.id.clone(),
                patient_id: e.patient_id.clone(),
                fit_percent,
                waited: now.duration_since(e.added_at).max(SignedDuration::ZERO),
                gained: e
                    .current_appointment_start
                    .map_or(SignedDuration::ZERO, |c| c.duration_since(slot.start)),
            };
            (entry, e.added_at)
        })
        .collect();
    ranked.sort_by(|(a, a_added), (b, b_added)| {
        b.fit_percent
            .cmp(&a.fit_percent)
            .then_with(|| (b.waited + b.gained).cmp(&(a.waited + a.gained)))
            .then_with(|| a_added.cmp(b_added))
            .then_with(|| a.entry_id.cmp(&b.entry_id))
    });
    ranked.into_iter().map(|(e, _)| e).collect()
}
