//! Datasets: CSV files registered with the node. The file stays where it is.
//!
//! **Id normalisation.** An id is the value in the id column with surrounding
//! white space trimmed, then put in Unicode NFC form, so the same id typed
//! with a precomposed or a combining accent matches. Ids are deduplicated:
//! a customer listed twice counts once, so duplicates never change an answer.
//! Rows whose id is empty after trimming are counted and left out.
//!
//! The file is read once into memory; its SHA-256 is computed over exactly the
//! bytes that are parsed, so the hash checked at job time describes the data
//! the job uses.
//!
//! **Bounds.** A file from outside is checked as a hostile one would be: an id
//! is at most [`MAX_ID_BYTES`], any other field at most [`MAX_FIELD_BYTES`],
//! the header at most [`MAX_COLUMNS`] columns and [`MAX_HEADER_BYTES`] bytes,
//! and a quoted field left open at the end of the file is refused rather than
//! read as one long last field. Every check is linear in the file's size.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use unicode_normalization::UnicodeNormalization;
use unseen_protocol::IdSet;

/// The longest id accepted, in bytes after trimming. Real keys (customer
/// numbers, phone numbers, e-mail addresses, hashes of them) are far shorter;
/// hash a longer composite key before registering it.
pub const MAX_ID_BYTES: usize = 1024;
/// The longest field of any other column, in bytes.
pub const MAX_FIELD_BYTES: usize = 64 * 1024;
/// The most columns a header may have.
pub const MAX_COLUMNS: usize = 4096;
/// The longest header line, in bytes.
pub const MAX_HEADER_BYTES: usize = 256 * 1024;

/// What registration records about a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetSummary {
    /// The file, as an absolute path.
    pub path: PathBuf,
    /// The column holding the ids.
    pub id_column: String,
    /// The header's column names, in file order.
    pub columns: Vec<String>,
    /// Data rows, not counting the header.
    pub row_count: u64,
    /// Rows whose id is empty after normalisation.
    pub empty_id_rows: u64,
    /// Distinct non-empty ids.
    pub distinct_ids: u64,
    /// SHA-256 of the file's bytes, lowercase hex.
    pub sha256: String,
}

/// Why a dataset could not be read or written. Each message names the file,
/// the line where there is one, and the fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DatasetError {
    /// The file does not exist.
    #[error("{}: no such file; check the path", path.display())]
    NotFound {
        /// The file.
        path: PathBuf,
    },
    /// The path names a directory.
    #[error("{}: is a directory; give the CSV file inside it", path.display())]
    IsDirectory {
        /// The path.
        path: PathBuf,
    },
    /// The path names something other than a regular file (a pipe, a device).
    #[error("{}: not a regular file; copy the data into a CSV file and give that", path.display())]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// The file could not be read.
    #[error("{}: cannot read the file: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file has no header line.
    #[error("{}: the file is empty; a CSV file needs a header line naming its columns", path.display())]
    NoHeader {
        /// The file.
        path: PathBuf,
    },
    /// A field is not valid UTF-8.
    #[error("{}: line {line}, column {column}: not valid UTF-8; re-save the file as UTF-8", path.display())]
    BadUtf8 {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: u64,
        /// 1-based column.
        column: usize,
    },
    /// The id column is not in the header.
    #[error(
        "{}: no column named {column:?}; the header has {}; pass one of them with --id-column",
        path.display(), quoted(available)
    )]
    MissingColumn {
        /// The file.
        path: PathBuf,
        /// The column asked for.
        column: String,
        /// The header's columns.
        available: Vec<String>,
    },
    /// Two columns share a name.
    #[error("{}: line 1: column {column:?} appears twice in the header; rename one", path.display())]
    DuplicateColumn {
        /// The file.
        path: PathBuf,
        /// The repeated name.
        column: String,
    },
    /// A row has the wrong number of fields.
    #[error(
        "{}: line {line}: {found} fields where the header has {expected}; fix the row (quote fields that contain commas)",
        path.display()
    )]
    MalformedRow {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: u64,
        /// Fields in the header.
        expected: u64,
        /// Fields in the row.
        found: u64,
    },
    /// A quoted field is never closed: the parser would read the rest of the
    /// file as one field.
    #[error(
        "{}: line {line}: a quoted field opens here and is never closed; add the closing quote (write a quote inside a quoted field as two quotes)",
        path.display()
    )]
    UnclosedQuote {
        /// The file.
        path: PathBuf,
        /// 1-based line where the unclosed record starts.
        line: u64,
    },
    /// A field is longer than its bound.
    #[error(
        "{}: line {line}, column {column}: a field of {bytes} bytes, over the limit of {limit} for {what}; {fix}",
        path.display()
    )]
    FieldTooLong {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: u64,
        /// 1-based column.
        column: usize,
        /// Its length.
        bytes: usize,
        /// The bound.
        limit: usize,
        /// Which bound.
        what: &'static str,
        /// What to do.
        fix: &'static str,
    },
    /// The header is too wide or too long.
    #[error(
        "{}: line 1: the header has {columns} columns in {bytes} bytes, over the limit of {MAX_COLUMNS} columns and {MAX_HEADER_BYTES} bytes; keep only the columns jobs need",
        path.display()
    )]
    HeaderTooLarge {
        /// The file.
        path: PathBuf,
        /// Its columns.
        columns: usize,
        /// Its bytes.
        bytes: usize,
    },
    /// Another CSV syntax error.
    #[error("{}: line {line}: {message}; fix the CSV syntax there", path.display())]
    Csv {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: u64,
        /// The parser's message.
        message: String,
    },
    /// The file changed since it was registered.
    #[error(
        "{}: the file changed since it was registered (sha256 {registered}, now {current}); check the change, then register it again with `unseen dataset add NAME FILE --id-column COL`",
        path.display()
    )]
    Changed {
        /// The file.
        path: PathBuf,
        /// The hash at registration.
        registered: String,
        /// The hash now.
        current: String,
    },
    /// The output file could not be written.
    #[error("{}: cannot write the output: {source}; check the directory exists and is writable", path.display())]
    Output {
        /// The output path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Normalises a raw id: trims white space and applies Unicode NFC. Returns
/// `None` for an id that is empty after trimming.
pub fn normalize_id(raw: &str) -> Option<String> {
    let trimmed = raw.trim();
    (!trimmed.is_empty()).then(|| trimmed.nfc().collect())
}

/// A parsed file: header, rows, and the normalised id of each row.
struct Parsed {
    summary: DatasetSummary,
    header: csv::StringRecord,
    rows: Vec<csv::StringRecord>,
    /// For each row, the line it starts on.
    lines: Vec<u64>,
    /// For each row, its id's position in `ids`, or `None` if empty.
    row_ids: Vec<Option<usize>>,
    ids: IdSet,
}

fn read(path: &Path) -> Result<(PathBuf, Vec<u8>), DatasetError> {
    let io = |source: std::io::Error| {
        if source.kind() == std::io::ErrorKind::NotFound {
            DatasetError::NotFound {
                path: path.to_path_buf(),
            }
        } else {
            DatasetError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    };
    let absolute = std::fs::canonicalize(path).map_err(io)?;
    let kind = std::fs::metadata(&absolute).map_err(io)?.file_type();
    if kind.is_dir() {
        return Err(DatasetError::IsDirectory { path: absolute });
    }
    // Reading a pipe or a device could block or never end.
    if !kind.is_file() {
        return Err(DatasetError::NotAFile { path: absolute });
    }
    let bytes = std::fs::read(&absolute).map_err(io)?;
    Ok((absolute, bytes))
}

/// Converts a row to text, refusing invalid UTF-8 and over-long fields; the
/// id column (`id_index`) has the tighter bound.
fn to_string_record(
    record: &csv::ByteRecord,
    path: &Path,
    line: u64,
    id_index: Option<usize>,
) -> Result<csv::StringRecord, DatasetError> {
    let mut fields = csv::StringRecord::with_capacity(record.as_slice().len(), record.len());
    for (i, field) in record.iter().enumerate() {
        let (limit, what, fix) = if Some(i) == id_index {
            (
                MAX_ID_BYTES,
                "an id",
                "ids are keys, not documents: hash a long key before registering it",
            )
        } else {
            (
                MAX_FIELD_BYTES,
                "a field",
                "move large values out of the file jobs read",
            )
        };
        // The id bound applies after trimming, as ids are compared.
        let measured = if Some(i) == id_index {
            field.trim_ascii().len()
        } else {
            field.len()
        };
        if measured > limit {
            return Err(DatasetError::FieldTooLong {
                path: path.to_path_buf(),
                line,
                column: i + 1,
                bytes: measured,
                limit,
                what,
                fix,
            });
        }
        let text = std::str::from_utf8(field).map_err(|_| DatasetError::BadUtf8 {
            path: path.to_path_buf(),
            line,
            column: i + 1,
        })?;
        fields.push_field(text);
    }
    Ok(fields)
}

fn csv_error(e: csv::Error, path: &Path) -> DatasetError {
    let line = e.position().map_or(0, csv::Position::line);
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => DatasetError::MalformedRow {
            path: path.to_path_buf(),
            line,
            expected: *expected_len,
            found: *len,
        },
        _ => DatasetError::Csv {
            path: path.to_path_buf(),
            line,
            message: e.to_string(),
        },
    }
}

/// Parses the file's bytes; `sha256` is their hash, computed by the caller
/// over the whole file as stored (a BOM included).
fn parse(
    path: &Path,
    bytes: &[u8],
    id_column: &str,
    sha256: String,
) -> Result<Parsed, DatasetError> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(bytes);
    let header = reader
        .byte_headers()
        .map_err(|e| csv_error(e, path))?
        .clone();
    if header.is_empty() {
        return Err(DatasetError::NoHeader {
            path: path.to_path_buf(),
        });
    }
    if header.len() > MAX_COLUMNS || header.as_slice().len() > MAX_HEADER_BYTES {
        return Err(DatasetError::HeaderTooLarge {
            path: path.to_path_buf(),
            columns: header.len(),
            bytes: header.as_slice().len(),
        });
    }
    let header = to_string_record(&header, path, 1, None)?;
    let columns: Vec<String> = header.iter().map(|c| c.trim().to_string()).collect();
    let mut seen = HashSet::with_capacity(columns.len());
    for column in &columns {
        if !seen.insert(column.as_str()) {
            return Err(DatasetError::DuplicateColumn {
                path: path.to_path_buf(),
                column: column.clone(),
            });
        }
    }
    let id_index = columns
        .iter()
        .position(|c| c == id_column.trim())
        .ok_or_else(|| DatasetError::MissingColumn {
            path: path.to_path_buf(),
            column: id_column.to_string(),
            available: columns.clone(),
        })?;

    let mut rows = Vec::new();
    let mut lines = Vec::new();
    let mut row_ids = Vec::new();
    let mut first_seen: HashMap<String, usize> = HashMap::new();
    let mut ordered_ids: Vec<String> = Vec::new();
    let mut empty_id_rows = 0;
    let mut record = csv::ByteRecord::new();
    let mut last_record_start = None;
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(unclosed_quote(&e, bytes, path).unwrap_or(csv_error(e, path))),
        }
        let position = record.position().cloned();
        last_record_start = position.as_ref().map(|p| (p.byte(), p.line()));
        let line = position.as_ref().map_or(0, csv::Position::line);
        let row = to_string_record(&record, path, line, Some(id_index))?;
        let id = row.get(id_index).and_then(normalize_id);
        let position = match id {
            None => {
                empty_id_rows += 1;
                None
            }
            Some(id) => Some(*first_seen.entry(id).or_insert_with_key(|id| {
                ordered_ids.push(id.clone());
                ordered_ids.len() - 1
            })),
        };
        rows.push(row);
        lines.push(line);
        row_ids.push(position);
    }
    // The header is a record too: a file of one unclosed header line is
    // as broken as one with an unclosed last row.
    let (start, line) = last_record_start.unwrap_or((0, 1));
    if ends_inside_quotes(tail_from(bytes, start)) {
        return Err(DatasetError::UnclosedQuote {
            path: path.to_path_buf(),
            line,
        });
    }
    let ids: IdSet = ordered_ids.iter().collect();
    Ok(Parsed {
        summary: DatasetSummary {
            path: path.to_path_buf(),
            id_column: columns[id_index].clone(),
            columns,
            row_count: rows.len() as u64,
            empty_id_rows,
            distinct_ids: ids.len() as u64,
            sha256,
        },
        header,
        rows,
        lines,
        row_ids,
        ids,
    })
}

fn tail_from(bytes: &[u8], start: u64) -> &[u8] {
    usize::try_from(start)
        .ok()
        .and_then(|start| bytes.get(start..))
        .unwrap_or(bytes)
}

/// A row with too few fields may be an open quote that swallowed the rest of
/// the file: say that, as it is the fix.
fn unclosed_quote(e: &csv::Error, bytes: &[u8], path: &Path) -> Option<DatasetError> {
    let csv::ErrorKind::UnequalLengths { pos: Some(pos), .. } = e.kind() else {
        return None;
    };
    ends_inside_quotes(tail_from(bytes, pos.byte())).then(|| DatasetError::UnclosedQuote {
        path: path.to_path_buf(),
        line: pos.line(),
    })
}

/// Whether the CSV text `tail`, which starts at a record's first byte, ends
/// inside a quoted field. The csv crate ends such a field silently at the end
/// of input, so ask it: after `\n"\n` a file that ended cleanly has one more
/// record (a field holding a line break), while an open quote is closed by
/// that `"` and adds none.
fn ends_inside_quotes(tail: &[u8]) -> bool {
    let mut probe = Vec::with_capacity(tail.len() + 3);
    probe.extend_from_slice(tail);
    probe.extend_from_slice(b"\n\"\n");
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(probe.as_slice());
    let mut record = csv::ByteRecord::new();
    let mut records = 0;
    while let Ok(true) = reader.read_byte_record(&mut record) {
        records += 1;
    }
    records < 2
}

/// Reads and validates a CSV file for registration.
pub fn scan(path: &Path, id_column: &str) -> Result<DatasetSummary, DatasetError> {
    let (absolute, bytes) = read(path)?;
    let sha256 = hex::encode(Sha256::digest(&bytes));
    Ok(parse(&absolute, &bytes, id_column, sha256)?.summary)
}

/// A dataset loaded for a job, after checking it still hashes as registered.
pub struct LoadedDataset {
    parsed: Parsed,
}

impl LoadedDataset {
    /// Loads the file, refusing it if its bytes no longer hash to
    /// `expected_sha256`.
    pub fn load(path: &Path, id_column: &str, expected_sha256: &str) -> Result<Self, DatasetError> {
        let (absolute, bytes) = read(path)?;
        let current = hex::encode(Sha256::digest(&bytes));
        if current != expected_sha256 {
            return Err(DatasetError::Changed {
                path: absolute,
                registered: expected_sha256.to_string(),
                current,
            });
        }
        Ok(Self {
            parsed: parse(&absolute, &bytes, id_column, current)?,
        })
    }

    /// The distinct normalised ids, in first-seen order.
    pub fn ids(&self) -> &IdSet {
        &self.parsed.ids
    }

    /// What the file holds.
    pub fn summary(&self) -> &DatasetSummary {
        &self.parsed.summary
    }

    /// The position of a column (names as the header has them, trimmed).
    pub fn column(&self, name: &str) -> Option<usize> {
        self.parsed
            .summary
            .columns
            .iter()
            .position(|c| c == name.trim())
    }

    /// Every row with the line it starts on, in file order.
    pub fn rows(&self) -> impl Iterator<Item = (u64, &csv::StringRecord)> {
        self.parsed.lines.iter().copied().zip(&self.parsed.rows)
    }

    /// Writes the header and every row whose id is at one of `members`
    /// (positions in [`Self::ids`]), in file order, atomically. Returns the
    /// number of rows written.
    pub fn write_rows(&self, members: &[usize], out: &Path) -> Result<u64, DatasetError> {
        let mut wanted = vec![false; self.parsed.ids.len()];
        for &m in members {
            if let Some(slot) = wanted.get_mut(m) {
                *slot = true;
            }
        }
        let output = |source| DatasetError::Output {
            path: out.to_path_buf(),
            source,
        };
        let mut writer = csv::Writer::from_writer(Vec::new());
        writer
            .write_record(&self.parsed.header)
            .map_err(|e| output(e.into()))?;
        let mut written = 0;
        for (row, id) in self.parsed.rows.iter().zip(&self.parsed.row_ids) {
            if id.is_some_and(|i| wanted[i]) {
                writer.write_record(row).map_err(|e| output(e.into()))?;
                written += 1;
            }
        }
        let bytes = writer.into_inner().map_err(|e| output(e.into_error()))?;
        crate::fsutil::write_atomically(out, &bytes).map_err(output)?;
        Ok(written)
    }
}

impl std::fmt::Debug for LoadedDataset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "LoadedDataset {{ path: {}, rows: {}, ids: {} }}",
            self.parsed.summary.path.display(),
            self.parsed.rows.len(),
            self.parsed.ids.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).expect("write");
        path
    }

    fn message(e: DatasetError) -> String {
        e.to_string()
    }

    #[test]
    fn scan_reports_rows_empty_ids_distinct_ids_and_hash() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bytes = b"id,v\na,1\n b ,2\na,3\n,4\n   ,5\nc,6\n";
        let path = file(&dir, "d.csv", bytes);
        let summary = scan(&path, "id").expect("scan");
        assert_eq!(summary.row_count, 6);
        assert_eq!(summary.empty_id_rows, 2);
        assert_eq!(summary.distinct_ids, 3);
        assert_eq!(summary.columns, vec!["id", "v"]);
        assert_eq!(summary.sha256, hex::encode(Sha256::digest(bytes)));
        assert!(summary.path.is_absolute());
    }

    #[test]
    fn ids_are_trimmed_put_in_nfc_and_deduplicated() {
        assert_eq!(normalize_id("  Zoe\u{301} "), Some("Zo\u{e9}".to_string()));
        assert_eq!(normalize_id(" \t "), None);
        let dir = tempfile::tempdir().expect("tempdir");
        let path = file(
            &dir,
            "d.csv",
            "id\nZoe\u{301}\nZo\u{e9}\n Zo\u{e9}\n".as_bytes(),
        );
        let summary = scan(&path, "id").expect("scan");
        let loaded = LoadedDataset::load(&path, "id", &summary.sha256).expect("load");
        assert_eq!(loaded.ids().len(), 1);
        assert_eq!(loaded.ids().get(0), Some("Zo\u{e9}".as_bytes()));
    }

    #[test]
    fn a_byte_order_mark_is_tolerated() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = file(&dir, "d.csv", b"\xef\xbb\xbfid,v\nx,1\n");
        assert_eq!(scan(&path, "id").expect("scan").distinct_ids, 1);
    }

    #[test]
    fn a_missing_file_names_the_path() {
        let err = scan(Path::new("/no/such/file.csv"), "id").expect_err("missing");
        assert!(matches!(err, DatasetError::NotFound { .. }));
        let text = message(err);
        assert!(
            text.contains("/no/such/file.csv") && text.contains("check the path"),
            "{text}"
        );
    }

    #[test]
    fn an_empty_file_has_no_header() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = scan(&file(&dir, "empty.csv", b""), "id").expect_err("empty");
        assert!(matches!(err, DatasetError::NoHeader { .. }));
        assert!(message(err).contains("empty.csv"));
    }

    #[test]
    fn bad_utf8_names_line_column_and_fix() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = file(&dir, "latin1.csv", b"id,name\na,ok\nb,Z\xe9\n");
        let err = scan(&path, "id").expect_err("bad utf-8");
        assert!(
            matches!(
                err,
                DatasetError::BadUtf8 {
                    line: 3,
                    column: 2,
                    ..
                }
            ),
            "{err:?}"
        );
        let text = message(err);
        assert!(
            text.contains("latin1.csv") && text.contains("line 3") && text.contains("UTF-8"),
            "{text}"
        );
    }

    #[test]
    fn a_missing_column_lists_the_ones_there() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = file(&dir, "d.csv", b"customer,phone\na,1\n");
        let err = scan(&path, "id").expect_err("no such column");
        let text = message(err);
        assert!(
            text.contains("\"customer\", \"phone\"") && text.contains("--id-column"),
            "{text}"
        );
    }

    #[test]
    fn a_duplicate_header_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = scan(&file(&dir, "d.csv", b"id,x,id\n1,2,3\n"), "id").expect_err("dup");
        assert!(matches!(err, DatasetError::DuplicateColumn { .. }));
        assert!(message(err).contains("rename one"));
    }

    #[test]
    fn a_malformed_row_names_its_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = file(&dir, "d.csv", b"id,v\na,1\nb,2,extra\n");
        let err = scan(&path, "id").expect_err("malformed");
        assert!(
            matches!(
                err,
                DatasetError::MalformedRow {
                    line: 3,
                    expected: 2,
                    found: 3,
                    ..
                }
            ),
            "{err:?}"
        );
        let text = message(err);
        assert!(
            text.contains("line 3") && text.contains("quote fields"),
            "{text}"
        );
    }

    #[test]
    fn an_unclosed_quote_in_the_last_field_is_refused_with_its_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Read leniently, the last three lines would become part of row 3.
        let text = b"id,note\na,fine\nb,\"open\nc,x\nd,y\ne,z\n";
        let err = scan(&file(&dir, "open.csv", text), "id").expect_err("unclosed");
        assert!(
            matches!(err, DatasetError::UnclosedQuote { line: 3, .. }),
            "{err:?}"
        );
        let text = message(err);
        assert!(
            text.contains("open.csv") && text.contains("line 3") && text.contains("closing quote"),
            "{text}"
        );
        // Without a final newline, in the header, and in the id column.
        for (bytes, line) in [
            (&b"id,note\na,\"open"[..], 2),
            (&b"id,\"note\na,b\n"[..], 1),
            (&b"id,v\n\"a,1\nb,2\n"[..], 2),
        ] {
            let err = scan(&file(&dir, "d.csv", bytes), "id").expect_err("unclosed");
            assert!(
                matches!(err, DatasetError::UnclosedQuote { line: l, .. } if l == line),
                "{:?}: {err:?}",
                String::from_utf8_lossy(bytes)
            );
        }
    }

    #[test]
    fn closed_quotes_at_the_end_of_a_file_are_accepted() {
        let dir = tempfile::tempdir().expect("tempdir");
        for bytes in [
            &b"id,note\na,\"closed\""[..],
            b"id,note\na,\"closed\"\n",
            b"id,note\na,\"two\nlines, \"\"quoted\"\"\"\r\n\n\n",
            b"id,note\na,\"\"",
            b"id,note\na,x\"y\n",
            b"id\n",
            b"id",
        ] {
            let summary = scan(&file(&dir, "d.csv", bytes), "id");
            assert!(
                summary.is_ok(),
                "{:?}: {summary:?}",
                String::from_utf8_lossy(bytes)
            );
        }
    }

    #[test]
    fn an_id_over_the_bound_is_refused_with_line_and_column() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut text = b"v,id\n1,a\n2,".to_vec();
        text.extend(std::iter::repeat_n(b'x', MAX_ID_BYTES + 1));
        text.extend_from_slice(b"\n3,c\n");
        let err = scan(&file(&dir, "long.csv", &text), "id").expect_err("long id");
        assert!(
            matches!(
                err,
                DatasetError::FieldTooLong {
                    line: 3,
                    column: 2,
                    limit: MAX_ID_BYTES,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(message(err).contains("hash a long key"));
        // Exactly at the bound, with white space around it, is fine.
        let mut text = b"id\n  ".to_vec();
        text.extend(std::iter::repeat_n(b'x', MAX_ID_BYTES));
        text.extend_from_slice(b"  \n");
        assert_eq!(
            scan(&file(&dir, "edge.csv", &text), "id")
                .expect("at the bound")
                .distinct_ids,
            1
        );
        // A 10 MB field elsewhere is refused too.
        let mut text = b"id,blob\na,".to_vec();
        text.extend(std::iter::repeat_n(b'x', 10_000_000));
        let err = scan(&file(&dir, "blob.csv", &text), "id").expect_err("long field");
        assert!(
            matches!(
                err,
                DatasetError::FieldTooLong {
                    line: 2,
                    column: 2,
                    limit: MAX_FIELD_BYTES,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn a_header_of_a_million_columns_is_refused_at_once() {
        // Checked against every earlier name, a million columns took
        // quadratic time (hours); the bound and a hash set make it linear.
        let dir = tempfile::tempdir().expect("tempdir");
        let header: Vec<String> = (0..1_000_000).map(|i| format!("c{i}")).collect();
        let text = format!("{}\n", header.join(","));
        let err = scan(&file(&dir, "wide.csv", text.as_bytes()), "c0").expect_err("wide");
        assert!(
            matches!(
                err,
                DatasetError::HeaderTooLarge {
                    columns: 1_000_000,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(message(err).contains("keep only the columns"));
        // The widest header allowed, its duplicate in the last column.
        let mut header: Vec<String> = (0..MAX_COLUMNS - 1).map(|i| format!("c{i}")).collect();
        header.push("c0".into());
        let text = format!("{}\n", header.join(","));
        let err = scan(&file(&dir, "dup.csv", text.as_bytes()), "c1").expect_err("dup");
        assert!(matches!(err, DatasetError::DuplicateColumn { column, .. } if column == "c0"));
    }

    #[test]
    fn a_directory_or_a_pipe_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = scan(dir.path(), "id").expect_err("a directory");
        assert!(matches!(err, DatasetError::IsDirectory { .. }), "{err:?}");
        let text = message(err);
        assert!(
            text.contains("is a directory; give the CSV file inside it"),
            "{text}"
        );
        assert_eq!(text.matches("directory").count(), 1, "said once: {text}");
        let err = scan(Path::new("/dev/null"), "id").expect_err("a device");
        assert!(matches!(err, DatasetError::NotAFile { .. }), "{err:?}");
    }

    #[test]
    fn a_changed_file_is_refused_until_registered_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = file(&dir, "d.csv", b"id\na\n");
        let summary = scan(&path, "id").expect("scan");
        std::fs::write(&path, b"id\na\nb\n").expect("change");
        let err = LoadedDataset::load(&path, "id", &summary.sha256).expect_err("changed");
        assert!(matches!(err, DatasetError::Changed { .. }));
        assert!(message(err).contains("unseen dataset add"));
        let again = scan(&path, "id").expect("register again");
        LoadedDataset::load(&path, "id", &again.sha256).expect("loads after re-registration");
    }

    #[test]
    fn matching_rows_are_written_whole_in_file_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = "id,note\nb,\"has, comma\"\na,plain\nb,\"two\nlines\"\nc,x\n";
        let path = file(&dir, "d.csv", text.as_bytes());
        let summary = scan(&path, "id").expect("scan");
        let loaded = LoadedDataset::load(&path, "id", &summary.sha256).expect("load");
        let b = (0..loaded.ids().len())
            .find(|&i| loaded.ids().get(i) == Some(b"b".as_slice()))
            .expect("b");
        let out = dir.path().join("out.csv");
        assert_eq!(loaded.write_rows(&[b], &out).expect("write"), 2);
        let mut reader = csv::Reader::from_path(&out).expect("read back");
        let rows: Vec<Vec<String>> = reader
            .records()
            .map(|r| r.expect("row").iter().map(String::from).collect())
            .collect();
        assert_eq!(
            rows,
            vec![
                vec!["b".to_string(), "has, comma".to_string()],
                vec!["b".to_string(), "two\nlines".to_string()],
            ]
        );
        let leftovers = std::fs::read_dir(dir.path()).expect("dir").count();
        assert_eq!(leftovers, 2, "no temporary file is left behind");
    }

    #[test]
    fn debug_does_not_print_ids() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = file(&dir, "d.csv", b"id\nsecret-customer\n");
        let summary = scan(&path, "id").expect("scan");
        let loaded = LoadedDataset::load(&path, "id", &summary.sha256).expect("load");
        assert!(!format!("{loaded:?}").contains("secret"));
    }
}
