//! Grants and the charge ledger they are metered by.

use super::peers::not_found_peer;
use super::*;

impl Store {
    /// Adds a grant.
    pub fn add_grant(&self, grant: &Grant) -> Result<(), NodeError> {
        self.write(|tx| {
            if tx.dataset(&grant.dataset)?.is_none() {
                return Err(NodeError::NotFound {
                    kind: "dataset",
                    name: grant.dataset.clone(),
                    hint: "register it first with `unseen dataset add`",
                });
            }
            // The grant belongs to the certificate registered under the name
            // now: a new key registered later under the same name gets none.
            let Some(peer) = tx.peer(&grant.peer)? else {
                return Err(not_found_peer(&grant.peer));
            };
            tx.execute(
                "INSERT INTO grants (id, peer, dataset, body, revoked_at, peer_fingerprint)
                 VALUES (?1, ?2, ?3, ?4, NULL, ?5)",
                params![
                    grant.id,
                    grant.peer,
                    grant.dataset,
                    serde_json::to_string(grant).unwrap_or_default(),
                    peer.fingerprint
                ],
            )?;
            tx.audit(AuditEvent::GrantAdded {
                grant: grant.clone(),
            })
        })
    }

    /// The newest grant to the node with certificate `fingerprint` on
    /// `dataset` that is live and covers `protocol` for `purpose`, if any.
    pub fn live_grant(
        &self,
        fingerprint: &str,
        dataset: &str,
        protocol: crate::grant::GrantedProtocol,
        purpose: &str,
    ) -> Result<Option<Grant>, NodeError> {
        let now = self.now();
        self.write(|tx| {
            Ok(tx
                .grants_for(fingerprint, dataset)?
                .into_iter()
                .find(|g| g.check_live(now).is_ok() && g.check_scope(protocol, purpose).is_ok()))
        })
    }

    /// Revokes a grant: every job not yet admitted is refused from now on.
    pub fn revoke_grant(&self, id: &str) -> Result<(), NodeError> {
        let now = rfc3339(self.now());
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE grants SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
                params![id, now],
            )?;
            if n == 0 {
                return Err(NodeError::NotFound {
                    kind: "live grant",
                    name: id.into(),
                    hint: "list grants with `unseen grant list`",
                });
            }
            tx.audit(AuditEvent::GrantRevoked {
                grant_id: id.into(),
            })
        })
    }

    /// Every grant, with what it has used.
    pub fn grants(&self) -> Result<Vec<(Grant, Usage)>, NodeError> {
        self.write(|tx| {
            let grants = tx.grants_where("ORDER BY rowid", [])?;
            grants
                .into_iter()
                .map(|g| {
                    let usage = tx.usage(&g)?;
                    Ok((g, usage))
                })
                .collect()
        })
    }
}

impl Tx<'_> {
    pub(super) fn grants_where<P: rusqlite::Params>(
        &self,
        clause: &str,
        p: P,
    ) -> Result<Vec<Grant>, NodeError> {
        let mut stmt = self
            .tx
            .prepare(&format!("SELECT body, revoked_at FROM grants {clause}"))
            .map_err(|e| self.db(e))?;
        let rows: Vec<(String, Option<String>)> = stmt
            .query_map(p, |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.db(e))?;
        rows.into_iter()
            .map(|(body, revoked_at)| {
                let mut grant: Grant =
                    serde_json::from_str(&body).map_err(|e| NodeError::Config {
                        path: self.store.path.clone(),
                        message: format!("unreadable grant record ({e})"),
                    })?;
                grant.revoked_at = revoked_at;
                Ok(grant)
            })
            .collect()
    }

    /// The grants naming this peer certificate and dataset, newest first.
    pub(super) fn grants_for(
        &self,
        fingerprint: &str,
        dataset: &str,
    ) -> Result<Vec<Grant>, NodeError> {
        self.grants_where(
            "WHERE peer_fingerprint = ?1 AND dataset = ?2 ORDER BY rowid DESC",
            params![fingerprint, dataset],
        )
    }

    /// What a grant has used, with the period counted back from now.
    pub fn usage(&self, grant: &Grant) -> Result<Usage, NodeError> {
        let since = self.store.now().unix_timestamp() - grant.quota.period_secs as i64;
        self.tx
            .query_row(
                "SELECT COUNT(*), COALESCE(SUM(charged_unix > ?2), 0), COALESCE(SUM(rows), 0),
                        COALESCE(SUM(epsilon_micros), 0), COALESCE(SUM(delta_nanos), 0)
                 FROM charges WHERE grant_id = ?1",
                params![grant.id, since],
                |r| {
                    Ok(Usage {
                        jobs_total: r.get(0)?,
                        jobs_in_period: r.get(1)?,
                        rows: r.get(2)?,
                        epsilon_micros: r.get(3)?,
                        delta_nanos: r.get(4)?,
                    })
                },
            )
            .map_err(|e| self.db(e))
    }

    /// The grant a job's charge stands against, if any.
    pub(super) fn charged_to(&self, job_id: &str) -> Result<Option<String>, NodeError> {
        self.tx
            .query_row(
                "SELECT grant_id FROM charges WHERE job_id = ?1",
                params![job_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.db(e))
    }

    /// Charges a job to a grant.
    pub(super) fn charge(
        &self,
        job_id: &str,
        grant_id: &str,
        charge: &Charge,
    ) -> Result<(), NodeError> {
        self.execute(
            "INSERT INTO charges (job_id, grant_id, rows, epsilon_micros, delta_nanos, charged_unix)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                job_id,
                grant_id,
                charge.rows,
                charge.epsilon_micros,
                charge.delta_nanos,
                self.store.now().unix_timestamp()
            ],
        )?;
        Ok(())
    }
}
