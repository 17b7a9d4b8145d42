//! The node's durable state in SQLite: peers, datasets and the job log.
//!
//! Schema changes are numbered migrations recorded in `PRAGMA user_version`,
//! applied in one transaction when the node opens its database.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use serde::{Deserialize, Serialize};

use crate::admission::{DataCheck, JobWrite, PreviousAttempt, Records, Snapshot};
use crate::audit::{self, AuditEntry, AuditError, AuditEvent};
use crate::clock::{Clock, rfc3339};
use crate::dataset::DatasetSummary;
use crate::error::NodeError;
use crate::grant::{Charge, Grant, Usage};
use crate::identity::{Fingerprint, Identity};
use crate::manifest::JobManifest;
use crate::policy::DataPolicy;

const MIGRATIONS: &[&str] = &[
    // 1: peers, datasets, jobs.
    "CREATE TABLE peers (
        name TEXT PRIMARY KEY,
        addr TEXT NOT NULL,
        fingerprint TEXT NOT NULL UNIQUE,
        added_at TEXT NOT NULL
    );
    CREATE TABLE datasets (
        name TEXT PRIMARY KEY,
        summary TEXT NOT NULL,
        registered_at TEXT NOT NULL
    );
    CREATE TABLE jobs (
        id TEXT NOT NULL,
        role TEXT NOT NULL,
        peer TEXT NOT NULL,
        protocol TEXT NOT NULL,
        local_dataset TEXT NOT NULL,
        peer_dataset TEXT NOT NULL,
        local_set_size INTEGER,
        peer_set_size INTEGER,
        bytes_sent INTEGER NOT NULL DEFAULT 0,
        bytes_received INTEGER NOT NULL DEFAULT 0,
        started_at TEXT NOT NULL,
        duration_ms INTEGER,
        outcome TEXT NOT NULL,
        detail TEXT,
        result TEXT,
        PRIMARY KEY (id, role)
    );",
    // 2: governance: dataset policies, grants, the charge ledger, the audit log.
    "ALTER TABLE datasets ADD COLUMN policy TEXT;
    ALTER TABLE jobs ADD COLUMN purpose TEXT;
    ALTER TABLE jobs ADD COLUMN grant_id TEXT;
    ALTER TABLE jobs ADD COLUMN attempts INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE jobs ADD COLUMN data_messages_sent INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE jobs ADD COLUMN data_messages_received INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE grants (
        id TEXT PRIMARY KEY,
        peer TEXT NOT NULL,
        dataset TEXT NOT NULL,
        body TEXT NOT NULL,
        revoked_at TEXT
    );
    CREATE INDEX grants_by_use ON grants (peer, dataset);
    CREATE TABLE charges (
        job_id TEXT NOT NULL,
        grant_id TEXT NOT NULL,
        rows INTEGER NOT NULL,
        epsilon_micros INTEGER NOT NULL,
        delta_nanos INTEGER NOT NULL DEFAULT 0,
        charged_unix INTEGER NOT NULL,
        PRIMARY KEY (job_id, grant_id)
    );
    CREATE TABLE audit (
        seq INTEGER PRIMARY KEY,
        time TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        event TEXT NOT NULL,
        hash TEXT NOT NULL,
        signature TEXT NOT NULL
    );",
    // 3: grants and job history belong to the peer's certificate, not its
    // name; a job records whether data may have left under its id.
    "ALTER TABLE grants ADD COLUMN peer_fingerprint TEXT NOT NULL DEFAULT '';
    UPDATE grants SET peer_fingerprint =
        COALESCE((SELECT fingerprint FROM peers WHERE peers.name = grants.peer), '');
    CREATE INDEX grants_by_certificate ON grants (peer_fingerprint, dataset);
    ALTER TABLE jobs ADD COLUMN peer_fingerprint TEXT NOT NULL DEFAULT '';
    UPDATE jobs SET peer_fingerprint =
        COALESCE((SELECT fingerprint FROM peers WHERE peers.name = jobs.peer), '');
    ALTER TABLE jobs ADD COLUMN data_left INTEGER NOT NULL DEFAULT 1;
    UPDATE jobs SET data_left = (data_messages_sent > 0)
        WHERE outcome IN ('refused', 'failed');",
];

/// A registered peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    /// The name this node knows the peer by.
    pub name: String,
    /// Where the peer's node listens (`host:port`).
    pub addr: String,
    /// The peer certificate's fingerprint, hex.
    pub fingerprint: String,
    /// When it was registered (RFC 3339, UTC).
    pub added_at: String,
}

/// A registered dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetRecord {
    /// The name jobs use.
    pub name: String,
    /// What registration found in the file.
    pub summary: DatasetSummary,
    /// The owner's declarations: grade, legal basis, k.
    pub policy: Option<DataPolicy>,
    /// When it was (last) registered.
    pub registered_at: String,
}

/// Which side of a job this node was on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// This node asked for the job.
    Requester,
    /// A peer asked this node.
    Responder,
}

/// How a job ended, or that it has not yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Still running.
    Running,
    /// Finished; the result was released to the requester.
    Completed,
    /// Refused at the acceptance boundary.
    Refused,
    /// Started and then failed.
    Failed,
    /// The node stopped while the job ran.
    Interrupted,
}

macro_rules! text_enum {
    ($ty:ty { $($variant:ident = $text:literal),* }) => {
        impl $ty {
            /// The stored text form.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),* }
            }
            fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some(Self::$variant),)* _ => None }
            }
        }
    };
}
text_enum!(Role { Requester = "requester", Responder = "responder" });
text_enum!(Outcome {
    Running = "running",
    Completed = "completed",
    Refused = "refused",
    Failed = "failed",
    Interrupted = "interrupted"
});

/// One job, on this node's side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    /// The job id (32 hex digits), the same on both nodes.
    pub id: String,
    /// Our side.
    pub role: Role,
    /// The other node.
    pub peer: String,
    /// The other node's certificate fingerprint: retries are matched on it.
    pub peer_fingerprint: String,
    /// Protocol and mode, e.g. `ecdh-psi/cardinality`.
    pub protocol: String,
    /// Our dataset.
    pub local_dataset: String,
    /// The peer's dataset, as named in the request.
    pub peer_dataset: String,
    /// Distinct ids we used.
    pub local_set_size: Option<u64>,
    /// Distinct ids the peer used.
    pub peer_set_size: Option<u64>,
    /// Bytes we sent on the job's stream.
    pub bytes_sent: u64,
    /// Bytes we received on it.
    pub bytes_received: u64,
    /// When the job started (RFC 3339, UTC).
    pub started_at: String,
    /// How long it ran.
    pub duration_ms: Option<u64>,
    /// How it ended.
    pub outcome: Outcome,
    /// Why it was refused or failed.
    pub detail: Option<String>,
    /// What was released to this node, if anything.
    pub result: Option<String>,
    /// The purpose the job stated.
    pub purpose: Option<String>,
    /// The grant it ran under on this node.
    pub grant_id: Option<String>,
    /// How many times it was started (retries reuse the id and the charge).
    pub attempts: u64,
    /// Protocol messages (blinded data) sent to the peer.
    pub data_messages_sent: u64,
    /// Protocol messages received from the peer.
    pub data_messages_received: u64,
    /// Whether a data-bearing message may have left this node under this
    /// id. Set when the job is admitted and cleared only on this node's own
    /// evidence at its end, so a node killed mid-job counts it as sent.
    pub data_left: bool,
}

/// How a running job ended, to be written to its record.
#[derive(Debug, Clone)]
pub struct JobEnd {
    /// The outcome.
    pub outcome: Outcome,
    /// Distinct ids we used.
    pub local_set_size: Option<u64>,
    /// Distinct ids the peer used.
    pub peer_set_size: Option<u64>,
    /// Bytes sent.
    pub bytes_sent: u64,
    /// Bytes received.
    pub bytes_received: u64,
    /// Protocol messages sent.
    pub data_messages_sent: u64,
    /// Protocol messages received.
    pub data_messages_received: u64,
    /// Run time.
    pub duration: Duration,
    /// Why it was refused or failed.
    pub detail: Option<String>,
    /// What was released to this node.
    pub result: Option<String>,
}

/// The node's database. Every change it makes is recorded in the audit log
/// in the same transaction, signed with the node's key.
pub struct Store {
    path: PathBuf,
    conn: Mutex<Connection>,
    identity: Arc<Identity>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({})", self.path.display())
    }
}

/// A write transaction. Everything done through it, audit entries included,
/// commits together or not at all.
pub struct Tx<'a> {
    tx: Transaction<'a>,
    store: &'a Store,
}

/// The database holds the ledger and the audit log; it and its directory
/// (with the key and the control socket) are for the node's user alone.
/// SQLite gives its journal files the database's mode. Looser modes, say
/// from a copy or an archive, are tightened with a warning rather than
/// refused: the fix is the same either way and the node keeps serving.
fn make_node_files_private(path: &Path) -> Result<(), NodeError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        tighten(dir, crate::fsutil::PRIVATE_DIR)?;
    }
    crate::fsutil::create_private_file(path, crate::fsutil::PRIVATE_FILE)
        .map_err(|e| NodeError::io(path, e))?;
    tighten(path, crate::fsutil::PRIVATE_FILE)
}

fn tighten(path: &Path, mode: u32) -> Result<(), NodeError> {
    if let Some(was) =
        crate::fsutil::make_private(path, mode).map_err(|e| NodeError::io(path, e))?
    {
        tracing::warn!(
            "{} was open to other users (mode {was:o}); made it {mode:o}",
            path.display()
        );
    }
    Ok(())
}

impl Store {
    /// Opens (creating if needed) the database and applies migrations.
    pub fn open(
        path: &Path,
        identity: Arc<Identity>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, NodeError> {
        let db = |source| NodeError::Database {
            path: path.to_path_buf(),
            source,
        };
        make_node_files_private(path)?;
        let mut conn = Connection::open(path).map_err(db)?;
        // WAL lets the CLI write (peer add, dataset add) while the node serves.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(db)?;
        conn.busy_timeout(Duration::from_secs(10)).map_err(db)?;
        let version: u32 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(db)?;
        if version as usize > MIGRATIONS.len() {
            return Err(NodeError::Config {
                path: path.to_path_buf(),
                message: format!(
                    "database schema version {version} is newer than this unseen binary knows ({}); upgrade unseen",
                    MIGRATIONS.len()
                ),
            });
        }
        if (version as usize) < MIGRATIONS.len() {
            let tx = conn.transaction().map_err(db)?;
            for migration in &MIGRATIONS[version as usize..] {
                tx.execute_batch(migration).map_err(db)?;
            }
            tx.pragma_update(None, "user_version", MIGRATIONS.len() as u32)
                .map_err(db)?;
            tx.commit().map_err(db)?;
        }
        Ok(Self {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
            identity,
            clock,
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent:
        // every write is its own transaction.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn db(&self, source: rusqlite::Error) -> NodeError {
        NodeError::Database {
            path: self.path.clone(),
            source,
        }
    }

    /// The current time, from the store's clock.
    pub fn now(&self) -> time::OffsetDateTime {
        self.clock.now()
    }

    /// Runs `f` in one immediate (write-locking) transaction and commits if
    /// it returns `Ok`. The node uses this to decide and charge atomically.
    pub fn write<T, E: From<NodeError>>(
        &self,
        f: impl FnOnce(&Tx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| E::from(self.db(e)))?;
        let tx = Tx { tx, store: self };
        let value = f(&tx)?;
        tx.tx.commit().map_err(|e| E::from(self.db(e)))?;
        Ok(value)
    }

    /// Records an event on its own.
    pub fn audit(&self, event: AuditEvent) -> Result<(), NodeError> {
        self.write(|tx| tx.audit(event))
    }

    /// Registers a peer.
    pub fn add_peer(
        &self,
        name: &str,
        addr: &str,
        fingerprint: Fingerprint,
    ) -> Result<Peer, NodeError> {
        let peer = Peer {
            name: name.to_string(),
            addr: addr.to_string(),
            fingerprint: fingerprint.to_string(),
            added_at: rfc3339(self.now()),
        };
        self.write(|tx| {
            if tx.peer(name)?.is_some() {
                return Err(NodeError::Duplicate {
                    kind: "peer",
                    name: name.into(),
                    hint: "remove it first with `unseen peer remove NAME`",
                });
            }
            if let Some(other) = tx.peer_by_fingerprint(fingerprint)? {
                return Err(NodeError::Duplicate {
                    kind: "fingerprint",
                    name: format!("{fingerprint} (peer {})", other.name),
                    hint: "one certificate names one peer",
                });
            }
            tx.execute(
                "INSERT INTO peers (name, addr, fingerprint, added_at) VALUES (?1, ?2, ?3, ?4)",
                params![peer.name, peer.addr, peer.fingerprint, peer.added_at],
            )?;
            tx.audit(AuditEvent::PeerAdded {
                name: peer.name.clone(),
                addr: peer.addr.clone(),
                fingerprint: peer.fingerprint.clone(),
            })
        })?;
        Ok(peer)
    }

    /// Removes a peer; its connections are refused from then on.
    pub fn remove_peer(&self, name: &str) -> Result<(), NodeError> {
        self.write(|tx| {
            if tx.execute("DELETE FROM peers WHERE name = ?1", params![name])? == 0 {
                return Err(not_found_peer(name));
            }
            tx.audit(AuditEvent::PeerRemoved { name: name.into() })
        })
    }

    /// All registered peers, by name.
    pub fn peers(&self) -> Result<Vec<Peer>, NodeError> {
        query_peers(&self.conn(), "ORDER BY name", []).map_err(|e| self.db(e))
    }

    /// The peer registered under `name`.
    pub fn peer(&self, name: &str) -> Result<Option<Peer>, NodeError> {
        Ok(query_peers(&self.conn(), "WHERE name = ?1", [name])
            .map_err(|e| self.db(e))?
            .pop())
    }

    /// The peer whose certificate has this fingerprint.
    pub fn peer_by_fingerprint(&self, fingerprint: Fingerprint) -> Result<Option<Peer>, NodeError> {
        Ok(query_peers(
            &self.conn(),
            "WHERE fingerprint = ?1",
            [fingerprint.to_string()],
        )
        .map_err(|e| self.db(e))?
        .pop())
    }

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

    /// Runs raw SQL; only tests use it, to tamper with the log.
    #[doc(hidden)]
    pub fn execute_raw(&self, sql: &str) -> Result<(), NodeError> {
        self.conn().execute_batch(sql).map_err(|e| self.db(e))
    }
}

impl Tx<'_> {
    fn db(&self, e: rusqlite::Error) -> NodeError {
        self.store.db(e)
    }

    fn execute<P: rusqlite::Params>(&self, sql: &str, p: P) -> Result<usize, NodeError> {
        self.tx.execute(sql, p).map_err(|e| self.db(e))
    }

    /// Appends a signed audit entry.
    pub fn audit(&self, event: AuditEvent) -> Result<(), NodeError> {
        let last: Option<(u64, String)> = self
            .tx
            .query_row(
                "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| self.db(e))?;
        let entry = audit::seal(&self.store.identity, last, rfc3339(self.store.now()), event);
        self.execute(
            "INSERT INTO audit (seq, time, prev_hash, event, hash, signature) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                entry.seq,
                entry.time,
                entry.prev_hash,
                serde_json::to_string(&entry.event).unwrap_or_default(),
                entry.hash,
                entry.signature
            ],
        )?;
        Ok(())
    }

    /// The current time.
    pub fn now(&self) -> time::OffsetDateTime {
        self.store.now()
    }

    /// The peer registered under `name`.
    pub fn peer(&self, name: &str) -> Result<Option<Peer>, NodeError> {
        Ok(query_peers(&self.tx, "WHERE name = ?1", [name])
            .map_err(|e| self.db(e))?
            .pop())
    }

    fn peer_by_fingerprint(&self, fingerprint: Fingerprint) -> Result<Option<Peer>, NodeError> {
        Ok(query_peers(
            &self.tx,
            "WHERE fingerprint = ?1",
            [fingerprint.to_string()],
        )
        .map_err(|e| self.db(e))?
        .pop())
    }

    /// The dataset registered under `name`.
    pub fn dataset(&self, name: &str) -> Result<Option<DatasetRecord>, NodeError> {
        Ok(query_datasets(&self.tx, &self.store.path, "WHERE name = ?1", [name])?.pop())
    }

    fn grants_where<P: rusqlite::Params>(
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
    fn grants_for(&self, fingerprint: &str, dataset: &str) -> Result<Vec<Grant>, NodeError> {
        self.grants_where(
            "WHERE peer_fingerprint = ?1 AND dataset = ?2 ORDER BY rowid DESC",
            params![fingerprint, dataset],
        )
    }

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
    fn charged_to(&self, job_id: &str) -> Result<Option<String>, NodeError> {
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
    fn charge(&self, job_id: &str, grant_id: &str, charge: &Charge) -> Result<(), NodeError> {
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
    fn insert_job(&self, job: &JobRecord) -> Result<(), NodeError> {
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
    fn restart_job(&self, job: &JobRecord) -> Result<(), NodeError> {
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

fn query_peers<P: rusqlite::Params>(
    conn: &Connection,
    clause: &str,
    p: P,
) -> rusqlite::Result<Vec<Peer>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT name, addr, fingerprint, added_at FROM peers {clause}"
    ))?;
    stmt.query_map(p, |r| {
        Ok(Peer {
            name: r.get(0)?,
            addr: r.get(1)?,
            fingerprint: r.get(2)?,
            added_at: r.get(3)?,
        })
    })
    .and_then(|rows| rows.collect())
}

fn query_datasets<P: rusqlite::Params>(
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

fn query_jobs<P: rusqlite::Params>(
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

fn not_found_peer(name: &str) -> NodeError {
    NodeError::NotFound {
        kind: "peer",
        name: name.to_string(),
        hint: "list peers with `unseen peer list`",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;
    use crate::config::NodePaths;
    use crate::grant::{GrantedProtocol, Quota};
    use crate::policy::Grade;
    use proptest::prelude::*;
    use time::macros::datetime;

    struct Fixture {
        dir: tempfile::TempDir,
        identity: Arc<Identity>,
        clock: Arc<FixedClock>,
    }

    impl Fixture {
        fn new() -> Self {
            let dir = tempfile::tempdir().expect("tempdir");
            let identity =
                Arc::new(Identity::create("node", &NodePaths::new(dir.path())).expect("identity"));
            Self {
                dir,
                identity,
                clock: Arc::new(FixedClock::new(datetime!(2026-06-01 0:00 UTC))),
            }
        }

        fn open(&self) -> Store {
            Store::open(
                &self.dir.path().join("node.db"),
                self.identity.clone(),
                self.clock.clone(),
            )
            .expect("open")
        }

        fn verify(&self, store: &Store) -> Result<audit::Verified, AuditError> {
            audit::verify(
                store.audit_entries().expect("entries"),
                self.identity.cert(),
                None,
            )
        }
    }

    fn job(id: &str, role: Role) -> JobRecord {
        JobRecord {
            id: id.into(),
            role,
            peer: "bob".into(),
            protocol: "ecdh-psi/membership".into(),
            local_dataset: "mine".into(),
            peer_dataset: "theirs".into(),
            local_set_size: Some(3),
            peer_set_size: None,
            bytes_sent: 0,
            bytes_received: 0,
            started_at: "2026-06-01T00:00:00Z".into(),
            duration_ms: None,
            outcome: Outcome::Running,
            detail: None,
            result: None,
            purpose: Some("testing".into()),
            grant_id: None,
            attempts: 1,
            data_messages_sent: 0,
            data_messages_received: 0,
            peer_fingerprint: "01".repeat(32),
            data_left: true,
        }
    }

    fn summary(name: &str) -> DatasetSummary {
        DatasetSummary {
            path: format!("/data/{name}.csv").into(),
            id_column: "id".into(),
            columns: vec!["id".into()],
            row_count: 100,
            empty_id_rows: 0,
            distinct_ids: 100,
            sha256: "00".repeat(32),
        }
    }

    fn policy() -> DataPolicy {
        DataPolicy {
            grade: Grade::General,
            personal: false,
            legal_basis: None,
            min_group_size: 10,
        }
    }

    fn grant(id: &str, peer: &str, dataset: &str) -> Grant {
        Grant {
            id: id.into(),
            peer: peer.into(),
            dataset: dataset.into(),
            protocols: vec![GrantedProtocol::PsiCa],
            purpose: "testing".into(),
            created_at: "2026-06-01T00:00:00Z".into(),
            expires_at: "2027-06-01T00:00:00Z".into(),
            revoked_at: None,
            quota: Quota {
                max_jobs: Some(10),
                period_secs: 86_400,
                ..Quota::default()
            },
        }
    }

    #[test]
    fn peers_are_unique_by_name_and_fingerprint() {
        let f = Fixture::new();
        let store = f.open();
        let fp = Fingerprint([1; 32]);
        store.add_peer("bob", "127.0.0.1:1", fp).expect("add");
        assert!(matches!(
            store.add_peer("bob", "127.0.0.1:2", Fingerprint([2; 32])),
            Err(NodeError::Duplicate { kind: "peer", .. })
        ));
        assert!(matches!(
            store.add_peer("carol", "127.0.0.1:2", fp),
            Err(NodeError::Duplicate {
                kind: "fingerprint",
                ..
            })
        ));
        assert_eq!(
            store
                .peer_by_fingerprint(fp)
                .expect("q")
                .expect("found")
                .name,
            "bob"
        );
        store.remove_peer("bob").expect("remove");
        assert!(store.peer_by_fingerprint(fp).expect("q").is_none());
        assert!(matches!(
            store.remove_peer("bob"),
            Err(NodeError::NotFound { .. })
        ));
        // Two changes, two audit entries; refused changes leave none.
        assert_eq!(f.verify(&store).expect("verifies").entries, 2);
    }

    #[test]
    fn jobs_survive_reopening_and_running_ones_become_interrupted() {
        let f = Fixture::new();
        {
            let store = f.open();
            store
                .write(|tx| {
                    tx.insert_job(&job("a", Role::Requester))?;
                    tx.insert_job(&job("b", Role::Requester))
                })
                .expect("insert");
            let end = JobEnd {
                outcome: Outcome::Completed,
                local_set_size: None,
                peer_set_size: Some(7),
                bytes_sent: 10,
                bytes_received: 20,
                data_messages_sent: 1,
                data_messages_received: 2,
                duration: Duration::from_millis(5),
                detail: None,
                result: Some("size 2".into()),
            };
            let event = AuditEvent::JobFailed {
                job_id: "b".into(),
                role: Role::Requester,
                reason: "test".into(),
                refunded: false,
            };
            store
                .finish_job("b", Role::Requester, &end, event, None)
                .expect("finish");
            assert!(
                store
                    .write(|tx| tx.insert_job(&job("b", Role::Requester)))
                    .is_err(),
                "replayed id"
            );
        }
        let store = f.open();
        assert_eq!(store.mark_interrupted().expect("mark"), 1);
        let jobs = store.jobs().expect("jobs");
        assert_eq!(jobs.len(), 2);
        assert_eq!(jobs[0].outcome, Outcome::Interrupted);
        assert_eq!(jobs[1].outcome, Outcome::Completed);
        assert_eq!(jobs[1].local_set_size, Some(3));
        assert_eq!(jobs[1].peer_set_size, Some(7));
        f.verify(&store).expect("verifies");
    }

    #[test]
    fn quota_usage_is_the_same_after_a_restart_and_a_job_is_charged_once() {
        let f = Fixture::new();
        let g = grant("g-1", "bob", "customers");
        let charge = Charge {
            rows: 40,
            epsilon_micros: 250_000,
            delta_nanos: 1,
        };
        let before = {
            let store = f.open();
            store
                .add_peer("bob", "127.0.0.1:1", Fingerprint([1; 32]))
                .expect("peer");
            store
                .put_dataset("customers", &summary("customers"), &policy())
                .expect("dataset");
            store.add_grant(&g).expect("grant");
            store
                .write(|tx| {
                    tx.charge("job-1", &g.id, &charge)?;
                    tx.charge("job-2", &g.id, &charge)
                })
                .expect("charge");
            // A retry of job-1 finds its charge and is not charged again; a
            // second insert of the same charge is refused by the ledger.
            assert_eq!(
                store.write(|tx| tx.charged_to("job-1")).expect("q"),
                Some(g.id.clone())
            );
            assert!(
                store
                    .write(|tx| tx.charge("job-1", &g.id, &charge))
                    .is_err()
            );
            store.write(|tx| tx.usage(&g)).expect("usage")
        };
        assert_eq!(before.rows, 80);
        assert_eq!(before.epsilon_micros, 500_000);
        assert_eq!(before.delta_nanos, 2);
        assert_eq!(before.jobs_in_period, 2);
        let after = f.open().write(|tx| tx.usage(&g)).expect("usage");
        assert_eq!(after, before);
        // A day later the jobs leave the period; the totals stay.
        f.clock
            .advance(time::Duration::days(1) + time::Duration::seconds(1));
        let later = f.open().write(|tx| tx.usage(&g)).expect("usage");
        assert_eq!(later.jobs_in_period, 0);
        assert_eq!(later.jobs_total, 2);
        assert_eq!(later.rows, 80);
    }

    /// A store with some history.
    fn history(f: &Fixture) -> Store {
        let store = f.open();
        store
            .add_peer("bob", "127.0.0.1:1", Fingerprint([1; 32]))
            .expect("peer");
        store
            .put_dataset("customers", &summary("customers"), &policy())
            .expect("dataset");
        store
            .add_grant(&grant("g-1", "bob", "customers"))
            .expect("grant");
        store.revoke_grant("g-1").expect("revoke");
        store.remove_peer("bob").expect("remove");
        store
    }

    #[test]
    fn an_edited_entry_is_detected() {
        let f = Fixture::new();
        let store = history(&f);
        f.verify(&store).expect("untouched log verifies");
        store
            .execute_raw("UPDATE audit SET event = replace(event, '127.0.0.1:1', '10.9.9.9:1') WHERE seq = 1")
            .expect("tamper");
        assert_eq!(f.verify(&store), Err(AuditError::Edited { seq: 1 }));
    }

    #[test]
    fn a_removed_entry_is_detected() {
        let f = Fixture::new();
        let store = history(&f);
        store
            .execute_raw("DELETE FROM audit WHERE seq = 3")
            .expect("tamper");
        assert_eq!(
            f.verify(&store),
            Err(AuditError::Sequence {
                expected: 3,
                found: 4
            })
        );
    }

    #[test]
    fn reordered_entries_are_detected() {
        let f = Fixture::new();
        let store = history(&f);
        store.execute_raw(&swap(2, 3)).expect("tamper");
        assert!(matches!(
            f.verify(&store),
            Err(AuditError::BrokenLink { seq: 2 })
        ));
    }

    #[test]
    fn an_entry_appended_out_of_band_is_detected() {
        let f = Fixture::new();
        let store = history(&f);
        // The forger chains the entry correctly but signs it with another key.
        let other = Fixture::new();
        let entries = store.audit_entries().expect("entries");
        let last = entries.last().expect("some").clone().expect("readable");
        let forged = audit::seal(
            &other.identity,
            Some((last.seq, last.hash)),
            "2026-06-02T00:00:00Z".into(),
            AuditEvent::GrantRevoked {
                grant_id: "g-9".into(),
            },
        );
        store
            .execute_raw(&format!(
                "INSERT INTO audit (seq, time, prev_hash, event, hash, signature) VALUES ({}, '{}', '{}', '{}', '{}', '{}')",
                forged.seq,
                forged.time,
                forged.prev_hash,
                serde_json::to_string(&forged.event).expect("json"),
                forged.hash,
                forged.signature
            ))
            .expect("append");
        assert!(matches!(
            f.verify(&store),
            Err(AuditError::Unsigned { seq: 6, .. })
        ));
    }

    #[test]
    fn truncation_is_detected_against_a_recorded_head() {
        let f = Fixture::new();
        let store = history(&f);
        let head = f.verify(&store).expect("verifies").head;
        store
            .execute_raw("DELETE FROM audit WHERE seq = 5")
            .expect("truncate");
        let entries = store.audit_entries().expect("entries");
        assert!(matches!(
            audit::verify(entries, f.identity.cert(), Some(&head)),
            Err(AuditError::Truncated { last: 4, .. })
        ));
    }

    fn swap(a: u64, b: u64) -> String {
        format!(
            "UPDATE audit SET seq = -1 WHERE seq = {a};
             UPDATE audit SET seq = {a} WHERE seq = {b};
             UPDATE audit SET seq = {b} WHERE seq = -1;"
        )
    }

    #[derive(Debug, Clone)]
    enum Op {
        AddPeer(u8),
        RemovePeer(u8),
        Dataset(u8),
        Grant(u8, u8),
        Revoke(u8),
        Started,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u8..4).prop_map(Op::AddPeer),
            (0u8..4).prop_map(Op::RemovePeer),
            (0u8..3).prop_map(Op::Dataset),
            (0u8..4, 0u8..3).prop_map(|(p, d)| Op::Grant(p, d)),
            (0u8..6).prop_map(Op::Revoke),
            Just(Op::Started),
        ]
    }

    #[derive(Debug, Clone, Copy)]
    enum Tamper {
        EditEvent,
        EditTime,
        Delete,
        SwapWithNext,
        DuplicateLast,
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn the_chain_verifies_after_any_operations_and_fails_after_any_tampering(
            ops in proptest::collection::vec(op(), 1..25),
            tamper in prop_oneof![
                Just(Tamper::EditEvent),
                Just(Tamper::EditTime),
                Just(Tamper::Delete),
                Just(Tamper::SwapWithNext),
                Just(Tamper::DuplicateLast),
            ],
            pick in any::<prop::sample::Index>(),
        ) {
            let f = Fixture::new();
            let store = f.open();
            let mut grants = 0u8;
            for op in ops {
                // Refused operations (duplicates, unknown names) are part of
                // the sequence too: they must leave the log valid.
                let _ = match op {
                    Op::AddPeer(p) => store.add_peer(&format!("p{p}"), "127.0.0.1:1", Fingerprint([p; 32])).map(drop),
                    Op::RemovePeer(p) => store.remove_peer(&format!("p{p}")),
                    Op::Dataset(d) => store.put_dataset(&format!("d{d}"), &summary("d"), &policy()).map(drop),
                    Op::Grant(p, d) => {
                        grants += 1;
                        store.add_grant(&grant(&format!("g{grants}"), &format!("p{p}"), &format!("d{d}")))
                    }
                    Op::Revoke(g) => store.revoke_grant(&format!("g{g}")),
                    Op::Started => store.audit(AuditEvent::NodeStarted { name: "n".into(), fingerprint: "f".into() }),
                };
            }
            store.audit(AuditEvent::NodeStarted { name: "n".into(), fingerprint: "f".into() }).expect("audit");
            let verified = f.verify(&store).expect("an untampered log verifies");
            let n = verified.entries;
            let seq = pick.index(n as usize) as u64 + 1;
            let sql = match tamper {
                // Replace the event with another well-formed one.
                Tamper::EditEvent => format!(
                    "UPDATE audit SET event = '{{\"event\":\"grant_revoked\",\"grant_id\":\"g-forged\"}}' WHERE seq = {seq}"
                ),
                Tamper::EditTime => format!("UPDATE audit SET time = '1999-01-01T00:00:00Z' WHERE seq = {seq}"),
                Tamper::Delete if seq < n => format!("DELETE FROM audit WHERE seq = {seq}"),
                // Deleting the last entry is truncation: see the head test.
                Tamper::Delete => format!("UPDATE audit SET hash = '{}' WHERE seq = {seq}", "0".repeat(64)),
                Tamper::SwapWithNext if seq < n => swap(seq, seq + 1),
                Tamper::SwapWithNext | Tamper::DuplicateLast => format!(
                    "INSERT INTO audit (seq, time, prev_hash, event, hash, signature)
                     SELECT seq + 1, time, hash, event, hash, signature FROM audit WHERE seq = {n}"
                ),
            };
            store.execute_raw(&sql).expect("tamper");
            prop_assert!(f.verify(&store).is_err(), "tampering with {tamper:?} at {seq} of {n} went unnoticed");
        }
    }
}
