//! Who is calling: admins' sign-in sessions and operators' API tokens.

use std::time::Duration;

use rollcall_domain::OrgId;
use rollcall_domain::config::Role;

use crate::credentials;
use crate::db::{flag, get, query};
use crate::operator::Admin;
use crate::{Result, Store, StoreError};

/// A signed-in admin.
#[derive(Clone, Debug)]
pub struct Session {
    pub admin: Admin,
    /// Whether the admin's organisation has provisioning enabled.
    pub provisioning: bool,
    /// The token state-changing requests must echo (CSRF protection).
    pub csrf: String,
}

/// How long sessions last.
#[derive(Clone, Copy, Debug)]
pub struct SessionLimits {
    /// Signed out after this long without a request.
    pub idle: Duration,
    /// Signed out this long after signing in, whatever the activity.
    pub absolute: Duration,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Store {
    /// Start a session for an admin whose password was checked; returns the cookie token and
    /// the CSRF token.
    pub async fn create_session(&self, admin: &Admin) -> Result<(String, String)> {
        let token = credentials::new_token().map_err(|_| StoreError::Database)?;
        let csrf = credentials::new_token().map_err(|_| StoreError::Database)?;
        let now = self.now_ms();
        query(
            self.db.backend,
            "INSERT INTO admin_sessions (digest, admin_id, csrf, created_at, last_seen_at) \
             VALUES ($1, $2, $3, $4, $5)",
            vec![
                credentials::token_digest(&token).into(),
                admin.id.as_str().into(),
                csrf.as_str().into(),
                now.into(),
                now.into(),
            ],
        )
        .execute(&self.db.write)
        .await?;
        Ok((token, csrf))
    }

    /// The session a cookie token names, if it is still valid; its activity is recorded (at
    /// most once a minute, to spare the writer).
    pub async fn session(&self, token: &str, limits: SessionLimits) -> Result<Option<Session>> {
        let digest = credentials::token_digest(token);
        let row = query(
            self.db.backend,
            "SELECT s.csrf, s.created_at, s.last_seen_at, a.id, a.org_id, a.email, a.role, a.sync_access, \
             o.provisioning FROM admin_sessions s JOIN admins a ON a.id = s.admin_id \
             JOIN organisations o ON o.id = a.org_id WHERE s.digest = $1 AND a.disabled_at IS NULL",
            vec![digest.as_str().into()],
        )
        .fetch_optional(&self.db.read)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let now = self.now_ms();
        let created: i64 = get(&row, "created_at")?;
        let seen: i64 = get(&row, "last_seen_at")?;
        if now.saturating_sub(seen) > ms(limits.idle)
            || now.saturating_sub(created) > ms(limits.absolute)
        {
            self.delete_session(token).await?;
            return Ok(None);
        }
        if now.saturating_sub(seen) > 60_000 {
            query(
                self.db.backend,
                "UPDATE admin_sessions SET last_seen_at = $1 WHERE digest = $2",
                vec![now.into(), digest.into()],
            )
            .execute(&self.db.write)
            .await?;
        }
        let role: String = get(&row, "role")?;
        Ok(Some(Session {
            admin: Admin {
                id: get(&row, "id")?,
                org_id: OrgId::new(get::<String>(&row, "org_id")?),
                email: get(&row, "email")?,
                role: Role::parse(&role).ok_or(StoreError::Database)?,
                sync_access: flag(&row, "sync_access")?,
            },
            provisioning: flag(&row, "provisioning")?,
            csrf: get(&row, "csrf")?,
        }))
    }

    /// Sign out.
    pub async fn delete_session(&self, token: &str) -> Result<()> {
        query(
            self.db.backend,
            "DELETE FROM admin_sessions WHERE digest = $1",
            vec![credentials::token_digest(token).into()],
        )
        .execute(&self.db.write)
        .await?;
        Ok(())
    }
}

impl Store {
    /// Issue an operator token (shown once); `name` says whose it is.
    pub async fn create_operator_token(&self, name: &str) -> Result<String> {
        let token = credentials::new_token().map_err(|_| StoreError::Database)?;
        query(
            self.db.backend,
            "INSERT INTO operator_tokens (digest, name, created_at) VALUES ($1, $2, $3)",
            vec![
                credentials::token_digest(&token).into(),
                name.into(),
                self.now_ms().into(),
            ],
        )
        .execute(&self.db.write)
        .await?;
        Ok(token)
    }

    /// The name of the live operator token `token`, if it is one; its use is recorded.
    pub async fn authenticate_operator(&self, token: &str) -> Result<Option<String>> {
        let digest = credentials::token_digest(token);
        let done = query(
            self.db.backend,
            "UPDATE operator_tokens SET last_used_at = $1 WHERE digest = $2 AND revoked_at IS NULL",
            vec![self.now_ms().into(), digest.as_str().into()],
        )
        .execute(&self.db.write)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(None);
        }
        let row = query(
            self.db.backend,
            "SELECT name FROM operator_tokens WHERE digest = $1",
            vec![digest.as_str().into()],
        )
        .fetch_optional(&self.db.write)
        .await?;
        row.map(|row| get::<String>(&row, "name")).transpose()
    }

    /// Revoke an operator token given the token itself.
    pub async fn revoke_operator_token(&self, token: &str) -> Result<bool> {
        let done = query(
            self.db.backend,
            "UPDATE operator_tokens SET revoked_at = $1 WHERE digest = $2 AND revoked_at IS NULL",
            vec![
                self.now_ms().into(),
                credentials::token_digest(token).into(),
            ],
        )
        .execute(&self.db.write)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
