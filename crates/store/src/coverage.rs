//! Insurance rows: the payer directory, coverages and card images.
//!
//! Payers have their own table rather than sharing `organizations` with the
//! tenant: a coverage's foreign key can then only name a payer, and the
//! tenant's invariants (`id = org_id`, the sign-in list) stay untouched.
//! Both are served by FHIR as Organization, which is why a payer's
//! [`Record::KIND`] is `Organization`: its history and audit events read as
//! FHIR names them. The two never share an id (the tenant's id is its
//! org_id, which the `payers` table refuses).

use crate::db::{now_us, sql};
use crate::directory::{decode_err, flag};
use crate::records::{Filter, Page, Record, Val};
use crate::{Db, Result, StoreError, WriteTx, new_id};
use carefront_domain::coverage::{
    COMMON_PAYERS, CardSide, Coverage, CoverageOrder, Payer, Subscriber, SubscriberRelationship,
};
use carefront_domain::directory::Versioned;
use jiff::civil::Date;
use sqlx::Row;
use sqlx::any::AnyRow;

impl Record for Payer {
    const KIND: &'static str = "Organization";
    const TABLE: &'static str = "payers";
    const COLUMNS: &'static [&'static str] = &["name", "payer_id", "active"];
    const SORT: &'static str = "name";

    fn values(&self) -> Vec<Val> {
        vec![
            self.name.clone().into(),
            self.payer_id.clone().into(),
            self.active.into(),
        ]
    }

    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Payer {
            name: row.try_get("name")?,
            payer_id: row.try_get("payer_id")?,
            active: flag(row, "active")?,
        })
    }
}

fn date_text(d: Option<Date>) -> Val {
    Val::Text(d.map(|d| d.to_string()))
}

fn date_of(row: &AnyRow, col: &str) -> Result<Option<Date>, sqlx::Error> {
    let text: Option<String> = row.try_get(col)?;
    text.map(|t| {
        t.parse()
            .map_err(|e: jiff::Error| decode_err(col, e.to_string()))
    })
    .transpose()
}

impl Record for Coverage {
    const KIND: &'static str = "Coverage";
    const TABLE: &'static str = "coverages";
    const COLUMNS: &'static [&'static str] = &[
        "patient_id",
        "payer_ref",
        "plan_name",
        "member_id",
        "group_number",
        "relationship",
        "subscriber_given",
        "subscriber_family",
        "subscriber_birth_date",
        "coverage_order",
        "start_date",
        "end_date",
        "active",
    ];
    /// In force first, then primary, secondary, tertiary.
    const SORT: &'static str = "active DESC, coverage_order, updated_at_us DESC";

    fn values(&self) -> Vec<Val> {
        let s = self.subscriber.as_ref();
        vec![
            self.patient_id.clone().into(),
            self.payer_ref.clone().into(),
            self.plan_name.clone().into(),
            self.member_id.clone().into(),
            self.group_number.clone().into(),
            self.relationship.code().into(),
            s.map(|s| s.given.clone()).into(),
            s.map(|s| s.family.clone()).into(),
            date_text(s.and_then(|s| s.birth_date)),
            Val::Int(Some(i64::from(self.order.rank()))),
            date_text(self.start),
            date_text(self.end),
            self.active.into(),
        ]
    }

    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        let relationship: String = row.try_get("relationship")?;
        let rank: i64 = row.try_get("coverage_order")?;
        let given: Option<String> = row.try_get("subscriber_given")?;
        let family: Option<String> = row.try_get("subscriber_family")?;
        let subscriber = match (given, family) {
            (Some(given), Some(family)) => Some(Subscriber {
                given,
                family,
                birth_date: date_of(row, "subscriber_birth_date")?,
            }),
            _ => None,
        };
        Ok(Coverage {
            patient_id: row.try_get("patient_id")?,
            payer_ref: row.try_get("payer_ref")?,
            plan_name: row.try_get("plan_name")?,
            member_id: row.try_get("member_id")?,
            group_number: row.try_get("group_number")?,
            relationship: SubscriberRelationship::from_code(&relationship).ok_or_else(|| {
                decode_err("relationship", format!("unknown code '{relationship}'"))
            })?,
            subscriber,
            order: u8::try_from(rank)
                .ok()
                .and_then(CoverageOrder::from_rank)
                .ok_or_else(|| decode_err("coverage_order", format!("unknown order {rank}")))?,
            start: date_of(row, "start_date")?,
            end: date_of(row, "end_date")?,
            active: flag(row, "active")?,
        })
    }
}

/// The most payers a directory lists at once (search pages stop at 1000).
const ALL: Page = Page {
    offset: 0,
    count: 1000,
};

impl WriteTx {
    /// Adds [`COMMON_PAYERS`] to the organization's payer directory, leaving
    /// out payer IDs it already has (so seeding twice adds nothing). Returns
    /// the number added. Callers audit the seeding in this transaction.
    pub async fn seed_payers(&mut self, changed_by: &str) -> Result<usize> {
        let existing: Vec<(String,)> =
            sqlx::query_as("SELECT payer_id FROM payers WHERE org_id = $1 AND deleted = 0")
                .bind(&self.org_id)
                .fetch_all(&mut *self.tx)
                .await?;
        let mut added = 0;
        for (name, payer_id) in COMMON_PAYERS {
            if existing.iter().any(|(id,)| id == payer_id) {
                continue;
            }
            let payer = Payer {
                name: name.to_string(),
                payer_id: payer_id.to_string(),
                active: true,
            }
            .validate()?;
            self.create(&new_id(), &payer, changed_by).await?;
            added += 1;
        }
        Ok(added)
    }

    /// Stores a card image (its type already checked, e.g. with
    /// `coverage::card_image_type`). The coverage must exist.
    pub async fn add_coverage_card(
        &mut self,
        coverage_id: &str,
        side: CardSide,
        content_type: &str,
        bytes: &[u8],
        uploaded_by: &str,
    ) -> Result<CardImage> {
        let id = new_id();
        let at = now_us();
        sqlx::query(
            "INSERT INTO coverage_cards \
             (org_id, id, coverage_id, side, content_type, bytes, uploaded_at_us, uploaded_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&self.org_id)
        .bind(&id)
        .bind(coverage_id)
        .bind(side.code())
        .bind(content_type)
        .bind(bytes.to_vec())
        .bind(at)
        .bind(uploaded_by)
        .execute(&mut *self.tx)
        .await
        .map_err(|e| StoreError::from_write(e, &format!("Coverage {coverage_id} is not known")))?;
        Ok(CardImage {
            id,
            coverage_id: coverage_id.to_string(),
            side,
            content_type: content_type.to_string(),
            size: bytes.len(),
            uploaded_at_us: at,
            uploaded_by: uploaded_by.to_string(),
        })
    }
}

/// A stored card image's description (without its bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardImage {
    pub id: String,
    pub coverage_id: String,
    pub side: CardSide,
    pub content_type: String,
    pub size: usize,
    pub uploaded_at_us: i64,
    pub uploaded_by: String,
}

const CARD_COLUMNS: &str = "id, coverage_id, side, content_type, \
    length(bytes) AS size, uploaded_at_us, uploaded_by";

fn card_from_row(row: &AnyRow) -> Result<CardImage> {
    let side: String = row.try_get("side")?;
    Ok(CardImage {
        id: row.try_get("id")?,
        coverage_id: row.try_get("coverage_id")?,
        side: CardSide::from_code(&side)
            .ok_or_else(|| StoreError::Corrupt(format!("card side '{side}'")))?,
        content_type: row.try_get("content_type")?,
        size: usize::try_from(row.try_get::<i64, _>("size")?).unwrap_or(0),
        uploaded_at_us: row.try_get("uploaded_at_us")?,
        uploaded_by: row.try_get("uploaded_by")?,
    })
}

impl Db {
    /// The payer directory, by name; inactive payers included.
    pub async fn payers(&self, org_id: &str) -> Result<Vec<Versioned<Payer>>> {
        Ok(self.search::<Payer>(org_id, &[], ALL).await?.0)
    }

    /// A patient's live coverages: active ones first, by order.
    pub async fn coverages_of(
        &self,
        org_id: &str,
        patient_id: &str,
    ) -> Result<Vec<Versioned<Coverage>>> {
        let only = [Filter::Eq("patient_id", patient_id.into())];
        Ok(self.search::<Coverage>(org_id, &only, ALL).await?.0)
    }

    /// The active coverage of a patient holding `order`, if any.
    pub async fn coverage_at(
        &self,
        org_id: &str,
        patient_id: &str,
        order: CoverageOrder,
    ) -> Result<Option<Versioned<Coverage>>> {
        let filters = [
            Filter::Eq("patient_id", patient_id.into()),
            Filter::Eq("coverage_order", Val::Int(Some(i64::from(order.rank())))),
            Filter::Eq("active", true.into()),
        ];
        Ok(self
            .search::<Coverage>(org_id, &filters, ALL)
            .await?
            .0
            .into_iter()
            .next())
    }

    /// The newest image of each side of a coverage's card, front first.
    pub async fn coverage_cards(&self, org_id: &str, coverage_id: &str) -> Result<Vec<CardImage>> {
        let rows = sqlx::query(sql(format!(
            "SELECT {CARD_COLUMNS} FROM coverage_cards c WHERE org_id = $1 AND coverage_id = $2 \
             AND NOT EXISTS (SELECT 1 FROM coverage_cards n WHERE n.org_id = c.org_id \
                 AND n.coverage_id = c.coverage_id AND n.side = c.side \
                 AND (n.uploaded_at_us > c.uploaded_at_us \
                      OR (n.uploaded_at_us = c.uploaded_at_us AND n.id > c.id))) \
             ORDER BY side DESC"
        )))
        .bind(org_id)
        .bind(coverage_id)
        .fetch_all(&mut *self.reader().await?)
        .await?;
        rows.iter().map(card_from_row).collect()
    }

    /// One card image with its bytes.
    pub async fn coverage_card(&self, org_id: &str, id: &str) -> Result<(CardImage, Vec<u8>)> {
        let row = sqlx::query(sql(format!(
            "SELECT {CARD_COLUMNS}, bytes FROM coverage_cards WHERE org_id = $1 AND id = $2"
        )))
        .bind(org_id)
        .bind(id)
        .fetch_optional(&mut *self.reader().await?)
        .await?
        .ok_or(StoreError::NotFound)?;
        Ok((card_from_row(&row)?, row.try_get("bytes")?))
    }
}
