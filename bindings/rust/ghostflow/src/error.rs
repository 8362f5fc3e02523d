//! The service's errors: a `gf_status` code plus the message libghostflow
//! kept for the calling thread's failing call. Messages never hold key
//! material or prompt text.

use ghostflow_common::{cstr_lossy, Status};
use ghostflow_sys as sys;

/// What kind of failure, from `gf_status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    InvalidArgument,
    /// The engine failed (a partial answer may have been stored).
    Model,
    /// The store failed.
    Database,
    /// "wrong key or not a ghostflow database".
    WrongKey,
    NoMem,
    Cancelled,
    /// No such conversation or prompt.
    NotFound,
    /// The database stayed locked by another process.
    Busy,
    Internal,
    /// A code this crate does not know (a newer library).
    Other(u32),
}

impl ErrorCode {
    pub fn from_raw(code: sys::gf_status) -> ErrorCode {
        match code {
            sys::GF_ERR_INVALID_ARGUMENT => ErrorCode::InvalidArgument,
            sys::GF_ERR_MODEL => ErrorCode::Model,
            sys::GF_ERR_DATABASE => ErrorCode::Database,
            sys::GF_ERR_WRONG_KEY => ErrorCode::WrongKey,
            sys::GF_ERR_NOMEM => ErrorCode::NoMem,
            sys::GF_ERR_CANCELLED => ErrorCode::Cancelled,
            sys::GF_ERR_NOT_FOUND => ErrorCode::NotFound,
            sys::GF_ERR_BUSY => ErrorCode::Busy,
            sys::GF_ERR_INTERNAL => ErrorCode::Internal,
            other => ErrorCode::Other(other),
        }
    }
}

/// A service failure: the C code and the library's message.
pub type Error = ghostflow_common::Error<ErrorCode>;
pub type Result<T> = std::result::Result<T, Error>;

impl Status for ErrorCode {
    type Raw = sys::gf_status;
    const INVALID_ARGUMENT: sys::gf_status = sys::GF_ERR_INVALID_ARGUMENT;

    fn from_raw(raw: sys::gf_status) -> Self {
        ErrorCode::from_raw(raw)
    }

    fn describe(raw: sys::gf_status) -> String {
        strerror(raw)
    }
}

/// The calling thread's last failure on `svc` (null: of the last failed
/// gf_open).
pub(crate) fn last_error(svc: *const sys::gf_service) -> Error {
    // SAFETY: svc is null or live; neither accessor returns NULL, and the
    // message is per thread, so no other thread can change it meanwhile.
    unsafe { Error::new(sys::gf_errcode(svc), cstr_lossy(sys::gf_errmsg(svc))) }
}

/// `gf_strerror`: the static description of a code.
pub fn strerror(code: sys::gf_status) -> String {
    // SAFETY: accepts any value, never returns NULL.
    unsafe { cstr_lossy(sys::gf_strerror(code as i32)) }
}
