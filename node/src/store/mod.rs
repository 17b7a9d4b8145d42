//! The node's durable state in SQLite, one file per table family: peers
//! (`peers.rs`), datasets (`datasets.rs`), grants and the charge ledger
//! (`grants.rs`), the job log and admission's reads and writes (`jobs.rs`),
//! and the audit log (`audit_log.rs`, written through [`Tx::audit`] here).
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

mod audit_log;
mod datasets;
mod grants;
mod jobs;
mod peers;
mod records;

pub use jobs::AdmissionRequest;
pub use records::{DatasetRecord, JobEnd, JobRecord, Outcome, Peer, Role};

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
}

#[cfg(test)]
mod tests;
