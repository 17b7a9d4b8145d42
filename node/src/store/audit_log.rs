//! Reading the audit log back.

use super::*;

impl Store {
    /// The audit log, in order; unreadable rows come back as errors so that
    /// verification reports them.
    pub fn audit_entries(&self) -> Result<Vec<Result<AuditEntry, AuditError>>, NodeError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT seq, time, prev_hash, event, hash, signature FROM audit ORDER BY seq")
            .map_err(|e| self.db(e))?;
        let rows: Vec<(u64, String, String, String, String, String)> = stmt
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })
            .and_then(|rows| rows.collect())
            .map_err(|e| self.db(e))?;
        Ok(rows
            .into_iter()
            .map(|(seq, time, prev_hash, event, hash, signature)| {
                let event = serde_json::from_str(&event).map_err(|e| AuditError::Unreadable {
                    seq,
                    reason: e.to_string(),
                })?;
                Ok(AuditEntry {
                    seq,
                    time,
                    prev_hash,
                    event,
                    hash,
                    signature,
                })
            })
            .collect())
    }
}
