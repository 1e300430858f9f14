//! What an operator types when setting up an organisation (SPEC §11): names, SFTP logins and
//! keys, passwords. Each is parsed once, where it arrives, with the reason and the fix when
//! it is refused; past the parser it is trusted.

use std::fmt;

/// A display name (of an organisation, a configuration): trimmed, 1 to `MAX` printable
/// characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Name<const MAX: usize>(String);

/// An organisation's name.
pub type OrgName = Name<200>;
/// A configuration's name, unique in its organisation.
pub type ConfigName = Name<100>;

impl<const MAX: usize> Name<MAX> {
    pub fn parse(raw: &str) -> Result<Name<MAX>, String> {
        let name = raw.trim();
        if name.is_empty() || name.chars().count() > MAX || name.chars().any(char::is_control) {
            return Err(format!("must have 1 to {MAX} printable characters"));
        }
        Ok(Name(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl<const MAX: usize> fmt::Display for Name<MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An SFTP login: 1 to 64 ASCII letters, digits, `.`, `_` or `-` (safe in any SSH client's
/// `user@host` and in a log line).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SftpUser(String);

impl SftpUser {
    pub fn parse(raw: &str) -> Result<SftpUser, String> {
        let ok = !raw.is_empty()
            && raw.len() <= 64
            && raw
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        if ok {
            Ok(SftpUser(raw.to_owned()))
        } else {
            Err("the SFTP user must have 1 to 64 letters, digits, '.', '_' or '-'".into())
        }
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// An OpenSSH public key line, `TYPE BASE64 [comment]`, as found in a `.pub` file (the first
/// line that is not blank or a `#` comment).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SshPublicKey(String);

impl SshPublicKey {
    /// `None` when the text holds no such line.
    pub fn parse(text: &str) -> Option<SshPublicKey> {
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))?;
        let mut parts = line.split_whitespace();
        let (kind, body) = (parts.next()?, parts.next()?);
        let known =
            kind.starts_with("ssh-") || kind.starts_with("ecdsa-sha2-") || kind.starts_with("sk-");
        let base64 = body
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+/=".contains(c));
        (known && base64).then(|| SshPublicKey(line.to_owned()))
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A password being set (an admin's, an SFTP login's): at least 12 characters. Not kept:
/// hash it and drop it.
pub struct NewPassword(String);

impl NewPassword {
    pub const MIN_CHARS: usize = 12;

    pub fn parse(raw: String) -> Result<NewPassword, String> {
        if raw.chars().count() < Self::MIN_CHARS {
            return Err(format!("must have at least {} characters", Self::MIN_CHARS));
        }
        Ok(NewPassword(raw))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NewPassword(…)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_printable_and_bounded() {
        assert_eq!(OrgName::parse("  Acme Ltd ").unwrap().as_str(), "Acme Ltd");
        assert_eq!(
            ConfigName::parse(&"é".repeat(100))
                .unwrap()
                .as_str()
                .chars()
                .count(),
            100
        );
        for bad in ["", "   ", "Acme\nLtd", "Tab\there"] {
            assert!(OrgName::parse(bad).is_err(), "{bad:?}");
        }
        assert!(ConfigName::parse(&"x".repeat(101)).is_err());
        assert!(OrgName::parse(&"x".repeat(200)).is_ok());
        assert!(OrgName::parse(&"x".repeat(201)).is_err());
        assert_eq!(
            ConfigName::parse("").unwrap_err(),
            "must have 1 to 100 printable characters"
        );
    }

    #[test]
    fn sftp_users_are_safe_ascii() {
        for good in ["payroll", "acme.hr-01", "A_B", &"a".repeat(64)] {
            assert!(SftpUser::parse(good).is_ok(), "{good}");
        }
        for bad in ["", "pay roll", "päyroll", "a@b", "../x", &"a".repeat(65)] {
            assert!(SftpUser::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn public_keys_are_openssh_lines() {
        let key = SshPublicKey::parse("# mine\n\nssh-ed25519 AAAAC3Nza+/= me@host\n").unwrap();
        assert_eq!(key.into_string(), "ssh-ed25519 AAAAC3Nza+/= me@host");
        assert!(SshPublicKey::parse("ecdsa-sha2-nistp256 AAAA").is_some());
        assert!(SshPublicKey::parse("sk-ssh-ed25519@openssh.com AAAA x").is_some());
        for bad in [
            "",
            "# only a comment",
            "ssh-ed25519",
            "rsa AAAA",
            "ssh-rsa AAA<script>",
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n",
        ] {
            assert!(SshPublicKey::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn new_passwords_have_twelve_characters() {
        assert!(NewPassword::parse("x".repeat(11)).is_err());
        assert_eq!(
            NewPassword::parse("ü".repeat(12)).unwrap().expose().len(),
            24
        );
        assert_eq!(
            format!("{:?}", NewPassword::parse("secret secret".into()).unwrap()),
            "NewPassword(…)"
        );
    }
}
