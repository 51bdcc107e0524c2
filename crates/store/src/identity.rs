//! Staff users, their sessions and API tokens. Secrets are never stored:
//! sessions and tokens are kept as SHA-256 hashes of high-entropy values,
//! passwords as argon2id hashes made by the caller.

use crate::db::{now_us, sql};
use crate::{Db, Result, StoreError, WriteTx};
use carefront_domain::Role;
use carefront_domain::security::FailureOutcome;
use sqlx::Row;
use sqlx::any::AnyRow;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub org_id: String,
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub password_hash: String,
    pub active: bool,
    pub failed_count: u32,
    pub locked_until_us: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub password_hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub org_id: String,
    pub token_hash: String,
    pub user_id: String,
    pub csrf_token: String,
    pub created_at_us: i64,
    pub last_seen_us: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    pub org_id: String,
    pub id: String,
    pub name: String,
    pub role: Role,
    pub created_at_us: i64,
    pub revoked_at_us: Option<i64>,
    pub last_used_at_us: Option<i64>,
}

const USER_COLUMNS: &str = "org_id, id, username, display_name, role, password_hash, active, \
    failed_count, locked_until_us";
const TOKEN_COLUMNS: &str = "org_id, id, name, role, created_at_us, revoked_at_us, last_used_at_us";

fn role_of(row: &AnyRow) -> Result<Role> {
    let code: String = row.try_get("role")?;
    code.parse()
        .map_err(|e: carefront_domain::access::UnknownRole| StoreError::Corrupt(e.to_string()))
}

fn user_from_row(row: &AnyRow) -> Result<User> {
    Ok(User {
        org_id: row.try_get("org_id")?,
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        display_name: row.try_get("display_name")?,
        role: role_of(row)?,
        password_hash: row.try_get("password_hash")?,
        active: row.try_get::<i64, _>("active")? == 1,
        failed_count: u32::try_from(row.try_get::<i64, _>("failed_count")?).unwrap_or(u32::MAX),
        locked_until_us: row.try_get("locked_until_us")?,
    })
}

fn token_from_row(row: &AnyRow) -> Result<ApiToken> {
    Ok(ApiToken {
        org_id: row.try_get("org_id")?,
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        role: role_of(row)?,
        created_at_us: row.try_get("created_at_us")?,
        revoked_at_us: row.try_get("revoked_at_us")?,
        last_used_at_us: row.try_get("last_used_at_us")?,
    })
}

impl WriteTx {
    pub async fn create_user(&mut self, id: &str, new: &NewUser) -> Result<User> {
        let at = now_us();
        sqlx::query(sql(format!(
            "INSERT INTO users ({USER_COLUMNS}, created_at_us, updated_at_us) \
             VALUES ($1, $2, $3, $4, $5, $6, 1, 0, NULL, $7, $7)"
        )))
        .bind(&self.org_id)
        .bind(id)
        .bind(&new.username)
        .bind(&new.display_name)
        .bind(new.role.code())
        .bind(&new.password_hash)
        .bind(at)
        .execute(&mut *self.tx)
        .await
        .map_err(|e| StoreError::from_write(e, &format!("username '{}' is taken", new.username)))?;
        Ok(User {
            org_id: self.org_id.clone(),
            id: id.to_string(),
            username: new.username.clone(),
            display_name: new.display_name.clone(),
            role: new.role,
            password_hash: new.password_hash.clone(),
            active: true,
            failed_count: 0,
            locked_until_us: None,
        })
    }

    /// Counts one more failed sign-in and returns the count before it. The
    /// increment happens in the database (and locks the row on PostgreSQL),
    /// so failures spread over several servers are all counted.
    pub async fn count_sign_in_failure(&mut self, user_id: &str) -> Result<u32> {
        let (count,): (i64,) = sqlx::query_as(
            "UPDATE users SET failed_count = failed_count + 1 WHERE org_id = $1 AND id = $2 \
             RETURNING failed_count",
        )
        .bind(&self.org_id)
        .bind(user_id)
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(u32::try_from(count - 1).unwrap_or(0))
    }

    pub async fn set_sign_in_failures(
        &mut self,
        user_id: &str,
        state: FailureOutcome,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE users SET failed_count = $3, locked_until_us = $4 WHERE org_id = $1 AND id = $2",
        )
        .bind(&self.org_id)
        .bind(user_id)
        .bind(i64::from(state.failed_count))
        .bind(state.locked_until_us)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    pub async fn create_session(
        &mut self,
        session: &Session,
        client_addr: Option<&str>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO sessions (org_id, token_hash, user_id, csrf_token, created_at_us, last_seen_us, client_addr) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&self.org_id)
        .bind(&session.token_hash)
        .bind(&session.user_id)
        .bind(&session.csrf_token)
        .bind(session.created_at_us)
        .bind(session.last_seen_us)
        .bind(client_addr.map(str::to_string))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    pub async fn delete_session(&mut self, token_hash: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM sessions WHERE org_id = $1 AND token_hash = $2")
            .bind(&self.org_id)
            .bind(token_hash)
            .execute(&mut *self.tx)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn create_token(
        &mut self,
        id: &str,
        name: &str,
        role: Role,
        token_hash: &str,
    ) -> Result<ApiToken> {
        let at = now_us();
        sqlx::query(
            "INSERT INTO api_tokens (org_id, id, name, role, token_hash, created_at_us) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&self.org_id)
        .bind(id)
        .bind(name)
        .bind(role.code())
        .bind(token_hash)
        .bind(at)
        .execute(&mut *self.tx)
        .await?;
        Ok(ApiToken {
            org_id: self.org_id.clone(),
            id: id.to_string(),
            name: name.to_string(),
            role,
            created_at_us: at,
            revoked_at_us: None,
            last_used_at_us: None,
        })
    }

    /// Revokes the token with this id, or every live token with this name.
    pub async fn revoke_tokens(&mut self, id_or_name: &str) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE api_tokens SET revoked_at_us = $3 \
             WHERE org_id = $1 AND (id = $2 OR name = $2) AND revoked_at_us IS NULL",
        )
        .bind(&self.org_id)
        .bind(id_or_name)
        .bind(now_us())
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected())
    }
}

impl Db {
    /// Every organization on this database: `(org_id, name)`.
    pub async fn organizations(&self) -> Result<Vec<(String, String)>> {
        Ok(
            sqlx::query_as(
                "SELECT org_id, name FROM organizations WHERE deleted = 0 ORDER BY name",
            )
            .fetch_all(&mut *self.reader().await?)
            .await?,
        )
    }

    pub async fn user_by_username(&self, org_id: &str, username: &str) -> Result<Option<User>> {
        let row = sqlx::query(sql(format!(
            "SELECT {USER_COLUMNS} FROM users WHERE org_id = $1 AND username = $2"
        )))
        .bind(org_id)
        .bind(username)
        .fetch_optional(&mut *self.reader().await?)
        .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    pub async fn users(&self, org_id: &str) -> Result<Vec<User>> {
        let rows = sqlx::query(sql(format!(
            "SELECT {USER_COLUMNS} FROM users WHERE org_id = $1 ORDER BY username"
        )))
        .bind(org_id)
        .fetch_all(&mut *self.reader().await?)
        .await?;
        rows.iter().map(user_from_row).collect()
    }

    /// The session and its user, if the session exists and the user is active.
    pub async fn session(&self, org_id: &str, token_hash: &str) -> Result<Option<(Session, User)>> {
        let row = sqlx::query(
            "SELECT s.token_hash, s.user_id, s.csrf_token, s.created_at_us, s.last_seen_us, \
                    u.org_id, u.id, u.username, u.display_name, u.role, u.password_hash, u.active, \
                    u.failed_count, u.locked_until_us \
             FROM sessions s JOIN users u ON u.org_id = s.org_id AND u.id = s.user_id \
             WHERE s.org_id = $1 AND s.token_hash = $2 AND u.active = 1",
        )
        .bind(org_id)
        .bind(token_hash)
        .fetch_optional(&mut *self.reader().await?)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let session = Session {
            org_id: org_id.to_string(),
            token_hash: row.try_get("token_hash")?,
            user_id: row.try_get("user_id")?,
            csrf_token: row.try_get("csrf_token")?,
            created_at_us: row.try_get("created_at_us")?,
            last_seen_us: row.try_get("last_seen_us")?,
        };
        Ok(Some((session, user_from_row(&row)?)))
    }

    /// Records activity on a session, so idle sign-out counts from here.
    pub async fn touch_session(&self, org_id: &str, token_hash: &str, at_us: i64) -> Result<()> {
        let mut tx = self.begin(org_id).await?;
        sqlx::query("UPDATE sessions SET last_seen_us = $3 WHERE org_id = $1 AND token_hash = $2")
            .bind(org_id)
            .bind(token_hash)
            .bind(at_us)
            .execute(&mut *tx.tx)
            .await?;
        tx.commit().await
    }

    /// A live (not revoked) token by the hash of its secret.
    pub async fn token_by_hash(&self, org_id: &str, token_hash: &str) -> Result<Option<ApiToken>> {
        let row = sqlx::query(sql(format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens \
             WHERE org_id = $1 AND token_hash = $2 AND revoked_at_us IS NULL"
        )))
        .bind(org_id)
        .bind(token_hash)
        .fetch_optional(&mut *self.reader().await?)
        .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    pub async fn tokens(&self, org_id: &str) -> Result<Vec<ApiToken>> {
        let rows = sqlx::query(sql(format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE org_id = $1 ORDER BY created_at_us"
        )))
        .bind(org_id)
        .fetch_all(&mut *self.reader().await?)
        .await?;
        rows.iter().map(token_from_row).collect()
    }
}
