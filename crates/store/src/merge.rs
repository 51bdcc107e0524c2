//! Patient merges: a duplicate record folded into its survivor, in one
//! transaction, and undone exactly.
//!
//! Merging ([`WriteTx::merge_patients`]):
//! 1. reads both records inside the transaction and refuses a merge of a
//!    record with itself, into a record that is itself merged, of a record
//!    already merged, or of records changed since the caller looked at them
//!    (expected versions);
//! 2. updates the survivor with what the duplicate would otherwise lose
//!    (contacts, identifiers with the old MRN, alerts, and addresses the
//!    survivor lacks, as `old` ones: see `carefront_domain::mpi`) and marks the duplicate inactive and
//!    `replaced_by` the survivor, both as new versions with history;
//! 3. moves every record that belongs to the duplicate (see
//!    [`WriteTx::move_patient_records`]) to the survivor;
//! 4. stores a `patient_merges` row with a snapshot of both records before
//!    the merge, the additions and the moved records.
//!
//! Undoing ([`WriteTx::unmerge_patients`]) marks the row undone first (so
//! two undos cannot both run), restores the duplicate, removes exactly the
//! additions from the survivor (keeping edits made since) and moves back the
//! moved records that still belong to the survivor.
//!
//! The caller appends the audit events (`Merge`/`Unmerge`, naming both
//! patients) to the same transaction before committing.

use crate::db::{now_us, sql};
use crate::records::Record;
use crate::{Db, Result, StoreError, WriteTx};
use carefront_domain::ValidationErrors;
use carefront_domain::coverage::Coverage;
use carefront_domain::directory::Versioned;
use carefront_domain::mpi::{MergeAdditions, merge_into, undo_additions};
use carefront_domain::patient::Patient;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

/// One merge, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct PatientMerge {
    pub id: String,
    pub survivor_id: String,
    pub duplicate_id: String,
    pub merged_at_us: i64,
    pub merged_by: String,
    pub reason: Option<String>,
    pub undone_at_us: Option<i64>,
    pub undone_by: Option<String>,
    pub snapshot: MergeSnapshot,
}

impl PatientMerge {
    pub fn is_active(&self) -> bool {
        self.undone_at_us.is_none()
    }
}

/// What a merge changed, kept so that it can be undone exactly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeSnapshot {
    pub survivor_before: Patient,
    pub survivor_version_before: i64,
    pub duplicate_before: Patient,
    pub duplicate_version_before: i64,
    /// Appended to the survivor.
    pub additions: MergeAdditions,
    /// Records moved from the duplicate to the survivor.
    pub moved: Vec<MovedRecord>,
}

/// A record that moved from the duplicate to the survivor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MovedRecord {
    /// [`Record::KIND`], e.g. `Coverage`.
    pub kind: String,
    pub id: String,
    /// Made inactive on arrival because the survivor already held its place
    /// (an active primary coverage); made active again when undone.
    #[serde(default)]
    pub deactivated: bool,
}

/// A record that belongs to one patient (coverages, later appointments) and
/// follows the survivor when its patient is merged.
pub trait PatientOwned: Record {
    /// The column holding the patient's id.
    const PATIENT_COLUMN: &'static str;
    fn set_patient_id(&mut self, patient_id: &str);
    /// Whether this record, joining `others` (the receiving patient's
    /// records of its kind), must be made inactive to keep a rule such as
    /// one active primary coverage per patient.
    fn displaces(&self, _others: &[Self]) -> bool {
        false
    }
    fn set_active(&mut self, _active: bool) {}
}

impl PatientOwned for Coverage {
    const PATIENT_COLUMN: &'static str = "patient_id";

    fn set_patient_id(&mut self, patient_id: &str) {
        self.patient_id = patient_id.to_string();
    }

    fn displaces(&self, others: &[Self]) -> bool {
        self.active && others.iter().any(|o| o.active && o.order == self.order)
    }

    fn set_active(&mut self, active: bool) {
        self.active = active;
    }
}

const MERGE_COLUMNS: &str = "id, survivor_id, duplicate_id, merged_at_us, merged_by, reason, \
    undone_at_us, undone_by, snapshot_json";

fn merge_from_row(row: &AnyRow) -> Result<PatientMerge> {
    let id: String = row.try_get("id")?;
    let snapshot: String = row.try_get("snapshot_json")?;
    Ok(PatientMerge {
        snapshot: serde_json::from_str(&snapshot)
            .map_err(|e| StoreError::Corrupt(format!("patient merge {id}: {e}")))?,
        id,
        survivor_id: row.try_get("survivor_id")?,
        duplicate_id: row.try_get("duplicate_id")?,
        merged_at_us: row.try_get("merged_at_us")?,
        merged_by: row.try_get("merged_by")?,
        reason: row.try_get("reason")?,
        undone_at_us: row.try_get("undone_at_us")?,
        undone_by: row.try_get("undone_by")?,
    })
}

fn conflict(message: impl Into<String>) -> StoreError {
    StoreError::Conflict(message.into())
}

impl WriteTx {
    /// The current version of a live record, read inside this transaction.
    pub async fn read_current<R: Record>(&mut self, id: &str) -> Result<Versioned<R>> {
        let row = sqlx::query(sql(format!(
            "SELECT id, version, updated_at_us, deleted, {} FROM {} WHERE org_id = $1 AND id = $2",
            R::COLUMNS.join(", "),
            R::TABLE
        )))
        .bind(&self.org_id)
        .bind(id)
        .fetch_optional(&mut *self.tx)
        .await?
        .ok_or(StoreError::NotFound)?;
        if row.try_get::<i64, _>("deleted")? == 1 {
            return Err(StoreError::Gone);
        }
        Ok(Versioned {
            id: row.try_get("id")?,
            version: row.try_get("version")?,
            updated_at_us: row.try_get("updated_at_us")?,
            value: R::from_row(&row)?,
        })
    }

    /// Merges `duplicate_id` into `survivor_id` (see the module
    /// documentation). With expected versions, refuses with
    /// [`StoreError::VersionConflict`] when either record changed since.
    #[allow(clippy::too_many_arguments)]
    pub async fn merge_patients(
        &mut self,
        merge_id: &str,
        survivor_id: &str,
        survivor_version: Option<i64>,
        duplicate_id: &str,
        duplicate_version: Option<i64>,
        merged_by: &str,
        reason: Option<&str>,
    ) -> Result<PatientMerge> {
        if survivor_id == duplicate_id {
            return Err(ValidationErrors::single(
                "other",
                "choose another record: a record cannot be merged with itself",
            )
            .into());
        }
        let survivor = self.read_current::<Patient>(survivor_id).await?;
        let duplicate = self.read_current::<Patient>(duplicate_id).await?;
        for (record, expected) in [
            (&survivor, survivor_version),
            (&duplicate, duplicate_version),
        ] {
            if let Some(v) = expected
                && v != record.version
            {
                return Err(StoreError::VersionConflict {
                    current: record.version,
                });
            }
        }
        if survivor.value.replaced_by.is_some() {
            return Err(conflict(format!(
                "MRN {} is itself merged into another record; merge into that record instead",
                survivor.value.mrn
            )));
        }
        if duplicate.value.replaced_by.is_some() {
            return Err(conflict(format!(
                "MRN {} is already merged into another record",
                duplicate.value.mrn
            )));
        }
        let merged = merge_into(&survivor.value, &duplicate.value, survivor_id);
        self.update(
            survivor_id,
            &merged.survivor,
            Some(survivor.version),
            merged_by,
        )
        .await?;
        self.update(
            duplicate_id,
            &merged.duplicate,
            Some(duplicate.version),
            merged_by,
        )
        .await?;
        let moved = self
            .move_patient_records(duplicate_id, survivor_id, None, merged_by)
            .await?;
        let snapshot = MergeSnapshot {
            survivor_before: survivor.value,
            survivor_version_before: survivor.version,
            duplicate_before: duplicate.value,
            duplicate_version_before: duplicate.version,
            additions: merged.additions,
            moved,
        };
        let at = now_us();
        let json = serde_json::to_string(&snapshot)
            .map_err(|e| StoreError::Corrupt(format!("patient merge {merge_id}: {e}")))?;
        let reason = reason.map(str::trim).filter(|r| !r.is_empty());
        sqlx::query(
            "INSERT INTO patient_merges (org_id, id, survivor_id, duplicate_id, merged_at_us, \
             merged_by, reason, snapshot_json) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&self.org_id)
        .bind(merge_id)
        .bind(survivor_id)
        .bind(duplicate_id)
        .bind(at)
        .bind(merged_by)
        .bind(reason.map(str::to_string))
        .bind(json)
        .execute(&mut *self.tx)
        .await
        .map_err(|e| StoreError::from_write(e, "the record is already merged"))?;
        Ok(PatientMerge {
            id: merge_id.to_string(),
            survivor_id: survivor_id.to_string(),
            duplicate_id: duplicate_id.to_string(),
            merged_at_us: at,
            merged_by: merged_by.to_string(),
            reason: reason.map(str::to_string),
            undone_at_us: None,
            undone_by: None,
            snapshot,
        })
    }

    /// Undoes a merge (see the module documentation). Refuses when it was
    /// undone already, or when its survivor has since been merged into a
    /// third record (that merge must be undone first).
    pub async fn unmerge_patients(
        &mut self,
        merge_id: &str,
        undone_by: &str,
    ) -> Result<PatientMerge> {
        let at = now_us();
        let claimed = sqlx::query(
            "UPDATE patient_merges SET undone_at_us = $3, undone_by = $4 \
             WHERE org_id = $1 AND id = $2 AND undone_at_us IS NULL",
        )
        .bind(&self.org_id)
        .bind(merge_id)
        .bind(at)
        .bind(undone_by)
        .execute(&mut *self.tx)
        .await?;
        let row = sqlx::query(sql(format!(
            "SELECT {MERGE_COLUMNS} FROM patient_merges WHERE org_id = $1 AND id = $2"
        )))
        .bind(&self.org_id)
        .bind(merge_id)
        .fetch_optional(&mut *self.tx)
        .await?
        .ok_or(StoreError::NotFound)?;
        let merge = merge_from_row(&row)?;
        if claimed.rows_affected() != 1 {
            return Err(conflict("this merge was already undone"));
        }
        let survivor = self.read_current::<Patient>(&merge.survivor_id).await?;
        let duplicate = self.read_current::<Patient>(&merge.duplicate_id).await?;
        if survivor.value.replaced_by.is_some() {
            return Err(conflict(format!(
                "MRN {} has since been merged into another record: undo that merge first",
                survivor.value.mrn
            )));
        }
        if duplicate.value.replaced_by.as_deref() != Some(merge.survivor_id.as_str()) {
            return Err(conflict(format!(
                "MRN {} is no longer merged into MRN {}",
                duplicate.value.mrn, survivor.value.mrn
            )));
        }
        let before = &merge.snapshot.duplicate_before;
        let mut restored = duplicate.value.clone();
        restored.active = before.active;
        restored.replaced_by = before.replaced_by.clone();
        let survivor_after = undo_additions(&survivor.value, &merge.snapshot.additions);
        self.update(
            &merge.survivor_id,
            &survivor_after,
            Some(survivor.version),
            undone_by,
        )
        .await?;
        self.update(
            &merge.duplicate_id,
            &restored,
            Some(duplicate.version),
            undone_by,
        )
        .await?;
        self.move_patient_records(
            &merge.survivor_id,
            &merge.duplicate_id,
            Some(&merge.snapshot.moved),
            undone_by,
        )
        .await?;
        Ok(PatientMerge {
            undone_at_us: Some(at),
            undone_by: Some(undone_by.to_string()),
            ..merge
        })
    }

    /// Moves the records that belong to patient `from` to patient `to`: all
    /// of them (`only` is `None`, a merge), or those listed that still
    /// belong to `from` (undoing a merge). Each kind of [`PatientOwned`]
    /// record is listed here once.
    pub async fn move_patient_records(
        &mut self,
        from: &str,
        to: &str,
        only: Option<&[MovedRecord]>,
        changed_by: &str,
    ) -> Result<Vec<MovedRecord>> {
        let mut moved = Vec::new();
        moved.extend(
            self.move_owned::<Coverage>(from, to, only, changed_by)
                .await?,
        );
        moved.extend(
            self.move_owned::<crate::AppointmentRecord>(from, to, only, changed_by)
                .await?,
        );
        moved.extend(
            self.move_owned::<carefront_domain::scheduling::WaitlistEntry>(
                from, to, only, changed_by,
            )
            .await?,
        );
        Ok(moved)
    }

    /// Live records of one kind belonging to `patient_id`, read in this
    /// transaction.
    async fn owned_by<R: PatientOwned>(&mut self, patient_id: &str) -> Result<Vec<Versioned<R>>> {
        let ids: Vec<(String,)> = sqlx::query_as(sql(format!(
            "SELECT id FROM {} WHERE org_id = $1 AND {} = $2 AND deleted = 0 ORDER BY id",
            R::TABLE,
            R::PATIENT_COLUMN
        )))
        .bind(&self.org_id)
        .bind(patient_id)
        .fetch_all(&mut *self.tx)
        .await?;
        let mut found = Vec::with_capacity(ids.len());
        for (id,) in ids {
            found.push(self.read_current::<R>(&id).await?);
        }
        Ok(found)
    }

    /// Moves the records of one kind (see [`WriteTx::move_patient_records`]),
    /// each as a new version with history. A record that would break a rule
    /// of the receiving patient ([`PatientOwned::displaces`]) arrives
    /// inactive; when it is moved back it is made active again if it can be.
    pub async fn move_owned<R: PatientOwned>(
        &mut self,
        from: &str,
        to: &str,
        only: Option<&[MovedRecord]>,
        changed_by: &str,
    ) -> Result<Vec<MovedRecord>> {
        let mut receiving: Vec<R> = self
            .owned_by::<R>(to)
            .await?
            .into_iter()
            .map(|r| r.value)
            .collect();
        let mut moved = Vec::new();
        for mut record in self.owned_by::<R>(from).await? {
            let listed = match only {
                None => None,
                Some(list) => match list.iter().find(|m| m.kind == R::KIND && m.id == record.id) {
                    Some(m) => Some(m),
                    None => continue,
                },
            };
            record.value.set_patient_id(to);
            let reactivate = listed.is_some_and(|m| m.deactivated);
            if reactivate {
                record.value.set_active(true);
            }
            let deactivated = record.value.displaces(&receiving);
            if deactivated {
                record.value.set_active(false);
            }
            self.update(&record.id, &record.value, Some(record.version), changed_by)
                .await?;
            receiving.push(record.value);
            moved.push(MovedRecord {
                kind: R::KIND.to_string(),
                id: record.id,
                deactivated: deactivated && !reactivate,
            });
        }
        Ok(moved)
    }
}

impl Db {
    pub async fn patient_merge(&self, org_id: &str, id: &str) -> Result<PatientMerge> {
        let row = sqlx::query(sql(format!(
            "SELECT {MERGE_COLUMNS} FROM patient_merges WHERE org_id = $1 AND id = $2"
        )))
        .bind(org_id)
        .bind(id)
        .fetch_optional(&mut *self.reader().await?)
        .await?
        .ok_or(StoreError::NotFound)?;
        merge_from_row(&row)
    }

    /// The merges a patient took part in, as survivor or duplicate, newest
    /// first (undone ones included).
    pub async fn patient_merges(
        &self,
        org_id: &str,
        patient_id: &str,
    ) -> Result<Vec<PatientMerge>> {
        let rows = sqlx::query(sql(format!(
            "SELECT {MERGE_COLUMNS} FROM patient_merges \
             WHERE org_id = $1 AND (survivor_id = $2 OR duplicate_id = $2) \
             ORDER BY merged_at_us DESC, id DESC"
        )))
        .bind(org_id)
        .bind(patient_id)
        .fetch_all(&mut *self.reader().await?)
        .await?;
        rows.iter().map(merge_from_row).collect()
    }
}
