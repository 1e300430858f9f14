//! Source configurations (SPEC §4) and admin roles (SPEC §1).

use std::fmt;

/// Where a configuration's records come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConfigKind {
    Sftp,
    Scim,
    Workday,
    GoogleWorkspace,
    /// Admins' CSV updates of unmanaged users (one per organisation, made on first use).
    BulkUpdate,
}

impl ConfigKind {
    pub const ALL: [ConfigKind; 5] = [
        ConfigKind::Sftp,
        ConfigKind::Scim,
        ConfigKind::Workday,
        ConfigKind::GoogleWorkspace,
        ConfigKind::BulkUpdate,
    ];

    /// The name on the command line (`google-workspace`) and in the database.
    pub fn code(self) -> &'static str {
        match self {
            ConfigKind::Sftp => "sftp",
            ConfigKind::Scim => "scim",
            ConfigKind::Workday => "workday",
            ConfigKind::GoogleWorkspace => "google-workspace",
            ConfigKind::BulkUpdate => "bulk-update",
        }
    }

    pub fn parse(code: &str) -> Option<ConfigKind> {
        let code = if code == "google_workspace" {
            "google-workspace"
        } else {
            code
        };
        ConfigKind::ALL.into_iter().find(|k| k.code() == code)
    }

    /// The "source connector" column of the runs page (SPEC §6).
    pub fn connector(self) -> &'static str {
        match self {
            ConfigKind::Sftp => "SFTP Sync",
            ConfigKind::Scim => "SCIM",
            ConfigKind::Workday => "Workday",
            ConfigKind::GoogleWorkspace => "Google Workspace",
            ConfigKind::BulkUpdate => "Bulk Update",
        }
    }

    /// File and pull sources need a mapping with the required fields; SCIM has its own.
    pub fn needs_mapping(self) -> bool {
        !matches!(self, ConfigKind::Scim | ConfigKind::BulkUpdate)
    }
}

impl fmt::Display for ConfigKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// `dry_run`: every run reports in full and applies nothing. `active`: runs apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    DryRun,
    Active,
}

impl Mode {
    pub fn code(self) -> &'static str {
        match self {
            Mode::DryRun => "dry_run",
            Mode::Active => "active",
        }
    }

    pub fn parse(code: &str) -> Option<Mode> {
        match code {
            "dry_run" | "dry-run" => Some(Mode::DryRun),
            "active" => Some(Mode::Active),
            _ => None,
        }
    }
}

/// The most deactivations one run may make (SPEC §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeactivationThreshold {
    Count(u64),
    /// Percent of the configuration's active managed users, 0–100.
    Percent(u32),
}

impl DeactivationThreshold {
    pub fn parse(raw: &str) -> Result<DeactivationThreshold, String> {
        let raw = raw.trim();
        let bad = || {
            format!(
                "'{raw}' is not a deactivation threshold: give a count such as 50 or a percentage such as 10%"
            )
        };
        match raw.strip_suffix('%') {
            Some(p) => match p.trim().parse::<u32>() {
                Ok(p) if p <= 100 => Ok(DeactivationThreshold::Percent(p)),
                _ => Err(bad()),
            },
            None => raw
                .parse::<u64>()
                .map(DeactivationThreshold::Count)
                .map_err(|_| bad()),
        }
    }

    /// Whether `deactivations` exceed the threshold, given the configuration's active
    /// managed users before the run.
    pub fn exceeded(self, deactivations: u64, active_managed: u64) -> bool {
        match self {
            DeactivationThreshold::Count(n) => deactivations > n,
            DeactivationThreshold::Percent(p) => {
                deactivations * 100 > u64::from(p) * active_managed
            }
        }
    }
}

impl fmt::Display for DeactivationThreshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeactivationThreshold::Count(n) => write!(f, "{n}"),
            DeactivationThreshold::Percent(p) => write!(f, "{p}%"),
        }
    }
}

/// The roles of organisation admins (SPEC §1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    OrganisationAdmin,
    PeopleAdmin,
    SupportAdmin,
    GroupAdmin,
    ContentCreator,
    ContentModerator,
    BasicUser,
}

impl Role {
    pub const ALL: [Role; 7] = [
        Role::OrganisationAdmin,
        Role::PeopleAdmin,
        Role::SupportAdmin,
        Role::GroupAdmin,
        Role::ContentCreator,
        Role::ContentModerator,
        Role::BasicUser,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Role::OrganisationAdmin => "organisation_admin",
            Role::PeopleAdmin => "people_admin",
            Role::SupportAdmin => "support_admin",
            Role::GroupAdmin => "group_admin",
            Role::ContentCreator => "content_creator",
            Role::ContentModerator => "content_moderator",
            Role::BasicUser => "basic_user",
        }
    }

    pub fn parse(code: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.code() == code)
    }

    pub fn valid_codes() -> String {
        Role::ALL.map(Role::code).join(", ")
    }

    /// Whether the role may see User Provisioning (with the per-admin sync flag and the
    /// organisation's provisioning switch also on).
    pub fn may_see_provisioning(self) -> bool {
        matches!(self, Role::OrganisationAdmin | Role::PeopleAdmin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds() {
        assert_eq!(
            DeactivationThreshold::parse("10"),
            Ok(DeactivationThreshold::Count(10))
        );
        assert_eq!(
            DeactivationThreshold::parse("5%"),
            Ok(DeactivationThreshold::Percent(5))
        );
        for bad in ["", "-1", "101%", "ten", "5.5%"] {
            assert!(DeactivationThreshold::parse(bad).is_err(), "{bad}");
        }
        assert!(!DeactivationThreshold::Count(2).exceeded(2, 100));
        assert!(DeactivationThreshold::Count(2).exceeded(3, 100));
        assert!(!DeactivationThreshold::Percent(10).exceeded(10, 100));
        assert!(DeactivationThreshold::Percent(10).exceeded(11, 100));
    }

    #[test]
    fn kinds_and_roles_parse() {
        assert_eq!(
            ConfigKind::parse("google-workspace"),
            Some(ConfigKind::GoogleWorkspace)
        );
        assert_eq!(ConfigKind::parse("ftp"), None);
        assert_eq!(Role::parse("people_admin"), Some(Role::PeopleAdmin));
        assert_eq!(Role::parse("admin"), None);
    }
}
