//! Shared pieces of the fuzz targets: a heap cap, a runtime for the async
//! frame reader, a reader that hands data over in small pieces, and a scratch
//! directory for the decoders that read files.
//!
//! Each target in `fuzz_targets/` is one decoder a peer or a file reaches;
//! `run.sh` builds them with libFuzzer on stable Rust (see docs/TESTING.md).
#![forbid(unsafe_code)]

pub mod psi;

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};

use cap::Cap;
use tokio::io::{AsyncRead, ReadBuf};

/// Live heap allowed to one fuzz process. Every decoder bounds what it
/// allocates by its input or a configured limit, both far below this, so
/// reaching it means a peer or a file made the node allocate without bound;
/// the allocation then fails and the process aborts, which libFuzzer records
/// as a crash.
pub const HEAP_LIMIT_BYTES: usize = 512 << 20;

#[global_allocator]
static ALLOCATOR: Cap<std::alloc::System> = Cap::new(std::alloc::System, HEAP_LIMIT_BYTES);

/// Runs a future to completion on one current-thread runtime per process.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("a current-thread runtime needs no resources that can be missing")
        })
        .block_on(future)
}

/// An [`AsyncRead`] over a byte slice that returns at most `step` bytes per
/// read, as a network stream does, so readers must reassemble what they need.
#[derive(Debug)]
pub struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
}

impl<'a> Trickle<'a> {
    /// Reads `data`, `step` bytes at a time; 0 means as much as is asked.
    pub fn new(data: &'a [u8], step: usize) -> Self {
        let step = if step == 0 { usize::MAX } else { step };
        Self { data, step }
    }
}

impl AsyncRead for Trickle<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let n = self.data.len().min(self.step).min(buf.remaining());
        let (head, tail) = self.data.split_at(n);
        buf.put_slice(head);
        self.data = tail;
        Poll::Ready(Ok(()))
    }
}

/// A directory for this process's scratch files, under `TMPDIR` (run.sh
/// points it inside fuzz/target, so nothing is left elsewhere).
pub fn scratch_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        tempfile::Builder::new()
            .prefix("unseen-fuzz-")
            .tempdir()
            .expect("TMPDIR must be writable for the file targets")
            .keep()
    })
}
