//! Run log downloads (SPEC §6): CSV and XLSX, named from the run's start time, with every cell
//! a spreadsheet would run as a formula neutralised.

use std::io::Write;

use chrono::{DateTime, FixedOffset, Timelike, Utc};
use rollcall_domain::LogRow;

/// `Sync Logs - 15 Jan 2024 10.30pm.csv`: day and hour without a leading zero, 12-hour clock,
/// lower-case am/pm, in the viewer's offset. A dry run's log is marked as one:
/// `Sync Logs - 15 Jan 2024 10.30pm (dry run).csv` (its rows say what a real run would do).
pub fn log_file_name(
    started: DateTime<Utc>,
    offset: FixedOffset,
    dry_run: bool,
    extension: &str,
) -> String {
    let t = started.with_timezone(&offset);
    let (pm, hour) = t.hour12();
    format!(
        "Sync Logs - {} {}.{:02}{}{}.{extension}",
        t.format("%-d %b %Y"),
        hour,
        t.minute(),
        if pm { "pm" } else { "am" },
        if dry_run { " (dry run)" } else { "" }
    )
}

/// Prefix a cell that starts like a formula (`=`, `+`, `-`, `@`, tab, CR) with `'`, so that
/// opening the log in a spreadsheet shows the text instead of running it (CSV injection).
pub fn neutralise(cell: &str) -> String {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{cell}"),
        _ => cell.to_owned(),
    }
}

fn cells(row: &LogRow) -> [String; 8] {
    [
        row.row.map(|r| r.to_string()).unwrap_or_default(),
        neutralise(&row.external_id),
        neutralise(&row.username),
        row.action.label().to_owned(),
        row.error_type_codes().into_owned(),
        neutralise(&row.message),
        neutralise(&row.additional_data),
        neutralise(&row.changed_fields),
    ]
}

pub fn write_csv(rows: &[LogRow], out: impl Write) -> Result<(), csv::Error> {
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record(LogRow::HEADERS)?;
    for row in rows {
        writer.write_record(cells(row))?;
    }
    writer.flush()?;
    Ok(())
}

/// The longest text an XLSX cell holds, in UTF-16 code units (Excel's limit).
const XLSX_CELL_MAX: usize = 32_767;

/// `text` cut to fit an XLSX cell, with a marker saying how much was cut (the CSV download
/// has it whole); text that fits is returned as it is.
pub fn fit_xlsx_cell(text: &str) -> std::borrow::Cow<'_, str> {
    let units = text.encode_utf16().count();
    if units <= XLSX_CELL_MAX {
        return text.into();
    }
    // The marker is ASCII, so its length in bytes is its length in UTF-16 units; the cut
    // count has at most as many digits as the text's length.
    let marker = |cut: usize| format!(" … [{cut} more characters cut: see the CSV download]");
    let budget = XLSX_CELL_MAX - marker(units).len();
    let mut kept = 0;
    let mut end = 0;
    for (i, c) in text.char_indices() {
        if kept + c.len_utf16() > budget {
            break;
        }
        kept += c.len_utf16();
        end = i + c.len_utf8();
    }
    let cut = text[end..].chars().count();
    format!("{}{}", &text[..end], marker(cut)).into()
}

/// Column widths, in characters, that fit the header and the widest cell of each column
/// (within reason: a long message wraps on screen rather than making a column a page wide).
fn column_widths(rows: &[LogRow]) -> [f64; 8] {
    let mut widths = LogRow::HEADERS.map(|h| h.chars().count());
    for row in rows {
        for (col, value) in cells(row).iter().enumerate() {
            widths[col] = widths[col].max(value.chars().count().min(80));
        }
    }
    widths.map(|w| (w.clamp(6, 80) + 2) as f64)
}

/// The XLSX workbook as bytes, with columns sized to their contents, the header row frozen
/// and an autofilter on it. Rows are written in constant memory.
pub fn write_xlsx(rows: &[LogRow]) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    use rust_xlsxwriter::{Format, Workbook};
    let mut workbook = Workbook::new();
    let bold = Format::new().set_bold();
    let sheet = workbook.add_worksheet_with_constant_memory()?;
    sheet.set_name("Sync Logs")?;
    // In constant memory, widths must be known before the first row is written.
    for (col, width) in column_widths(rows).into_iter().enumerate() {
        sheet.set_column_width(col as u16, width)?;
    }
    sheet.set_freeze_panes(1, 0)?;
    let last_row = u32::try_from(rows.len()).unwrap_or(u32::MAX);
    sheet.autofilter(0, 0, last_row, (LogRow::HEADERS.len() - 1) as u16)?;
    for (col, header) in LogRow::HEADERS.iter().enumerate() {
        sheet.write_string_with_format(0, col as u16, *header, &bold)?;
    }
    for (i, row) in rows.iter().enumerate() {
        let r = u32::try_from(i + 1).unwrap_or(u32::MAX);
        if let Some(n) = row.row {
            sheet.write_number(r, 0, n as f64)?;
        }
        for (col, value) in cells(row).iter().enumerate().skip(1) {
            if !value.is_empty() {
                sheet.write_string(r, col as u16, fit_xlsx_cell(value))?;
            }
        }
    }
    workbook.save_to_buffer()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn file_names_follow_the_spec() {
        let utc = FixedOffset::east_opt(0).unwrap();
        let t = Utc.with_ymd_and_hms(2024, 1, 15, 22, 30, 0).unwrap();
        assert_eq!(
            log_file_name(t, utc, false, "csv"),
            "Sync Logs - 15 Jan 2024 10.30pm.csv"
        );
        let t = Utc.with_ymd_and_hms(2024, 3, 5, 0, 5, 0).unwrap();
        assert_eq!(
            log_file_name(t, utc, false, "xlsx"),
            "Sync Logs - 5 Mar 2024 12.05am.xlsx"
        );
        let paris = FixedOffset::east_opt(3600).unwrap();
        let t = Utc.with_ymd_and_hms(2024, 12, 31, 23, 15, 0).unwrap();
        assert_eq!(
            log_file_name(t, paris, false, "csv"),
            "Sync Logs - 1 Jan 2025 12.15am.csv"
        );
        assert_eq!(
            log_file_name(t, paris, true, "xlsx"),
            "Sync Logs - 1 Jan 2025 12.15am (dry run).xlsx"
        );
    }

    #[test]
    fn formulas_are_neutralised() {
        assert_eq!(neutralise("=cmd|' /C calc'!A0"), "'=cmd|' /C calc'!A0");
        for s in ["+1", "-1", "@SUM(A1)", "\tx", "\rx"] {
            assert!(neutralise(s).starts_with('\''), "{s:?}");
        }
        assert_eq!(neutralise("jane@acme.com"), "jane@acme.com");
    }

    #[test]
    fn csv_export_has_headers_and_neutralised_cells() {
        let rows = [LogRow {
            row: Some(2),
            external_id: "=cmd|' /C calc'!A0".into(),
            ..LogRow::new(rollcall_domain::Action::Failed)
        }];
        let mut out = Vec::new();
        write_csv(&rows, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with(
            "Row,ExternalId,Username,Action,ErrorType,Message,AdditionalData,ChangedFields\n"
        ));
        assert!(text.contains("2,'=cmd|' /C calc'!A0,,Failed"), "{text}");
        assert!(write_xlsx(&rows).unwrap().starts_with(b"PK"));
    }

    #[test]
    fn an_overlong_cell_is_cut_with_a_marker() {
        assert_eq!(fit_xlsx_cell("short"), "short");
        let exact = "x".repeat(XLSX_CELL_MAX);
        assert_eq!(fit_xlsx_cell(&exact), exact.as_str());
        let long = "y".repeat(40_000);
        let cut = fit_xlsx_cell(&long);
        assert!(cut.encode_utf16().count() <= XLSX_CELL_MAX);
        let kept = cut.chars().take_while(|c| *c == 'y').count();
        assert!(
            cut.ends_with(&format!(
                " … [{} more characters cut: see the CSV download]",
                40_000 - kept
            )),
            "{}",
            &cut[cut.len() - 80..]
        );
        // Characters outside the BMP count twice and are never split.
        let wide = "😀".repeat(20_000);
        let cut = fit_xlsx_cell(&wide);
        assert!(cut.encode_utf16().count() <= XLSX_CELL_MAX);
        assert!(cut.starts_with("😀😀") && cut.contains("more characters cut"));

        // The workbook is written, where the uncut cell failed before.
        let rows = [LogRow {
            row: Some(2),
            message: long,
            ..LogRow::new(rollcall_domain::Action::Failed)
        }];
        let xlsx = write_xlsx(&rows).unwrap();
        assert!(xlsx.starts_with(b"PK"));
        let mut uncut = rust_xlsxwriter::Workbook::new();
        let sheet = uncut.add_worksheet();
        assert!(sheet.write_string(0, 0, "z".repeat(40_000)).is_err());
    }

    #[test]
    fn columns_fit_their_contents() {
        let rows = [LogRow {
            username: "a.very.long.username@example.com".into(),
            message: "m".repeat(500),
            ..LogRow::new(rollcall_domain::Action::Updated)
        }];
        let widths = column_widths(&rows);
        assert_eq!(widths[0], 8.0, "Row: the header and a margin");
        assert_eq!(widths[2], 34.0, "Username: the value and a margin");
        assert_eq!(widths[5], 82.0, "Message: capped");
    }
}
