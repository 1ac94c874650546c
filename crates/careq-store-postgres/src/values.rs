//! careq's four storage classes on PostgreSQL's types: a parameter binds as the type the
//! prepared statement declares for it, and a column reads by its own type. The schema uses
//! BIGINT, DOUBLE PRECISION, TEXT and BYTEA; smaller integers, booleans and NUMERIC (what
//! `sum(bigint)` returns) read too, so one SQL text can serve both engines.
use std::error::Error;

use bytes::BytesMut;
use careq_store::{Row, StoreError, Value};
use postgres::types::{to_sql_checked, FromSql, IsNull, ToSql, Type};

type BoxError = Box<dyn Error + Sync + Send>;

/// A parameter, bound as the type the statement wants (so NULL is typed by the statement too).
#[derive(Debug)]
pub(crate) struct Bind<'a>(pub Value<'a>);

impl ToSql for Bind<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        match (self.0, ty) {
            (Value::Null, _) => Ok(IsNull::Yes),
            (Value::Int(v), &Type::INT8) => v.to_sql(ty, out),
            (Value::Int(v), &Type::INT4) => i32::try_from(v)?.to_sql(ty, out),
            (Value::Int(v), &Type::INT2) => i16::try_from(v)?.to_sql(ty, out),
            (Value::Int(v), &Type::BOOL) => (v != 0).to_sql(ty, out),
            (Value::Int(v), &Type::FLOAT8) => (v as f64).to_sql(ty, out),
            (Value::Real(v), &Type::FLOAT8) => v.to_sql(ty, out),
            (Value::Real(v), &Type::FLOAT4) => (v as f32).to_sql(ty, out),
            (Value::Text(v), _) if <&str as ToSql>::accepts(ty) => v.to_sql(ty, out),
            (Value::Blob(v), &Type::BYTEA) => v.to_sql(ty, out),
            (v, ty) => Err(format!("a {} cannot be bound as {ty}", class(&v)).into()),
        }
    }

    fn accepts(_: &Type) -> bool {
        // Checked per value in `to_sql`, which knows the value's class.
        true
    }

    to_sql_checked!();
}

fn class(v: &Value<'_>) -> &'static str {
    match v {
        Value::Null => "NULL",
        Value::Int(_) => "integer",
        Value::Real(_) => "real",
        Value::Text(_) => "text",
        Value::Blob(_) => "blob",
    }
}

/// A row as units read it.
pub(crate) struct PgRow<'r>(pub &'r postgres::Row);

impl PgRow<'_> {
    fn get<'a, T: FromSql<'a>>(&'a self, i: usize) -> Result<Option<T>, StoreError> {
        self.0
            .try_get::<_, Option<T>>(i)
            .map_err(|e| StoreError::Other(format!("reading column {}: {e}", self.name(i))))
    }

    fn ty(&self, i: usize) -> Result<&Type, StoreError> {
        self.0
            .columns()
            .get(i)
            .map(|c| c.type_())
            .ok_or_else(|| StoreError::Other(format!("no column {i} in the row")))
    }

    fn name(&self, i: usize) -> String {
        self.0
            .columns()
            .get(i)
            .map_or_else(|| i.to_string(), |c| c.name().to_string())
    }

    fn mismatch(&self, i: usize, want: &str) -> StoreError {
        let ty = self
            .ty(i)
            .map_or_else(|_| "nothing".to_string(), Type::to_string);
        StoreError::Other(format!("column {} is {ty}, not {want}", self.name(i)))
    }
}

impl Row for PgRow<'_> {
    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        match *self.ty(i)? {
            Type::INT8 => self.get::<i64>(i),
            Type::INT4 => Ok(self.get::<i32>(i)?.map(i64::from)),
            Type::INT2 => Ok(self.get::<i16>(i)?.map(i64::from)),
            Type::BOOL => Ok(self.get::<bool>(i)?.map(i64::from)),
            Type::NUMERIC => match self.get::<Numeric>(i)? {
                None => Ok(None),
                Some(n) => n
                    .int
                    .map(Some)
                    .ok_or_else(|| self.mismatch(i, "a whole number")),
            },
            _ => Err(self.mismatch(i, "an integer")),
        }
    }

    fn opt_real(&self, i: usize) -> Result<Option<f64>, StoreError> {
        match *self.ty(i)? {
            Type::FLOAT8 => self.get::<f64>(i),
            Type::FLOAT4 => Ok(self.get::<f32>(i)?.map(f64::from)),
            Type::NUMERIC => Ok(self.get::<Numeric>(i)?.map(|n| n.real)),
            _ => Err(self.mismatch(i, "a real")),
        }
    }

    fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
        if !<&str as FromSql>::accepts(self.ty(i)?) {
            return Err(self.mismatch(i, "text"));
        }
        Ok(self.get::<&str>(i)?.map(str::to_string))
    }

    fn opt_blob(&self, i: usize) -> Result<Option<Vec<u8>>, StoreError> {
        if *self.ty(i)? != Type::BYTEA {
            return Err(self.mismatch(i, "bytes"));
        }
        Ok(self.get::<&[u8]>(i)?.map(<[u8]>::to_vec))
    }
}

/// A NUMERIC as careq reads one: its value as a real, and as an integer when it is whole and
/// fits (aggregates of BIGINT columns are NUMERIC on PostgreSQL, INTEGER on SQLite).
struct Numeric {
    real: f64,
    int: Option<i64>,
}

impl<'a> FromSql<'a> for Numeric {
    /// The binary form: digit count, weight (the power of 10000 of the first digit), sign,
    /// display scale, then the base-10000 digits.
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Numeric, BoxError> {
        let word = |k: usize| -> Result<u16, BoxError> {
            raw.get(2 * k..2 * k + 2)
                .map(|b| u16::from_be_bytes([b[0], b[1]]))
                .ok_or_else(|| "a truncated NUMERIC".into())
        };
        let (ndigits, weight, sign) = (word(0)? as usize, word(1)? as i16, word(2)?);
        if sign == 0xC000 {
            return Ok(Numeric {
                real: f64::NAN,
                int: None,
            });
        }
        let (mut real, mut int, mut whole) = (0f64, Some(0i128), true);
        for k in 0..ndigits {
            let digit = word(4 + k)?;
            let power = i32::from(weight) - k as i32;
            real += f64::from(digit) * 10000f64.powi(power);
            if power >= 0 {
                int = int.and_then(|n| {
                    n.checked_add(i128::from(digit) * 10000i128.checked_pow(power as u32)?)
                });
            } else if digit != 0 {
                whole = false;
            }
        }
        let negative = sign == 0x4000;
        let int = int
            .filter(|_| whole)
            .map(|n| if negative { -n } else { n })
            .and_then(|n| i64::try_from(n).ok());
        Ok(Numeric {
            real: if negative { -real } else { real },
            int,
        })
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }
}
