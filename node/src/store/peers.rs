//! Registered peers: each known by a name, an address and the fingerprint of its certificate.

use super::*;

impl Store {
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
}

impl Tx<'_> {
    /// The peer registered under `name`.
    pub fn peer(&self, name: &str) -> Result<Option<Peer>, NodeError> {
        Ok(query_peers(&self.tx, "WHERE name = ?1", [name])
            .map_err(|e| self.db(e))?
            .pop())
    }

    pub(super) fn peer_by_fingerprint(
        &self,
        fingerprint: Fingerprint,
    ) -> Result<Option<Peer>, NodeError> {
        Ok(query_peers(
            &self.tx,
            "WHERE fingerprint = ?1",
            [fingerprint.to_string()],
        )
        .map_err(|e| self.db(e))?
        .pop())
    }
}

pub(super) fn query_peers<P: rusqlite::Params>(
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

pub(super) fn not_found_peer(name: &str) -> NodeError {
    NodeError::NotFound {
        kind: "peer",
        name: name.to_string(),
        hint: "list peers with `unseen peer list`",
    }
}
