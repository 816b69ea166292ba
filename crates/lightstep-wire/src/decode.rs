//! Decoding: a message held in memory, consumed field by field, by prost 0.14's rules.
//!
//! The rules are prost's so that whoever decodes with this crate accepts exactly what prost
//! accepts: varints of at most ten bytes whose tenth is at most 1, keys that fit in 32 bits with
//! a valid wire type and a non-zero number, lengths within their message, unknown fields
//! (groups included) skipped, and the same recursion limit counted the same way. The receiver's
//! property tests compare its walk, built on this, with prost on valid, corrupted and arbitrary
//! requests. Nothing here allocates, errors included.

use crate::schema::{Field, Kind, Msg};
use crate::{WireError, WireType};

type Result<T, E = WireError> = std::result::Result<T, E>;

/// prost's `RECURSION_LIMIT`: how deep messages (and groups) may nest below the outermost one.
pub const RECURSION_LIMIT: u32 = 100;

/// The bytes of one message, consumed field by field.
#[derive(Clone, Copy, Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over the content of one message.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    /// Whether the message has no more fields.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// What is left of the message.
    pub fn rest(&self) -> &'a [u8] {
        self.buf
    }

    /// prost's `decode_varint`: at most ten bytes, the tenth at most 1.
    #[inline(always)]
    pub fn varint(&mut self) -> Result<u64> {
        // Keys, lengths of short strings and small integers: one byte.
        match self.buf {
            [byte, rest @ ..] if *byte < 0x80 => {
                self.buf = rest;
                Ok(u64::from(*byte))
            }
            _ => self.long_varint(),
        }
    }

    #[inline(never)]
    fn long_varint(&mut self) -> Result<u64> {
        let mut value = 0u64;
        for (i, &byte) in self.buf.iter().take(10).enumerate() {
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                if i == 9 && byte >= 0x02 {
                    break;
                }
                self.buf = &self.buf[i + 1..];
                return Ok(value);
            }
        }
        Err(WireError::VARINT)
    }

    /// prost's `decode_key`: the field number and wire type of the next field.
    #[inline(always)]
    pub fn key(&mut self) -> Result<(u32, WireType)> {
        split_key(self.varint()?)
    }

    /// The next key, or `None` at the end of the message.
    #[inline(always)]
    pub fn next_key(&mut self) -> Result<Option<(u32, WireType)>> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        self.key().map(Some)
    }

    /// The next `len` bytes.
    #[inline(always)]
    pub fn take(&mut self, len: u64) -> Result<&'a [u8]> {
        let len = usize::try_from(len).map_err(|_| WireError::TRUNCATED)?;
        if len > self.buf.len() {
            return Err(WireError::TRUNCATED);
        }
        let (head, rest) = self.buf.split_at(len);
        self.buf = rest;
        Ok(head)
    }

    /// The contents of a length-delimited field (string, bytes or message).
    #[inline(always)]
    pub fn len_delimited(&mut self) -> Result<&'a [u8]> {
        let len = self.varint()?;
        self.take(len)
    }

    /// A `fixed32` field's value.
    #[inline(always)]
    pub fn fixed32(&mut self) -> Result<u32> {
        let bytes = self.take(4)?;
        Ok(u32::from_le_bytes(bytes.try_into().unwrap_or_default()))
    }

    /// A `fixed64` (or `double`, as bits) field's value.
    #[inline(always)]
    pub fn fixed64(&mut self) -> Result<u64> {
        let bytes = self.take(8)?;
        Ok(u64::from_le_bytes(bytes.try_into().unwrap_or_default()))
    }

    /// prost's `skip_field`: skips a field of `wire_type` whose key (field `tag`) was read.
    /// `depth` is the recursion budget of the enclosing message: [`RECURSION_LIMIT`] for the
    /// outermost, one less per level of nesting.
    #[inline(never)]
    pub fn skip(&mut self, wire_type: WireType, tag: u32, depth: u32) -> Result<()> {
        if depth == 0 {
            return Err(WireError::RECURSION);
        }
        match wire_type {
            WireType::Varint => self.varint().map(drop),
            WireType::SixtyFourBit => self.take(8).map(drop),
            WireType::ThirtyTwoBit => self.take(4).map(drop),
            WireType::LengthDelimited => self.len_delimited().map(drop),
            WireType::StartGroup => loop {
                let (inner_tag, inner_type) = self.key()?;
                if inner_type == WireType::EndGroup {
                    if inner_tag != tag {
                        return Err(WireError::END_GROUP_MISMATCH);
                    }
                    return Ok(());
                }
                self.skip(inner_type, inner_tag, depth - 1)?;
            },
            WireType::EndGroup => Err(WireError::END_GROUP_UNEXPECTED),
        }
    }

    /// Reads the next field of a `msg` message whose fields have recursion budget `depth`, as
    /// the schema says it is: its wire type checked, scalars read, strings checked for UTF-8,
    /// unknown fields skipped (returned as `None` with no bytes). Returns the field number,
    /// the field, and the contents of strings, bytes, fixed-width values and messages. A message
    /// field is only checked against the recursion limit: the caller walks it, with
    /// `depth - 1`, or calls [`validate`].
    #[inline(always)]
    pub fn field(
        &mut self,
        msg: Msg,
        depth: u32,
    ) -> Result<(u32, Option<&'static Field>, &'a [u8])> {
        let (tag, wire_type) = self.key()?;
        let Some(field) = msg.field(tag) else {
            self.skip(wire_type, tag, depth)?;
            return Ok((tag, None, &[]));
        };
        // One match on the kind, each arm checking its own wire type.
        let expect = |wire: WireType| {
            if wire_type == wire {
                Ok(())
            } else {
                Err(WireError::WRONG_WIRE_TYPE)
            }
        };
        let value = match field.kind {
            Kind::Int32 | Kind::Int64 | Kind::Uint32 | Kind::Bool | Kind::Enum(_) => {
                expect(WireType::Varint)?;
                self.varint()?;
                &[][..]
            }
            Kind::Fixed32 => {
                expect(WireType::ThirtyTwoBit)?;
                self.take(4)?
            }
            Kind::Fixed64 | Kind::Double => {
                expect(WireType::SixtyFourBit)?;
                self.take(8)?
            }
            Kind::Bytes | Kind::Id => {
                expect(WireType::LengthDelimited)?;
                self.len_delimited()?
            }
            Kind::String => {
                expect(WireType::LengthDelimited)?;
                let value = self.len_delimited()?;
                // Most strings are short and ASCII: an OR over the bytes (which vectorizes, and
                // is inlined, unlike `is_ascii`) settles those without `from_utf8`.
                let ascii = value.iter().fold(0u8, |acc, b| acc | b) < 0x80;
                if !ascii && std::str::from_utf8(value).is_err() {
                    return Err(WireError::NOT_UTF8);
                }
                value
            }
            Kind::Message(_) => {
                expect(WireType::LengthDelimited)?;
                if depth == 0 {
                    return Err(WireError::RECURSION);
                }
                self.len_delimited()?
            }
        };
        Ok((tag, Some(field), value))
    }
}

/// prost's `decode_key` on a key already read as a varint (by a reader that streams its input).
#[inline(always)]
pub fn split_key(key: u64) -> Result<(u32, WireType)> {
    let key = u32::try_from(key).map_err(|_| WireError::KEY)?;
    let wire_type = match key & 7 {
        0 => WireType::Varint,
        1 => WireType::SixtyFourBit,
        2 => WireType::LengthDelimited,
        3 => WireType::StartGroup,
        4 => WireType::EndGroup,
        5 => WireType::ThirtyTwoBit,
        _ => return Err(WireError::WIRE_TYPE),
    };
    let tag = key >> 3;
    if tag == 0 {
        return Err(WireError::TAG_ZERO);
    }
    Ok((tag, wire_type))
}

/// Checks that `bytes` decode as a `msg` message (as prost would decode them) whose fields
/// have recursion budget `depth`: [`RECURSION_LIMIT`] for a message decoded on its own.
pub fn validate(msg: Msg, bytes: &[u8], depth: u32) -> Result<()> {
    // One copy of the loop per message, each with its table known at compile time.
    match msg {
        Msg::Request => validate_as::<0>(bytes, depth),
        Msg::ResourceSpans => validate_as::<1>(bytes, depth),
        Msg::ScopeSpans => validate_as::<2>(bytes, depth),
        Msg::Span => validate_as::<3>(bytes, depth),
        Msg::Event => validate_as::<4>(bytes, depth),
        Msg::Link => validate_as::<5>(bytes, depth),
        Msg::Status => validate_as::<6>(bytes, depth),
        Msg::Resource => validate_as::<7>(bytes, depth),
        Msg::EntityRef => validate_as::<8>(bytes, depth),
        Msg::Scope => validate_as::<9>(bytes, depth),
        Msg::KeyValue => validate_as::<10>(bytes, depth),
        Msg::AnyValue => validate_as::<11>(bytes, depth),
        Msg::ArrayValue => validate_as::<12>(bytes, depth),
        Msg::KeyValueList => validate_as::<13>(bytes, depth),
    }
}

fn validate_as<const M: u8>(bytes: &[u8], depth: u32) -> Result<()> {
    let msg = Msg::ALL[M as usize];
    let mut reader = Reader::new(bytes);
    while !reader.is_empty() {
        if let (
            _,
            Some(Field {
                kind: Kind::Message(inner),
                ..
            }),
            value,
        ) = reader.field(msg, depth)?
        {
            validate(*inner, value, depth - 1)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
