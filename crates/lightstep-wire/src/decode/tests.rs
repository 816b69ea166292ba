//! The primitives against prost's own: the same value, the same bytes consumed, the same verdict.

use opentelemetry_proto::tonic::common::v1::AnyValue;
use proptest::prelude::*;
use prost::Message as _;
use prost::encoding::{DecodeContext, decode_key, decode_varint, encode_varint, skip_field};

use super::*;

/// A value read, and how many bytes were left after it.
type ReadAndLeft = (u64, usize);

/// Reads a varint with ours and with prost's: both values (or errors) and what is left.
fn both_varints(bytes: &[u8]) -> (Result<ReadAndLeft>, Option<ReadAndLeft>) {
    let mut ours = Reader::new(bytes);
    let ours = ours.varint().map(|v| (v, ours.rest().len()));
    let mut theirs = bytes;
    let theirs = decode_varint(&mut theirs).ok().map(|v| (v, theirs.len()));
    (ours, theirs)
}

#[test]
fn varints_round_trip_at_every_length() {
    let mut values = vec![0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX];
    values.extend((0..64).map(|shift| 1u64 << shift));
    values.extend((1..64).map(|shift| (1u64 << shift) - 1));
    for value in values {
        let mut bytes = Vec::new();
        encode_varint(value, &mut bytes);
        bytes.push(0x55);
        let mut reader = Reader::new(&bytes);
        assert_eq!(reader.varint(), Ok(value));
        assert_eq!(reader.rest(), [0x55], "{value}: one byte left");
    }
}

#[test]
fn overlong_overflowing_and_truncated_varints_are_refused() {
    let mut max = vec![0xff; 9];
    max.push(0x01);
    assert_eq!(Reader::new(&max).varint(), Ok(u64::MAX));
    for bad in [
        &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02][..], // 65 bits
        &[0x80; 11][..],                                                   // eleven bytes
        &[
            0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00,
        ][..],
        &[0x80][..], // cut short
        &[][..],
    ] {
        assert_eq!(
            Reader::new(bad).varint(),
            Err(WireError::VARINT),
            "{bad:02x?}"
        );
        assert_eq!(both_varints(bad).1, None, "prost agrees on {bad:02x?}");
    }
}

#[test]
fn keys_need_a_valid_wire_type_and_a_non_zero_tag() {
    assert_eq!(
        Reader::new(&[0x0a]).key(),
        Ok((1, WireType::LengthDelimited))
    );
    assert_eq!(Reader::new(&[0x00]).key(), Err(WireError::TAG_ZERO));
    assert_eq!(Reader::new(&[0x0e]).key(), Err(WireError::WIRE_TYPE));
    assert_eq!(Reader::new(&[0x0f]).key(), Err(WireError::WIRE_TYPE));
    // 2^32: one past the largest key.
    assert_eq!(
        Reader::new(&[0x80, 0x80, 0x80, 0x80, 0x10]).key(),
        Err(WireError::KEY)
    );
    assert_eq!(Reader::new(&[]).next_key(), Ok(None));
}

#[test]
fn lengths_and_fixed_fields_stay_within_their_message() {
    let mut reader = Reader::new(&[0x03, b'a', b'b']);
    assert_eq!(reader.len_delimited(), Err(WireError::TRUNCATED));
    let mut reader = Reader::new(&[1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(reader.fixed32(), Ok(1));
    assert_eq!(reader.fixed64(), Ok(2));
    assert_eq!(reader.fixed32(), Err(WireError::TRUNCATED));
    assert_eq!(Reader::new(&[0; 7]).fixed64(), Err(WireError::TRUNCATED));
    assert_eq!(Reader::new(&[]).take(u64::MAX), Err(WireError::TRUNCATED));
}

/// Skips the first field of `bytes` in a message decoded on its own, with ours and with
/// prost's `skip_field`.
fn both_skips(bytes: &[u8]) -> (Result<usize>, Option<usize>) {
    let mut ours = Reader::new(bytes);
    let ours = ours
        .key()
        .and_then(|(tag, wire)| ours.skip(wire, tag, RECURSION_LIMIT))
        .map(|()| ours.rest().len());
    let mut theirs = bytes;
    let theirs = decode_key(&mut theirs)
        .and_then(|(tag, wire)| skip_field(wire, tag, &mut theirs, DecodeContext::default()))
        .ok()
        .map(|()| theirs.len());
    (ours, theirs)
}

#[test]
fn groups_are_skipped_whole_and_must_close_with_their_own_tag() {
    // group 19 { 1: 1 } then a byte of the next field.
    let group = [0x9b, 0x01, 0x08, 0x01, 0x9c, 0x01, 0x55];
    assert_eq!(both_skips(&group), (Ok(1), Some(1)));
    // Closed as group 20.
    let mismatched = [0x9b, 0x01, 0x08, 0x01, 0xa4, 0x01];
    assert_eq!(
        both_skips(&mismatched),
        (Err(WireError::END_GROUP_MISMATCH), None)
    );
    // An end without a start, and a group that never ends.
    assert_eq!(
        both_skips(&[0x0c]),
        (Err(WireError::END_GROUP_UNEXPECTED), None)
    );
    assert_eq!(both_skips(&[0x0b, 0x08, 0x01]).1, None);
    assert!(both_skips(&[0x0b, 0x08, 0x01]).0.is_err());
}

#[test]
fn groups_nested_at_and_beyond_the_recursion_limit_are_judged_like_prost() {
    for depth in [1, 50, 98, 99, 100, 101, 150] {
        let mut bytes = vec![0x0b; depth];
        bytes.extend(std::iter::repeat_n(0x0c, depth));
        let (ours, theirs) = both_skips(&bytes);
        assert_eq!(ours.ok(), theirs, "{depth} nested groups");
        if depth > 100 {
            assert_eq!(ours, Err(WireError::RECURSION));
        }
    }
}

#[test]
fn messages_nested_at_and_beyond_the_recursion_limit_are_judged_like_prost() {
    for depth in [10, 48, 49, 50, 51, 52, 80] {
        // `intValue: 1`, then `depth` times wrapped in an `arrayValue` of one value.
        let mut bytes = vec![0x18, 0x01];
        for _ in 0..depth {
            let mut array = Vec::new();
            prost::encoding::bytes::encode(1, &bytes, &mut array);
            bytes.clear();
            prost::encoding::bytes::encode(5, &array, &mut bytes);
        }
        let ours = validate(Msg::AnyValue, &bytes, RECURSION_LIMIT);
        let theirs = AnyValue::decode(bytes.as_slice());
        assert_eq!(ours.is_ok(), theirs.is_ok(), "{depth} nested arrays");
        assert_eq!(
            ours.is_err(),
            depth > 50,
            "{depth} nested arrays: two levels each"
        );
        if ours.is_err() {
            assert_eq!(ours, Err(WireError::RECURSION));
        }
    }
}

#[test]
fn a_known_field_of_the_wrong_wire_type_or_bad_utf8_is_refused() {
    // Span.name (5) as a varint; then as a string that is not UTF-8.
    assert_eq!(
        validate(Msg::Span, &[0x28, 0x01], RECURSION_LIMIT),
        Err(WireError::WRONG_WIRE_TYPE)
    );
    assert_eq!(
        validate(Msg::Span, &[0x2a, 0x01, 0xff], RECURSION_LIMIT),
        Err(WireError::NOT_UTF8)
    );
    // An unknown field of any wire type is skipped.
    assert_eq!(
        validate(
            Msg::Span,
            &[0xa8, 0x01, 0x05, 0xb2, 0x01, 0x01, 0xff],
            RECURSION_LIMIT
        ),
        Ok(())
    );
}

proptest! {
    /// Any bytes: our varint is prost's, value and length.
    #[test]
    fn varints_decode_as_prost_decodes_them(bytes in proptest::collection::vec(any::<u8>(), 0..12)) {
        let (ours, theirs) = both_varints(&bytes);
        prop_assert_eq!(ours.ok(), theirs);
    }

    /// Any bytes as a field to skip: the same verdict as prost, and the same bytes consumed.
    #[test]
    fn skipping_agrees_with_prost(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let (ours, theirs) = both_skips(&bytes);
        prop_assert_eq!(ours.ok(), theirs);
    }

    /// Any bytes as an `AnyValue`: valid exactly when prost decodes them.
    #[test]
    fn any_values_validate_as_prost_decodes_them(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let ours = validate(Msg::AnyValue, &bytes, RECURSION_LIMIT);
        let theirs = AnyValue::decode(bytes.as_slice());
        prop_assert_eq!(ours.is_ok(), theirs.is_ok());
    }
}
