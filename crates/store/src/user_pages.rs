//! Users as the admin panel finds them: a searchable page at a time, or by username for a
//! Bulk Update file.

use rollcall_domain::StoredUser;

use crate::db::{Arg, query};
use crate::user_columns::{USER_COLUMNS, user_from_row};
use crate::{OrgStore, Result};

/// One page of the users list.
#[derive(Clone, Debug)]
pub struct UserPage {
    pub users: Vec<StoredUser>,
    /// The username (normalised) and id the next page starts after.
    pub next: Option<(String, String)>,
}

impl OrgStore {
    /// The organisation's users by username, a page at a time; `search` matches username,
    /// email and name, case-insensitively; `unmanaged_only` keeps the users no source manages.
    pub async fn user_page(
        &self,
        search: &str,
        unmanaged_only: bool,
        after: Option<(&str, &str)>,
        limit: u32,
    ) -> Result<UserPage> {
        let mut sql =
            format!("SELECT {USER_COLUMNS} FROM users WHERE org_id = $1 AND scim_deleted = 0");
        if unmanaged_only {
            sql.push_str(" AND managed_by IS NULL");
        }
        let mut args: Vec<Arg> = vec![self.org.as_str().into()];
        let search = search.trim().to_lowercase();
        if !search.is_empty() {
            let escaped = search
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            args.push(format!("%{escaped}%").into());
            let n = args.len();
            sql.push_str(&format!(
                " AND (username_norm LIKE ${n} ESCAPE '\\' OR email_norm LIKE ${n} ESCAPE '\\' \
                 OR LOWER(COALESCE(first_name, '') || ' ' || COALESCE(second_name, '')) LIKE ${n} ESCAPE '\\')"
            ));
        }
        if let Some((name, id)) = after {
            args.push(name.into());
            args.push(id.into());
            let (a, b) = (args.len() - 1, args.len());
            sql.push_str(&format!(
                " AND (username_norm > ${a} OR (username_norm = ${a} AND id > ${b}))"
            ));
        }
        args.push(i64::from(limit).saturating_add(1).into());
        sql.push_str(&format!(
            " ORDER BY username_norm, id LIMIT ${}",
            args.len()
        ));
        let rows = query(self.store.db.backend, sql, args)
            .fetch_all(&self.store.db.read)
            .await?;
        let mut users = rows.iter().map(user_from_row).collect::<Result<Vec<_>>>()?;
        let next = if users.len() > limit as usize {
            users.truncate(limit as usize);
            users.last().map(|u| {
                (
                    u.profile
                        .username
                        .as_ref()
                        .map(|n| n.normalized())
                        .unwrap_or_default(),
                    u.id.to_string(),
                )
            })
        } else {
            None
        };
        Ok(UserPage { users, next })
    }
}

impl OrgStore {
    /// The users with these usernames (compared case-insensitively), by normalised username.
    pub async fn users_by_username(
        &self,
        usernames: &[String],
    ) -> Result<std::collections::HashMap<String, StoredUser>> {
        let mut found = std::collections::HashMap::new();
        let wanted: Vec<String> = usernames.iter().map(|u| u.trim().to_lowercase()).collect();
        for chunk in wanted.chunks(500) {
            let mut args: Vec<Arg> = vec![self.org.as_str().into()];
            args.extend(chunk.iter().map(|u| Arg::from(u.as_str())));
            let sql = format!(
                "SELECT {USER_COLUMNS} FROM users WHERE org_id = $1 AND scim_deleted = 0 AND username_norm IN ({})",
                crate::db::placeholders(2, chunk.len())
            );
            let rows = query(self.store.db.backend, sql, args)
                .fetch_all(&self.store.db.read)
                .await?;
            for row in &rows {
                let user = user_from_row(row)?;
                let key = user
                    .profile
                    .username
                    .as_ref()
                    .map(|n| n.normalized())
                    .unwrap_or_default();
                found.insert(key, user);
            }
        }
        Ok(found)
    }
}
