//! Errors of the node library. Each message says what went wrong, on which
//! input, and what to do about it.

use std::path::{Path, PathBuf};

use thiserror::Error;

/// An error of the node library.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The directory holds no node.
    #[error(
        "{} is not an Unseen node directory (no unseen.toml); create one with `unseen init {} --name NAME --listen ADDR`",
        dir.display(), dir.display()
    )]
    NotANodeDir {
        /// The directory.
        dir: PathBuf,
    },
    /// `unseen init` on a directory that already holds a node.
    #[error("{} already holds a node; choose another directory or delete it first", dir.display())]
    AlreadyInitialised {
        /// The directory.
        dir: PathBuf,
    },
    /// The configuration file is invalid.
    #[error("invalid configuration in {}: {message}", path.display())]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A name that is not 1 to 64 of `A-Z a-z 0-9 . _ -`.
    #[error("invalid name {name:?}: use 1 to 64 letters, digits, '.', '_' or '-'")]
    BadName {
        /// The name.
        name: String,
    },
    /// A fingerprint that is not 64 hex digits.
    #[error(
        "invalid fingerprint {text:?}: expected the 64 hex digits that `unseen id` prints on the peer's node"
    )]
    BadFingerprint {
        /// The text given.
        text: String,
    },
    /// The node's key or certificate could not be used.
    #[error("identity file {}: {message}", path.display())]
    Identity {
        /// The file.
        path: PathBuf,
        /// What is wrong and what to do.
        message: String,
    },
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The node's database failed.
    #[error("node database {}: {source}", path.display())]
    Database {
        /// The database file.
        path: PathBuf,
        /// The cause.
        source: rusqlite::Error,
    },
    /// A peer, dataset or job that does not exist.
    #[error("no {kind} named {name:?}; {hint}")]
    NotFound {
        /// "peer", "dataset" or "job".
        kind: &'static str,
        /// The name asked for.
        name: String,
        /// What to do.
        hint: &'static str,
    },
    /// A name or fingerprint that is already registered.
    #[error("{kind} {name:?} is already registered; {hint}")]
    Duplicate {
        /// "peer" or "fingerprint".
        kind: &'static str,
        /// The name.
        name: String,
        /// What to do.
        hint: &'static str,
    },
    /// A dataset problem.
    #[error(transparent)]
    Dataset(#[from] crate::dataset::DatasetError),
}

impl NodeError {
    /// An I/O error on `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
