//! The parsing floor of the file-sync benchmark (bench/file_sync): read every record of a CSV
//! file with the csv crate and nothing else. Usage: `csv_floor FILE.csv`.

use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: csv_floor FILE.csv")?;
    let started = Instant::now();
    let mut reader = csv::Reader::from_path(&path)?;
    let mut record = csv::ByteRecord::new();
    let (mut rows, mut bytes) = (0u64, 0u64);
    while reader.read_byte_record(&mut record)? {
        rows += 1;
        bytes += record.as_slice().len() as u64;
    }
    println!(
        "{rows} rows, {bytes} bytes of fields in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
