//! `unseen`: the command-line interface to an Unseen node.
#![forbid(unsafe_code)]

mod commands;
mod grants;
mod isum;
mod stats;

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
    /// Say whether the node is serving, and where.
    Status,
    /// Ask the serving node to run a job.
    #[command(subcommand)]
    Run(RunCommand),
    /// Grant a peer the use of a dataset.
    #[command(subcommand)]
    Grant(GrantCommand),
    /// Show each grant's quotas: used and remaining.
    Quota {
        /// Print JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Verify or export the audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
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
        /// The data's grade: general, important (aggregate protocols only) or
        /// core (never used).
        #[arg(long)]
        grade: unseen_node::policy::Grade,
        /// The data holds personal information (then --consent or
        /// --anonymised is required before any job may use it).
        #[arg(long)]
        personal: bool,
        /// Reference of the data subjects' consent record.
        #[arg(long, conflicts_with = "anonymised")]
        consent: Option<String>,
        /// Statement of how the data was anonymised.
        #[arg(long)]
        anonymised: Option<String>,
        /// Results over fewer of this dataset's records are suppressed.
        #[arg(long, default_value_t = unseen_node::policy::DEFAULT_MIN_GROUP_SIZE)]
        min_group_size: u64,
    },
    /// List registered datasets.
    List,
}

#[derive(Debug, Subcommand)]
enum RunCommand {
    /// Joint statistics over every party's rows (secure aggregation): only
    /// the totals are opened, to you.
    Stats {
        /// The job spec (see docs/stats.example.toml).
        #[arg(long)]
        spec: PathBuf,
        /// Also write the result here: CSV, or JSON if the name ends in .json.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
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
        /// The purpose, as the grants on both nodes name it.
        #[arg(long)]
        purpose: String,
        /// Retry a failed job under its id; its quota is not charged again.
        #[arg(long, value_name = "JOB_ID")]
        retry: Option<String>,
        /// Write the result here (your matching rows, or the size).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Print the job report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Private intersection-sum with a peer: how many of your ids the peer
    /// holds, and the sum of its values over them (per category); the peer
    /// learns only how many ids you brought.
    IntersectionSum(isum::IsumArgs),
}

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant, reason = "parsed once per process")]
enum GrantCommand {
    /// Let a peer use a dataset for some protocols and one purpose, until a time.
    Add(GrantAdd),
    /// List grants.
    List {
        /// Print JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a grant; jobs not yet started under it are refused.
    Revoke {
        /// The grant id.
        id: String,
    },
}

/// What `grant add` takes.
#[derive(Debug, clap::Args)]
pub(crate) struct GrantAdd {
    /// The peer.
    #[arg(long)]
    pub(crate) peer: String,
    /// The dataset.
    #[arg(long)]
    pub(crate) dataset: String,
    /// Comma-separated: psi, psi-ca, stats, intersection-sum.
    #[arg(long, value_delimiter = ',', required = true)]
    pub(crate) protocols: Vec<unseen_node::grant::GrantedProtocol>,
    /// The purpose jobs must state.
    #[arg(long)]
    pub(crate) purpose: String,
    /// When the grant ends: a duration (30d) or an RFC 3339 time.
    #[arg(long)]
    pub(crate) expires: String,
    /// Jobs allowed per period: a number, or `unlimited`. Default: 10.
    #[arg(long, value_name = "N|unlimited")]
    pub(crate) max_jobs: Option<String>,
    /// The period for --max-jobs (e.g. 1d, 7d).
    #[arg(long, default_value = "1d")]
    pub(crate) period: String,
    /// The most of this dataset's distinct ids that jobs may reveal, summed
    /// over jobs: each job counts min(the dataset's distinct ids, the
    /// peer's set size), or 0 when it reveals only the set sizes. A
    /// number, or `unlimited` (the default).
    #[arg(long, value_name = "N|unlimited")]
    pub(crate) max_rows: Option<String>,
    /// The largest set the peer may bring to one job: a number, or
    /// `unlimited`. Default: twice the dataset's distinct ids, at least 1000.
    #[arg(long, value_name = "N|unlimited")]
    pub(crate) max_set_size: Option<String>,
    /// Add differential-privacy noise to each count released, with this
    /// epsilon. Required for important data; not allowed with psi.
    #[arg(long)]
    pub(crate) epsilon: Option<String>,
    /// Total epsilon the grant may spend: a number, or `unlimited` (not for
    /// important data). Default: 10 releases' worth.
    #[arg(long, requires = "epsilon", value_name = "EPSILON|unlimited")]
    pub(crate) epsilon_budget: Option<String>,
    /// Delta per release (the tail probability of the noise padding).
    #[arg(long, requires = "epsilon", default_value = "0.000000001")]
    pub(crate) delta: String,
    /// Total delta the grant may spend (deltas add up): a number, or
    /// `unlimited` (not for important data). Default: 10 releases' worth.
    #[arg(long, requires = "epsilon", value_name = "DELTA|unlimited")]
    pub(crate) delta_budget: Option<String>,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check the hash chain and every signature; print the certificate trusted.
    Verify {
        /// Verify an exported file instead of this node's database.
        #[arg(long, requires = "cert")]
        file: Option<PathBuf>,
        /// The certificate of the node that wrote the file.
        #[arg(long, requires = "file")]
        cert: Option<PathBuf>,
        /// The fingerprint the certificate must have, as the node's operator
        /// gave it to you (`unseen id`): a certificate shipped beside an export
        /// proves nothing by itself.
        #[arg(long)]
        fingerprint: Option<String>,
        /// A head (entry hash) recorded earlier that the log must still contain.
        #[arg(long)]
        head: Option<String>,
    },
    /// Write the log as JSON Lines, with the node's certificate beside it.
    Export {
        /// The output file.
        file: PathBuf,
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
