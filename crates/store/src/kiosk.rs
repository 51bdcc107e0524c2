//! Self check-in kiosks: the devices (each signed in for one location with
//! its own credential, until revoked) and what a patient did at one for a
//! visit (`carefront_domain::visit::kiosk`), and each device's count of
//! lookups that found nothing (`KioskLookup::LOCKOUT`).

use crate::db::sql;
use crate::scheduling::{Actor, bind_vals, corrupt, in_list};
use crate::visits::FlowActor;
use crate::{Db, Result, StoreError, Val, VisitChange, WriteTx, new_id};
use carefront_domain::ValidationErrors;
use carefront_domain::audit::{Action, AuditEntry, Outcome};
use carefront_domain::security::FailureOutcome;
use carefront_domain::validation::required_text;
use carefront_domain::visit::{
    Consent, ContactUpdate, KioskLookup, Signature, VisitStatus, VisitStep,
};
use jiff::Timestamp;
use sha2::{Digest, Sha256};
use sqlx::Row;
use sqlx::any::AnyRow;
use std::collections::HashSet;

/// What a patient hands in at the kiosk to check in.
#[derive(Debug, Clone)]
pub struct KioskArrival<'a> {
    pub appointment_id: &'a str,
    /// The consent they were shown and signed.
    pub consent: &'a Consent,
    pub signature: &'a Signature,
    pub contact: &'a ContactUpdate,
}

/// A kiosk device as the admin page lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KioskDevice {
    pub id: String,
    pub name: String,
    pub location_id: String,
    pub created_at_us: i64,
    pub created_by: String,
    pub last_used_us: Option<i64>,
    pub revoked_at_us: Option<i64>,
    pub revoked_by: Option<String>,
    /// Lookups in a row that found no appointment (`KioskLookup::LOCKOUT`).
    pub failed_lookups: u32,
    /// Until when the device refuses lookups, once it was locked.
    pub lookups_locked_until_us: Option<i64>,
}

impl KioskDevice {
    /// The device refuses patient lookups at `now`: too many found nothing.
    pub fn lookups_locked(&self, now: Timestamp) -> bool {
        KioskLookup::LOCKOUT.is_locked(self.lookups_locked_until_us, now.as_microsecond())
    }
}

/// A kiosk's credential, resolved: the device and its form token.
#[derive(Debug, Clone)]
pub struct KioskSession {
    pub org_id: String,
    pub device: KioskDevice,
    pub csrf_token: String,
}

/// What a patient did at a kiosk for one visit, for the desk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KioskCheckIn {
    pub device_id: String,
    pub at_us: i64,
    pub consent_id: String,
    pub signature: Signature,
    pub contact: ContactUpdate,
}

const DEVICE_COLUMNS: &str = "id, name, location_id, created_at_us, created_by, last_used_us, \
                              revoked_at_us, revoked_by, failed_lookups, lookups_locked_until_us";

fn device_from_row(row: &AnyRow) -> Result<KioskDevice> {
    Ok(KioskDevice {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        location_id: row.try_get("location_id")?,
        created_at_us: row.try_get("created_at_us")?,
        created_by: row.try_get("created_by")?,
        last_used_us: row.try_get("last_used_us")?,
        revoked_at_us: row.try_get("revoked_at_us")?,
        revoked_by: row.try_get("revoked_by")?,
        failed_lookups: count(row.try_get("failed_lookups")?),
        lookups_locked_until_us: row.try_get("lookups_locked_until_us")?,
    })
}

fn count(stored: i64) -> u32 {
    u32::try_from(stored).unwrap_or(u32::MAX)
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| corrupt("kiosk check-in", e))
}

fn arrival_step() -> VisitStep {
    VisitStep::new(VisitStatus::Arrived, None).expect("an arrival names no room")
}

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

impl WriteTx {
    /// Registers a kiosk for a live location of this organization; the
    /// caller hands the device its secret, of which only `token_hash` is
    /// kept. Errors name `name` or `location_id`.
    pub async fn create_kiosk(
        &mut self,
        name: &str,
        location_id: &str,
        token_hash: &str,
        csrf_token: &str,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<KioskDevice> {
        let mut errors = ValidationErrors::new();
        let name = required_text(&mut errors, "name", name, 60);
        let live: Option<(String,)> = sqlx::query_as(
            "SELECT id FROM locations WHERE org_id = $1 AND id = $2 AND deleted = 0",
        )
        .bind(&self.org_id)
        .bind(location_id)
        .fetch_optional(&mut *self.tx)
        .await?;
        if live.is_none() {
            errors.add("location_id", "must be one of the organization's locations");
        }
        if !errors.is_empty() {
            return Err(errors.into());
        }
        let id = new_id();
        sqlx::query(
            "INSERT INTO kiosk_devices (org_id, id, name, location_id, token_hash, csrf_token, \
             created_at_us, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&self.org_id)
        .bind(&id)
        .bind(&name)
        .bind(location_id)
        .bind(token_hash)
        .bind(csrf_token)
        .bind(now.as_microsecond())
        .bind(&actor.actor_name)
        .execute(&mut *self.tx)
        .await?;
        self.audit(
            actor
                .entry(Action::Create, "KioskDevice", &id)
                .detail(format!("kiosk “{name}” for location {location_id}")),
        )
        .await?;
        self.kiosk(&id).await
    }

    async fn kiosk(&mut self, id: &str) -> Result<KioskDevice> {
        let row = sqlx::query(sql(format!(
            "SELECT {DEVICE_COLUMNS} FROM kiosk_devices WHERE org_id = $1 AND id = $2"
        )))
        .bind(&self.org_id)
        .bind(id)
        .fetch_optional(&mut *self.tx)
        .await?
        .ok_or(StoreError::NotFound)?;
        device_from_row(&row)
    }

    /// Signs a kiosk out for good: its credential stops working at once.
    pub async fn revoke_kiosk(
        &mut self,
        id: &str,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<KioskDevice> {
        let done = sqlx::query(
            "UPDATE kiosk_devices SET revoked_at_us = $3, revoked_by = $4 \
             WHERE org_id = $1 AND id = $2 AND revoked_at_us IS NULL",
        )
        .bind(&self.org_id)
        .bind(id)
        .bind(now.as_microsecond())
        .bind(&actor.actor_name)
        .execute(&mut *self.tx)
        .await?;
        if done.rows_affected() == 0 {
            self.kiosk(id).await?;
            return Err(StoreError::Conflict(
                "the kiosk is already signed out".into(),
            ));
        }
        self.audit(
            actor
                .entry(Action::Update, "KioskDevice", id)
                .detail("revoked"),
        )
        .await?;
        self.kiosk(id).await
    }

    /// A patient's self check-in: the visit becomes arrived (by the kiosk;
    /// the visit flow's rules decide, so a visit already arrived or of
    /// another day is refused naming `status`), and the consent they signed
    /// and the contact changes they proposed are kept for the desk.
    pub async fn kiosk_check_in(
        &mut self,
        kiosk: &KioskSession,
        arrival: &KioskArrival<'_>,
        client_addr: Option<String>,
        now: Timestamp,
    ) -> Result<VisitChange> {
        let KioskArrival {
            appointment_id,
            consent,
            signature,
            contact,
        } = *arrival;
        let by = FlowActor::Kiosk {
            device_id: kiosk.device.id.clone(),
            client_addr,
        };
        // The step locks the appointment first: a second kiosk racing for
        // the same visit waits here and is then refused as already arrived.
        let change = self
            .visit_step(appointment_id, &arrival_step(), &by, now)
            .await?;
        sqlx::query(
            "INSERT INTO kiosk_checkins (org_id, appointment_id, device_id, at_us, consent_id, \
             consent_sha256, signature_json, contact_json) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&self.org_id)
        .bind(appointment_id)
        .bind(&kiosk.device.id)
        .bind(now.as_microsecond())
        .bind(consent.id)
        .bind(sha256_hex(consent.text))
        .bind(to_json(signature)?)
        .bind(match contact.is_empty() {
            true => None,
            false => Some(to_json(contact)?),
        })
        .execute(&mut *self.tx)
        .await?;
        // A patient checked in: the lookups that found nothing before were
        // theirs or honest mistakes, so the count starts again.
        sqlx::query(
            "UPDATE kiosk_devices SET last_used_us = $3, failed_lookups = 0, \
             lookups_locked_until_us = NULL WHERE org_id = $1 AND id = $2",
        )
        .bind(&self.org_id)
        .bind(&kiosk.device.id)
        .bind(now.as_microsecond())
        .execute(&mut *self.tx)
        .await?;
        let mut entry = by.actor().entry(Action::Create, "Consent", appointment_id);
        entry = entry.detail(match contact.is_empty() {
            true => format!("{} signed at the kiosk", consent.id),
            false => format!(
                "{} signed at the kiosk; contact changes proposed for the desk",
                consent.id
            ),
        });
        self.audit(entry).await?;
        Ok(change)
    }

    /// Records a lookup at the kiosk that found no appointment: counts it
    /// by `KioskLookup::LOCKOUT` and audits it (and the lock, when this
    /// failure locks the device). Returns the device's count and lock after
    /// it: `locked_until_us` is set when the device refuses lookups now.
    /// The device's row is locked before it is read, so lookups failing at
    /// the same time, on any server, are each counted. A failure that
    /// arrives while the device is locked (its lookup raced the one that
    /// locked it) is audited but changes nothing: the lock is not extended.
    pub async fn kiosk_lookup_failed(
        &mut self,
        kiosk: &KioskSession,
        client_addr: Option<String>,
        now: Timestamp,
    ) -> Result<FailureOutcome> {
        let device_id = kiosk.device.id.as_str();
        let by = FlowActor::Kiosk {
            device_id: device_id.to_string(),
            client_addr,
        }
        .actor();
        let mut lookup = AuditEntry::new(by.actor_name.clone(), Action::Search, Outcome::Failed)
            .detail("self check-in: no appointment found for the name and date of birth typed");
        lookup.client_addr = by.client_addr.clone();
        let policy = KioskLookup::LOCKOUT;
        let now_us = now.as_microsecond();
        // An UPDATE takes the row lock (PostgreSQL; SQLite has one writer,
        // already serialized at BEGIN) and reads the row under it.
        let (failed, locked_until_us): (i64, Option<i64>) = sqlx::query_as(
            "UPDATE kiosk_devices SET failed_lookups = failed_lookups \
             WHERE org_id = $1 AND id = $2 RETURNING failed_lookups, lookups_locked_until_us",
        )
        .bind(&self.org_id)
        .bind(device_id)
        .fetch_optional(&mut *self.tx)
        .await?
        .ok_or(StoreError::NotFound)?;
        if policy.is_locked(locked_until_us, now_us) {
            self.audit(lookup).await?;
            return Ok(FailureOutcome {
                failed_count: count(failed),
                locked_until_us,
            });
        }
        let after = policy.after_failure(count(failed), now_us);
        sqlx::query(
            "UPDATE kiosk_devices SET failed_lookups = $3, lookups_locked_until_us = $4 \
             WHERE org_id = $1 AND id = $2",
        )
        .bind(&self.org_id)
        .bind(device_id)
        .bind(i64::from(after.failed_count))
        .bind(after.locked_until_us)
        .execute(&mut *self.tx)
        .await?;
        let mut entries = vec![lookup];
        if after.locked_until_us.is_some() {
            entries.push(
                by.entry(Action::AccountLocked, "KioskDevice", device_id)
                    .detail(format!(
                        "self check-in: lookups refused for {} s after {} in a row found no \
                         appointment",
                        policy.lock_seconds, policy.max_failures
                    )),
            );
        }
        self.audit_many(entries).await?;
        Ok(after)
    }
}

impl Db {
    /// The organization's kiosks, newest first.
    pub async fn kiosks(&self, org_id: &str) -> Result<Vec<KioskDevice>> {
        let rows = sqlx::query(sql(format!(
            "SELECT {DEVICE_COLUMNS} FROM kiosk_devices WHERE org_id = $1 \
             ORDER BY created_at_us DESC, id"
        )))
        .bind(org_id)
        .fetch_all(&mut *self.reader().await?)
        .await?;
        rows.iter().map(device_from_row).collect()
    }

    /// The kiosk behind a credential, unless it was revoked.
    pub async fn kiosk_session(
        &self,
        org_id: &str,
        token_hash: &str,
    ) -> Result<Option<KioskSession>> {
        let row = sqlx::query(sql(format!(
            "SELECT {DEVICE_COLUMNS}, csrf_token FROM kiosk_devices \
             WHERE org_id = $1 AND token_hash = $2 AND revoked_at_us IS NULL"
        )))
        .bind(org_id)
        .bind(token_hash)
        .fetch_optional(&mut *self.reader().await?)
        .await?;
        row.map(|row| {
            Ok(KioskSession {
                org_id: org_id.to_string(),
                device: device_from_row(&row)?,
                csrf_token: row.try_get("csrf_token")?,
            })
        })
        .transpose()
    }

    /// Which of `appointment_ids` had their consent signed at a kiosk.
    pub async fn kiosk_consents_signed(
        &self,
        org_id: &str,
        appointment_ids: &[String],
    ) -> Result<HashSet<String>> {
        if appointment_ids.is_empty() {
            return Ok(HashSet::new());
        }
        let mut binds = vec![Val::from(org_id)];
        let list = in_list(&mut binds, appointment_ids);
        let q = sqlx::query(sql(format!(
            "SELECT appointment_id FROM kiosk_checkins \
             WHERE org_id = $1 AND appointment_id IN ({list})"
        )));
        let rows = bind_vals(q, &binds)
            .fetch_all(&mut *self.reader().await?)
            .await?;
        rows.iter()
            .map(|row| Ok(row.try_get("appointment_id")?))
            .collect()
    }

    /// What the patient did at a kiosk for this visit, if they checked in there.
    pub async fn kiosk_check_in_of(
        &self,
        org_id: &str,
        appointment_id: &str,
    ) -> Result<Option<KioskCheckIn>> {
        let row = sqlx::query(
            "SELECT device_id, at_us, consent_id, signature_json, contact_json \
             FROM kiosk_checkins WHERE org_id = $1 AND appointment_id = $2",
        )
        .bind(org_id)
        .bind(appointment_id)
        .fetch_optional(&mut *self.reader().await?)
        .await?;
        row.map(|row| {
            let signature: String = row.try_get("signature_json")?;
            let contact: Option<String> = row.try_get("contact_json")?;
            Ok(KioskCheckIn {
                device_id: row.try_get("device_id")?,
                at_us: row.try_get("at_us")?,
                consent_id: row.try_get("consent_id")?,
                signature: serde_json::from_str(&signature)
                    .map_err(|e| corrupt("kiosk signature", e))?,
                contact: contact
                    .map(|c| serde_json::from_str(&c))
                    .transpose()
                    .map_err(|e| corrupt("kiosk contact changes", e))?
                    .unwrap_or_default(),
            })
        })
        .transpose()
    }
}
