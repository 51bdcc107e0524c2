//! Claim keys: how the database makes double booking impossible.
//!
//! An appointment (or live hold) claims every **granule** its `[start, end)`
//! touches, for its provider and for each room or device it uses. A granule
//! is [`GRANULE_MINUTES`] (5) minutes, aligned to the UTC epoch; every IANA
//! zone in use today is offset from UTC by a multiple of 15 minutes, so local
//! 5-minute marks are granule boundaries too and a visit on the grid claims
//! exactly its own time. The store keeps one row per (org_id, resource,
//! granule, seat) under a UNIQUE index: the provider's claims take a free
//! seat in `0..=max_seat` (the overbooking limit, or more after a lead's
//! override), a room's claims only seat 0. Two bookings that overlap in time
//! share at least one granule, so the index refuses the second whenever the
//! seats run out, whatever the servers raced to do.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

/// Size of a claim granule, and of the scheduling grid (durations and
/// template times are multiples of it).
pub const GRANULE_MINUTES: i64 = 5;
pub const GRANULE: SignedDuration = SignedDuration::from_mins(GRANULE_MINUTES);
const GRANULE_SECS: i64 = GRANULE_MINUTES * 60;

/// One (resource, granule) pair to claim.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ClaimKey {
    /// `practitioner:<id>` or `resource:<id>` (see [`practitioner_key`],
    /// [`resource_key`]): one namespace, so one index covers both.
    pub resource: String,
    pub granule_start: Timestamp,
}

impl ClaimKey {
    /// The granule start as stored: microseconds since the epoch (UTC).
    pub fn granule_us(&self) -> i64 {
        self.granule_start.as_microsecond()
    }
}

/// A claim to insert: the key and the highest seat it may take.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub key: ClaimKey,
    pub max_seat: u8,
}

pub fn practitioner_key(practitioner_id: &str) -> String {
    format!("practitioner:{practitioner_id}")
}

pub fn resource_key(resource_id: &str) -> String {
    format!("resource:{resource_id}")
}

/// Start of the granule containing `t`.
pub fn granule_floor(t: Timestamp) -> Timestamp {
    let secs = t.as_second().div_euclid(GRANULE_SECS) * GRANULE_SECS;
    Timestamp::from_second(secs).unwrap_or(t)
}

/// Starts of every granule `[start, end)` touches, oldest first. Empty when
/// `end <= start`.
pub fn granules(start: Timestamp, end: Timestamp) -> impl Iterator<Item = Timestamp> {
    let first = granule_floor(start);
    std::iter::successors(Some(first), |g| g.checked_add(GRANULE).ok())
        .take_while(move |g| *g < end && start < end)
}

/// The claim keys an appointment `[start, end)` needs: its provider's and
/// each resource's, for every granule it touches.
pub fn claim_keys(
    practitioner_id: &str,
    resource_ids: &[String],
    start: Timestamp,
    end: Timestamp,
) -> Vec<ClaimKey> {
    claims(practitioner_id, 0, resource_ids, start, end)
        .into_iter()
        .map(|c| c.key)
        .collect()
}

/// [`claim_keys`] with the seats each may take: `0..=practitioner_max_seat`
/// for the provider, seat 0 only for rooms and devices (one patient at a
/// time).
pub fn claims(
    practitioner_id: &str,
    practitioner_max_seat: u8,
    resource_ids: &[String],
    start: Timestamp,
    end: Timestamp,
) -> Vec<Claim> {
    let holders = std::iter::once((practitioner_key(practitioner_id), practitioner_max_seat))
        .chain(resource_ids.iter().map(|r| (resource_key(r), 0)));
    let mut out = Vec::new();
    for (resource, max_seat) in holders {
        for g in granules(start, end) {
            out.push(Claim {
                key: ClaimKey {
                    resource: resource.clone(),
                    granule_start: g,
                },
                max_seat,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn aligned_visit_claims_exactly_its_granules() {
        let start = ts("2026-03-09T14:00:00Z");
        let keys = claim_keys(
            "dr",
            &["room1".into()],
            start,
            start + SignedDuration::from_mins(30),
        );
        assert_eq!(keys.len(), 12);
        assert_eq!(keys[0].resource, "practitioner:dr");
        assert_eq!(keys[0].granule_start, start);
        assert_eq!(keys[5].granule_start, ts("2026-03-09T14:25:00Z"));
        assert_eq!(keys[6].resource, "resource:room1");
        assert_eq!(keys[0].granule_us(), start.as_microsecond());
    }

    #[test]
    fn unaligned_times_claim_every_touched_granule() {
        let keys = claim_keys(
            "dr",
            &[],
            ts("2026-03-09T14:03:00Z"),
            ts("2026-03-09T14:11:00Z"),
        );
        let starts: Vec<_> = keys.iter().map(|k| k.granule_start).collect();
        assert_eq!(
            starts,
            vec![
                ts("2026-03-09T14:00:00Z"),
                ts("2026-03-09T14:05:00Z"),
                ts("2026-03-09T14:10:00Z")
            ]
        );
        assert!(
            claim_keys(
                "dr",
                &[],
                ts("2026-03-09T14:00:00Z"),
                ts("2026-03-09T14:00:00Z")
            )
            .is_empty()
        );
    }

    #[test]
    fn local_marks_are_granule_marks_in_odd_zones() {
        // Kathmandu is UTC+05:45: its 09:00 is still on a 5-minute UTC mark.
        let tz = jiff::tz::TimeZone::get("Asia/Kathmandu").unwrap();
        let t = tz
            .to_timestamp(jiff::civil::date(2026, 3, 9).at(9, 0, 0, 0))
            .unwrap();
        assert_eq!(granule_floor(t), t);
    }

    #[test]
    fn seats_for_provider_and_rooms() {
        let start = ts("2026-03-09T14:00:00Z");
        let claims = claims("dr", 2, &["room1".into()], start, start + GRANULE);
        assert_eq!(claims[0].max_seat, 2);
        assert_eq!(claims[1].max_seat, 0);
    }

    proptest! {
        #[test]
        fn claims_of_two_overlapping_appointments_intersect(
            a in 0i64..2000, alen in 1i64..240, b in 0i64..2000, blen in 1i64..240,
        ) {
            let base = ts("2026-03-08T00:00:00Z");
            let at = |m: i64| base + SignedDuration::from_mins(m);
            let (a0, a1, b0, b1) = (at(a), at(a + alen), at(b), at(b + blen));
            let ka: std::collections::HashSet<_> = claim_keys("dr", &[], a0, a1).into_iter().collect();
            let kb: std::collections::HashSet<_> = claim_keys("dr", &[], b0, b1).into_iter().collect();
            if a0 < b1 && b0 < a1 {
                prop_assert!(!ka.is_disjoint(&kb));
            }
            // On the 5-minute grid, disjoint visits never collide.
            let grid = |m: i64| m - m.rem_euclid(GRANULE_MINUTES);
            let (g0, g1) = (at(grid(a)), at(grid(a) + grid(alen).max(GRANULE_MINUTES)));
            let (h0, h1) = (at(grid(b)), at(grid(b) + grid(blen).max(GRANULE_MINUTES)));
            let ga: std::collections::HashSet<_> = claim_keys("dr", &[], g0, g1).into_iter().collect();
            let gb: std::collections::HashSet<_> = claim_keys("dr", &[], h0, h1).into_iter().collect();
            prop_assert_eq!(ga.is_disjoint(&gb), !(g0 < h1 && h0 < g1));
        }
    }
}
