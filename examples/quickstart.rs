//! The main job: organisations compute joint results without handing their
//! data to each other.
//!
//! Makes deterministic synthetic data for a bank, a retailer and an insurer
//! (100,000, 100,000 and 60,000 customers; no real personal data), starts a
//! node for each on 127.0.0.1, and over QUIC with mutual TLS runs PSI-CA
//! (the size only) and PSI (the bank's matching rows) between the bank and
//! the retailer, then a horizontal statistic across all three (customer age
//! by city: count, mean and standard deviation over every organisation's
//! rows, by secure aggregation), printing each result next to the same
//! figure computed in the clear. Along the way each data owner grades its
//! data and grants a metered use of it; a job over quota is refused; and
//! each node's audit log is verified.
//!
//! Run: `cargo run --release --example quickstart`. Everything it writes is
//! under `target/quickstart/`.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use std::sync::Arc;

use anyhow::{Context, Result, bail, ensure};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use unseen::node::audit;
use unseen::node::clock::{SystemClock, rfc3339};
use unseen::node::config::NodePaths;
use unseen::node::control::{self, ControlRequest, ControlResponse};
use unseen::node::grant::{self, Grant, GrantedProtocol, Quota};
use unseen::node::identity::Identity;
use unseen::node::jobs::JobReport;
use unseen::node::jobs::isum::IsumReport;
use unseen::node::manifest::IsumRequest;
use unseen::node::policy::{self, DataPolicy, Grade, LegalBasis};
use unseen::node::server::Node;
use unseen::node::stats::{StatsReport, StatsSpec};
use unseen::node::store::Store;
use unseen::node::{dataset, setup};

const PURPOSE: &str = "joint loyalty programme sizing";

const CUSTOMERS_PER_ORG: u64 = 100_000;
const CITIES: [&str; 4] = ["Shanghai", "Shenzhen", "Chengdu", "Beijing"];
const STATS_PURPOSE: &str = "customer age profile by city";
const ISUM_PURPOSE: &str = "shared customers' retail spend";

/// A customer's age: 18 to 89, skewed by `shift` years for each organisation.
fn age(rng: &mut ChaCha20Rng, shift: u32) -> u32 {
    (18 + shift + (rng.next_u32() % 50) + (rng.next_u32() % 25)).min(89)
}

/// The insurer's policyholders: the same schema for age and city as the
/// others' customers (its own column names), and no shared ids needed.
fn write_insurer_data(dir: &Path) -> Result<PathBuf> {
    let mut rng = ChaCha20Rng::seed_from_u64(2026);
    let mut text = String::from("customer_id,branch_city,holder_age,premium_cny\n");
    for n in 0..60_000u64 {
        let city = CITIES[(rng.next_u32() % 4) as usize];
        let age = age(&mut rng, 3);
        writeln!(text, "PH{n:08},{city},{age},{}", rng.next_u32() % 20_000)?;
    }
    let csv = dir.join("insurer_policyholders.csv");
    std::fs::write(&csv, text)?;
    Ok(csv)
}

/// Per city over the three files, in the clear: (count, mean, sample
/// standard deviation) of age. Each file is (path, city column, age column).
fn stats_in_the_clear(files: &[(&Path, usize, usize)]) -> Result<Vec<(String, u64, f64, f64)>> {
    let mut ages: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
    for (path, city_at, age_at) in files {
        for line in std::fs::read_to_string(path)?.lines().skip(1) {
            let cells: Vec<&str> = line.split(',').collect();
            // Rows without an id are left out of every job.
            if cells[0].trim().is_empty() {
                continue;
            }
            ages.entry(cells[*city_at].to_string())
                .or_default()
                .push(cells[*age_at].parse()?);
        }
    }
    Ok(CITIES
        .iter()
        .map(|city| {
            let values = &ages[*city];
            let n = values.len() as f64;
            let mean = values.iter().sum::<f64>() / n;
            let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
            ((*city).to_string(), values.len() as u64, mean, var.sqrt())
        })
        .collect())
}
const COMMON_CUSTOMERS: u64 = 31_416;

/// Writes the two CSV files and returns the true number of common customers,
/// computed directly from the files' id columns.
fn write_sample_data(dir: &Path) -> Result<(PathBuf, PathBuf, usize)> {
    let mut rng = ChaCha20Rng::seed_from_u64(2025);
    // Customer numbers: the first COMMON_CUSTOMERS are shared; the rest of
    // each organisation's customers are its own.
    let id = |n: u64| format!("CN{:010}", n * 7_919 % 10_000_000_019);
    let mut bank = String::from("customer_id,segment,city,age,balance_cny\n");
    let mut shop = String::from("customer_id,store,age,annual_spend_cny\n");
    for n in 0..CUSTOMERS_PER_ORG {
        let customer = id(n);
        let segment = ["retail", "premier", "private"][(rng.next_u32() % 3) as usize];
        let city = CITIES[(rng.next_u32() % 4) as usize];
        let age = age(&mut rng, 0);
        writeln!(
            bank,
            "{customer},{segment},{city},{age},{}",
            rng.next_u32() % 2_000_000
        )?;
        // Real exports are messy: a few duplicates and padded ids, which the
        // node's normalisation must not count twice.
        if n % 1_000 == 0 {
            writeln!(bank, "  {customer} ,{segment},{city},{age},0")?;
        }
    }
    writeln!(bank, ",retail,Beijing,40,0")?; // a row with no id: counted and left out
    for n in 0..CUSTOMERS_PER_ORG {
        let customer = if n < COMMON_CUSTOMERS {
            id(n)
        } else {
            id(CUSTOMERS_PER_ORG + n)
        };
        let store = CITIES[(rng.next_u32() % 4) as usize];
        let age = age(&mut rng, 6);
        writeln!(shop, "{customer},{store},{age},{}", rng.next_u32() % 50_000)?;
    }
    let bank_csv = dir.join("bank_customers.csv");
    let shop_csv = dir.join("shop_customers.csv");
    std::fs::write(&bank_csv, &bank)?;
    std::fs::write(&shop_csv, &shop)?;
    let ids = |text: &str| -> HashSet<String> {
        text.lines()
            .skip(1)
            .filter_map(|line| line.split(',').next())
            .map(|id| id.trim().to_string())
            .filter(|id| !id.is_empty())
            .collect()
    };
    let overlap = ids(&bank).intersection(&ids(&shop)).count();
    Ok((bank_csv, shop_csv, overlap))
}

struct Org {
    name: &'static str,
    dir: PathBuf,
    node: Node,
}

/// An organisation whose node is serving.
struct OrgDir {
    name: &'static str,
    dir: PathBuf,
}

impl From<&Org> for OrgDir {
    fn from(org: &Org) -> Self {
        Self {
            name: org.name,
            dir: org.dir.clone(),
        }
    }
}

fn store(dir: &Path) -> Result<Store> {
    let identity = Arc::new(Identity::load(&NodePaths::new(dir))?);
    Ok(Store::open(
        &NodePaths::new(dir).database(),
        identity,
        Arc::new(SystemClock),
    )?)
}

fn create_org(root: &Path, name: &'static str, csv: &Path, grade: Grade) -> Result<Org> {
    let dir = root.join(name);
    setup::init_node(&dir, name, "127.0.0.1:0".parse()?)?;
    let summary = dataset::scan(csv, "customer_id")?;
    let policy = DataPolicy {
        grade,
        personal: true,
        legal_basis: Some(LegalBasis::Consent(format!("{name}-customer-consent-2026"))),
        min_group_size: policy::DEFAULT_MIN_GROUP_SIZE,
    };
    store(&dir)?.put_dataset("customers", &summary, &policy)?;
    println!(
        "  {name}: registered {} as {grade}, personal, with consent ({} rows, {} distinct ids, {} empty ids left out)",
        csv.display(),
        summary.row_count,
        summary.distinct_ids,
        summary.empty_id_rows
    );
    let node = Node::open(&dir)?;
    Ok(Org { name, dir, node })
}

fn register(org: &Org, peer: &Org) -> Result<()> {
    let addr = peer.node.quic_addr()?;
    store(&org.dir)?.add_peer(peer.name, &addr.to_string(), peer.node.fingerprint())?;
    Ok(())
}

/// `owner` lets `peer` use its customers for the quickstart's purpose, for
/// 30 days, at most `max_jobs` jobs a day, checked as `unseen grant add`
/// checks a grant: important data only with noise and a finite budget.
fn grant(
    owner: &Org,
    peer: &Org,
    protocols: &[GrantedProtocol],
    max_jobs: u64,
    noise: Option<u64>,
) -> Result<String> {
    grant_for(owner, peer, protocols, max_jobs, noise, PURPOSE)
}

fn grant_for(
    owner: &Org,
    peer: &Org,
    protocols: &[GrantedProtocol],
    max_jobs: u64,
    noise: Option<u64>,
    purpose: &str,
) -> Result<String> {
    let store = store(&owner.dir)?;
    let now = store.now();
    let mut id = [0u8; 6];
    rand_core::OsRng.fill_bytes(&mut id);
    let customers = store.dataset("customers")?.context("customers")?;
    let policy = customers.policy.context("a graded dataset")?;
    let releases = grant::DEFAULT_BUDGET_RELEASES;
    let grant = Grant {
        id: format!(
            "g-{}",
            id.iter().map(|b| format!("{b:02x}")).collect::<String>()
        ),
        peer: peer.name.into(),
        dataset: "customers".into(),
        protocols: protocols.to_vec(),
        purpose: purpose.into(),
        created_at: rfc3339(now),
        expires_at: rfc3339(now + time::Duration::days(30)),
        revoked_at: None,
        quota: Quota {
            max_jobs: Some(max_jobs),
            period_secs: 86_400,
            max_set_size: Some(grant::default_max_set_size(customers.summary.distinct_ids)),
            epsilon_per_job_micros: noise,
            epsilon_budget_micros: noise.map(|e| e * releases),
            delta_per_job_nanos: noise.map(|_| 1),
            delta_budget_nanos: noise.map(|_| releases),
            ..Quota::default()
        },
    };
    let warnings = grant::check_new_grant(&grant, &policy)?;
    store.add_grant(&grant)?;
    println!(
        "  {} ({}): {}",
        owner.name,
        grant.id,
        grant.describe(Some(policy.grade))
    );
    for warning in warnings {
        println!("    warning: {warning}");
    }
    Ok(grant.id)
}

async fn peers_changed(org: &OrgDir) -> Result<()> {
    let socket = NodePaths::new(&org.dir).control_socket();
    match control::request(&org.dir, &socket, &ControlRequest::PeersChanged).await? {
        ControlResponse::PeersReloaded { .. } => Ok(()),
        other => bail!("{}: unexpected answer {other:?}", org.name),
    }
}

async fn run_psi(
    org: &OrgDir,
    cardinality_only: bool,
    out: Option<PathBuf>,
) -> Result<Result<JobReport, String>> {
    let request = ControlRequest::RunPsi {
        peer: "shop".into(),
        dataset: "customers".into(),
        peer_dataset: "customers".into(),
        cardinality_only,
        purpose: PURPOSE.into(),
        retry: None,
        out,
    };
    let socket = NodePaths::new(&org.dir).control_socket();
    match control::request(&org.dir, &socket, &request).await? {
        ControlResponse::Job(report) => Ok(Ok(*report)),
        ControlResponse::Error { message } => Ok(Err(message)),
        other => bail!("unexpected answer {other:?}"),
    }
}

/// The bank asks the shop for the sum of its customers' annual spend over
/// the customers both have.
async fn run_intersection_sum(org: &OrgDir) -> Result<IsumReport> {
    let request = ControlRequest::RunIntersectionSum {
        peer: "shop".into(),
        dataset: "customers".into(),
        peer_dataset: "customers".into(),
        purpose: ISUM_PURPOSE.into(),
        sum: IsumRequest {
            value_column: "annual_spend_cny".into(),
            category_column: None,
            categories: Vec::new(),
            // Spend is below 50,000 CNY: one 16-bit limb.
            value_limbs: 1,
        },
    };
    let socket = NodePaths::new(&org.dir).control_socket();
    match control::request(&org.dir, &socket, &request).await? {
        ControlResponse::IntersectionSum(report) => Ok(*report),
        other => bail!("the intersection-sum failed: {other:?}"),
    }
}

/// The shop's customers the bank also has, and their total spend, from the
/// two files in the clear.
fn spend_in_the_clear(bank_csv: &Path, shop_csv: &Path) -> Result<(u64, u64)> {
    let bank: HashSet<String> = std::fs::read_to_string(bank_csv)?
        .lines()
        .skip(1)
        .filter_map(|line| line.split(',').next())
        .map(|id| id.trim().to_string())
        .filter(|id| !id.is_empty())
        .collect();
    let (mut count, mut sum) = (0, 0);
    for line in std::fs::read_to_string(shop_csv)?.lines().skip(1) {
        let fields: Vec<&str> = line.split(',').collect();
        let [id, _, _, spend] = fields[..] else {
            bail!("a shop row with other than four fields: {line}");
        };
        if bank.contains(id.trim()) {
            count += 1;
            sum += spend.parse::<u64>()?;
        }
    }
    Ok((count, sum))
}

async fn run_stats(org: &OrgDir) -> Result<StatsReport> {
    let spec = StatsSpec::parse(&format!(
        r#"
purpose = "{STATS_PURPOSE}"
statistics = ["count", "mean", "std_dev"]
value = {{ column = "age", digits = 2 }}
group_by = {{ column = "city", groups = ["Shanghai", "Shenzhen", "Chengdu", "Beijing"] }}
recipients = ["bank"]

[[party]]
node = "bank"
dataset = "customers"

[[party]]
node = "shop"
dataset = "customers"
group_column = "store"

[[party]]
node = "insurer"
dataset = "customers"
value_column = "holder_age"
group_column = "branch_city"
"#
    ))?;
    let socket = NodePaths::new(&org.dir).control_socket();
    let request = ControlRequest::RunStats {
        spec: Box::new(spec),
    };
    match control::request(&org.dir, &socket, &request).await? {
        ControlResponse::Stats(report) => Ok(*report),
        ControlResponse::Error { message } => bail!("the stats job failed: {message}"),
        other => bail!("unexpected answer {other:?}"),
    }
}

fn print_jobs(org: &OrgDir) -> Result<()> {
    println!("  {}'s job log:", org.name);
    for job in store(&org.dir)?.jobs()? {
        println!(
            "    {} {:<9} {:<9} {:<20} own {:>6} ids, peer {:>6} ids, sent {:>9} B, received {:>9} B, {:>5} ms{}",
            &job.id[..8],
            job.role.as_str(),
            job.outcome.as_str(),
            job.protocol,
            job.local_set_size.unwrap_or(0),
            job.peer_set_size.unwrap_or(0),
            job.bytes_sent,
            job.bytes_received,
            job.duration_ms.unwrap_or(0),
            job.result
                .map(|r| format!(", released: {r}"))
                .or(job.detail.map(|d| format!(", {d}")))
                .unwrap_or_default(),
        );
    }
    Ok(())
}

fn print_quota(org: &OrgDir) -> Result<()> {
    for (grant, usage) in store(&org.dir)?.grants()? {
        println!(
            "  {}'s grant {} to {}: {} of {} jobs today, {} rows touched",
            org.name,
            grant.id,
            grant.peer,
            usage.jobs_in_period,
            grant.quota.max_jobs.unwrap_or(0),
            usage.rows
        );
    }
    Ok(())
}

fn verify_audit(org: &OrgDir) -> Result<()> {
    let identity = Identity::load(&NodePaths::new(&org.dir))?;
    let verified = audit::verify(store(&org.dir)?.audit_entries()?, identity.cert(), None)
        .with_context(|| format!("{}'s audit log does not verify", org.name))?;
    println!(
        "  {}: audit log verified: {} entries, {} job manifests signed by every party, head {}…",
        org.name,
        verified.entries,
        verified.manifests,
        &verified.head[..16]
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let root = PathBuf::from("target/quickstart");
    if root.exists() {
        std::fs::remove_dir_all(&root).context("cannot clear target/quickstart")?;
    }
    std::fs::create_dir_all(&root)?;

    println!("1. Sample data (synthetic, deterministic)");
    let (bank_csv, shop_csv, true_overlap) = write_sample_data(&root)?;
    println!("  true overlap, computed in the clear for comparison: {true_overlap}");

    let insurer_csv = write_insurer_data(&root)?;

    println!("2. Three nodes on 127.0.0.1; each registers the others' certificate fingerprints");
    // The bank's data is important: it may only feed aggregates, and asking
    // for a PSI reveals nothing of it but its size. The shop's is general.
    let bank = create_org(&root, "bank", &bank_csv, Grade::Important)?;
    let shop = create_org(&root, "shop", &shop_csv, Grade::General)?;
    let insurer = create_org(&root, "insurer", &insurer_csv, Grade::General)?;
    for (a, b) in [(&bank, &shop), (&bank, &insurer), (&shop, &insurer)] {
        register(a, b)?;
        register(b, a)?;
    }
    println!(
        "  bank {}  shop {}  insurer {}",
        bank.node.quic_addr()?,
        shop.node.quic_addr()?,
        insurer.node.quic_addr()?
    );

    println!("3. Each data owner grants the other the use of its data");
    // The bank's data is important: the shop may only count, with noise. A
    // budget means nothing beside membership, so the bank's own PSI requests
    // (which reveal only the size of its set) come under a second grant.
    let (psi, psi_ca) = (GrantedProtocol::Psi, GrantedProtocol::PsiCa);
    grant(&bank, &shop, &[psi_ca], 10, Some(1_000_000))?;
    grant(&bank, &shop, &[psi], 10, None)?;
    grant(&shop, &bank, &[psi, psi_ca], 2, None)?;
    // The shop and the insurer let the bank receive joint statistics over
    // their customers: secure aggregation among three, totals only.
    let stats = [GrantedProtocol::Stats];
    grant_for(&shop, &bank, &stats, 5, None, STATS_PURPOSE)?;
    grant_for(&insurer, &bank, &stats, 5, None, STATS_PURPOSE)?;
    // Intersection-sum: the shop lets the bank learn its customers' total
    // spend over the customers they share (exact: the shop's data is
    // general); the bank's grant covers only its own asking, which shows
    // the shop nothing of its important data but its size.
    let isum = [GrantedProtocol::IntersectionSum];
    grant_for(&shop, &bank, &isum, 5, None, ISUM_PURPOSE)?;
    grant_for(&bank, &shop, &isum, 5, None, ISUM_PURPOSE)?;
    let (bank, bank_run) = (OrgDir::from(&bank), bank.node.start()?);
    let (shop, shop_run) = (OrgDir::from(&shop), shop.node.start()?);
    let (insurer, insurer_run) = (OrgDir::from(&insurer), insurer.node.start()?);
    // As `unseen peer add` does: a serving node reads its peers again when told.
    for org in [&bank, &shop, &insurer] {
        peers_changed(org).await?;
    }

    println!("4. PSI-CA: the bank learns only how many customers they share");
    let ca = run_psi(&bank, true, None)
        .await?
        .map_err(anyhow::Error::msg)?;
    println!(
        "  intersection size {} (bank {} ids, shop {} ids) in {} ms, {} bytes sent, {} received",
        ca.intersection_size.unwrap_or(0),
        ca.own_set_size,
        ca.peer_set_size,
        ca.duration_ms,
        ca.bytes_sent,
        ca.bytes_received
    );

    println!("5. PSI: the bank learns which of its own customers the shop also has");
    let out = std::env::current_dir()?.join(root.join("bank_common_customers.csv"));
    let psi = run_psi(&bank, false, Some(out.clone()))
        .await?
        .map_err(anyhow::Error::msg)?;
    println!(
        "  intersection size {}; wrote {} of the bank's rows to {}",
        psi.intersection_size.unwrap_or(0),
        psi.rows_written.unwrap_or(0),
        out.display()
    );

    println!("6. A third job today: the shop's grant allows two, so the shop refuses it");
    let refused = run_psi(&bank, true, None).await?;
    let refusal = refused
        .as_ref()
        .err()
        .context("the third job should be refused")?;
    println!("  refused: {refusal}");
    print_quota(&bank)?;
    print_quota(&shop)?;

    println!(
        "7. Joint statistics across all three: customer age by city, over every organisation's rows"
    );
    println!(
        "  (each node shares its own per-city count, sum and sum of squares; only the totals open, to the bank)"
    );
    let report = run_stats(&bank).await?;
    let clear = stats_in_the_clear(&[(&bank_csv, 2, 3), (&shop_csv, 1, 2), (&insurer_csv, 1, 2)])?;
    println!(
        "  {:<9} {:>8} {:>8} {:>8}   {:>8} {:>8} {:>8}",
        "city", "count", "mean", "std_dev", "clear:", "mean", "std_dev"
    );
    for (row, (city, count, mean, std_dev)) in report.rows.iter().zip(&clear) {
        println!(
            "  {:<9} {:>8} {:>8} {:>8}   {:>8} {:>8.2} {:>8.2}",
            row.group,
            row.count.as_deref().unwrap_or("-"),
            row.mean.as_deref().unwrap_or("-"),
            row.std_dev.as_deref().unwrap_or("-"),
            count,
            mean,
            std_dev
        );
        ensure!(row.group == *city, "groups out of order");
        ensure!(
            row.count.as_deref() == Some(count.to_string().as_str()),
            "the joint count for {city} differs from the clear one"
        );
        let close = |released: Option<&str>, clear: f64| {
            released
                .and_then(|r| r.parse::<f64>().ok())
                .is_some_and(|r| (r - clear).abs() <= 0.005 + 1e-9)
        };
        ensure!(
            close(row.mean.as_deref(), *mean) && close(row.std_dev.as_deref(), *std_dev),
            "the joint mean or standard deviation for {city} differs from the clear one"
        );
    }
    println!(
        "  equal to the clear computation (means and deviations to 2 digits); {} bytes sent by the bank, {} ms",
        report.bytes_sent, report.duration_ms
    );

    println!(
        "8. Intersection-sum, no third party: the shop's customers' total annual spend over the customers both have"
    );
    let summed = run_intersection_sum(&bank).await?;
    let (count, sum) = spend_in_the_clear(&bank_csv, &shop_csv)?;
    let total = summed
        .categories
        .first()
        .context("an ungrouped sum has one row")?;
    println!(
        "  common customers {}, their spend {} CNY (clear: {count}, {sum} CNY)",
        total.count.map_or("-".into(), |c| c.to_string()),
        total.sum.as_deref().unwrap_or("-"),
    );
    ensure!(
        total.count == Some(count) && total.sum.as_deref() == Some(sum.to_string().as_str()),
        "the intersection-sum differs from the clear computation"
    );
    ensure!(
        count as usize == true_overlap,
        "the intersection-sum's cardinality differs from the true overlap"
    );
    println!(
        "  equal to the clear computation. The bank learned the count and the sum, not which customers; \
         the shop learned the bank's number of customers and nothing else."
    );

    println!("9. Job records");
    print_jobs(&bank)?;
    print_jobs(&shop)?;
    print_jobs(&insurer)?;

    bank_run.shutdown().await;
    shop_run.shutdown().await;
    insurer_run.shutdown().await;

    println!("10. Audit: each node's hash-chained, signed log, checked with its certificate");
    verify_audit(&bank)?;
    verify_audit(&shop)?;
    verify_audit(&insurer)?;

    println!("11. Check against the true overlap ({true_overlap})");
    let (ca, psi) = (
        ca.intersection_size.unwrap_or(0),
        psi.intersection_size.unwrap_or(0),
    );
    ensure!(
        ca as usize == true_overlap,
        "PSI-CA size differs from the true overlap"
    );
    ensure!(
        psi as usize == true_overlap,
        "PSI size differs from the true overlap"
    );
    ensure!(
        refusal.contains("quota is exhausted"),
        "the third job was refused for another reason"
    );
    println!("  PSI-CA {ca} = PSI {psi} = true overlap {true_overlap}: correct");
    Ok(())
}
