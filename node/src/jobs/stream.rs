//! One job's bidirectional stream: frames out through a writer task, frames
//! in with a per-message timeout and a whole-job deadline, every byte
//! counted.
//!
//! A peer that stops reading must not hold the node's memory or a task
//! forever: each frame must be written within the message timeout, or the
//! writer resets the stream and gives up; what a job may queue is bounded by
//! the sizes it was admitted with; and the node-wide queued-bytes gauge
//! shows what is held.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{HANDSHAKE_HINT, JobError, JobStreams};
use crate::counters::{Gauge, NodeCounters, Total};
use crate::transport::frame::{FrameError, read_frame, write_frame};
use crate::wire::{self, PeerMessage};

/// What crossed a job's stream.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Traffic {
    pub(crate) bytes_sent: u64,
    pub(crate) bytes_received: u64,
    pub(crate) data_sent: u64,
    pub(crate) data_received: u64,
}

enum Outgoing {
    Frame(Vec<u8>),
    /// Answered once every frame queued before it is written.
    Flushed(tokio::sync::oneshot::Sender<()>),
}

/// Bytes a job may queue before it is admitted: its request or refusal and
/// an abort.
const QUEUE_BEFORE_ADMISSION: u64 = 64 << 10;

/// What a job may queue beyond its elements: envelopes, hellos, the
/// acceptance, noise dummies.
const QUEUE_SLACK: u64 = 4 << 20;

/// Bytes queued per element: 32 for the point, the rest covers framing.
const QUEUE_BYTES_PER_ELEMENT: u64 = 40;

/// Queued bytes, counted per job and node-wide.
#[derive(Debug)]
struct Queued {
    job: AtomicU64,
    counters: Arc<NodeCounters>,
}

impl Queued {
    fn add(&self, bytes: u64) {
        self.job.fetch_add(bytes, Ordering::Relaxed);
        self.counters.add(Gauge::QueuedBytes, bytes);
    }

    fn sub(&self, bytes: u64) {
        self.job.fetch_sub(bytes, Ordering::Relaxed);
        self.counters.sub(Gauge::QueuedBytes, bytes);
    }
}

/// A job's stream, both directions. [`JobStream::split`] parts them so one
/// task can read while another sends.
pub(crate) struct JobStream {
    writer: StreamWriter,
    reader: StreamReader,
}

/// Our direction: frames go through a bounded, counted queue to a writer task.
pub(crate) struct StreamWriter {
    outgoing: mpsc::UnboundedSender<Outgoing>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    bytes_sent: Arc<AtomicU64>,
    queued: Arc<Queued>,
    queue_limit: u64,
    data_sent: u64,
    timeout: Duration,
    deadline: Option<(Instant, Duration)>,
}

/// The peer's direction: frames in, each within the message timeout and the
/// job's deadline.
pub(crate) struct StreamReader {
    connection: quinn::Connection,
    recv: quinn::RecvStream,
    bytes_received: u64,
    data_received: u64,
    max_frame: u32,
    timeout: Duration,
    started: Instant,
    deadline: Option<(Instant, Duration)>,
    counters: Arc<NodeCounters>,
}

impl JobStream {
    pub(crate) fn new(
        streams: JobStreams,
        max_frame: u32,
        timeout: Duration,
        counters: Arc<NodeCounters>,
    ) -> Self {
        let JobStreams {
            connection,
            send,
            recv,
        } = streams;
        let (outgoing, queue) = mpsc::unbounded_channel::<Outgoing>();
        let bytes_sent = Arc::new(AtomicU64::new(0));
        let queued = Arc::new(Queued {
            job: AtomicU64::new(0),
            counters: counters.clone(),
        });
        let task = tokio::spawn(write_queue(
            send,
            queue,
            bytes_sent.clone(),
            queued.clone(),
            timeout,
        ));
        Self {
            writer: StreamWriter {
                outgoing,
                task,
                bytes_sent,
                queued,
                queue_limit: QUEUE_BEFORE_ADMISSION,
                data_sent: 0,
                timeout,
                deadline: None,
            },
            reader: StreamReader {
                connection,
                recv,
                bytes_received: 0,
                data_received: 0,
                max_frame,
                timeout,
                started: Instant::now(),
                deadline: None,
                counters,
            },
        }
    }

    /// Sizes the job was admitted with: `elements` on both sides together
    /// bound what it may queue, and `deadline`, counted from the stream's
    /// start, bounds how long it may run.
    pub(crate) fn admitted(&mut self, elements: u64, deadline: Duration) {
        self.admitted_bytes(elements.saturating_mul(QUEUE_BYTES_PER_ELEMENT), deadline);
    }

    /// Like [`Self::admitted`], with the bound given in bytes.
    pub(crate) fn admitted_bytes(&mut self, bytes: u64, deadline: Duration) {
        self.writer.queue_limit = bytes.saturating_add(QUEUE_SLACK);
        let at = Some((self.reader.started + deadline, deadline));
        self.writer.deadline = at;
        self.reader.deadline = at;
    }

    /// Queues `message` for the writer; see [`StreamWriter::send`].
    pub(crate) fn send(&mut self, message: &PeerMessage) -> Result<(), JobError> {
        self.writer.send(message)
    }

    pub(crate) async fn recv(&mut self) -> Result<PeerMessage, JobError> {
        self.reader.recv().await
    }

    pub(crate) fn traffic(&self) -> Traffic {
        Traffic::of(&self.writer, &self.reader)
    }

    /// Waits for the peer to close its direction: the responder does so only
    /// after it has recorded the job, so both records exist when we return.
    pub(crate) async fn expect_end(&mut self) -> Result<(), JobError> {
        self.reader.expect_end().await
    }

    /// Waits until every queued frame is written, and returns the traffic so
    /// far; the stream stays open. Gives up after the drain limit.
    pub(crate) async fn flush(&self) -> Traffic {
        self.writer.flush().await;
        self.traffic()
    }

    /// Sends what is queued and closes our direction of the stream.
    pub(crate) async fn close(self) -> Traffic {
        let reader = self.reader;
        self.writer.close(&reader).await
    }

    /// Sends an abort for `error` (if it warrants one) and closes.
    pub(crate) async fn fail(mut self, error: &JobError) -> Traffic {
        if let Some(abort) = error.abort() {
            let _ = self.send(&abort);
        }
        self.close().await
    }

    /// The two directions, apart.
    pub(crate) fn split(self) -> (StreamWriter, StreamReader) {
        (self.writer, self.reader)
    }
}

impl Traffic {
    pub(crate) fn of(writer: &StreamWriter, reader: &StreamReader) -> Self {
        Self {
            bytes_sent: writer.bytes_sent.load(Ordering::Relaxed),
            bytes_received: reader.bytes_received,
            data_sent: writer.data_sent,
            data_received: reader.data_received,
        }
    }
}

impl StreamWriter {
    /// Queues `message` for the writer. A job that would queue more than
    /// its sizes allow is a job gone wrong: it fails rather than grow.
    pub(crate) fn send(&mut self, message: &PeerMessage) -> Result<(), JobError> {
        let frame = wire::encode(message);
        let bytes = frame.len() as u64;
        let held = self.queued.job.load(Ordering::Relaxed);
        if held.saturating_add(bytes) > self.queue_limit {
            return Err(JobError::Internal(format!(
                "the job would queue {} bytes for the peer, over its bound of {}; the peer is not reading",
                held + bytes,
                self.queue_limit
            )));
        }
        if message.is_data() {
            self.data_sent += 1;
        }
        self.queued.add(bytes);
        if self.outgoing.send(Outgoing::Frame(frame)).is_err() {
            // The writer stopped because the stream failed; the next read
            // reports that failure.
            self.queued.sub(bytes);
        }
        Ok(())
    }

    /// Bytes written so far, framing included.
    pub(crate) fn bytes_sent(&self) -> u64 {
        self.bytes_sent.load(Ordering::Relaxed)
    }

    /// Data-bearing messages queued so far.
    pub(crate) fn data_sent(&self) -> u64 {
        self.data_sent
    }

    /// How long the writer may still take: the message timeout, or what is
    /// left of the job's deadline if that is longer.
    fn drain_limit(&self) -> Duration {
        let left = self
            .deadline
            .map(|(deadline, _)| deadline.saturating_duration_since(Instant::now()));
        left.map_or(self.timeout, |left| left.max(self.timeout))
    }

    /// Waits until every queued frame is written (or the drain limit).
    pub(crate) async fn flush(&self) {
        let (done, flushed) = tokio::sync::oneshot::channel();
        if self.outgoing.send(Outgoing::Flushed(done)).is_ok() {
            let _ = tokio::time::timeout(self.drain_limit(), flushed).await;
        }
    }

    /// Closes our direction (see [`Self::close`]) where the reading half is
    /// gone; the traffic counts what was sent.
    pub(crate) async fn close_counted(self) -> Traffic {
        let limit = self.drain_limit();
        let Self {
            outgoing,
            mut task,
            bytes_sent,
            queued,
            data_sent,
            ..
        } = self;
        drop(outgoing);
        if tokio::time::timeout(limit, &mut task).await.is_err() {
            task.abort();
            let _ = task.await;
            queued.sub(queued.job.load(Ordering::Relaxed));
        }
        Traffic {
            bytes_sent: bytes_sent.load(Ordering::Relaxed),
            data_sent,
            ..Traffic::default()
        }
    }

    /// Sends what is queued and closes our direction of the stream. Returns
    /// within [`Self::drain_limit`] even if the peer reads a trickle: the
    /// writer is then stopped and what it held uncounted.
    pub(crate) async fn close(self, reader: &StreamReader) -> Traffic {
        Traffic {
            bytes_received: reader.bytes_received,
            data_received: reader.data_received,
            ..self.close_counted().await
        }
    }
}

impl StreamReader {
    /// Bytes read so far, framing included.
    pub(crate) fn bytes_received(&self) -> u64 {
        self.bytes_received
    }

    /// How long the next read may wait: the message timeout, or less if
    /// the job's deadline comes first.
    fn wait(&self) -> Result<(Duration, bool), JobError> {
        let Some((deadline, whole)) = self.deadline else {
            return Ok((self.timeout, false));
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            self.counters.count(Total::JobsOverDeadline);
            return Err(JobError::Deadline(whole));
        }
        Ok((left.min(self.timeout), left < self.timeout))
    }

    async fn read(&mut self) -> Result<Option<Vec<u8>>, JobError> {
        let (wait, deadline_first) = self.wait()?;
        let read = tokio::time::timeout(wait, read_frame(&mut self.recv, self.max_frame)).await;
        let Ok(read) = read else {
            return Err(match (deadline_first, self.deadline) {
                (true, Some((_, whole))) => {
                    self.counters.count(Total::JobsOverDeadline);
                    JobError::Deadline(whole)
                }
                _ => JobError::Timeout(self.timeout),
            });
        };
        match read {
            Ok(frame) => Ok(frame),
            Err(FrameError::Io(e)) => Err(match self.connection.close_reason() {
                Some(reason) => JobError::ConnectionClosed(explain_close(&reason)),
                None => JobError::Frame(FrameError::Io(e)),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// The next message; an `Abort` from the peer is an error.
    pub(crate) async fn recv(&mut self) -> Result<PeerMessage, JobError> {
        let frame = self.read().await?.ok_or(JobError::Closed)?;
        self.bytes_received += 4 + frame.len() as u64;
        match wire::decode(&frame)? {
            PeerMessage::Abort { code, reason } => Err(JobError::PeerAborted { code, reason }),
            message => {
                if message.is_data() {
                    self.data_received += 1;
                }
                Ok(message)
            }
        }
    }

    /// Waits for the peer to close its direction.
    pub(crate) async fn expect_end(&mut self) -> Result<(), JobError> {
        match self.read().await? {
            None => Ok(()),
            Some(frame) => {
                let message = wire::decode(&frame)?;
                Err(super::unexpected("the end of the stream", &message))
            }
        }
    }
}

/// The writer task: writes queued frames in order. A frame the peer does not
/// take within `timeout` (it stopped reading, and flow control holds us)
/// resets the stream; whatever is still queued is then dropped and
/// uncounted.
async fn write_queue(
    mut send: quinn::SendStream,
    mut queue: mpsc::UnboundedReceiver<Outgoing>,
    sent: Arc<AtomicU64>,
    queued: Arc<Queued>,
    timeout: Duration,
) -> std::io::Result<()> {
    let result = async {
        while let Some(item) = queue.recv().await {
            match item {
                Outgoing::Frame(frame) => {
                    let bytes = frame.len() as u64;
                    let written =
                        tokio::time::timeout(timeout, write_frame(&mut send, &frame)).await;
                    queued.sub(bytes);
                    match written {
                        Ok(n) => sent.fetch_add(n?, Ordering::Relaxed),
                        Err(_) => {
                            let _ = send.reset(0u32.into());
                            return Err(std::io::Error::new(
                                std::io::ErrorKind::TimedOut,
                                format!("the peer took no data for {timeout:?}"),
                            ));
                        }
                    };
                }
                Outgoing::Flushed(done) => {
                    let _ = done.send(());
                }
            }
        }
        // All queued frames are written: finish, then wait until the peer
        // has them all (dropping the stream earlier would lose the tail).
        send.finish()?;
        let _ = tokio::time::timeout(timeout, send.stopped()).await;
        Ok(())
    }
    .await;
    // Nothing more will be written: uncount what is left, and refuse more.
    queue.close();
    while let Ok(item) = queue.try_recv() {
        if let Outgoing::Frame(frame) = item {
            queued.sub(frame.len() as u64);
        }
    }
    result
}

/// What a closed connection means, in words. Only a TLS failure gets the
/// certificate hint; a killed peer or a normal close says what it was.
pub fn explain_close(reason: &quinn::ConnectionError) -> String {
    match reason {
        quinn::ConnectionError::TimedOut => {
            "the peer stopped answering (no keep-alive within the idle timeout); its node may have stopped".into()
        }
        quinn::ConnectionError::Reset => "the peer's node reset the connection (it may have restarted)".into(),
        other if is_tls_failure(other) => format!("{other}; {HANDSHAKE_HINT}"),
        other => other.to_string(),
    }
}

/// Whether the connection failed in TLS (a refused certificate, a bad
/// handshake): QUIC carries TLS alerts as transport codes 0x100 to 0x1ff.
fn is_tls_failure(reason: &quinn::ConnectionError) -> bool {
    let code = match reason {
        quinn::ConnectionError::TransportError(e) => e.code,
        quinn::ConnectionError::ConnectionClosed(close) => close.error_code,
        _ => return false,
    };
    (0x100..0x200).contains(&u64::from(code))
}
