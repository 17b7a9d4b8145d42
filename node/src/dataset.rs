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

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use unicode_normalization::UnicodeNormalization;
use unseen_protocol::IdSet;

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
    let bytes = std::fs::read(&absolute).map_err(io)?;
    Ok((absolute, bytes))
}

fn to_string_record(
    record: &csv::ByteRecord,
    path: &Path,
    line: u64,
) -> Result<csv::StringRecord, DatasetError> {
    let mut fields = csv::StringRecord::with_capacity(record.as_slice().len(), record.len());
    for (i, field) in record.iter().enumerate() {
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
    let header = to_string_record(&header, path, 1)?;
    let columns: Vec<String> = header.iter().map(|c| c.trim().to_string()).collect();
    for (i, column) in columns.iter().enumerate() {
        if columns[..i].contains(column) {
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
    let mut row_ids = Vec::new();
    let mut first_seen: HashMap<String, usize> = HashMap::new();
    let mut ordered_ids: Vec<String> = Vec::new();
    let mut empty_id_rows = 0;
    let mut record = csv::ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(csv_error(e, path)),
        }
        let line = record.position().map_or(0, csv::Position::line);
        let row = to_string_record(&record, path, line)?;
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
        row_ids.push(position);
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
        row_ids,
        ids,
    })
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
