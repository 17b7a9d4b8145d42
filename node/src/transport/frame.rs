//! Length-prefixed frames: a 4-byte big-endian length, then that many bytes.
//!
//! The length is checked against the limit before any buffer is allocated,
//! so a peer cannot make the node reserve memory by announcing a huge frame.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The announced length is over the limit.
    #[error("peer announced a {len}-byte frame, over the {max}-byte limit")]
    TooLarge {
        /// Announced length.
        len: u32,
        /// The limit in force.
        max: u32,
    },
    /// The stream ended inside a frame.
    #[error("stream ended inside a frame")]
    Truncated,
    /// The stream failed.
    #[error("stream error: {0}")]
    Io(#[from] std::io::Error),
}

/// Writes one frame. Returns the bytes written, prefix included.
pub async fn write_frame<W: AsyncWrite + Unpin>(
    writer: &mut W,
    payload: &[u8],
) -> std::io::Result<u64> {
    let len = u32::try_from(payload.len())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "frame over 4 GiB"))?;
    writer.write_all(&len.to_be_bytes()).await?;
    writer.write_all(payload).await?;
    Ok(4 + u64::from(len))
}

/// Reads one frame of at most `max` bytes. `Ok(None)` means the stream ended
/// cleanly between frames.
pub async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    max: u32,
) -> Result<Option<Vec<u8>>, FrameError> {
    let mut prefix = [0u8; 4];
    let mut filled = 0;
    while filled < prefix.len() {
        let n = reader.read(&mut prefix[filled..]).await?;
        if n == 0 {
            return if filled == 0 {
                Ok(None)
            } else {
                Err(FrameError::Truncated)
            };
        }
        filled += n;
    }
    let len = u32::from_be_bytes(prefix);
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    let mut payload = vec![0u8; len as usize];
    reader
        .read_exact(&mut payload)
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => FrameError::Truncated,
            _ => FrameError::Io(e),
        })?;
    Ok(Some(payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_and_end_cleanly() {
        let mut buf = Vec::new();
        assert_eq!(write_frame(&mut buf, b"hello").await.expect("write"), 9);
        write_frame(&mut buf, b"").await.expect("write");
        let mut reader = &buf[..];
        assert_eq!(
            read_frame(&mut reader, 16).await.expect("read"),
            Some(b"hello".to_vec())
        );
        assert_eq!(
            read_frame(&mut reader, 16).await.expect("read"),
            Some(vec![])
        );
        assert_eq!(read_frame(&mut reader, 16).await.expect("read"), None);
    }

    #[tokio::test]
    async fn oversized_frame_is_refused_before_reading_it() {
        let mut reader: &[u8] = &[0xff, 0xff, 0xff, 0xff, 1, 2];
        assert!(matches!(
            read_frame(&mut reader, 1024).await,
            Err(FrameError::TooLarge {
                len: u32::MAX,
                max: 1024
            })
        ));
    }

    #[tokio::test]
    async fn truncated_frames_are_errors() {
        for bytes in [&[0u8, 0][..], &[0, 0, 0, 5, 1, 2][..]] {
            let mut reader = bytes;
            assert!(matches!(
                read_frame(&mut reader, 1024).await,
                Err(FrameError::Truncated)
            ));
        }
    }
}
