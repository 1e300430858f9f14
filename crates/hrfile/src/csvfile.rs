//! CSV files: RFC 4180, UTF-8 (a leading BOM accepted), first row headers. Rows are read one
//! at a time; only the mapped cells of each row are kept.

use std::io::Read;

use rollcall_domain::mapping::Mapping;
use rollcall_domain::record::{BatchItem, RawRecord, ReadOptions, Rejected};
use rollcall_domain::run::Issue;
use rollcall_domain::unchanged::Sieve;
use rollcall_domain::values::PhoneCache;
use rollcall_domain::{ErrorType, FieldKey};

use crate::header::{self, Columns};
use crate::{FileProblem, Limits, no_data_rows, no_headers, too_big, too_many_rows};

/// Read a whole CSV file into records, or the list of file-level problems that fail the run.
/// `on_row` is called with the number of rows read so far (for progress).
pub fn read_csv(
    input: impl Read,
    mapping: &Mapping,
    options: &ReadOptions,
    limits: Limits,
    on_row: impl FnMut(u64),
) -> Result<Vec<BatchItem>, Vec<FileProblem>> {
    read_csv_with(
        input,
        mapping,
        options,
        &mut PhoneCache::new(),
        limits,
        on_row,
    )
}

/// [`read_csv`], reading phone numbers through `phones` (which may know the stored ones).
pub fn read_csv_with(
    input: impl Read,
    mapping: &Mapping,
    options: &ReadOptions,
    phones: &mut PhoneCache,
    limits: Limits,
    on_row: impl FnMut(u64),
) -> Result<Vec<BatchItem>, Vec<FileProblem>> {
    read_csv_sifted(input, mapping, options, phones, None, limits, on_row)
}

/// [`read_csv_with`], offering each well-formed row to `sieve` first: the rows it takes as
/// Unchanged are not returned (they are in the sieve).
pub fn read_csv_sifted(
    input: impl Read,
    mapping: &Mapping,
    options: &ReadOptions,
    phones: &mut PhoneCache,
    sieve: Option<&mut Sieve>,
    limits: Limits,
    on_row: impl FnMut(u64),
) -> Result<Vec<BatchItem>, Vec<FileProblem>> {
    crate::collect(|sink| {
        read_csv_into(input, mapping, options, phones, sieve, limits, on_row, sink)
    })
}

/// [`read_csv_sifted`], handing each record to `sink` as soon as it is read (a large file
/// need not be held whole); reading stops early, with `Ok`, when `sink` returns false. The
/// records already handed over belong to a file that may still fail as a whole: the caller
/// applies nothing before this returns `Ok`.
#[allow(clippy::too_many_arguments)] // the reader's inputs, each used once
pub fn read_csv_into(
    input: impl Read,
    mapping: &Mapping,
    options: &ReadOptions,
    phones: &mut PhoneCache,
    sieve: Option<&mut Sieve>,
    limits: Limits,
    on_row: impl FnMut(u64),
    sink: &mut dyn FnMut(BatchItem) -> bool,
) -> Result<(), Vec<FileProblem>> {
    crate::guarded(
        || read_rows(input, mapping, options, phones, sieve, limits, on_row, sink),
        || {
            FileProblem::new(
                None,
                "The file could not be read: reading it failed part-way. Export it again as CSV (UTF-8) and upload it again",
                "",
            )
        },
    )
}

#[allow(clippy::too_many_arguments)] // as read_csv_into
fn read_rows(
    input: impl Read,
    mapping: &Mapping,
    options: &ReadOptions,
    phones: &mut PhoneCache,
    mut sieve: Option<&mut Sieve>,
    limits: Limits,
    mut on_row: impl FnMut(u64),
    sink: &mut dyn FnMut(BatchItem) -> bool,
) -> Result<(), Vec<FileProblem>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(UnixNewlines {
            inner: LimitedReader {
                inner: input,
                left: limits.max_bytes,
                exceeded: false,
            },
            after_cr: false,
        });
    // A file over the byte limit is cut where the limit falls, which can be inside a
    // character or the header row: whatever else looks wrong, the size is the problem.
    let too_big_or = |reader: &mut csv::Reader<UnixNewlines<LimitedReader<_>>>, problems| {
        if reader.get_mut().inner.over_limit() {
            vec![too_big(limits)]
        } else {
            problems
        }
    };

    let mut record = csv::ByteRecord::new();
    let columns = match reader.read_byte_record(&mut record) {
        Ok(true) => match check_headers(&record, mapping) {
            Ok(columns) => columns,
            Err(problems) => return Err(too_big_or(&mut reader, problems)),
        },
        Ok(false) => return Err(vec![no_headers()]),
        Err(e) => return Err(too_big_or(&mut reader, vec![csv_problem(&e)])),
    };

    let mut rows = 0u64;
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(too_big_or(&mut reader, vec![csv_problem(&e)])),
        }
        let line = record.position().map_or(0, |p| p.line());
        let cells: Vec<&str> = match record
            .iter()
            .enumerate()
            .map(|(i, c)| utf8_cell(c, line, i))
            .collect()
        {
            Ok(cells) => cells,
            Err(problem) => return Err(too_big_or(&mut reader, vec![problem])),
        };
        if cells
            .iter()
            .all(|c| rollcall_domain::values::clean(c).is_empty())
        {
            continue;
        }
        rows += 1;
        if rows > limits.max_rows {
            return Err(vec![too_many_rows(limits)]);
        }
        on_row(rows);
        if let Some(sieve) = sieve.as_deref_mut()
            && cells.len() == columns.width
            && columns.computed.is_empty()
        {
            let cell = |i: usize| cells.get(i).copied().unwrap_or_default();
            let fields: Vec<(FieldKey, &str)> =
                columns.fields.iter().map(|(f, i)| (*f, cell(*i))).collect();
            let custom: Vec<&str> = columns.custom.iter().map(|(_, i)| cell(*i)).collect();
            if sieve.take(line, &fields, &custom, phones) {
                continue;
            }
        }
        if !sink(to_item(line, &cells, &columns, options, phones)) {
            return Ok(());
        }
    }
    if reader.get_mut().inner.over_limit() {
        return Err(vec![too_big(limits)]);
    }
    if rows == 0 {
        return Err(vec![no_data_rows()]);
    }
    Ok(())
}

/// A header row that reads as one column holding `;` or tabs: another separator was used.
fn not_comma_separated(headers: &[String]) -> Option<FileProblem> {
    (headers.len() == 1 && (headers[0].contains(';') || headers[0].contains('\t'))).then(|| {
        FileProblem::new(
            Some(1),
            "The header row is one column containing ';' or tabs: the separator must be a comma",
            format!("header={}", headers[0]),
        )
    })
}

fn csv_problem(e: &csv::Error) -> FileProblem {
    let line = e.position().map(|p| p.line());
    FileProblem::new(
        line,
        format!("The file cannot be read as CSV: {e}. Save it as CSV (comma-separated, UTF-8)"),
        "",
    )
}

fn utf8_cell(cell: &[u8], line: u64, column: usize) -> Result<&str, FileProblem> {
    std::str::from_utf8(cell).map_err(|e| {
        FileProblem::new(
            Some(line),
            format!(
                "Line {line} is not valid UTF-8 (column {}, byte {} of the cell): save the file as \"CSV UTF-8\"",
                column + 1,
                e.valid_up_to() + 1
            ),
            format!("line={line}"),
        )
    })
}

fn check_headers(record: &csv::ByteRecord, mapping: &Mapping) -> Result<Columns, Vec<FileProblem>> {
    let mut headers = Vec::with_capacity(record.len());
    for (i, raw) in record.iter().enumerate() {
        let raw = if i == 0 {
            raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw)
        } else {
            raw
        };
        match utf8_cell(raw, 1, i) {
            Ok(h) => headers.push(h.trim().to_owned()),
            Err(p) => return Err(vec![p]),
        }
    }
    if let Some(problem) = not_comma_separated(&headers) {
        return Err(vec![problem]);
    }
    let line = record.position().map_or(1, |p| p.line());
    header::check_headers(&headers, line, mapping)
}

fn to_item(
    line: u64,
    cells: &[&str],
    columns: &Columns,
    options: &ReadOptions,
    phones: &mut PhoneCache,
) -> BatchItem {
    let cell = |i: usize| cells.get(i).copied().unwrap_or_default().to_owned();
    let mut raw = RawRecord {
        row: line,
        cells: columns.fields.iter().map(|(f, i)| (*f, cell(*i))).collect(),
        custom: columns
            .custom
            .iter()
            .map(|(n, i)| (n.clone(), cell(*i)))
            .collect(),
    };
    let shown = |key: FieldKey| {
        columns
            .fields
            .iter()
            .find(|(f, _)| *f == key)
            .map(|(_, i)| cell(*i))
            .unwrap_or_default()
    };
    if cells.len() != columns.width {
        return Err(Rejected {
            row: line,
            external_id: shown(FieldKey::ExternalId),
            username: shown(FieldKey::Username),
            issues: vec![Issue::new(
                ErrorType::InvalidValue,
                format!(
                    "Row has {} cells but the header has {}: check for an unquoted comma or a missing cell",
                    cells.len(),
                    columns.width
                ),
                format!("cells={}", cells.len()),
            )],
        });
    }
    match columns.computed_cells(&cell) {
        Ok(computed) => raw.cells.extend(computed),
        Err(issue) => {
            return Err(Rejected {
                row: line,
                external_id: shown(FieldKey::ExternalId),
                username: shown(FieldKey::Username),
                issues: vec![issue],
            });
        }
    }
    raw.validate_with(options, phones)
}

/// Line breaks as the csv crate counts them: `\r\n` and a lone `\r` (old Mac exports) become
/// `\n`, so that every row is numbered with the file's own line, whatever wrote the file.
struct UnixNewlines<R> {
    inner: R,
    /// The previous chunk ended with `\r`: a `\n` starting this one is its pair.
    after_cr: bool,
}

impl<R: Read> Read for UnixNewlines<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let n = self.inner.read(buf)?;
            if n == 0 {
                return Ok(0);
            }
            let mut out = 0;
            for i in 0..n {
                let b = buf[i];
                if b == b'\n' && std::mem::take(&mut self.after_cr) {
                    continue;
                }
                if b == b'\r' {
                    self.after_cr = true;
                    buf[out] = b'\n';
                } else {
                    self.after_cr = false;
                    buf[out] = b;
                }
                out += 1;
            }
            // A chunk that was only the `\n` of a `\r\n` gives nothing: read on.
            if out > 0 {
                return Ok(out);
            }
        }
    }
}

/// Counts bytes so that a file over the limit is refused without reading it all.
struct LimitedReader<R> {
    inner: R,
    left: u64,
    exceeded: bool,
}

impl<R: Read> LimitedReader<R> {
    /// Whether the input goes on past the limit (probing one byte when the limit is reached).
    fn over_limit(&mut self) -> bool {
        if self.left == 0 && !self.exceeded {
            let mut probe = [0u8; 1];
            if matches!(self.inner.read(&mut probe), Ok(n) if n > 0) {
                self.exceeded = true;
            }
        }
        self.exceeded
    }
}

impl<R: Read> Read for LimitedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            // One more byte tells "exactly at the limit" from "over it".
            let mut probe = [0u8; 1];
            if self.inner.read(&mut probe)? > 0 {
                self.exceeded = true;
            }
            return Ok(0);
        }
        let max = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..max])?;
        self.left -= n as u64;
        Ok(n)
    }
}

/// A CSV read whole: the header row's names, and each data row's line and cells.
pub type Table = (Vec<String>, Vec<(u64, Vec<String>)>);

/// Read a small CSV table whole (Bulk Update files): the header row's names and each data
/// row's cells with its line, cells cleaned as for syncs. The same file-level checks as a sync
/// (UTF-8 with its line, byte and row limits, a comma separator, data rows present).
pub fn read_table(input: impl Read, limits: Limits) -> Result<Table, Vec<FileProblem>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(UnixNewlines {
            inner: LimitedReader {
                inner: input,
                left: limits.max_bytes,
                exceeded: false,
            },
            after_cr: false,
        });
    let mut record = csv::ByteRecord::new();
    let read = |reader: &mut csv::Reader<UnixNewlines<LimitedReader<_>>>,
                record: &mut csv::ByteRecord|
     -> Result<Option<(u64, Vec<String>)>, Vec<FileProblem>> {
        match reader.read_byte_record(record) {
            Ok(true) => {}
            Ok(false) => return Ok(None),
            Err(_) if reader.get_mut().inner.over_limit() => return Err(vec![too_big(limits)]),
            Err(e) => return Err(vec![csv_problem(&e)]),
        }
        let line = record.position().map_or(0, |p| p.line());
        let cells = record
            .iter()
            .enumerate()
            .map(|(i, c)| {
                utf8_cell(c, line, i).map(|c| rollcall_domain::values::clean(c).to_owned())
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|p| vec![p])?;
        Ok(Some((line, cells)))
    };
    let Some((_, mut header)) = read(&mut reader, &mut record)? else {
        return Err(vec![no_headers()]);
    };
    if let Some(first) = header.first_mut() {
        *first = first.trim_start_matches('\u{feff}').to_owned();
    }
    if let Some(problem) = not_comma_separated(&header) {
        return Err(vec![problem]);
    }
    let mut rows = Vec::new();
    while let Some((line, cells)) = read(&mut reader, &mut record)? {
        if cells.iter().all(String::is_empty) {
            continue;
        }
        if rows.len() as u64 >= limits.max_rows {
            return Err(vec![too_many_rows(limits)]);
        }
        rows.push((line, cells));
    }
    if reader.get_mut().inner.over_limit() {
        return Err(vec![too_big(limits)]);
    }
    if rows.is_empty() {
        return Err(vec![no_data_rows()]);
    }
    Ok((header, rows))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rollcall_domain::record::Link;

    fn mapping() -> Mapping {
        let f = |a: &str, b: &str| (a.to_owned(), b.to_owned());
        Mapping::new(
            [
                f("external_id", "EmployeeNumber"),
                f("username", "EmployeeNumber"),
                f("email", "WorkEmail"),
                f("active", "Active"),
            ],
            [f("CostCentre", "CostCentre")],
            Vec::<(String, String)>::new(),
        )
        .unwrap()
    }

    fn read(text: &[u8]) -> Result<Vec<BatchItem>, Vec<FileProblem>> {
        read_csv(
            text,
            &mapping(),
            &ReadOptions::default(),
            Limits::default(),
            |_| {},
        )
    }

    /// No damaged file makes the reader panic; each is read or refused.
    #[test]
    fn damaged_files_are_read_or_refused_not_a_panic() {
        let good = "\u{FEFF}EmployeeNumber,WorkEmail,Active,CostCentre\r\n\
                    1,a@acme.com,TRUE,\"Sales, EMEA\"\r\n\
                    2,b@acme.com,false,\"multi\nline \"\"quoted\"\"\"\r\n\
                    3,é@acme.com,true,Zürich\n\
                    ,,,\n4,d@acme.com,true,\n";
        let mut rng = rollcall_domain::damage::Rng::new(0xC5F0_DA4A);
        let mut panics = Vec::new();
        for case in 0..5000 {
            let mut bytes = good.as_bytes().to_vec();
            for _ in 0..1 + rng.below(4) {
                rollcall_domain::damage::damage(&mut bytes, &mut rng);
            }
            // Unguarded: a panic here is a bug in this reader or in csv.
            let unguarded = || {
                let (options, mut phones) = (ReadOptions::default(), PhoneCache::new());
                crate::collect(|sink| {
                    read_rows(
                        bytes.as_slice(),
                        &mapping(),
                        &options,
                        &mut phones,
                        None,
                        Limits::default(),
                        |_| {},
                        sink,
                    )
                })
                .map(|rows| rows.len())
            };
            if std::panic::catch_unwind(unguarded).is_err() {
                panics.push(case);
            }
        }
        assert!(panics.is_empty(), "panics in cases {panics:?}");
    }

    #[test]
    fn a_panic_while_reading_fails_the_file_alone() {
        let problems = crate::guarded(
            || panic!("a reader bug"),
            || FileProblem::new(None, "damaged", ""),
        )
        .unwrap_err();
        assert_eq!(problems, vec![FileProblem::new(None, "damaged", "")]);
    }

    #[test]
    fn reads_rows_with_bom_quotes_and_line_numbers() {
        let items = read(
            b"\xEF\xBB\xBFEmployeeNumber,WorkEmail,Active,CostCentre,Ignored\n\
              1,a@acme.com,TRUE,\"Sales, EMEA\",x\n\
              ,,,,\n\
              2,b@acme.com,false,\"multi\nline\",y\n\
              3,bad,true,,z\n",
        )
        .unwrap();
        assert_eq!(items.len(), 3);
        let first = items[0].as_ref().unwrap();
        assert_eq!(first.row, 2);
        assert!(matches!(&first.link, Link::ExternalId(e) if e.as_str() == "1"));
        assert_eq!(first.profile.custom_fields["CostCentre"], "Sales, EMEA");
        let second = items[1].as_ref().unwrap();
        assert_eq!(second.row, 4);
        assert!(!second.active);
        let third = items[2].as_ref().unwrap_err();
        assert_eq!(
            third.row, 6,
            "the file's own line, after a quoted line break"
        );
        assert_eq!(third.issues[0].error_type, ErrorType::InvalidEmail);
    }

    #[test]
    fn semicolons_are_refused_with_the_separator_message() {
        let problems = read(b"EmployeeNumber;WorkEmail;Active\n1;a@acme.com;true\n").unwrap_err();
        assert_eq!(problems.len(), 1);
        assert_eq!(
            problems[0].message,
            "The header row is one column containing ';' or tabs: the separator must be a comma"
        );
    }

    #[test]
    fn bad_and_duplicate_headers_and_missing_columns_are_all_named() {
        let problems =
            read(b"EmployeeNumber,Work Email,Active,Active\n1,a@acme.com,true,true\n").unwrap_err();
        let messages: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
        assert!(
            messages[0].contains("'Work Email'") && messages[0].contains("'WorkEmail'"),
            "{messages:?}"
        );
        assert!(
            messages[1].contains("appears twice (columns 3 and 4)"),
            "{messages:?}"
        );
        assert!(
            messages[2].starts_with("Mapped columns are missing: CostCentre, WorkEmail"),
            "{messages:?}"
        );
    }

    #[test]
    fn windows_1252_is_refused_with_its_line() {
        let problems = read(b"EmployeeNumber,WorkEmail,Active,CostCentre\n1,a@acme.com,true,x\n2,b@acme.com,true,Caf\xe9\n").unwrap_err();
        assert_eq!(problems[0].line, Some(3));
        assert!(
            problems[0].message.starts_with("Line 3 is not valid UTF-8"),
            "{}",
            problems[0].message
        );
    }

    #[test]
    fn no_data_rows() {
        let problems = read(b"EmployeeNumber,WorkEmail,Active,CostCentre\n,,,\n").unwrap_err();
        assert!(problems[0].message.contains("no data rows"));
    }

    #[test]
    fn limits() {
        let text = b"EmployeeNumber,WorkEmail,Active,CostCentre\n1,a@acme.com,true,x\n2,b@acme.com,true,y\n";
        let small = Limits {
            max_bytes: 50,
            max_rows: 10,
            ..Limits::default()
        };
        let problems = read_csv(
            &text[..],
            &mapping(),
            &ReadOptions::default(),
            small,
            |_| {},
        )
        .unwrap_err();
        assert!(
            problems[0].message.contains("larger than 50 bytes"),
            "{problems:?}"
        );
        let few = Limits {
            max_bytes: 1 << 20,
            max_rows: 1,
            ..Limits::default()
        };
        let problems =
            read_csv(&text[..], &mapping(), &ReadOptions::default(), few, |_| {}).unwrap_err();
        assert!(
            problems[0].message.contains("more than 1 data rows"),
            "{problems:?}"
        );
    }

    #[test]
    fn short_rows_are_row_errors() {
        let items = read(b"EmployeeNumber,WorkEmail,Active,CostCentre\n1,a@acme.com\n").unwrap();
        let e = items[0].as_ref().unwrap_err();
        assert!(
            e.issues[0]
                .message
                .starts_with("Row has 2 cells but the header has 4")
        );
    }

    #[test]
    fn a_table_is_read_whole_with_the_same_file_checks() {
        let limits = Limits::default();
        let (header, rows) = read_table(
            "\u{feff}Username,JobTitle\r\nann, Nurse \r\n,\r\nbob,\r\n".as_bytes(),
            limits,
        )
        .unwrap();
        assert_eq!(header, ["Username", "JobTitle"], "the BOM is dropped");
        assert_eq!(
            rows,
            [
                (2, vec!["ann".to_owned(), "Nurse".to_owned()]),
                (4, vec!["bob".to_owned(), String::new()])
            ],
            "cells cleaned, blank rows skipped, lines kept"
        );
        let semicolons = read_table("Username;JobTitle\nann;x\n".as_bytes(), limits).unwrap_err();
        assert!(semicolons[0].message.contains("separator must be a comma"));
        let latin1 = read_table(b"Username\nJos\xe9\n".as_slice(), limits).unwrap_err();
        assert!(
            latin1[0].message.contains("Line 2 is not valid UTF-8"),
            "{}",
            latin1[0].message
        );
        let empty = read_table("Username\n\n".as_bytes(), limits).unwrap_err();
        assert_eq!(empty.len(), 1);
        let small = Limits {
            max_rows: 1,
            ..limits
        };
        assert!(read_table("Username\na\nb\n".as_bytes(), small).is_err());
    }
}
