//! Versioned records: one generic implementation of create, read, version
//! read, update with optimistic concurrency, delete (tombstone), history and
//! search, used by every table that the FHIR API and the UI edit.

use crate::db::{now_us, sql};
use crate::{Db, Result, StoreError, WriteTx};
use carefront_domain::directory::Versioned;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::Row;
use sqlx::any::AnyRow;

/// A bindable column value.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Text(Option<String>),
    Int(Option<i64>),
}

impl From<&str> for Val {
    fn from(v: &str) -> Self {
        Val::Text(Some(v.to_string()))
    }
}
impl From<String> for Val {
    fn from(v: String) -> Self {
        Val::Text(Some(v))
    }
}
impl From<Option<String>> for Val {
    fn from(v: Option<String>) -> Self {
        Val::Text(v)
    }
}
impl From<bool> for Val {
    fn from(v: bool) -> Self {
        Val::Int(Some(i64::from(v)))
    }
}

/// A domain type stored in its own table, keyed by `(org_id, id)` and
/// carrying `version`, `updated_at_us` and `deleted` columns.
pub trait Record: Serialize + DeserializeOwned + Clone + Send + Sync + Unpin + 'static {
    /// The record type named in history and audit (the FHIR resource type).
    const KIND: &'static str;
    const TABLE: &'static str;
    /// Data columns, in the order [`Record::values`] returns them.
    const COLUMNS: &'static [&'static str];
    /// Column used to order search results.
    const SORT: &'static str;
    fn values(&self) -> Vec<Val>;
    fn from_row(row: &AnyRow) -> std::result::Result<Self, sqlx::Error>;
    /// Whether the record keeps [`Record::search_keys`] in `search_keys`.
    const KEYED: bool = false;
    /// Keys the record is found under (see `search_keys` in the schema).
    fn search_keys(&self) -> Vec<String> {
        Vec::new()
    }
    /// The version of the rules behind [`Record::search_keys`]: raise it
    /// when they change, and stored keys are rebuilt (`Db::reindex_stale`).
    const KEYS_VERSION: i64 = 1;
    /// Whether slot computations read the record as part of the schedule
    /// set-up kept per server (`scheduling::schedule_setup`): its writes
    /// tell every server to read the set-up again.
    const SCHEDULE_SETUP: bool = false;
}

/// A search condition on a column the caller names from code, never from
/// user input; values are always bound.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Eq(&'static str, Val),
    /// Case-insensitive prefix match on any of the columns.
    Prefix(&'static [&'static str], String),
    Id(String),
    UpdatedAtLeast(i64),
    UpdatedBefore(i64),
    /// The record is indexed under this key (see [`Record::search_keys`]).
    HasKey(String),
    /// The record is indexed under a key starting with this.
    HasKeyPrefix(String),
    /// The column's value is at least this (text compares as stored, so
    /// ISO dates compare as dates).
    AtLeast(&'static str, Val),
    /// The column's value is less than this.
    Below(&'static str, Val),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub offset: i64,
    pub count: i64,
}

fn bind<'q>(
    q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    v: &Val,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    match v {
        Val::Text(t) => q.bind(t.clone()),
        Val::Int(i) => q.bind(*i),
    }
}

pub(crate) fn versioned<R: Record>(row: &AnyRow) -> Result<Versioned<R>> {
    Ok(Versioned {
        id: row.try_get("id")?,
        version: row.try_get("version")?,
        updated_at_us: row.try_get("updated_at_us")?,
        value: R::from_row(row)?,
    })
}

pub(crate) fn select_columns<R: Record>() -> String {
    format!(
        "id, version, updated_at_us, deleted, {}",
        R::COLUMNS.join(", ")
    )
}

impl WriteTx {
    /// Moves the record from the keys of its stored value `old` to those of
    /// `new` (none after a delete). Stored keys are always those of the
    /// stored value (`Db::rebuild_stale_keys` sees to it when the rules
    /// change), so only the difference is touched, each by its exact key.
    async fn change_keys<R: Record>(
        &mut self,
        id: &str,
        old: Option<&R>,
        new: Option<&R>,
    ) -> Result<()> {
        if !R::KEYED {
            return Ok(());
        }
        let old = old.map(R::search_keys).unwrap_or_default();
        let new = new.map(R::search_keys).unwrap_or_default();
        for key in old.iter().filter(|k| !new.contains(k)) {
            sqlx::query(
                "DELETE FROM search_keys \
                 WHERE org_id = $1 AND record_type = $2 AND key = $3 AND record_id = $4",
            )
            .bind(&self.org_id)
            .bind(R::KIND)
            .bind(key)
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        }
        for key in new.iter().filter(|k| !old.contains(k)) {
            sqlx::query(
                "INSERT INTO search_keys (org_id, record_type, key, record_id) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(&self.org_id)
            .bind(R::KIND)
            .bind(key)
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        }
        Ok(())
    }

    async fn record_history<R: Record>(
        &mut self,
        id: &str,
        version: i64,
        at: i64,
        changed_by: &str,
        deleted: bool,
        value: &R,
    ) -> Result<()> {
        let data = serde_json::to_string(value)
            .map_err(|e| StoreError::Corrupt(format!("cannot serialize {}: {e}", R::KIND)))?;
        sqlx::query(
            "INSERT INTO record_history \
             (org_id, record_type, record_id, version, changed_at_us, changed_by, deleted, data) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&self.org_id)
        .bind(R::KIND)
        .bind(id)
        .bind(version)
        .bind(at)
        .bind(changed_by)
        .bind(i64::from(deleted))
        .bind(data)
        .execute(&mut *self.tx)
        .await?;
        if R::SCHEDULE_SETUP {
            self.schedule_setup_changed().await?;
        }
        Ok(())
    }

    pub async fn create<R: Record>(
        &mut self,
        id: &str,
        value: &R,
        changed_by: &str,
    ) -> Result<Versioned<R>> {
        let at = now_us();
        let cols = R::COLUMNS;
        let placeholders: Vec<String> = (0..cols.len()).map(|i| format!("${}", i + 5)).collect();
        let sql_text = format!(
            "INSERT INTO {} (org_id, id, version, updated_at_us, {}) VALUES ($1, $2, $3, $4, {})",
            R::TABLE,
            cols.join(", "),
            placeholders.join(", ")
        );
        let mut q = sqlx::query(sql(sql_text))
            .bind(self.org_id.clone())
            .bind(id.to_string())
            .bind(1i64)
            .bind(at);
        for v in value.values() {
            q = bind(q, &v);
        }
        q.execute(&mut *self.tx).await.map_err(|e| {
            StoreError::from_write(
                e,
                &format!("{} {id} conflicts with an existing record", R::KIND),
            )
        })?;
        self.change_keys::<R>(id, None, Some(value)).await?;
        self.record_history(id, 1, at, changed_by, false, value)
            .await?;
        Ok(Versioned {
            id: id.to_string(),
            version: 1,
            updated_at_us: at,
            value: value.clone(),
        })
    }

    /// Updates a live record. With `if_version`, refuses unless the stored
    /// version matches (optimistic concurrency for FHIR If-Match).
    pub async fn update<R: Record>(
        &mut self,
        id: &str,
        value: &R,
        if_version: Option<i64>,
        changed_by: &str,
    ) -> Result<Versioned<R>> {
        let stored = self.current::<R>(id).await?;
        let current = stored.version;
        if let Some(expected) = if_version
            && expected != current
        {
            return Err(StoreError::VersionConflict { current });
        }
        let at = now_us();
        let version = current + 1;
        let sets: Vec<String> = R::COLUMNS
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c} = ${}", i + 6))
            .collect();
        let sql_text = format!(
            "UPDATE {} SET version = $3, updated_at_us = $4, {} \
             WHERE org_id = $1 AND id = $2 AND version = $5 AND deleted = 0",
            R::TABLE,
            sets.join(", ")
        );
        let mut q = sqlx::query(sql(sql_text))
            .bind(self.org_id.clone())
            .bind(id.to_string())
            .bind(version)
            .bind(at)
            .bind(current);
        for v in value.values() {
            q = bind(q, &v);
        }
        let done = q.execute(&mut *self.tx).await.map_err(|e| {
            StoreError::from_write(
                e,
                &format!("{} {id} conflicts with an existing record", R::KIND),
            )
        })?;
        if done.rows_affected() != 1 {
            return Err(StoreError::VersionConflict { current });
        }
        self.change_keys::<R>(id, Some(&stored.value), Some(value))
            .await?;
        self.record_history(id, version, at, changed_by, false, value)
            .await?;
        Ok(Versioned {
            id: id.to_string(),
            version,
            updated_at_us: at,
            value: value.clone(),
        })
    }

    /// Marks a record deleted; its history stays, reads answer Gone.
    pub async fn delete<R: Record>(&mut self, id: &str, changed_by: &str) -> Result<i64> {
        let Versioned {
            version: current,
            value,
            ..
        } = self.current::<R>(id).await?;
        let at = now_us();
        let version = current + 1;
        sqlx::query(sql(format!(
            "UPDATE {} SET deleted = 1, version = $3, updated_at_us = $4 WHERE org_id = $1 AND id = $2",
            R::TABLE
        )))
        .bind(&self.org_id)
        .bind(id)
        .bind(version)
        .bind(at)
        .execute(&mut *self.tx)
        .await
        .map_err(|e| StoreError::from_write(e, &format!("{} {id} is still referenced", R::KIND)))?;
        self.change_keys::<R>(id, Some(&value), None).await?;
        self.record_history(id, version, at, changed_by, true, &value)
            .await?;
        Ok(version)
    }

    /// The stored live record, read inside this transaction.
    async fn current<R: Record>(&mut self, id: &str) -> Result<Versioned<R>> {
        let row = sqlx::query(sql(format!(
            "SELECT {} FROM {} WHERE org_id = $1 AND id = $2",
            select_columns::<R>(),
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
        versioned(&row)
    }
}

/// Ids per statement of [`Db::get_many`]. SQLite finds each bound
/// parameter by a walk over the statement's parameters, so wide statements
/// cost the square of their width.
const GET_MANY_CHUNK: usize = 50;

/// One entry of a record's history.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry<R> {
    pub version: i64,
    pub changed_at_us: i64,
    pub changed_by: String,
    pub deleted: bool,
    pub value: R,
}

impl Db {
    /// The current version of a live record.
    pub async fn get<R: Record>(&self, org_id: &str, id: &str) -> Result<Versioned<R>> {
        let row = sqlx::query(sql(format!(
            "SELECT {} FROM {} WHERE org_id = $1 AND id = $2",
            select_columns::<R>(),
            R::TABLE
        )))
        .bind(org_id)
        .bind(id)
        .fetch_optional(&mut *self.reader().await?)
        .await?
        .ok_or(StoreError::NotFound)?;
        if row.try_get::<i64, _>("deleted")? == 1 {
            return Err(StoreError::Gone);
        }
        versioned(&row)
    }

    /// Versions newest first.
    pub async fn history<R: Record>(&self, org_id: &str, id: &str) -> Result<Vec<HistoryEntry<R>>> {
        let rows = sqlx::query(
            "SELECT version, changed_at_us, changed_by, deleted, data FROM record_history \
             WHERE org_id = $1 AND record_type = $2 AND record_id = $3 ORDER BY version DESC",
        )
        .bind(org_id)
        .bind(R::KIND)
        .bind(id)
        .fetch_all(&mut *self.reader().await?)
        .await?;
        rows.iter()
            .map(|row| {
                let data: String = row.try_get("data")?;
                Ok(HistoryEntry {
                    version: row.try_get("version")?,
                    changed_at_us: row.try_get("changed_at_us")?,
                    changed_by: row.try_get("changed_by")?,
                    deleted: row.try_get::<i64, _>("deleted")? == 1,
                    value: serde_json::from_str(&data).map_err(|e| {
                        StoreError::Corrupt(format!("{} {id} history: {e}", R::KIND))
                    })?,
                })
            })
            .collect()
    }

    /// Live records matching every filter, ordered by [`Record::SORT`], with
    /// the total number of matches.
    pub async fn search<R: Record>(
        &self,
        org_id: &str,
        filters: &[Filter],
        page: Page,
    ) -> Result<(Vec<Versioned<R>>, i64)> {
        let mut clauses = vec!["org_id = $1".to_string(), "deleted = 0".to_string()];
        let mut binds: Vec<Val> = vec![Val::from(org_id)];
        for f in filters {
            match f {
                Filter::Eq(col, v) => {
                    binds.push(v.clone());
                    clauses.push(format!("{col} = ${}", binds.len()));
                }
                Filter::Prefix(cols, text) => {
                    binds.push(Val::from(format!("{}%", escape_like(&text.to_lowercase()))));
                    let n = binds.len();
                    let any: Vec<String> = cols
                        .iter()
                        .map(|c| format!("lower({c}) LIKE ${n} ESCAPE '\\'"))
                        .collect();
                    clauses.push(format!("({})", any.join(" OR ")));
                }
                Filter::Id(id) => {
                    binds.push(Val::from(id.as_str()));
                    clauses.push(format!("id = ${}", binds.len()));
                }
                Filter::UpdatedAtLeast(t) => {
                    binds.push(Val::Int(Some(*t)));
                    clauses.push(format!("updated_at_us >= ${}", binds.len()));
                }
                Filter::AtLeast(col, v) => {
                    binds.push(v.clone());
                    clauses.push(format!("{col} >= ${}", binds.len()));
                }
                Filter::Below(col, v) => {
                    binds.push(v.clone());
                    clauses.push(format!("{col} < ${}", binds.len()));
                }
                Filter::UpdatedBefore(t) => {
                    binds.push(Val::Int(Some(*t)));
                    clauses.push(format!("updated_at_us < ${}", binds.len()));
                }
                Filter::HasKey(key) => {
                    binds.push(Val::from(key.as_str()));
                    clauses.push(format!(
                        "id IN (SELECT record_id FROM search_keys WHERE org_id = $1 AND record_type = '{}' AND key = ${})",
                        R::KIND,
                        binds.len()
                    ));
                }
                Filter::HasKeyPrefix(prefix) => {
                    binds.push(Val::from(prefix.as_str()));
                    binds.push(Val::from(prefix_end(prefix)));
                    clauses.push(format!(
                        "id IN (SELECT record_id FROM search_keys WHERE org_id = $1 AND record_type = '{}' \
                         AND key >= ${} AND key < ${})",
                        R::KIND,
                        binds.len() - 1,
                        binds.len()
                    ));
                }
            }
        }
        let where_sql = clauses.join(" AND ");
        let count_sql = format!("SELECT COUNT(*) AS n FROM {} WHERE {where_sql}", R::TABLE);
        let list_sql = format!(
            "SELECT {} FROM {} WHERE {where_sql} ORDER BY {}, id LIMIT {} OFFSET {}",
            select_columns::<R>(),
            R::TABLE,
            R::SORT,
            page.count.clamp(0, 1000),
            page.offset.max(0)
        );
        let mut count = sqlx::query(sql(count_sql));
        let mut list = sqlx::query(sql(list_sql));
        for v in &binds {
            count = bind(count, v);
            list = bind(list, v);
        }
        let total: i64 = count
            .fetch_one(&mut *self.reader().await?)
            .await?
            .try_get("n")?;
        let rows = if page.count > 0 {
            list.fetch_all(&mut *self.reader().await?).await?
        } else {
            Vec::new()
        };
        let records = rows.iter().map(versioned).collect::<Result<_>>()?;
        Ok((records, total))
    }
}

/// The ids having any of `keys` ($4 on): `$1` organization, `$2` record
/// type, `$3` limit. The limit is bound, not written in: one statement per
/// key count.
fn ids_by_keys_sql(keys: usize) -> String {
    let placeholders: Vec<String> = (0..keys).map(|i| format!("${}", i + 4)).collect();
    format!(
        "SELECT DISTINCT record_id FROM search_keys WHERE org_id = $1 AND record_type = $2 \
         AND key IN ({}) LIMIT $3",
        placeholders.join(", "),
    )
}

/// The ids having a key in `[$3, $4)`, in key order (exact keys before
/// longer ones), at most `$5`.
const IDS_BY_KEY_RANGE_SQL: &str = "SELECT record_id FROM search_keys WHERE org_id = $1 \
     AND record_type = $2 AND key >= $3 AND key < $4 ORDER BY key, record_id LIMIT $5";

/// The live records whose ids `ids_sql` selects, read in the same statement
/// (one round trip to the database instead of two).
fn records_with_ids_sql<R: Record>(ids_sql: &str) -> String {
    format!(
        "SELECT {} FROM {} WHERE org_id = $1 AND deleted = 0 AND id IN ({ids_sql})",
        select_columns::<R>(),
        R::TABLE
    )
}

impl Db {
    /// Ids of live records having any of `keys`, at most `limit`.
    pub async fn ids_by_keys<R: Record>(
        &self,
        org_id: &str,
        keys: &[String],
        limit: i64,
    ) -> Result<Vec<String>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut q = sqlx::query_as::<_, (String,)>(sql(ids_by_keys_sql(keys.len())))
            .bind(org_id)
            .bind(R::KIND)
            .bind(limit.clamp(1, 10_000));
        for k in keys {
            q = q.bind(k.clone());
        }
        Ok(q.fetch_all(&mut *self.reader().await?)
            .await?
            .into_iter()
            .map(|(id,)| id)
            .collect())
    }

    /// Live records having any of `keys`, at most `limit`.
    pub async fn records_by_keys<R: Record>(
        &self,
        org_id: &str,
        keys: &[String],
        limit: i64,
    ) -> Result<Vec<Versioned<R>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut q = sqlx::query(sql(records_with_ids_sql::<R>(&ids_by_keys_sql(keys.len()))))
            .bind(org_id)
            .bind(R::KIND)
            .bind(limit.clamp(1, 10_000));
        for k in keys {
            q = q.bind(k.clone());
        }
        q.fetch_all(&mut *self.reader().await?)
            .await?
            .iter()
            .map(versioned)
            .collect()
    }

    /// Ids of live records having a key that starts with `prefix`, in key
    /// order (so exact keys come before longer ones), at most `limit`.
    pub async fn ids_by_key_prefix<R: Record>(
        &self,
        org_id: &str,
        prefix: &str,
        limit: i64,
    ) -> Result<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as(IDS_BY_KEY_RANGE_SQL)
            .bind(org_id)
            .bind(R::KIND)
            .bind(prefix)
            .bind(prefix_end(prefix))
            .bind(limit.clamp(1, 10_000))
            .fetch_all(&mut *self.reader().await?)
            .await?;
        let mut ids: Vec<String> = rows.into_iter().map(|(id,)| id).collect();
        let mut seen = std::collections::HashSet::new();
        ids.retain(|id| seen.insert(id.clone()));
        Ok(ids)
    }

    /// Live records having a key that starts with `prefix`, those with the
    /// exact key and the shortest keys first in the limit.
    pub async fn records_by_key_prefix<R: Record>(
        &self,
        org_id: &str,
        prefix: &str,
        limit: i64,
    ) -> Result<Vec<Versioned<R>>> {
        sqlx::query(sql(records_with_ids_sql::<R>(IDS_BY_KEY_RANGE_SQL)))
            .bind(org_id)
            .bind(R::KIND)
            .bind(prefix)
            .bind(prefix_end(prefix))
            .bind(limit.clamp(1, 10_000))
            .fetch_all(&mut *self.reader().await?)
            .await?
            .iter()
            .map(versioned)
            .collect()
    }

    /// The live records with these ids (missing and deleted ones left out).
    pub async fn get_many<R: Record>(
        &self,
        org_id: &str,
        ids: &[String],
    ) -> Result<Vec<Versioned<R>>> {
        self.records_where_in::<R>(org_id, "id", ids).await
    }

    /// The current records whose `column` holds one of `values` (a column
    /// the table indexes after `org_id`), in no particular order.
    pub async fn records_where_in<R: Record>(
        &self,
        org_id: &str,
        column: &'static str,
        values: &[String],
    ) -> Result<Vec<Versioned<R>>> {
        let mut found = Vec::with_capacity(values.len());
        for chunk in values.chunks(GET_MANY_CHUNK) {
            let placeholders: Vec<String> =
                (0..GET_MANY_CHUNK).map(|i| format!("${}", i + 2)).collect();
            let mut q = sqlx::query(sql(format!(
                "SELECT {} FROM {} WHERE org_id = $1 AND deleted = 0 AND {column} IN ({})",
                select_columns::<R>(),
                R::TABLE,
                placeholders.join(", ")
            )))
            .bind(org_id);
            // Always GET_MANY_CHUNK values (the last repeated): one statement
            // shape, prepared once per connection and then reused.
            for i in 0..GET_MANY_CHUNK {
                q = q.bind(chunk[i.min(chunk.len() - 1)].clone());
            }
            for row in q.fetch_all(&mut *self.reader().await?).await? {
                found.push(versioned(&row)?);
            }
        }
        Ok(found)
    }
}

/// The smallest string greater than every string starting with `prefix`.
fn prefix_end(prefix: &str) -> String {
    let mut end = prefix.to_string();
    end.push(char::MAX);
    end
}

fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}
