//! Encoding: varints and keys by prost's rules, prost's length helpers, and a length prefix
//! written after what it measures.
//!
//! The encoders of this workspace write messages field by field into one `Vec<u8>` instead of
//! building prost structs first. A nested message's length comes before its content but is only
//! known once the content is written: [`begin_len`] reserves a guess of the prefix's size,
//! [`end_len`] writes the length and moves the content by the difference when the guess was
//! wrong. The output is canonical protobuf (minimal varints), byte for byte what prost writes.

use crate::WireType;

pub use prost::encoding::{encoded_len_varint, key_len};

/// Appends `value` as a varint: prost's `encode_varint` for a `Vec`, always inlined (prost's
/// is generic over its buffer and was left out of line in the exporter's loop, 6% more
/// instructions per span).
#[inline(always)]
pub fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Appends the key of field `tag` with `wire_type`: prost's `encode_key` for a `Vec`.
#[inline(always)]
pub fn put_key(out: &mut Vec<u8>, tag: u32, wire_type: WireType) {
    put_varint(out, u64::from((tag << 3) | wire_type as u32));
}

/// Reserves `guess` bytes for the length of a length-delimited field whose key was just
/// written and whose content follows. Returns where the reservation starts, for [`end_len`].
#[inline(always)]
pub fn begin_len(out: &mut Vec<u8>, guess: usize) -> usize {
    let at = out.len();
    out.resize(at + guess, 0);
    at
}

/// Writes the length of the content written since [`begin_len`] returned `at` (with the same
/// `guess`), as a minimal varint, moving the content when its size differs from the guess.
/// The content only moves forward when the guess was too small: a caller that must not grow
/// `out` past its capacity guesses the most it can need (five bytes for any length under
/// 32 GiB).
#[inline(always)]
pub fn end_len(out: &mut Vec<u8>, at: usize, guess: usize) {
    let body_start = at + guess;
    let len = out.len() - body_start;
    let need = encoded_len_varint(len as u64);
    if need != guess {
        if need > guess {
            out.resize(out.len() + need - guess, 0);
        }
        out.copy_within(body_start..body_start + len, at + need);
        out.truncate(at + need + len);
    }
    let mut v = len as u64;
    for slot in &mut out[at..at + need] {
        *slot = (v as u8 & 0x7f) | 0x80;
        v >>= 7;
    }
    out[at + need - 1] &= 0x7f;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Reader;

    /// Every varint length, and keys of the smallest and largest field numbers: the bytes
    /// prost's encoders write.
    #[test]
    fn varints_and_keys_are_the_bytes_prost_writes() {
        let mut values = vec![0, 1, 127, 128, u64::MAX];
        values.extend((0..64).map(|shift| 1u64 << shift));
        for value in values {
            let (mut ours, mut theirs) = (Vec::new(), Vec::new());
            put_varint(&mut ours, value);
            prost::encoding::encode_varint(value, &mut theirs);
            assert_eq!(ours, theirs, "{value}");
            assert_eq!(ours.len(), encoded_len_varint(value));
        }
        for tag in [1, 15, 16, 2047, 2048, (1 << 29) - 1] {
            let (mut ours, mut theirs) = (Vec::new(), Vec::new());
            put_key(&mut ours, tag, WireType::ThirtyTwoBit);
            prost::encoding::encode_key(tag, WireType::ThirtyTwoBit, &mut theirs);
            assert_eq!(ours, theirs, "{tag}");
            assert_eq!(ours.len(), key_len(tag));
        }
    }

    /// A length-delimited field written with every guess, for contents whose length takes one
    /// to three bytes: the bytes prost writes for the same field, and they decode back.
    #[test]
    fn length_prefixes_are_canonical_whatever_the_guess() {
        for len in [0usize, 1, 127, 128, 300, 16_383, 16_384, 70_000] {
            let content: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut expected = vec![0xaa];
            prost::encoding::bytes::encode(9, &content, &mut expected);
            for guess in 1..=5 {
                let mut out = vec![0xaa];
                put_key(&mut out, 9, WireType::LengthDelimited);
                let at = begin_len(&mut out, guess);
                out.extend_from_slice(&content);
                end_len(&mut out, at, guess);
                assert_eq!(out, expected, "length {len}, guess {guess}");
                let mut reader = Reader::new(&out[1..]);
                assert_eq!(reader.key(), Ok((9, WireType::LengthDelimited)));
                assert_eq!(reader.len_delimited(), Ok(&content[..]));
                assert!(reader.is_empty());
            }
        }
    }

    /// With a five-byte guess the output never grows past what `begin_len` reserved.
    #[test]
    fn a_large_enough_guess_never_grows_the_buffer() {
        let mut out = Vec::with_capacity(5 + 1000);
        let at = begin_len(&mut out, 5);
        out.extend_from_slice(&[7; 1000]);
        let capacity = out.capacity();
        end_len(&mut out, at, 5);
        assert_eq!(out.capacity(), capacity);
        assert_eq!(out.len(), 2 + 1000);
    }
}
