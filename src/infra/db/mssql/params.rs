//! Values bound to `@P1…@Pn`, and the statements that carry them.
//!
//! A [`Statement`] is built before anything is sent: its SQL comes from [`super::sql`] (constants,
//! or text generated from constants only) and its values are an owned list of [`Param`]s whose
//! length is checked against the statement's placeholder count at construction, so a bind
//! missing or in excess is an error here rather than a confusing server message — and unit tests
//! check every statement without a server.

use std::borrow::Cow;

use chrono::{Datelike, NaiveDateTime};
use uuid::Uuid;

use super::sql::{Generated, Sql};
use crate::infra::db::StoreError;
use crate::model::Timestamp;

/// One bound value. `None`s are typed NULLs (SQL Server needs a type for every parameter).
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Param {
    Uuid(Option<Uuid>),
    Text(Option<String>),
    BigInt(Option<i64>),
    Int(i32),
    DateTime(Option<NaiveDateTime>),
}

impl Param {
    pub fn uuid(value: Uuid) -> Self {
        Self::Uuid(Some(value))
    }
    pub fn opt_uuid(value: Option<Uuid>) -> Self {
        Self::Uuid(value)
    }
    pub fn text(value: impl Into<String>) -> Self {
        Self::Text(Some(value.into()))
    }
    pub fn opt_text(value: Option<&str>) -> Self {
        Self::Text(value.map(String::from))
    }
    pub fn bigint(value: i64) -> Self {
        Self::BigInt(Some(value))
    }
    pub fn opt_bigint(value: Option<i64>) -> Self {
        Self::BigInt(value)
    }
    /// A timestamp already checked with [`datetime2`].
    pub fn datetime(value: NaiveDateTime) -> Self {
        Self::DateTime(Some(value))
    }
    pub fn opt_datetime(value: Option<NaiveDateTime>) -> Self {
        Self::DateTime(value)
    }

    fn bind(self, query: &mut tiberius::Query<'_>) {
        match self {
            Param::Uuid(v) => query.bind(v),
            Param::Text(v) => query.bind(v),
            Param::BigInt(v) => query.bind(v),
            Param::Int(v) => query.bind(v),
            // `NaiveDateTime` travels as `datetime2(7)`: microseconds are exact.
            Param::DateTime(v) => query.bind(v),
        }
    }
}

/// SQL plus exactly as many values as it has placeholders.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Statement {
    pub name: &'static str,
    pub sql: Cow<'static, str>,
    pub params: Vec<Param>,
}

impl Statement {
    /// A constant statement with its values.
    pub fn new(sql: &Sql, params: Vec<Param>) -> Result<Self, StoreError> {
        Self::checked(sql.name, Cow::Borrowed(sql.text), sql.params, params)
    }

    /// A statement generated from constants (multi-row inserts, `IN` lists) with its values.
    pub fn generated(sql: Generated, params: Vec<Param>) -> Result<Self, StoreError> {
        Self::checked(sql.name, Cow::Owned(sql.text), sql.params, params)
    }

    fn checked(
        name: &'static str,
        sql: Cow<'static, str>,
        expected: usize,
        params: Vec<Param>,
    ) -> Result<Self, StoreError> {
        if params.len() != expected {
            return Err(StoreError::Unavailable(format!(
                "internal error: statement {name} takes {expected} parameters, {} were bound",
                params.len()
            )));
        }
        Ok(Self { name, sql, params })
    }

    pub fn into_query(self) -> tiberius::Query<'static> {
        let mut query = tiberius::Query::new(self.sql);
        for param in self.params {
            param.bind(&mut query);
        }
        query
    }
}

/// The `datetime2` value of a timestamp (UTC, microseconds), or `Invalid` when SQL Server cannot
/// hold it (before year 1 or after 9999).
pub(super) fn datetime2(field: &str, value: Timestamp) -> Result<NaiveDateTime, StoreError> {
    let naive = value.as_datetime().naive_utc();
    if (1..=9999).contains(&naive.year()) {
        Ok(naive)
    } else {
        Err(StoreError::Invalid(format!("{field} {value} is outside the years 1 to 9999 that SQL Server stores")))
    }
}

pub(super) fn opt_datetime2(field: &str, value: Option<Timestamp>) -> Result<Option<NaiveDateTime>, StoreError> {
    value.map(|v| datetime2(field, v)).transpose()
}

/// A `datetime2` read back, as the model's timestamp.
pub(super) fn timestamp(value: NaiveDateTime) -> Timestamp {
    Timestamp::from_micros(value.and_utc().timestamp_micros())
}

/// `Invalid` when `value` does not fit an `NVARCHAR(max_units)` column (UTF-16 code units, which
/// is what SQL Server counts), instead of failing the whole batch with a truncation error.
pub(super) fn bounded(field: &str, value: &str, max_units: usize) -> Result<(), StoreError> {
    let units = value.encode_utf16().count();
    if units > max_units {
        Err(StoreError::Invalid(format!("{field} is {units} characters long; at most {max_units} are stored")))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_keep_microseconds_and_refuse_what_datetime2_cannot_hold() {
        for raw in [
            "2026-02-24T10:30:00.123456Z",
            "1969-12-31T23:59:59.5Z",
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999999Z",
        ] {
            let ts = Timestamp::parse(raw).expect("timestamp");
            let stored = datetime2("run_datetime", ts).expect("in range");
            assert_eq!(timestamp(stored), ts, "{raw}");
        }
        let too_late =
            Timestamp::from_micros(Timestamp::parse("9999-12-31T23:59:59Z").unwrap().as_micros() + 10_000_000);
        let err = datetime2("run_datetime", too_late).unwrap_err();
        assert!(matches!(&err, StoreError::Invalid(m) if m.starts_with("run_datetime")), "{err:?}");
    }

    #[test]
    fn bounded_counts_utf16_units_like_nvarchar() {
        assert!(bounded("job_status", &"x".repeat(255), 255).is_ok());
        assert!(bounded("job_status", &"é".repeat(255), 255).is_ok(), "one unit each");
        assert!(bounded("job_status", &"😀".repeat(128), 255).is_err(), "two units each: 256");
        let err = bounded("job_status", &"x".repeat(256), 255).unwrap_err();
        assert_eq!(err.to_string(), "job_status is 256 characters long; at most 255 are stored");
    }

    #[test]
    fn a_statement_with_the_wrong_number_of_values_is_refused_before_sending() {
        let sql = Sql { name: "probe", text: "SELECT @P1, @P2", params: 2 };
        assert!(Statement::new(&sql, vec![Param::bigint(1), Param::bigint(2)]).is_ok());
        let err = Statement::new(&sql, vec![Param::bigint(1)]).unwrap_err();
        assert!(err.to_string().contains("probe takes 2 parameters, 1 were bound"), "{err}");
    }
}
