//! `unseen`: the command-line interface to an Unseen node.
#![forbid(unsafe_code)]

mod commands;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Privacy-preserving joint statistics: raw records never leave this node.
#[derive(Debug, Parser)]
#[command(name = "unseen", version, about)]
struct Cli {
    /// The node directory.
    #[arg(
        short = 'C',
        long = "dir",
        global = true,
        env = "UNSEEN_DIR",
        default_value = "."
    )]
    dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a node directory: configuration, key, certificate and database.
    Init {
        /// Where to create the node.
        node_dir: PathBuf,
        /// The node's name, as peers will register it.
        #[arg(long)]
        name: String,
        /// UDP address for the QUIC listener, e.g. 0.0.0.0:7700.
        #[arg(long)]
        listen: SocketAddr,
    },
    /// Print the node's name and certificate fingerprint.
    Id {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Manage the peers this node talks to.
    #[command(subcommand)]
    Peer(PeerCommand),
    /// Manage the datasets this node offers.
    #[command(subcommand)]
    Dataset(DatasetCommand),
    /// Run the node: the QUIC listener for peers and the control socket.
    Serve {
        /// The node directory (overrides --dir).
        node_dir: Option<PathBuf>,
    },
    /// Ask the serving node to run a job.
    #[command(subcommand)]
    Run(RunCommand),
    /// List the jobs this node took part in.
    Jobs {
        /// Print JSON lines.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum PeerCommand {
    /// Register a peer by the fingerprint its operator gave you.
    Add {
        /// The name to know the peer by.
        name: String,
        /// Where its node listens (HOST:PORT).
        #[arg(long)]
        addr: String,
        /// Its certificate fingerprint, as `unseen id` prints it on the peer.
        #[arg(long)]
        fingerprint: String,
    },
    /// List registered peers.
    List,
    /// Remove a peer; its connections are refused from then on.
    Remove {
        /// The peer's name.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
enum DatasetCommand {
    /// Register a CSV file (it stays where it is), or register it again after it changed.
    Add {
        /// The name jobs will use.
        name: String,
        /// The CSV file.
        file: PathBuf,
        /// The column holding the ids to match on.
        #[arg(long)]
        id_column: String,
    },
    /// List registered datasets.
    List,
}

#[derive(Debug, Subcommand)]
enum RunCommand {
    /// Private set intersection with a peer.
    Psi {
        /// The registered peer.
        #[arg(long)]
        peer: String,
        /// Your registered dataset.
        #[arg(long)]
        dataset: String,
        /// The peer's dataset name.
        #[arg(long)]
        peer_dataset: String,
        /// Learn only the size of the intersection.
        #[arg(long)]
        cardinality_only: bool,
        /// Write the result here (your matching rows, or the size).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Print the job report as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let serving = matches!(cli.command, Command::Serve { .. });
    let filter = tracing_subscriber::EnvFilter::try_from_env("UNSEEN_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(if serving { "info" } else { "warn" })
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    match commands::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
