//! How a body is encoded at rest: compressed, and cut into chunks where a single
//! item cannot hold it.

use std::{io::Read, str::FromStr};

use bytes::Bytes;

/// Bodies above this size are compressed.
const COMPRESS_ABOVE: usize = 2 * 1024;
/// zstd level: fast to write, and reads decompress at memory speed.
const ZSTD_LEVEL: i32 = 3;
/// A decoded body larger than this is refused as corrupt.
pub const MAX_BODY_BYTES: u64 = 256 * 1024 * 1024;

/// How a stored body is encoded, stored by name (`zstd+json`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::Display, strum::VariantArray,
)]
pub enum Encoding {
    #[strum(serialize = "json")]
    Json,
    #[strum(serialize = "zstd+json")]
    ZstdJson,
}

impl Encoding {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

impl FromStr for Encoding {
    type Err = PayloadError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        super::by_name(s).map_err(|_| PayloadError::UnknownEncoding(s.to_owned()))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error("unknown payload encoding {0:?}")]
    UnknownEncoding(String),
    #[error("payload does not decode")]
    Corrupt(#[source] std::io::Error),
    #[error("payload decodes to more than {MAX_BODY_BYTES} bytes")]
    TooLarge,
}

/// A body as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedPayload {
    pub encoding: Encoding,
    pub bytes: Vec<u8>,
}

/// Encodes `body` for storage, compressing all but small bodies.
pub fn encode(body: &[u8]) -> EncodedPayload {
    if body.len() > COMPRESS_ABOVE
        && let Ok(bytes) = zstd::bulk::compress(body, ZSTD_LEVEL)
    {
        return EncodedPayload {
            encoding: Encoding::ZstdJson,
            bytes,
        };
    }
    EncodedPayload {
        encoding: Encoding::Json,
        bytes: body.to_vec(),
    }
}

/// Decodes a stored body.
pub fn decode(encoding: Encoding, bytes: &[u8]) -> Result<Bytes, PayloadError> {
    match encoding {
        Encoding::Json => Ok(Bytes::copy_from_slice(bytes)),
        Encoding::ZstdJson => {
            let decoder = zstd::stream::read::Decoder::new(bytes).map_err(PayloadError::Corrupt)?;
            let mut out = Vec::with_capacity(bytes.len() * 4);
            decoder
                .take(MAX_BODY_BYTES + 1)
                .read_to_end(&mut out)
                .map_err(PayloadError::Corrupt)?;
            if out.len() as u64 > MAX_BODY_BYTES {
                return Err(PayloadError::TooLarge);
            }
            Ok(Bytes::from(out))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_bodies_are_stored_as_json() {
        let e = encode(b"{\"count\":0}");
        assert_eq!(e.encoding, Encoding::Json);
        assert_eq!(
            decode(e.encoding, &e.bytes).unwrap().as_ref(),
            b"{\"count\":0}"
        );
    }

    #[test]
    fn large_bodies_are_compressed_and_round_trip() {
        let body = format!(
            "[{}]",
            vec!["{\"instanceType\":\"m5.large\"}"; 2000].join(",")
        );
        let e = encode(body.as_bytes());
        assert_eq!(e.encoding, Encoding::ZstdJson);
        assert!(e.bytes.len() < body.len() / 10);
        assert_eq!(decode(e.encoding, &e.bytes).unwrap(), body.as_bytes());
    }

    #[test]
    fn corrupt_or_unknown_payloads_are_errors() {
        assert!(matches!(
            decode(Encoding::ZstdJson, b"not zstd"),
            Err(PayloadError::Corrupt(_))
        ));
        assert!("gzip".parse::<Encoding>().is_err());
    }
}
