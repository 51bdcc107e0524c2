use crate::db::{now_us, sql};
use crate::{Db, Result, StoreError, WriteTx};
use carefront_domain::audit::{
    Action, AuditEntry, AuditEvent, ChainBreak, ChainVerifier, GENESIS_HASH, Outcome,
};
use sqlx::Row;
use sqlx::any::AnyRow;

const EVENT_COLUMNS: &str = "org_id, seq, at_us, actor_id, actor_name, role, action, \
    resource_type, resource_id, patient_id, client_addr, outcome, detail, prev_hash, hash";

/// Rows per INSERT statement (15 parameters each). SQLite finds each bound
/// parameter by a walk over the statement's parameters, so a statement's
/// cost grows with the square of its width: 200 rows (3,000 parameters) made
/// the single writer the bottleneck of every busy search.
const EVENTS_PER_INSERT: usize = 16;

impl WriteTx {
    /// Appends an event to the organization's chain inside this transaction.
    pub async fn audit(&mut self, entry: AuditEntry) -> Result<AuditEvent> {
        let mut events = self.audit_many(vec![entry]).await?;
        Ok(events.pop().expect("one entry gives one event"))
    }

    /// Appends events in order with one claim on the chain head: the UPDATE
    /// on the head row serializes appenders (across servers too), and
    /// reserves `entries.len()` sequence numbers at once.
    pub async fn audit_many(&mut self, entries: Vec<AuditEntry>) -> Result<Vec<AuditEvent>> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let count = i64::try_from(entries.len()).unwrap_or(i64::MAX);
        // One statement takes the sequence numbers, and starts the chain
        // at its genesis for an organization's first events: each
        // statement of the booking writer's round is two hand-offs between
        // threads on SQLite. On PostgreSQL the row stays locked until
        // commit, so chains are appended in turn.
        let (last_seq, mut prev_hash): (i64, String) = sqlx::query_as(
            "INSERT INTO audit_head (org_id, seq, hash) VALUES ($1, $2, $3) \
             ON CONFLICT (org_id) DO UPDATE SET seq = audit_head.seq + $2 \
             RETURNING seq, hash",
        )
        .bind(&self.org_id)
        .bind(count)
        .bind(GENESIS_HASH)
        .fetch_one(&mut *self.tx)
        .await?;
        let at = now_us();
        let events: Vec<AuditEvent> = entries
            .into_iter()
            .zip(last_seq - count + 1..)
            .map(|(entry, seq)| {
                let event = AuditEvent::chain(&self.org_id, seq, at, entry, &prev_hash);
                prev_hash = event.hash.clone();
                event
            })
            .collect();
        for chunk in events.chunks(EVENTS_PER_INSERT) {
            let rows: Vec<String> = (0..chunk.len())
                .map(|r| {
                    let cols: Vec<String> = (1..=15).map(|c| format!("${}", r * 15 + c)).collect();
                    format!("({})", cols.join(", "))
                })
                .collect();
            let mut q = sqlx::query(sql(format!(
                "INSERT INTO audit_events ({EVENT_COLUMNS}) VALUES {}",
                rows.join(", ")
            )));
            for event in chunk {
                let e = &event.entry;
                q = q
                    .bind(event.org_id.clone())
                    .bind(event.seq)
                    .bind(event.at_us)
                    .bind(e.actor_id.clone())
                    .bind(e.actor_name.clone())
                    .bind(e.role.clone())
                    .bind(e.action.code())
                    .bind(e.resource_type.clone())
                    .bind(e.resource_id.clone())
                    .bind(e.patient_id.clone())
                    .bind(e.client_addr.clone())
                    .bind(e.outcome.code())
                    .bind(e.detail.clone())
                    .bind(event.prev_hash.clone())
                    .bind(event.hash.clone());
            }
            q.execute(&mut *self.tx).await?;
        }
        sqlx::query("UPDATE audit_head SET hash = $2 WHERE org_id = $1")
            .bind(&self.org_id)
            .bind(&prev_hash)
            .execute(&mut *self.tx)
            .await?;
        Ok(events)
    }
}

/// Filters of the auditor's event list; all optional, combined with AND.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor_name: Option<String>,
    pub patient_id: Option<String>,
    pub action: Option<Action>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub from_us: Option<i64>,
    pub until_us: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditStats {
    pub verified: i64,
}

fn event_from_row(row: &AnyRow) -> Result<AuditEvent> {
    let text = |c: &str| row.try_get::<Option<String>, _>(c);
    let action: String = row.try_get("action")?;
    let outcome: String = row.try_get("outcome")?;
    Ok(AuditEvent {
        org_id: row.try_get("org_id")?,
        seq: row.try_get("seq")?,
        at_us: row.try_get("at_us")?,
        entry: AuditEntry {
            actor_id: text("actor_id")?,
            actor_name: row.try_get("actor_name")?,
            role: text("role")?,
            action: action.parse().map_err(StoreError::Corrupt)?,
            resource_type: text("resource_type")?,
            resource_id: text("resource_id")?,
            patient_id: text("patient_id")?,
            client_addr: text("client_addr")?,
            outcome: outcome.parse::<Outcome>().map_err(StoreError::Corrupt)?,
            detail: text("detail")?,
        },
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
}

impl Db {
    /// Appends one event in its own transaction (reads, sign-in failures).
    pub async fn audit(&self, org_id: &str, entry: AuditEntry) -> Result<AuditEvent> {
        let mut tx = self.begin(org_id).await?;
        let event = tx.audit(entry).await?;
        tx.commit().await?;
        Ok(event)
    }

    /// Newest first, with the total count of matching events.
    pub async fn audit_events(
        &self,
        org_id: &str,
        filter: &AuditFilter,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<AuditEvent>, i64)> {
        let mut clauses = vec!["org_id = $1".to_string()];
        let mut texts: Vec<String> = vec![org_id.to_string()];
        let mut ints: Vec<(usize, i64)> = Vec::new();
        let mut add_text = |col: &str, value: &Option<String>, clauses: &mut Vec<String>| {
            if let Some(v) = value {
                texts.push(v.clone());
                clauses.push(format!("{col} = ${}", texts.len()));
            }
        };
        add_text("actor_name", &filter.actor_name, &mut clauses);
        add_text("patient_id", &filter.patient_id, &mut clauses);
        add_text(
            "action",
            &filter.action.map(|a| a.code().to_string()),
            &mut clauses,
        );
        add_text("resource_type", &filter.resource_type, &mut clauses);
        add_text("resource_id", &filter.resource_id, &mut clauses);
        let mut n = texts.len();
        if let Some(from) = filter.from_us {
            n += 1;
            clauses.push(format!("at_us >= ${n}"));
            ints.push((n, from));
        }
        if let Some(until) = filter.until_us {
            n += 1;
            clauses.push(format!("at_us < ${n}"));
            ints.push((n, until));
        }
        let where_sql = clauses.join(" AND ");
        let count_sql = format!("SELECT COUNT(*) FROM audit_events WHERE {where_sql}");
        let list_sql = format!(
            "SELECT {EVENT_COLUMNS} FROM audit_events WHERE {where_sql} \
             ORDER BY seq DESC LIMIT {} OFFSET {}",
            limit.clamp(1, 10_000),
            offset.max(0)
        );
        let mut count = sqlx::query_as::<_, (i64,)>(sql(count_sql));
        let mut list = sqlx::query(sql(list_sql));
        for t in &texts {
            count = count.bind(t.clone());
            list = list.bind(t.clone());
        }
        for (_, i) in &ints {
            count = count.bind(*i);
            list = list.bind(*i);
        }
        let (total,) = count.fetch_one(&mut *self.reader().await?).await?;
        let rows = list.fetch_all(&mut *self.reader().await?).await?;
        let events = rows.iter().map(event_from_row).collect::<Result<_>>()?;
        Ok((events, total))
    }

    pub async fn audit_event(&self, org_id: &str, seq: i64) -> Result<AuditEvent> {
        let row = sqlx::query(sql(format!(
            "SELECT {EVENT_COLUMNS} FROM audit_events WHERE org_id = $1 AND seq = $2"
        )))
        .bind(org_id)
        .bind(seq)
        .fetch_optional(&mut *self.reader().await?)
        .await?
        .ok_or(StoreError::NotFound)?;
        event_from_row(&row)
    }

    /// Verifies an organization's whole chain in pages, calling `progress`
    /// with the count verified so far.
    pub async fn verify_audit_chain(
        &self,
        org_id: &str,
        mut progress: impl FnMut(i64),
    ) -> Result<Result<AuditStats, ChainBreak>> {
        let head: Option<(i64, String)> =
            sqlx::query_as("SELECT seq, hash FROM audit_head WHERE org_id = $1")
                .bind(org_id)
                .fetch_optional(&mut *self.reader().await?)
                .await?;
        let (head_seq, head_hash) = head.unwrap_or((0, GENESIS_HASH.to_string()));
        let mut verifier = ChainVerifier::default();
        let mut after = 0i64;
        loop {
            let rows = sqlx::query(sql(format!(
                "SELECT {EVENT_COLUMNS} FROM audit_events WHERE org_id = $1 AND seq > $2 \
                 ORDER BY seq LIMIT 5000"
            )))
            .bind(org_id)
            .bind(after)
            .fetch_all(&mut *self.reader().await?)
            .await?;
            if rows.is_empty() {
                break;
            }
            for row in &rows {
                let event = match event_from_row(row) {
                    Ok(e) => e,
                    Err(StoreError::Corrupt(reason)) => {
                        let seq = row.try_get("seq").unwrap_or(after + 1);
                        return Ok(Err(ChainBreak { seq, reason }));
                    }
                    Err(e) => return Err(e),
                };
                if let Err(brk) = verifier.check(&event) {
                    return Ok(Err(brk));
                }
                after = event.seq;
            }
            progress(after);
        }
        Ok(verifier
            .finish(head_seq, &head_hash)
            .map(|verified| AuditStats { verified }))
    }
}
