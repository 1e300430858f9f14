//! HR files: the operator's mapping file, and CSV and XLSX files read row by row into
//! validated records (SPEC §4, §5).

pub mod csvfile;
mod header;
pub mod mapping_file;
pub mod xlsxfile;

use rollcall_domain::record::BatchItem;
use rollcall_domain::{ErrorType, LogRow};

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
            action: "Failed".into(),
            error_type: ErrorType::DataLoadFailed.code().into(),
            message: self.message.clone(),
            additional_data: self.additional_data.clone(),
            ..LogRow::default()
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

/// Damaged input for the readers' robustness tests.
#[cfg(test)]
mod damage {
    /// A small deterministic generator (xorshift64*), so that a failure names its case.
    pub struct Rng(u64);

    impl Rng {
        pub fn new(seed: u64) -> Rng {
            Rng(seed.max(1))
        }

        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        pub fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    /// One damage of the kind a broken writer, a truncated transfer or a hostile file leaves in
    /// a part: bytes dropped, repeated, changed to markup or digits, or the part cut short.
    pub fn damage(data: &mut Vec<u8>, rng: &mut Rng) {
        if data.is_empty() {
            data.push(b'<');
            return;
        }
        let at = rng.below(data.len());
        match rng.below(6) {
            0 => {
                let end = (at + 1 + rng.below(16)).min(data.len());
                data.drain(at..end);
            }
            1 => {
                let end = (at + 1 + rng.below(64)).min(data.len());
                let copy = data[at..end].to_vec();
                let to = rng.below(data.len());
                data.splice(to..to, copy);
            }
            2 => {
                let markup = b"<>\"'&=/:;";
                data[at] = markup[rng.below(markup.len())];
            }
            3 => {
                let numeric = b"0123456789-+.eE";
                data[at] = numeric[rng.below(numeric.len())];
            }
            4 => data.truncate(at),
            _ => {
                let big = [
                    "99999999999",
                    "XFD1048576",
                    "-1",
                    "1e308",
                    "&#0;",
                    "\u{10FFFF}",
                ];
                let text = big[rng.below(big.len())].as_bytes().to_vec();
                data.splice(at..at, text);
            }
        }
    }
}
