//! The tamper-evident audit trail (HIPAA §164.312(b) audit controls).
//!
//! Each organization has one chain of events. An event's hash covers every
//! field and the hash of the event before it, so editing, inserting or
//! deleting any event breaks the chain at that point, and [`verify_chain`]
//! names the first event that no longer fits.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

/// The `prev_hash` of the first event of a chain.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Action {
    Read,
    Search,
    Create,
    Update,
    Delete,
    Export,
    SignIn,
    SignInFailed,
    SignOut,
    SessionExpired,
    AccountLocked,
    TokenUse,
    TokenCreate,
    TokenRevoke,
    UserCreate,
    UserChange,
    AuditVerify,
    /// A duplicate patient record merged into its survivor.
    Merge,
    /// A merge undone.
    Unmerge,
}

impl Action {
    pub const ALL: [Action; 19] = [
        Action::Read,
        Action::Search,
        Action::Create,
        Action::Update,
        Action::Delete,
        Action::Export,
        Action::SignIn,
        Action::SignInFailed,
        Action::SignOut,
        Action::SessionExpired,
        Action::AccountLocked,
        Action::TokenUse,
        Action::TokenCreate,
        Action::TokenRevoke,
        Action::UserCreate,
        Action::UserChange,
        Action::AuditVerify,
        Action::Merge,
        Action::Unmerge,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Search => "search",
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
            Action::Export => "export",
            Action::SignIn => "sign_in",
            Action::SignInFailed => "sign_in_failed",
            Action::SignOut => "sign_out",
            Action::SessionExpired => "session_expired",
            Action::AccountLocked => "account_locked",
            Action::TokenUse => "token_use",
            Action::TokenCreate => "token_create",
            Action::TokenRevoke => "token_revoke",
            Action::UserCreate => "user_create",
            Action::UserChange => "user_change",
            Action::AuditVerify => "audit_verify",
            Action::Merge => "merge",
            Action::Unmerge => "unmerge",
        }
    }

    /// The FHIR AuditEvent.action code (C, R, U, D, E).
    pub fn fhir_code(self) -> &'static str {
        match self {
            Action::Create | Action::UserCreate | Action::TokenCreate => "C",
            Action::Read | Action::Search | Action::Export | Action::AuditVerify => "R",
            Action::Update
            | Action::UserChange
            | Action::TokenRevoke
            | Action::Merge
            | Action::Unmerge => "U",
            Action::Delete => "D",
            _ => "E",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Action {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Action::ALL
            .into_iter()
            .find(|a| a.code() == s)
            .ok_or_else(|| format!("unknown audit action '{s}'"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Success,
    /// The request was refused: not permitted, or bad credentials.
    Denied,
    /// The request was well meant but failed (invalid input, conflict).
    Failed,
}

impl Outcome {
    pub fn code(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Denied => "denied",
            Outcome::Failed => "failed",
        }
    }

    /// FHIR AuditEvent.outcome: 0 success, 4 minor failure, 8 serious failure.
    pub fn fhir_code(self) -> &'static str {
        match self {
            Outcome::Success => "0",
            Outcome::Failed => "4",
            Outcome::Denied => "8",
        }
    }
}

impl FromStr for Outcome {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "success" => Ok(Outcome::Success),
            "denied" => Ok(Outcome::Denied),
            "failed" => Ok(Outcome::Failed),
            _ => Err(format!("unknown audit outcome '{s}'")),
        }
    }
}

/// What happened, before it is placed in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub actor_id: Option<String>,
    /// A username, a token name, or `system` for the CLI and background work.
    pub actor_name: String,
    pub role: Option<String>,
    pub action: Action,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub patient_id: Option<String>,
    pub client_addr: Option<String>,
    pub outcome: Outcome,
    pub detail: Option<String>,
}

impl AuditEntry {
    pub fn new(actor_name: impl Into<String>, action: Action, outcome: Outcome) -> Self {
        Self {
            actor_id: None,
            actor_name: actor_name.into(),
            role: None,
            action,
            resource_type: None,
            resource_id: None,
            patient_id: None,
            client_addr: None,
            outcome,
            detail: None,
        }
    }

    pub fn resource(mut self, resource_type: &str, id: Option<&str>) -> Self {
        self.resource_type = Some(resource_type.to_string());
        self.resource_id = id.map(str::to_string);
        self
    }

    pub fn patient(mut self, patient_id: &str) -> Self {
        self.patient_id = Some(patient_id.to_string());
        self
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}

/// An event as stored: the entry, its place in the chain and its hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    pub org_id: String,
    pub seq: i64,
    /// Microseconds since the Unix epoch, UTC.
    pub at_us: i64,
    pub entry: AuditEntry,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditEvent {
    /// Places `entry` after the event whose hash is `prev_hash`.
    pub fn chain(
        org_id: &str,
        seq: i64,
        at_us: i64,
        entry: AuditEntry,
        prev_hash: &str,
    ) -> AuditEvent {
        let hash = event_hash(org_id, seq, at_us, &entry, prev_hash);
        AuditEvent {
            org_id: org_id.to_string(),
            seq,
            at_us,
            entry,
            prev_hash: prev_hash.to_string(),
            hash,
        }
    }
}

/// SHA-256 over the length-prefixed fields, so that no two different events
/// can serialize to the same bytes.
pub fn event_hash(org_id: &str, seq: i64, at_us: i64, e: &AuditEntry, prev_hash: &str) -> String {
    fn field(h: &mut Sha256, value: Option<&str>) {
        match value {
            None => h.update(u64::MAX.to_be_bytes()),
            Some(v) => {
                h.update((v.len() as u64).to_be_bytes());
                h.update(v.as_bytes());
            }
        }
    }
    let mut h = Sha256::new();
    h.update(b"carefront-audit-v1");
    field(&mut h, Some(prev_hash));
    field(&mut h, Some(org_id));
    h.update(seq.to_be_bytes());
    h.update(at_us.to_be_bytes());
    field(&mut h, e.actor_id.as_deref());
    field(&mut h, Some(&e.actor_name));
    field(&mut h, e.role.as_deref());
    field(&mut h, Some(e.action.code()));
    field(&mut h, e.resource_type.as_deref());
    field(&mut h, e.resource_id.as_deref());
    field(&mut h, e.patient_id.as_deref());
    field(&mut h, e.client_addr.as_deref());
    field(&mut h, Some(e.outcome.code()));
    field(&mut h, e.detail.as_deref());
    hex::encode(h.finalize())
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit chain broken at event {seq}: {reason}")]
pub struct ChainBreak {
    pub seq: i64,
    pub reason: String,
}

/// Walks a chain incrementally, in `seq` order, so that millions of events
/// can be verified while streaming them from storage.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    expected_seq: i64,
    prev_hash: String,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self {
            expected_seq: 1,
            prev_hash: GENESIS_HASH.to_string(),
        }
    }
}

impl ChainVerifier {
    pub fn check(&mut self, event: &AuditEvent) -> Result<(), ChainBreak> {
        let brk = |reason: &str| ChainBreak {
            seq: event.seq,
            reason: reason.to_string(),
        };
        if event.seq != self.expected_seq {
            return Err(ChainBreak {
                seq: self.expected_seq,
                reason: format!("event missing (next stored event is {})", event.seq),
            });
        }
        if event.prev_hash != self.prev_hash {
            return Err(brk("does not follow the event before it"));
        }
        let recomputed = event_hash(
            &event.org_id,
            event.seq,
            event.at_us,
            &event.entry,
            &event.prev_hash,
        );
        if recomputed != event.hash {
            return Err(brk("contents were altered after it was written"));
        }
        self.expected_seq += 1;
        self.prev_hash = event.hash.clone();
        Ok(())
    }

    /// Checks that the chain ends where the recorded head says it does, which
    /// catches deletion of the newest events.
    pub fn finish(&self, head_seq: i64, head_hash: &str) -> Result<i64, ChainBreak> {
        let verified = self.expected_seq - 1;
        if verified != head_seq || self.prev_hash != head_hash {
            return Err(ChainBreak {
                seq: verified + 1,
                reason: format!(
                    "chain ends at event {verified} but the head records event {head_seq}"
                ),
            });
        }
        Ok(verified)
    }
}

/// Reads of lists a desk keeps open. Today's board shows every patient of
/// the day and reloads whenever anything on it changes; logging each row
/// again on every reload would bury the trail (and cost a write of the
/// whole day each time). A read of the same record, by the same actor,
/// with the same outcome and detail, within [`RepeatedReads::WINDOW_US`] of
/// the one last logged is already on record and is not logged again; the
/// first read in each window always is. Who saw a patient, and when to
/// within the window, stays answerable.
#[derive(Debug, Default)]
pub struct RepeatedReads {
    /// When each read was last logged, by [`repeat_key`].
    logged: HashMap<String, i64>,
}

impl RepeatedReads {
    /// Ten minutes, in microseconds.
    pub const WINDOW_US: i64 = 10 * 60 * 1_000_000;
    /// Remembered reads past which those out of the window are forgotten
    /// (and, if all are recent, everything: reads are then logged again).
    pub const CAPACITY: usize = 200_000;

    /// Whether `entry` of `org_id` at `now_us` must be logged: it was not
    /// logged within the window. Nothing is remembered until [`Self::logged`].
    pub fn must_log(&self, org_id: &str, entry: &AuditEntry, now_us: i64) -> bool {
        self.logged
            .get(&repeat_key(org_id, entry))
            .is_none_or(|&at| now_us - at >= Self::WINDOW_US || now_us < at)
    }

    /// Remembers `entries` as durably logged at `now_us`.
    pub fn logged<'a>(
        &mut self,
        org_id: &str,
        entries: impl IntoIterator<Item = &'a AuditEntry>,
        now_us: i64,
    ) {
        if self.logged.len() >= Self::CAPACITY {
            self.logged.retain(|_, at| now_us - *at < Self::WINDOW_US);
            if self.logged.len() >= Self::CAPACITY {
                self.logged.clear();
            }
        }
        for entry in entries {
            self.logged.insert(repeat_key(org_id, entry), now_us);
        }
    }
}

/// Everything but the time that makes two reads the same read.
fn repeat_key(org_id: &str, e: &AuditEntry) -> String {
    let parts = [
        Some(org_id),
        e.actor_id.as_deref(),
        Some(e.actor_name.as_str()),
        Some(e.action.code()),
        e.resource_type.as_deref(),
        e.resource_id.as_deref(),
        e.patient_id.as_deref(),
        Some(e.outcome.code()),
        e.detail.as_deref(),
    ];
    parts
        .iter()
        .map(|p| p.unwrap_or("\u{0}"))
        .collect::<Vec<_>>()
        .join("\u{1f}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn board_read(actor: &str, appointment: &str) -> AuditEntry {
        AuditEntry::new(actor, Action::Read, Outcome::Success)
            .resource("Appointment", Some(appointment))
            .patient("p1")
            .detail("shown on today's board")
    }

    #[test]
    fn a_read_repeated_within_the_window_is_logged_once() {
        let mut reads = RepeatedReads::default();
        let first = board_read("desk", "a1");
        assert!(reads.must_log("org", &first, 0));
        // Not remembered until the append committed.
        assert!(reads.must_log("org", &first, 0));
        reads.logged("org", [&first], 0);
        assert!(!reads.must_log("org", &first, RepeatedReads::WINDOW_US - 1));
        assert!(reads.must_log("org", &first, RepeatedReads::WINDOW_US));
        // Another actor, record, organization or outcome is another read.
        assert!(reads.must_log("org", &board_read("lead", "a1"), 1));
        assert!(reads.must_log("org", &board_read("desk", "a2"), 1));
        assert!(reads.must_log("other", &first, 1));
        let mut failed = first.clone();
        failed.outcome = Outcome::Failed;
        assert!(reads.must_log("org", &failed, 1));
        // A clock that went back does not hide a read.
        assert!(reads.must_log("org", &first, -1));
    }

    #[test]
    fn remembered_reads_stay_bounded() {
        let mut reads = RepeatedReads::default();
        let entries: Vec<AuditEntry> = (0..RepeatedReads::CAPACITY)
            .map(|i| board_read("desk", &i.to_string()))
            .collect();
        reads.logged("org", &entries, 0);
        let later = board_read("desk", "late");
        reads.logged("org", [&later], RepeatedReads::WINDOW_US);
        assert_eq!(reads.logged.len(), 1, "the expired reads were forgotten");
        assert!(!reads.must_log("org", &later, RepeatedReads::WINDOW_US + 1));
    }

    fn chain(n: i64) -> Vec<AuditEvent> {
        let mut prev = GENESIS_HASH.to_string();
        (1..=n)
            .map(|seq| {
                let entry = AuditEntry::new(format!("user{seq}"), Action::Read, Outcome::Success)
                    .resource("Patient", Some(&format!("p{seq}")))
                    .patient(&format!("p{seq}"));
                let ev = AuditEvent::chain("org", seq, 1_000 * seq, entry, &prev);
                prev = ev.hash.clone();
                ev
            })
            .collect()
    }

    fn verify(events: &[AuditEvent], head: (i64, &str)) -> Result<i64, ChainBreak> {
        let mut v = ChainVerifier::default();
        for e in events {
            v.check(e)?;
        }
        v.finish(head.0, head.1)
    }

    #[test]
    fn intact_chain_verifies() {
        let events = chain(5);
        let head = events.last().unwrap().hash.clone();
        assert_eq!(verify(&events, (5, &head)), Ok(5));
    }

    #[test]
    fn empty_chain_verifies_against_genesis() {
        assert_eq!(verify(&[], (0, GENESIS_HASH)), Ok(0));
    }

    #[test]
    fn deleted_middle_event_is_named() {
        let mut events = chain(5);
        let head = events.last().unwrap().hash.clone();
        events.remove(2);
        assert_eq!(verify(&events, (5, &head)).unwrap_err().seq, 3);
    }

    #[test]
    fn truncated_tail_is_detected() {
        let mut events = chain(5);
        let head = events.last().unwrap().hash.clone();
        events.pop();
        assert_eq!(verify(&events, (5, &head)).unwrap_err().seq, 5);
    }

    proptest! {
        #[test]
        fn any_single_field_edit_is_detected_at_that_event(
            n in 1i64..20, pick in 0usize..100, which in 0u8..6, text in "[a-z]{1,8}"
        ) {
            let mut events = chain(n);
            let head = events.last().unwrap().hash.clone();
            let i = pick % events.len();
            let e = &mut events[i];
            match which {
                0 => e.entry.actor_name.push_str(&text),
                1 => e.entry.patient_id = Some(format!("x{text}")),
                2 => e.at_us += 1,
                3 => e.entry.action = Action::Delete,
                4 => e.entry.outcome = Outcome::Denied,
                _ => e.entry.detail = Some(text.clone()),
            }
            let err = verify(&events, (n, &head)).unwrap_err();
            prop_assert_eq!(err.seq, e_seq(i));
        }
    }

    fn e_seq(index: usize) -> i64 {
        index as i64 + 1
    }
}
