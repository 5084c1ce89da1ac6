//! The wire encoding: the fixed frame header and the payload codec.
//!
//! This is the only module that knows how messages become bytes. Payloads use bincode 2
//! (serde mode, variable-length integers, little endian) with a byte limit of
//! [`MAX_PAYLOAD`], so a garbage length prefix can never make the decoder allocate more
//! than a frame could carry. Swapping the codec means changing this module only.
//!
//! The header is 16 bytes, little endian:
//!
//! | bytes | field |
//! |---|---|
//! | 0..8 | request id (`u64`) |
//! | 8..10 | message id (`u16`, see [`crate::MsgId`]) |
//! | 10..12 | reserved, must be zero |
//! | 12..16 | payload length (`u32`) |

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::ProtoError;
use crate::message::MAX_PAYLOAD;

/// Size of the fixed frame header in bytes.
pub const HEADER_SIZE: usize = 16;

/// The fixed frame header preceding every payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Matches a reply to its request.
    pub request_id: u64,
    /// The message id (see [`crate::MsgId`]).
    pub msg_id: u16,
    /// Length of the payload following the header.
    pub payload_len: u32,
}

impl Header {
    /// Encodes the header.
    pub fn encode(&self) -> [u8; HEADER_SIZE] {
        let mut b = [0u8; HEADER_SIZE];
        b[0..8].copy_from_slice(&self.request_id.to_le_bytes());
        b[8..10].copy_from_slice(&self.msg_id.to_le_bytes());
        b[12..16].copy_from_slice(&self.payload_len.to_le_bytes());
        b
    }

    /// Decodes a header from the start of `b`, checking the reserved field and the
    /// payload length limit.
    pub fn decode(b: &[u8]) -> Result<Header, ProtoError> {
        let Some(b) = b.get(..HEADER_SIZE) else {
            return Err(ProtoError::Truncated);
        };
        let mut id = [0u8; 8];
        id.copy_from_slice(&b[0..8]);
        let request_id = u64::from_le_bytes(id);
        let msg_id = u16::from_le_bytes([b[8], b[9]]);
        if b[10] != 0 || b[11] != 0 {
            return Err(ProtoError::BadHeader);
        }
        let payload_len = u32::from_le_bytes([b[12], b[13], b[14], b[15]]);
        if payload_len as usize > MAX_PAYLOAD {
            return Err(ProtoError::TooLarge(payload_len as usize));
        }
        Ok(Header {
            request_id,
            msg_id,
            payload_len,
        })
    }
}

fn config() -> impl bincode::config::Config {
    bincode::config::standard()
        .with_little_endian()
        .with_variable_int_encoding()
        .with_limit::<MAX_PAYLOAD>()
}

/// Encodes a payload; fails with [`ProtoError::TooLarge`] beyond [`MAX_PAYLOAD`].
pub fn encode_payload<T: Serialize>(value: &T) -> Result<Vec<u8>, ProtoError> {
    let v = bincode::serde::encode_to_vec(value, config())
        .map_err(|e| ProtoError::Encode(e.to_string()))?;
    if v.len() > MAX_PAYLOAD {
        return Err(ProtoError::TooLarge(v.len()));
    }
    Ok(v)
}

/// Decodes a payload, which must be consumed exactly.
pub fn decode_payload<T: DeserializeOwned>(payload: &[u8]) -> Result<T, ProtoError> {
    if payload.len() > MAX_PAYLOAD {
        return Err(ProtoError::TooLarge(payload.len()));
    }
    let (v, used) = bincode::serde::decode_from_slice(payload, config())
        .map_err(|e| ProtoError::Decode(e.to_string()))?;
    if used != payload.len() {
        return Err(ProtoError::TrailingBytes(payload.len() - used));
    }
    Ok(v)
}

/// Decodes a whole request frame held in one buffer (header then payload). Used by tests
/// and the fuzzer; the transport decodes the same way after reassembly.
pub fn decode_request_frame(frame: &[u8]) -> Result<(Header, crate::Request), ProtoError> {
    let h = Header::decode(frame)?;
    let payload = &frame[HEADER_SIZE..];
    if payload.len() != h.payload_len as usize {
        return Err(ProtoError::LengthMismatch);
    }
    Ok((h, crate::Request::decode(h.msg_id, payload)?))
}

/// Decodes a whole reply frame held in one buffer (header then payload).
pub fn decode_response_frame(frame: &[u8]) -> Result<(Header, crate::Response), ProtoError> {
    let h = Header::decode(frame)?;
    let payload = &frame[HEADER_SIZE..];
    if payload.len() != h.payload_len as usize {
        return Err(ProtoError::LengthMismatch);
    }
    Ok((h, crate::Response::decode(h.msg_id, payload)?))
}

/// Encodes a whole frame (header then payload) into one buffer.
pub fn encode_frame(request_id: u64, msg_id: u16, payload: &[u8]) -> Result<Vec<u8>, ProtoError> {
    if payload.len() > MAX_PAYLOAD {
        return Err(ProtoError::TooLarge(payload.len()));
    }
    let h = Header {
        request_id,
        msg_id,
        payload_len: payload.len() as u32,
    };
    let mut v = Vec::with_capacity(HEADER_SIZE + payload.len());
    v.extend_from_slice(&h.encode());
    v.extend_from_slice(payload);
    Ok(v)
}

/// Serde helper: a `Vec<u8>` encoded as one length-prefixed byte string (not one element
/// at a time).
pub(crate) mod bytes {
    use serde::de::{Deserializer, Error, SeqAccess, Visitor};
    use serde::ser::Serializer;
    use std::fmt;

    pub(crate) fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        d.deserialize_byte_buf(BytesVisitor)
    }

    pub(crate) struct BytesVisitor;

    impl<'de> Visitor<'de> for BytesVisitor {
        type Value = Vec<u8>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a byte string")
        }

        fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
            Ok(v.to_vec())
        }

        fn visit_byte_buf<E: Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(v)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
            let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
            while let Some(b) = seq.next_element()? {
                v.push(b);
            }
            Ok(v)
        }
    }
}

/// Serde helper: a `Vec<Vec<u8>>` whose elements are byte strings.
pub(crate) mod bytes_vec {
    use serde::de::{Deserializer, SeqAccess, Visitor};
    use serde::ser::{SerializeSeq, Serializer};
    use std::fmt;

    struct Elem<'a>(&'a [u8]);

    impl serde::Serialize for Elem<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(self.0)
        }
    }

    struct OwnedElem(Vec<u8>);

    impl<'de> serde::Deserialize<'de> for OwnedElem {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            super::bytes::deserialize(d).map(OwnedElem)
        }
    }

    pub(crate) fn serialize<S: Serializer>(v: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(v.len()))?;
        for e in v {
            seq.serialize_element(&Elem(e))?;
        }
        seq.end()
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
        d.deserialize_seq(VecVisitor)
    }

    struct VecVisitor;

    impl<'de> Visitor<'de> for VecVisitor {
        type Value = Vec<Vec<u8>>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a sequence of byte strings")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Vec<u8>>, A::Error> {
            // Cap the preallocation: the length prefix is untrusted.
            let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
            while let Some(OwnedElem(e)) = seq.next_element()? {
                v.push(e);
            }
            Ok(v)
        }
    }
}
