//! The node's configuration file, `unseen.toml` in the node directory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use unseen_protocol::ecdh_psi::Message as PsiMessage;
use unseen_protocol::intersection_sum::Message as IsumMessage;

use crate::error::NodeError;

/// Name of the configuration file inside a node directory.
pub const CONFIG_FILE: &str = "unseen.toml";

/// Everything `unseen.toml` may hold. Unknown keys are refused, so a typo
/// cannot silently fall back to a default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// The node's name, as its peers register it.
    pub name: String,
    /// The UDP address the QUIC listener binds.
    pub listen: SocketAddr,
    /// Connection timeouts.
    #[serde(default)]
    pub network: NetworkConfig,
    /// Limits that protect the node from oversized input.
    #[serde(default)]
    pub limits: Limits,
}

/// Connection timeouts, in seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkConfig {
    /// How long a QUIC handshake with a peer may take.
    pub connect_timeout_secs: u64,
    /// A connection with no traffic for this long is closed.
    pub idle_timeout_secs: u64,
    /// How long a peer may stay silent inside a job before the job fails.
    pub message_timeout_secs: u64,
    /// How much a peer may send on one stream before we read it (QUIC flow
    /// control); a connection gets twice this. What a peer can make the node
    /// buffer is bounded by it.
    pub stream_window_bytes: u32,
}

/// The smallest stream window accepted.
pub const MIN_STREAM_WINDOW_BYTES: u32 = 16 << 10;

impl Default for NetworkConfig {
    fn default() -> Self {
        Self {
            connect_timeout_secs: 10,
            // Keep-alives go every third of this, so a killed peer is
            // noticed within seconds, not half a minute.
            idle_timeout_secs: 5,
            message_timeout_secs: 120,
            stream_window_bytes: 8 << 20,
        }
    }
}

/// Size limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// The largest frame accepted from a peer, checked before allocating.
    pub max_frame_bytes: u32,
    /// The largest set a peer may bring to a job.
    pub max_peer_set_size: u64,
    /// Connections one peer may hold open at once.
    pub max_connections_per_peer: u32,
    /// Jobs one peer may run here at once; further streams are refused
    /// before their request is read.
    pub max_jobs_per_peer: u32,
    /// Requests of one peer the node refuses per minute before it stops
    /// reading that peer's requests until the minute has passed.
    pub max_refusals_per_peer_per_minute: u32,
    /// Every job may run this long, whatever its size...
    pub job_seconds_base: u64,
    /// ...plus this long per million ids on both sides together.
    pub job_seconds_per_million_ids: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame_bytes: 1 << 20,
            max_peer_set_size: 1 << 24,
            max_connections_per_peer: 16,
            max_jobs_per_peer: 16,
            max_refusals_per_peer_per_minute: 30,
            job_seconds_base: 300,
            job_seconds_per_million_ids: 900,
        }
    }
}

impl Limits {
    /// How long a whole job with `ids` ids on both sides together may run.
    pub fn job_deadline(&self, ids: u64) -> Duration {
        let per_million = u128::from(self.job_seconds_per_million_ids) * u128::from(ids);
        let extra = u64::try_from(per_million.div_ceil(1_000_000)).unwrap_or(u64::MAX);
        Duration::from_secs(self.job_seconds_base.saturating_add(extra))
    }
}

/// The smallest frame limit that still carries a full chunk of group elements.
pub fn min_frame_bytes() -> u32 {
    let largest = PsiMessage::MAX_ENCODED_LEN.max(IsumMessage::MAX_ENCODED_LEN);
    (largest + 64) as u32
}

impl NodeConfig {
    /// Reads and validates `DIR/unseen.toml`.
    pub fn load(dir: &Path) -> Result<Self, NodeError> {
        let path = dir.join(CONFIG_FILE);
        let text = std::fs::read_to_string(&path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                NodeError::NotANodeDir {
                    dir: dir.to_path_buf(),
                }
            } else {
                NodeError::io(&path, source)
            }
        })?;
        Self::parse(&text, &path)
    }

    /// Parses and validates configuration text; `path` is named in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, NodeError> {
        let config: Self = toml::from_str(text).map_err(|e| NodeError::Config {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        config.validate(path)?;
        Ok(config)
    }

    fn validate(&self, path: &Path) -> Result<(), NodeError> {
        let bad = |message: String| NodeError::Config {
            path: path.to_path_buf(),
            message,
        };
        validate_name(&self.name).map_err(|e| bad(e.to_string()))?;
        if self.limits.max_frame_bytes < min_frame_bytes() {
            return Err(bad(format!(
                "limits.max_frame_bytes = {} is below {}, the size of one full chunk of group elements; raise it",
                self.limits.max_frame_bytes,
                min_frame_bytes()
            )));
        }
        let l = &self.limits;
        if l.max_connections_per_peer == 0
            || l.max_jobs_per_peer == 0
            || l.max_refusals_per_peer_per_minute == 0
            || l.job_seconds_base == 0
        {
            return Err(bad(
                "limits.max_connections_per_peer, max_jobs_per_peer, max_refusals_per_peer_per_minute and job_seconds_base must be at least 1; remove the key to use the default"
                    .into(),
            ));
        }
        let n = &self.network;
        if !(MIN_STREAM_WINDOW_BYTES..=1 << 30).contains(&n.stream_window_bytes) {
            return Err(bad(format!(
                "network.stream_window_bytes = {} is outside {MIN_STREAM_WINDOW_BYTES}..=1073741824; remove the key to use the default",
                n.stream_window_bytes
            )));
        }
        if n.connect_timeout_secs == 0 || n.idle_timeout_secs == 0 || n.message_timeout_secs == 0 {
            return Err(bad(
                "network timeouts must be at least 1 second; remove the key to use the default"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Writes the configuration to `DIR/unseen.toml`.
    pub fn save(&self, dir: &Path) -> Result<(), NodeError> {
        let path = dir.join(CONFIG_FILE);
        let text = toml::to_string_pretty(self).map_err(|e| NodeError::Config {
            path: path.clone(),
            message: e.to_string(),
        })?;
        std::fs::write(&path, text).map_err(|e| NodeError::io(&path, e))
    }

    /// The connect timeout as a duration.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.network.connect_timeout_secs)
    }

    /// The idle timeout as a duration.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.network.idle_timeout_secs)
    }

    /// The per-message timeout inside a job.
    pub fn message_timeout(&self) -> Duration {
        Duration::from_secs(self.network.message_timeout_secs)
    }
}

/// Checks a node, peer or dataset name: 1 to 64 of `A-Z a-z 0-9 . _ -`.
pub fn validate_name(name: &str) -> Result<(), NodeError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(NodeError::BadName {
            name: name.to_string(),
        })
    }
}

/// The files of a node directory.
#[derive(Debug, Clone)]
pub struct NodePaths {
    /// The directory itself.
    pub dir: PathBuf,
}

impl NodePaths {
    /// Paths inside `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }
    /// The private key, PKCS#8 PEM, mode 0600.
    pub fn key(&self) -> PathBuf {
        self.dir.join("node.key")
    }
    /// The self-signed certificate, PEM.
    pub fn cert(&self) -> PathBuf {
        self.dir.join("node.crt")
    }
    /// The SQLite database.
    pub fn database(&self) -> PathBuf {
        self.dir.join("node.db")
    }
    /// The control socket of a serving node.
    pub fn control_socket(&self) -> PathBuf {
        self.dir.join("control.sock")
    }
    /// The lock a serving node holds for as long as it runs.
    pub fn serve_lock(&self) -> PathBuf {
        self.dir.join("serve.lock")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<NodeConfig, NodeError> {
        NodeConfig::parse(text, Path::new("unseen.toml"))
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let config = parse("name = \"alice\"\nlisten = \"127.0.0.1:7000\"\n").expect("valid");
        assert_eq!(config.network, NetworkConfig::default());
        assert_eq!(config.limits, Limits::default());
    }

    #[test]
    fn unknown_keys_are_refused_with_the_file_named() {
        let err = parse("name = \"a\"\nlisten = \"127.0.0.1:1\"\nlisen = 3\n").expect_err("typo");
        let text = err.to_string();
        assert!(
            text.contains("unseen.toml") && text.contains("lisen"),
            "{text}"
        );
    }

    #[test]
    fn small_frame_limit_is_refused() {
        let err =
            parse("name = \"a\"\nlisten = \"127.0.0.1:1\"\n[limits]\nmax_frame_bytes = 100\n")
                .expect_err("too small");
        assert!(err.to_string().contains("max_frame_bytes"), "{err}");
    }

    #[test]
    fn bad_names_are_refused() {
        for name in ["", "a b", "x/y", &"n".repeat(65)] {
            assert!(validate_name(name).is_err(), "{name:?}");
        }
        validate_name("bank-01.cn_east").expect("valid");
    }

    #[test]
    fn the_documented_example_parses_and_states_the_defaults() {
        let text = include_str!("../../docs/unseen.example.toml");
        let config = parse(text).expect("docs/unseen.example.toml is valid");
        assert_eq!(config.network, NetworkConfig::default());
        assert_eq!(config.limits, Limits::default());
    }

    #[test]
    fn save_then_load_round_trips() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = parse("name = \"alice\"\nlisten = \"127.0.0.1:7000\"\n").expect("valid");
        config.save(dir.path()).expect("save");
        assert_eq!(NodeConfig::load(dir.path()).expect("load"), config);
    }
}
