//! OTLP/JSON decoding: transcoded in one pass into the protobuf encoding of the same request.
//!
//! An OTLP/JSON body becomes the bytes of the `ExportTraceServiceRequest` it describes, which
//! then take the protobuf path ([`crate::wire`], the store). Nothing is built in between, so
//! the memory decoding takes is known before it starts ([`working_memory`]) and is charged to
//! the in-flight budget with the body: the output buffer, allocated once (the protobuf encoding
//! of OTLP/JSON is at most a little larger than the JSON, see [`output_capacity`]), and
//! serde_json's scratch buffer for escaped strings and skipped values. The previous decoder (ADR 202: a
//! `serde_json::Value`, then `opentelemetry-proto`'s structs) took about 14 times the body for
//! a typical export and over 200 times for a body of empty objects, none of it charged.
//!
//! What is accepted is `opentelemetry-proto`'s serde mapping (lowerCamelCase names, ids as hex
//! in either case, 64-bit integers as strings or numbers, enums as integers, unknown fields
//! ignored) plus what the protobuf JSON mapping allows and real senders write: `null` for an
//! absent field, `{}` for an empty `arrayValue`/`kvlistValue`, a key/value without `key`, enum
//! names (`"SPAN_KIND_SERVER"`) and 32-bit integers as strings. `NaN` and `Infinity` as
//! `doubleValue` are refused, as by that mapping. The tests compare this module with that
//! mapping on the OTLP specification's example and on generated and corrupted requests. It
//! differs on purpose where the mapping silently kept one of two values (a field given twice
//! in one object, an `AnyValue` with two values: refused here), where serde accepted a struct
//! written as an array (refused here), and for `"key": null` (an empty key here, as without
//! `key`; refused there). See `docs/adr/204-receiver-otlp-json-transcoded.md`.
//!
//! Which fields each message has, their numbers, OTLP/JSON names and kinds come from
//! [`lightstep_wire::schema`], the tables the protobuf walk reads too: a field is added there,
//! once, for both.

use std::fmt;

use base64::Engine as _;
use lightstep_wire::WireType;
use lightstep_wire::encode::{
    begin_len, encoded_len_varint, end_len, key_len, put_key, put_varint,
};
use lightstep_wire::schema::{Field, Kind, Msg, any_value};
use serde::Deserialize as _;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// The capacity of the output buffer for a body of `len` bytes, fixed before decoding starts.
///
/// Every field costs at least as many bytes in JSON as in protobuf, but for one: a negative
/// `kind` or `code` (`"kind":-1`, 9 bytes) takes an 11-byte protobuf field, so that a span
/// `{"kind":-1},` (12 bytes) becomes 13. A quarter more than the body covers that, and the
/// fixed part the 5-byte length placeholders of the messages still open (at most serde_json's
/// nesting limit of 128). Decoding that would need more is refused rather than let the buffer
/// grow.
pub(crate) fn output_capacity(len: usize) -> usize {
    len.saturating_add(len / 4).saturating_add(1024)
}

/// What transcoding a body of `len` bytes allocates at most, besides the body: the output
/// buffer, and serde_json's scratch buffer, which holds the longest escaped string or the
/// nesting of a skipped value and grows by doubling (less than `2 * len + 8` bytes).
pub(crate) fn working_memory(len: usize) -> usize {
    output_capacity(len)
        .saturating_add(len.saturating_mul(2))
        .saturating_add(8)
}

/// Transcodes an OTLP/JSON `ExportTraceServiceRequest` into its protobuf encoding.
pub(crate) fn to_protobuf(body: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Out {
        buf: Vec::with_capacity(output_capacity(body.len())),
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    let message = MessageSeed {
        msg: Msg::Request,
        out: &mut out,
    };
    message
        .deserialize(&mut de)
        .and_then(|()| de.end())
        .map_err(|e| error_message(&e))?;
    Ok(out.buf)
}

/// The longest error message kept: serde's messages quote the offending value whole
/// (`invalid type: string "..."`), which may be most of the body, and the message is both sent
/// back and kept in the request records, neither of them charged to any budget.
const MAX_ERROR_MESSAGE: usize = 512;

/// `e` as an error message of at most about [`MAX_ERROR_MESSAGE`] bytes, cut without
/// formatting the rest, with the position serde_json reports.
fn error_message(e: &serde_json::Error) -> String {
    /// A writer that takes `MAX_ERROR_MESSAGE` bytes (on a character boundary), then fails.
    struct Bounded(String, bool);

    impl fmt::Write for Bounded {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            let room = MAX_ERROR_MESSAGE.saturating_sub(self.0.len());
            if s.len() <= room {
                self.0.push_str(s);
                return Ok(());
            }
            let mut end = room;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            self.0.push_str(&s[..end]);
            self.1 = true;
            Err(fmt::Error)
        }
    }

    let mut message = Bounded(String::with_capacity(MAX_ERROR_MESSAGE + 64), false);
    // Only `Bounded` fails, when it is full.
    let _ = fmt::Write::write_fmt(&mut message, format_args!("invalid OTLP/JSON body: {e}"));
    let Bounded(mut message, cut) = message;
    if cut {
        message.push_str(&format!(
            "... (cut) at line {} column {}",
            e.line(),
            e.column()
        ));
    }
    message
}

/// Fields the serde mapping requires (it has no default for the struct): all of `EntityRef`'s.
fn required(msg: Msg) -> &'static [Field] {
    match msg {
        Msg::EntityRef => msg.fields(),
        _ => &[],
    }
}

/// Whether a field of the schema is skipped like an unknown one: `AnyValue`'s
/// `stringValueStrindex` points into the profiles signal's string table, and the OTLP
/// specification tells receivers of other signals to treat it as absent (the serde mapping
/// ignores it too).
fn unread(msg: Msg, field: &Field) -> bool {
    msg == Msg::AnyValue && field.number == any_value::STRING_VALUE_STRINDEX
}

/// The protobuf being written, within the capacity it was given.
struct Out {
    buf: Vec<u8>,
}

/// How many bytes a length placeholder takes: enough for any body under 32 GiB (the request
/// size limit is a u32), so that closing a message never grows the buffer.
const LEN_PLACEHOLDER: usize = 5;

impl Out {
    fn room<E: de::Error>(&self, n: usize) -> Result<(), E> {
        if self.buf.capacity() - self.buf.len() < n {
            return Err(E::custom(
                "the body's protobuf encoding outgrew its reservation",
            ));
        }
        Ok(())
    }

    fn bytes<E: de::Error>(&mut self, bytes: &[u8]) -> Result<(), E> {
        self.room(bytes.len())?;
        self.buf.extend_from_slice(bytes);
        Ok(())
    }

    fn varint<E: de::Error>(&mut self, value: u64) -> Result<(), E> {
        self.room(encoded_len_varint(value))?;
        put_varint(&mut self.buf, value);
        Ok(())
    }

    fn key<E: de::Error>(&mut self, tag: u32, wire: WireType) -> Result<(), E> {
        self.room(key_len(tag))?;
        put_key(&mut self.buf, tag, wire);
        Ok(())
    }

    /// A length-delimited field of `len` bytes that follow.
    fn len_field<E: de::Error>(&mut self, tag: u32, bytes: &[u8]) -> Result<(), E> {
        self.key(tag, WireType::LengthDelimited)?;
        self.varint(bytes.len() as u64)?;
        self.bytes(bytes)
    }

    /// Starts a length-delimited field whose length is not known yet: its key, then a
    /// placeholder for the length. Returns where the placeholder is, for [`close`](Self::close).
    fn open<E: de::Error>(&mut self, tag: u32) -> Result<usize, E> {
        self.key(tag, WireType::LengthDelimited)?;
        self.room(LEN_PLACEHOLDER)?;
        Ok(begin_len(&mut self.buf, LEN_PLACEHOLDER))
    }

    /// Writes the length of the field opened at `at` and moves its content up to it.
    fn close(&mut self, at: usize) {
        end_len(&mut self.buf, at, LEN_PLACEHOLDER);
    }
}

/// One message: a JSON object, written as the content of a protobuf message (the caller
/// writes its key and length). An `AnyValue` is a `oneof`: at most one of its fields holds a
/// value, and that one is written even when it is its type's default.
struct MessageSeed<'o> {
    msg: Msg,
    out: &'o mut Out,
}

impl<'de> DeserializeSeed<'de> for MessageSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for MessageSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an OTLP {:?} object", self.msg)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let oneof = self.msg == Msg::AnyValue;
        // Field numbers are at most 16: one bit each.
        let mut given = 0u32;
        let mut present = 0u32;
        while let Some(field) = map.next_key_seed(FieldName(self.msg))? {
            let Some(field) = field else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            let bit = 1u32 << field.number;
            // In an `AnyValue` a repeated name is a second value, refused below.
            if !oneof && given & bit != 0 {
                return Err(de::Error::custom(format_args!(
                    "duplicate field `{}`",
                    field.json
                )));
            }
            given |= bit;
            let seed = FieldSeed {
                field,
                always: oneof,
                out: &mut *self.out,
            };
            if map.next_value_seed(seed)? {
                if oneof && present != 0 {
                    return Err(de::Error::custom("an AnyValue holds one value, not two"));
                }
                present |= bit;
            }
        }
        for field in required(self.msg) {
            if present & (1 << field.number) == 0 {
                return Err(de::Error::custom(format_args!(
                    "missing field `{}`",
                    field.json
                )));
            }
        }
        Ok(())
    }
}

/// A field name of a message: the field, or `None` for one to skip.
struct FieldName(Msg);

impl<'de> DeserializeSeed<'de> for FieldName {
    type Value = Option<&'static Field>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for FieldName {
    type Value = Option<&'static Field>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<Self::Value, E> {
        Ok(self
            .0
            .field_named(name)
            .filter(|field| !unread(self.0, field)))
    }
}

/// The value of a known field, written even when it is its type's default with `always` (the
/// fields of a `oneof`). Returns whether it was present (not `null`).
struct FieldSeed<'o> {
    field: &'static Field,
    always: bool,
    out: &'o mut Out,
}

impl<'de> DeserializeSeed<'de> for FieldSeed<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        // `null` is an absent field, whatever its kind.
        deserializer.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for FieldSeed<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field value")
    }

    fn visit_none<E: de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        let (tag, always, out) = (self.field.number, self.always, self.out);
        if self.field.repeated {
            deserializer.deserialize_seq(Repeated {
                field: self.field,
                out,
            })?;
            return Ok(true);
        }
        match self.field.kind {
            Kind::Message(msg) => {
                let at = out.open(tag)?;
                MessageSeed {
                    msg,
                    out: &mut *out,
                }
                .deserialize(deserializer)?;
                out.close(at);
            }
            Kind::String => deserializer.deserialize_str(StrSeed { tag, always, out })?,
            Kind::Id => deserializer.deserialize_str(HexSeed { tag, out })?,
            Kind::Bytes => deserializer.deserialize_str(Base64Seed { tag, always, out })?,
            Kind::Fixed64 => {
                let time = deserializer.deserialize_any(U64Seed)?;
                if always || time != 0 {
                    out.key(tag, WireType::SixtyFourBit)?;
                    out.bytes(&time.to_le_bytes())?;
                }
            }
            Kind::Double => {
                let d = f64::deserialize(deserializer)?;
                // proto3 omits 0.0 and -0.0 alike.
                if always || d.to_bits() << 1 != 0 {
                    out.key(tag, WireType::SixtyFourBit)?;
                    out.bytes(&d.to_bits().to_le_bytes())?;
                }
            }
            Kind::Bool => {
                let b = bool::deserialize(deserializer)?;
                if always || b {
                    out.key(tag, WireType::Varint)?;
                    out.varint(u64::from(b))?;
                }
            }
            Kind::Int64 => {
                let n = deserializer.deserialize_any(I64Seed)?;
                if always || n != 0 {
                    out.key(tag, WireType::Varint)?;
                    out.varint(n as u64)?;
                }
            }
            Kind::Uint32 | Kind::Fixed32 => {
                let n = deserializer.deserialize_any(Int32Seed {
                    strings: true,
                    names: &[],
                })?;
                let n = u32::try_from(n)
                    .map_err(|_| de::Error::invalid_value(de::Unexpected::Signed(n), &"a u32"))?;
                if always || n != 0 {
                    if self.field.kind == Kind::Fixed32 {
                        out.key(tag, WireType::ThirtyTwoBit)?;
                        out.bytes(&n.to_le_bytes())?;
                    } else {
                        out.key(tag, WireType::Varint)?;
                        out.varint(u64::from(n))?;
                    }
                }
            }
            Kind::Enum(values) => {
                let n = deserializer.deserialize_any(Int32Seed {
                    strings: true,
                    names: values.names(),
                })?;
                write_int32(out, tag, n, always)?;
            }
            // Given as a number only, as the serde mapping reads it.
            Kind::Int32 => {
                let n = deserializer.deserialize_any(Int32Seed {
                    strings: false,
                    names: &[],
                })?;
                write_int32(out, tag, n, always)?;
            }
        }
        Ok(true)
    }
}

/// An int32 field (omitted when 0 unless `always`), as protobuf writes it: negative values
/// sign-extended to ten bytes.
fn write_int32<E: de::Error>(out: &mut Out, tag: u32, n: i64, always: bool) -> Result<(), E> {
    let n = i32::try_from(n).map_err(|_| E::invalid_value(de::Unexpected::Signed(n), &"an i32"))?;
    if always || n != 0 {
        out.key(tag, WireType::Varint)?;
        out.varint(i64::from(n) as u64)?;
    }
    Ok(())
}

/// A JSON array: one protobuf field per element (messages and strings are the only repeated
/// fields of the trace messages).
struct Repeated<'o> {
    field: &'static Field,
    out: &'o mut Out,
}

impl<'de> Visitor<'de> for Repeated<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let (tag, out) = (self.field.number, self.out);
        loop {
            let more = match self.field.kind {
                Kind::Message(msg) => seq
                    .next_element_seed(Framed {
                        tag,
                        msg,
                        out: &mut *out,
                    })?
                    .is_some(),
                _ => seq
                    .next_element_seed(StrElement {
                        tag,
                        out: &mut *out,
                    })?
                    .is_some(),
            };
            if !more {
                return Ok(());
            }
        }
    }
}

/// One message element of a repeated field, with its key and length.
struct Framed<'o> {
    tag: u32,
    msg: Msg,
    out: &'o mut Out,
}

impl<'de> DeserializeSeed<'de> for Framed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        let at = self.out.open(self.tag)?;
        MessageSeed {
            msg: self.msg,
            out: &mut *self.out,
        }
        .deserialize(deserializer)?;
        self.out.close(at);
        Ok(())
    }
}

/// One element of a repeated string field (written even when empty).
struct StrElement<'o> {
    tag: u32,
    out: &'o mut Out,
}

impl<'de> DeserializeSeed<'de> for StrElement<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_str(StrSeed {
            tag: self.tag,
            always: true,
            out: self.out,
        })
    }
}

/// A string field; omitted when empty unless `always` (repeated elements, `AnyValue`).
struct StrSeed<'o> {
    tag: u32,
    always: bool,
    out: &'o mut Out,
}

impl Visitor<'_> for StrSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<(), E> {
        if self.always || !s.is_empty() {
            self.out.len_field(self.tag, s.as_bytes())?;
        }
        Ok(())
    }
}

/// Bytes written as hex, either case, with an optional `0x` (as `const_hex`, which the serde
/// mapping uses, reads them). Omitted when empty.
struct HexSeed<'o> {
    tag: u32,
    out: &'o mut Out,
}

impl Visitor<'_> for HexSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string of hex digits")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<(), E> {
        let digits = s.as_bytes();
        if !digits.len().is_multiple_of(2) {
            return Err(E::custom("odd number of hex digits"));
        }
        let digits = match digits {
            [b'0', b'x' | b'X', rest @ ..] => rest,
            _ => digits,
        };
        if digits.is_empty() {
            return Ok(());
        }
        self.out.key(self.tag, WireType::LengthDelimited)?;
        self.out.varint((digits.len() / 2) as u64)?;
        self.out.room(digits.len() / 2)?;
        for pair in digits.chunks_exact(2) {
            let nibble = |c: u8| match c {
                b'0'..=b'9' => Ok(c - b'0'),
                b'a'..=b'f' => Ok(c - b'a' + 10),
                b'A'..=b'F' => Ok(c - b'A' + 10),
                _ => Err(E::custom(format_args!(
                    "invalid hex character {:?}",
                    char::from(c)
                ))),
            };
            self.out.buf.push(nibble(pair[0])? << 4 | nibble(pair[1])?);
        }
        Ok(())
    }
}

/// A u64: a non-negative integer, or a string holding one.
struct U64Seed;

impl Visitor<'_> for U64Seed {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a u64 integer or a string holding one")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
        Ok(v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
        u64::try_from(v).map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
        v.parse().map_err(E::custom)
    }
}

/// An integer for a 32-bit field, range-checked by the caller: a number, or (with `strings`)
/// a string holding one or naming one of `names`.
struct Int32Seed {
    strings: bool,
    names: &'static [&'static str],
}

impl Visitor<'_> for Int32Seed {
    type Value = i64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an integer")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
        i64::try_from(v).map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
        Ok(v)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<i64, E> {
        if !self.strings {
            return Err(E::invalid_type(de::Unexpected::Str(v), &self));
        }
        v.parse::<i64>()
            .ok()
            .or_else(|| {
                let i = self.names.iter().position(|n| *n == v)?;
                i64::try_from(i).ok()
            })
            .ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
    }
}

/// An `intValue`: an i64, or a string holding one.
struct I64Seed;

impl Visitor<'_> for I64Seed {
    type Value = i64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an i64 integer or a string holding one")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
        i64::try_from(v).map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
        Ok(v)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<i64, E> {
        v.parse().map_err(E::custom)
    }
}

/// A `bytesValue`: standard base64 with padding, decoded straight into the output. Omitted
/// when empty unless `always`.
struct Base64Seed<'o> {
    tag: u32,
    always: bool,
    out: &'o mut Out,
}

impl Visitor<'_> for Base64Seed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a base64 string")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<(), E> {
        if !self.always && s.is_empty() {
            return Ok(());
        }
        let at = self.out.open(self.tag)?;
        let start = self.out.buf.len();
        let most = base64::decoded_len_estimate(s.len());
        self.out.room(most)?;
        self.out.buf.resize(start + most, 0);
        let n = base64::engine::general_purpose::STANDARD
            .decode_slice(s, &mut self.out.buf[start..])
            .map_err(E::custom)?;
        self.out.buf.truncate(start + n);
        self.out.close(at);
        Ok(())
    }
}

/// Decodes an OTLP/JSON request as the receiver does: transcoded, then decoded by prost.
#[cfg(test)]
pub(crate) fn decode_request(
    body: &[u8],
) -> Result<opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest, String> {
    let bytes = to_protobuf(body)?;
    prost::Message::decode(bytes.as_slice()).map_err(|e| format!("undecodable transcoding: {e}"))
}

/// The previous decoder, the reference this module is tested against: `opentelemetry-proto`'s
/// serde mapping, after a pass over a `serde_json::Value` that rewrites the protobuf JSON forms
/// the mapping refuses.
#[cfg(test)]
mod oracle {
    use lightstep_wire::schema::OtlpEnum;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use serde_json::{Map, Value};

    /// Decodes an OTLP/JSON `ExportTraceServiceRequest` as the receiver did before this module.
    pub(super) fn decode_request(body: &[u8]) -> Result<ExportTraceServiceRequest, String> {
        // serde_json refuses nesting deeper than 128 levels, which also bounds `normalize`'s
        // recursion.
        let mut value: Value =
            serde_json::from_slice(body).map_err(|e| format!("invalid OTLP/JSON body: {e}"))?;
        normalize(&mut value, None, false);
        serde_json::from_value(value).map_err(|e| format!("invalid OTLP/JSON body: {e}"))
    }

    /// 32-bit integer fields of the trace protos (plus the enums), which protobuf JSON allows as
    /// strings.
    const INT32_FIELDS: &[&str] = &[
        "droppedAttributesCount",
        "droppedEventsCount",
        "droppedLinksCount",
        "flags",
        "kind",
        "code",
    ];

    fn enum_value(field: &str, name: &str) -> Option<i64> {
        let names = match field {
            "kind" => OtlpEnum::SpanKind.names(),
            "code" => OtlpEnum::StatusCode.names(),
            _ => return None,
        };
        names
            .iter()
            .position(|n| *n == name)
            .and_then(|i| i64::try_from(i).ok())
    }

    /// Rewrites the protobuf-JSON forms listed in the module docs into what the serde mapping
    /// accepts. `key` is the field name the value sits under; `key_values` says that an array under
    /// `values` holds key/value pairs (inside a `kvlistValue`) rather than plain values.
    fn normalize(value: &mut Value, key: Option<&str>, key_values: bool) {
        match value {
            Value::Object(map) => {
                map.retain(|_, v| !v.is_null());
                if matches!(key, Some("arrayValue" | "kvlistValue")) {
                    map.entry("values")
                        .or_insert_with(|| Value::Array(Vec::new()));
                }
                fix_int32_fields(map);
                let in_kvlist = key == Some("kvlistValue");
                for (k, child) in map.iter_mut() {
                    normalize(child, Some(k.as_str()), in_kvlist);
                }
            }
            Value::Array(items) => {
                let holds_key_values =
                    key == Some("attributes") || (key == Some("values") && key_values);
                for item in items.iter_mut() {
                    if holds_key_values && let Value::Object(kv) = item {
                        kv.entry("key")
                            .or_insert_with(|| Value::String(String::new()));
                    }
                    normalize(item, None, false);
                }
            }
            _ => {}
        }
    }

    fn fix_int32_fields(map: &mut Map<String, Value>) {
        for field in INT32_FIELDS {
            if let Some(Value::String(s)) = map.get(*field) {
                let n = s.parse::<i64>().ok().or_else(|| enum_value(field, s));
                if let Some(n) = n {
                    map.insert((*field).to_owned(), Value::from(n));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lightstep_wire::schema::OtlpEnum;
    use opentelemetry_proto::tonic::common::v1::any_value::Value;

    /// The trace example of the OTLP specification's JSON encoding section, with 64-bit
    /// integers written both as strings and as numbers.
    const SPEC_EXAMPLE: &str = r#"{
      "resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "my.service"}}]},
        "scopeSpans": [{
          "scope": {"name": "my.library", "version": "1.0.0",
                    "attributes": [{"key": "my.scope.attribute", "value": {"stringValue": "some scope attribute"}}]},
          "spans": [{
            "traceId": "5B8EFFF798038103D269B633813FC60C",
            "spanId": "EEE19B7EC3C1B174",
            "parentSpanId": "EEE19B7EC3C1B173",
            "name": "I'm a server span",
            "startTimeUnixNano": "1544712660000000000",
            "endTimeUnixNano": 1544712661000000000,
            "kind": 2,
            "attributes": [
              {"key": "my.span.attr", "value": {"stringValue": "some value"}},
              {"key": "an.int", "value": {"intValue": "42"}},
              {"key": "a.number.int", "value": {"intValue": 7}},
              {"key": "a.double", "value": {"doubleValue": 1.5}},
              {"key": "a.bool", "value": {"boolValue": true}},
              {"key": "an.array", "value": {"arrayValue": {"values": [{"stringValue": "x"}]}}}
            ],
            "events": [{"timeUnixNano": "1544712660500000000", "name": "ev"}],
            "status": {"code": 2, "message": "boom"},
            "someFutureField": {"ignored": true}
          }]
        }]
      }]
    }"#;

    #[test]
    fn decodes_the_specification_example() {
        let req = decode_request(SPEC_EXAMPLE.as_bytes()).expect("decodes");
        let span = &req.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(span.trace_id[0], 0x5b);
        assert_eq!(span.trace_id.len(), 16);
        assert_eq!(span.span_id.len(), 8);
        assert_eq!(span.parent_span_id.len(), 8);
        assert_eq!(span.start_time_unix_nano, 1_544_712_660_000_000_000);
        assert_eq!(span.end_time_unix_nano, 1_544_712_661_000_000_000);
        assert_eq!(span.kind, 2);
        assert_eq!(span.events[0].time_unix_nano, 1_544_712_660_500_000_000);
        assert_eq!(span.status.as_ref().map(|s| s.code), Some(2));
        let attr = |k: &str| {
            span.attributes
                .iter()
                .find(|kv| kv.key == k)
                .and_then(|kv| kv.value.clone())
                .and_then(|v| v.value)
        };
        assert_eq!(attr("an.int"), Some(Value::IntValue(42)));
        assert_eq!(attr("a.number.int"), Some(Value::IntValue(7)));
        assert_eq!(attr("a.double"), Some(Value::DoubleValue(1.5)));
        assert_eq!(attr("a.bool"), Some(Value::BoolValue(true)));
        assert!(matches!(attr("an.array"), Some(Value::ArrayValue(a)) if a.values.len() == 1));
    }

    #[test]
    fn omitted_fields_take_their_defaults() {
        let req =
            decode_request(br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"n"}]}]}]}"#)
                .expect("decodes");
        let span = &req.resource_spans[0].scope_spans[0].spans[0];
        assert!(span.trace_id.is_empty() && span.parent_span_id.is_empty());
        assert!(
            decode_request(b"{}")
                .expect("empty")
                .resource_spans
                .is_empty()
        );
    }

    #[test]
    fn rejects_what_is_not_otlp_json() {
        for bad in [
            &b"not json"[..],
            br#"{"resourceSpans": 3}"#,
            br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz"}]}]}]}"#,
            br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"startTimeUnixNano":"-1"}]}]}]}"#,
        ] {
            assert!(
                decode_request(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn accepts_the_protobuf_json_forms_real_senders_use() {
        let body = r#"{"resourceSpans":[{"resource":null,"scopeSpans":[{"spans":[{
            "traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708",
            "parentSpanId":null,"kind":"SPAN_KIND_CLIENT","droppedAttributesCount":"3",
            "status":{"code":"STATUS_CODE_ERROR"},
            "attributes":[
              {"key":"empty.array","value":{"arrayValue":{}}},
              {"key":"empty.kvlist","value":{"kvlistValue":{}}},
              {"key":"nested","value":{"kvlistValue":{"values":[{"value":{"intValue":"1"}}]}}},
              {"value":{"stringValue":"no key"}},
              {"key":"bytes","value":{"bytesValue":"aGVsbG8="}}
            ]}]}]}]}"#;
        let req = decode_request(body.as_bytes()).expect("decodes");
        let span = &req.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(span.kind, 3);
        assert_eq!(span.dropped_attributes_count, 3);
        assert_eq!(span.status.as_ref().map(|s| s.code), Some(2));
        assert!(span.parent_span_id.is_empty());
        let value = |i: usize| span.attributes[i].value.clone().and_then(|v| v.value);
        assert!(matches!(value(0), Some(Value::ArrayValue(a)) if a.values.is_empty()));
        assert!(matches!(value(1), Some(Value::KvlistValue(l)) if l.values.is_empty()));
        assert!(matches!(value(2), Some(Value::KvlistValue(l)) if l.values[0].key.is_empty()));
        assert_eq!(span.attributes[3].key, "");
        assert_eq!(value(4), Some(Value::BytesValue(b"hello".to_vec())));
    }

    /// `stringValueStrindex` (an index into the profiles signal's string table) is skipped,
    /// as the OTLP specification asks of trace receivers and as the serde mapping does.
    #[test]
    fn skips_the_profiles_string_index_of_an_any_value() {
        let body = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"attributes":[
            {"key":"r","value":{"stringValueStrindex":3}},
            {"key":"s","value":{"stringValueStrindex":3,"stringValue":"v"}}]}]}]}]}"#;
        let req = decode_request(body.as_bytes()).expect("decodes");
        let span = &req.resource_spans[0].scope_spans[0].spans[0];
        let value = |i: usize| span.attributes[i].value.clone().and_then(|v| v.value);
        assert_eq!(value(0), None);
        assert_eq!(value(1), Some(Value::StringValue("v".into())));
        assert!(oracle::decode_request(body.as_bytes()).expect("old decoder") == req);
    }

    #[test]
    fn refuses_unknown_enum_names_and_deep_nesting() {
        let bad_kind = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"kind":"SERVERISH"}]}]}]}"#;
        assert!(decode_request(bad_kind).is_err());
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(decode_request(deep.as_bytes()).is_err());
    }

    #[test]
    fn refuses_nesting_deeper_than_serde_json_allows_inside_a_request() {
        let mut body = String::from(
            r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"attributes":[{"key":"a","value":"#,
        );
        for _ in 0..60 {
            body.push_str(r#"{"arrayValue":{"values":["#);
        }
        for _ in 0..60 {
            body.push_str("]}}");
        }
        body.push_str("}]}]}]}]}");
        let err = decode_request(body.as_bytes()).expect_err("too deep");
        assert!(err.contains("recursion limit"), "{err}");
        assert!(oracle::decode_request(body.as_bytes()).is_err());
    }

    /// serde quotes a refused string whole: the message is cut, so that a client cannot make
    /// the receiver send back and keep (in its request records) most of its body.
    #[test]
    fn error_messages_do_not_quote_the_body_whole() {
        let big = "\u{e9}".repeat(1 << 18);
        for body in [
            format!(r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{"kind":"{big}"}}]}}]}}]}}"#),
            format!(r#"{{"resourceSpans":"{big}"}}"#),
            format!(
                r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{"attributes":[{{"value":{{"boolValue":"{big}"}}}}]}}]}}]}}]}}"#
            ),
        ] {
            let err = to_protobuf(body.as_bytes()).expect_err("refused");
            assert!(err.len() < 1024, "{} bytes of message", err.len());
            assert!(err.starts_with("invalid OTLP/JSON body: invalid "), "{err}");
            assert!(err.contains("... (cut) at line 1 column "), "{err}");
        }
        let short = to_protobuf(br#"{"resourceSpans":3}"#).expect_err("refused");
        assert!(!short.contains("(cut)"), "{short}");
        assert!(short.contains("line 1 column"), "{short}");
    }

    #[test]
    fn refuses_what_the_old_decoder_kept_one_of() {
        for (body, why) in [
            (
                r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"a","name":"b"}]}]}]}"#,
                "duplicate field `name`",
            ),
            (
                r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"attributes":[{"key":"k","value":{"stringValue":"s","intValue":1}}]}]}]}]}"#,
                "holds one value",
            ),
        ] {
            let err = decode_request(body.as_bytes()).expect_err(body);
            assert!(err.contains(why), "{err}");
            assert!(oracle::decode_request(body.as_bytes()).is_ok(), "{body}");
        }
    }

    /// Bodies that cost the old decoder 50 to 230 times their size: made of empty objects,
    /// each of which became a struct (and a map node). The transcoding fits its reservation
    /// and decodes as the old decoder did.
    #[test]
    fn dense_bodies_fit_the_output_reservation() {
        let n = 20_000;
        let many = |item: &str| vec![item; n].join(",");
        let spans = |items: String| {
            format!(r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{items}]}}]}}]}}"#)
        };
        let bodies = [
            format!(r#"{{"resourceSpans":[{}]}}"#, many("{}")),
            spans(many("{}")),
            // The one field whose protobuf is longer than its JSON: a negative enum.
            spans(many(r#"{"kind":-1}"#)),
            spans(many(r#"{"status":{"code":-2147483648}}"#)),
            spans(format!(r#"{{"attributes":[{}]}}"#, many("{}"))),
            spans(format!(r#"{{"events":[{}]}}"#, many("{}"))),
            spans(format!(
                r#"{{"attributes":[{{"value":{{"arrayValue":{{"values":[{}]}}}}}}]}}"#,
                many(r#"{"intValue":-1}"#)
            )),
            spans(format!(
                r#"{{"attributes":[{}]}}"#,
                many(r#"{"value":{"kvlistValue":{}}}"#)
            )),
            format!(r#"{{"unknown":[{}]}}"#, many(r#"{"":0}"#)),
        ];
        for body in &bodies {
            let proto = to_protobuf(body.as_bytes()).expect("transcodes");
            assert!(proto.len() <= output_capacity(body.len()));
            let ours: ExportTraceServiceRequest =
                prost::Message::decode(proto.as_slice()).expect("decodes");
            let old = oracle::decode_request(body.as_bytes()).expect("old decoder");
            assert!(ours == old, "{}", &body[..80]);
        }
    }

    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{
        AnyValue, ArrayValue, EntityRef, InstrumentationScope, KeyValue, KeyValueList, any_value,
    };
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};
    use proptest::collection::vec;
    use proptest::prelude::*;

    fn any_value_strategy() -> impl Strategy<Value = any_value::Value> {
        let leaf = prop_oneof![
            ".{0,6}".prop_map(any_value::Value::StringValue),
            any::<bool>().prop_map(any_value::Value::BoolValue),
            any::<i64>().prop_map(any_value::Value::IntValue),
            any::<f64>().prop_map(any_value::Value::DoubleValue),
            vec(any::<u8>(), 0..6).prop_map(any_value::Value::BytesValue),
        ];
        leaf.prop_recursive(3, 12, 3, |inner| {
            prop_oneof![
                vec(inner.clone(), 0..3).prop_map(|values| {
                    any_value::Value::ArrayValue(ArrayValue {
                        values: values
                            .into_iter()
                            .map(|v| AnyValue { value: Some(v) })
                            .collect(),
                    })
                }),
                vec((".{0,4}", inner), 0..3).prop_map(|pairs| {
                    any_value::Value::KvlistValue(KeyValueList {
                        values: pairs.into_iter().map(|(k, v)| kv(k, v)).collect(),
                    })
                }),
            ]
        })
    }

    fn kv(key: String, value: any_value::Value) -> KeyValue {
        KeyValue {
            key,
            value: Some(AnyValue { value: Some(value) }),
            ..KeyValue::default()
        }
    }

    fn attributes() -> impl Strategy<Value = Vec<KeyValue>> {
        vec(
            (".{0,6}", any_value_strategy()).prop_map(|(k, v)| kv(k, v)),
            0..3,
        )
    }

    fn id() -> impl Strategy<Value = Vec<u8>> {
        vec(any::<u8>(), 0..17)
    }

    fn span_strategy() -> impl Strategy<Value = Span> {
        let ids = (id(), id(), id(), ".{0,4}");
        let times = (
            any::<i32>(),
            any::<u64>(),
            any::<u64>(),
            any::<u32>(),
            any::<u32>(),
        );
        let events = vec(
            (any::<u64>(), ".{0,4}", attributes(), any::<u32>()).prop_map(
                |(time_unix_nano, name, attributes, dropped_attributes_count)| span::Event {
                    time_unix_nano,
                    name,
                    attributes,
                    dropped_attributes_count,
                },
            ),
            0..2,
        );
        let links = vec(
            (
                id(),
                id(),
                ".{0,4}",
                attributes(),
                any::<u32>(),
                any::<u32>(),
            )
                .prop_map(
                    |(trace_id, span_id, trace_state, attributes, dropped, flags)| span::Link {
                        trace_id,
                        span_id,
                        trace_state,
                        attributes,
                        dropped_attributes_count: dropped,
                        flags,
                    },
                ),
            0..2,
        );
        let status = proptest::option::of((".{0,4}", any::<i32>()))
            .prop_map(|s| s.map(|(message, code)| Status { message, code }));
        (ids, ".{0,8}", times, attributes(), events, links, status).prop_map(
            |(
                (trace_id, span_id, parent_span_id, trace_state),
                name,
                times,
                attributes,
                events,
                links,
                status,
            )| {
                let (kind, start, end, dropped, flags) = times;
                Span {
                    trace_id,
                    span_id,
                    trace_state,
                    parent_span_id,
                    flags,
                    name,
                    kind,
                    start_time_unix_nano: start,
                    end_time_unix_nano: end,
                    attributes,
                    dropped_attributes_count: dropped,
                    events,
                    dropped_events_count: dropped / 2,
                    links,
                    dropped_links_count: dropped / 3,
                    status,
                }
            },
        )
    }

    fn request_strategy() -> impl Strategy<Value = ExportTraceServiceRequest> {
        let resource = (attributes(), any::<u32>(), vec(".{0,3}", 0..2)).prop_map(
            |(attributes, dropped_attributes_count, keys)| Resource {
                attributes,
                dropped_attributes_count,
                entity_refs: if keys.is_empty() {
                    Vec::new()
                } else {
                    vec![EntityRef {
                        schema_url: "s".into(),
                        r#type: "service".into(),
                        id_keys: keys.clone(),
                        description_keys: keys,
                    }]
                },
            },
        );
        let scope = (".{0,4}", ".{0,4}", attributes()).prop_map(|(name, version, attributes)| {
            InstrumentationScope {
                name,
                version,
                attributes,
                dropped_attributes_count: 0,
            }
        });
        let scope_spans = (
            proptest::option::of(scope),
            vec(span_strategy(), 0..3),
            ".{0,3}",
        )
            .prop_map(|(scope, spans, schema_url)| ScopeSpans {
                scope,
                spans,
                schema_url,
            });
        vec(
            (
                proptest::option::of(resource),
                vec(scope_spans, 0..2),
                ".{0,3}",
            )
                .prop_map(|(resource, scope_spans, schema_url)| ResourceSpans {
                    resource,
                    scope_spans,
                    schema_url,
                }),
            0..3,
        )
        .prop_map(|resource_spans| ExportTraceServiceRequest { resource_spans })
    }

    /// Rewrites serde's OTLP/JSON into the other forms senders use, choosing by `bits`: enum
    /// names, numbers where serde writes strings and strings where it writes numbers,
    /// uppercase hex, `null` for empty fields, unknown fields.
    fn vary(value: &mut serde_json::Value, key: Option<&str>, bits: &mut u64) {
        use serde_json::Value as J;
        let mut flip = || {
            *bits = bits.rotate_left(7) ^ 0x9e37_79b9_7f4a_7c15;
            *bits & 1 == 1
        };
        match value {
            J::Object(map) => {
                if flip() {
                    map.insert(
                        "someFutureField".into(),
                        serde_json::json!({"x": [1, null]}),
                    );
                }
                for (k, child) in map.iter_mut() {
                    vary(child, Some(k.as_str()), bits);
                }
            }
            J::Array(items) => {
                for item in items.iter_mut() {
                    vary(item, None, bits);
                }
            }
            J::String(s) => match key {
                Some("traceId" | "spanId" | "parentSpanId") if flip() => {
                    *s = s.to_uppercase();
                }
                Some("intValue" | "startTimeUnixNano" | "endTimeUnixNano" | "timeUnixNano")
                    if flip() =>
                {
                    if let Ok(n) = s.parse::<i64>() {
                        *value = J::from(n);
                    } else if let Ok(n) = s.parse::<u64>() {
                        *value = J::from(n);
                    }
                }
                Some("name" | "traceState" | "schemaUrl" | "message") if s.is_empty() && flip() => {
                    *value = J::Null;
                }
                _ => {}
            },
            J::Number(n) => match (key, n.as_i64()) {
                (Some("kind"), Some(k)) if flip() => {
                    *value = match usize::try_from(k)
                        .ok()
                        .and_then(|i| OtlpEnum::SpanKind.names().get(i))
                    {
                        Some(name) => J::from(*name),
                        None => J::from(k.to_string()),
                    };
                }
                (Some("code"), Some(c)) if flip() => {
                    *value = match usize::try_from(c)
                        .ok()
                        .and_then(|i| OtlpEnum::StatusCode.names().get(i))
                    {
                        Some(name) => J::from(*name),
                        None => J::from(c.to_string()),
                    };
                }
                (
                    Some(
                        "droppedAttributesCount"
                        | "droppedEventsCount"
                        | "droppedLinksCount"
                        | "flags",
                    ),
                    Some(c),
                ) if flip() => *value = J::from(c.to_string()),
                _ => {}
            },
            _ => {}
        }
    }

    /// A request that uses every field, in the forms the old decoder's tests pinned.
    const RICH: &str = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"s"}}],"droppedAttributesCount":1,"entityRefs":[{"schemaUrl":"u","type":"t","idKeys":["a"],"descriptionKeys":[]}]},"schemaUrl":"r","scopeSpans":[{"scope":{"name":"n","version":"v","attributes":[{"key":"k","value":{"boolValue":true}}],"droppedAttributesCount":"2"},"schemaUrl":"x","spans":[{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0X0102030405060708","parentSpanId":null,"traceState":"ts","flags":257,"name":"span","kind":"SPAN_KIND_CLIENT","startTimeUnixNano":"1","endTimeUnixNano":2,"droppedAttributesCount":3,"droppedEventsCount":"4","droppedLinksCount":5,"attributes":[{"key":"a","value":{"arrayValue":{"values":[{"intValue":"1"},{"doubleValue":1.5},{"bytesValue":"aGk="},{"kvlistValue":{"values":[{"key":"k","value":{"intValue":-7}}]}}]}}},{"value":{"arrayValue":{}}},{"key":"e","value":{}}],"events":[{"timeUnixNano":"3","name":"ev","attributes":[],"droppedAttributesCount":6}],"links":[{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708","traceState":"l","attributes":[{"key":"l","keyStrindex":0}],"droppedAttributesCount":7,"flags":"1"}],"status":{"message":"m","code":"STATUS_CODE_ERROR"}}]}]}]}"#;

    /// Whether a disagreement between the two decoders is one made on purpose (see the module
    /// docs): `ours` refuses what the old decoder kept one value of, or a struct written as an
    /// array (a serde artifact, not OTLP/JSON); or the old decoder refused a `null` key.
    fn deliberate(
        ours: &Result<ExportTraceServiceRequest, String>,
        old: &Result<ExportTraceServiceRequest, String>,
    ) -> bool {
        match (ours, old) {
            (Err(e), Ok(_)) => {
                e.contains("duplicate field")
                    || e.contains("holds one value")
                    || e.contains("invalid type: sequence")
            }
            (Ok(_), Err(e)) => e.contains("missing field `key`"),
            _ => false,
        }
    }

    fn agree(body: &[u8]) -> Result<(), TestCaseError> {
        let ours = decode_request(body);
        let old = oracle::decode_request(body);
        if deliberate(&ours, &old) {
            return Ok(());
        }
        match (&ours, &old) {
            (Ok(a), Ok(b)) => prop_assert!(
                a == b,
                "decoded differently: {}",
                String::from_utf8_lossy(body)
            ),
            (Err(_), Err(_)) => {}
            _ => prop_assert!(
                false,
                "ours {:?}, old {:?}: {}",
                ours.as_ref().err(),
                old.as_ref().err(),
                String::from_utf8_lossy(body)
            ),
        }
        Ok(())
    }

    #[test]
    fn the_rich_request_decodes_as_before() {
        let ours = decode_request(RICH.as_bytes()).expect("decodes");
        let old = oracle::decode_request(RICH.as_bytes()).expect("old decoder");
        assert!(ours == old);
        let span = &ours.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(span.flags, 257);
        assert_eq!(span.span_id, [1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(span.links[0].flags, 1);
    }

    proptest! {
        /// Requests of every shape, in serde's OTLP/JSON and in the other forms senders use,
        /// decode exactly as the old decoder decoded them.
        #[test]
        fn generated_requests_decode_as_before(request in request_strategy(), mut bits in any::<u64>()) {
            let mut value = serde_json::to_value(&request).expect("serialize");
            vary(&mut value, None, &mut bits);
            let body = serde_json::to_vec(&value).expect("print");
            let ours = decode_request(&body);
            prop_assert!(ours.is_ok(), "{:?}: {}", ours.err(), String::from_utf8_lossy(&body));
            agree(&body)?;
        }

        /// Corrupted bodies are refused or accepted as the old decoder did (but for the
        /// deliberate differences), and never panic.
        #[test]
        fn corrupted_bodies_decode_as_before(edits in vec((any::<usize>(), prop::sample::select(&b"{}[]\",:-0159aefnrtuxy \\"[..]), any::<bool>()), 1..6)) {
            let mut body = RICH.as_bytes().to_vec();
            for (at, byte, delete) in edits {
                let at = at % body.len();
                if delete {
                    body.remove(at);
                } else {
                    body[at] = byte;
                }
            }
            agree(&body)?;
        }
    }
}
