//! Per-organization settings, one JSON document per name.

use crate::db::now_us;
use crate::{Db, Result, StoreError, WriteTx};
use carefront_domain::patient::RegistrationRules;
use carefront_domain::visit::PostVisitInstructions;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A setting: its stored name and its default when never set.
pub trait Setting: Serialize + DeserializeOwned + Default {
    const NAME: &'static str;
}

impl Setting for RegistrationRules {
    const NAME: &'static str = "registration";
}

impl Setting for PostVisitInstructions {
    const NAME: &'static str = "post_visit_instructions";
}

impl Db {
    pub async fn setting<S: Setting>(&self, org_id: &str) -> Result<S> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT value FROM org_settings WHERE org_id = $1 AND name = $2")
                .bind(org_id)
                .bind(S::NAME)
                .fetch_optional(&mut *self.reader().await?)
                .await?;
        match row {
            None => Ok(S::default()),
            Some((json,)) => serde_json::from_str(&json)
                .map_err(|e| StoreError::Corrupt(format!("setting {}: {e}", S::NAME))),
        }
    }
}

impl WriteTx {
    /// Reads a setting in order to change part of it, holding its row until
    /// commit: two servers changing one setting on PostgreSQL then take
    /// turns instead of one overwriting the other's change with what it had
    /// read (SQLite's single writer already makes them take turns). The
    /// no-op upsert takes the row lock the same way on both backends.
    pub async fn setting_for_update<S: Setting>(&mut self) -> Result<S> {
        let default = serde_json::to_string(&S::default())
            .map_err(|e| StoreError::Corrupt(format!("setting {}: {e}", S::NAME)))?;
        sqlx::query(
            "INSERT INTO org_settings (org_id, name, value, updated_at_us, updated_by) \
             VALUES ($1, $2, $3, $4, '') \
             ON CONFLICT (org_id, name) DO UPDATE SET value = org_settings.value",
        )
        .bind(&self.org_id)
        .bind(S::NAME)
        .bind(default)
        .bind(now_us())
        .execute(&mut *self.tx)
        .await?;
        let (json,): (String,) =
            sqlx::query_as("SELECT value FROM org_settings WHERE org_id = $1 AND name = $2")
                .bind(&self.org_id)
                .bind(S::NAME)
                .fetch_one(&mut *self.tx)
                .await?;
        serde_json::from_str(&json)
            .map_err(|e| StoreError::Corrupt(format!("setting {}: {e}", S::NAME)))
    }

    pub async fn set_setting<S: Setting>(&mut self, value: &S, changed_by: &str) -> Result<()> {
        let json = serde_json::to_string(value)
            .map_err(|e| StoreError::Corrupt(format!("setting {}: {e}", S::NAME)))?;
        sqlx::query(
            "INSERT INTO org_settings (org_id, name, value, updated_at_us, updated_by) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (org_id, name) DO UPDATE SET value = $3, updated_at_us = $4, updated_by = $5",
        )
        .bind(&self.org_id)
        .bind(S::NAME)
        .bind(json)
        .bind(now_us())
        .bind(changed_by)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }
}
