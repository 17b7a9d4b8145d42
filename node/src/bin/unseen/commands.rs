//! What each subcommand does. Errors carry their fix; `anyhow` adds context.

use std::io::Write;
use std::path::Path;

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use rustls_pki_types::pem::PemObject;
use unseen_node::audit;
use unseen_node::clock::SystemClock;
use unseen_node::config::{NodeConfig, NodePaths, validate_name};
use unseen_node::control::{self, ControlRequest, ControlResponse};
use unseen_node::dataset;
use unseen_node::grant as grants;
use unseen_node::identity::{Fingerprint, Identity};
use unseen_node::policy::{DataPolicy, LegalBasis};
use unseen_node::server::Node;
use unseen_node::store::Store;

use crate::{AuditCommand, Cli, Command, DatasetCommand, PeerCommand, RunCommand};

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
        Command::Run(RunCommand::Stats { spec, out, json }) => {
            crate::stats::run_stats(&dir, &spec, out.as_deref(), json)
        }
        Command::Run(RunCommand::IntersectionSum(args)) => crate::isum::run(&dir, args),
        Command::Run(command) => run_job(&dir, command),
        Command::Status => status(&dir),
        Command::Jobs { json } => jobs(&dir, json),
        Command::Grant(command) => crate::grants::grant(&dir, command),
        Command::Quota { json } => quota(&dir, json),
        Command::Audit(command) => audit(&dir, command),
    }
}

pub(crate) fn open_store(dir: &Path) -> Result<Store> {
    NodeConfig::load(dir)?;
    let identity = Arc::new(Identity::load(&NodePaths::new(dir))?);
    Ok(Store::open(
        &NodePaths::new(dir).database(),
        identity,
        Arc::new(SystemClock),
    )?)
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
            tell_serving_node(dir)?;
        }
        PeerCommand::List => {
            for peer in store.peers()? {
                println!("{}\t{}\t{}", peer.name, peer.addr, peer.fingerprint);
            }
        }
        PeerCommand::Remove { name } => {
            store.remove_peer(&name)?;
            println!("removed peer {name}");
            tell_serving_node(dir)?;
        }
    }
    Ok(())
}

/// Tells a node serving from `dir`, if any, that its peers changed, so a
/// removed peer's connections close now rather than at its next job.
fn tell_serving_node(dir: &Path) -> Result<()> {
    let socket = NodePaths::new(dir).control_socket();
    if !socket.exists() {
        return Ok(());
    }
    let told = runtime()?.block_on(control::request(
        dir,
        &socket,
        &ControlRequest::PeersChanged,
    ));
    match told {
        Ok(ControlResponse::PeersReloaded { closed: 0 }) => Ok(()),
        Ok(ControlResponse::PeersReloaded { closed }) => {
            println!("the serving node closed {closed} live connection(s) of removed peers");
            Ok(())
        }
        // A stale socket of a stopped node: the next start reads the peers.
        Err(_) if std::os::unix::net::UnixStream::connect(&socket).is_err() => Ok(()),
        Ok(other) => bail!(
            "the serving node did not take the change ({other:?}); restart it with `unseen serve` so it applies"
        ),
        Err(e) => bail!(
            "the serving node did not take the change ({e}); restart it with `unseen serve` so it applies"
        ),
    }
}

fn dataset(dir: &Path, command: DatasetCommand) -> Result<()> {
    let store = open_store(dir)?;
    match command {
        DatasetCommand::Add {
            name,
            file,
            id_column,
            grade,
            personal,
            consent,
            anonymised,
            min_group_size,
        } => {
            validate_name(&name)?;
            let legal_basis = match (consent, anonymised) {
                (Some(reference), _) => Some(LegalBasis::Consent(reference)),
                (None, Some(statement)) => Some(LegalBasis::Anonymised(statement)),
                (None, None) => None,
            };
            if legal_basis.is_some() && !personal {
                bail!("--consent and --anonymised describe personal data; add --personal");
            }
            let policy = DataPolicy {
                grade,
                personal,
                legal_basis,
                min_group_size,
            };
            let summary = dataset::scan(&file, &id_column)?;
            store.put_dataset(&name, &summary, &policy)?;
            if policy.personal && policy.legal_basis.is_none() {
                eprintln!(
                    "warning: {name} holds personal information without a legal basis; jobs will refuse it until you register it again with --consent REF or --anonymised STATEMENT"
                );
            }
            println!(
                "registered dataset {name}: {} rows, {} distinct ids, {} rows with an empty id (left out)",
                summary.row_count, summary.distinct_ids, summary.empty_id_rows
            );
            println!("file {} sha256 {}", summary.path.display(), summary.sha256);
        }
        DatasetCommand::List => {
            for record in store.datasets()? {
                let s = &record.summary;
                let grade = record
                    .policy
                    .as_ref()
                    .map_or("ungraded".into(), |p| p.grade.to_string());
                println!(
                    "{}\t{grade}\t{}\tid column {}\t{} rows\t{} distinct ids\t{} empty ids",
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

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
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
        purpose,
        retry,
        out,
        json,
    } = command
    else {
        bail!("stats and intersection-sum jobs run through their own commands");
    };
    let retry = match retry {
        Some(text) => Some(unseen_protocol::JobId::parse(&text).with_context(|| {
            format!(
                "invalid --retry {text:?}: give the 32-hex-digit job id that `unseen jobs` shows"
            )
        })?),
        None => None,
    };
    NodeConfig::load(dir)?;
    // The node resolves the path, so make it absolute here, in our directory.
    let out = match out {
        Some(path) if path.is_relative() => Some(std::env::current_dir()?.join(path)),
        other => other,
    };
    // Refused here, before the node admits (and charges) the job; the node
    // checks again, as other clients may call it.
    if let Some(out) = &out {
        unseen_node::fsutil::check_output_path(out).map_err(anyhow::Error::msg)?;
    }
    let request = ControlRequest::RunPsi {
        peer,
        dataset,
        peer_dataset,
        cardinality_only,
        purpose,
        retry,
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
                match (report.intersection_size, &report.suppressed) {
                    (Some(size), _) => println!(
                        "intersection size: {size} (your {} distinct ids, the peer's {})",
                        report.own_set_size, report.peer_set_size
                    ),
                    (None, Some(why)) => println!("no result released: {why}"),
                    (None, None) => println!("no result released"),
                }
                if let Some(noise) = &report.noise {
                    println!("noise: {noise}");
                }
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
        ControlResponse::Pong { .. }
        | ControlResponse::PeersReloaded { .. }
        | ControlResponse::Stats(_)
        | ControlResponse::IntersectionSum(_)
        | ControlResponse::Progress { .. } => {
            bail!("the node answered a different request; is it the same unseen version?")
        }
    }
}

fn status(dir: &Path) -> Result<()> {
    NodeConfig::load(dir)?;
    let socket = NodePaths::new(dir).control_socket();
    match runtime()?.block_on(control::request(dir, &socket, &ControlRequest::Ping))? {
        ControlResponse::Pong {
            name,
            listen,
            counters: c,
        } => {
            println!("node {name} is serving; peers reach it at {listen}");
            println!(
                "now: {} peer connections, {} job streams, {} bytes queued to peers",
                c.connections_open, c.job_streams_open, c.queued_bytes
            );
            println!(
                "turned away since start: {} handshakes, {} connections, {} streams; {} connections closed by peer removal, {} jobs over their deadline",
                c.handshakes_refused,
                c.connections_refused,
                c.streams_refused,
                c.connections_closed_for_removal,
                c.jobs_over_deadline
            );
            Ok(())
        }
        other => bail!("the node answered {other:?}; is it the same unseen version?"),
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

fn quota(dir: &Path, json: bool) -> Result<()> {
    let store = open_store(dir)?;
    for (grant, usage) in store.grants()? {
        let q = &grant.quota;
        if json {
            println!(
                "{}",
                serde_json::json!({ "grant": grant.id, "quota": q, "usage": usage })
            );
            continue;
        }
        let of = |used: u64, limit: Option<u64>| match limit {
            Some(limit) => format!("{used} of {limit} ({} left)", limit.saturating_sub(used)),
            None => format!("{used} (no limit)"),
        };
        println!(
            "{}  peer {}  dataset {}",
            grant.id, grant.peer, grant.dataset
        );
        println!(
            "  jobs:     {} in the last {} s; {} in all",
            of(usage.jobs_in_period, q.max_jobs),
            q.period_secs,
            usage.jobs_total
        );
        println!("  rows:     {}", of(usage.rows, q.max_rows));
        if let Some(max) = q.max_set_size {
            println!("  set size: at most {max} per job");
        }
        if let Some(epsilon) = q.epsilon_per_job_micros {
            let budget = q.epsilon_budget_micros.map_or("no budget".into(), |b| {
                format!(
                    "of {} ({} left)",
                    grants::format_micros(b),
                    grants::format_micros(b.saturating_sub(usage.epsilon_micros))
                )
            });
            println!(
                "  epsilon:  {} spent {budget}; {} per release",
                grants::format_micros(usage.epsilon_micros),
                grants::format_micros(epsilon)
            );
            let delta_budget = q
                .delta_budget_nanos
                .map_or("no budget".into(), |b| format!("of {b}e-9"));
            println!("  delta:    {}e-9 spent {delta_budget}", usage.delta_nanos);
        }
    }
    Ok(())
}

fn audit(dir: &Path, command: AuditCommand) -> Result<()> {
    match command {
        AuditCommand::Verify {
            file,
            cert,
            fingerprint,
            head,
        } => {
            let expected = fingerprint
                .as_deref()
                .map(unseen_node::identity::Fingerprint::parse)
                .transpose()
                .context("--fingerprint")?;
            let from_export = file.is_some();
            let (entries, cert, source) = match (file, cert) {
                (Some(file), Some(cert_path)) => {
                    let text = std::fs::read_to_string(&file)
                        .with_context(|| format!("cannot read {}", file.display()))?;
                    let entries: Vec<_> = text
                        .lines()
                        .enumerate()
                        .map(|(i, line)| audit::parse_line(line, i as u64 + 1))
                        .collect();
                    let cert = rustls_pki_types::CertificateDer::from_pem_file(&cert_path)
                        .map_err(|e| {
                            anyhow::anyhow!("{}: not a PEM certificate: {e}", cert_path.display())
                        })?;
                    let source = format!("{}", cert_path.display());
                    (entries, cert, source)
                }
                _ => {
                    let store = open_store(dir)?;
                    let identity = Identity::load(&NodePaths::new(dir))?;
                    let source = "this node's own key".to_string();
                    (store.audit_entries()?, identity.cert().clone(), source)
                }
            };
            let trusted = unseen_node::identity::Fingerprint::of(&cert);
            if let Some(expected) = expected
                && expected != trusted
            {
                bail!(
                    "the audit log does NOT verify: its certificate ({source}) has fingerprint {trusted}, not the {expected} you gave; get the export and certificate from that node again"
                );
            }
            let verified = audit::verify(entries, &cert, head.as_deref())
                .context("the audit log does NOT verify")?;
            println!(
                "audit log verified: {} entries, {} job manifests signed by both nodes, head {}",
                verified.entries, verified.manifests, verified.head
            );
            println!("signed by the node with certificate fingerprint {trusted} ({source})");
            if expected.is_none() && from_export {
                println!(
                    "check that fingerprint with the node's operator, or pass --fingerprint FP to require it"
                );
            }
        }
        AuditCommand::Export { file } => {
            let store = open_store(dir)?;
            let mut lines = String::new();
            let entries = store.audit_entries()?;
            for entry in &entries {
                let entry = entry
                    .as_ref()
                    .map_err(|e| anyhow::anyhow!("cannot export: {e}"))?;
                lines.push_str(&serde_json::to_string(entry)?);
                lines.push('\n');
            }
            unseen_node::fsutil::write_atomically(&file, lines.as_bytes())
                .with_context(|| format!("cannot write {}", file.display()))?;
            let cert_file = file.with_extension("crt");
            std::fs::copy(NodePaths::new(dir).cert(), &cert_file)
                .with_context(|| format!("cannot write {}", cert_file.display()))?;
            println!(
                "wrote {} entries to {} and the node's certificate to {}",
                entries.len(),
                file.display(),
                cert_file.display()
            );
            println!(
                "verify with: unseen audit verify --file {} --cert {}",
                file.display(),
                cert_file.display()
            );
        }
    }
    Ok(())
}
