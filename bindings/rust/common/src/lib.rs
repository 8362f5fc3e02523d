//! What the safe crates (`ghostllm`, `zqlite`, `ghostflow`) share: the
//! error type over a C library's status code, C string conversions, and
//! carrying a Rust closure through a C streaming callback.

use std::ffi::{CStr, CString};
use std::fmt;
use std::os::raw::c_char;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

pub mod stream;

/// A C library's status enum, seen from Rust.
pub trait Status: Copy + fmt::Debug + Eq + Send + Sync + 'static {
    /// The C type of a code (`ghost_status`, `int`, ...).
    type Raw: Copy + fmt::Debug + fmt::Display + Eq + Send + Sync + 'static;
    /// The code meaning "bad argument", for failures found on the Rust side.
    const INVALID_ARGUMENT: Self::Raw;
    fn from_raw(raw: Self::Raw) -> Self;
    /// The library's static description of a code (`*_strerror`).
    fn describe(raw: Self::Raw) -> String;
}

/// A failure of a C library: its code and the message it kept for the
/// failing call ("tensor blk.3.ffn_up: offset 812344 past end of file").
#[derive(Clone, PartialEq, Eq)]
pub struct Error<S: Status> {
    code: S,
    raw_code: S::Raw,
    message: String,
}

impl<S: Status> Error<S> {
    /// An error with `raw_code` and `message`; an empty message is replaced
    /// by the code's description so that Display is never empty.
    pub fn new(raw_code: S::Raw, message: impl Into<String>) -> Self {
        let mut message = message.into();
        if message.is_empty() {
            message = S::describe(raw_code);
        }
        Error { code: S::from_raw(raw_code), raw_code, message }
    }

    /// A bad argument found before calling C.
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(S::INVALID_ARGUMENT, message)
    }

    pub fn code(&self) -> S {
        self.code
    }

    /// The status value as the C library returned it.
    pub fn raw_code(&self) -> S::Raw {
        self.raw_code
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// The same message under another library's code.
    pub fn recode<T: Status>(self, raw_code: T::Raw) -> Error<T> {
        Error::new(raw_code, self.message)
    }
}

impl<S: Status> fmt::Display for Error<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl<S: Status> fmt::Debug for Error<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("code", &self.code)
            .field("raw_code", &self.raw_code)
            .field("message", &self.message)
            .finish()
    }
}

impl<S: Status> std::error::Error for Error<S> {}

/// Copies a C string (NULL → ""), replacing invalid UTF-8.
///
/// # Safety
/// `p` is null or a NUL-terminated string valid for this call.
pub unsafe fn cstr_lossy(p: *const c_char) -> String {
    cstr_opt(p).unwrap_or_default()
}

/// As [`cstr_lossy`], `None` for NULL.
///
/// # Safety
/// As [`cstr_lossy`].
pub unsafe fn cstr_opt(p: *const c_char) -> Option<String> {
    (!p.is_null()).then(|| CStr::from_ptr(p).to_string_lossy().into_owned())
}

/// A C string argument, or an error naming `what` held a NUL byte where.
pub fn cstring<S: Status>(what: &str, s: &str) -> Result<CString, Error<S>> {
    CString::new(s).map_err(|e| {
        Error::invalid_argument(format!(
            "{what}: NUL byte at offset {} (C strings cannot hold one)",
            e.nul_position()
        ))
    })
}

/// A path as a C string.
pub fn path_cstring<S: Status>(path: &Path) -> Result<CString, Error<S>> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| Error::invalid_argument(format!("{}: path holds a NUL byte", path.display())))
}
