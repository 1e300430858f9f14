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

/// The XLSX workbook as bytes. Rows are written in constant memory.
pub fn write_xlsx(rows: &[LogRow]) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    use rust_xlsxwriter::{Format, Workbook};
    let mut workbook = Workbook::new();
    let bold = Format::new().set_bold();
    let sheet = workbook.add_worksheet_with_constant_memory()?;
    sheet.set_name("Sync Logs")?;
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
                sheet.write_string(r, col as u16, value)?;
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
}
