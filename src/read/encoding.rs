//! Content negotiation: which encoding of a body to send for an
//! `Accept-Encoding` header, and each compressed variant of a body, made once
//! and held beside it.

use std::{io::Write, sync::OnceLock};

use bytes::Bytes;

use crate::domain::ETag;

/// A content coding the reader sends, named as `Content-Encoding` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::IntoStaticStr, strum::VariantArray)]
#[strum(serialize_all = "lowercase")]
pub enum Coding {
    Identity,
    Br,
    Zstd,
    Gzip,
}

/// The compressed codings, in the order preferred when a client accepts
/// several with the same weight: the smallest first.
const COMPRESSED: [Coding; 3] = [Coding::Br, Coding::Zstd, Coding::Gzip];

/// Bodies shorter than this are always sent as they are: compressing them
/// saves less than the header costs.
pub const MIN_COMPRESSED_BYTES: usize = 1024;

impl Coding {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The best coding `accept_encoding` allows (RFC 9110 §12.5.3): the highest
    /// weight, ties broken by [`COMPRESSED`]'s order; identity when the header
    /// is absent, names nothing known, or refuses every compressed coding.
    pub fn negotiate(accept_encoding: Option<&str>) -> Self {
        let Some(header) = accept_encoding else {
            return Self::Identity;
        };
        let mut star: Option<u16> = None;
        let mut weights: [Option<u16>; 3] = [None; 3];
        for item in header.split(',') {
            let mut parts = item.split(';');
            let name = parts.next().unwrap_or_default().trim();
            let weight = parts
                .find_map(|p| {
                    let (k, v) = p.split_once('=')?;
                    (k.trim().eq_ignore_ascii_case("q")).then(|| parse_weight(v.trim()))
                })
                .unwrap_or(Some(1000));
            let Some(weight) = weight else { continue };
            if name == "*" {
                star = Some(weight);
            } else if let Some(at) = COMPRESSED
                .iter()
                .position(|c| name.eq_ignore_ascii_case(c.as_str()))
            {
                weights[at] = Some(weight);
            }
        }
        let mut best = (0, Self::Identity);
        for (at, coding) in COMPRESSED.iter().enumerate() {
            let weight = weights[at].or(star).unwrap_or(0);
            if weight > best.0 {
                best = (weight, *coding);
            }
        }
        best.1
    }

    /// The `ETag` of the `etag` body in this coding: each coding is its own
    /// representation, with its own tag.
    pub fn etag(self, etag: &ETag) -> String {
        match self {
            Self::Identity => format!("\"{etag}\""),
            other => format!("\"{etag}-{}\"", other.as_str()),
        }
    }

    fn compress(self, body: &[u8]) -> std::io::Result<Vec<u8>> {
        match self {
            Self::Identity => Ok(body.to_vec()),
            Self::Gzip => {
                let mut encoder = flate2::write::GzEncoder::new(
                    Vec::with_capacity(body.len() / 4),
                    flate2::Compression::new(6),
                );
                encoder.write_all(body)?;
                encoder.finish()
            }
            Self::Zstd => zstd::bulk::compress(body, 3),
            Self::Br => {
                let mut out = Vec::with_capacity(body.len() / 4);
                {
                    // Quality 5 of 11: most of the gain, at a small part of the time.
                    let mut writer = brotli::CompressorWriter::new(&mut out, 64 * 1024, 5, 22);
                    writer.write_all(body)?;
                    writer.flush()?;
                }
                Ok(out)
            }
        }
    }
}

/// A weight (`q=0.5`) in thousandths; `None` when it is not one.
fn parse_weight(raw: &str) -> Option<u16> {
    let value: f32 = raw.parse().ok()?;
    // A weight is from 0 to 1 with at most three decimals.
    (0.0..=1.0)
        .contains(&value)
        .then(|| (value * 1000.0).round() as u16)
}

/// A body and its compressed variants, each made the first time it is asked
/// for and kept for as long as the body is.
#[derive(Debug)]
pub struct Variants {
    identity: Bytes,
    compressed: [OnceLock<Bytes>; 3],
}

impl Variants {
    pub fn new(identity: Bytes) -> Self {
        Self {
            identity,
            compressed: Default::default(),
        }
    }

    pub fn identity(&self) -> &Bytes {
        &self.identity
    }

    /// The coding sent for `wanted`: identity for a short body.
    pub fn coding_for(&self, wanted: Coding) -> Coding {
        if self.identity.len() < MIN_COMPRESSED_BYTES {
            Coding::Identity
        } else {
            wanted
        }
    }

    /// The body in `coding`, compressed on the first call only. A body that
    /// cannot be compressed (which writing to memory never causes) is sent as
    /// it is.
    pub fn body(&self, coding: Coding) -> (Coding, Bytes) {
        let Some(at) = COMPRESSED.iter().position(|c| *c == coding) else {
            return (Coding::Identity, self.identity.clone());
        };
        let compressed =
            self.compressed[at].get_or_init(|| match coding.compress(&self.identity) {
                Ok(bytes) => Bytes::from(bytes),
                Err(e) => {
                    tracing::error!(coding = coding.as_str(), error = %e, "compression failed");
                    Bytes::new()
                }
            });
        if compressed.is_empty() {
            (Coding::Identity, self.identity.clone())
        } else {
            (coding, compressed.clone())
        }
    }

    /// Bytes held, compressed variants included.
    pub fn held_bytes(&self) -> usize {
        self.identity.len()
            + self
                .compressed
                .iter()
                .filter_map(OnceLock::get)
                .map(Bytes::len)
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn the_heaviest_accepted_coding_wins_and_ties_go_to_the_smallest() {
        let n = |h| Coding::negotiate(Some(h));
        assert_eq!(Coding::negotiate(None), Coding::Identity);
        assert_eq!(n("gzip"), Coding::Gzip);
        assert_eq!(n("gzip, deflate, br"), Coding::Br);
        assert_eq!(n("gzip, deflate, br, zstd"), Coding::Br);
        assert_eq!(n("br;q=0.5, zstd;q=0.9, gzip;q=0.1"), Coding::Zstd);
        assert_eq!(n("GZIP;Q=1"), Coding::Gzip);
        assert_eq!(n("br;q=0, gzip;q=0"), Coding::Identity);
        assert_eq!(n("*"), Coding::Br);
        assert_eq!(n("*;q=0.5, br;q=0"), Coding::Zstd);
        assert_eq!(n("identity"), Coding::Identity);
        assert_eq!(n("deflate, compress"), Coding::Identity);
        // A malformed weight leaves its coding out.
        assert_eq!(n("br;q=high, gzip"), Coding::Gzip);
        assert_eq!(n(""), Coding::Identity);
    }

    fn body() -> Bytes {
        let records: Vec<String> = (0..500)
            .map(|i| format!(r#"{{"subnetId":"subnet-{i:08x}","vpcId":"vpc-0000000a"}}"#))
            .collect();
        Bytes::from(format!("[{}]", records.join(",")))
    }

    fn decode(coding: Coding, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        match coding {
            Coding::Identity => out.extend_from_slice(bytes),
            Coding::Gzip => {
                flate2::read::GzDecoder::new(bytes)
                    .read_to_end(&mut out)
                    .unwrap();
            }
            Coding::Zstd => out = zstd::decode_all(bytes).unwrap(),
            Coding::Br => {
                brotli::Decompressor::new(bytes, 4096)
                    .read_to_end(&mut out)
                    .unwrap();
            }
        }
        out
    }

    #[test]
    fn each_variant_decodes_to_the_body_and_is_made_once() {
        let variants = Variants::new(body());
        for &coding in <Coding as strum::VariantArray>::VARIANTS {
            let (sent, bytes) = variants.body(coding);
            assert_eq!(sent, coding);
            assert_eq!(decode(coding, &bytes), body(), "{coding:?}");
            if coding != Coding::Identity {
                assert!(
                    bytes.len() < body().len() / 4,
                    "{coding:?}: {}",
                    bytes.len()
                );
                // The same bytes, not compressed again.
                let (_, again) = variants.body(coding);
                assert_eq!(again.as_ptr(), bytes.as_ptr());
            }
        }
        assert!(variants.held_bytes() > body().len());
    }

    #[test]
    fn short_bodies_are_sent_as_they_are() {
        let short = Variants::new(Bytes::from_static(b"{\"count\":0}"));
        assert_eq!(short.coding_for(Coding::Br), Coding::Identity);
        assert_eq!(Variants::new(body()).coding_for(Coding::Br), Coding::Br);
    }

    #[test]
    fn each_coding_has_its_own_etag() {
        let etag = ETag::of(b"x");
        let tags: std::collections::HashSet<String> = <Coding as strum::VariantArray>::VARIANTS
            .iter()
            .map(|c| c.etag(&etag))
            .collect();
        assert_eq!(tags.len(), 4);
        assert_eq!(Coding::Identity.etag(&etag), format!("\"{etag}\""));
    }
}
