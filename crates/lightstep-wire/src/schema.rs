//! The OTLP trace messages, one table each: what every field is, on the wire and in OTLP/JSON.
//!
//! Each message is written once, below, as one line per field: the constant that names its
//! number, the number, its OTLP/JSON name (lowerCamelCase, as opentelemetry-proto's serde
//! mapping and the OTLP specification spell it), its kind and whether it repeats. The table
//! ([`Msg::fields`]), the lookups ([`Msg::field`], [`Msg::field_named`]) and the constants
//! (`span::NAME`, `span::json::NAME`) are all generated from those lines, so that nothing else
//! can say that a field is another number, kind or name. The tests check the table against
//! opentelemetry-proto 0.33's generated types, field by field, in protobuf and in JSON.

use crate::WireType;

/// The messages of an OTLP trace request. `TracesData` is `ExportTraceServiceRequest` on the
/// wire (both hold `repeated ResourceSpans resource_spans = 1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Msg {
    /// `opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest`.
    Request = 0,
    /// `opentelemetry.proto.trace.v1.ResourceSpans`.
    ResourceSpans = 1,
    /// `opentelemetry.proto.trace.v1.ScopeSpans`.
    ScopeSpans = 2,
    /// `opentelemetry.proto.trace.v1.Span`.
    Span = 3,
    /// `opentelemetry.proto.trace.v1.Span.Event`.
    Event = 4,
    /// `opentelemetry.proto.trace.v1.Span.Link`.
    Link = 5,
    /// `opentelemetry.proto.trace.v1.Status`.
    Status = 6,
    /// `opentelemetry.proto.resource.v1.Resource`.
    Resource = 7,
    /// `opentelemetry.proto.common.v1.EntityRef`.
    EntityRef = 8,
    /// `opentelemetry.proto.common.v1.InstrumentationScope`.
    Scope = 9,
    /// `opentelemetry.proto.common.v1.KeyValue`.
    KeyValue = 10,
    /// `opentelemetry.proto.common.v1.AnyValue`: its fields are one `oneof`.
    AnyValue = 11,
    /// `opentelemetry.proto.common.v1.ArrayValue`.
    ArrayValue = 12,
    /// `opentelemetry.proto.common.v1.KeyValueList`.
    KeyValueList = 13,
}

/// What a field holds, as the OTLP protos declare it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `int32` (a varint; negative values take ten bytes).
    Int32,
    /// `int64`; a decimal string in OTLP/JSON.
    Int64,
    /// `uint32`.
    Uint32,
    /// `bool`.
    Bool,
    /// An OTLP enum (an `int32` on the wire); OTLP/JSON may name the value.
    Enum(OtlpEnum),
    /// `fixed32`.
    Fixed32,
    /// `fixed64`: times in nanoseconds; a decimal string in OTLP/JSON.
    Fixed64,
    /// `double`.
    Double,
    /// `string`: UTF-8.
    String,
    /// `bytes`: base64 in OTLP/JSON.
    Bytes,
    /// `bytes` holding a trace or span id: hex in OTLP/JSON.
    Id,
    /// A message.
    Message(Msg),
}

impl Kind {
    /// The wire type a field of this kind is encoded with.
    pub const fn wire_type(self) -> WireType {
        match self {
            Kind::Int32 | Kind::Int64 | Kind::Uint32 | Kind::Bool | Kind::Enum(_) => {
                WireType::Varint
            }
            Kind::Fixed32 => WireType::ThirtyTwoBit,
            Kind::Fixed64 | Kind::Double => WireType::SixtyFourBit,
            Kind::String | Kind::Bytes | Kind::Id | Kind::Message(_) => WireType::LengthDelimited,
        }
    }
}

/// The enums of the OTLP trace messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OtlpEnum {
    /// `Span.SpanKind`.
    SpanKind,
    /// `Status.StatusCode`.
    StatusCode,
}

impl OtlpEnum {
    /// The names of the values, indexed by number, as OTLP/JSON may write them.
    pub const fn names(self) -> &'static [&'static str] {
        match self {
            OtlpEnum::SpanKind => &[
                "SPAN_KIND_UNSPECIFIED",
                "SPAN_KIND_INTERNAL",
                "SPAN_KIND_SERVER",
                "SPAN_KIND_CLIENT",
                "SPAN_KIND_PRODUCER",
                "SPAN_KIND_CONSUMER",
            ],
            OtlpEnum::StatusCode => &["STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"],
        }
    }
}

/// One field of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    /// The field number.
    pub number: u32,
    /// The OTLP/JSON name.
    pub json: &'static str,
    /// What it holds.
    pub kind: Kind,
    /// Whether it is `repeated`.
    pub repeated: bool,
}

/// Writes the messages' tables, lookups and constants from one line per field.
macro_rules! messages {
    (@repeated) => { false };
    (@repeated repeated) => { true };
    ($(
        $msg:ident, mod $module:ident {
            $( $name:ident = $number:literal, $json:literal, $kind:expr $(, $repeated:ident)?; )*
        }
    )*) => {
        $(
            #[doc = concat!("Field numbers of `", stringify!($msg), "`.")]
            pub mod $module {
                #[allow(unused_imports)]
                use super::{Field, Kind::*, Msg, OtlpEnum::*};

                $(
                    #[doc = concat!("`", $json, "`, field ", stringify!($number), ".")]
                    pub const $name: u32 = $number;
                )*

                /// The table: the fields in field-number order.
                pub(super) const FIELDS: &[Field] = &[$(
                    Field {
                        number: $name,
                        json: $json,
                        kind: $kind,
                        repeated: messages!(@repeated $($repeated)?),
                    },
                )*];

                /// The OTLP/JSON names of the fields, as bytes to match keys against.
                pub mod json {
                    $(
                        #[doc = concat!("`", $json, "`.")]
                        pub const $name: &[u8] = $json.as_bytes();
                    )*
                }
            }
        )*

        impl Msg {
            /// Every message, indexed by its discriminant.
            pub const ALL: [Msg; 14] = [$(Msg::$msg),*];

            /// The fields of the message, in field-number order (the lines below).
            pub const fn fields(self) -> &'static [Field] {
                match self {
                    $( Msg::$msg => $module::FIELDS, )*
                }
            }
        }
    };
}

messages! {
    Request, mod request {
        RESOURCE_SPANS = 1, "resourceSpans", Message(Msg::ResourceSpans), repeated;
    }
    ResourceSpans, mod resource_spans {
        RESOURCE = 1, "resource", Message(Msg::Resource);
        SCOPE_SPANS = 2, "scopeSpans", Message(Msg::ScopeSpans), repeated;
        SCHEMA_URL = 3, "schemaUrl", String;
    }
    ScopeSpans, mod scope_spans {
        SCOPE = 1, "scope", Message(Msg::Scope);
        SPANS = 2, "spans", Message(Msg::Span), repeated;
        SCHEMA_URL = 3, "schemaUrl", String;
    }
    Span, mod span {
        TRACE_ID = 1, "traceId", Id;
        SPAN_ID = 2, "spanId", Id;
        TRACE_STATE = 3, "traceState", String;
        PARENT_SPAN_ID = 4, "parentSpanId", Id;
        NAME = 5, "name", String;
        KIND = 6, "kind", Enum(SpanKind);
        START_TIME_UNIX_NANO = 7, "startTimeUnixNano", Fixed64;
        END_TIME_UNIX_NANO = 8, "endTimeUnixNano", Fixed64;
        ATTRIBUTES = 9, "attributes", Message(Msg::KeyValue), repeated;
        DROPPED_ATTRIBUTES_COUNT = 10, "droppedAttributesCount", Uint32;
        EVENTS = 11, "events", Message(Msg::Event), repeated;
        DROPPED_EVENTS_COUNT = 12, "droppedEventsCount", Uint32;
        LINKS = 13, "links", Message(Msg::Link), repeated;
        DROPPED_LINKS_COUNT = 14, "droppedLinksCount", Uint32;
        STATUS = 15, "status", Message(Msg::Status);
        FLAGS = 16, "flags", Fixed32;
    }
    Event, mod event {
        TIME_UNIX_NANO = 1, "timeUnixNano", Fixed64;
        NAME = 2, "name", String;
        ATTRIBUTES = 3, "attributes", Message(Msg::KeyValue), repeated;
        DROPPED_ATTRIBUTES_COUNT = 4, "droppedAttributesCount", Uint32;
    }
    Link, mod link {
        TRACE_ID = 1, "traceId", Id;
        SPAN_ID = 2, "spanId", Id;
        TRACE_STATE = 3, "traceState", String;
        ATTRIBUTES = 4, "attributes", Message(Msg::KeyValue), repeated;
        DROPPED_ATTRIBUTES_COUNT = 5, "droppedAttributesCount", Uint32;
        FLAGS = 6, "flags", Fixed32;
    }
    Status, mod status {
        MESSAGE = 2, "message", String;
        CODE = 3, "code", Enum(StatusCode);
    }
    Resource, mod resource {
        ATTRIBUTES = 1, "attributes", Message(Msg::KeyValue), repeated;
        DROPPED_ATTRIBUTES_COUNT = 2, "droppedAttributesCount", Uint32;
        ENTITY_REFS = 3, "entityRefs", Message(Msg::EntityRef), repeated;
    }
    EntityRef, mod entity_ref {
        SCHEMA_URL = 1, "schemaUrl", String;
        TYPE = 2, "type", String;
        ID_KEYS = 3, "idKeys", String, repeated;
        DESCRIPTION_KEYS = 4, "descriptionKeys", String, repeated;
    }
    Scope, mod scope {
        NAME = 1, "name", String;
        VERSION = 2, "version", String;
        ATTRIBUTES = 3, "attributes", Message(Msg::KeyValue), repeated;
        DROPPED_ATTRIBUTES_COUNT = 4, "droppedAttributesCount", Uint32;
    }
    KeyValue, mod key_value {
        KEY = 1, "key", String;
        VALUE = 2, "value", Message(Msg::AnyValue);
        KEY_STRINDEX = 3, "keyStrindex", Int32;
    }
    AnyValue, mod any_value {
        STRING_VALUE = 1, "stringValue", String;
        BOOL_VALUE = 2, "boolValue", Bool;
        INT_VALUE = 3, "intValue", Int64;
        DOUBLE_VALUE = 4, "doubleValue", Double;
        ARRAY_VALUE = 5, "arrayValue", Message(Msg::ArrayValue);
        KVLIST_VALUE = 6, "kvlistValue", Message(Msg::KeyValueList);
        BYTES_VALUE = 7, "bytesValue", Bytes;
        STRING_VALUE_STRINDEX = 8, "stringValueStrindex", Int32;
    }
    ArrayValue, mod array_value {
        VALUES = 1, "values", Message(Msg::AnyValue), repeated;
    }
    KeyValueList, mod key_value_list {
        VALUES = 1, "values", Message(Msg::KeyValue), repeated;
    }
}

/// `ResourceSpans.instrumentation_library_spans`: what `scope_spans` was called before OTLP
/// 1.0, the same shape under another number. Gone from opentelemetry-proto, so not in the
/// table (the receiver skips it, as prost does); the analysis still reads old files with it.
pub const INSTRUMENTATION_LIBRARY_SPANS: u32 = 1000;

/// The OTLP/JSON name of [`INSTRUMENTATION_LIBRARY_SPANS`].
pub const INSTRUMENTATION_LIBRARY_SPANS_JSON: &[u8] = b"instrumentationLibrarySpans";

/// The highest field number in the table: field lookups are an array index below it.
const MAX_NUMBER: usize = 16;

/// Every field by message and number (a field number above `MAX_NUMBER` in the table does not
/// compile).
static BY_NUMBER: [[Option<&Field>; MAX_NUMBER + 1]; Msg::ALL.len()] = {
    let mut table = [[None; MAX_NUMBER + 1]; Msg::ALL.len()];
    let mut m = 0;
    while m < Msg::ALL.len() {
        let fields = Msg::ALL[m].fields();
        let mut i = 0;
        while i < fields.len() {
            table[m][fields[i].number as usize] = Some(&fields[i]);
            i += 1;
        }
        m += 1;
    }
    table
};

impl Msg {
    /// Field `number` of the message, or `None` for a field the table does not know (prost
    /// skips those).
    #[inline(always)]
    pub fn field(self, number: u32) -> Option<&'static Field> {
        let row = &BY_NUMBER[self as usize];
        row.get(number as usize).copied().flatten()
    }

    /// The field whose OTLP/JSON name is `json`, or `None` for a name the serde mapping ignores.
    pub fn field_named(self, json: &str) -> Option<&'static Field> {
        self.fields().iter().find(|f| f.json == json)
    }
}

#[cfg(test)]
mod tests;
