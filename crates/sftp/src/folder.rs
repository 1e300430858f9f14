//! One SFTP session inside a configuration's drop folder.
//!
//! The folder is virtual: it lists the uploads whose run is queued or in progress (from the
//! database, so every node shows the same) and the uploads still under a temporary name.
//! An upload is written to a spool file under a generated name; when it completes (closed
//! under its final name, or renamed to it) it is copied into the database with its queued run
//! in one transaction, and only then is the client's close or rename acknowledged.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use rollcall_domain::{ConfigId, RunStatus};
use rollcall_store::{OrgStore, SourceConfig};
use russh_sftp::protocol::{
    Attrs, Data, File, FileAttributes, Handle, Name, OpenFlags, Status, StatusCode, Version,
};
use russh_sftp::server::StatusReply;

use crate::path::{self, Kind, Target};
use crate::{Shared, format_bytes};

/// An upload kept under a temporary name until the client renames it.
#[derive(Debug)]
pub(crate) struct Pending {
    spool: PathBuf,
    size: u64,
    modified: SystemTime,
    /// The session that uploaded it: its spool file goes when that session ends unrenamed.
    session: u64,
}

/// Temporary uploads, per configuration, shared by the sessions of one node.
pub(crate) type PendingFiles = std::sync::Mutex<HashMap<ConfigId, HashMap<String, Pending>>>;

/// Bytes gathered before they are written to the spool file.
const WRITE_BUFFER: usize = 1 << 20;

struct Upload {
    name: String,
    spool: PathBuf,
    file: Arc<std::fs::File>,
    /// Bytes not yet written, which belong at `buffer_at` in the file.
    buffer: Vec<u8>,
    buffer_at: u64,
    size: u64,
    refused: Option<StatusReply>,
}

enum Open {
    Dir { listed: bool },
    Upload(Box<Upload>),
}

pub(crate) struct Folder {
    shared: Arc<Shared>,
    org: OrgStore,
    config: SourceConfig,
    session: u64,
    handles: HashMap<String, Open>,
    next_handle: u64,
}

fn status(id: u32) -> Status {
    Status {
        id,
        status_code: StatusCode::Ok,
        error_message: "Ok".into(),
        language_tag: "en-US".into(),
    }
}

fn failure(message: impl Into<String>) -> StatusReply {
    StatusCode::Failure.with_message(message)
}

fn storage_failure(e: impl std::fmt::Display) -> StatusReply {
    tracing::error!(error = %e, "SFTP storage failed");
    failure("the server could not store the file: try the upload again")
}

fn unix_seconds(time: SystemTime) -> u32 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
        .unwrap_or(0)
}

/// Owner names for `ls -l`: the login, and the service.
fn owned(mut attrs: FileAttributes, login: &str) -> FileAttributes {
    attrs.user = Some(login.to_owned());
    attrs.group = Some("rollcall".to_owned());
    attrs
}

fn dir_attrs() -> FileAttributes {
    FileAttributes {
        permissions: Some(0o040_755),
        ..FileAttributes::empty()
    }
}

fn file_attrs(size: u64, modified: u32) -> FileAttributes {
    FileAttributes {
        size: Some(size),
        permissions: Some(0o100_644),
        atime: Some(modified),
        mtime: Some(modified),
        ..FileAttributes::empty()
    }
}

/// Write `data` at `offset` of the spool file, off the async threads.
async fn write_at(file: &Arc<std::fs::File>, data: Vec<u8>, offset: u64) -> std::io::Result<()> {
    let file = file.clone();
    tokio::task::spawn_blocking(move || {
        use std::os::unix::fs::FileExt;
        file.write_all_at(&data, offset)
    })
    .await
    .map_err(std::io::Error::other)?
}

impl Folder {
    pub(crate) fn new(
        shared: Arc<Shared>,
        org: OrgStore,
        config: SourceConfig,
        session: u64,
    ) -> Folder {
        Folder {
            shared,
            org,
            config,
            session,
            handles: HashMap::new(),
            next_handle: 0,
        }
    }

    fn new_handle(&mut self, open: Open) -> String {
        self.next_handle += 1;
        let handle = self.next_handle.to_string();
        self.handles.insert(handle.clone(), open);
        handle
    }

    fn pending_lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<ConfigId, HashMap<String, Pending>>> {
        self.shared
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Every file the folder shows, by name (a newer upload hides an older one of the name).
    async fn entries(&self) -> Result<Vec<File>, StatusReply> {
        let mut files: HashMap<String, FileAttributes> = HashMap::new();
        let queued = self
            .org
            .queued_files(&self.config.id)
            .await
            .map_err(storage_failure)?;
        for q in queued {
            let seconds = u32::try_from(q.queued_at_ms / 1000).unwrap_or(0);
            files.insert(q.name, file_attrs(q.size, seconds));
        }
        if let Some(pending) = self.pending_lock().get(&self.config.id) {
            for (name, p) in pending {
                files.insert(name.clone(), file_attrs(p.size, unix_seconds(p.modified)));
            }
        }
        let login = self.config.sftp_user.clone().unwrap_or_default();
        let mut list: Vec<File> = files
            .into_iter()
            .map(|(name, attrs)| File::new(name, owned(attrs, &login)))
            .collect();
        list.sort_by(|a, b| a.filename.cmp(&b.filename));
        Ok(list)
    }

    async fn attrs_of(&self, path: &str) -> Result<FileAttributes, StatusReply> {
        match path::resolve(path)? {
            Target::Root => Ok(dir_attrs()),
            Target::File(name) => self
                .entries()
                .await?
                .into_iter()
                .find(|f| f.filename == name)
                .map(|f| f.attrs)
                .ok_or_else(|| StatusCode::NoSuchFile.with_message(format!("no file '{name}'"))),
        }
    }

    /// Store a completed upload with its queued run; the spool file goes afterwards.
    async fn enqueue(&self, name: &str, spool: &PathBuf) -> Result<(), StatusReply> {
        let file = tokio::fs::File::open(spool)
            .await
            .map_err(storage_failure)?;
        let reader = tokio::io::BufReader::with_capacity(1 << 20, file);
        let queued = self
            .shared
            .engine
            .enqueue_upload(&self.org, &self.config, name, reader)
            .await
            .map_err(storage_failure)?;
        let _ = tokio::fs::remove_file(spool).await;
        tracing::info!(run = %queued.id, config = %self.config.name, file = name, "upload stored; run queued");
        Ok(())
    }

    async fn finish_upload(&mut self, mut upload: Upload) -> Result<(), StatusReply> {
        if let Some(refused) = upload.refused.take() {
            let _ = tokio::fs::remove_file(&upload.spool).await;
            return Err(refused);
        }
        if !upload.buffer.is_empty() {
            let data = std::mem::take(&mut upload.buffer);
            if let Err(e) = write_at(&upload.file, data, upload.buffer_at).await {
                let _ = tokio::fs::remove_file(&upload.spool).await;
                return Err(storage_failure(e));
            }
        }
        drop(upload.file);
        match path::kind(&upload.name) {
            Kind::Temporary => {
                let replaced = self
                    .pending_lock()
                    .entry(self.config.id.clone())
                    .or_default()
                    .insert(
                        upload.name.clone(),
                        Pending {
                            spool: upload.spool,
                            size: upload.size,
                            modified: SystemTime::now(),
                            session: self.session,
                        },
                    );
                if let Some(old) = replaced {
                    let _ = std::fs::remove_file(old.spool);
                }
                Ok(())
            }
            Kind::Final => {
                let stored = self.enqueue(&upload.name, &upload.spool).await;
                if stored.is_err() {
                    let _ = tokio::fs::remove_file(&upload.spool).await;
                }
                stored
            }
        }
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        // Uploads the client never completed, and temporary files it never renamed.
        for (_, open) in self.handles.drain() {
            if let Open::Upload(upload) = open {
                let _ = std::fs::remove_file(&upload.spool);
            }
        }
        let mut pending = self
            .shared
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(files) = pending.get_mut(&self.config.id) {
            files.retain(|_, p| {
                let mine = p.session == self.session;
                if mine {
                    let _ = std::fs::remove_file(&p.spool);
                }
                !mine
            });
        }
    }
}

impl russh_sftp::server::Handler for Folder {
    type Error = StatusReply;

    fn unimplemented(&self) -> StatusReply {
        StatusCode::OpUnsupported.with_message("this operation is not supported on a drop folder")
    }

    async fn init(
        &mut self,
        _version: u32,
        _extensions: HashMap<String, String>,
    ) -> Result<Version, StatusReply> {
        Ok(Version::new())
    }

    async fn realpath(&mut self, id: u32, path: String) -> Result<Name, StatusReply> {
        let shown = match path::resolve(&path)? {
            Target::Root => "/".to_owned(),
            Target::File(name) => format!("/{name}"),
        };
        Ok(Name {
            id,
            files: vec![File::dummy(shown)],
        })
    }

    async fn stat(&mut self, id: u32, path: String) -> Result<Attrs, StatusReply> {
        let attrs = self.attrs_of(&path).await?;
        Ok(Attrs { id, attrs })
    }

    async fn lstat(&mut self, id: u32, path: String) -> Result<Attrs, StatusReply> {
        // There are no links: lstat is stat.
        let attrs = self.attrs_of(&path).await?;
        Ok(Attrs { id, attrs })
    }

    async fn fstat(&mut self, id: u32, handle: String) -> Result<Attrs, StatusReply> {
        let attrs = match self.handles.get(&handle) {
            Some(Open::Dir { .. }) => dir_attrs(),
            Some(Open::Upload(u)) => file_attrs(u.size, unix_seconds(SystemTime::now())),
            None => return Err(failure("unknown handle")),
        };
        Ok(Attrs { id, attrs })
    }

    async fn setstat(
        &mut self,
        id: u32,
        path: String,
        _attrs: FileAttributes,
    ) -> Result<Status, StatusReply> {
        // Clients set times and modes after an upload; there is nothing to set here, and
        // failing would make them report an error for an upload that worked.
        path::resolve(&path)?;
        Ok(status(id))
    }

    async fn fsetstat(
        &mut self,
        id: u32,
        handle: String,
        _attrs: FileAttributes,
    ) -> Result<Status, StatusReply> {
        if !self.handles.contains_key(&handle) {
            return Err(failure("unknown handle"));
        }
        Ok(status(id))
    }

    async fn opendir(&mut self, id: u32, path: String) -> Result<Handle, StatusReply> {
        match path::resolve(&path)? {
            Target::Root => Ok(Handle {
                id,
                handle: self.new_handle(Open::Dir { listed: false }),
            }),
            Target::File(name) => {
                Err(StatusCode::NoSuchFile.with_message(format!("'{name}' is not a folder")))
            }
        }
    }

    async fn readdir(&mut self, id: u32, handle: String) -> Result<Name, StatusReply> {
        match self.handles.get(&handle) {
            Some(Open::Dir { listed: false }) => {}
            Some(Open::Dir { listed: true }) => return Err(StatusCode::Eof.into()),
            _ => return Err(failure("unknown handle")),
        }
        let files = self.entries().await?;
        self.handles.insert(handle, Open::Dir { listed: true });
        Ok(Name { id, files })
    }

    async fn open(
        &mut self,
        id: u32,
        filename: String,
        pflags: OpenFlags,
        _attrs: FileAttributes,
    ) -> Result<Handle, StatusReply> {
        let Target::File(name) = path::resolve(&filename)? else {
            return Err(failure("the folder itself cannot be opened as a file"));
        };
        if !pflags.contains(OpenFlags::WRITE) {
            return Err(StatusCode::PermissionDenied
                .with_message("this is a drop folder: files can be uploaded, not downloaded"));
        }
        std::fs::create_dir_all(&self.shared.spool_dir).map_err(storage_failure)?;
        let spool = self
            .shared
            .spool_dir
            .join(format!("{}.upload", rollcall_store::new_id()));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&spool)
            .map_err(storage_failure)?;
        let upload = Upload {
            name,
            spool,
            file: Arc::new(file),
            buffer: Vec::new(),
            buffer_at: 0,
            size: 0,
            refused: None,
        };
        Ok(Handle {
            id,
            handle: self.new_handle(Open::Upload(Box::new(upload))),
        })
    }

    async fn write(
        &mut self,
        id: u32,
        handle: String,
        offset: u64,
        data: Vec<u8>,
    ) -> Result<Status, StatusReply> {
        let max_bytes = self.shared.max_bytes;
        let Some(Open::Upload(upload)) = self.handles.get_mut(&handle) else {
            return Err(failure("unknown handle"));
        };
        if let Some(refused) = &upload.refused {
            return Err(refused.clone());
        }
        let end = offset.saturating_add(data.len() as u64);
        if end > max_bytes {
            let refused = failure(format!(
                "the file is larger than the limit of {}: split it, or ask the operator to raise the limit",
                format_bytes(max_bytes)
            ));
            upload.refused = Some(refused.clone());
            upload.buffer = Vec::new();
            return Err(refused);
        }
        upload.size = upload.size.max(end);
        // Clients write in order, many requests in flight: gather them into large writes.
        let contiguous = offset == upload.buffer_at + upload.buffer.len() as u64;
        if !contiguous || upload.buffer.len() + data.len() > WRITE_BUFFER {
            let pending = std::mem::take(&mut upload.buffer);
            if !pending.is_empty() {
                write_at(&upload.file, pending, upload.buffer_at)
                    .await
                    .map_err(storage_failure)?;
            }
            upload.buffer_at = offset;
        }
        if upload.buffer.is_empty() {
            upload.buffer_at = offset;
        }
        upload.buffer.extend_from_slice(&data);
        Ok(status(id))
    }

    async fn read(
        &mut self,
        _id: u32,
        _handle: String,
        _offset: u64,
        _len: u32,
    ) -> Result<Data, StatusReply> {
        Err(StatusCode::PermissionDenied
            .with_message("this is a drop folder: files can be uploaded, not downloaded"))
    }

    async fn close(&mut self, id: u32, handle: String) -> Result<Status, StatusReply> {
        match self.handles.remove(&handle) {
            Some(Open::Dir { .. }) => Ok(status(id)),
            Some(Open::Upload(upload)) => {
                self.finish_upload(*upload).await?;
                Ok(status(id))
            }
            None => Err(failure("unknown handle")),
        }
    }

    async fn rename(
        &mut self,
        id: u32,
        oldpath: String,
        newpath: String,
    ) -> Result<Status, StatusReply> {
        let (Target::File(old), Target::File(new)) =
            (path::resolve(&oldpath)?, path::resolve(&newpath)?)
        else {
            return Err(StatusCode::PermissionDenied.with_message("the folder cannot be renamed"));
        };
        let taken = self
            .pending_lock()
            .get_mut(&self.config.id)
            .and_then(|files| files.remove(&old));
        let Some(pending) = taken else {
            let queued = self.entries().await?.iter().any(|f| f.filename == old);
            return Err(if queued {
                StatusCode::PermissionDenied
                    .with_message(format!("'{old}' is uploaded already and cannot be renamed"))
            } else {
                StatusCode::NoSuchFile.with_message(format!("no file '{old}'"))
            });
        };
        match path::kind(&new) {
            Kind::Temporary => {
                let replaced = self
                    .pending_lock()
                    .entry(self.config.id.clone())
                    .or_default()
                    .insert(new, pending);
                if let Some(old) = replaced {
                    let _ = std::fs::remove_file(old.spool);
                }
                Ok(status(id))
            }
            Kind::Final => {
                let stored = self.enqueue(&new, &pending.spool).await;
                if stored.is_err() {
                    // Put it back, so the client can try the rename again.
                    self.pending_lock()
                        .entry(self.config.id.clone())
                        .or_default()
                        .insert(old, pending);
                }
                stored.map(|()| status(id))
            }
        }
    }

    async fn remove(&mut self, id: u32, filename: String) -> Result<Status, StatusReply> {
        let Target::File(name) = path::resolve(&filename)? else {
            return Err(StatusCode::PermissionDenied.with_message("the folder cannot be removed"));
        };
        let taken = self
            .pending_lock()
            .get_mut(&self.config.id)
            .and_then(|files| files.remove(&name));
        if let Some(pending) = taken {
            let _ = tokio::fs::remove_file(&pending.spool).await;
            return Ok(status(id));
        }
        let queued = self
            .org
            .queued_files(&self.config.id)
            .await
            .map_err(storage_failure)?;
        // The newest upload of that name is the one the folder shows.
        let Some(file) = queued.into_iter().rev().find(|q| q.name == name) else {
            return Err(StatusCode::NoSuchFile.with_message(format!("no file '{name}'")));
        };
        if file.status != RunStatus::Queued {
            return Err(failure(format!(
                "'{name}' is being processed and can no longer be removed"
            )));
        }
        match self.org.cancel_run(&file.run_id).await {
            Ok(_) => {
                tracing::info!(run = %file.run_id, file = name, "queued upload removed: run cancelled");
                Ok(status(id))
            }
            Err(rollcall_store::StoreError::RunStatus { .. }) => Err(failure(format!(
                "'{name}' is being processed and can no longer be removed"
            ))),
            Err(e) => Err(storage_failure(e)),
        }
    }

    async fn mkdir(
        &mut self,
        _id: u32,
        _path: String,
        _attrs: FileAttributes,
    ) -> Result<Status, StatusReply> {
        Err(StatusCode::PermissionDenied
            .with_message("folders cannot be created: upload files to the top of your folder"))
    }

    async fn rmdir(&mut self, _id: u32, _path: String) -> Result<Status, StatusReply> {
        Err(StatusCode::PermissionDenied.with_message("folders cannot be removed"))
    }

    async fn symlink(
        &mut self,
        _id: u32,
        _linkpath: String,
        _targetpath: String,
    ) -> Result<Status, StatusReply> {
        Err(StatusCode::PermissionDenied.with_message("links are not allowed in a drop folder"))
    }

    async fn readlink(&mut self, _id: u32, _path: String) -> Result<Name, StatusReply> {
        Err(StatusCode::NoSuchFile.with_message("there are no links in a drop folder"))
    }
}
