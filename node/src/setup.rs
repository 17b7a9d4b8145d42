//! Creating a node directory.

use std::net::SocketAddr;
use std::path::Path;

use crate::config::{NodeConfig, NodePaths, validate_name};
use crate::error::NodeError;
use crate::identity::{Fingerprint, Identity};
use crate::store::Store;

/// Creates a node in `dir`: configuration, key (mode 0600), self-signed
/// certificate and an empty database. Refuses a directory that already
/// holds a node, so a key is never overwritten.
pub fn init_node(dir: &Path, name: &str, listen: SocketAddr) -> Result<Fingerprint, NodeError> {
    validate_name(name)?;
    let paths = NodePaths::new(dir);
    if paths.key().exists() || dir.join(crate::config::CONFIG_FILE).exists() {
        return Err(NodeError::AlreadyInitialised {
            dir: dir.to_path_buf(),
        });
    }
    std::fs::create_dir_all(dir).map_err(|e| NodeError::io(dir, e))?;
    std::fs::set_permissions(
        dir,
        std::os::unix::fs::PermissionsExt::from_mode(crate::fsutil::PRIVATE_DIR),
    )
    .map_err(|e| NodeError::io(dir, e))?;
    let identity = std::sync::Arc::new(Identity::create(name, &paths)?);
    let config = NodeConfig {
        name: name.to_string(),
        listen,
        network: Default::default(),
        limits: Default::default(),
    };
    config.save(dir)?;
    Store::open(
        &paths.database(),
        identity.clone(),
        std::sync::Arc::new(crate::clock::SystemClock),
    )?;
    Ok(identity.fingerprint())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_creates_a_loadable_node_and_refuses_to_overwrite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = dir.path().join("alice");
        let addr = "127.0.0.1:0".parse().expect("addr");
        let fp = init_node(&node, "alice", addr).expect("init");
        let config = NodeConfig::load(&node).expect("config");
        assert_eq!(config.name, "alice");
        let identity = Identity::load(&NodePaths::new(&node)).expect("identity");
        assert_eq!(identity.fingerprint(), fp);
        assert!(matches!(
            init_node(&node, "alice", addr),
            Err(NodeError::AlreadyInitialised { .. })
        ));
        assert!(matches!(
            init_node(&dir.path().join("x"), "bad name", addr),
            Err(NodeError::BadName { .. })
        ));
    }
}
