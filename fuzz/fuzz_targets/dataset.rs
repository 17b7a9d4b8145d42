//! The CSV dataset reader, on a file as the operator registers it:
//! `unseen_node::dataset::scan`, then `LoadedDataset::load` at job time.
//!
//! Input: the file's bytes; the id column is `id`. A file that registers must
//! load with the same summary, its hash must be the SHA-256 of the bytes, its
//! ids distinct and normalised, and the rows a job writes out must register
//! again with the same ids. A file that does not register must get an error
//! naming it.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};
use unseen_fuzz::scratch_dir;
use unseen_node::dataset::{LoadedDataset, normalize_id, scan};

const ID_COLUMN: &str = "id";

fuzz_target!(|data: &[u8]| {
    let path = scratch_dir().join("input.csv");
    std::fs::write(&path, data).expect("the scratch directory is writable");
    let summary = match scan(&path, ID_COLUMN) {
        Ok(summary) => summary,
        Err(e) => {
            let message = e.to_string();
            assert!(message.contains("input.csv"), "{message}");
            return;
        }
    };
    assert_eq!(summary.sha256, hex::encode(Sha256::digest(data)));
    assert_eq!(summary.id_column, ID_COLUMN);
    assert!(summary.columns.iter().any(|c| c == ID_COLUMN));
    let with_ids = summary.row_count - summary.empty_id_rows;
    assert!(summary.distinct_ids <= with_ids);
    assert_eq!(summary.distinct_ids == 0, with_ids == 0);

    let loaded = LoadedDataset::load(&path, ID_COLUMN, &summary.sha256)
        .expect("a file that registered loads with its own hash");
    assert_eq!(loaded.summary(), &summary);
    let ids = loaded.ids();
    assert_eq!(ids.len() as u64, summary.distinct_ids);
    let mut seen = HashSet::new();
    for id in ids.iter() {
        let id = std::str::from_utf8(id).expect("ids are UTF-8");
        assert_eq!(
            normalize_id(id).as_deref(),
            Some(id),
            "an id is not normalised"
        );
        assert!(seen.insert(id), "an id appears twice");
    }

    // A membership job writes the rows of every matching id; with all ids
    // matching, that is every row with an id, which must register again.
    let out = scratch_dir().join("output.csv");
    let all: Vec<usize> = (0..ids.len()).collect();
    let written = loaded
        .write_rows(&all, &out)
        .expect("the output is writable");
    assert_eq!(written, with_ids);
    let again = scan(&out, ID_COLUMN)
        .unwrap_or_else(|e| panic!("the rows a job wrote do not register again: {e}"));
    assert_eq!(
        again.columns, summary.columns,
        "the written header reads differently"
    );
    assert_eq!(again.row_count, with_ids);
    assert_eq!(again.empty_id_rows, 0);
    assert_eq!(again.distinct_ids, summary.distinct_ids);
    let reloaded = LoadedDataset::load(&out, ID_COLUMN, &again.sha256).expect("reload");
    assert!(
        reloaded.ids().iter().eq(ids.iter()),
        "the written ids differ"
    );
});
