//! Database client spans (semantic conventions 1.42, stable database conventions).
//!
//! `db.query.text` is the statement with every literal replaced by `?` ([`crate::sql`]) unless
//! sanitizing is turned off; `db.operation.name` and `db.collection.name` come from the builder
//! or, failing that, from the statement when it is a plain single-table one. The span is named
//! `{db.operation.name} {target}` where the target is the collection, the stored procedure, the
//! namespace or the server address, in that order, falling back to whichever of the two exists
//! and finally to `db.system.name`.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;

use opentelemetry::trace::Tracer;
use opentelemetry::{Context, KeyValue};
use opentelemetry_semantic_conventions::attribute as semconv;

use crate::lightstep_tracing::LightstepTracing;
use crate::outcome::result_report;
use crate::span::{ActiveSpan, Role, Traced};
use crate::sql::{self, DoubleQuotes};

/// A builder for a database span. From [`LightstepTracing::database`].
#[derive(Debug)]
#[must_use = "a span builder does nothing until `start` or `trace`"]
pub struct DbSpan<'t, T> {
    tracing: &'t LightstepTracing<T>,
    system: Cow<'t, str>,
    statement: Cow<'t, str>,
    sanitize: bool,
    operation: Option<String>,
    collection: Option<String>,
    stored_procedure: Option<String>,
    namespace: Option<String>,
    server: Option<(String, Option<u16>)>,
    attributes: Vec<KeyValue>,
    parent: Option<Context>,
}

impl<'t, T> DbSpan<'t, T>
where
    T: Tracer,
    T::Span: Send + Sync + 'static,
{
    pub(crate) fn new(
        tracing: &'t LightstepTracing<T>,
        system: Cow<'t, str>,
        statement: Cow<'t, str>,
    ) -> Self {
        Self {
            tracing,
            system,
            statement,
            sanitize: tracing.sanitize_sql(),
            operation: None,
            collection: None,
            stored_procedure: None,
            namespace: None,
            server: None,
            attributes: Vec::new(),
            parent: None,
        }
    }

    /// Whether this span's `db.query.text` is sanitized (default: the [`LightstepTracing`]
    /// setting, on unless turned off). `false` records the statement as given.
    pub fn with_sanitizing(mut self, sanitize: bool) -> Self {
        self.sanitize = sanitize;
        self
    }

    /// `db.operation.name` as the client library names it (`SELECT`, `findAndModify`, `HMSET`).
    pub fn with_operation(mut self, operation: impl Into<String>) -> Self {
        self.operation = Some(operation.into());
        self
    }

    /// `db.collection.name`: the table or collection acted upon.
    pub fn with_collection(mut self, collection: impl Into<String>) -> Self {
        self.collection = Some(collection.into());
        self
    }

    /// `db.stored_procedure.name`.
    pub fn with_stored_procedure(mut self, procedure: impl Into<String>) -> Self {
        self.stored_procedure = Some(procedure.into());
        self
    }

    /// `db.namespace`: the database (and schema) name, fully qualified within the server.
    pub fn with_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// `server.address` and `server.port` of the database.
    pub fn with_server_address(mut self, host: impl Into<String>, port: Option<u16>) -> Self {
        self.server = Some((host.into(), port));
        self
    }

    /// Any other attribute.
    pub fn with_attribute(mut self, attribute: KeyValue) -> Self {
        self.attributes.push(attribute);
        self
    }

    /// The parent context (default: the current one).
    pub fn with_parent(mut self, parent: Context) -> Self {
        self.parent = Some(parent);
        self
    }

    /// Starts the span.
    pub fn start(self) -> ActiveSpan {
        let parent = match self.tracing.parent_or_skip(self.parent, Role::Database) {
            Ok(parent) => parent,
            Err(stand_in) => return stand_in,
        };
        let summary = sql::summarize(&self.statement);
        let operation = self
            .operation
            .map(Cow::Owned)
            .or(summary.operation.map(Cow::Borrowed));
        let collection = self.collection.or(summary.collection.map(str::to_owned));
        let query = if self.sanitize {
            sql::sanitize_with(&self.statement, DoubleQuotes::for_system(&self.system))
        } else {
            self.statement.into_owned()
        };
        let server_target = self.server.as_ref().map(|(host, port)| match port {
            Some(port) => format!("{host}:{port}"),
            None => host.clone(),
        });
        let target = collection
            .as_deref()
            .or(self.stored_procedure.as_deref())
            .or(self.namespace.as_deref())
            .or(server_target.as_deref());
        let name = match (operation.as_deref(), target) {
            (Some(op), Some(target)) => {
                let mut name = String::with_capacity(op.len() + 1 + target.len());
                name.push_str(op);
                name.push(' ');
                name.push_str(target);
                name
            }
            (Some(op), None) => op.to_owned(),
            (None, Some(target)) => target.to_owned(),
            (None, None) => self.system.clone().into_owned(),
        };

        let mut attributes = self.attributes;
        attributes.reserve(8);
        attributes.push(KeyValue::new(
            semconv::DB_SYSTEM_NAME,
            self.system.into_owned(),
        ));
        attributes.push(KeyValue::new(semconv::DB_QUERY_TEXT, query));
        if let Some(operation) = operation {
            attributes.push(KeyValue::new(semconv::DB_OPERATION_NAME, operation));
        }
        if let Some(collection) = collection {
            attributes.push(KeyValue::new(semconv::DB_COLLECTION_NAME, collection));
        }
        if let Some(procedure) = self.stored_procedure {
            attributes.push(KeyValue::new(semconv::DB_STORED_PROCEDURE_NAME, procedure));
        }
        if let Some(namespace) = self.namespace {
            attributes.push(KeyValue::new(semconv::DB_NAMESPACE, namespace));
        }
        if let Some((host, port)) = self.server {
            attributes.push(KeyValue::new(semconv::SERVER_ADDRESS, host));
            if let Some(port) = port {
                attributes.push(KeyValue::new(semconv::SERVER_PORT, i64::from(port)));
            }
        }
        self.tracing
            .start_span(Role::Database, Cow::Owned(name), attributes, parent)
    }

    /// Starts the span and runs `future` in it: `Ok` of any value is a success, `Err` an error
    /// with `error.type` the error's type name and an `exception` event.
    pub fn trace<F, R, E>(self, future: F) -> Traced<F>
    where
        F: Future<Output = Result<R, E>>,
        E: fmt::Display + 'static,
    {
        self.start().instrument_with(future, result_report::<R, E>)
    }
}
