//! Safe Rust API of libzqlite: SQLite whose every page on disk is sealed with
//! AES-256-GCM, keyed by a passphrase (Argon2id) or a raw 256-bit key.
//!
//! ```no_run
//! use zqlite::SecureDatabase;
//!
//! let db = SecureDatabase::open_encrypted("notes.db", String::from("correct horse"))?;
//! db.execute("CREATE TABLE IF NOT EXISTS notes(id INTEGER PRIMARY KEY, body TEXT)")?;
//! let mut insert = db.prepare("INSERT INTO notes(body) VALUES (?1)")?;
//! insert.bind(1, "buy milk")?;
//! insert.step()?;
//! drop(insert);
//! let rows = db.execute("SELECT body FROM notes")?;
//! assert_eq!(rows.get(0, "body").and_then(|v| v.as_str()), Some("buy milk"));
//! # Ok::<(), zqlite::Error>(())
//! ```
//!
//! Keys are [`SecretKey`]s: zeroized on drop, redacted in `Debug`. A wrong
//! key fails at open with [`ErrorCode::WrongKey`].

mod db;
mod error;
mod key;
mod value;

pub use db::{ColumnType, OpenOptions, SecureDatabase, Statement};
pub use error::{strerror, Error, ErrorCode, Result};
pub use key::SecretKey;
pub use value::{Rows, Value, ValueRef};

/// Version of the linked C library (`zqlite_version()`).
pub fn version() -> String {
    // SAFETY: returns a static string.
    unsafe { ghostflow_common::cstr_lossy(zqlite_sys::zqlite_version()) }
}
