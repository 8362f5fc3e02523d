//! The engine's errors: a `ghost_status` code plus the message the library
//! kept for the failing call (on the context, or per thread).

use ghostflow_common::{cstr_lossy, Status};
use ghostllm_sys as sys;

/// What kind of failure, from `ghost_status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    InvalidArgument,
    Io,
    Format,
    Unsupported,
    NoMem,
    ContextFull,
    Cancelled,
    BadInput,
    BufferTooSmall,
    Internal,
    /// A code this crate does not know (a newer library).
    Other(u32),
}

impl ErrorCode {
    pub fn from_raw(code: sys::ghost_status) -> ErrorCode {
        match code {
            sys::GHOST_ERR_INVALID_ARGUMENT => ErrorCode::InvalidArgument,
            sys::GHOST_ERR_IO => ErrorCode::Io,
            sys::GHOST_ERR_FORMAT => ErrorCode::Format,
            sys::GHOST_ERR_UNSUPPORTED => ErrorCode::Unsupported,
            sys::GHOST_ERR_NOMEM => ErrorCode::NoMem,
            sys::GHOST_ERR_CONTEXT_FULL => ErrorCode::ContextFull,
            sys::GHOST_ERR_CANCELLED => ErrorCode::Cancelled,
            sys::GHOST_ERR_BAD_INPUT => ErrorCode::BadInput,
            sys::GHOST_ERR_BUFFER_TOO_SMALL => ErrorCode::BufferTooSmall,
            sys::GHOST_ERR_INTERNAL => ErrorCode::Internal,
            other => ErrorCode::Other(other),
        }
    }
}

/// An engine failure: the C code and the library's message.
pub type Error = ghostflow_common::Error<ErrorCode>;
pub type Result<T> = std::result::Result<T, Error>;

impl Status for ErrorCode {
    type Raw = sys::ghost_status;
    const INVALID_ARGUMENT: sys::ghost_status = sys::GHOST_ERR_INVALID_ARGUMENT;

    fn from_raw(raw: sys::ghost_status) -> Self {
        ErrorCode::from_raw(raw)
    }

    fn describe(raw: sys::ghost_status) -> String {
        strerror(raw)
    }
}

/// The error kept on `ctx`, or the calling thread's last one when `ctx` is
/// null. Call it on the thread that made the failing call, before any other
/// engine call.
pub(crate) fn last_error(ctx: *const sys::ghost_context) -> Error {
    // SAFETY: ctx is null or a live context; both accessors never return
    // NULL and the message is copied before any other engine call.
    unsafe { Error::new(sys::ghost_errcode(ctx), cstr_lossy(sys::ghost_errmsg(ctx))) }
}

/// `ghost_strerror`: the static description of a code.
pub fn strerror(code: sys::ghost_status) -> String {
    // SAFETY: ghost_strerror accepts any value and never returns NULL.
    unsafe { cstr_lossy(sys::ghost_strerror(code)) }
}
