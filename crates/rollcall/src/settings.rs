//! Settings, in layers where the last wins: defaults, the TOML file, `ROLLCALL_*` environment
//! variables, command-line flags. Unknown keys in the file are an error; secrets may come
//! from `*_FILE` variables (`ROLLCALL_DATABASE_URL_FILE`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use rollcall_domain::client_address::TrustedProxies;
use rollcall_domain::throttle;
use rollcall_signin::GuardSettings;
use rollcall_store::DatabaseUrl;

use rollcall_cli::args::DbArgs;

pub const DEFAULT_DATA_DIR: &str = "rollcall-data";
pub const DEFAULT_HTTP: &str = "127.0.0.1:8080";
pub const DEFAULT_SFTP: &str = "127.0.0.1:2222";

/// The settings file.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub http: Option<String>,
    pub sftp: Option<String>,
    /// `text` (default) or `json`.
    pub log_format: Option<String>,
    pub max_file_bytes: Option<u64>,
    pub max_file_rows: Option<u64>,
    pub max_xlsx_decompressed_bytes: Option<u64>,
    /// The URN of rollcall's SCIM user extension (SPEC §2).
    pub scim_extension_urn: Option<String>,
    /// How many queued runs this node processes at once (each of a different configuration);
    /// 0 leaves them to other nodes.
    pub run_workers: Option<u64>,
    /// How long uploaded files are kept after their run ends, in days.
    pub file_retention_days: Option<u64>,
    /// Mark the admin session cookie `Secure` (set when rollcall is reached over HTTPS).
    pub secure_cookies: Option<bool>,
    /// Reverse proxies (addresses or networks) whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Option<Vec<String>>,
    /// Failed sign-ins of one account from one address before it must wait.
    pub sign_in_free_failures: Option<u64>,
    /// The longest wait after repeated failed sign-ins, in seconds.
    pub sign_in_max_delay_secs: Option<u64>,
    /// Failed sign-ins one address may have (refilled over an hour).
    pub sign_in_address_failures: Option<u64>,
    /// Password checks at once (each holds about 19 MiB); 0: one per core.
    pub password_hashing_concurrency: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogStyle {
    Text,
    Json,
}

/// Resolved settings.
#[derive(Clone, Debug)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub database_url: DatabaseUrl,
    pub http: SocketAddr,
    pub sftp: SocketAddr,
    pub log_style: LogStyle,
    pub limits: rollcall_hrfile::Limits,
    pub scim_extension_urn: String,
    pub run_workers: usize,
    pub file_retention: std::time::Duration,
    pub secure_cookies: bool,
    pub trusted_proxies: TrustedProxies,
    /// Sign-in protection (docs/SECURITY.md).
    pub sign_in: GuardSettings,
}

pub const DEFAULT_RUN_WORKERS: u64 = 2;
pub const DEFAULT_FILE_RETENTION_DAYS: u64 = 30;

/// The default URN of the SCIM user extension for rollcall's own attributes.
pub const DEFAULT_SCIM_EXTENSION_URN: &str =
    "urn:ietf:params:scim:schemas:extension:rollcall:2.0:User";

/// Where each layer's values come from; the environment is passed in so tests can set it.
pub struct Layers<'a> {
    pub file: Option<&'a Path>,
    pub env: &'a dyn Fn(&str) -> Option<String>,
    pub db: &'a DbArgs,
    pub http: Option<&'a str>,
    pub sftp: Option<&'a str>,
}

fn env_value(env: &dyn Fn(&str) -> Option<String>, name: &str) -> anyhow::Result<Option<String>> {
    if let Some(v) = env(name) {
        return Ok(Some(v));
    }
    match env(&format!("{name}_FILE")) {
        Some(path) => {
            let v = std::fs::read_to_string(&path)
                .with_context(|| format!("while reading {name}_FILE ({path})"))?;
            Ok(Some(v.trim().to_owned()))
        }
        None => Ok(None),
    }
}

fn addr(what: &str, value: &str) -> anyhow::Result<SocketAddr> {
    value
        .parse()
        .with_context(|| format!("{what} address '{value}' is not HOST:PORT (e.g. 127.0.0.1:8080)"))
}

impl Settings {
    pub fn resolve(layers: Layers<'_>) -> anyhow::Result<Settings> {
        let file: FileSettings = match layers.file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read the settings file {}", path.display()))?;
                toml::from_str(&text).map_err(|e| {
                    anyhow::anyhow!(
                        "settings file {}: {}",
                        path.display(),
                        e.message().lines().next().unwrap_or("invalid")
                    )
                })?
            }
            None => FileSettings::default(),
        };
        let env = layers.env;
        let pick = |flag: Option<String>,
                    var: &str,
                    file: Option<String>|
         -> anyhow::Result<Option<String>> {
            Ok(flag.or(env_value(env, var)?).or(file))
        };

        let data_dir = pick(
            layers.db.data_dir.as_ref().map(|p| p.display().to_string()),
            "ROLLCALL_DATA_DIR",
            file.data_dir.map(|p| p.display().to_string()),
        )?
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let database_url = match pick(
            layers.db.database_url.clone(),
            "ROLLCALL_DATABASE_URL",
            file.database_url,
        )? {
            Some(url) => url
                .parse::<DatabaseUrl>()
                .map_err(|e| anyhow::anyhow!("--database-url: {e}"))?,
            None => DatabaseUrl::sqlite_in(&data_dir),
        };
        let http = pick(layers.http.map(str::to_owned), "ROLLCALL_HTTP", file.http)?
            .unwrap_or_else(|| DEFAULT_HTTP.into());
        let sftp = pick(layers.sftp.map(str::to_owned), "ROLLCALL_SFTP", file.sftp)?
            .unwrap_or_else(|| DEFAULT_SFTP.into());
        let log_style = match pick(None, "ROLLCALL_LOG_FORMAT", file.log_format)?.as_deref() {
            None | Some("text") => LogStyle::Text,
            Some("json") => LogStyle::Json,
            Some(other) => bail!("log format '{other}' is not text or json"),
        };
        let number = |var: &str, file: Option<u64>, default: u64| -> anyhow::Result<u64> {
            match env_value(env, var)? {
                Some(v) => v
                    .parse()
                    .with_context(|| format!("{var}='{v}' is not a whole number")),
                None => Ok(file.unwrap_or(default)),
            }
        };
        let defaults = rollcall_hrfile::Limits::default();
        let scim_extension_urn =
            pick(None, "ROLLCALL_SCIM_EXTENSION_URN", file.scim_extension_urn)?
                .unwrap_or_else(|| DEFAULT_SCIM_EXTENSION_URN.to_owned());
        if !scim_extension_urn.starts_with("urn:")
            || scim_extension_urn.contains(char::is_whitespace)
        {
            bail!(
                "SCIM extension URN '{scim_extension_urn}' must be a URN without spaces, e.g. {DEFAULT_SCIM_EXTENSION_URN}"
            );
        }
        let run_workers = number(
            "ROLLCALL_RUN_WORKERS",
            file.run_workers,
            DEFAULT_RUN_WORKERS,
        )?;
        // 0: this node takes uploads but leaves their runs to other nodes.
        if run_workers > 64 {
            bail!("run workers must be between 0 and 64, not {run_workers}");
        }
        let retention_days = number(
            "ROLLCALL_FILE_RETENTION_DAYS",
            file.file_retention_days,
            DEFAULT_FILE_RETENTION_DAYS,
        )?;
        let secure_cookies = match env_value(env, "ROLLCALL_SECURE_COOKIES")?.as_deref() {
            None => file.secure_cookies.unwrap_or(false),
            Some("true" | "1") => true,
            Some("false" | "0") => false,
            Some(other) => bail!("ROLLCALL_SECURE_COOKIES='{other}' is not true or false"),
        };
        let trusted_proxies = match env_value(env, "ROLLCALL_TRUSTED_PROXIES")? {
            Some(list) => TrustedProxies::parse(list.split(',')),
            None => {
                TrustedProxies::parse(file.trusted_proxies.iter().flatten().map(String::as_str))
            }
        }
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        let policy = throttle::Policy::default();
        let sign_in = sign_in_settings(
            number(
                "ROLLCALL_SIGN_IN_FREE_FAILURES",
                file.sign_in_free_failures,
                u64::from(policy.free_failures),
            )?,
            number(
                "ROLLCALL_SIGN_IN_MAX_DELAY_SECS",
                file.sign_in_max_delay_secs,
                policy.max_delay.as_secs(),
            )?,
            number(
                "ROLLCALL_SIGN_IN_ADDRESS_FAILURES",
                file.sign_in_address_failures,
                u64::from(policy.address_failures),
            )?,
            number(
                "ROLLCALL_PASSWORD_HASHING_CONCURRENCY",
                file.password_hashing_concurrency,
                0,
            )?,
        )?;
        Ok(Settings {
            secure_cookies,
            trusted_proxies,
            sign_in,
            run_workers: usize::try_from(run_workers).unwrap_or(0),
            file_retention: std::time::Duration::from_secs(retention_days.saturating_mul(86_400)),
            data_dir,
            database_url,
            http: addr("HTTP", &http)?,
            sftp: addr("SFTP", &sftp)?,
            log_style,
            scim_extension_urn,
            limits: rollcall_hrfile::Limits {
                max_bytes: number(
                    "ROLLCALL_MAX_FILE_BYTES",
                    file.max_file_bytes,
                    defaults.max_bytes,
                )?,
                max_rows: number(
                    "ROLLCALL_MAX_FILE_ROWS",
                    file.max_file_rows,
                    defaults.max_rows,
                )?,
                max_xlsx_decompressed_bytes: number(
                    "ROLLCALL_MAX_XLSX_DECOMPRESSED_BYTES",
                    file.max_xlsx_decompressed_bytes,
                    defaults.max_xlsx_decompressed_bytes,
                )?,
            },
        })
    }
}

/// The sign-in guard's settings, checked.
fn sign_in_settings(
    free_failures: u64,
    max_delay: u64,
    address_failures: u64,
    hashing: u64,
) -> anyhow::Result<GuardSettings> {
    if free_failures > 100 {
        bail!("sign-in free failures must be between 0 and 100, not {free_failures}");
    }
    if !(1..=86_400).contains(&max_delay) {
        bail!("the sign-in's longest wait must be between 1 and 86400 seconds, not {max_delay}");
    }
    if !(1..=100_000).contains(&address_failures) {
        bail!("sign-in failures per address must be between 1 and 100000, not {address_failures}");
    }
    if hashing > 1024 {
        bail!("password hashing concurrency must be between 0 and 1024, not {hashing}");
    }
    let policy = throttle::Policy {
        free_failures: u32::try_from(free_failures)?,
        max_delay: std::time::Duration::from_secs(max_delay),
        address_failures: u32::try_from(address_failures)?,
        ..throttle::Policy::default()
    };
    Ok(GuardSettings::new(policy, usize::try_from(hashing)?))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn resolve(
        file: Option<&str>,
        env: &[(&str, &str)],
        db: DbArgs,
        http: Option<&str>,
    ) -> anyhow::Result<Settings> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rollcall.toml");
        if let Some(text) = file {
            std::fs::write(&path, text).unwrap();
        }
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let lookup = move |k: &str| env.get(k).cloned();
        Settings::resolve(Layers {
            file: file.map(|_| path.as_path()),
            env: &lookup,
            db: &db,
            http,
            sftp: None,
        })
    }

    #[test]
    fn defaults() {
        let s = resolve(None, &[], DbArgs::default(), None).unwrap();
        assert_eq!(s.data_dir, PathBuf::from("rollcall-data"));
        assert_eq!(s.http.to_string(), "127.0.0.1:8080");
        assert_eq!(s.sftp.to_string(), "127.0.0.1:2222");
        assert!(
            s.database_url
                .expose()
                .starts_with("sqlite://rollcall-data/rollcall.db")
        );
    }

    #[test]
    fn the_last_layer_wins() {
        let file = "http = \"127.0.0.1:1000\"\ndata_dir = \"/from-file\"\n";
        let s = resolve(Some(file), &[], DbArgs::default(), None).unwrap();
        assert_eq!(s.http.port(), 1000);
        let s = resolve(
            Some(file),
            &[("ROLLCALL_HTTP", "127.0.0.1:2000")],
            DbArgs::default(),
            None,
        )
        .unwrap();
        assert_eq!(s.http.port(), 2000);
        assert_eq!(s.data_dir, PathBuf::from("/from-file"));
        let s = resolve(
            Some(file),
            &[("ROLLCALL_HTTP", "127.0.0.1:2000")],
            DbArgs::default(),
            Some("127.0.0.1:3000"),
        )
        .unwrap();
        assert_eq!(s.http.port(), 3000);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        assert!(
            resolve(Some("htp = \"x\"\n"), &[], DbArgs::default(), None)
                .unwrap_err()
                .to_string()
                .contains("unknown field")
        );
        assert!(
            resolve(
                None,
                &[("ROLLCALL_HTTP", "nowhere")],
                DbArgs::default(),
                None
            )
            .is_err()
        );
        let db = DbArgs {
            data_dir: None,
            database_url: Some("mysql://x".into()),
        };
        assert!(resolve(None, &[], db, None).is_err());
    }

    #[test]
    fn secrets_from_files() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("url");
        std::fs::write(&secret, "postgres://u:pw@db/rollcall\n").unwrap();
        let s = resolve(
            None,
            &[("ROLLCALL_DATABASE_URL_FILE", secret.to_str().unwrap())],
            DbArgs::default(),
            None,
        )
        .unwrap();
        assert_eq!(s.database_url.expose(), "postgres://u:pw@db/rollcall");
    }

    #[test]
    fn sign_in_protection_defaults_and_layers() {
        let s = resolve(None, &[], DbArgs::default(), None).unwrap();
        assert!(s.trusted_proxies.is_empty());
        assert_eq!(
            s.sign_in.policy,
            rollcall_domain::throttle::Policy::default()
        );
        assert!(s.sign_in.hashing >= 1, "one per core");
        assert_eq!(s.sign_in.queue, s.sign_in.hashing * 8);

        let file = "trusted_proxies = [\"10.0.0.0/8\", \"192.0.2.10\"]\n\
                    sign_in_free_failures = 3\nsign_in_max_delay_secs = 60\n\
                    sign_in_address_failures = 12\npassword_hashing_concurrency = 4\n";
        let s = resolve(Some(file), &[], DbArgs::default(), None).unwrap();
        let ip = |t: &str| t.parse::<std::net::IpAddr>().unwrap();
        assert!(s.trusted_proxies.trusts(ip("10.9.8.7")));
        assert!(s.trusted_proxies.trusts(ip("192.0.2.10")));
        assert!(!s.trusted_proxies.trusts(ip("192.0.2.11")));
        assert_eq!(s.sign_in.policy.free_failures, 3);
        assert_eq!(s.sign_in.policy.max_delay.as_secs(), 60);
        assert_eq!(s.sign_in.policy.address_failures, 12);
        assert_eq!((s.sign_in.hashing, s.sign_in.queue), (4, 32));

        // The environment wins; a list there is comma-separated.
        let s = resolve(
            Some(file),
            &[
                ("ROLLCALL_TRUSTED_PROXIES", "127.0.0.1, ::1"),
                ("ROLLCALL_SIGN_IN_FREE_FAILURES", "0"),
            ],
            DbArgs::default(),
            None,
        )
        .unwrap();
        assert!(s.trusted_proxies.trusts(ip("::1")));
        assert!(!s.trusted_proxies.trusts(ip("10.9.8.7")));
        assert_eq!(s.sign_in.policy.free_failures, 0);
    }

    #[test]
    fn bad_sign_in_settings_are_errors() {
        // (variable, value, the error names)
        let table = [
            (
                "ROLLCALL_TRUSTED_PROXIES",
                "proxy.example",
                "trusted proxy 'proxy.example'",
            ),
            (
                "ROLLCALL_TRUSTED_PROXIES",
                "10.0.0.0/40",
                "trusted proxy '10.0.0.0/40'",
            ),
            ("ROLLCALL_SIGN_IN_FREE_FAILURES", "101", "free failures"),
            ("ROLLCALL_SIGN_IN_MAX_DELAY_SECS", "0", "longest wait"),
            (
                "ROLLCALL_SIGN_IN_ADDRESS_FAILURES",
                "0",
                "failures per address",
            ),
            (
                "ROLLCALL_PASSWORD_HASHING_CONCURRENCY",
                "-1",
                "not a whole number",
            ),
        ];
        for (var, value, names) in table {
            let error = resolve(None, &[(var, value)], DbArgs::default(), None)
                .unwrap_err()
                .to_string();
            assert!(error.contains(names), "{var}={value}: {error}");
        }
    }
}
