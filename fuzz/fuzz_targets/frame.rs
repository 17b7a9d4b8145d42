//! The frame reader: a 4-byte big-endian length, then that many bytes, read
//! from a stream that delivers the peer's bytes in fuzzer-chosen pieces.
//!
//! Input: `step (1 byte) || max (2 bytes, BE) || stream`. Every frame the
//! reader returns, and every error, must match a plain reading of the same
//! bytes, and writing the frames back must give the bytes consumed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use unseen_fuzz::{Trickle, block_on};
use unseen_node::transport::frame::{FrameError, read_frame, write_frame};

/// What a plain reading of `bytes` says the next frame is, and the rest.
enum Expected<'a> {
    End,
    Frame(&'a [u8], &'a [u8]),
    Truncated,
    TooLarge(u32),
}

fn expected(bytes: &[u8], max: u32) -> Expected<'_> {
    if bytes.is_empty() {
        return Expected::End;
    }
    let Some((prefix, rest)) = bytes.split_first_chunk::<4>() else {
        return Expected::Truncated;
    };
    let len = u32::from_be_bytes(*prefix);
    if len > max {
        return Expected::TooLarge(len);
    }
    match rest.split_at_checked(len as usize) {
        Some((payload, rest)) => Expected::Frame(payload, rest),
        None => Expected::Truncated,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&[step, max_hi, max_lo], stream)) = data.split_first_chunk::<3>() else {
        return;
    };
    let max = u32::from(u16::from_be_bytes([max_hi, max_lo]));
    let mut reader = Trickle::new(stream, usize::from(step));
    let mut rest = stream;
    let mut frames = Vec::new();
    loop {
        let got = block_on(read_frame(&mut reader, max));
        match (expected(rest, max), got) {
            (Expected::End, Ok(None)) => break,
            (Expected::Frame(payload, after), Ok(Some(frame))) => {
                assert_eq!(frame, payload, "the frame differs from the bytes sent");
                assert!(frame.len() <= max as usize);
                frames.push(frame);
                rest = after;
            }
            (Expected::Truncated, Err(FrameError::Truncated)) => break,
            (Expected::TooLarge(len), Err(FrameError::TooLarge { len: l, max: m })) => {
                assert_eq!((l, m), (len, max));
                break;
            }
            (_, got) => panic!("read_frame returned {got:?} where a plain reading disagrees"),
        }
    }
    let mut written = Vec::new();
    for frame in &frames {
        block_on(write_frame(&mut written, frame)).expect("writing to a Vec cannot fail");
    }
    assert_eq!(written, stream[..stream.len() - rest.len()]);
});
