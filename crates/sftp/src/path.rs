//! Client paths into the one folder a login sees. No client path is ever turned into a path
//! on the server's disk (uploads are spooled under generated names), so confinement does not
//! rest on canonicalising paths; this module only decides which name, if any, a path means.

use russh_sftp::protocol::StatusCode;
use russh_sftp::server::StatusReply;

/// What a client path names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// The folder itself.
    Root,
    /// A file in the folder.
    File(String),
}

/// The longest file name accepted, in bytes (the common file-system limit).
pub const MAX_NAME: usize = 255;

/// Read a client path. `.` components and repeated slashes are ignored; `..` is refused
/// rather than resolved, so no path can climb out of the folder; the folder has no
/// subfolders.
pub fn resolve(path: &str) -> Result<Target, StatusReply> {
    let parts: Vec<&str> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if parts.contains(&"..") {
        return Err(StatusCode::PermissionDenied
            .with_message("'..' is not allowed: your folder is the only one you can reach"));
    }
    match parts.as_slice() {
        [] => Ok(Target::Root),
        [name] => check_name(name).map(|()| Target::File((*name).to_owned())),
        _ => Err(StatusCode::NoSuchFile
            .with_message("there are no subfolders: upload files to the top of your folder")),
    }
}

fn check_name(name: &str) -> Result<(), StatusReply> {
    if name.len() > MAX_NAME {
        return Err(StatusCode::Failure.with_message(format!(
            "the file name is longer than {MAX_NAME} bytes: use a shorter name"
        )));
    }
    if name.chars().any(|c| c.is_control() || c == '\\') {
        return Err(StatusCode::Failure.with_message(
            "the file name contains a control character or a backslash: rename the file",
        ));
    }
    Ok(())
}

/// How the server treats a file when its upload completes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A temporary name that a client renames when the transfer is complete (WinSCP's
    /// `.filepart`, and the like): kept aside until then.
    Temporary,
    /// Anything else: the upload becomes a run (one that fails with a clear message when the
    /// file is not `.csv` or `.xlsx`).
    Final,
}

const TEMPORARY_SUFFIXES: [&str; 7] = [
    ".filepart",
    ".part",
    ".partial",
    ".tmp",
    ".temp",
    ".upload",
    "~",
];

pub fn kind(name: &str) -> Kind {
    let lower = name.to_ascii_lowercase();
    if name.starts_with('.') || TEMPORARY_SUFFIXES.iter().any(|s| lower.ends_with(s)) {
        Kind::Temporary
    } else {
        Kind::Final
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(path: &str) -> StatusCode {
        resolve(path).unwrap_err().status_code
    }

    #[test]
    fn the_folder_is_the_root_whatever_the_spelling() {
        for path in ["", "/", ".", "./", "//", "/./.", "/."] {
            assert_eq!(resolve(path).unwrap(), Target::Root, "{path:?}");
        }
    }

    #[test]
    fn names_are_read_relative_or_absolute() {
        for path in [
            "staff.csv",
            "/staff.csv",
            "./staff.csv",
            "//staff.csv",
            "/./staff.csv",
        ] {
            assert_eq!(
                resolve(path).unwrap(),
                Target::File("staff.csv".into()),
                "{path:?}"
            );
        }
    }

    #[test]
    fn climbing_out_is_refused() {
        for path in [
            "..",
            "/..",
            "../other/staff.csv",
            "/../../etc/passwd",
            "a/../b",
            "./..",
        ] {
            assert_eq!(code(path), StatusCode::PermissionDenied, "{path:?}");
        }
    }

    #[test]
    fn there_are_no_subfolders() {
        for path in ["/etc/passwd", "other/staff.csv", "/home/b/staff.csv"] {
            assert_eq!(code(path), StatusCode::NoSuchFile, "{path:?}");
        }
    }

    #[test]
    fn bad_names_are_refused_with_the_reason() {
        let long = "a".repeat(MAX_NAME + 1);
        assert!(
            resolve(&long)
                .unwrap_err()
                .error_message
                .unwrap()
                .contains("longer than")
        );
        assert_eq!(code("staff\n.csv"), StatusCode::Failure);
        assert_eq!(code("..\\..\\staff.csv"), StatusCode::Failure);
        assert_eq!(code("staff\0.csv"), StatusCode::Failure);
    }

    #[test]
    fn temporary_names_wait_for_their_rename() {
        for name in [
            "staff.csv.filepart",
            "staff.CSV.part",
            ".staff.csv",
            "staff.csv~",
            "x.tmp",
        ] {
            assert_eq!(kind(name), Kind::Temporary, "{name}");
        }
        for name in ["staff.csv", "staff.XLSX", "staff.txt", "staff"] {
            assert_eq!(kind(name), Kind::Final, "{name}");
        }
    }
}
