//! What each subcommand does. Errors carry their fix; `anyhow` adds context.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, bail};
use unseen_node::config::{NodeConfig, NodePaths, validate_name};
use unseen_node::control::{self, ControlRequest, ControlResponse};
use unseen_node::dataset;
use unseen_node::identity::{Fingerprint, Identity};
use unseen_node::server::Node;
use unseen_node::store::Store;

use crate::{Cli, Command, DatasetCommand, PeerCommand, RunCommand};

pub(crate) fn run(cli: Cli) -> Result<()> {
    let dir = cli.dir;
    match cli.command {
        Command::Init {
            node_dir,
            name,
            listen,
        } => {
            let fingerprint = unseen_node::setup::init_node(&node_dir, &name, listen)?;
            println!("created node {name} in {}", node_dir.display());
            println!("fingerprint: {fingerprint}");
            println!(
                "give your peers this fingerprint and your address; start with `unseen serve {}`",
                node_dir.display()
            );
            Ok(())
        }
        Command::Id { json } => {
            let config = NodeConfig::load(&dir)?;
            let identity = Identity::load(&NodePaths::new(&dir))?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "name": config.name,
                        "fingerprint": identity.fingerprint().to_string(),
                        "listen": config.listen.to_string(),
                    })
                );
            } else {
                println!("name:        {}", config.name);
                println!("fingerprint: {}", identity.fingerprint());
                println!("listen:      {}", config.listen);
            }
            Ok(())
        }
        Command::Peer(command) => peer(&dir, command),
        Command::Dataset(command) => dataset(&dir, command),
        Command::Serve { node_dir } => serve(node_dir.as_deref().unwrap_or(&dir)),
        Command::Run(command) => run_job(&dir, command),
        Command::Jobs { json } => jobs(&dir, json),
    }
}

fn open_store(dir: &Path) -> Result<Store> {
    NodeConfig::load(dir)?;
    Ok(Store::open(&NodePaths::new(dir).database())?)
}

fn peer(dir: &Path, command: PeerCommand) -> Result<()> {
    let store = open_store(dir)?;
    match command {
        PeerCommand::Add {
            name,
            addr,
            fingerprint,
        } => {
            validate_name(&name)?;
            if !addr.contains(':') {
                bail!("invalid --addr {addr:?}: give HOST:PORT, for example 127.0.0.1:7700");
            }
            let fingerprint = Fingerprint::parse(&fingerprint)?;
            store.add_peer(&name, &addr, fingerprint)?;
            println!("registered peer {name} at {addr}");
        }
        PeerCommand::List => {
            for peer in store.peers()? {
                println!("{}\t{}\t{}", peer.name, peer.addr, peer.fingerprint);
            }
        }
        PeerCommand::Remove { name } => {
            store.remove_peer(&name)?;
            println!("removed peer {name}");
        }
    }
    Ok(())
}

fn dataset(dir: &Path, command: DatasetCommand) -> Result<()> {
    let store = open_store(dir)?;
    match command {
        DatasetCommand::Add {
            name,
            file,
            id_column,
        } => {
            validate_name(&name)?;
            let summary = dataset::scan(&file, &id_column)?;
            store.put_dataset(&name, &summary)?;
            println!(
                "registered dataset {name}: {} rows, {} distinct ids, {} rows with an empty id (left out)",
                summary.row_count, summary.distinct_ids, summary.empty_id_rows
            );
            println!("file {} sha256 {}", summary.path.display(), summary.sha256);
        }
        DatasetCommand::List => {
            for record in store.datasets()? {
                let s = &record.summary;
                println!(
                    "{}\t{}\tid column {}\t{} rows\t{} distinct ids\t{} empty ids",
                    record.name,
                    s.path.display(),
                    s.id_column,
                    s.row_count,
                    s.distinct_ids,
                    s.empty_id_rows
                );
            }
        }
    }
    Ok(())
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn serve(dir: &Path) -> Result<()> {
    runtime()?.block_on(async {
        let node = Node::open(dir)?;
        let running = node.start()?;
        // The ready line: scripts and tests wait for it.
        println!("listening on {}", running.quic_addr);
        std::io::stdout().flush().ok();
        shutdown_signal().await;
        running.shutdown().await;
        Ok(())
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn run_job(dir: &Path, command: RunCommand) -> Result<()> {
    let RunCommand::Psi {
        peer,
        dataset,
        peer_dataset,
        cardinality_only,
        out,
        json,
    } = command;
    NodeConfig::load(dir)?;
    // The node resolves the path, so make it absolute here, in our directory.
    let out = match out {
        Some(path) if path.is_relative() => Some(std::env::current_dir()?.join(path)),
        other => other,
    };
    let request = ControlRequest::RunPsi {
        peer,
        dataset,
        peer_dataset,
        cardinality_only,
        out,
    };
    let socket = NodePaths::new(dir).control_socket();
    let response = runtime()?.block_on(control::request(dir, &socket, &request))?;
    match response {
        ControlResponse::Job(report) => {
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                println!(
                    "job {} with {} ({})",
                    report.job_id, report.peer, report.protocol
                );
                println!(
                    "intersection size: {} (your {} distinct ids, the peer's {})",
                    report.intersection_size, report.own_set_size, report.peer_set_size
                );
                if report.own_empty_id_rows > 0 {
                    println!(
                        "left out {} rows with an empty id",
                        report.own_empty_id_rows
                    );
                }
                if let (Some(out), Some(rows)) = (&report.out, report.rows_written) {
                    println!("wrote {rows} rows to {}", out.display());
                }
                println!(
                    "sent {} bytes, received {} bytes, {} ms",
                    report.bytes_sent, report.bytes_received, report.duration_ms
                );
            }
            Ok(())
        }
        ControlResponse::Error { message } => bail!("{message}"),
        ControlResponse::Pong { .. } => {
            bail!("the node answered a different request; is it the same unseen version?")
        }
    }
}

fn jobs(dir: &Path, json: bool) -> Result<()> {
    let store = open_store(dir)?;
    for job in store.jobs()? {
        if json {
            println!("{}", serde_json::to_string(&job)?);
        } else {
            println!(
                "{}  {}  {:<9}  {:<11}  peer {}  {}  {} ↔ {}  sizes {}/{}  bytes {}↑ {}↓  {} ms  {}",
                job.started_at,
                job.id,
                job.role.as_str(),
                job.outcome.as_str(),
                job.peer,
                job.protocol,
                job.local_dataset,
                job.peer_dataset,
                job.local_set_size.map_or("-".into(), |n| n.to_string()),
                job.peer_set_size.map_or("-".into(), |n| n.to_string()),
                job.bytes_sent,
                job.bytes_received,
                job.duration_ms.map_or("-".into(), |n| n.to_string()),
                job.detail.or(job.result).unwrap_or_default(),
            );
        }
    }
    Ok(())
}
