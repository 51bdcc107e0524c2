//! Bulk writes for imports and generated datasets: many records per
//! statement, inside the caller's [`WriteTx`], through the same SQL on both
//! databases.
//!
//! Each statement carries many rows (multi-row `INSERT`, a `VALUES` list
//! joined in `UPDATE ... FROM`). Values shared by every row (organization,
//! record type, timestamp, author) are bound once and referred to by number
//! from each row. Records, their search keys and their history rows are
//! written exactly as [`WriteTx::create`] and [`WriteTx::update`] write them
//! one by one, so readers cannot tell the two paths apart.
//!
//! Statements are built (values encoded, search keys and history JSON
//! computed) on a blocking thread while the previous ones execute, so the
//! database and the CPU work overlap.

use crate::db::{Backend, Query, Shape, now_us, sql};
use crate::patients::format_mrn;
use crate::records::{Record, Val, select_columns, versioned};
use crate::{Result, StoreError, WriteTx};
use carefront_domain::directory::Versioned;
use carefront_domain::patient::Patient;
use std::collections::{HashMap, HashSet};
use std::fmt::Write;
use tokio::sync::mpsc;

/// Key rows removed per `DELETE`: an `OR` of exact primary keys, which both
/// databases answer with one index seek per term.
const KEY_DELETES_PER_STATEMENT: usize = 64;
/// Framing per bound value in a PostgreSQL Bind message (length, format).
const PER_VALUE: usize = 6;

/// How wide statements are, and how many are built ahead of the one
/// executing.
#[derive(Debug, Clone, Copy)]
struct Limits {
    /// Numbered parameters per statement. Both databases allow far more
    /// (SQLite 32,766, PostgreSQL 65,535); a few hundred or thousand keep
    /// statements few while each stays one of a handful of prepared shapes.
    params: usize,
    /// Bytes of bound values per statement.
    bytes: usize,
    /// Statements built ahead of the one executing.
    ahead: usize,
}

/// PostgreSQL: sqlx 0.9.0 no longer sets TCP_NODELAY: over TLS, a message
/// larger than one TLS record (16 KiB) leaves in several writes, and the
/// last one waits about 40 ms for the server's delayed acknowledgement
/// (launchbadge/sqlx#4335). Statements below one record avoid that stall.
const NARROW: Limits = Limits {
    params: 256,
    bytes: 12 * 1024,
    ahead: 32,
};

/// SQLite runs in this process, on its connection's own thread: every
/// statement is handed to that thread and its answer waited for. With
/// PostgreSQL's narrow statements an import of 200,000 rows made 50,000
/// such hand-offs, about four context switches each, and the thread sat
/// idle in between; wide statements make a few thousand. Building ahead
/// lets a batch's records execute while its search keys are computed
/// (they are sorted before the first is sent).
const WIDE: Limits = Limits {
    params: 2048,
    bytes: 128 * 1024,
    ahead: 64,
};

impl Limits {
    fn of(backend: Backend) -> Limits {
        match backend {
            Backend::Sqlite => WIDE,
            Backend::Postgres => NARROW,
        }
    }
}

/// Hands `rows` to `each` in statement-sized chunks: as many rows as fit in
/// `limits` (`size` is a row's bytes), taken as they are when a full
/// statement's worth fits, else rounded down to a power of two. Statement
/// texts thus take a few shapes, each prepared once per connection and then
/// reused from the statement cache. Rows are drawn from the iterator only
/// as their statement comes up, so encoding them (values, JSON) goes on
/// while the first statements already execute. Stops early, returning
/// false, when `each` does.
fn for_each_chunk<T>(
    rows: impl IntoIterator<Item = T>,
    limits: Limits,
    fixed: usize,
    per_row: usize,
    size: impl Fn(&T) -> usize,
    mut each: impl FnMut(std::vec::Drain<'_, T>) -> bool,
) -> bool {
    let max = (limits.params.saturating_sub(fixed) / per_row).max(1);
    let mut rows = rows.into_iter();
    let mut pending: Vec<T> = Vec::with_capacity(max);
    let mut bytes: Vec<usize> = Vec::with_capacity(max);
    loop {
        pending.extend(rows.by_ref().take(max - pending.len()));
        if pending.is_empty() {
            return true;
        }
        bytes.extend(
            pending[bytes.len()..]
                .iter()
                .map(|r| size(r) + PER_VALUE * per_row),
        );
        let mut n = 0;
        let mut total = 0;
        while n < pending.len() && n < max {
            if n > 0 && total + bytes[n] > limits.bytes {
                break;
            }
            total += bytes[n];
            n += 1;
        }
        if n < max {
            n = 1usize << (usize::BITS - 1 - n.leading_zeros());
        }
        bytes.drain(..n);
        if !each(pending.drain(..n)) {
            return false;
        }
    }
}

/// `rows` in chunks of a few shapes for a statement of this backend with
/// `fixed` parameters and `per_row` per row (see [`for_each_chunk`]), so
/// that statements sized by their rows keep being reused from the
/// connection's statement cache instead of prepared anew.
pub(crate) fn shaped_chunks<T>(
    rows: &[T],
    backend: Backend,
    fixed: usize,
    per_row: usize,
) -> Vec<&[T]> {
    statement_chunks(rows, Limits::of(backend), fixed, per_row, |_| 0)
}

impl WriteTx {
    /// The rows of `statement` for every id: its text (from
    /// `statement(list)`, `$1` the organization, `list` the ids'
    /// parameters) run once per chunk of shaped size.
    pub(crate) async fn fetch_for_ids<T>(
        &mut self,
        statement: impl Fn(&str) -> String,
        ids: &[&str],
    ) -> Result<Vec<T>>
    where
        T: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow>,
    {
        let mut found = Vec::new();
        for chunk in shaped_chunks(ids, self.backend, 1, 1) {
            let rows = self
                .for_ids(&statement, chunk)
                .fetch_all(&mut *self.tx)
                .await?;
            for row in &rows {
                found.push(T::from_row(row)?);
            }
        }
        Ok(found)
    }

    /// [`WriteTx::fetch_for_ids`] for a statement without rows; returns
    /// the rows it affected.
    pub(crate) async fn execute_for_ids(
        &mut self,
        statement: impl Fn(&str) -> String,
        ids: &[&str],
    ) -> Result<u64> {
        let mut affected = 0;
        for chunk in shaped_chunks(ids, self.backend, 1, 1) {
            let q = self.for_ids(&statement, chunk);
            affected += q.execute(&mut *self.tx).await?.rows_affected();
        }
        Ok(affected)
    }

    fn for_ids(&self, statement: impl Fn(&str) -> String, ids: &[&str]) -> Query {
        let mut list = String::new();
        placeholders(&mut 1, ids.len(), &mut list);
        let mut values = vec![Val::from(self.org_id.as_str())];
        values.extend(ids.iter().map(|id| Val::from(*id)));
        Shape::new(self.backend, statement(&list)).bind(values)
    }
}

/// `rows` split as [`for_each_chunk`] splits them.
fn statement_chunks<T>(
    rows: &[T],
    limits: Limits,
    fixed: usize,
    per_row: usize,
    size: impl Fn(&T) -> usize,
) -> Vec<&[T]> {
    let mut lengths = Vec::new();
    for_each_chunk(
        rows,
        limits,
        fixed,
        per_row,
        |r| size(r),
        |chunk| {
            lengths.push(chunk.len());
            true
        },
    );
    let mut rest = rows;
    lengths
        .into_iter()
        .map(|n| {
            let (chunk, tail) = rest.split_at(n);
            rest = tail;
            chunk
        })
        .collect()
}

fn val_len(v: &Val) -> usize {
    match v {
        Val::Text(t) => t.as_ref().map_or(0, String::len),
        Val::Int(_) => 8,
    }
}

/// `$a, $b, ...` for the next `n` parameters after `*next`.
pub(crate) fn placeholders(next: &mut usize, n: usize, out: &mut String) {
    for i in 0..n {
        *next += 1;
        let _ = write!(out, "{}${}", if i == 0 { "" } else { ", " }, *next);
    }
}

/// Statement texts by shape, built once per call.
struct Texts {
    backend: Backend,
    shapes: HashMap<(u8, usize), Shape>,
}

impl Texts {
    fn new(backend: Backend) -> Texts {
        Texts {
            backend,
            shapes: HashMap::new(),
        }
    }

    /// The statement of `kind` for `rows` rows; `build` gets the backend's
    /// [`insert_into`] and the row count.
    fn get(
        &mut self,
        kind: u8,
        rows: usize,
        build: impl FnOnce(&'static str, usize) -> String,
    ) -> Shape {
        let backend = self.backend;
        self.shapes
            .entry((kind, rows))
            .or_insert_with(|| Shape::new(backend, build(insert_into(backend), rows)))
            .clone()
    }
}

/// How a bulk statement starts inserting. Inside a transaction SQLite keeps
/// a statement journal for a multi-row `INSERT` (a copy of every page the
/// statement touches), so that a failing row can undo the rows before it
/// in the same statement. A failed bulk write fails its whole transaction
/// anyway (callers roll it back, as after a failure between statements),
/// so `OR FAIL`, which stops at the failing row without undoing the
/// statement, needs no journal: a million-patient import's writer did a
/// sixth of its work copying pages to it. PostgreSQL has no such clause.
fn insert_into(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "INSERT OR FAIL INTO",
        Backend::Postgres => "INSERT INTO",
    }
}

fn insert_records_sql<R: Record>(insert: &str, rows: usize) -> String {
    let cols = R::COLUMNS;
    let mut text = format!(
        "{insert} {} (org_id, id, version, updated_at_us, {}) VALUES ",
        R::TABLE,
        cols.join(", ")
    );
    let mut next = 2;
    for i in 0..rows {
        text.push_str(if i == 0 { "($1, " } else { ", ($1, " });
        placeholders(&mut next, 1, &mut text);
        text.push_str(", 1, $2, ");
        placeholders(&mut next, cols.len(), &mut text);
        text.push(')');
    }
    text
}

fn update_records_sql<R: Record>(rows: usize) -> String {
    let cols = R::COLUMNS;
    let table = R::TABLE;
    let mut text = format!("WITH v(id, old_version, {}) AS (VALUES ", cols.join(", "));
    let mut next = 2;
    for i in 0..rows {
        text.push_str(if i == 0 { "(" } else { ", (" });
        placeholders(&mut next, 2 + cols.len(), &mut text);
        text.push(')');
    }
    let sets: Vec<String> = cols.iter().map(|c| format!("{c} = v.{c}")).collect();
    let _ = write!(
        text,
        ") UPDATE {table} SET version = v.old_version + 1, updated_at_us = $2, {} \
         FROM v WHERE {table}.org_id = $1 AND {table}.id = v.id \
         AND {table}.version = v.old_version AND {table}.deleted = 0",
        sets.join(", ")
    );
    text
}

fn insert_keys_sql(insert: &str, rows: usize) -> String {
    let mut text = format!("{insert} search_keys (org_id, record_type, key, record_id) VALUES ");
    let mut next = 2;
    for i in 0..rows {
        text.push_str(if i == 0 { "($1, $2, " } else { ", ($1, $2, " });
        placeholders(&mut next, 2, &mut text);
        text.push(')');
    }
    text.push_str(" ON CONFLICT DO NOTHING");
    text
}

fn delete_keys_sql(rows: usize) -> String {
    let mut text =
        String::from("DELETE FROM search_keys WHERE org_id = $1 AND record_type = $2 AND (");
    for i in 0..rows {
        let _ = write!(
            text,
            "{}(key = ${} AND record_id = ${})",
            if i == 0 { "" } else { " OR " },
            3 + 2 * i,
            4 + 2 * i
        );
    }
    text.push(')');
    text
}

fn insert_history_sql(insert: &str, rows: usize) -> String {
    let mut text = format!(
        "{insert} record_history \
         (org_id, record_type, record_id, version, changed_at_us, changed_by, deleted, data) VALUES ",
    );
    let mut next = 4;
    for i in 0..rows {
        text.push_str(if i == 0 { "($1, $2, " } else { ", ($1, $2, " });
        placeholders(&mut next, 2, &mut text);
        text.push_str(", $3, $4, 0, ");
        placeholders(&mut next, 1, &mut text);
        text.push(')');
    }
    text
}

/// What a failing statement was doing, to name the failure.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// Writing record rows of this kind: a unique-key violation is a conflict.
    Records(&'static str),
    /// Updating records: fewer rows changed than sent means some were
    /// changed or deleted meanwhile.
    Update(&'static str, u64),
    Other,
}

/// The statements a bulk write sends, built on a blocking thread.
struct Emit {
    out: mpsc::Sender<(Query, Step)>,
    org_id: String,
    texts: Texts,
    limits: Limits,
}

impl Emit {
    /// False when the executing side has stopped (a statement failed).
    fn send(&self, q: Query, step: Step) -> bool {
        self.out.blocking_send((q, step)).is_ok()
    }

    fn keys<R: Record>(&mut self, mut keys: Vec<(String, &str)>) -> bool {
        keys.sort_unstable();
        for_each_chunk(
            keys,
            self.limits,
            2,
            2,
            |(k, id)| k.len() + id.len(),
            |chunk| {
                let shape = self.texts.get(1, chunk.len(), insert_keys_sql);
                let mut values = vec![Val::from(self.org_id.as_str()), Val::from(R::KIND)];
                for (key, id) in chunk {
                    values.push(Val::from(key));
                    values.push(Val::from(id));
                }
                self.send(shape.bind(values), Step::Other)
            },
        )
    }

    fn deleted_keys<R: Record>(&mut self, keys: &[(String, &str)]) -> bool {
        for chunk in keys.chunks(KEY_DELETES_PER_STATEMENT) {
            // 64 pairs of a key and an id stay far below either byte limit.
            let shape = self.texts.get(2, chunk.len(), |_, n| delete_keys_sql(n));
            let mut values = vec![Val::from(self.org_id.as_str()), Val::from(R::KIND)];
            for (key, id) in chunk {
                values.push(Val::from(key.as_str()));
                values.push(Val::from(*id));
            }
            if !self.send(shape.bind(values), Step::Other) {
                return false;
            }
        }
        true
    }

    /// One history row per `(id, version, value)`, all at `at` by `changed_by`.
    fn history<R: Record>(
        &mut self,
        rows: &[(&str, i64, &R)],
        at: i64,
        changed_by: &str,
    ) -> Result<bool> {
        let mut failed = None;
        let rows =
            rows.iter()
                .map_while(|(id, version, value)| match serde_json::to_string(value) {
                    Ok(data) => Some((*id, *version, data)),
                    Err(e) => {
                        failed = Some(StoreError::Corrupt(format!(
                            "cannot serialize {}: {e}",
                            R::KIND
                        )));
                        None
                    }
                });
        let sent = for_each_chunk(
            rows,
            self.limits,
            4,
            3,
            |(id, _, data)| id.len() + 8 + data.len(),
            |chunk| {
                let shape = self.texts.get(3, chunk.len(), insert_history_sql);
                let mut values = vec![
                    Val::from(self.org_id.as_str()),
                    Val::from(R::KIND),
                    Val::Int(Some(at)),
                    Val::from(changed_by),
                ];
                for (id, version, data) in chunk {
                    values.push(Val::from(id));
                    values.push(Val::Int(Some(version)));
                    values.push(Val::from(data));
                }
                self.send(shape.bind(values), Step::Other)
            },
        );
        match failed {
            Some(e) => Err(e),
            None => Ok(sent),
        }
    }
}

/// Every `(key, record id)` of `rows`.
fn keys_of<R: Record>(rows: &[(String, R)]) -> Vec<(String, &str)> {
    rows.iter()
        .flat_map(|(id, r)| r.search_keys().into_iter().map(move |k| (k, id.as_str())))
        .collect()
}

fn create_statements<R: Record>(
    emit: &mut Emit,
    rows: &[(String, R)],
    at: i64,
    changed_by: &str,
) -> Result<()> {
    let values = rows.iter().map(|(id, r)| (id.as_str(), r.values()));
    let sent = for_each_chunk(
        values,
        emit.limits,
        2,
        1 + R::COLUMNS.len(),
        |(id, vals)| id.len() + vals.iter().map(val_len).sum::<usize>(),
        |chunk| {
            let shape = emit.texts.get(0, chunk.len(), insert_records_sql::<R>);
            let mut bound = vec![Val::from(emit.org_id.as_str()), Val::Int(Some(at))];
            for (id, vals) in chunk {
                bound.push(Val::from(id));
                bound.extend(vals);
            }
            emit.send(shape.bind(bound), Step::Records(R::KIND))
        },
    );
    if !sent {
        return Ok(());
    }
    if R::KEYED && !emit.keys::<R>(keys_of(rows)) {
        return Ok(());
    }
    let history: Vec<(&str, i64, &R)> = rows.iter().map(|(id, r)| (id.as_str(), 1, r)).collect();
    emit.history(&history, at, changed_by)?;
    Ok(())
}

fn update_statements<R: Record>(
    emit: &mut Emit,
    rows: &[(Versioned<R>, R)],
    at: i64,
    changed_by: &str,
) -> Result<()> {
    let values = rows.iter().map(|(c, v)| (c, v.values()));
    let sent = for_each_chunk(
        values,
        emit.limits,
        2,
        2 + R::COLUMNS.len(),
        |(c, vals)| c.id.len() + 8 + vals.iter().map(val_len).sum::<usize>(),
        |chunk| {
            let n = chunk.len();
            let shape = emit.texts.get(4, n, |_, n| update_records_sql::<R>(n));
            let mut bound = vec![Val::from(emit.org_id.as_str()), Val::Int(Some(at))];
            for (current, vals) in chunk {
                bound.push(Val::from(current.id.as_str()));
                bound.push(Val::Int(Some(current.version)));
                bound.extend(vals);
            }
            emit.send(shape.bind(bound), Step::Update(R::KIND, n as u64))
        },
    );
    if !sent {
        return Ok(());
    }
    if R::KEYED {
        let mut gone: Vec<(String, &str)> = Vec::new();
        let mut added: Vec<(String, &str)> = Vec::new();
        for (current, value) in rows {
            let old: HashSet<String> = current.value.search_keys().into_iter().collect();
            let new: HashSet<String> = value.search_keys().into_iter().collect();
            let id = current.id.as_str();
            gone.extend(old.difference(&new).map(|k| (k.clone(), id)));
            added.extend(new.difference(&old).map(|k| (k.clone(), id)));
        }
        if !emit.deleted_keys::<R>(&gone) || !emit.keys::<R>(added) {
            return Ok(());
        }
    }
    let history: Vec<(&str, i64, &R)> = rows
        .iter()
        .map(|(c, v)| (c.id.as_str(), c.version + 1, v))
        .collect();
    emit.history(&history, at, changed_by)?;
    Ok(())
}

impl crate::Db {
    /// `(key, record id)` of every live record of the organization indexed
    /// under one of `keys` (committed data).
    pub async fn ids_with_keys<R: Record>(
        &self,
        org_id: &str,
        keys: &[String],
    ) -> Result<Vec<(String, String)>> {
        let mut found = Vec::new();
        let mut texts = Texts::new(self.backend());
        for chunk in statement_chunks(keys, Limits::of(self.backend()), 2, 1, String::len) {
            let text = texts.get(0, chunk.len(), |_, n| {
                let mut text = String::from(
                    "SELECT key, record_id FROM search_keys \
                     WHERE org_id = $1 AND record_type = $2 AND key IN (",
                );
                placeholders(&mut 2, n, &mut text);
                text.push(')');
                text
            });
            // Each parameter once, in order: bound in order on both backends.
            let mut q = sqlx::query_as::<_, (String, String)>(sql(text.text))
                .bind(org_id.to_string())
                .bind(R::KIND);
            for k in chunk {
                q = q.bind(k.clone());
            }
            found.extend(q.fetch_all(&mut *self.reader().await?).await?);
        }
        Ok(found)
    }
}

impl WriteTx {
    /// Executes the statements `build` emits (on a blocking thread) in
    /// order, while later ones are being built.
    async fn pipelined<F, T>(&mut self, build: F) -> Result<T>
    where
        F: FnOnce(&mut Emit) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let limits = Limits::of(self.backend);
        let (out, mut statements) = mpsc::channel(limits.ahead);
        let mut emit = Emit {
            out,
            org_id: self.org_id.clone(),
            texts: Texts::new(self.backend),
            limits,
        };
        let builder = tokio::task::spawn_blocking(move || build(&mut emit));
        let mut failure = None;
        while let Some((q, step)) = statements.recv().await {
            match (q.execute(&mut *self.tx).await, step) {
                (Ok(done), Step::Update(kind, sent)) if done.rows_affected() != sent => {
                    failure = Some(StoreError::Conflict(format!(
                        "{} of {sent} {kind} records changed or were deleted meanwhile",
                        sent - done.rows_affected()
                    )));
                }
                (Ok(_), _) => {}
                (Err(e), Step::Records(kind) | Step::Update(kind, _)) => {
                    failure = Some(StoreError::from_write(
                        e,
                        &format!("a {kind} conflicts with an existing record"),
                    ));
                }
                (Err(e), Step::Other) => failure = Some(e.into()),
            }
            if failure.is_some() {
                break;
            }
        }
        // Stops the builder if it is still sending.
        drop(statements);
        let built = builder
            .await
            .map_err(|e| StoreError::Corrupt(format!("building bulk statements failed: {e}")))?;
        match failure {
            Some(e) => Err(e),
            None => built,
        }
    }

    /// Reserves `n` consecutive values of a per-organization counter at once
    /// and returns the first (the next `n - 1` follow it). Other writers get
    /// values after the block; values are never handed out twice.
    pub async fn reserve_counter(&mut self, name: &str, n: i64) -> Result<i64> {
        if n < 1 {
            return Err(StoreError::Conflict(format!(
                "cannot reserve {n} values of counter {name}"
            )));
        }
        // One statement: on PostgreSQL the row stays locked until commit,
        // so blocks are handed out (and become visible) in order.
        let (last,): (i64,) = sqlx::query_as(
            "INSERT INTO org_counters (org_id, name, value) VALUES ($1, $2, $3) \
             ON CONFLICT (org_id, name) DO UPDATE SET value = org_counters.value + $3 \
             RETURNING value",
        )
        .bind(&self.org_id)
        .bind(name)
        .bind(n)
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(last - n + 1)
    }

    /// Creates many records (version 1) with their search keys and history
    /// rows. `rows` are `(id, value)`; values are stored as given (validate
    /// them first). A unique-key collision fails the whole call as
    /// [`StoreError::Conflict`]; roll the transaction back then.
    pub async fn create_many<R: Record>(
        &mut self,
        rows: Vec<(String, R)>,
        changed_by: &str,
    ) -> Result<()> {
        self.create_rows(rows, now_us(), changed_by).await.map(drop)
    }

    /// [`WriteTx::create_many`], handing back the records as stored.
    pub async fn create_versioned<R: Record>(
        &mut self,
        rows: Vec<(String, R)>,
        changed_by: &str,
    ) -> Result<Vec<Versioned<R>>> {
        let at = now_us();
        let rows = self.create_rows(rows, at, changed_by).await?;
        Ok(rows
            .into_iter()
            .map(|(id, value)| Versioned {
                id,
                version: 1,
                updated_at_us: at,
                value,
            })
            .collect())
    }

    /// [`WriteTx::create_many`] at `at`, handing the rows back.
    async fn create_rows<R: Record>(
        &mut self,
        rows: Vec<(String, R)>,
        at: i64,
        changed_by: &str,
    ) -> Result<Vec<(String, R)>> {
        if rows.is_empty() {
            return Ok(rows);
        }
        if R::SCHEDULE_SETUP {
            self.schedule_setup_changed().await?;
        }
        let changed_by = changed_by.to_string();
        self.pipelined(move |emit| {
            create_statements(emit, &rows, at, &changed_by)?;
            Ok(rows)
        })
        .await
    }

    /// Updates many live records at once: each `(current, new)` pair names
    /// the stored version it replaces. Keys are changed by difference (only
    /// keys that appear or disappear are touched) and one history row per
    /// record is added. When any record is no longer at the version given
    /// (changed or deleted meanwhile), fails with [`StoreError::Conflict`];
    /// roll the transaction back then.
    pub async fn update_many<R: Record>(
        &mut self,
        rows: Vec<(Versioned<R>, R)>,
        changed_by: &str,
    ) -> Result<Vec<Versioned<R>>> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let at = now_us();
        let updated: Vec<Versioned<R>> = rows
            .iter()
            .map(|(c, v)| Versioned {
                id: c.id.clone(),
                version: c.version + 1,
                updated_at_us: at,
                value: v.clone(),
            })
            .collect();
        if R::SCHEDULE_SETUP {
            self.schedule_setup_changed().await?;
        }
        let changed_by = changed_by.to_string();
        self.pipelined(move |emit| update_statements(emit, &rows, at, &changed_by))
            .await?;
        Ok(updated)
    }

    /// Writes the search keys of records stored without them (a rebuild).
    pub(crate) async fn insert_keys<R: Record>(&mut self, rows: Vec<(String, R)>) -> Result<()> {
        self.pipelined(move |emit| {
            emit.keys::<R>(keys_of(&rows));
            Ok(())
        })
        .await
    }

    /// Registers many patients, giving those without an MRN the next ones
    /// from one reserved block (in the order given). Returns them as stored.
    pub async fn create_patients(
        &mut self,
        mut rows: Vec<(String, Patient)>,
        changed_by: &str,
    ) -> Result<Vec<(String, Patient)>> {
        let missing = rows.iter().filter(|(_, p)| p.mrn.is_empty()).count();
        if missing > 0 {
            let mut next = self.reserve_counter("mrn", missing as i64).await?;
            for (_, p) in rows.iter_mut().filter(|(_, p)| p.mrn.is_empty()) {
                p.mrn = format_mrn(next);
                next += 1;
            }
        }
        self.create_rows(rows, now_us(), changed_by).await
    }

    /// The live records with these ids, read inside this transaction
    /// (missing and deleted ones left out).
    pub async fn get_many<R: Record>(&mut self, ids: &[String]) -> Result<Vec<Versioned<R>>> {
        let mut found = Vec::with_capacity(ids.len());
        let mut texts = Texts::new(self.backend);
        for chunk in statement_chunks(ids, Limits::of(self.backend), 1, 1, String::len) {
            let text = texts.get(0, chunk.len(), |_, n| {
                let mut text = format!(
                    "SELECT {} FROM {} WHERE org_id = $1 AND deleted = 0 AND id IN (",
                    select_columns::<R>(),
                    R::TABLE
                );
                placeholders(&mut 1, n, &mut text);
                text.push(')');
                text
            });
            // Each parameter once, in order: bound in order on both backends.
            let mut q = sqlx::query(sql(text.text)).bind(self.org_id.clone());
            for id in chunk {
                q = q.bind(id.clone());
            }
            for row in q.fetch_all(&mut *self.tx).await? {
                found.push(versioned(&row)?);
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_take_few_shapes_and_cover_every_row() {
        let rows: Vec<u32> = (0..1000).collect();
        let chunks = statement_chunks(&rows, NARROW, 2, 2, |_| 10);
        assert_eq!(chunks.iter().map(|c| c.len()).sum::<usize>(), 1000);
        assert!(chunks[..7].iter().all(|c| c.len() == 127));
        assert!(chunks[7..].iter().all(|c| c.len().is_power_of_two()));
        assert!(chunks.iter().all(|c| 2 + 2 * c.len() <= NARROW.params));
        assert_eq!(chunks.concat(), rows);
        // Wider rows than the limit still go one per statement.
        assert_eq!(
            statement_chunks(&rows[..3], NARROW, 2, 1000, |_| 1).len(),
            3
        );
        assert!(statement_chunks::<u32>(&[], NARROW, 2, 2, |_| 1).is_empty());
        // SQLite's wide statements take the same few shapes.
        let wide = statement_chunks(&rows, WIDE, 2, 2, |_| 10);
        assert_eq!(wide.concat(), rows);
        assert!(wide.iter().all(|c| 2 + 2 * c.len() <= WIDE.params));
        assert!(wide.iter().all(|c| c.len().is_power_of_two()));
    }

    fn lengths<T>(chunks: Vec<&[T]>) -> Vec<usize> {
        chunks.iter().map(|c| c.len()).collect()
    }

    #[test]
    fn rows_are_drawn_only_as_their_statement_comes_up() {
        let drawn = std::cell::Cell::new(0);
        let rows = (0..1000u32).inspect(|_| drawn.set(drawn.get() + 1));
        let mut first = None;
        for_each_chunk(
            rows,
            NARROW,
            2,
            2,
            |_| 10,
            |chunk| {
                first.get_or_insert((chunk.len(), drawn.get()));
                false
            },
        );
        // One statement's worth (127 rows) was read before it went out.
        assert_eq!(first, Some((127, 127)));
    }

    #[test]
    fn big_rows_make_smaller_statements() {
        let rows: Vec<u32> = (0..100).collect();
        let chunks = lengths(statement_chunks(&rows, NARROW, 4, 3, |_| 1000));
        assert_eq!(chunks.iter().sum::<usize>(), 100);
        assert!(chunks.iter().all(|n| n.is_power_of_two()));
        assert!(
            chunks
                .iter()
                .all(|n| n * (1000 + 3 * PER_VALUE) <= NARROW.bytes)
        );
        // A single row larger than the budget still goes, alone.
        assert_eq!(
            lengths(statement_chunks(&rows[..2], NARROW, 4, 3, |_| NARROW.bytes * 2)),
            vec![1, 1]
        );
    }

    #[test]
    fn placeholders_number_on_from_the_shared_ones() {
        assert_eq!(
            insert_keys_sql("INSERT INTO", 2),
            "INSERT INTO search_keys (org_id, record_type, key, record_id) VALUES \
             ($1, $2, $3, $4), ($1, $2, $5, $6) ON CONFLICT DO NOTHING"
        );
        assert_eq!(
            delete_keys_sql(2),
            "DELETE FROM search_keys WHERE org_id = $1 AND record_type = $2 AND \
             ((key = $3 AND record_id = $4) OR (key = $5 AND record_id = $6))"
        );
    }
}
