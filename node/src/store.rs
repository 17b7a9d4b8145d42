//! The node's durable state in SQLite: peers, datasets and the job log.
//!
//! Schema changes are numbered migrations recorded in `PRAGMA user_version`,
//! applied in one transaction when the node opens its database.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::dataset::DatasetSummary;
use crate::error::NodeError;
use crate::identity::Fingerprint;

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
    /// Run time.
    pub duration: Duration,
    /// Why it was refused or failed.
    pub detail: Option<String>,
    /// What was released to this node.
    pub result: Option<String>,
}

/// The node's database.
pub struct Store {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({})", self.path.display())
    }
}

/// The current time in RFC 3339 form, UTC.
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

impl Store {
    /// Opens (creating if needed) the database and applies migrations.
    pub fn open(path: &Path) -> Result<Self, NodeError> {
        let db = |source| NodeError::Database {
            path: path.to_path_buf(),
            source,
        };
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
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent:
        // every write is its own statement or transaction.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn db(&self, source: rusqlite::Error) -> NodeError {
        NodeError::Database {
            path: self.path.clone(),
            source,
        }
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
            added_at: now_rfc3339(),
        };
        if self.peer(name)?.is_some() {
            return Err(NodeError::Duplicate {
                kind: "peer",
                name: name.into(),
                hint: "remove it first with `unseen peer remove NAME`",
            });
        }
        if let Some(other) = self.peer_by_fingerprint(fingerprint)? {
            return Err(NodeError::Duplicate {
                kind: "fingerprint",
                name: format!("{fingerprint} (peer {})", other.name),
                hint: "one certificate names one peer",
            });
        }
        self.conn()
            .execute(
                "INSERT INTO peers (name, addr, fingerprint, added_at) VALUES (?1, ?2, ?3, ?4)",
                params![peer.name, peer.addr, peer.fingerprint, peer.added_at],
            )
            .map_err(|e| self.db(e))?;
        Ok(peer)
    }

    /// Removes a peer; its connections are refused from then on.
    pub fn remove_peer(&self, name: &str) -> Result<(), NodeError> {
        let n = self
            .conn()
            .execute("DELETE FROM peers WHERE name = ?1", params![name])
            .map_err(|e| self.db(e))?;
        if n == 0 {
            return Err(not_found_peer(name));
        }
        Ok(())
    }

    /// All registered peers, by name.
    pub fn peers(&self) -> Result<Vec<Peer>, NodeError> {
        self.query_peers(
            "SELECT name, addr, fingerprint, added_at FROM peers ORDER BY name",
            [],
        )
    }

    /// The peer registered under `name`.
    pub fn peer(&self, name: &str) -> Result<Option<Peer>, NodeError> {
        Ok(self
            .query_peers(
                "SELECT name, addr, fingerprint, added_at FROM peers WHERE name = ?1",
                [name],
            )?
            .pop())
    }

    /// The peer whose certificate has this fingerprint.
    pub fn peer_by_fingerprint(&self, fingerprint: Fingerprint) -> Result<Option<Peer>, NodeError> {
        Ok(self
            .query_peers(
                "SELECT name, addr, fingerprint, added_at FROM peers WHERE fingerprint = ?1",
                [fingerprint.to_string()],
            )?
            .pop())
    }

    fn query_peers<P: rusqlite::Params>(&self, sql: &str, p: P) -> Result<Vec<Peer>, NodeError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(sql).map_err(|e| self.db(e))?;
        stmt.query_map(p, |r| {
            Ok(Peer {
                name: r.get(0)?,
                addr: r.get(1)?,
                fingerprint: r.get(2)?,
                added_at: r.get(3)?,
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(|e| self.db(e))
    }

    /// Registers a dataset, or registers it again after its file changed.
    pub fn put_dataset(
        &self,
        name: &str,
        summary: &DatasetSummary,
    ) -> Result<DatasetRecord, NodeError> {
        let record = DatasetRecord {
            name: name.to_string(),
            summary: summary.clone(),
            registered_at: now_rfc3339(),
        };
        let json = serde_json::to_string(summary).unwrap_or_default();
        self.conn()
            .execute(
                "INSERT INTO datasets (name, summary, registered_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT(name) DO UPDATE SET summary = excluded.summary,
                     registered_at = excluded.registered_at",
                params![record.name, json, record.registered_at],
            )
            .map_err(|e| self.db(e))?;
        Ok(record)
    }

    /// The dataset registered under `name`.
    pub fn dataset(&self, name: &str) -> Result<Option<DatasetRecord>, NodeError> {
        Ok(self
            .query_datasets(
                "SELECT name, summary, registered_at FROM datasets WHERE name = ?1",
                [name],
            )?
            .pop())
    }

    /// All registered datasets, by name.
    pub fn datasets(&self) -> Result<Vec<DatasetRecord>, NodeError> {
        self.query_datasets(
            "SELECT name, summary, registered_at FROM datasets ORDER BY name",
            [],
        )
    }

    fn query_datasets<P: rusqlite::Params>(
        &self,
        sql: &str,
        p: P,
    ) -> Result<Vec<DatasetRecord>, NodeError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(sql).map_err(|e| self.db(e))?;
        let rows: Vec<(String, String, String)> = stmt
            .query_map(p, |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.db(e))?;
        rows.into_iter()
            .map(|(name, summary, registered_at)| {
                let summary = serde_json::from_str(&summary).map_err(|e| NodeError::Config {
                    path: self.path.clone(),
                    message: format!(
                        "dataset {name:?} has an unreadable record ({e}); register it again with `unseen dataset add`"
                    ),
                })?;
                Ok(DatasetRecord {
                    name,
                    summary,
                    registered_at,
                })
            })
            .collect()
    }

    /// Records a job as it starts (or is refused). A job id may appear once
    /// per role: a replayed id is refused here.
    pub fn insert_job(&self, job: &JobRecord) -> Result<(), NodeError> {
        self.conn()
            .execute(
                "INSERT INTO jobs (id, role, peer, protocol, local_dataset, peer_dataset,
                    local_set_size, peer_set_size, bytes_sent, bytes_received, started_at,
                    duration_ms, outcome, detail, result)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
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
                    job.result
                ],
            )
            .map_err(|e| self.db(e))?;
        Ok(())
    }

    /// Writes how a job ended.
    pub fn finish_job(&self, id: &str, role: Role, end: &JobEnd) -> Result<(), NodeError> {
        self.conn()
            .execute(
                "UPDATE jobs SET outcome = ?3, local_set_size = COALESCE(?4, local_set_size),
                    peer_set_size = COALESCE(?5, peer_set_size), bytes_sent = ?6,
                    bytes_received = ?7, duration_ms = ?8, detail = ?9, result = ?10
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
                    end.result
                ],
            )
            .map_err(|e| self.db(e))?;
        Ok(())
    }

    /// Whether a job id was already used in this role.
    pub fn job_exists(&self, id: &str, role: Role) -> Result<bool, NodeError> {
        self.conn()
            .query_row(
                "SELECT 1 FROM jobs WHERE id = ?1 AND role = ?2",
                params![id, role.as_str()],
                |_| Ok(()),
            )
            .optional()
            .map(|found| found.is_some())
            .map_err(|e| self.db(e))
    }

    /// Every job, oldest first.
    pub fn jobs(&self) -> Result<Vec<JobRecord>, NodeError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, role, peer, protocol, local_dataset, peer_dataset, local_set_size,
                    peer_set_size, bytes_sent, bytes_received, started_at, duration_ms, outcome,
                    detail, result
                 FROM jobs ORDER BY started_at, rowid",
            )
            .map_err(|e| self.db(e))?;
        stmt.query_map([], |r| {
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
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(|e| self.db(e))
    }

    /// Marks jobs left running by a previous process as interrupted; called
    /// when the node starts. Returns how many there were.
    pub fn mark_interrupted(&self) -> Result<usize, NodeError> {
        self.conn()
            .execute(
                "UPDATE jobs SET outcome = 'interrupted',
                    detail = 'the node stopped while the job ran'
                 WHERE outcome = 'running'",
                [],
            )
            .map_err(|e| self.db(e))
    }
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

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("node.db")).expect("open");
        (dir, store)
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
            started_at: now_rfc3339(),
            duration_ms: None,
            outcome: Outcome::Running,
            detail: None,
            result: None,
        }
    }

    #[test]
    fn peers_are_unique_by_name_and_fingerprint() {
        let (_dir, store) = store();
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
    }

    #[test]
    fn jobs_survive_reopening_and_running_ones_become_interrupted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("node.db");
        {
            let store = Store::open(&path).expect("open");
            store
                .insert_job(&job("a", Role::Requester))
                .expect("insert");
            store
                .insert_job(&job("b", Role::Requester))
                .expect("insert");
            store
                .finish_job(
                    "b",
                    Role::Requester,
                    &JobEnd {
                        outcome: Outcome::Completed,
                        local_set_size: None,
                        peer_set_size: Some(7),
                        bytes_sent: 10,
                        bytes_received: 20,
                        duration: Duration::from_millis(5),
                        detail: None,
                        result: Some("size 2".into()),
                    },
                )
                .expect("finish");
            assert!(
                store.insert_job(&job("b", Role::Requester)).is_err(),
                "replayed id"
            );
        }
        let store = Store::open(&path).expect("reopen");
        assert_eq!(store.mark_interrupted().expect("mark"), 1);
        let jobs = store.jobs().expect("jobs");
        assert_eq!(jobs.len(), 2);
        assert_eq!(jobs[0].outcome, Outcome::Interrupted);
        assert_eq!(jobs[1].outcome, Outcome::Completed);
        assert_eq!(jobs[1].local_set_size, Some(3));
        assert_eq!(jobs[1].peer_set_size, Some(7));
        assert!(store.job_exists("b", Role::Requester).expect("q"));
        assert!(!store.job_exists("b", Role::Responder).expect("q"));
    }
}
