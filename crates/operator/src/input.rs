//! What an operator types, checked: the parsers the CLI and the operator API share, so that a
//! value one accepts the other accepts too, with the same message. Where the message names
//! the input, the caller says what the operator called it (`--notify` on the command line,
//! `notify` in a JSON body, a file's path); each message says what was wrong and how to fix
//! it. Refusals are plain text for the caller's own error type.

use rollcall_domain::config::{ConfigKind, Mode, Role};
use rollcall_domain::mapping::Mapping;
use rollcall_domain::setup::{ConfigName, NewPassword, OrgName, SshPublicKey};
use rollcall_domain::values::{Email, PhoneRegion};

/// The kinds an operator may create (a Bulk Update configuration is made on first use).
pub const CREATABLE_KINDS: [ConfigKind; 4] = [
    ConfigKind::Sftp,
    ConfigKind::Scim,
    ConfigKind::Workday,
    ConfigKind::GoogleWorkspace,
];

pub fn org_name(raw: &str) -> Result<OrgName, String> {
    OrgName::parse(raw).map_err(|e| format!("the organisation name {e}"))
}

pub fn config_name(raw: &str) -> Result<ConfigName, String> {
    ConfigName::parse(raw).map_err(|e| format!("the configuration name {e}"))
}

/// An email address given as `input`.
pub fn email(input: &str, raw: &str) -> Result<Email, String> {
    Email::parse(raw).map_err(|e| format!("{input}: {e}"))
}

/// A phone region given as `input`.
pub fn phone_region(input: &str, raw: &str) -> Result<PhoneRegion, String> {
    PhoneRegion::parse(raw).map_err(|e| format!("{input}: {e}"))
}

pub fn role(raw: &str) -> Result<Role, String> {
    Role::parse(raw).ok_or_else(|| {
        format!(
            "unknown role '{raw}': valid roles are {}",
            Role::valid_codes()
        )
    })
}

/// A configuration's kind given as `input`: one an operator may create.
pub fn kind(input: &str, raw: &str) -> Result<ConfigKind, String> {
    ConfigKind::parse(raw.trim())
        .filter(|k| CREATABLE_KINDS.contains(k))
        .ok_or_else(|| {
            format!(
                "{input}: unknown kind '{raw}': give {}",
                CREATABLE_KINDS.map(ConfigKind::code).join(", ")
            )
        })
}

/// A configuration's mode given as `input`.
pub fn mode(input: &str, raw: &str) -> Result<Mode, String> {
    Mode::parse(raw.trim())
        .ok_or_else(|| format!("{input}: unknown mode '{raw}': give active or dry-run"))
}

/// A new password; `whose` as the message says it (`password`, `SFTP password`).
pub fn new_password(whose: &str, raw: String) -> Result<NewPassword, String> {
    NewPassword::parse(raw).map_err(|e| format!("the {whose} {e}"))
}

/// The OpenSSH public key in `text`, read from `source` (a file's path, a JSON field).
pub fn public_key(source: &str, text: &str) -> Result<SshPublicKey, String> {
    SshPublicKey::parse(text).ok_or_else(|| {
        format!(
            "{source} is not an OpenSSH public key: expected a line like 'ssh-ed25519 AAAA… comment'"
        )
    })
}

/// The mapping in `text`, a mapping file (TOML) read from `source`.
pub fn mapping(source: &str, text: &str) -> Result<Mapping, String> {
    rollcall_hrfile::mapping_file::parse_mapping(text).map_err(|e| format!("{source}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_the_input_and_the_fix() {
        let cases = [
            (
                email("--notify", "nope").err(),
                "--notify: 'nope' is not a valid email address",
            ),
            (
                role("boss").err(),
                "unknown role 'boss': valid roles are organisation_admin, people_admin",
            ),
            (
                kind("kind", "bulk-update").err(),
                "kind: unknown kind 'bulk-update': give sftp, scim, workday, google-workspace",
            ),
            (
                mode("mode", "live").err(),
                "mode: unknown mode 'live': give active or dry-run",
            ),
            (
                new_password("SFTP password", "short".into()).err(),
                "the SFTP password must have at least 12 characters",
            ),
            (
                public_key("sftp_keys[0]", "hello").err(),
                "sftp_keys[0] is not an OpenSSH public key",
            ),
            (
                mapping("mapping", "[fields]\nexternal_id = 1").err(),
                "mapping: the mapping file is not valid TOML",
            ),
            (
                org_name(" ").err(),
                "the organisation name must have 1 to 200 printable characters",
            ),
        ];
        for (refusal, start) in cases {
            let refusal = refusal.expect("refused");
            assert!(refusal.starts_with(start), "{refusal}");
        }
    }

    #[test]
    fn accepts_what_the_cli_always_accepted() {
        assert_eq!(
            kind("kind", "google_workspace"),
            Ok(ConfigKind::GoogleWorkspace)
        );
        assert_eq!(
            kind("kind", "google-workspace"),
            Ok(ConfigKind::GoogleWorkspace)
        );
        assert_eq!(mode("mode", "dry_run"), Ok(Mode::DryRun));
        assert_eq!(mode("mode", "dry-run"), Ok(Mode::DryRun));
        assert_eq!(role("people_admin"), Ok(Role::PeopleAdmin));
        assert_eq!(
            phone_region("phone_region", "gb").map(|r| r.code().to_owned()),
            Ok("GB".to_owned())
        );
    }
}
