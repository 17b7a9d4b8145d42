//! Registered datasets: what registration found in each file, and its owner's policy.

use super::*;

impl Store {
    /// Registers a dataset, or registers it again after its file changed.
    pub fn put_dataset(
        &self,
        name: &str,
        summary: &DatasetSummary,
        policy: &DataPolicy,
    ) -> Result<DatasetRecord, NodeError> {
        let record = DatasetRecord {
            name: name.to_string(),
            summary: summary.clone(),
            policy: Some(policy.clone()),
            registered_at: rfc3339(self.now()),
        };
        self.write(|tx| {
            tx.execute(
                "INSERT INTO datasets (name, summary, registered_at, policy) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(name) DO UPDATE SET summary = excluded.summary,
                     registered_at = excluded.registered_at, policy = excluded.policy",
                params![
                    record.name,
                    serde_json::to_string(summary).unwrap_or_default(),
                    record.registered_at,
                    serde_json::to_string(policy).unwrap_or_default()
                ],
            )?;
            tx.audit(AuditEvent::DatasetRegistered {
                name: name.into(),
                sha256: summary.sha256.clone(),
                rows: summary.row_count,
                distinct_ids: summary.distinct_ids,
                policy: policy.clone(),
            })
        })?;
        Ok(record)
    }

    /// The dataset registered under `name`.
    pub fn dataset(&self, name: &str) -> Result<Option<DatasetRecord>, NodeError> {
        Ok(query_datasets(&self.conn(), &self.path, "WHERE name = ?1", [name])?.pop())
    }

    /// All registered datasets, by name.
    pub fn datasets(&self) -> Result<Vec<DatasetRecord>, NodeError> {
        query_datasets(&self.conn(), &self.path, "ORDER BY name", [])
    }
}

impl Tx<'_> {
    /// The dataset registered under `name`.
    pub fn dataset(&self, name: &str) -> Result<Option<DatasetRecord>, NodeError> {
        Ok(query_datasets(&self.tx, &self.store.path, "WHERE name = ?1", [name])?.pop())
    }
}

pub(super) fn query_datasets<P: rusqlite::Params>(
    conn: &Connection,
    path: &Path,
    clause: &str,
    p: P,
) -> Result<Vec<DatasetRecord>, NodeError> {
    let db = |source| NodeError::Database {
        path: path.to_path_buf(),
        source,
    };
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT name, summary, registered_at, policy FROM datasets {clause}"
        ))
        .map_err(db)?;
    let rows: Vec<(String, String, String, Option<String>)> = stmt
        .query_map(p, |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .and_then(|rows| rows.collect())
        .map_err(db)?;
    rows.into_iter()
        .map(|(name, summary, registered_at, policy)| {
            let unreadable = |e: serde_json::Error| NodeError::Config {
                path: path.to_path_buf(),
                message: format!(
                    "dataset {name:?} has an unreadable record ({e}); register it again with `unseen dataset add`"
                ),
            };
            Ok(DatasetRecord {
                summary: serde_json::from_str(&summary).map_err(unreadable)?,
                policy: policy
                    .map(|p| serde_json::from_str(&p))
                    .transpose()
                    .map_err(unreadable)?,
                name,
                registered_at,
            })
        })
        .collect()
}
