//! Drives one ECDH-PSI party (the subject) with a fuzzer-chosen mix of an
//! honest peer's messages and forged ones, and checks the outcome.
//!
//! The honest peer is the real state machine of the other role, run on its
//! own ids, so an all-honest scenario reaches the end of the protocol and its
//! answer is checked against a plain set intersection. Forged messages take
//! their points from the honest transcript, from small multiples of the base
//! point, or from raw bytes, so they reach past the point decoder.

use arbitrary::Arbitrary;
use curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT;
use curve25519_dalek::scalar::Scalar;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use unseen_protocol::ecdh_psi::{
    Message, Mode, Padding, PsiOutput, PsiResult, Requester, RequesterState, Responder,
    ResponderOutput, ResponderState, Session,
};
use unseen_protocol::group::EncodedPoint;
use unseen_protocol::{Error, ErrorCategory, IdSet, JobId, Progress};

/// Ids per party: small, so one run costs about a millisecond.
const MAX_IDS: u8 = 8;
/// Responder-side dummies: what a node's grant could plausibly draw.
const MAX_LOCAL_DUMMIES: u64 = 16;
/// Room to forge a chunk over the protocol's 4096-element limit.
const MAX_EXTRA_POINTS: u16 = 4200;

/// One fuzz case: the parameters of the run, then what the subject receives.
#[derive(Arbitrary, Debug)]
pub struct Scenario {
    /// Test the requester (else the responder).
    test_requester: bool,
    cardinality: bool,
    own_ids: u8,
    peer_ids: u8,
    shared_ids: u8,
    chunk_points: u8,
    /// The subject's limits on the peer's set; `None` keeps the node's
    /// defaults, under which an honest peer passes.
    max_peer_set_size: Option<u64>,
    min_peer_set_size: Option<u64>,
    padding: Option<PaddingChoice>,
    seed: u64,
    /// Delivered first; the honest peer's remaining messages follow.
    actions: Vec<Action>,
}

/// Differential-privacy padding. The requester's view of it comes from the
/// responder's `JobAccepted` terms, so a hostile peer picks it freely; the
/// responder's is drawn locally from its grant, so it stays small.
#[derive(Arbitrary, Debug)]
struct PaddingChoice {
    offset: u64,
    total: u64,
    matching: u64,
}

/// What the subject receives next.
#[derive(Arbitrary, Debug)]
enum Action {
    /// The honest peer's next message.
    Honest,
    /// The honest peer's next message is lost.
    Skip,
    /// A message built from parts.
    Forge(Forged),
    /// A message decoded from raw bytes (skipped if they do not decode).
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
struct Forged {
    kind: Kind,
    set_size: SetSize,
    key_commitment: Option<PointChoice>,
    points: Vec<PointChoice>,
    /// Copies of the last point appended, to reach the chunk limits.
    extra_points: u16,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Kind {
    RequesterHello,
    ResponderHello,
    RequesterBlinded,
    ResponderBlinded,
    DoubleBlinded,
}

#[derive(Arbitrary, Debug)]
enum SetSize {
    /// The honest peer's set size plus a small difference.
    NearHonest(i8),
    Any(u64),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum PointChoice {
    /// A point from either party's honest messages (a replay or reflection).
    Transcript(u16),
    /// `k·G`; `k = 0` is the identity.
    Multiple(u8),
    Raw([u8; 32]),
}

/// Everything both parties sent in an honest run.
struct Transcript {
    /// The subject's own opening messages.
    subject_opening: Vec<Message>,
    /// What the honest peer sends the subject, in order.
    from_peer: Vec<Message>,
    /// The honest peer's set size as announced (dummies included).
    peer_announced: u64,
}

impl Transcript {
    fn points(&self) -> impl Iterator<Item = &EncodedPoint> {
        self.subject_opening
            .iter()
            .chain(&self.from_peer)
            .flat_map(|m| match m {
                Message::RequesterHello {
                    key_commitment: Some(p),
                    ..
                } => std::slice::from_ref(p),
                Message::RequesterBlinded(p)
                | Message::ResponderBlinded(p)
                | Message::DoubleBlinded(p) => p.as_slice(),
                _ => &[],
            })
    }
}

/// The run's fixed parameters, derived from a [`Scenario`].
struct Setup {
    mode: Mode,
    own: IdSet,
    peer: IdSet,
    shared: usize,
    subject: Session,
    peer_session: Session,
    /// Padding both sides agree on, so an honest run must finish; `None` when
    /// the requester was told of padding the responder does not add.
    honest_padding: Option<(u64, u64)>,
}

impl Scenario {
    fn setup(&self) -> Setup {
        let mode = if self.cardinality {
            Mode::Cardinality
        } else {
            Mode::Membership
        };
        let own_len = usize::from(self.own_ids % (MAX_IDS + 1));
        let peer_len = usize::from(self.peer_ids % (MAX_IDS + 1));
        let shared = usize::from(self.shared_ids) % (own_len.min(peer_len) + 1);
        // Shared ids come first in both sets, so the intersection is the
        // subject's positions 0..shared.
        let own: IdSet = (0..own_len).map(|i| format!("id-{i}")).collect();
        let peer: IdSet = (0..peer_len)
            .map(|i| {
                if i < shared {
                    format!("id-{i}")
                } else {
                    format!("peer-{i}")
                }
            })
            .collect();
        let job_id = JobId([7; 16]);
        let mut subject = Session::new(job_id, mode, 1 << 24);
        let mut peer_session = Session::new(job_id, mode, 1 << 24);
        subject.chunk_points = usize::from(self.chunk_points);
        peer_session.chunk_points = usize::from(self.chunk_points / 2);
        if let Some(max) = self.max_peer_set_size {
            subject.max_peer_set_size = max;
        }
        if let Some(min) = self.min_peer_set_size {
            subject.min_peer_set_size = min;
        }
        let mut honest_padding = Some((0, 0));
        if let Some(p) = &self.padding {
            let local_total = p.total % (MAX_LOCAL_DUMMIES + 1);
            let matching = p.matching % (local_total + 1);
            if self.test_requester {
                subject.padding = Padding::Requester {
                    offset: p.offset,
                    total: p.total,
                };
                let agreed = p.total <= MAX_LOCAL_DUMMIES;
                peer_session.padding = if agreed {
                    Padding::Responder {
                        matching,
                        total: p.total,
                    }
                } else {
                    Padding::None
                };
                honest_padding = agreed.then_some((matching, p.offset));
            } else {
                let offset = p.offset % (local_total + 1);
                subject.padding = Padding::Responder {
                    matching,
                    total: local_total,
                };
                peer_session.padding = Padding::Requester {
                    offset,
                    total: local_total,
                };
                honest_padding = Some((matching, offset));
            }
        }
        if mode == Mode::Membership {
            // Padding is ignored in membership mode.
            honest_padding = Some((0, 0));
        }
        Setup {
            mode,
            own,
            peer,
            shared,
            subject,
            peer_session,
            honest_padding,
        }
    }
}

/// Runs the scenario; panics if the subject misbehaves.
pub fn run(scenario: &Scenario) {
    let setup = scenario.setup();
    let mut rng = ChaCha20Rng::seed_from_u64(scenario.seed);
    if scenario.test_requester {
        run_requester(scenario, &setup, &mut rng);
    } else {
        run_responder(scenario, &setup, &mut rng);
    }
}

/// The messages the subject receives: the actions, then the honest rest.
struct Feed<'a> {
    actions: std::slice::Iter<'a, Action>,
    honest: std::vec::IntoIter<Message>,
    transcript_points: Vec<EncodedPoint>,
    peer_announced: u64,
    all_honest: bool,
}

impl<'a> Feed<'a> {
    fn new(actions: &'a [Action], transcript: Transcript) -> Self {
        Self {
            actions: actions.iter(),
            transcript_points: transcript.points().copied().collect(),
            peer_announced: transcript.peer_announced,
            honest: transcript.from_peer.into_iter(),
            all_honest: true,
        }
    }

    fn next_message(&mut self) -> Option<Message> {
        loop {
            let Some(action) = self.actions.next() else {
                return self.honest.next();
            };
            match action {
                Action::Honest => return self.honest.next(),
                Action::Skip => {
                    self.all_honest = false;
                    self.honest.next();
                }
                Action::Forge(forged) => {
                    self.all_honest = false;
                    return Some(self.forge(forged));
                }
                Action::Raw(bytes) => {
                    if let Ok(message) = Message::decode(bytes) {
                        self.all_honest = false;
                        return Some(message);
                    }
                }
            }
        }
    }

    fn point(&self, choice: PointChoice) -> EncodedPoint {
        match choice {
            PointChoice::Transcript(i) => match self.transcript_points.len() {
                0 => [0; 32],
                n => self.transcript_points[usize::from(i) % n],
            },
            PointChoice::Multiple(k) => (Scalar::from(k) * RISTRETTO_BASEPOINT_POINT)
                .compress()
                .to_bytes(),
            PointChoice::Raw(bytes) => bytes,
        }
    }

    fn forge(&self, forged: &Forged) -> Message {
        let set_size = match forged.set_size {
            SetSize::NearHonest(delta) => self.peer_announced.wrapping_add_signed(delta.into()),
            SetSize::Any(size) => size,
        };
        let mut points: Vec<EncodedPoint> = forged.points.iter().map(|&c| self.point(c)).collect();
        if let Some(&last) = points.last() {
            let extra = usize::from(forged.extra_points % (MAX_EXTRA_POINTS + 1));
            points.extend(std::iter::repeat_n(last, extra));
        }
        match forged.kind {
            Kind::RequesterHello => Message::RequesterHello {
                set_size,
                key_commitment: forged.key_commitment.map(|c| self.point(c)),
            },
            Kind::ResponderHello => Message::ResponderHello { set_size },
            Kind::RequesterBlinded => Message::RequesterBlinded(points),
            Kind::ResponderBlinded => Message::ResponderBlinded(points),
            Kind::DoubleBlinded => Message::DoubleBlinded(points),
        }
    }
}

/// A refusal must be one of the protocol's errors, with its abort code.
fn check_error(error: &Error) {
    let code = error.abort_code();
    assert!((1..100).contains(&code), "abort code {code} for {error}");
    assert_eq!(
        matches!(error.category(), ErrorCategory::Undecodable),
        code == 1,
        "{error}"
    );
    assert!(!error.to_string().is_empty());
}

/// What the requester must learn from an honest run: the plain intersection,
/// and for a cardinality the responder's matching dummies less the offset.
fn expected_output(setup: &Setup, peer_announced: u64, padding: (u64, u64)) -> PsiOutput {
    let result = match setup.mode {
        Mode::Membership => PsiResult::Members((0..setup.shared).collect()),
        Mode::Cardinality => {
            let (matching, offset) = padding;
            PsiResult::Cardinality((setup.shared as u64 + matching).saturating_sub(offset))
        }
    };
    PsiOutput {
        peer_set_size: peer_announced,
        result,
    }
}

fn run_requester(scenario: &Scenario, setup: &Setup, rng: &mut ChaCha20Rng) {
    let (state, opening) = Requester::start(setup.subject.clone(), &setup.own, rng);
    let (peer_state, mut from_peer) =
        Responder::start(setup.peer_session.clone(), &setup.peer, rng);
    let peer_announced = match from_peer.first() {
        Some(Message::ResponderHello { set_size }) => *set_size,
        _ => 0,
    };
    // The honest responder's answers to the subject's own opening.
    let mut peer_state = ResponderState::from(peer_state);
    for message in opening.clone() {
        match peer_state.handle(message, rng) {
            Ok(step) => {
                from_peer.extend(step.send);
                match step.next {
                    Progress::Continue(next) => peer_state = next,
                    Progress::Done(_) => break,
                }
            }
            Err(_) => break,
        }
    }
    let transcript = Transcript {
        subject_opening: opening,
        from_peer,
        peer_announced,
    };
    let mut feed = Feed::new(&scenario.actions, transcript);
    let mut state = RequesterState::from(state);
    while let Some(message) = feed.next_message() {
        match state.handle(message) {
            Err(error) => return check_error(&error),
            Ok(step) => {
                assert!(
                    step.send.is_empty(),
                    "the requester sends nothing after its opening"
                );
                match step.next {
                    Progress::Continue(next) => state = next,
                    Progress::Done(output) => {
                        if let (true, Some(padding)) = (feed.all_honest, setup.honest_padding) {
                            assert_eq!(output, expected_output(setup, peer_announced, padding));
                        }
                        return;
                    }
                }
            }
        }
    }
}

fn run_responder(scenario: &Scenario, setup: &Setup, rng: &mut ChaCha20Rng) {
    let (state, opening) = Responder::start(setup.subject.clone(), &setup.own, rng);
    let (peer_state, from_peer) = Requester::start(setup.peer_session.clone(), &setup.peer, rng);
    let transcript = Transcript {
        subject_opening: opening.clone(),
        from_peer,
        peer_announced: setup.peer.len() as u64,
    };
    let mut feed = Feed::new(&scenario.actions, transcript);
    let mut state = ResponderState::from(state);
    let mut sent = opening;
    while let Some(message) = feed.next_message() {
        match state.handle(message, rng) {
            Err(error) => return check_error(&error),
            Ok(step) => {
                sent.extend(step.send);
                match step.next {
                    Progress::Continue(next) => state = next,
                    Progress::Done(output) => {
                        if feed.all_honest {
                            check_honest_responder(setup, output, sent, peer_state.into());
                        }
                        return;
                    }
                }
            }
        }
    }
}

/// After an honest run, the responder's messages must give the honest
/// requester the right answer.
fn check_honest_responder(
    setup: &Setup,
    output: ResponderOutput,
    sent: Vec<Message>,
    mut requester: RequesterState,
) {
    assert_eq!(output.peer_set_size, setup.peer.len() as u64);
    let padding = setup.honest_padding.unwrap_or((0, 0));
    let announced = match sent.first() {
        Some(Message::ResponderHello { set_size }) => *set_size,
        other => panic!("the responder opened with {other:?}"),
    };
    let dummies = match setup.mode {
        Mode::Cardinality => setup.subject.padding.total(),
        Mode::Membership => 0,
    };
    assert_eq!(announced, setup.own.len() as u64 + dummies);
    for message in sent {
        let step = requester
            .handle(message)
            .expect("an honest requester accepts an honest responder's messages");
        match step.next {
            Progress::Continue(next) => requester = next,
            Progress::Done(answer) => {
                // The roles are swapped here: the requester holds the
                // "peer" ids, whose shared ones are also its first.
                assert_eq!(answer, expected_output(setup, announced, padding));
                return;
            }
        }
    }
    panic!("the honest requester did not finish on the responder's messages");
}
