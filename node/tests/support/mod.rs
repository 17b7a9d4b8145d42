//! Helpers for tests that drive `unseen` processes as an operator would.
//! Each test file uses some of them.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub(crate) const UNSEEN: &str = env!("CARGO_BIN_EXE_unseen");

pub(crate) fn unseen(dir: &Path, args: &[&str]) -> Output {
    Command::new(UNSEEN)
        .arg("--dir")
        .arg(dir)
        .args(args)
        .output()
        .expect("run unseen")
}

pub(crate) fn ok(dir: &Path, args: &[&str]) -> String {
    let out = unseen(dir, args);
    assert!(
        out.status.success(),
        "unseen {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

pub(crate) fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text.trim()).expect("json")
}

/// A serving node process, killed when dropped.
pub(crate) struct Served {
    pub(crate) child: Child,
    pub(crate) addr: String,
    stderr: mpsc::Receiver<String>,
}

impl Served {
    pub(crate) fn start(dir: &Path) -> Self {
        Self::start_crashing(dir, None)
    }

    /// Starts a node that kills itself at `crash_at`, a step named in
    /// `unseen_node::crash`, when given.
    pub(crate) fn start_crashing(dir: &Path, crash_at: Option<&str>) -> Self {
        let mut command = Command::new(UNSEEN);
        command
            .arg("serve")
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(step) = crash_at {
            command.env(unseen_node::crash::ENV, step);
        }
        let mut child = command.spawn().expect("spawn serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let stderr = child.stderr.take().expect("stderr");
        let (err_tx, err_rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = err_tx.send(line);
            }
        });
        // The node prints its ready line once it listens.
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("node printed its ready line");
        let addr = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        Self {
            child,
            addr,
            stderr: err_rx,
        }
    }

    /// Waits, bounded, for the process to end (it kills itself).
    pub(crate) fn wait_killed(&mut self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while std::time::Instant::now() < deadline {
            if self.child.try_wait().expect("try_wait").is_some() {
                return;
            }
            std::thread::park_timeout(Duration::from_millis(20));
        }
        panic!("the node did not reach its crash point");
    }

    /// Waits (bounded) for a log line containing `needle`.
    pub(crate) fn wait_for_log(&self, needle: &str) -> bool {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            match self.stderr.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
        false
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Registers alice and bob as each other's peers; returns alice's fingerprint.
pub(crate) fn introduce(
    alice: &Path,
    alice_node: &Served,
    bob: &Path,
    bob_node: &Served,
) -> String {
    let (alice_fp, bob_fp) = (fingerprint(alice), fingerprint(bob));
    let peer = |dir: &Path, name: &str, node: &Served, fp: &str| {
        ok(
            dir,
            &[
                "peer",
                "add",
                name,
                "--addr",
                &node.addr,
                "--fingerprint",
                fp,
            ],
        );
    };
    peer(alice, "bob", bob_node, &bob_fp);
    peer(bob, "alice", alice_node, &alice_fp);
    alice_fp
}

pub(crate) fn init(root: &Path, name: &str) -> PathBuf {
    let dir = root.join(name);
    let out = Command::new(UNSEEN)
        .args(["init"])
        .arg(&dir)
        .args(["--name", name, "--listen", "127.0.0.1:0"])
        .output()
        .expect("init");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

pub(crate) fn fingerprint(dir: &Path) -> String {
    json(&ok(dir, &["id", "--json"]))["fingerprint"]
        .as_str()
        .expect("fingerprint")
        .to_string()
}

/// Writes a CSV file with a `customer id` column holding `ids`.
pub(crate) fn write_csv(path: &Path, ids: &[String]) {
    let mut text = String::from("region,customer id,score\n");
    for (i, id) in ids.iter().enumerate() {
        text.push_str(&format!("r{},\"{id}\",{i}\n", i % 3));
    }
    std::fs::write(path, text).expect("write csv");
}

pub(crate) fn stdout_json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    json(&String::from_utf8_lossy(&out.stdout))
}

pub(crate) fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}
