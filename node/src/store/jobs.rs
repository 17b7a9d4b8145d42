//! The job log: admission writes a job and its charge in one transaction; its end is recorded once.

use super::*;

impl Store {
    /// Records how a job ended, with its audit event; `refund` names a grant
    /// whose charge for the job is given back in the same transaction.
    pub fn finish_job(
        &self,
        id: &str,
        role: Role,
        end: &JobEnd,
        event: AuditEvent,
        refund: Option<&str>,
    ) -> Result<(), NodeError> {
        self.write(|tx| {
            if let Some(grant_id) = refund {
                tx.execute(
                    "DELETE FROM charges WHERE job_id = ?1 AND grant_id = ?2",
                    params![id, grant_id],
                )?;
            }
            tx.execute(
                "UPDATE jobs SET outcome = ?3, local_set_size = COALESCE(?4, local_set_size),
                    peer_set_size = COALESCE(?5, peer_set_size), bytes_sent = ?6,
                    bytes_received = ?7, duration_ms = ?8, detail = ?9, result = ?10,
                    data_messages_sent = ?11, data_messages_received = ?12,
                    data_left = (?11 > 0)
                 WHERE id = ?1 AND role = ?2",
                params![
                    id,
                    role.as_str(),
                    end.outcome.as_str(),
                    end.local_set_size,
                    end.peer_set_size,
                    end.bytes_sent,
                    end.bytes_received,
                    end.duration.as_millis() as u64,
                    end.detail,
                    end.result,
                    end.data_messages_sent,
                    end.data_messages_received
                ],
            )?;
            tx.audit(event)
        })
    }

    /// Every job, oldest first.
    pub fn jobs(&self) -> Result<Vec<JobRecord>, NodeError> {
        query_jobs(&self.conn(), "ORDER BY started_at, rowid", []).map_err(|e| self.db(e))
    }

    /// Marks jobs left running by a previous process as interrupted; called
    /// when the node starts. Returns how many there were.
    pub fn mark_interrupted(&self) -> Result<usize, NodeError> {
        let jobs = self.jobs()?;
        let running: Vec<_> = jobs
            .iter()
            .filter(|j| j.outcome == Outcome::Running)
            .collect();
        self.write(|tx| {
            for job in &running {
                tx.execute(
                    "UPDATE jobs SET outcome = 'interrupted',
                        detail = 'the node stopped while the job ran'
                     WHERE id = ?1 AND role = ?2",
                    params![job.id, job.role.as_str()],
                )?;
                tx.audit(AuditEvent::JobFailed {
                    job_id: job.id.clone(),
                    role: job.role,
                    reason: "interrupted: the node stopped while the job ran".into(),
                    refunded: false,
                })?;
            }
            Ok::<_, NodeError>(())
        })?;
        Ok(running.len())
    }
}

impl Tx<'_> {
    /// Everything admission decides on, read in this transaction.
    pub fn admission_snapshot(&self, request: AdmissionRequest<'_>) -> Result<Snapshot, NodeError> {
        let role = request.role;
        let local_dataset = match role {
            Role::Requester => &request.manifest.requester_dataset,
            Role::Responder => &request.manifest.responder_dataset,
        };
        let grants = self
            .grants_for(&request.peer.fingerprint, local_dataset)?
            .into_iter()
            .map(|grant| {
                let usage = self.usage(&grant)?;
                Ok((grant, usage))
            })
            .collect::<Result<_, NodeError>>()?;
        let previous = match self.job(&request.manifest.job_id, role)? {
            Some(record) => Some(PreviousAttempt {
                charged_to: self.charged_to(&record.id)?,
                record,
            }),
            None => None,
        };
        Ok(Snapshot {
            role,
            peer: request.peer.clone(),
            manifest: request.manifest.clone(),
            requester_set_size: request.requester_set_size,
            dataset: self.dataset(local_dataset)?,
            grants,
            previous,
            node_max_peer_set_size: request.node_max_peer_set_size,
            now: self.now(),
            data: request.data,
        })
    }

    /// Writes what admission decided.
    pub fn apply(&self, records: &Records) -> Result<(), NodeError> {
        match &records.job {
            Some(JobWrite::Insert(job)) => self.insert_job(job)?,
            Some(JobWrite::Restart(job)) => self.restart_job(job)?,
            None => {}
        }
        if let Some((grant_id, charge)) = &records.charge {
            self.charge(&records.job_id, grant_id, charge)?;
        }
        for event in &records.audit {
            self.audit(event.clone())?;
        }
        Ok(())
    }

    /// The job with this id in this role, if any.
    pub fn job(&self, id: &str, role: Role) -> Result<Option<JobRecord>, NodeError> {
        Ok(query_jobs(
            &self.tx,
            "WHERE id = ?1 AND role = ?2",
            params![id, role.as_str()],
        )
        .map_err(|e| self.db(e))?
        .pop())
    }

    /// Records a job as it starts or is refused.
    pub(super) fn insert_job(&self, job: &JobRecord) -> Result<(), NodeError> {
        self.execute(
            "INSERT INTO jobs (id, role, peer, protocol, local_dataset, peer_dataset,
                local_set_size, peer_set_size, bytes_sent, bytes_received, started_at,
                duration_ms, outcome, detail, result, purpose, grant_id, attempts,
                peer_fingerprint, data_left)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,
                ?19, ?20)",
            params![
                job.id,
                job.role.as_str(),
                job.peer,
                job.protocol,
                job.local_dataset,
                job.peer_dataset,
                job.local_set_size,
                job.peer_set_size,
                job.bytes_sent,
                job.bytes_received,
                job.started_at,
                job.duration_ms,
                job.outcome.as_str(),
                job.detail,
                job.result,
                job.purpose,
                job.grant_id,
                job.attempts,
                job.peer_fingerprint,
                job.data_left
            ],
        )?;
        Ok(())
    }

    /// Starts another attempt of a job that failed before any data left.
    pub(super) fn restart_job(&self, job: &JobRecord) -> Result<(), NodeError> {
        self.execute(
            "UPDATE jobs SET outcome = ?3, attempts = attempts + 1, detail = ?4,
                started_at = ?5, duration_ms = ?6, grant_id = ?7, local_set_size = ?8,
                data_left = ?9
             WHERE id = ?1 AND role = ?2",
            params![
                job.id,
                job.role.as_str(),
                job.outcome.as_str(),
                job.detail,
                job.started_at,
                job.duration_ms,
                job.grant_id,
                job.local_set_size,
                job.data_left
            ],
        )?;
        Ok(())
    }
}

pub(super) fn query_jobs<P: rusqlite::Params>(
    conn: &Connection,
    clause: &str,
    p: P,
) -> rusqlite::Result<Vec<JobRecord>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT id, role, peer, protocol, local_dataset, peer_dataset, local_set_size,
            peer_set_size, bytes_sent, bytes_received, started_at, duration_ms, outcome,
            detail, result, purpose, grant_id, attempts, data_messages_sent,
            data_messages_received, peer_fingerprint, data_left
         FROM jobs {clause}"
    ))?;
    stmt.query_map(p, |r| {
        let role: String = r.get(1)?;
        let outcome: String = r.get(12)?;
        let bad = |i, text: &str| {
            rusqlite::Error::FromSqlConversionFailure(
                i,
                rusqlite::types::Type::Text,
                format!("unknown value {text:?}").into(),
            )
        };
        Ok(JobRecord {
            id: r.get(0)?,
            role: Role::parse(&role).ok_or_else(|| bad(1, &role))?,
            peer: r.get(2)?,
            protocol: r.get(3)?,
            local_dataset: r.get(4)?,
            peer_dataset: r.get(5)?,
            local_set_size: r.get(6)?,
            peer_set_size: r.get(7)?,
            bytes_sent: r.get(8)?,
            bytes_received: r.get(9)?,
            started_at: r.get(10)?,
            duration_ms: r.get(11)?,
            outcome: Outcome::parse(&outcome).ok_or_else(|| bad(12, &outcome))?,
            detail: r.get(13)?,
            result: r.get(14)?,
            purpose: r.get(15)?,
            grant_id: r.get(16)?,
            attempts: r.get(17)?,
            data_messages_sent: r.get(18)?,
            data_messages_received: r.get(19)?,
            peer_fingerprint: r.get(20)?,
            data_left: r.get(21)?,
        })
    })
    .and_then(|rows| rows.collect())
}

/// What admission asks the store to read.
#[derive(Debug, Clone)]
pub struct AdmissionRequest<'a> {
    /// Our side of the job.
    pub role: Role,
    /// The other node.
    pub peer: &'a Peer,
    /// The job.
    pub manifest: &'a JobManifest,
    /// The requester's signed set size (responder only).
    pub requester_set_size: Option<u64>,
    /// `limits.max_peer_set_size`.
    pub node_max_peer_set_size: u64,
    /// Whether the data was read.
    pub data: DataCheck,
}
