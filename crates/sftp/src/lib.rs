//! The SFTP drop folders of SPEC §5: an SSH server (russh) that offers only the `sftp`
//! subsystem, where each `sftp` configuration's login sees only its own folder, and every
//! completed upload is stored in the database with a queued run before the client is told
//! that its upload succeeded.
//!
//! No shell, no exec, no port forwarding, no agent forwarding: every other channel or request
//! is refused. Password sign-in goes through the shared sign-in guard (rollcall-signin:
//! throttled per login and address and per address, bounded hashing); key sign-in is never
//! throttled, so password guesses cannot stop a customer's uploads.

mod folder;
pub mod path;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rollcall_domain::throttle::for_log;
use rollcall_signin::{Guard, Outcome, Surface};

use anyhow::Context;
use rollcall_store::{OrgStore, SftpLogin, SourceConfig, Store};
use russh::keys::ssh_key::{self, HashAlg, LineEnding, PrivateKey, PublicKey};
use russh::server::{Auth, ChannelOpenHandle, Msg, PublicKeyOffer, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId, MethodKind, MethodSet};
use tokio::net::TcpListener;

/// Settings of the SFTP server.
#[derive(Clone, Debug)]
pub struct SftpSettings {
    pub addr: SocketAddr,
    /// Holds the host key; uploads are spooled under it until they are stored.
    pub data_dir: PathBuf,
    /// The largest file accepted, in bytes.
    pub max_bytes: u64,
    /// Password sign-in's protection, shared with the admin surfaces.
    pub sign_ins: Arc<Guard>,
}

/// What every session of the server shares.
pub(crate) struct Shared {
    store: Store,
    spool_dir: PathBuf,
    max_bytes: u64,
    pending: folder::PendingFiles,
    /// Completed uploads are handed to the run engine, which queues their runs.
    engine: rollcall_sync::Engine,
    sign_ins: Arc<Guard>,
    sessions: AtomicU64,
}

pub(crate) fn format_bytes(n: u64) -> String {
    if n >= 1 << 20 {
        format!("{} MiB", n >> 20)
    } else {
        format!("{n} bytes")
    }
}

/// The host key, made on first start and kept in the data directory, so that clients see the
/// same fingerprint across restarts.
pub fn load_or_create_host_key(data_dir: &Path) -> anyhow::Result<PrivateKey> {
    let path = data_dir.join("ssh_host_ed25519_key");
    if path.exists() {
        return PrivateKey::read_openssh_file(&path)
            .with_context(|| format!("cannot read the SSH host key {}", path.display()));
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed)
        .map_err(|e| anyhow::anyhow!("no randomness for the host key: {e}"))?;
    let key = PrivateKey::from(ssh_key::private::Ed25519Keypair::from_seed(&seed));
    let text = key.to_openssh(LineEnding::LF)?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&path)
        .with_context(|| format!("cannot create the SSH host key {}", path.display()))?;
    std::io::Write::write_all(&mut file, text.as_bytes())?;
    file.sync_all()?;
    Ok(key)
}

/// A bound SFTP server, ready to run.
pub struct SftpServer {
    listener: TcpListener,
    config: Arc<russh::server::Config>,
    shared: Arc<Shared>,
    fingerprint: String,
}

impl SftpServer {
    pub async fn bind(
        store: Store,
        settings: &SftpSettings,
        engine: rollcall_sync::Engine,
    ) -> anyhow::Result<SftpServer> {
        let key = load_or_create_host_key(&settings.data_dir)?;
        let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
        let spool_dir = settings.data_dir.join("spool");
        // Spooled uploads of a previous process were never acknowledged: the clients retry.
        let _ = std::fs::remove_dir_all(&spool_dir);
        // Uploads wait here: readable by the service's own user only.
        std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
            .create(&spool_dir)
            .with_context(|| format!("cannot create {}", spool_dir.display()))?;
        let listener = TcpListener::bind(settings.addr)
            .await
            .with_context(|| format!("cannot listen for SFTP on {}", settings.addr))?;
        let config = russh::server::Config {
            server_id: russh::SshId::Standard("SSH-2.0-rollcall".into()),
            methods: MethodSet::from(&[MethodKind::PublicKey, MethodKind::Password][..]),
            auth_rejection_time: Duration::from_millis(500),
            // OpenSSH starts with a "none" attempt to learn the methods: answer it at once.
            auth_rejection_time_initial: Some(Duration::ZERO),
            keys: vec![key],
            max_auth_attempts: 6,
            inactivity_timeout: Some(Duration::from_secs(900)),
            nodelay: true,
            window_size: 8 << 20,
            channel_buffer_size: 256,
            ..Default::default()
        };
        Ok(SftpServer {
            listener,
            config: Arc::new(config),
            shared: Arc::new(Shared {
                store,
                spool_dir,
                max_bytes: settings.max_bytes,
                pending: Default::default(),
                engine,
                sign_ins: settings.sign_ins.clone(),
                sessions: AtomicU64::new(0),
            }),
            fingerprint,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// `SHA256:…`, as `ssh-keygen -lf` shows it.
    pub fn host_key_fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Serve until `shutdown` completes; open sessions are then disconnected (an upload that
    /// was not acknowledged is not stored, and the client reports it).
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send,
    ) -> anyhow::Result<()> {
        let mut server = Server {
            shared: self.shared.clone(),
        };
        let running =
            russh::server::Server::run_on_socket(&mut server, self.config, &self.listener);
        let handle = running.handle();
        tokio::select! {
            result = running => result.context("SFTP server failed"),
            () = shutdown => {
                handle.shutdown("the server is shutting down".into());
                Ok(())
            }
        }
    }
}

struct Server {
    shared: Arc<Shared>,
}

impl russh::server::Server for Server {
    type Handler = SshSession;

    fn new_client(&mut self, peer: Option<SocketAddr>) -> SshSession {
        SshSession {
            shared: self.shared.clone(),
            peer,
            id: self.shared.sessions.fetch_add(1, Ordering::Relaxed),
            login: None,
            channels: HashMap::new(),
        }
    }
}

/// One SSH connection.
pub struct SshSession {
    shared: Arc<Shared>,
    peer: Option<SocketAddr>,
    id: u64,
    login: Option<(OrgStore, SourceConfig)>,
    channels: HashMap<ChannelId, Channel<Msg>>,
}

fn key_allowed(login: &SftpLogin, key: &PublicKey) -> bool {
    login.keys.iter().any(|line| {
        PublicKey::from_openssh(line.trim()).is_ok_and(|k| k.key_data() == key.key_data())
    })
}

impl SshSession {
    /// The client's address as the service log shows it.
    fn peer(&self) -> String {
        self.peer
            .map_or_else(|| "unknown".to_owned(), |p| p.to_string())
    }

    fn ip(&self) -> IpAddr {
        self.peer
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |p| p.ip())
    }

    /// The login `user` names; a disabled configuration's login is refused like an unknown one.
    async fn lookup(&self, user: &str) -> Result<Option<SftpLogin>, russh::Error> {
        let login = self.shared.store.sftp_login(user).await.map_err(|e| {
            tracing::error!(error = %e, "SFTP sign-in could not read the configuration");
            russh::Error::Disconnect
        })?;
        Ok(login.filter(|login| {
            let enabled = login.config.disabled_at.is_none();
            if !enabled {
                tracing::warn!(user = %for_log(user), config = %login.config.name, peer = %self.peer(),
                    "SFTP sign-in refused: the configuration is disabled");
            }
            enabled
        }))
    }

    fn accept(&mut self, login: SftpLogin, method: &str) -> Auth {
        tracing::info!(
            user = login.config.sftp_user.as_deref().unwrap_or_default(),
            config = %login.config.name, peer = %self.peer(), method, "SFTP sign-in"
        );
        let org = self.shared.store.org(login.config.org_id.clone());
        self.login = Some((org, login.config));
        Auth::Accept
    }
}

impl russh::server::Handler for SshSession {
    type Error = russh::Error;

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        let lookup = async {
            self.lookup(user).await.map(|found| {
                found.map(|login| {
                    let hash = login.password_hash.clone();
                    (login, hash)
                })
            })
        };
        let outcome = self
            .shared
            .sign_ins
            .sign_in(Surface::Sftp, user, self.ip(), password, lookup)
            .await?;
        match outcome {
            Outcome::SignedIn(login) => Ok(self.accept(login, "password")),
            Outcome::Failed | Outcome::TooMany { .. } | Outcome::Busy => Ok(Auth::reject()),
        }
    }

    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        // Clients offer every key they hold; an unknown one is not a failed attempt.
        let known = self
            .lookup(user)
            .await?
            .is_some_and(|login| key_allowed(&login, offer.public_key));
        Ok(if known { Auth::Accept } else { Auth::reject() })
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        // Not throttled: a key cannot be guessed, and password guesses must not stop a
        // customer's uploads.
        match self.lookup(user).await? {
            Some(login) if key_allowed(&login, key.public_key) => {
                Ok(self.accept(login, "publickey"))
            }
            _ => {
                tracing::warn!(user = %for_log(user), peer = %self.peer(), "SFTP key sign-in failed: key not authorised");
                Ok(Auth::reject())
            }
        }
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.channels.insert(channel.id(), channel);
        reply.accept().await;
        Ok(())
    }

    async fn channel_eof(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.close(channel)?;
        Ok(())
    }

    async fn subsystem_request(
        &mut self,
        channel_id: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let channel = self.channels.remove(&channel_id);
        match (name, channel, &self.login) {
            ("sftp", Some(channel), Some((org, config))) => {
                session.channel_success(channel_id)?;
                let folder =
                    folder::Folder::new(self.shared.clone(), org.clone(), config.clone(), self.id);
                russh_sftp::server::run(channel.into_stream(), folder).await;
            }
            _ => {
                tracing::warn!(subsystem = name, peer = %self.peer(), "refused subsystem");
                session.channel_failure(channel_id)?;
            }
        }
        Ok(())
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        tracing::warn!(peer = %self.peer(), "refused a shell: this server offers SFTP only");
        session.channel_failure(channel)?;
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        _data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        tracing::warn!(peer = %self.peer(), "refused a command: this server offers SFTP only");
        session.channel_failure(channel)?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        _col_width: u32,
        _row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)?;
        Ok(())
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        _variable_name: &str,
        _variable_value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_key_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create_host_key(dir.path()).unwrap();
        let again = load_or_create_host_key(dir.path()).unwrap();
        assert_eq!(
            first.fingerprint(HashAlg::Sha256),
            again.fingerprint(HashAlg::Sha256)
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("ssh_host_ed25519_key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
