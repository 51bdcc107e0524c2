//! `$find`'s answers, kept between requests. At benchmark scale (200
//! providers, 500,000 appointments) one answer reads some 20,000 bookings
//! and computes slots of every type, and front desks ask the same question
//! over and over.
//!
//! An answer stays right while nothing it was computed from changes. Every
//! committed write appends its audit event in its own transaction, so each
//! use first checks the audit chain since the answer's mark
//! (`Db::schedule_unchanged_since`: the events since the last check, by
//! primary key), which also keeps servers sharing a database right. A later
//! `now` only takes slots away (minimum notice: [`Answer::on_offer`]),
//! except at a live hold's expiry or a location's midnight (the booking
//! horizon moves): the answer lapses then.

use crate::fhir::outcome::FhirError;
use crate::fhir::resources::scheduling::{Scope, SlotStatus, free_slots_in};
use carefront_domain::scheduling::{AppointmentType, FreeSlots, Slot, SlotInput};
use carefront_store::{Db, SlotFilter};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use std::sync::{Arc, Mutex, PoisonError};

/// Answers kept (each some megabytes at benchmark scale).
const KEPT: usize = 16;

/// A `$find` question, as far as the answer depends on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub org_id: String,
    pub start: Timestamp,
    pub end: Timestamp,
    pub practitioners: Vec<String>,
    pub locations: Vec<String>,
    pub specialties: Vec<String>,
    pub visit_types: Vec<String>,
}

/// The free slots needing no overbooking of the active types asked about,
/// as of when it was computed, with what writes them out (the input
/// without its bookings and holds).
#[derive(Debug)]
pub struct Answer {
    pub kinds: Vec<AppointmentType>,
    /// `None` when no type was asked about.
    found: Option<(SlotInput, FreeSlots)>,
}

impl Answer {
    /// How many proposals are still on offer at `now` for a search from
    /// `start` of the types `wanted` accepts, and those proposals by start
    /// with their types: a kept answer may be older than `now`, and minimum
    /// notice (as slot search applies it) takes its first slots away.
    pub fn on_offer(
        &self,
        start: Timestamp,
        now: Timestamp,
        wanted: impl Fn(&AppointmentType) -> bool,
    ) -> (usize, impl Iterator<Item = (Slot, &AppointmentType)>) {
        let earliest: Vec<Option<Timestamp>> = self
            .kinds
            .iter()
            .map(|k| {
                if !wanted(k) {
                    return None;
                }
                now.saturating_add(k.min_notice())
                    .ok()
                    .map(|t| t.max(start))
            })
            .collect();
        let (total, proposals) = match &self.found {
            Some((input, free)) => {
                let (total, proposals) = free.starting_from(&earliest);
                let written = proposals.map(move |at| {
                    (
                        FreeSlots::slot(at, input, &self.kinds),
                        &self.kinds[at.kind as usize],
                    )
                });
                (total, Some(written))
            }
            None => (0, None),
        };
        (total, proposals.into_iter().flatten())
    }
}

struct Entry {
    question: Question,
    answer: Arc<Answer>,
    /// The audit chain's point the answer is known to be right at.
    mark: (i64, String),
    lapses_at: Timestamp,
}

/// One server's kept answers (most recently used last).
#[derive(Default)]
pub struct KeptAnswers {
    entries: Mutex<Vec<Entry>>,
    /// One turn per question being computed: requests arriving together for
    /// an answer not kept yet wait for it instead of all computing it, and
    /// other questions do not wait.
    computing: Mutex<Vec<(Question, Arc<tokio::sync::Mutex<()>>)>>,
}

/// A request's place in the queue for one question. Dropped (also when the
/// request is abandoned mid-computation), the last one out takes the
/// question off the list, so abandoned requests leave nothing behind.
struct Turn<'a> {
    kept: &'a KeptAnswers,
    question: Question,
    lock: Arc<tokio::sync::Mutex<()>>,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        // The list's reference and this turn's: nobody else is waiting.
        self.kept
            .computing()
            .retain(|(q, t)| !(q == &self.question && Arc::strong_count(t) <= 2));
    }
}

impl KeptAnswers {
    fn entries(&self) -> std::sync::MutexGuard<'_, Vec<Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The answer to `question` at `now`, kept or computed (and then kept).
    pub async fn answer(
        &self,
        db: &Db,
        question: Question,
        now: Timestamp,
    ) -> Result<Arc<Answer>, FhirError> {
        if let Some(answer) = self.still_right(db, &question, now).await? {
            return Ok(answer);
        }
        let turn = self.turn(&question);
        let _mine = turn.lock.lock().await;
        self.compute_once(db, question.clone(), now).await
    }

    /// The turn to compute `question` (shared by requests asking it now).
    fn turn(&self, question: &Question) -> Turn<'_> {
        let mut computing = self.computing();
        let lock = match computing.iter().find(|(q, _)| q == question) {
            Some((_, t)) => t.clone(),
            None => {
                let t = Arc::new(tokio::sync::Mutex::new(()));
                computing.push((question.clone(), t.clone()));
                t
            }
        };
        Turn {
            kept: self,
            question: question.clone(),
            lock,
        }
    }

    fn computing(&self) -> std::sync::MutexGuard<'_, Vec<(Question, Arc<tokio::sync::Mutex<()>>)>> {
        self.computing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Computes and keeps the answer, unless a request that held the turn
    /// before this one just did.
    async fn compute_once(
        &self,
        db: &Db,
        question: Question,
        now: Timestamp,
    ) -> Result<Arc<Answer>, FhirError> {
        if let Some(answer) = self.still_right(db, &question, now).await? {
            return Ok(answer);
        }
        // Marked before reading: a write committed meanwhile is after the mark.
        let mark = db.schedule_mark(&question.org_id).await?;
        let (answer, lapses_at) = compute(db, &question, now).await?;
        let answer = Arc::new(answer);
        if let Some(mark) = mark {
            let mut kept = self.entries();
            kept.retain(|e| e.question != question);
            if kept.len() >= KEPT {
                kept.remove(0);
            }
            kept.push(Entry {
                question,
                answer: answer.clone(),
                mark,
                lapses_at,
            });
        }
        Ok(answer)
    }

    /// The kept answer to `question`, when nothing it depends on has
    /// changed. One computed after `now` (while this request waited)
    /// answers as of then, which is still during this request.
    async fn still_right(
        &self,
        db: &Db,
        question: &Question,
        now: Timestamp,
    ) -> Result<Option<Arc<Answer>>, FhirError> {
        let found = self
            .entries()
            .iter()
            .find(|e| e.question == *question && now < e.lapses_at)
            .map(|e| (e.answer.clone(), e.mark.clone()));
        let Some((answer, mark)) = found else {
            return Ok(None);
        };
        let newer = db.schedule_unchanged_since(&question.org_id, &mark).await?;
        let mut kept = self.entries();
        let index = kept.iter().position(|e| Arc::ptr_eq(&e.answer, &answer));
        match (newer, index) {
            (Some(newer), Some(i)) => {
                // Later checks start from here.
                let mut entry = kept.remove(i);
                if newer.0 > entry.mark.0 {
                    entry.mark = newer;
                }
                kept.push(entry);
                Ok(Some(answer))
            }
            (Some(_), None) => Ok(Some(answer)),
            (None, index) => {
                if let Some(i) = index {
                    kept.remove(i);
                }
                Ok(None)
            }
        }
    }
}

async fn compute(db: &Db, q: &Question, now: Timestamp) -> Result<(Answer, Timestamp), FhirError> {
    let kinds: Vec<AppointmentType> = db
        .live_appointment_types(&q.org_id)
        .await?
        .into_iter()
        .filter(|t| t.active && (q.visit_types.is_empty() || q.visit_types.contains(&t.id)))
        .collect();
    let scope = Scope {
        filter: SlotFilter {
            practitioner_ids: q.practitioners.clone(),
            location_ids: q.locations.clone(),
        },
        from: q.start.max(now),
        until: q.end,
        now,
        specialty: None,
        statuses: vec![SlotStatus::Free],
    };
    match free_slots_in(db, &q.org_id, &kinds, &scope, &q.specialties).await? {
        Some((mut input, mut free)) => {
            free.retain(|s| !s.is_overbook());
            let lapses_at = lapses(&input, now);
            // Writing slots out needs only ids: bookings stay out of memory.
            input.bookings = Vec::new();
            input.holds = Vec::new();
            Ok((
                Answer {
                    kinds,
                    found: Some((input, free)),
                },
                lapses_at,
            ))
        }
        None => Ok((Answer { kinds, found: None }, Timestamp::MAX)),
    }
}

/// When slots computed from `input` at `now` may come back: the first live
/// hold's expiry, or the next midnight at any location.
fn lapses(input: &SlotInput, now: Timestamp) -> Timestamp {
    let expiries = input
        .holds
        .iter()
        .filter(|h| h.is_live(now))
        .map(|h| h.expires_at);
    let midnights = input.locations.iter().map(|l| {
        TimeZone::get(&l.timezone)
            .ok()
            .and_then(|tz| now.to_zoned(tz).tomorrow().ok()?.start_of_day().ok())
            .map_or(now, |z| z.timestamp())
    });
    expiries.chain(midnights).min().unwrap_or(Timestamp::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use carefront_domain::audit::{Action, AuditEntry, Outcome};
    use carefront_domain::patient::Patient;
    use carefront_domain::scheduling::BookingRequest;
    use carefront_store::{Actor, BookAppointment, Page, PlaceHold, testing::fresh_database};
    use jiff::SignedDuration;

    /// Every proposal of the answer, in order, with its type.
    fn proposals(a: &Answer) -> Vec<(Slot, AppointmentType)> {
        a.found
            .iter()
            .flat_map(|(input, free)| {
                free.in_order().map(|at| {
                    (
                        FreeSlots::slot(at, input, &a.kinds),
                        a.kinds[at.kind as usize].clone(),
                    )
                })
            })
            .collect()
    }

    fn starts(a: &Answer) -> Vec<(String, Timestamp, String)> {
        proposals(a)
            .into_iter()
            .map(|(s, _)| (s.practitioner_id, s.start, s.appointment_type_id))
            .collect()
    }

    #[tokio::test]
    async fn answers_are_kept_until_a_write_or_a_hold_lapses() {
        let (db, _) = fresh_database().await.unwrap();
        let (org, _) = crate::demo::seed_clinic(&db, 1).await.unwrap();
        crate::demo::add_patients(&db, &org, 1, 50, |_| {})
            .await
            .unwrap();
        let now = Timestamp::now();
        crate::demo::seed_schedule(&db, &org, 1, now, |_, _| {})
            .await
            .unwrap();
        let start = now + SignedDuration::from_hours(48);
        let question = Question {
            org_id: org.clone(),
            start,
            end: start + SignedDuration::from_hours(72),
            practitioners: vec![],
            locations: vec![],
            specialties: vec!["207Q00000X".into()],
            visit_types: vec![],
        };
        let kept = KeptAnswers::default();
        {
            // A request abandoned mid-computation (the client went away)
            // leaves no turn behind.
            let mut abandoned = std::pin::pin!(kept.answer(&db, question.clone(), now));
            let polled =
                std::future::poll_fn(|cx| std::task::Poll::Ready(abandoned.as_mut().poll(cx)))
                    .await;
            assert!(polled.is_pending());
            assert_eq!(kept.computing().len(), 1);
        }
        assert!(kept.computing().is_empty());
        let first = kept.answer(&db, question.clone(), now).await.unwrap();
        assert!(!proposals(&first).is_empty());

        // Reads change nothing: the answer is kept.
        db.audit(
            &org,
            AuditEntry::new("desk", Action::Search, Outcome::Success),
        )
        .await
        .unwrap();
        let again = kept.answer(&db, question.clone(), now).await.unwrap();
        assert!(Arc::ptr_eq(&first, &again));

        // A booking does: the answer is computed again, without its slot.
        let (patients, _) = db
            .search::<Patient>(
                &org,
                &[],
                Page {
                    offset: 0,
                    count: 1,
                },
            )
            .await
            .unwrap();
        // The first slot of a type this patient may book (new or established).
        let patient = patients[0].id.clone();
        let established = db.patient_established(&org, &patient, now).await.unwrap();
        let bookable = |a: &Answer| {
            proposals(a)
                .iter()
                .position(|(_, kind)| kind.accepts_patient(established))
                .unwrap()
        };
        let taken = &proposals(&first)[bookable(&first)].0;
        let request = BookingRequest {
            practitioner_id: taken.practitioner_id.clone(),
            location_id: taken.location_id.clone(),
            start: taken.start,
            resource_id: None,
            patient_established: None,
            ignore: vec![],
        };
        let actor = Actor::system("test");
        db.book(
            &org,
            &BookAppointment {
                appointment_type_id: taken.appointment_type_id.clone(),
                request: request.clone(),
                patient_id: patient.clone(),
                details: Default::default(),
                series_id: None,
                lead_override: None,
                idempotency_key: None,
            },
            &actor,
            now,
        )
        .await
        .unwrap();
        let booked = kept.answer(&db, question.clone(), now).await.unwrap();
        assert!(!Arc::ptr_eq(&first, &booked));
        assert!(!starts(&booked).contains(&starts(&first)[bookable(&first)]));
        let (fresh, _) = compute(&db, &question, now).await.unwrap();
        assert_eq!(starts(&booked), starts(&fresh));

        // A hold takes a slot until it expires, then the answer lapses.
        let held = &proposals(&booked)[bookable(&booked)].0;
        db.place_hold(
            &org,
            &PlaceHold {
                appointment_type_id: held.appointment_type_id.clone(),
                request: BookingRequest {
                    practitioner_id: held.practitioner_id.clone(),
                    location_id: held.location_id.clone(),
                    start: held.start,
                    ..request
                },
                patient_id: patient.clone(),
                ttl: Some(SignedDuration::from_secs(60)),
            },
            &actor,
            now,
        )
        .await
        .unwrap();
        let during = kept.answer(&db, question.clone(), now).await.unwrap();
        assert!(!starts(&during).contains(&starts(&booked)[bookable(&booked)]));
        let later = now + SignedDuration::from_secs(61);
        let after = kept.answer(&db, question.clone(), later).await.unwrap();
        assert!(!Arc::ptr_eq(&during, &after));
        assert_eq!(starts(&after), starts(&booked));
    }
}
