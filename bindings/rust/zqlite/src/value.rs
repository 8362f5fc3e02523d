//! Values going into and coming out of the database.

use zqlite_sys as sys;

/// A value read from the database (owned).
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl Value {
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Integer(i) => Some(*i),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Real(d) => Some(*d),
            Value::Integer(i) => Some(*i as f64),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_blob(&self) -> Option<&[u8]> {
        match self {
            Value::Blob(b) => Some(b),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// Copies a cell of a `zqlite_result`.
    ///
    /// # Safety
    /// `v` belongs to a live result; its text/blob pointer holds `len` bytes.
    pub(crate) unsafe fn from_cell(v: &sys::zqlite_value) -> Value {
        let bytes = || {
            if v.text.is_null() || v.len == 0 {
                Vec::new()
            } else {
                std::slice::from_raw_parts(v.text as *const u8, v.len).to_vec()
            }
        };
        match v.type_ {
            sys::ZQLITE_INTEGER => Value::Integer(v.i),
            sys::ZQLITE_FLOAT => Value::Real(v.d),
            sys::ZQLITE_TEXT => Value::Text(text_or_lossy(bytes())),
            sys::ZQLITE_BLOB => Value::Blob(bytes()),
            _ => Value::Null,
        }
    }
}

/// Text as stored; bytes that are not UTF-8 (SQLite does not check) become
/// U+FFFD rather than failing the whole read.
pub(crate) fn text_or_lossy(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// A value to bind to a statement parameter, borrowed for the call (the
/// library copies it). Anything `Into<ValueRef>` can be bound: integers,
/// floats, `bool`, `&str`, `&[u8]`, `Option<T>` (None = NULL), `&Value`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ValueRef<'a> {
    Null,
    Integer(i64),
    Real(f64),
    Text(&'a str),
    Blob(&'a [u8]),
}

macro_rules! integer_value_ref {
    ($($t:ty),*) => {$(
        impl From<$t> for ValueRef<'_> {
            fn from(v: $t) -> Self {
                ValueRef::Integer(i64::from(v))
            }
        }
    )*};
}
integer_value_ref!(i8, i16, i32, i64, u8, u16, u32, bool);

impl From<f64> for ValueRef<'_> {
    fn from(v: f64) -> Self {
        ValueRef::Real(v)
    }
}

impl From<f32> for ValueRef<'_> {
    fn from(v: f32) -> Self {
        ValueRef::Real(f64::from(v))
    }
}

impl<'a> From<&'a str> for ValueRef<'a> {
    fn from(v: &'a str) -> Self {
        ValueRef::Text(v)
    }
}

impl<'a> From<&'a String> for ValueRef<'a> {
    fn from(v: &'a String) -> Self {
        ValueRef::Text(v)
    }
}

impl<'a> From<&'a [u8]> for ValueRef<'a> {
    fn from(v: &'a [u8]) -> Self {
        ValueRef::Blob(v)
    }
}

impl<'a> From<&'a Vec<u8>> for ValueRef<'a> {
    fn from(v: &'a Vec<u8>) -> Self {
        ValueRef::Blob(v)
    }
}

impl<'a> From<&'a Value> for ValueRef<'a> {
    fn from(v: &'a Value) -> Self {
        match v {
            Value::Null => ValueRef::Null,
            Value::Integer(i) => ValueRef::Integer(*i),
            Value::Real(d) => ValueRef::Real(*d),
            Value::Text(s) => ValueRef::Text(s),
            Value::Blob(b) => ValueRef::Blob(b),
        }
    }
}

impl<'a, T: Into<ValueRef<'a>>> From<Option<T>> for ValueRef<'a> {
    fn from(v: Option<T>) -> Self {
        v.map_or(ValueRef::Null, Into::into)
    }
}

/// Rows of a [`crate::SecureDatabase::execute`]: those of the last statement
/// that returned rows.
#[derive(Clone, Debug, PartialEq)]
pub struct Rows {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
    /// Rows changed by the last statement.
    pub changes: i64,
}

impl Rows {
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Index of the column called `name`.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }

    /// The cell at `row` in the column called `name`.
    pub fn get(&self, row: usize, name: &str) -> Option<&Value> {
        self.rows.get(row)?.get(self.column_index(name)?)
    }
}
