//! Patient rows: the columns searched and shown in lists are columns; the
//! multi-valued parts are JSON (the addresses too: `addresses_json`, with
//! the home address also in the address columns); the search keys come
//! from the domain.

use crate::directory::{address_from_row, address_values, decode_err, flag};
use crate::records::{Record, Val};
use crate::{Result, WriteTx};
use carefront_domain::directory::{AdministrativeGender, Versioned};
use carefront_domain::matching::{
    MatchRecord, MatchScore, NameCounts, PreparedRecord, Thresholds, compare_with,
};
use carefront_domain::mpi::MRN_SYSTEM;
use carefront_domain::patient::{ContactMethod, Patient, PatientAddress};
use carefront_domain::patient_search::{
    Candidate, INDEX_KEYS_VERSION, Lookup, MRN_WIDTH, PatientQuery, index_keys, lookups, rank,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::Row;
use sqlx::any::AnyRow;

fn to_json<T: Serialize>(value: &T) -> Val {
    Val::from(serde_json::to_string(value).expect("patient parts always serialize"))
}

fn from_json<T: DeserializeOwned>(row: &AnyRow, col: &str) -> Result<T, sqlx::Error> {
    let text: String = row.try_get(col)?;
    serde_json::from_str(&text).map_err(|e| decode_err(col, e.to_string()))
}

impl Record for Patient {
    const KIND: &'static str = "Patient";
    const TABLE: &'static str = "patients";
    const COLUMNS: &'static [&'static str] = &[
        "mrn",
        "given",
        "middle",
        "family",
        "suffix",
        "preferred_name",
        "birth_date",
        "sex",
        "gender_identity",
        "pronouns",
        "email",
        "line1",
        "line2",
        "city",
        "state",
        "postal_code",
        "country",
        "addresses_json",
        "language",
        "interpreter_needed",
        "preferred_contact",
        "phones_json",
        "contacts_json",
        "alerts_json",
        "identifiers_json",
        "active",
        "replaced_by",
    ];
    const SORT: &'static str = "family, given";
    const KEYED: bool = true;
    const KEYS_VERSION: i64 = INDEX_KEYS_VERSION;

    fn values(&self) -> Vec<Val> {
        let mut v = vec![
            self.mrn.clone().into(),
            self.given.clone().into(),
            self.middle.clone().into(),
            self.family.clone().into(),
            self.suffix.clone().into(),
            self.preferred_name.clone().into(),
            self.birth_date.to_string().into(),
            self.sex.code().into(),
            self.gender_identity.clone().into(),
            self.pronouns.clone().into(),
            self.email.clone().into(),
        ];
        // The columns hold the home address; `addresses_json` all of them,
        // unless the columns say it all (no address, or one home address
        // without type or period: most patients), as in rows written
        // before patients had several addresses.
        match self.home_address() {
            Some(a) => v.extend(address_values(a)),
            None => v.extend((0..6).map(|_| Val::Text(None))),
        }
        let said_by_columns = match self.addresses.as_slice() {
            [] => true,
            [only] => *only == PatientAddress::home(only.address.clone()),
            _ => false,
        };
        v.extend([
            if said_by_columns {
                Val::Text(None)
            } else {
                to_json(&self.addresses)
            },
            self.language.clone().into(),
            self.interpreter_needed.into(),
            self.preferred_contact.map(|m| m.code().to_string()).into(),
            to_json(&self.phones),
            to_json(&self.contacts),
            to_json(&self.alerts),
            to_json(&self.identifiers),
            self.active.into(),
            self.replaced_by.clone().into(),
        ]);
        v
    }

    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        let birth_date: String = row.try_get("birth_date")?;
        let sex: String = row.try_get("sex")?;
        let contact: Option<String> = row.try_get("preferred_contact")?;
        // Without `addresses_json`, the columns hold the only address, at home.
        let addresses: Vec<PatientAddress> =
            match row.try_get::<Option<String>, _>("addresses_json")? {
                Some(text) => serde_json::from_str(&text)
                    .map_err(|e| decode_err("addresses_json", e.to_string()))?,
                None if row.try_get::<Option<String>, _>("line1")?.is_some() => {
                    vec![PatientAddress::home(address_from_row(row)?)]
                }
                None => Vec::new(),
            };
        Ok(Patient {
            mrn: row.try_get("mrn")?,
            given: row.try_get("given")?,
            middle: row.try_get("middle")?,
            family: row.try_get("family")?,
            suffix: row.try_get("suffix")?,
            preferred_name: row.try_get("preferred_name")?,
            birth_date: birth_date
                .parse()
                .map_err(|e: jiff::Error| decode_err("birth_date", e.to_string()))?,
            sex: AdministrativeGender::from_code(&sex)
                .ok_or_else(|| decode_err("sex", format!("unknown code '{sex}'")))?,
            gender_identity: row.try_get("gender_identity")?,
            pronouns: row.try_get("pronouns")?,
            addresses,
            phones: from_json(row, "phones_json")?,
            email: row.try_get("email")?,
            language: row.try_get("language")?,
            interpreter_needed: flag(row, "interpreter_needed")?,
            preferred_contact: contact.as_deref().and_then(ContactMethod::from_code),
            contacts: from_json(row, "contacts_json")?,
            alerts: from_json(row, "alerts_json")?,
            identifiers: from_json(row, "identifiers_json")?,
            active: flag(row, "active")?,
            replaced_by: row.try_get("replaced_by")?,
        })
    }

    fn search_keys(&self) -> Vec<String> {
        index_keys(self)
    }
}

/// MRNs are per-organization sequence numbers, zero-padded, never reused.
pub fn format_mrn(n: i64) -> String {
    format!("{n:0MRN_WIDTH$}")
}

impl WriteTx {
    /// Registers a patient, assigning the next MRN when none is given.
    pub async fn create_patient(
        &mut self,
        id: &str,
        mut patient: Patient,
        changed_by: &str,
    ) -> Result<Versioned<Patient>> {
        if patient.mrn.is_empty() {
            patient.mrn = format_mrn(self.next_counter("mrn").await?);
        }
        self.create(id, &patient, changed_by).await
    }
}

/// Candidates read before ranking; more than this and the desk is asked to
/// narrow the search. Lookups read the narrowest ranges first (whole names
/// before prefixes), so the best matches are among them; a broad query
/// ("smith" alone among a million) shows a sample and asks for more.
const SEARCH_CANDIDATES: i64 = 100;

/// Ranked results of the front desk's search box.
#[derive(Debug, Clone)]
pub struct PatientHits {
    pub hits: Vec<(Versioned<Patient>, u32)>,
    /// More patients may match than were considered.
    pub truncated: bool,
}

impl crate::Db {
    /// Finds patients for what was typed (see `patient_search::parse`):
    /// candidates from the key index, ranked best first, merged records left out.
    pub async fn search_patients(
        &self,
        org_id: &str,
        query: &PatientQuery,
        limit: usize,
    ) -> Result<PatientHits> {
        let mut found: Vec<Versioned<Patient>> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut truncated = false;
        for lookup in lookups(query) {
            let room = SEARCH_CANDIDATES - found.len() as i64;
            if room <= 0 {
                truncated = true;
                break;
            }
            let more = match lookup {
                Lookup::Keys(keys) => self.records_by_keys::<Patient>(org_id, &keys, room).await?,
                Lookup::Prefix(prefix) => {
                    self.records_by_key_prefix::<Patient>(org_id, &prefix, room)
                        .await?
                }
            };
            truncated |= more.len() as i64 >= room;
            found.extend(more.into_iter().filter(|p| seen.insert(p.id.clone())));
        }
        let mut hits: Vec<(Versioned<Patient>, u32)> = found
            .into_iter()
            .filter(|p| p.value.replaced_by.is_none())
            .filter_map(|p| {
                let phones: Vec<String> =
                    p.value.phones.iter().map(|ph| ph.number.clone()).collect();
                let former: Vec<String> = p
                    .value
                    .identifiers
                    .iter()
                    .filter(|i| i.system == MRN_SYSTEM)
                    .map(|i| i.value.clone())
                    .collect();
                let score = rank(query, &candidate(&p.value, &phones, &former))?;
                Some((p, score))
            })
            .collect();
        hits.sort_by(|(a, sa), (b, sb)| {
            sb.cmp(sa)
                .then_with(|| a.value.family.cmp(&b.value.family))
                .then_with(|| a.value.given.cmp(&b.value.given))
        });
        truncated |= hits.len() > limit;
        hits.truncate(limit);
        Ok(PatientHits { hits, truncated })
    }
}

fn candidate<'a>(p: &'a Patient, phones: &'a [String], former_mrns: &'a [String]) -> Candidate<'a> {
    Candidate {
        given: &p.given,
        middle: p.middle.as_deref(),
        family: &p.family,
        preferred: p.preferred_name.as_deref(),
        birth_date: p.birth_date,
        phones,
        mrn: &p.mrn,
        former_mrns,
        email: p.email.as_deref(),
    }
}

/// Candidates read from the blocking keys of a record being matched.
const MATCH_CANDIDATES: i64 = 200;

impl crate::Db {
    /// Existing patients who may be the person described, scored with the
    /// matching engine, best first; only those at or above `lower`
    /// threshold. Used by registration (before saving) and `Patient/$match`.
    ///
    /// Name weights are value-specific (`matching::frequency`): the names of
    /// the record and of the candidates that could reach `lower` are counted
    /// ([`Db::name_counts`](crate::Db::name_counts)).
    pub async fn match_candidates(
        &self,
        org_id: &str,
        record: &MatchRecord,
        thresholds: &Thresholds,
    ) -> Result<Vec<(Versioned<Patient>, MatchScore)>> {
        use carefront_domain::matching::frequency::MAX_RAISE_BITS;

        let mut probe = PreparedRecord::new(record);
        let candidates: Vec<(Versioned<Patient>, PreparedRecord)> = self
            .records_by_keys::<Patient>(org_id, &probe.blocking_keys(), MATCH_CANDIDATES)
            .await?
            .into_iter()
            .filter(|p| p.value.replaced_by.is_none())
            .map(|p| {
                let prepared = PreparedRecord::new(&MatchRecord::from(&p.value));
                (p, prepared)
            })
            // Without name counts first: a candidate below `lower -
            // MAX_RAISE_BITS` cannot reach `lower` with them.
            .filter(|(_, c)| {
                compare_with(&probe, c, thresholds).total + MAX_RAISE_BITS >= thresholds.lower
            })
            .collect();
        if candidates.is_empty() {
            return Ok(Vec::new());
        }

        let counts = self
            .name_counts(
                org_id,
                std::iter::once(&probe).chain(candidates.iter().map(|(_, c)| c)),
            )
            .await?;

        probe.set_name_counts(&counts);
        let mut scored: Vec<(Versioned<Patient>, MatchScore)> = candidates
            .into_iter()
            .map(|(p, mut c)| {
                c.set_name_counts(&counts);
                let score = compare_with(&probe, &c, thresholds);
                (p, score)
            })
            .filter(|(_, s)| s.total >= thresholds.lower)
            .collect();
        scored.sort_by(|a, b| b.1.total.total_cmp(&a.1.total));
        Ok(scored)
    }

    /// How common the names of `records` are among the organization's
    /// patients, for value-specific name weights: one grouped count of their
    /// `n:` keys (0.1–0.3 ms with 10,000–100,000 patients on SQLite), over
    /// the organization's patients (its `d:` keys: a range count that grows
    /// with the panel, 20 ms for 100,000 patients, so kept per process for a
    /// minute; shares barely move in that time).
    pub async fn name_counts<'a>(
        &self,
        org_id: &str,
        records: impl IntoIterator<Item = &'a PreparedRecord>,
    ) -> Result<NameCounts> {
        use std::collections::HashMap;
        use std::sync::{LazyLock, Mutex};
        use std::time::{Duration, Instant};
        /// Patients per organization, and when they were counted.
        static PATIENTS: LazyLock<Mutex<HashMap<String, (Instant, u64)>>> =
            LazyLock::new(Mutex::default);
        const PATIENTS_FOR: Duration = Duration::from_secs(60);

        let mut keys: Vec<String> = records
            .into_iter()
            .flat_map(|r| r.name_keys().into_iter().flatten())
            .collect();
        keys.sort();
        keys.dedup();
        let mut counts: HashMap<String, u64> = HashMap::with_capacity(keys.len());
        if !keys.is_empty() {
            let placeholders: Vec<String> =
                (0..keys.len()).map(|i| format!("${}", i + 3)).collect();
            let mut query = sqlx::query_as::<_, (String, i64)>(crate::db::sql(format!(
                "SELECT key, COUNT(*) FROM search_keys WHERE org_id = $1 AND record_type = $2 \
                 AND key IN ({}) GROUP BY key",
                placeholders.join(", ")
            )))
            .bind(org_id)
            .bind(Patient::KIND);
            for k in &keys {
                query = query.bind(k.clone());
            }
            for (k, n) in query.fetch_all(&mut *self.reader().await?).await? {
                counts.insert(k, u64::try_from(n).unwrap_or(0));
            }
        }
        let cached = PATIENTS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(org_id)
            .filter(|(at, _)| at.elapsed() < PATIENTS_FOR)
            .map(|(_, n)| *n);
        let patients = match cached {
            Some(n) => n,
            None => {
                // Every patient has one `d:` key (the birth date), and only
                // the patients counted in `n:` have keys: a range count of
                // the index, not a scan of the rows.
                let (n,): (i64,) = sqlx::query_as(
                    "SELECT COUNT(*) FROM search_keys WHERE org_id = $1 AND record_type = $2 \
                     AND key >= 'd:' AND key < 'd;'",
                )
                .bind(org_id)
                .bind(Patient::KIND)
                .fetch_one(&mut *self.reader().await?)
                .await?;
                let n = u64::try_from(n).unwrap_or(0);
                PATIENTS
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(org_id.to_string(), (Instant::now(), n));
                n
            }
        };
        Ok(NameCounts { patients, counts })
    }

    /// Two patients compared as `Patient/$match` and registration compare
    /// them (name weights by how common the names are).
    pub async fn compare_patients(
        &self,
        org_id: &str,
        a: &Patient,
        b: &Patient,
    ) -> Result<MatchScore> {
        let mut a = PreparedRecord::new(&MatchRecord::from(a));
        let mut b = PreparedRecord::new(&MatchRecord::from(b));
        let counts = self.name_counts(org_id, [&a, &b]).await?;
        a.set_name_counts(&counts);
        b.set_name_counts(&counts);
        Ok(compare_with(&a, &b, &Thresholds::DEFAULT))
    }
}
