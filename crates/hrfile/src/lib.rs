//! HR files: the operator's mapping file, and CSV and XLSX files read row by row into
//! validated records (SPEC §4, §5).

pub mod csvfile;
mod header;
pub mod mapping_file;
pub mod xlsxfile;

use rollcall_domain::LogRow;
use rollcall_domain::record::BatchItem;

/// A file-level problem: the run fails as Data Load Failed and the error log names each one
/// with how to fix it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileProblem {
    /// The file's line, when the problem is on one.
    pub line: Option<u64>,
    pub message: String,
    pub additional_data: String,
}

impl FileProblem {
    pub fn new(
        line: Option<u64>,
        message: impl Into<String>,
        additional_data: impl Into<String>,
    ) -> FileProblem {
        FileProblem {
            line,
            message: message.into(),
            additional_data: additional_data.into(),
        }
    }

    pub fn log_row(&self) -> LogRow {
        LogRow {
            row: self.line,
            additional_data: self.additional_data.clone(),
            ..LogRow::load_failed(self.message.clone())
        }
    }
}

/// Limits that protect the service from runaway files.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_bytes: u64,
    pub max_rows: u64,
    /// XLSX only: how many bytes all the parts of the workbook may decompress to, together.
    /// A zip bomb is refused before anything is parsed.
    pub max_xlsx_decompressed_bytes: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_bytes: 1 << 30,
            max_rows: 2_000_000,
            max_xlsx_decompressed_bytes: 512 << 20,
        }
    }
}

// File-level problems that the CSV and XLSX readers share, so that both say the same thing.

pub(crate) fn too_big(limits: Limits) -> FileProblem {
    FileProblem::new(
        None,
        format!(
            "The file is larger than {} bytes, the limit: split it into several files",
            limits.max_bytes
        ),
        format!("max_bytes={}", limits.max_bytes),
    )
}

pub(crate) fn too_many_rows(limits: Limits) -> FileProblem {
    FileProblem::new(
        None,
        format!(
            "The file has more than {} data rows, the limit: split it into several files",
            limits.max_rows
        ),
        format!("max_rows={}", limits.max_rows),
    )
}

pub(crate) fn no_headers() -> FileProblem {
    FileProblem::new(
        None,
        "The file is empty: the first row must hold the column headers",
        "",
    )
}

pub(crate) fn no_data_rows() -> FileProblem {
    FileProblem::new(
        None,
        "The file has headers but no data rows: add at least one user",
        "",
    )
}

/// The records a reader hands its sink, collected.
/// Run a reader, turning a panic in it into a problem of the file.
///
/// The readers parse hostile input, much of it through third-party code (csv, calamine, zip).
/// A panic there must fail this one file as Data Load Failed: left to unwind into the run
/// queue, the run would be retried, panic again, and hold up every later upload of its
/// configuration.
fn guarded(
    read: impl FnOnce() -> Result<(), Vec<FileProblem>>,
    damaged: impl FnOnce() -> FileProblem,
) -> Result<(), Vec<FileProblem>> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(read))
        .unwrap_or_else(|_| Err(vec![damaged()]))
}

fn collect(
    read: impl FnOnce(&mut dyn FnMut(BatchItem) -> bool) -> Result<(), Vec<FileProblem>>,
) -> Result<Vec<BatchItem>, Vec<FileProblem>> {
    let mut items = Vec::new();
    read(&mut |item| {
        items.push(item);
        true
    })?;
    Ok(items)
}
