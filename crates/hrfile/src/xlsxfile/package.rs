//! The checks a workbook passes before calamine opens it. calamine trusts the archive: a zip
//! bomb inflates to gigabytes, and a shared-strings `uniqueCount` is reserved up front, so a
//! small hostile file can abort the process (CRATES.md). Here every part of the archive is
//! inflated once into a byte counter, never into memory, against
//! [`Limits::max_xlsx_decompressed_bytes`].

use std::io::{self, Cursor, Read};

use quick_xml::events::Event;
use zip::ZipArchive;

use super::not_workbook;
use crate::{FileProblem, Limits};

/// More parts than any real workbook has; bounds the work below.
const MAX_PARTS: usize = 10_000;
/// How much of a shared-strings part is kept to read its `<sst>` element, which Excel writes
/// right after the XML declaration.
const SST_HEAD: u64 = 64 << 10;
/// The smallest shared string, `<si><t/></si>`, takes 13 bytes; 8 leaves slack for odd
/// writers while still refusing a count the part cannot hold.
const MIN_BYTES_PER_STRING: u64 = 8;
/// The smallest cell that uses a shared string, `<c t="s"><v>0</v></c>`, takes 21 bytes.
const MIN_BYTES_PER_STRING_USE: u64 = 16;

/// The signature of an OLE compound file: what Excel writes for a password-protected
/// workbook, and for the old .xls format.
const OLE_SIGNATURE: [u8; 8] = [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];

/// Refuse a workbook that is not a zip archive, that inflates beyond the budget, or whose
/// shared strings claim more strings than they can hold.
pub(super) fn check(bytes: &[u8], limits: Limits) -> Result<(), Vec<FileProblem>> {
    if bytes.starts_with(&OLE_SIGNATURE) {
        return Err(vec![not_workbook(
            "it is password-protected or an old .xls workbook. Remove the password, or save it as \"Excel Workbook (.xlsx)\"",
        )]);
    }
    let budget = limits.max_xlsx_decompressed_bytes;
    let mut zip = ZipArchive::new(Cursor::new(bytes)).map_err(|e| vec![not_workbook(e)])?;
    if zip.len() > MAX_PARTS {
        return Err(vec![not_workbook(format!(
            "it has {} parts, more than the {MAX_PARTS} a workbook may have",
            zip.len()
        ))]);
    }

    // The sizes the archive declares first: a bomb that states its size is refused without
    // inflating anything.
    let mut declared = 0u64;
    for i in 0..zip.len() {
        let part = zip.by_index_raw(i).map_err(|e| vec![not_workbook(e)])?;
        declared = declared.saturating_add(part.size());
        if declared > budget {
            return Err(vec![too_large(budget, &part_name(&part))]);
        }
    }

    // Then the sizes the parts really inflate to, which a hostile archive can lie about. zip
    // 9.8 itself fails a part that inflates past its declared size; counting here keeps the
    // budget whatever the zip crate does.
    let mut total = 0u64;
    let mut shared_strings = Vec::new();
    for i in 0..zip.len() {
        let mut part = zip.by_index(i).map_err(|e| vec![not_workbook(e)])?;
        let name = part_name(&part);
        let unreadable = |e: io::Error| vec![not_workbook(format!("part '{name}': {e}"))];
        let left = budget - total;
        let is_sst = name
            .replace('\\', "/")
            .to_ascii_lowercase()
            .ends_with("sharedstrings.xml");
        let mut head = Vec::new();
        if is_sst {
            (&mut part)
                .take(SST_HEAD.min(left.saturating_add(1)))
                .read_to_end(&mut head)
                .map_err(unreadable)?;
        }
        let kept = head.len() as u64;
        let rest = if kept > left {
            0
        } else {
            // One byte past what is left tells "at the budget" from "over it".
            io::copy(&mut (&mut part).take(left - kept + 1), &mut io::sink()).map_err(unreadable)?
        };
        let size = kept + rest;
        if size > left {
            return Err(vec![too_large(budget, &name)]);
        }
        total += size;
        if is_sst {
            shared_strings.push((name, head, size));
        }
    }

    for (name, head, size) in shared_strings {
        check_shared_strings(&name, &head, size, total)?;
    }
    Ok(())
}

fn part_name<R: Read>(part: &zip::read::ZipFile<'_, R>) -> String {
    part.name()
        .map_or_else(|_| "?".to_owned(), |n| n.into_owned())
}

fn too_large(budget: u64, part: &str) -> FileProblem {
    FileProblem::new(
        None,
        format!(
            "The workbook decompresses to more than {budget} bytes (at part '{part}'), the limit for .xlsx files: it may be a zip bomb. Split the data into several files, or remove images and unused sheets"
        ),
        format!("max_xlsx_decompressed_bytes={budget}"),
    )
}

/// The `<sst>` element's `uniqueCount` and `count` must fit the bytes there are: the strings
/// in the part itself, and the cells that use them in the whole workbook.
fn check_shared_strings(
    name: &str,
    head: &[u8],
    size: u64,
    total: u64,
) -> Result<(), Vec<FileProblem>> {
    let bad = |detail: String| {
        vec![not_workbook(format!(
            "shared strings part '{name}' {detail}"
        ))]
    };
    let mut xml = quick_xml::Reader::from_reader(head);
    let mut buf = Vec::new();
    let sst = loop {
        buf.clear();
        match xml.read_event_into(&mut buf) {
            Ok(Event::Start(e) | Event::Empty(e)) => {
                if e.local_name().as_ref() != "sst" {
                    return Err(bad("does not begin with its <sst> element".into()));
                }
                break e.into_owned();
            }
            Ok(Event::Eof) | Err(_) => {
                return Err(bad("does not begin with its <sst> element".into()));
            }
            // The declaration, comments, white space.
            Ok(_) => {}
        }
    };
    for attribute in sst.attributes().with_checks(false) {
        let Ok(attribute) = attribute else {
            return Err(bad("has a malformed <sst> element".into()));
        };
        let key = attribute.key.local_name();
        let (limit, claim) = match key.as_ref() {
            "uniqueCount" => (
                size / MIN_BYTES_PER_STRING,
                format!("strings, more than its {size} bytes can hold"),
            ),
            "count" => (
                total / MIN_BYTES_PER_STRING_USE,
                format!("uses of strings, more than the workbook's {total} bytes can hold"),
            ),
            _ => continue,
        };
        let value = attribute.value.trim();
        if value.parse::<u64>().ok().filter(|n| *n <= limit).is_none() {
            return Err(bad(format!(
                "claims {value} {claim}: the file is damaged or hostile"
            )));
        }
    }
    Ok(())
}
