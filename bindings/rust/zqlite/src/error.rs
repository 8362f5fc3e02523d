//! The store's errors: a `zqlite_status` code plus the message libzqlite kept
//! for the failing call ("page 7: authentication failed"). Key material never
//! appears in a message.

use ghostflow_common::{cstr_lossy, Status};
use zqlite_sys as sys;

/// What kind of failure, from `zqlite_status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// SQL error or missing database.
    Error,
    /// "wrong key or not a zqlite database".
    WrongKey,
    /// A page failed authentication, or a damaged header.
    Corrupt,
    /// A plain SQLite file opened with a key.
    NotEncrypted,
    /// An encrypted file opened without a key.
    KeyRequired,
    Io,
    NoMem,
    Busy,
    Constraint,
    /// Bad argument or wrong call order.
    Misuse,
    /// Bind or column index out of range.
    Range,
    /// A code this crate does not know (a newer library).
    Other(i32),
}

impl ErrorCode {
    pub fn from_raw(code: i32) -> ErrorCode {
        match code as u32 {
            sys::ZQLITE_ERROR => ErrorCode::Error,
            sys::ZQLITE_WRONG_KEY => ErrorCode::WrongKey,
            sys::ZQLITE_CORRUPT => ErrorCode::Corrupt,
            sys::ZQLITE_NOT_ENCRYPTED => ErrorCode::NotEncrypted,
            sys::ZQLITE_KEY_REQUIRED => ErrorCode::KeyRequired,
            sys::ZQLITE_IO => ErrorCode::Io,
            sys::ZQLITE_NOMEM => ErrorCode::NoMem,
            sys::ZQLITE_BUSY => ErrorCode::Busy,
            sys::ZQLITE_CONSTRAINT => ErrorCode::Constraint,
            sys::ZQLITE_MISUSE => ErrorCode::Misuse,
            sys::ZQLITE_RANGE => ErrorCode::Range,
            _ => ErrorCode::Other(code),
        }
    }
}

/// A store failure: the C code and the library's message.
pub type Error = ghostflow_common::Error<ErrorCode>;
pub type Result<T> = std::result::Result<T, Error>;

impl Status for ErrorCode {
    type Raw = i32;
    const INVALID_ARGUMENT: i32 = sys::ZQLITE_MISUSE as i32;

    fn from_raw(raw: i32) -> Self {
        ErrorCode::from_raw(raw)
    }

    fn describe(raw: i32) -> String {
        strerror(raw)
    }
}

/// The error kept on `db`, or the calling thread's last failed open when
/// `db` is null; read right after the failing call.
pub(crate) fn last_error(db: *const sys::zqlite_db) -> Error {
    // SAFETY: db is null or live; neither accessor returns NULL.
    unsafe { Error::new(sys::zqlite_errcode(db), cstr_lossy(sys::zqlite_errmsg(db))) }
}

/// `code`, which a call on `db` returned, with the message kept on `db`.
pub(crate) fn call_error(code: i32, db: *const sys::zqlite_db) -> Error {
    // SAFETY: as in last_error.
    Error::new(code, unsafe { cstr_lossy(sys::zqlite_errmsg(db)) })
}

/// `zqlite_strerror`: the static description of a code.
pub fn strerror(code: i32) -> String {
    // SAFETY: accepts any value, never returns NULL.
    unsafe { cstr_lossy(sys::zqlite_strerror(code)) }
}
