//! XLSX files (SPEC §5): only the first sheet is read; its first non-empty row holds the
//! headers, checked as for CSV; rows keep the sheet's own row numbers.
//!
//! calamine never sees an unchecked file: [`package::check`] first inflates every part
//! against a byte budget and checks the shared-strings counts. The sheet is then read as a
//! stream of cells (`worksheet_cells_reader`), never as a `Range`, which calamine allocates
//! for the whole declared area (a few-KB file with a cell at XFD1048576 asks for 512 GiB).
//! Memory follows what is kept: the mapped cells of each row.

mod numfmt;
mod package;

use std::fmt::Display;
use std::io::Cursor;

use calamine::{DataRef, ExcelDateTime, Reader, Xlsx, XlsxCellReader, XlsxError};
use rollcall_domain::mapping::Mapping;
use rollcall_domain::record::{BatchItem, RawRecord, ReadOptions, Rejected};
use rollcall_domain::run::Issue;
use rollcall_domain::unchanged::Sieve;
use rollcall_domain::values::{PhoneCache, clean};
use rollcall_domain::{ErrorType, FieldKey};

use crate::header::{Columns, check_headers};
use crate::{FileProblem, Limits, no_data_rows, no_headers, too_big, too_many_rows};
use numfmt::ZeroPattern;

/// Excel's own sheet size: a cell beyond it was not written by a spreadsheet.
const SHEET_ROWS: u32 = 1_048_576;
const SHEET_COLUMNS: u32 = 16_384;
/// The widest header row accepted; HR exports have tens of columns.
const MAX_HEADER_WIDTH: usize = 1_000;
/// Cells read per pass over the sheet, empty ones included: 2,000,000 rows of 25 columns.
const MAX_CELLS: u64 = 50_000_000;
/// Excel's 1900 date system counts 1900-01-01 as day 1; the 1904 system starts at day 0
/// (1904-01-01), 1,462 days later. Serial 2,958,466 (1900 system) is 10000-01-01.
const FIRST_1900_SERIAL: f64 = 1.0;
const END_1900_SERIAL: f64 = 2_958_466.0;
const DAYS_1900_TO_1904: f64 = 1_462.0;

type Workbook<'b> = Xlsx<Cursor<&'b [u8]>>;
type Cells<'a, 'b> = XlsxCellReader<'a, Cursor<&'b [u8]>>;

/// Read the first sheet of an XLSX workbook into records, or the list of file-level problems
/// that fail the run. `on_row` is called with the number of data rows read so far.
pub fn read_xlsx(
    bytes: &[u8],
    mapping: &Mapping,
    options: &ReadOptions,
    limits: Limits,
    on_row: impl FnMut(u64),
) -> Result<Vec<BatchItem>, Vec<FileProblem>> {
    read_xlsx_with(
        bytes,
        mapping,
        options,
        &mut PhoneCache::new(),
        limits,
        on_row,
    )
}

/// [`read_xlsx`], reading phone numbers through `phones` (which may know the stored ones).
pub fn read_xlsx_with(
    bytes: &[u8],
    mapping: &Mapping,
    options: &ReadOptions,
    phones: &mut PhoneCache,
    limits: Limits,
    on_row: impl FnMut(u64),
) -> Result<Vec<BatchItem>, Vec<FileProblem>> {
    read_xlsx_sifted(bytes, mapping, options, phones, None, limits, on_row)
}

/// [`read_xlsx_with`], offering each well-formed row to `sieve` first: the rows it takes as
/// Unchanged are not returned (they are in the sieve).
pub fn read_xlsx_sifted(
    bytes: &[u8],
    mapping: &Mapping,
    options: &ReadOptions,
    phones: &mut PhoneCache,
    sieve: Option<&mut Sieve>,
    limits: Limits,
    on_row: impl FnMut(u64),
) -> Result<Vec<BatchItem>, Vec<FileProblem>> {
    crate::collect(|sink| {
        read_xlsx_into(bytes, mapping, options, phones, sieve, limits, on_row, sink)
    })
}

/// [`read_xlsx_sifted`], handing each record to `sink` as soon as it is read; reading stops
/// early, with `Ok`, when `sink` returns false. The records already handed over belong to a
/// file that may still fail as a whole: the caller applies nothing before this returns `Ok`.
#[allow(clippy::too_many_arguments)] // the reader's inputs, each used once
pub fn read_xlsx_into(
    bytes: &[u8],
    mapping: &Mapping,
    options: &ReadOptions,
    phones: &mut PhoneCache,
    sieve: Option<&mut Sieve>,
    limits: Limits,
    on_row: impl FnMut(u64),
    sink: &mut dyn FnMut(BatchItem) -> bool,
) -> Result<(), Vec<FileProblem>> {
    crate::guarded(
        || read_sheet(bytes, mapping, options, phones, sieve, limits, on_row, sink),
        || not_workbook("it is damaged: reading it failed part-way"),
    )
}

#[allow(clippy::too_many_arguments)] // as read_xlsx_into
fn read_sheet(
    bytes: &[u8],
    mapping: &Mapping,
    options: &ReadOptions,
    phones: &mut PhoneCache,
    sieve: Option<&mut Sieve>,
    limits: Limits,
    mut on_row: impl FnMut(u64),
    sink: &mut dyn FnMut(BatchItem) -> bool,
) -> Result<(), Vec<FileProblem>> {
    if bytes.len() as u64 > limits.max_bytes {
        return Err(vec![too_big(limits)]);
    }
    package::check(bytes, limits)?;
    let mut workbook: Workbook =
        Xlsx::new(Cursor::new(bytes)).map_err(|e| vec![not_workbook(e)])?;
    let Some(sheet) = workbook.sheet_names().into_iter().next() else {
        return Err(vec![not_workbook("it has no sheets")]);
    };
    let is_1904 = workbook.has_1904_epoch();

    let header = read_header(&mut workbook, &sheet)?;
    let columns = check_headers(&header.cells, u64::from(header.row) + 1, mapping)?;
    let slots = Slots::new(&columns);
    let patterns = zero_patterns(&mut workbook, &sheet, &slots, header.row, limits)?;

    let mut cells = open_cells(&mut workbook, &sheet)?;
    let mut walk = Walk::default();
    let mut out = Output {
        sink,
        stopped: false,
        rows: 0,
        limits,
        sieve,
    };
    let mut row: Option<RowCells> = None;
    while let Some(cell) = cells
        .next_cell_with_formula_metadata()
        .map_err(|e| vec![not_workbook(e)])?
    {
        let (r, c) = cell.pos;
        walk.step(r, c)?;
        if r <= header.row {
            continue;
        }
        if row.as_ref().is_some_and(|row| row.row != r) {
            out.finish(row.take(), &columns, &slots, options, phones, &mut on_row)?;
            if out.stopped {
                return Ok(());
            }
        }
        let row = row.get_or_insert_with(|| RowCells::new(r, slots.len()));
        // A formula cell with nothing cached: Excel always saves the result, other writers
        // may not, and recomputing formulas is not this reader's job.
        let uncached = cell.formula.is_some() && cell.value == DataRef::Empty;
        match slots.of(c) {
            Some(slot) => {
                let value = if uncached {
                    Slot::Bad(Issue::new(
                        ErrorType::InvalidValue,
                        format!(
                            "Cell {} has a formula with no saved value: open the file in Excel, save it and upload it again",
                            cell_name(r, c)
                        ),
                        format!("cell={}", cell_name(r, c)),
                    ))
                } else {
                    match cell_text(&cell.value, patterns.find(r, c), is_1904) {
                        Ok(text) => Slot::Text(text),
                        Err(error) => Slot::Bad(Issue::new(
                            ErrorType::InvalidValue,
                            format!(
                                "Cell {} holds the error {error}: correct it or type the value in",
                                cell_name(r, c)
                            ),
                            format!("cell={}", cell_name(r, c)),
                        )),
                    }
                };
                row.non_empty |= !value.is_blank();
                row.slots[slot] = value;
            }
            None => {
                if uncached || !is_blank(&cell.value) {
                    row.non_empty = true;
                    if c as usize >= columns.width && row.outside.is_none() {
                        row.outside = Some((r, c));
                    }
                }
            }
        }
    }
    out.finish(row, &columns, &slots, options, phones, &mut on_row)?;
    if out.rows == 0 {
        return Err(vec![no_data_rows()]);
    }
    Ok(())
}

/// "The file is not a valid .xlsx workbook: …", the problem for anything that is not a
/// workbook calamine can read.
pub(super) fn not_workbook(detail: impl Display) -> FileProblem {
    FileProblem::new(
        None,
        format!(
            "The file is not a valid .xlsx workbook: {detail}. Open it in Excel and save it as \"Excel Workbook (.xlsx)\""
        ),
        "",
    )
}

fn open_cells<'a, 'b>(
    workbook: &'a mut Workbook<'b>,
    sheet: &str,
) -> Result<Cells<'a, 'b>, Vec<FileProblem>> {
    workbook.worksheet_cells_reader(sheet).map_err(|e| match e {
        XlsxError::NotAWorksheet(_) => vec![FileProblem::new(
            None,
            format!(
                "The first sheet, '{sheet}', is not a worksheet (it is a chart or dialog sheet): only the first sheet is read, so move the sheet with the users first"
            ),
            format!("sheet={sheet}"),
        )],
        e => vec![not_workbook(e)],
    })
}

/// Counts the cells of one pass over the sheet and checks where they are.
#[derive(Default)]
struct Walk {
    cells: u64,
    last_row: u32,
}

impl Walk {
    fn step(&mut self, row: u32, column: u32) -> Result<(), Vec<FileProblem>> {
        self.cells += 1;
        if self.cells > MAX_CELLS {
            return Err(vec![FileProblem::new(
                None,
                format!(
                    "The first sheet has more than {MAX_CELLS} cells, the limit: split it into several files"
                ),
                format!("max_cells={MAX_CELLS}"),
            )]);
        }
        if row >= SHEET_ROWS || column >= SHEET_COLUMNS {
            return Err(vec![not_workbook(format!(
                "it has a cell at row {}, column {}, outside the sheet",
                u64::from(row) + 1,
                u64::from(column) + 1
            ))]);
        }
        // Excel writes rows in order; a row that comes back would be read as two rows.
        if row < self.last_row {
            return Err(vec![not_workbook(format!(
                "row {} comes after row {} in the sheet",
                u64::from(row) + 1,
                u64::from(self.last_row) + 1
            ))]);
        }
        self.last_row = row;
        Ok(())
    }
}

struct Header {
    /// 0-based sheet row.
    row: u32,
    cells: Vec<String>,
}

/// The first row with a non-empty cell. Its width is that of its last non-empty cell, so a
/// header row formatted all the way to the right is not "columns with no header".
fn read_header(workbook: &mut Workbook<'_>, sheet: &str) -> Result<Header, Vec<FileProblem>> {
    let mut cells_reader = open_cells(workbook, sheet)?;
    let mut walk = Walk::default();
    let mut row = None;
    let mut cells: Vec<String> = Vec::new();
    while let Some(cell) = cells_reader
        .next_cell_with_formula_metadata()
        .map_err(|e| vec![not_workbook(e)])?
    {
        let (r, c) = cell.pos;
        walk.step(r, c)?;
        if row != Some(r) {
            if !cells.is_empty() {
                break;
            }
            row = Some(r);
        }
        let text = match cell_text(&cell.value, None, false) {
            Ok(text) => text.trim().to_owned(),
            Err(error) => error,
        };
        if text.is_empty() {
            continue;
        }
        let column = c as usize;
        if column >= MAX_HEADER_WIDTH {
            return Err(vec![FileProblem::new(
                Some(u64::from(r) + 1),
                format!(
                    "The header row reaches column {} ({}), more than the {MAX_HEADER_WIDTH} columns a file may have: delete the columns that are not needed",
                    column + 1,
                    cell_name(r, c)
                ),
                format!("cell={}", cell_name(r, c)),
            )]);
        }
        if cells.len() <= column {
            cells.resize(column + 1, String::new());
        }
        cells[column] = text;
    }
    match row {
        Some(row) if !cells.is_empty() => Ok(Header { row, cells }),
        _ => Err(vec![no_headers()]),
    }
}

/// The mapped columns, each once, and where each column's cell is kept in a row.
struct Slots {
    /// Column index → slot.
    of: Vec<Option<usize>>,
    count: usize,
}

impl Slots {
    fn new(columns: &Columns) -> Slots {
        let mut of = vec![None; columns.width];
        let mut count = 0;
        let mapped = columns
            .fields
            .iter()
            .map(|(_, i)| *i)
            .chain(columns.custom.iter().map(|(_, i)| *i));
        for column in mapped {
            if let Some(slot @ None) = of.get_mut(column) {
                *slot = Some(count);
                count += 1;
            }
        }
        Slots { of, count }
    }

    fn of(&self, column: u32) -> Option<usize> {
        self.of.get(column as usize).copied().flatten()
    }

    fn len(&self) -> usize {
        self.count
    }
}

/// A mapped cell of a row: its text, or why the row cannot be read.
enum Slot {
    Text(String),
    Bad(Issue),
}

impl Slot {
    fn is_blank(&self) -> bool {
        matches!(self, Slot::Text(t) if clean(t).is_empty())
    }

    fn text(&self) -> &str {
        match self {
            Slot::Text(t) => t,
            Slot::Bad(_) => "",
        }
    }
}

/// The cells of one sheet row as they stream in.
struct RowCells {
    row: u32,
    slots: Vec<Slot>,
    non_empty: bool,
    /// The first non-empty cell right of the last header.
    outside: Option<(u32, u32)>,
}

impl RowCells {
    fn new(row: u32, slots: usize) -> RowCells {
        RowCells {
            row,
            slots: (0..slots).map(|_| Slot::Text(String::new())).collect(),
            non_empty: false,
            outside: None,
        }
    }
}

struct Output<'s> {
    sink: &'s mut dyn FnMut(BatchItem) -> bool,
    /// The sink asked for no more rows.
    stopped: bool,
    rows: u64,
    limits: Limits,
    sieve: Option<&'s mut Sieve>,
}

impl Output<'_> {
    /// Turn a complete row into a record; rows whose cells are all empty are skipped.
    fn finish(
        &mut self,
        row: Option<RowCells>,
        columns: &Columns,
        slots: &Slots,
        options: &ReadOptions,
        phones: &mut PhoneCache,
        on_row: &mut impl FnMut(u64),
    ) -> Result<(), Vec<FileProblem>> {
        let Some(row) = row.filter(|r| r.non_empty) else {
            return Ok(());
        };
        self.rows += 1;
        if self.rows > self.limits.max_rows {
            return Err(vec![too_many_rows(self.limits)]);
        }
        on_row(self.rows);
        if let Some(sieve) = self.sieve.as_deref_mut()
            && row.outside.is_none()
            && columns.computed.is_empty()
            && row.slots.iter().all(|s| matches!(s, Slot::Text(_)))
        {
            let cell = |column: usize| {
                slots
                    .of
                    .get(column)
                    .copied()
                    .flatten()
                    .map_or("", |slot| row.slots[slot].text())
            };
            let fields: Vec<(FieldKey, &str)> =
                columns.fields.iter().map(|(f, i)| (*f, cell(*i))).collect();
            let custom: Vec<&str> = columns.custom.iter().map(|(_, i)| cell(*i)).collect();
            if sieve.take(u64::from(row.row) + 1, &fields, &custom, phones) {
                return Ok(());
            }
        }
        self.stopped = !(self.sink)(to_item(row, columns, slots, options, phones));
        Ok(())
    }
}

fn to_item(
    row: RowCells,
    columns: &Columns,
    slots: &Slots,
    options: &ReadOptions,
    phones: &mut PhoneCache,
) -> BatchItem {
    let line = u64::from(row.row) + 1;
    let cell = |column: usize| {
        slots
            .of
            .get(column)
            .copied()
            .flatten()
            .map_or("", |slot| row.slots[slot].text())
            .to_owned()
    };
    let mut issues: Vec<Issue> = row
        .slots
        .iter()
        .filter_map(|s| match s {
            Slot::Bad(issue) => Some(issue.clone()),
            Slot::Text(_) => None,
        })
        .collect();
    if let Some((r, c)) = row.outside {
        // As a CSV row with more cells than the header: the value belongs to no column.
        issues.push(Issue::new(
            ErrorType::InvalidValue,
            format!(
                "Cell {} has a value but its column has no header: give the column a header or clear the cell",
                cell_name(r, c)
            ),
            format!("cell={}", cell_name(r, c)),
        ));
    }
    if issues.is_empty() {
        match columns.computed_cells(&cell) {
            Ok(computed) => {
                let mut cells: Vec<(FieldKey, String)> =
                    columns.fields.iter().map(|(f, i)| (*f, cell(*i))).collect();
                cells.extend(computed);
                return RawRecord {
                    row: line,
                    cells,
                    custom: columns
                        .custom
                        .iter()
                        .map(|(n, i)| (n.clone(), cell(*i)))
                        .collect(),
                }
                .validate_with(options, phones);
            }
            Err(issue) => issues.push(issue),
        }
    }
    let shown = |key: FieldKey| {
        columns
            .fields
            .iter()
            .find(|(f, _)| *f == key)
            .map(|(_, i)| clean(&cell(*i)).to_owned())
            .unwrap_or_default()
    };
    Err(Rejected {
        row: line,
        external_id: shown(FieldKey::ExternalId),
        username: shown(FieldKey::Username),
        issues,
    })
}

/// The zero-placeholder formats of the workbook, and the mapped data cells that use one,
/// sorted by position. calamine's value-and-formula stream does not give a cell's style, so
/// the styles come from a second pass, made only when the workbook has such a format.
#[derive(Default)]
struct ZeroPatterns {
    /// Style id → pattern.
    by_style: Vec<Option<ZeroPattern>>,
    cells: Vec<((u32, u32), usize)>,
}

impl ZeroPatterns {
    fn find(&self, row: u32, column: u32) -> Option<&ZeroPattern> {
        let i = self
            .cells
            .binary_search_by_key(&(row, column), |(pos, _)| *pos)
            .ok()?;
        self.by_style.get(self.cells[i].1)?.as_ref()
    }
}

fn zero_patterns(
    workbook: &mut Workbook<'_>,
    sheet: &str,
    slots: &Slots,
    header_row: u32,
    limits: Limits,
) -> Result<ZeroPatterns, Vec<FileProblem>> {
    let mut cells_reader = open_cells(workbook, sheet)?;
    let by_style: Vec<Option<ZeroPattern>> = cells_reader
        .styles()
        .iter()
        .map(|style| {
            style
                .number_format
                .as_ref()
                .and_then(|f| ZeroPattern::parse(&f.format_code))
        })
        .collect();
    if by_style.iter().all(Option::is_none) {
        return Ok(ZeroPatterns::default());
    }
    // Only non-empty cells are kept, so more than this many means more rows than allowed.
    let most = limits.max_rows.saturating_mul(slots.len() as u64);
    let mut walk = Walk::default();
    let mut cells = Vec::new();
    while let Some((cell, style)) = cells_reader
        .next_cell_with_style_id()
        .map_err(|e| vec![not_workbook(e)])?
    {
        let (r, c) = cell.get_position();
        walk.step(r, c)?;
        let numeric = matches!(cell.get_value(), DataRef::Float(_) | DataRef::Int(_));
        let patterned = by_style.get(style).is_some_and(Option::is_some);
        if r > header_row && numeric && patterned && slots.of(c).is_some() {
            cells.push(((r, c), style));
            if cells.len() as u64 > most {
                return Err(vec![too_many_rows(limits)]);
            }
        }
    }
    // Rows arrive in order (Walk checks), cells within a row may not.
    cells.sort_by_key(|(pos, _)| *pos);
    Ok(ZeroPatterns { by_style, cells })
}

/// Whether a cell counts as empty for skipping a row: no value, or only white space.
fn is_blank(value: &DataRef<'_>) -> bool {
    match value {
        DataRef::Empty => true,
        DataRef::String(s) | DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => {
            clean(s).is_empty()
        }
        DataRef::SharedString(s) => clean(s).is_empty(),
        _ => false,
    }
}

/// A cell's text as the HR user sees it in Excel, or the error (`#N/A`…) it holds.
fn cell_text(
    value: &DataRef<'_>,
    pattern: Option<&ZeroPattern>,
    is_1904: bool,
) -> Result<String, String> {
    Ok(match value {
        DataRef::Empty => String::new(),
        DataRef::String(s) => s.clone(),
        DataRef::SharedString(s) => (*s).to_owned(),
        DataRef::Bool(b) => b.to_string(),
        DataRef::Int(n) => match pattern.and_then(|p| p.render(*n as f64)) {
            Some(text) => text,
            None => n.to_string(),
        },
        DataRef::Float(n) => match pattern.and_then(|p| p.render(*n)) {
            Some(text) => text,
            None => number_text(*n),
        },
        DataRef::DateTime(d) => date_text(d, is_1904),
        // `t="d"` cells hold ISO 8601 text: keep the date.
        DataRef::DateTimeIso(s) => match s.get(..10) {
            Some(date) if is_iso_date(date) => date.to_owned(),
            _ => s.clone(),
        },
        DataRef::DurationIso(s) => s.clone(),
        DataRef::Error(e) => return Err(e.to_string()),
    })
}

/// A number as Excel shows it under the General format: whole numbers as integers (never
/// `1.23E+12` or `42.0`), others to 15 significant digits (`0.1 + 0.2` is `0.3`).
fn number_text(n: f64) -> String {
    if n == 0.0 {
        // Also -0.0, which Display writes as "-0".
        return "0".to_owned();
    }
    if n.fract() == 0.0 {
        // Display never uses an exponent and writes no ".0" for a whole f64.
        return format!("{n}");
    }
    let rounded: f64 = format!("{n:.14e}").parse().unwrap_or(n);
    format!("{rounded}")
}

/// A date cell as ISO `YYYY-MM-DD` in the workbook's date system. A serial outside Excel's
/// calendar, or a duration, stays a number, which date fields then refuse.
fn date_text(d: &ExcelDateTime, is_1904: bool) -> String {
    let serial = d.as_f64();
    let (first, end) = if is_1904 {
        (0.0, END_1900_SERIAL - DAYS_1900_TO_1904)
    } else {
        (FIRST_1900_SERIAL, END_1900_SERIAL)
    };
    if d.is_duration() || !(first..end).contains(&serial) {
        return number_text(serial);
    }
    let (year, month, day, ..) = d.to_ymd_hms_milli();
    format!("{year:04}-{month:02}-{day:02}")
}

fn is_iso_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        })
}

/// `A1`-style name of a 0-based cell position.
fn cell_name(row: u32, column: u32) -> String {
    let mut letters = Vec::new();
    let mut n = u64::from(column) + 1;
    while n > 0 {
        let rem = (n - 1) % 26;
        letters.push(b'A' + rem as u8);
        n = (n - 1) / 26;
    }
    letters.reverse();
    format!(
        "{}{}",
        String::from_utf8_lossy(&letters),
        u64::from(row) + 1
    )
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};

    use rollcall_domain::record::Incoming;
    use rust_xlsxwriter::{Chart, ChartType, Format, Formula, Workbook, Worksheet};
    use zip::write::SimpleFileOptions;
    use zip::{CompressionMethod, ZipArchive, ZipWriter};

    use super::*;
    use crate::csvfile::read_csv;
    use rollcall_domain::damage::{Rng, damage};

    /// The mapping of the CSV reader's tests, so that both readers can be compared.
    fn csv_mapping() -> Mapping {
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

    /// Every kind of cell: a date field, and custom fields that show the raw text.
    fn mapping() -> Mapping {
        let f = |a: &str, b: &str| (a.to_owned(), b.to_owned());
        Mapping::new(
            [
                f("external_id", "EmployeeNumber"),
                f("username", "EmployeeNumber"),
                f("email", "WorkEmail"),
                f("active", "Active"),
                f("start_employment_date", "StartDate"),
            ],
            [
                f("CostCentre", "CostCentre"),
                f("Code", "Code"),
                f("Fte", "Fte"),
                f("StartText", "StartDate"),
            ],
            Vec::<(String, String)>::new(),
        )
        .unwrap()
    }

    fn read(bytes: &[u8], mapping: &Mapping) -> Result<Vec<BatchItem>, Vec<FileProblem>> {
        read_xlsx(
            bytes,
            mapping,
            &ReadOptions::default(),
            Limits::default(),
            |_| {},
        )
    }

    fn ok(item: &BatchItem) -> &Incoming {
        match item {
            Ok(record) => record,
            Err(rejected) => panic!("row {} rejected: {:?}", rejected.row, rejected.issues),
        }
    }

    fn custom<'a>(record: &'a Incoming, name: &str) -> &'a str {
        record
            .profile
            .custom_fields
            .get(name)
            .map_or("", String::as_str)
    }

    fn external_id(record: &Incoming) -> String {
        record
            .profile
            .external_id
            .as_ref()
            .map(|e| e.as_str().to_owned())
            .unwrap_or_default()
    }

    /// A workbook of one sheet written by `build`.
    fn book(build: impl FnOnce(&mut Worksheet)) -> Vec<u8> {
        let mut workbook = Workbook::new();
        build(workbook.add_worksheet());
        workbook.save_to_buffer().unwrap()
    }

    fn headers(sheet: &mut Worksheet, row: u32, names: &[&str]) {
        for (c, name) in names.iter().enumerate() {
            sheet.write_string(row, c as u16, *name).unwrap();
        }
    }

    /// The parts of an archive, in order.
    fn parts_of(xlsx: &[u8]) -> Vec<(String, Vec<u8>)> {
        let mut zip = ZipArchive::new(Cursor::new(xlsx)).unwrap();
        (0..zip.len())
            .map(|i| {
                let mut part = zip.by_index(i).unwrap();
                let mut data = Vec::new();
                part.read_to_end(&mut data).unwrap();
                (part.name().unwrap().into_owned(), data)
            })
            .collect()
    }

    fn package(parts: &[(String, Vec<u8>)]) -> Vec<u8> {
        let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
        let options = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Deflated)
            .compression_level(Some(1));
        for (name, data) in parts {
            zip.start_file(name.as_str(), options).unwrap();
            zip.write_all(data).unwrap();
        }
        zip.finish().unwrap().into_inner()
    }

    /// The workbook with one part's text edited, as a writer other than Excel might leave it.
    fn edit(xlsx: &[u8], part: &str, change: impl Fn(&str) -> String) -> Vec<u8> {
        let mut parts = parts_of(xlsx);
        let (_, data) = parts.iter_mut().find(|(n, _)| n == part).unwrap();
        let text = String::from_utf8(data.clone()).unwrap();
        let changed = change(&text);
        assert_ne!(changed, text, "the edit of {part} changed nothing");
        *data = changed.into_bytes();
        package(&parts)
    }

    const XML: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>"#;
    const MAIN: &str = "http://schemas.openxmlformats.org/spreadsheetml/2006/main";
    const SHEET: &str = "xl/worksheets/sheet1.xml";

    fn sheet_xml(sheet_data: &str) -> String {
        format!(r#"{XML}<worksheet xmlns="{MAIN}"><sheetData>{sheet_data}</sheetData></worksheet>"#)
    }

    /// The parts of a hand-built workbook of one sheet, for what no spreadsheet writes.
    fn minimal_parts(sheet_data: &str) -> Vec<(String, Vec<u8>)> {
        const RELS: &str = "http://schemas.openxmlformats.org/package/2006/relationships";
        const DOC: &str = "http://schemas.openxmlformats.org/officeDocument/2006/relationships";
        [
            (
                "_rels/.rels",
                format!(r#"{XML}<Relationships xmlns="{RELS}"><Relationship Id="rId1" Type="{DOC}/officeDocument" Target="xl/workbook.xml"/></Relationships>"#),
            ),
            (
                "xl/workbook.xml",
                format!(r#"{XML}<workbook xmlns="{MAIN}" xmlns:r="{DOC}"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>"#),
            ),
            (
                "xl/_rels/workbook.xml.rels",
                format!(r#"{XML}<Relationships xmlns="{RELS}"><Relationship Id="rId1" Type="{DOC}/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#),
            ),
            (SHEET, sheet_xml(sheet_data)),
        ]
        .into_iter()
        .map(|(n, d)| (n.to_owned(), d.into_bytes()))
        .collect()
    }

    fn minimal(sheet_data: &str, shared_strings: Option<&str>) -> Vec<u8> {
        let mut parts = minimal_parts(sheet_data);
        if let Some(sst) = shared_strings {
            parts.push((
                "xl/sharedStrings.xml".to_owned(),
                format!("{XML}{sst}").into_bytes(),
            ));
        }
        package(&parts)
    }

    /// An inline-string cell of a hand-built sheet.
    fn text_cell(at: &str, text: &str) -> String {
        format!(r#"<c r="{at}" t="inlineStr"><is><t>{text}</t></is></c>"#)
    }

    /// The header row of the CSV mapping, in a hand-built sheet.
    fn minimal_header() -> String {
        format!(
            r#"<row r="1">{}{}{}{}</row>"#,
            text_cell("A1", "EmployeeNumber"),
            text_cell("B1", "WorkEmail"),
            text_cell("C1", "Active"),
            text_cell("D1", "CostCentre")
        )
    }

    fn minimal_row(row: u32, id: &str) -> String {
        format!(
            r#"<row r="{row}">{}{}{}</row>"#,
            text_cell(&format!("A{row}"), id),
            text_cell(&format!("B{row}"), &format!("{id}@acme.com")),
            text_cell(&format!("C{row}"), "true")
        )
    }

    #[test]
    fn reads_the_first_sheet_only_and_keeps_sheet_row_numbers() {
        let mut workbook = Workbook::new();
        let people = workbook.add_worksheet();
        people.set_name("People").unwrap();
        // Rows 1 and 2 are empty: the header is the first non-empty row.
        headers(
            people,
            2,
            &["EmployeeNumber", "WorkEmail", "Active", "CostCentre"],
        );
        headers(people, 3, &["E1", "a@acme.com", "true", "Sales"]);
        // A formatted but empty row and a row of white space are skipped.
        people.write_blank(4, 0, &Format::new().set_bold()).unwrap();
        people.write_string(5, 1, " \u{a0} ").unwrap();
        headers(people, 6, &["E2", "b@acme.com", "false", ""]);
        // The second sheet, even when it is the active one, is never read: its header would
        // fail the mapping.
        let other = workbook.add_worksheet();
        other.set_name("Other").unwrap();
        headers(other, 0, &["Something Else"]);
        headers(other, 1, &["x"]);
        other.set_active(true);
        let bytes = workbook.save_to_buffer().unwrap();

        let mut progress = Vec::new();
        let items = read_xlsx(
            &bytes,
            &csv_mapping(),
            &ReadOptions::default(),
            Limits::default(),
            |n| progress.push(n),
        )
        .unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(progress, vec![1, 2]);
        let first = ok(&items[0]);
        assert_eq!(first.row, 4, "the sheet's own row number");
        assert_eq!(external_id(first), "E1");
        assert!(first.active);
        assert_eq!(custom(first, "CostCentre"), "Sales");
        let second = ok(&items[1]);
        assert_eq!(second.row, 7);
        assert!(!second.active);
        assert_eq!(custom(second, "CostCentre"), "");
    }

    /// No damaged workbook makes the reader panic (beyond calamine's debug-only overflow
    /// checks): each is read or refused with problems.
    #[test]
    fn damaged_workbooks_are_refused_not_a_panic() {
        let good = book(|sheet| {
            headers(
                sheet,
                0,
                &[
                    "EmployeeNumber",
                    "WorkEmail",
                    "Active",
                    "StartDate",
                    "CostCentre",
                ],
            );
            for r in 1..6u32 {
                sheet.write_string(r, 0, format!("E{r}")).unwrap();
                sheet.write_string(r, 1, format!("p{r}@acme.com")).unwrap();
                sheet.write_boolean(r, 2, r % 2 == 0).unwrap();
                sheet.write_number(r, 3, 45000.0 + f64::from(r)).unwrap();
                sheet.write_number(r, 4, f64::from(r) * 1.5).unwrap();
            }
        });
        let parts = parts_of(&good);
        let sheet = parts.iter().position(|(name, _)| name == SHEET).unwrap();
        let mapping = mapping();
        let mut rng = Rng::new(0x5EED_F0DD);
        let mut panics = Vec::new();
        for case in 0..3000 {
            let mut damaged = parts.clone();
            // Half the damage goes to the sheet, where the reader spends its time.
            let which = match rng.below(2) {
                0 => sheet,
                _ => rng.below(damaged.len()),
            };
            for _ in 0..1 + rng.below(3) {
                damage(&mut damaged[which].1, &mut rng);
            }
            let bytes = package(&damaged);
            // Guarded, a panic would fail the file; unguarded, this finds them.
            let unguarded = || {
                let (options, mut phones) = (ReadOptions::default(), PhoneCache::new());
                crate::collect(|sink| {
                    read_sheet(
                        &bytes,
                        &mapping,
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
            if let Err(payload) = std::panic::catch_unwind(unguarded) {
                let message = payload
                    .downcast_ref::<&str>()
                    .map(|m| m.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                // calamine's cell references overflow a u32: checked only in debug builds, and
                // refused by `Walk` where the arithmetic wraps (see the next test).
                if !message.starts_with("attempt to") || !message.ends_with("with overflow") {
                    panics.push(format!("case {case}: {}: {message}", damaged[which].0));
                }
            }
        }
        assert!(
            panics.is_empty(),
            "{} panics: {:?}",
            panics.len(),
            &panics[..panics.len().min(20)]
        );
    }

    /// Found by the test above: calamine computes a row number like `A99999999999` in a u32,
    /// which panics where overflow is checked and wraps where it is not. Either way the file
    /// is refused as damaged.
    #[test]
    fn a_cell_reference_past_any_row_is_refused() {
        let good = book(|sheet| {
            headers(sheet, 0, &["EmployeeNumber", "WorkEmail", "Active"]);
            headers(sheet, 1, &["E1", "a@acme.com", "true"]);
        });
        let bytes = edit(&good, SHEET, |xml| {
            xml.replace(r#"r="A2""#, r#"r="A99999999999""#)
        });
        let problems = read(&bytes, &csv_mapping()).unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0]
                .message
                .starts_with("The file is not a valid .xlsx workbook: "),
            "{problems:?}"
        );
    }

    #[test]
    fn a_chart_sheet_first_is_named_not_skipped() {
        let mut workbook = Workbook::new();
        let mut chart = Chart::new(ChartType::Column);
        chart.add_series().set_values("People!$A$1:$A$2");
        workbook
            .add_chartsheet()
            .set_name("Headcount")
            .unwrap()
            .insert_chart(0, 0, &chart)
            .unwrap();
        let people = workbook.add_worksheet();
        people.set_name("People").unwrap();
        headers(
            people,
            0,
            &["EmployeeNumber", "WorkEmail", "Active", "CostCentre"],
        );
        headers(people, 1, &["E1", "a@acme.com", "true"]);
        let bytes = workbook.save_to_buffer().unwrap();
        let problems = read(&bytes, &csv_mapping()).unwrap_err();
        assert_eq!(
            problems,
            vec![FileProblem::new(
                None,
                "The first sheet, 'Headcount', is not a worksheet (it is a chart or dialog sheet): only the first sheet is read, so move the sheet with the users first",
                "sheet=Headcount"
            )]
        );
    }

    #[test]
    fn cells_give_the_text_excel_shows() {
        let bytes = book(|sheet| {
            headers(
                sheet,
                0,
                &[
                    "EmployeeNumber",
                    "WorkEmail",
                    "Active",
                    "StartDate",
                    "Code",
                    "CostCentre",
                    "Fte",
                ],
            );
            let iso = Format::new().set_num_format("yyyy-mm-dd");
            let builtin_date = Format::new().set_num_format_index(14);
            let padded = Format::new().set_num_format("00000");
            let ssn = Format::new().set_num_format("000-00-0000");

            // A 13-digit whole number, never 1.23E+12; a padded code; leading zeros typed as
            // text are kept.
            sheet.write_number(1, 0, 1234567890123.0).unwrap();
            sheet.write_string(1, 1, "a@acme.com").unwrap();
            sheet.write_boolean(1, 2, true).unwrap();
            let date = rust_xlsxwriter::ExcelDateTime::from_ymd(2024, 1, 31).unwrap();
            sheet.write_datetime_with_format(1, 3, &date, &iso).unwrap();
            sheet.write_number_with_format(1, 4, 42, &padded).unwrap();
            sheet.write_string(1, 5, "00123").unwrap();
            sheet.write_number(1, 6, 0.1 + 0.2).unwrap();

            sheet.write_number(2, 0, 42.0).unwrap();
            sheet.write_string(2, 1, "b@acme.com").unwrap();
            sheet.write_boolean(2, 2, false).unwrap();
            // 2024-02-29 and 12:00 in the 1900 system, under the built-in m/d/yy format.
            sheet
                .write_number_with_format(2, 3, 45351.5, &builtin_date)
                .unwrap();
            sheet
                .write_number_with_format(2, 4, 12345678, &ssn)
                .unwrap();
            sheet.write_number(2, 6, 1.0).unwrap();
        });
        let items = read(&bytes, &mapping()).unwrap();
        let first = ok(&items[0]);
        assert_eq!(external_id(first), "1234567890123");
        assert!(first.active);
        assert_eq!(
            first.profile.start_employment_date.unwrap().to_string(),
            "2024-01-31"
        );
        assert_eq!(custom(first, "StartText"), "2024-01-31");
        assert_eq!(custom(first, "Code"), "00042");
        assert_eq!(custom(first, "CostCentre"), "00123");
        assert_eq!(custom(first, "Fte"), "0.3");

        let second = ok(&items[1]);
        assert_eq!(external_id(second), "42", "no \".0\"");
        assert!(!second.active);
        assert_eq!(custom(second, "StartText"), "2024-02-29");
        assert_eq!(custom(second, "Code"), "012-34-5678");
        assert_eq!(custom(second, "Fte"), "1");
    }

    #[test]
    fn dates_honour_the_1904_date_system() {
        // 43860 is 2024-01-31 counted from 1904, and 2020-01-30 counted from 1900.
        let bytes = book(|sheet| {
            headers(sheet, 0, &["EmployeeNumber", "Active", "StartDate"]);
            headers(sheet, 1, &["E1", "true"]);
            let date = Format::new().set_num_format("dd/mm/yyyy");
            sheet.write_number_with_format(1, 2, 43860, &date).unwrap();
        });
        let f = |a: &str, b: &str| (a.to_owned(), b.to_owned());
        let mapping = Mapping::new(
            [
                f("external_id", "EmployeeNumber"),
                f("username", "EmployeeNumber"),
                f("active", "Active"),
                f("start_employment_date", "StartDate"),
            ],
            [],
            Vec::<(String, String)>::new(),
        )
        .unwrap();
        let start = |bytes: &[u8]| {
            let items = read(bytes, &mapping).unwrap();
            ok(&items[0])
                .profile
                .start_employment_date
                .unwrap()
                .to_string()
        };
        assert_eq!(start(&bytes), "2020-01-30");
        let in_1904 = edit(&bytes, "xl/workbook.xml", |xml| {
            xml.replace("<workbookPr ", r#"<workbookPr date1904="1" "#)
        });
        assert_eq!(start(&in_1904), "2024-01-31");
    }

    #[test]
    fn formulas_give_their_cached_value_and_rows_without_one_are_rejected() {
        let bytes = book(|sheet| {
            headers(
                sheet,
                0,
                &["EmployeeNumber", "WorkEmail", "Active", "CostCentre"],
            );
            let padded = Format::new().set_num_format("000000");
            // Cached values: a number under a padded format, a text, a boolean.
            sheet
                .write_formula(1, 0, Formula::new("=40+2").set_result("42"))
                .unwrap();
            sheet.set_cell_format(1, 0, &padded).unwrap();
            sheet
                .write_formula(
                    1,
                    1,
                    Formula::new("=\"a@\"&\"acme.com\"").set_result("a@acme.com"),
                )
                .unwrap();
            sheet
                .write_formula(1, 2, Formula::new("=TRUE()").set_result("TRUE"))
                .unwrap();
            // Row 3: no cached value (the marker is removed below).
            headers(sheet, 2, &["E3", "c@acme.com"]);
            sheet
                .write_formula(2, 2, Formula::new("=TRUE()").set_result("NOCACHE"))
                .unwrap();
            // Row 4: the cached value is an error.
            headers(sheet, 3, &["E4", "d@acme.com", "true"]);
            sheet
                .write_formula(3, 3, Formula::new("=NA()").set_result("#N/A"))
                .unwrap();
        });
        let bytes = edit(&bytes, "xl/worksheets/sheet1.xml", |xml| {
            xml.replace("<v>NOCACHE</v>", "")
        });
        let items = read(&bytes, &csv_mapping()).unwrap();
        assert_eq!(items.len(), 3);
        let first = ok(&items[0]);
        assert_eq!(external_id(first), "000042");
        assert_eq!(first.profile.email.as_ref().unwrap().as_str(), "a@acme.com");
        assert!(first.active);

        let no_value = items[1].as_ref().unwrap_err();
        assert_eq!(no_value.row, 3);
        assert_eq!(no_value.external_id, "E3");
        assert_eq!(no_value.issues.len(), 1);
        assert_eq!(no_value.issues[0].error_type, ErrorType::InvalidValue);
        assert_eq!(
            no_value.issues[0].message,
            "Cell C3 has a formula with no saved value: open the file in Excel, save it and upload it again"
        );
        assert_eq!(no_value.issues[0].additional_data, "cell=C3");

        let error = items[2].as_ref().unwrap_err();
        assert_eq!(error.row, 4);
        assert_eq!(error.issues[0].error_type, ErrorType::InvalidValue);
        assert_eq!(
            error.issues[0].message,
            "Cell D4 holds the error #N/A: correct it or type the value in"
        );
    }

    #[test]
    fn a_shared_formula_without_a_value_is_rejected_too() {
        let sheet = format!(
            r#"{}<row r="2"><c r="A2"><f t="shared" ref="A2:A3" si="0">"E"&amp;ROW()</f><v>E2</v></c>{}{}</row><row r="3"><c r="A3"><f t="shared" si="0"/></c>{}{}</row>"#,
            minimal_header(),
            text_cell("B2", "b@acme.com"),
            text_cell("C2", "true"),
            text_cell("B3", "c@acme.com"),
            text_cell("C3", "true"),
        );
        let items = read(&minimal(&sheet, None), &csv_mapping()).unwrap();
        assert_eq!(external_id(ok(&items[0])), "E2");
        let rejected = items[1].as_ref().unwrap_err();
        assert_eq!(rejected.row, 3);
        assert!(
            rejected.issues[0]
                .message
                .starts_with("Cell A3 has a formula with no saved value"),
            "{:?}",
            rejected.issues
        );
    }

    /// The same header row as CSV and as XLSX must give the same problems.
    fn both(header: &[&str]) -> (Vec<FileProblem>, Vec<FileProblem>) {
        let csv = format!("{}\nE1,a@acme.com,true,x\n", header.join(","));
        let from_csv = read_csv(
            csv.as_bytes(),
            &csv_mapping(),
            &ReadOptions::default(),
            Limits::default(),
            |_| {},
        )
        .unwrap_err();
        let xlsx = book(|sheet| {
            headers(sheet, 0, header);
            headers(sheet, 1, &["E1", "a@acme.com", "true", "x"]);
        });
        (read(&xlsx, &csv_mapping()).unwrap_err(), from_csv)
    }

    #[test]
    fn header_errors_are_those_of_csv() {
        let (xlsx, csv) = both(&["EmployeeNumber", "Work Email", "Active", "Active"]);
        assert_eq!(xlsx, csv);
        assert_eq!(xlsx.len(), 3);
        assert_eq!(
            xlsx[0].message,
            "Header 'Work Email' is not PascalCase ASCII (letters and digits, no spaces, accents or symbols): rename it to 'WorkEmail'"
        );
        assert_eq!(xlsx[0].line, Some(1));
        assert_eq!(
            xlsx[1].message,
            "Header 'Active' appears twice (columns 3 and 4): keep one"
        );
        assert!(
            xlsx[2]
                .message
                .starts_with("Mapped columns are missing: CostCentre, WorkEmail")
        );

        let (xlsx, csv) = both(&["EmployeeNumber", "", "Active", "CostCentre"]);
        assert_eq!(xlsx, csv);
        assert_eq!(
            xlsx[0].message,
            "Column 2 has no header: name it or remove it"
        );
        assert_eq!(
            xlsx[1].message,
            "Mapped column is missing: WorkEmail. Add it to the file or change the mapping"
        );
    }

    #[test]
    fn empty_sheets_and_sheets_without_data_rows() {
        let empty = book(|_| {});
        assert_eq!(
            read(&empty, &csv_mapping()).unwrap_err(),
            vec![no_headers()]
        );
        let headers_only = book(|sheet| {
            headers(
                sheet,
                0,
                &["EmployeeNumber", "WorkEmail", "Active", "CostCentre"],
            );
            sheet.write_string(1, 0, "  ").unwrap();
        });
        let problems = read(&headers_only, &csv_mapping()).unwrap_err();
        assert_eq!(
            problems[0].message,
            "The file has headers but no data rows: add at least one user"
        );
    }

    #[test]
    fn file_and_row_limits() {
        let bytes = book(|sheet| {
            headers(
                sheet,
                0,
                &["EmployeeNumber", "WorkEmail", "Active", "CostCentre"],
            );
            headers(sheet, 1, &["E1", "a@acme.com", "true"]);
            headers(sheet, 2, &["E2", "b@acme.com", "true"]);
        });
        let limits = Limits {
            max_rows: 1,
            ..Limits::default()
        };
        let problems = read_xlsx(
            &bytes,
            &csv_mapping(),
            &ReadOptions::default(),
            limits,
            |_| {},
        )
        .unwrap_err();
        assert_eq!(
            problems[0].message,
            "The file has more than 1 data rows, the limit: split it into several files"
        );
        let limits = Limits {
            max_bytes: 100,
            ..Limits::default()
        };
        let problems = read_xlsx(
            &bytes,
            &csv_mapping(),
            &ReadOptions::default(),
            limits,
            |_| {},
        )
        .unwrap_err();
        assert_eq!(problems[0].additional_data, "max_bytes=100");
    }

    #[test]
    fn files_that_are_not_workbooks() {
        let problems = read(b"EmployeeNumber,WorkEmail\n", &csv_mapping()).unwrap_err();
        assert!(
            problems[0]
                .message
                .starts_with("The file is not a valid .xlsx workbook: "),
            "{problems:?}"
        );
        let mut ole = vec![0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];
        ole.resize(4096, 0);
        let problems = read(&ole, &csv_mapping()).unwrap_err();
        assert!(
            problems[0].message.starts_with(
                "The file is not a valid .xlsx workbook: it is password-protected or an old .xls workbook"
            ),
            "{problems:?}"
        );
        // A zip archive, but not a workbook.
        let zip = package(&[("readme.txt".to_owned(), b"hello".to_vec())]);
        let problems = read(&zip, &csv_mapping()).unwrap_err();
        assert!(
            problems[0]
                .message
                .starts_with("The file is not a valid .xlsx workbook: "),
            "{problems:?}"
        );
        // A truncated workbook.
        let bytes = book(|sheet| headers(sheet, 0, &["EmployeeNumber"]));
        let problems = read(&bytes[..bytes.len() / 2], &csv_mapping()).unwrap_err();
        assert!(
            problems[0]
                .message
                .starts_with("The file is not a valid .xlsx workbook: "),
            "{problems:?}"
        );
    }

    /// A workbook whose sheet holds a cell of 1 GiB of '0' characters, which deflates to about
    /// 1 MiB: unguarded, calamine would inflate the whole cell into one string.
    fn zip_bomb() -> Vec<u8> {
        let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
        let options = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Deflated)
            .compression_level(Some(9));
        for (name, data) in minimal_parts("") {
            if name != SHEET {
                zip.start_file(name, options).unwrap();
                zip.write_all(&data).unwrap();
            }
        }
        zip.start_file(SHEET, options).unwrap();
        let (head, tail) = sheet_xml(&format!(
            r#"{}<row r="2"><c r="A2" t="inlineStr"><is><t>{{}}</t></is></c></row>"#,
            minimal_header()
        ))
        .split_once("{}")
        .map(|(h, t)| (h.to_owned(), t.to_owned()))
        .unwrap();
        zip.write_all(head.as_bytes()).unwrap();
        let chunk = vec![b'0'; 1 << 20];
        for _ in 0..1024 {
            zip.write_all(&chunk).unwrap();
        }
        zip.write_all(tail.as_bytes()).unwrap();
        zip.finish().unwrap().into_inner()
    }

    /// Overwrite the uncompressed size that the local and central headers of `part` declare.
    fn declare_size(zip: &mut [u8], part: &str, size: u32) {
        let name = part.as_bytes();
        let mut patched = 0;
        for i in 0..zip.len().saturating_sub(46) {
            let (signature, name_at, size_at) = match &zip[i..i + 4] {
                [0x50, 0x4b, 0x03, 0x04] => ("local", 30, 22),
                [0x50, 0x4b, 0x01, 0x02] => ("central", 46, 24),
                _ => continue,
            };
            let length_at = if signature == "local" { 26 } else { 28 };
            let length = u16::from_le_bytes([zip[i + length_at], zip[i + length_at + 1]]);
            if usize::from(length) == name.len()
                && zip.get(i + name_at..i + name_at + name.len()) == Some(name)
            {
                zip[i + size_at..i + size_at + 4].copy_from_slice(&size.to_le_bytes());
                patched += 1;
            }
        }
        assert_eq!(patched, 2, "one local and one central header");
    }

    #[test]
    fn zip_bombs_are_refused_before_they_inflate() {
        let bomb = zip_bomb();
        assert!(bomb.len() < 4 << 20, "{} bytes", bomb.len());

        let started = Instant::now();
        let problems = read(&bomb, &csv_mapping()).unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(problems.len(), 1);
        assert_eq!(
            problems[0].message,
            "The workbook decompresses to more than 536870912 bytes (at part 'xl/worksheets/sheet1.xml'), the limit for .xlsx files: it may be a zip bomb. Split the data into several files, or remove images and unused sheets"
        );
        assert_eq!(
            problems[0].additional_data,
            "max_xlsx_decompressed_bytes=536870912"
        );

        // The same archive lying that the part inflates to 1,000 bytes: inflating stops there.
        let mut liar = bomb;
        declare_size(&mut liar, SHEET, 1_000);
        let started = Instant::now();
        let problems = read(&liar, &csv_mapping()).unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert!(
            problems[0].message.starts_with(
                "The file is not a valid .xlsx workbook: part 'xl/worksheets/sheet1.xml': "
            ),
            "{problems:?}"
        );

        // The budget is for all the parts together: a small workbook over a small budget.
        let valid = book(|sheet| headers(sheet, 0, &["EmployeeNumber"]));
        let limits = Limits {
            max_xlsx_decompressed_bytes: 2_000,
            ..Limits::default()
        };
        let problems = read_xlsx(
            &valid,
            &csv_mapping(),
            &ReadOptions::default(),
            limits,
            |_| {},
        )
        .unwrap_err();
        assert!(
            problems[0]
                .message
                .starts_with("The workbook decompresses to more than 2000 bytes"),
            "{problems:?}"
        );
    }

    #[test]
    fn a_cell_at_xfd1048576_is_read_without_allocating_the_sheet() {
        let bytes = book(|sheet| {
            headers(
                sheet,
                0,
                &["EmployeeNumber", "WorkEmail", "Active", "CostCentre"],
            );
            headers(sheet, 1, &["E1", "a@acme.com", "true"]);
            sheet.write_string(1_048_575, 16_383, "far away").unwrap();
        });
        assert!(bytes.len() < 10_000, "{} bytes", bytes.len());
        let items = read(&bytes, &csv_mapping()).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(external_id(ok(&items[0])), "E1");
        let far = items[1].as_ref().unwrap_err();
        assert_eq!(far.row, 1_048_576);
        assert_eq!(
            far.issues[0].message,
            "Cell XFD1048576 has a value but its column has no header: give the column a header or clear the cell"
        );

        // A header row reaching column XFD is refused as a whole.
        let wide = book(|sheet| {
            headers(
                sheet,
                0,
                &["EmployeeNumber", "WorkEmail", "Active", "CostCentre"],
            );
            sheet.write_string(0, 16_383, "Far").unwrap();
            headers(sheet, 1, &["E1", "a@acme.com", "true"]);
        });
        let problems = read(&wide, &csv_mapping()).unwrap_err();
        assert_eq!(problems.len(), 1);
        assert_eq!(
            problems[0].message,
            "The header row reaches column 16384 (XFD1), more than the 1000 columns a file may have: delete the columns that are not needed"
        );

        // Beyond Excel's last row, or rows out of order: not a workbook Excel wrote.
        let beyond = format!(
            "{}{}",
            minimal_header(),
            r#"<row r="1048577"><c r="A1048577"><v>1</v></c></row>"#
        );
        let problems = read(&minimal(&beyond, None), &csv_mapping()).unwrap_err();
        assert_eq!(
            problems[0].message,
            "The file is not a valid .xlsx workbook: it has a cell at row 1048577, column 1, outside the sheet. Open it in Excel and save it as \"Excel Workbook (.xlsx)\""
        );
        let backwards = format!(
            "{}{}{}",
            minimal_header(),
            minimal_row(3, "E3"),
            minimal_row(2, "E2")
        );
        let problems = read(&minimal(&backwards, None), &csv_mapping()).unwrap_err();
        assert!(
            problems[0]
                .message
                .starts_with("The file is not a valid .xlsx workbook: row 2 comes after row 3"),
            "{problems:?}"
        );
    }

    #[test]
    fn absurd_shared_string_counts_are_refused() {
        let sheet = format!(
            r#"{}<row r="2"><c r="A2" t="s"><v>0</v></c>{}{}</row>"#,
            minimal_header(),
            text_cell("B2", "a@acme.com"),
            text_cell("C2", "true")
        );
        let sst = |attributes: &str| {
            format!(r#"<sst xmlns="{MAIN}" {attributes}><si><t>E1</t></si></sst>"#)
        };
        // Sane counts read as usual.
        let items = read(
            &minimal(&sheet, Some(&sst(r#"count="1" uniqueCount="1""#))),
            &csv_mapping(),
        )
        .unwrap();
        assert_eq!(external_id(ok(&items[0])), "E1");

        let problems = read(
            &minimal(
                &sheet,
                Some(&sst(r#"count="1" uniqueCount="4000000000000""#)),
            ),
            &csv_mapping(),
        )
        .unwrap_err();
        assert!(
            problems[0].message.starts_with(
                "The file is not a valid .xlsx workbook: shared strings part 'xl/sharedStrings.xml' claims 4000000000000 strings, more than its"
            ),
            "{problems:?}"
        );
        let problems = read(
            &minimal(
                &sheet,
                Some(&sst(r#"count="99999999999999999999" uniqueCount="1""#)),
            ),
            &csv_mapping(),
        )
        .unwrap_err();
        assert!(
            problems[0]
                .message
                .contains("claims 99999999999999999999 uses of strings"),
            "{problems:?}"
        );
        // A part whose first element is not <sst> cannot be checked, so it is refused.
        let problems = read(
            &minimal(&sheet, Some(r#"<other/><sst uniqueCount="9999999999"/>"#)),
            &csv_mapping(),
        )
        .unwrap_err();
        assert!(
            problems[0]
                .message
                .contains("does not begin with its <sst> element"),
            "{problems:?}"
        );
    }
}
