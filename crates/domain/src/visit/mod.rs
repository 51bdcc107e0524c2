//! Visit flow: today's board, check-in and rooms, as pure rules.
//!
//! A visit is the day of one appointment ([`Visit`], named by the
//! appointment's id). Its status machine ([`VisitStatus`]) runs from
//! scheduled through arrived, checked in, roomed, with provider and checkout
//! to completed, or ends as no-show, left without being seen or cancelled;
//! every step ([`VisitStep`]) is timestamped with who took it
//! ([`VisitEvent`]). Visit statuses map onto the appointment's FHIR statuses
//! ([`VisitStatus::appointment_status`]) so that the appointment changes in
//! step, and a visit follows its appointment when that is changed elsewhere
//! ([`Visit::follow`]).
//!
//! Check-in at the desk is a [`Checklist`]: identity by date of birth
//! ([`confirm_identity`]), demographics reviewed with their changes
//! highlighted ([`DemographicsReview`]), coverage, forms and consents and
//! the amount due; what is left outstanding must be acknowledged.
//!
//! Rooms ([`RoomState`]) are ready, occupied by one visit, waiting to be
//! cleaned or out of service; a step that enters or leaves a room moves the
//! room with it, and only a completed cleaning checklist of the room's kind
//! ([`RoomChecklist`]) makes it ready again. Supply counts below par levels
//! give a [`Shortfall`] to restock.
//!
//! A kiosk at the entrance lets patients check themselves in: they find
//! their appointment by name and date of birth ([`KioskLookup`]), see their
//! contact details masked, propose changes ([`ContactUpdate`], reviewed by
//! the desk) and sign the consent ([`Signature`]); the visit is then
//! arrived, by the kiosk.
//!
//! At checkout the patient gets post-visit instructions: the appointment
//! type's [`InstructionsTemplate`] (or the default) filled in with the
//! visit's [`InstructionFacts`], and the follow-up interval it suggests.

mod checkin;
mod flow;
mod instructions;
mod kiosk;
mod room;
mod status;

pub use checkin::{
    CheckInFacts, CheckInStep, Checklist, ChecklistItem, Demographic, DemographicsReview,
    StepState, confirm_identity,
};
pub use flow::{
    ChangedBy, DEFAULT_WAIT_THRESHOLD_MINUTES, MAX_WAIT_THRESHOLD_MINUTES, Visit, VisitError,
    VisitEvent, VisitStep, WaitThresholds,
};
pub use instructions::{
    FilledInstructions, FollowUp, InstructionFacts, InstructionsTemplate, IntervalUnit,
    MAX_BODY_CHARS, MAX_FOLLOW_UP_DAYS, MAX_TITLE_CHARS, Placeholder, PostVisitInstructions,
};
pub use kiosk::{
    CONSENT_TO_TREAT, Consent, ContactInput, ContactUpdate, DEFAULT_KIOSK_IDLE_SECONDS,
    KioskLookup, MAX_SIGNATURE_CHARS, Signature, mask_addresses, mask_email, mask_phone,
};
pub use room::{
    MAX_CHECKLIST_ITEMS, MAX_PAR_LEVEL, RoomChange, RoomChecklist, RoomError, RoomState,
    RoomStatus, Shortfall, SupplyCount, SupplyPar,
};
pub use status::{VisitStatus, VisitTransitionError};
