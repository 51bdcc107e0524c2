//! Fresh databases for tests. SQLite by default; when
//! `CAREFRONT_TEST_POSTGRES` holds an admin URL (for example
//! `postgres://postgres@127.0.0.1:5432/postgres`), a new PostgreSQL database
//! per call instead, so the same suite runs on both backends.

use crate::{Db, Result};

pub const POSTGRES_ENV: &str = "CAREFRONT_TEST_POSTGRES";

/// A migrated, empty database of the backend under test, and its URL (so a
/// test can open a second connection or start a second server on it).
pub async fn fresh_database() -> Result<(Db, String)> {
    let url = fresh_url().await?;
    let db = Db::connect(&url).await?;
    db.migrate().await?;
    db.rebuild_stale_keys(|_, _| {}).await?;
    Ok((db, url))
}

pub async fn fresh_url() -> Result<String> {
    let name = format!("cf_test_{}", uuid::Uuid::new_v4().simple());
    match std::env::var(POSTGRES_ENV) {
        Ok(admin_url) if !admin_url.is_empty() => {
            let admin = Db::connect(&admin_url).await?;
            admin.create_database_if_missing(&name).await?;
            admin.close().await;
            let base = admin_url
                .rsplit_once('/')
                .map(|(base, _)| base)
                .unwrap_or(&admin_url);
            Ok(format!("{base}/{name}"))
        }
        _ => {
            let path = std::env::temp_dir().join(format!("{name}.db"));
            Ok(format!("sqlite://{}", path.display()))
        }
    }
}

impl Db {
    /// Runs raw SQL, bypassing every rule of this crate: tests use it to
    /// play an attacker with direct database access.
    pub async fn execute_unchecked(&self, statement: &str) -> Result<u64> {
        let done = sqlx::query(crate::db::sql(statement.to_string()))
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected())
    }
}
