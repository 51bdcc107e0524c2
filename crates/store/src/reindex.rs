//! Rebuilding search keys when the rules that derive them change. Keys are
//! computed by the domain (`Record::search_keys`), so a build with new rules
//! would otherwise look for keys the stored records were never given. Each
//! keyed record type declares the version of its rules
//! (`Record::KEYS_VERSION`); `search_key_versions` holds the version the
//! stored keys were built by, and a newer build rebuilds them once.

use crate::db::sql;
use crate::records::{Record, select_columns, versioned};
use crate::{Db, Result};

/// Records read and re-keyed per step.
const REINDEX_BATCH: i64 = 2_000;

impl Db {
    /// Rebuilds the keys of every keyed record type whose rules changed
    /// (run after [`Db::migrate`], before serving); `progress(done, total)`.
    pub async fn rebuild_stale_keys(&self, progress: impl FnMut(u64, u64)) -> Result<u64> {
        self.reindex_stale::<carefront_domain::patient::Patient>(progress)
            .await
    }

    /// Whether `R`'s stored keys were built by other rules than this build's.
    pub async fn keys_are_stale<R: Record>(&self) -> Result<bool> {
        if !R::KEYED {
            return Ok(false);
        }
        let stored: Option<(i64,)> =
            sqlx::query_as("SELECT version FROM search_key_versions WHERE record_type = $1")
                .bind(R::KIND)
                .fetch_optional(&mut *self.reader().await?)
                .await?;
        Ok(stored.map(|(v,)| v) != Some(R::KEYS_VERSION))
    }

    /// Rebuilds every organization's `R` search keys when they are stale,
    /// in one transaction (a search never sees half an index), calling
    /// `progress(done, total)` as records are re-keyed. Servers starting
    /// together on one PostgreSQL take turns on the version row: the second
    /// finds the work done. Returns the number of records re-keyed.
    pub async fn reindex_stale<R: Record>(
        &self,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<u64> {
        if !self.keys_are_stale::<R>().await? {
            return Ok(0);
        }
        let mut tx = self.begin("").await?;
        sqlx::query(
            "INSERT INTO search_key_versions (record_type, version) VALUES ($1, 0) \
             ON CONFLICT (record_type) DO NOTHING",
        )
        .bind(R::KIND)
        .execute(&mut *tx.tx)
        .await?;
        let (version,): (i64,) = sqlx::query_as(
            "UPDATE search_key_versions SET version = version WHERE record_type = $1 \
             RETURNING version",
        )
        .bind(R::KIND)
        .fetch_one(&mut *tx.tx)
        .await?;
        if version == R::KEYS_VERSION {
            tx.commit().await?;
            return Ok(0);
        }
        let (total,): (i64,) = sqlx::query_as(sql(format!(
            "SELECT COUNT(*) FROM {} WHERE deleted = 0",
            R::TABLE
        )))
        .fetch_one(&mut *tx.tx)
        .await?;
        let total = u64::try_from(total).unwrap_or(0);
        sqlx::query("DELETE FROM search_keys WHERE record_type = $1")
            .bind(R::KIND)
            .execute(&mut *tx.tx)
            .await?;
        let orgs: Vec<(String,)> =
            sqlx::query_as(sql(format!("SELECT DISTINCT org_id FROM {}", R::TABLE)))
                .fetch_all(&mut *tx.tx)
                .await?;
        let mut done = 0u64;
        progress(done, total);
        for (org_id,) in orgs {
            tx.org_id = org_id;
            let mut after = String::new();
            loop {
                let rows = sqlx::query(sql(format!(
                    "SELECT {} FROM {} WHERE org_id = $1 AND deleted = 0 AND id > $2 \
                     ORDER BY id LIMIT {REINDEX_BATCH}",
                    select_columns::<R>(),
                    R::TABLE
                )))
                .bind(tx.org_id.clone())
                .bind(&after)
                .fetch_all(&mut *tx.tx)
                .await?;
                let Some(last) = rows.last() else { break };
                after = versioned::<R>(last)?.id;
                let records = rows
                    .iter()
                    .map(|row| versioned::<R>(row).map(|v| (v.id, v.value)))
                    .collect::<Result<Vec<_>>>()?;
                done += records.len() as u64;
                tx.insert_keys(records).await?;
                progress(done, total);
            }
        }
        sqlx::query("UPDATE search_key_versions SET version = $2 WHERE record_type = $1")
            .bind(R::KIND)
            .bind(R::KEYS_VERSION)
            .execute(&mut *tx.tx)
            .await?;
        tx.commit().await?;
        Ok(done)
    }
}
