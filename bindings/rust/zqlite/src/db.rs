//! `SecureDatabase` (a `zqlite_db` connection) and its prepared `Statement`s.

use std::ffi::CStr;
use std::os::raw::c_int;
use std::path::Path;
use std::ptr::{self, NonNull};

use zqlite_sys as sys;

use ghostflow_common::{cstr_lossy, cstring, path_cstring};

use crate::error::{call_error, last_error, Error, Result};
use crate::key::SecretKey;
use crate::value::{text_or_lossy, Rows, Value, ValueRef};

/// Options for [`SecureDatabase::open_with`] (`zqlite_open_options`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenOptions {
    pub readonly: bool,
    /// Create the file if missing.
    pub create: bool,
    /// Argon2id cost for a new database (0 = the library's default).
    pub kdf_opslimit: u64,
    /// Argon2id memory in bytes (0 = default).
    pub kdf_memlimit: usize,
    /// Page size of a new database (0 = 4096).
    pub page_size: i32,
    /// Page cache in KiB (0 = the library's default).
    pub cache_kib: i32,
}

impl Default for OpenOptions {
    fn default() -> Self {
        // SAFETY: a pure function returning a struct by value.
        let o = unsafe { sys::zqlite_default_open_options() };
        OpenOptions {
            readonly: o.readonly != 0,
            create: o.create != 0,
            kdf_opslimit: o.kdf_opslimit,
            kdf_memlimit: o.kdf_memlimit,
            page_size: o.page_size,
            cache_kib: o.cache_kib,
        }
    }
}

impl OpenOptions {
    fn to_raw(&self) -> sys::zqlite_open_options {
        sys::zqlite_open_options {
            readonly: self.readonly.into(),
            create: self.create.into(),
            kdf_opslimit: self.kdf_opslimit,
            kdf_memlimit: self.kdf_memlimit,
            page_size: self.page_size,
            cache_kib: self.cache_kib,
            base_vfs: ptr::null(), // SQLite's "unix" VFS
            immutable: 0,
        }
    }
}

fn check(code: c_int, db: *const sys::zqlite_db) -> Result<()> {
    if code == sys::ZQLITE_OK as c_int {
        Ok(())
    } else {
        Err(call_error(code, db))
    }
}

/// An open encrypted database.
///
/// `Send` but not `Sync`: libzqlite serializes a connection's SQL across
/// threads, but the connection keeps one error message for the last failing
/// call, which another thread could overwrite while it is read. Open one
/// connection per thread (zqlite.h recommends it), or guard one with a Mutex.
///
/// ```compile_fail
/// fn shared_between_threads<T: Sync>() {}
/// shared_between_threads::<zqlite::SecureDatabase>();
/// ```
pub struct SecureDatabase {
    raw: NonNull<sys::zqlite_db>,
}

// SAFETY: zqlite.h: "a zqlite_db may be used from several threads (SQLite's
// serialized mode)", so using it from a thread other than the opener's is
// fine. Not Sync: see the type's documentation.
unsafe impl Send for SecureDatabase {}

impl SecureDatabase {
    /// Opens (or creates) the encrypted database at `path` with a passphrase
    /// or a raw key ([`SecretKey::raw`]). The key is checked here: a wrong one
    /// fails with [`crate::ErrorCode::WrongKey`]. The Rust copy of the key is
    /// zeroized when this returns; the library keeps its own in locked memory
    /// until the database is dropped. `":memory:"` gives an in-memory database.
    pub fn open_encrypted(path: impl AsRef<Path>, key: impl Into<SecretKey>) -> Result<SecureDatabase> {
        Self::open_with(path, key, &OpenOptions::default())
    }

    /// [`SecureDatabase::open_encrypted`] with options (KDF cost, read-only, ...).
    pub fn open_with(
        path: impl AsRef<Path>,
        key: impl Into<SecretKey>,
        options: &OpenOptions,
    ) -> Result<SecureDatabase> {
        let key = key.into();
        if key.is_empty() {
            return Err(Error::new(
                sys::ZQLITE_MISUSE as i32,
                "the key is empty (use open_plain for a plain file)",
            ));
        }
        Self::open_raw(path.as_ref(), Some(&key), options)
    }

    /// Opens a plain (unencrypted) SQLite file; an encrypted one fails with
    /// [`crate::ErrorCode::KeyRequired`].
    pub fn open_plain(path: impl AsRef<Path>) -> Result<SecureDatabase> {
        Self::open_raw(path.as_ref(), None, &OpenOptions::default())
    }

    fn open_raw(path: &Path, key: Option<&SecretKey>, options: &OpenOptions) -> Result<SecureDatabase> {
        let c_path = path_cstring(path)?;
        let (key_ptr, key_len) =
            key.map_or((ptr::null(), 0), |k| (k.expose().as_ptr().cast(), k.expose().len()));
        let raw_options = options.to_raw();
        // SAFETY: every pointer is valid for the call; the library copies the
        // key, so the SecretKey may be wiped as soon as this returns.
        let raw = unsafe { sys::zqlite_open_v2(c_path.as_ptr(), key_ptr, key_len, &raw_options) };
        NonNull::new(raw).map(|raw| SecureDatabase { raw }).ok_or_else(|| last_error(ptr::null()))
    }

    pub fn as_ptr(&self) -> *mut sys::zqlite_db {
        self.raw.as_ptr()
    }

    /// Runs every statement in `sql`; returns the rows of the last statement
    /// that returned rows (none: empty `Rows` with `changes` set).
    pub fn execute(&self, sql: &str) -> Result<Rows> {
        let c_sql = cstring("sql", sql)?;
        // SAFETY: db and sql are valid; the result is ours until freed below.
        unsafe {
            let r = sys::zqlite_execute(self.as_ptr(), c_sql.as_ptr());
            if r.is_null() {
                return Err(Error::new(sys::ZQLITE_NOMEM as i32, "out of memory for the result"));
            }
            let out = convert_result(&*r);
            sys::zqlite_free_result(r);
            out
        }
    }

    /// Prepares one statement (the first of `sql`).
    pub fn prepare(&self, sql: &str) -> Result<Statement<'_>> {
        let c_sql = cstring("sql", sql)?;
        // SAFETY: db and sql are valid; the statement is finalized on drop,
        // before the database can be (it borrows it).
        let raw = unsafe { sys::zqlite_prepare_statement(self.as_ptr(), c_sql.as_ptr()) };
        match NonNull::new(raw) {
            Some(raw) => {
                // SAFETY: a live statement.
                let columns = unsafe { sys::zqlite_column_count(raw.as_ptr()) };
                Ok(Statement { raw, db: self, columns, has_row: false })
            }
            None => Err(last_error(self.as_ptr())),
        }
    }

    /// Rows changed by the last statement.
    pub fn changes(&self) -> i64 {
        // SAFETY: a live connection.
        unsafe { sys::zqlite_changes(self.as_ptr()) }
    }

    /// Row id of the last successful INSERT on this connection (0 if none).
    /// `SecureDatabase` is not `Sync`: no other thread's insert can come between.
    pub fn last_insert_rowid(&self) -> i64 {
        // SAFETY: a live connection.
        unsafe { sys::zqlite_last_insert_rowid(self.as_ptr()) }
    }

    /// Waits up to `ms` for a lock held by another connection.
    pub fn busy_timeout(&self, ms: i32) -> Result<()> {
        // SAFETY: a live connection.
        check(unsafe { sys::zqlite_busy_timeout(self.as_ptr(), ms) }, self.as_ptr())
    }

    /// Re-encrypts the database under `new_key` (crash-safe: the old or the
    /// new key works after an interruption). `&mut self`: no statement may be
    /// open meanwhile. `options`: the KDF cost for the new key.
    pub fn rekey(&mut self, new_key: impl Into<SecretKey>, options: Option<&OpenOptions>) -> Result<()> {
        let key = new_key.into();
        let raw_options = options.map(OpenOptions::to_raw);
        let opt_ptr = raw_options.as_ref().map_or(ptr::null(), |o| o as *const _);
        // SAFETY: valid pointers for the call; the library copies the key.
        let rc = unsafe {
            sys::zqlite_rekey(self.as_ptr(), key.expose().as_ptr().cast(), key.expose().len(), opt_ptr)
        };
        check(rc, self.as_ptr())
    }

    /// Writes a plain SQLite copy to `path`, which must not exist.
    pub fn export_plain(&self, path: impl AsRef<Path>) -> Result<()> {
        let c_path = path_cstring(path.as_ref())?;
        // SAFETY: valid pointers for the call.
        check(unsafe { sys::zqlite_export_plain(self.as_ptr(), c_path.as_ptr()) }, self.as_ptr())
    }

    /// Copies the plain SQLite file at `path` into this (empty) database.
    pub fn import_plain(&self, path: impl AsRef<Path>) -> Result<()> {
        let c_path = path_cstring(path.as_ref())?;
        // SAFETY: valid pointers for the call.
        check(unsafe { sys::zqlite_import_plain(self.as_ptr(), c_path.as_ptr()) }, self.as_ptr())
    }
}

impl Drop for SecureDatabase {
    fn drop(&mut self) {
        // SAFETY: no statement is left (they borrow self); closing wipes the
        // library's copy of the key.
        unsafe { sys::zqlite_close(self.raw.as_ptr()) };
    }
}

impl std::fmt::Debug for SecureDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecureDatabase").finish_non_exhaustive()
    }
}

/// Copies a zqlite_result into Rows, or its error.
unsafe fn convert_result(r: &sys::zqlite_result) -> Result<Rows> {
    if r.status != sys::ZQLITE_OK as c_int {
        return Err(Error::new(r.status, cstr_lossy(r.error_message)));
    }
    let columns = (0..r.column_count).map(|c| cstr_lossy(*r.column_names.add(c))).collect();
    let rows = (0..r.row_count)
        .map(|row| {
            (0..r.column_count).map(|col| Value::from_cell(&*sys::zqlite_result_cell(r, row, col))).collect()
        })
        .collect();
    Ok(Rows { columns, rows, changes: r.changes })
}

/// The column type of the current row (`zqlite_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ColumnType {
    Integer,
    Float,
    Text,
    Blob,
    Null,
}

/// A prepared statement. Bind parameters (numbered from 1), then
/// [`Statement::step`] through the rows; column accessors read the current
/// row, and what they borrow is valid until the next step or reset (the
/// borrow checker enforces it). A statement stays on its thread (not `Send`):
///
/// ```compile_fail
/// fn moved_to_another_thread<T: Send>() {}
/// moved_to_another_thread::<zqlite::Statement<'static>>();
/// ```
pub struct Statement<'db> {
    raw: NonNull<sys::zqlite_stmt>,
    db: &'db SecureDatabase,
    columns: c_int,
    has_row: bool,
}

impl<'db> Statement<'db> {
    fn check(&self, code: c_int) -> Result<()> {
        check(code, self.db.as_ptr())
    }

    fn raw(&self) -> *mut sys::zqlite_stmt {
        self.raw.as_ptr()
    }

    /// Binds `value` to parameter `index` (from 1).
    pub fn bind<'v>(&mut self, index: i32, value: impl Into<ValueRef<'v>>) -> Result<&mut Self> {
        let s = self.raw();
        // SAFETY: a live statement; the library copies text and blobs.
        let rc = unsafe {
            match value.into() {
                ValueRef::Null => sys::zqlite_bind_null(s, index),
                ValueRef::Integer(i) => sys::zqlite_bind_int64(s, index, i),
                ValueRef::Real(d) => sys::zqlite_bind_double(s, index, d),
                ValueRef::Text(t) => sys::zqlite_bind_text(s, index, t.as_ptr().cast(), t.len() as i64),
                ValueRef::Blob(b) => sys::zqlite_bind_blob(s, index, b.as_ptr().cast(), b.len()),
            }
        };
        self.check(rc)?;
        Ok(self)
    }

    /// Binds `value` to the parameter called `name` (`:name`, `@name`, `$name`).
    pub fn bind_named<'v>(&mut self, name: &str, value: impl Into<ValueRef<'v>>) -> Result<&mut Self> {
        match self.parameter_index(name)? {
            Some(index) => self.bind(index, value),
            None => Err(Error::new(sys::ZQLITE_RANGE as i32, format!("no parameter named {name}"))),
        }
    }

    /// The index of the parameter called `name`, if there is one.
    pub fn parameter_index(&self, name: &str) -> Result<Option<i32>> {
        let c_name = cstring("parameter name", name)?;
        // SAFETY: a live statement and a valid name.
        let i = unsafe { sys::zqlite_bind_parameter_index(self.raw(), c_name.as_ptr()) };
        Ok((i > 0).then_some(i))
    }

    /// Advances to the next row: `true` when a row is ready, `false` when
    /// the statement has finished.
    pub fn step(&mut self) -> Result<bool> {
        // SAFETY: a live statement, used by this thread only (not Send).
        let rc = unsafe { sys::zqlite_step(self.raw()) };
        self.has_row = rc == sys::ZQLITE_ROW as c_int;
        match rc as u32 {
            sys::ZQLITE_ROW => Ok(true),
            sys::ZQLITE_DONE => Ok(false),
            _ => Err(call_error(rc, self.db.as_ptr())),
        }
    }

    /// Rewinds to run again; bindings are kept.
    pub fn reset(&mut self) -> Result<()> {
        self.has_row = false;
        // SAFETY: a live statement.
        self.check(unsafe { sys::zqlite_reset(self.raw()) })
    }

    pub fn clear_bindings(&mut self) -> Result<()> {
        // SAFETY: a live statement.
        self.check(unsafe { sys::zqlite_clear_bindings(self.raw()) })
    }

    pub fn column_count(&self) -> usize {
        self.columns as usize
    }

    fn column(&self, col: usize, need_row: bool) -> Result<c_int> {
        if col < self.column_count() && (self.has_row || !need_row) {
            Ok(col as c_int)
        } else if col >= self.column_count() {
            Err(Error::new(
                sys::ZQLITE_RANGE as i32,
                format!("column {col} out of range (statement has {})", self.columns),
            ))
        } else {
            Err(Error::new(
                sys::ZQLITE_MISUSE as i32,
                format!("column {col}: no current row (call step first)"),
            ))
        }
    }

    pub fn column_name(&self, col: usize) -> Result<&str> {
        let c = self.column(col, false)?;
        // SAFETY: in range; the name is owned by the statement, which the
        // returned borrow cannot outlive.
        let p = unsafe { sys::zqlite_column_name(self.raw(), c) };
        if p.is_null() {
            return Err(last_error(self.db.as_ptr()));
        }
        unsafe { CStr::from_ptr(p) }
            .to_str()
            .map_err(|_| Error::new(sys::ZQLITE_ERROR as i32, format!("column {col}: name is not UTF-8")))
    }

    pub fn column_type(&self, col: usize) -> Result<ColumnType> {
        let c = self.column(col, true)?;
        // SAFETY: in range, with a current row.
        Ok(match unsafe { sys::zqlite_column_type(self.raw(), c) } {
            sys::ZQLITE_INTEGER => ColumnType::Integer,
            sys::ZQLITE_FLOAT => ColumnType::Float,
            sys::ZQLITE_TEXT => ColumnType::Text,
            sys::ZQLITE_BLOB => ColumnType::Blob,
            _ => ColumnType::Null,
        })
    }

    /// The column as an integer (SQLite's conversions apply; NULL is 0).
    pub fn column_i64(&self, col: usize) -> Result<i64> {
        let c = self.column(col, true)?;
        // SAFETY: in range, with a current row.
        Ok(unsafe { sys::zqlite_column_int64(self.raw(), c) })
    }

    /// The column as a float (SQLite's conversions apply; NULL is 0.0).
    pub fn column_f64(&self, col: usize) -> Result<f64> {
        let c = self.column(col, true)?;
        // SAFETY: in range, with a current row.
        Ok(unsafe { sys::zqlite_column_double(self.raw(), c) })
    }

    /// The column's bytes (text or blob; empty for NULL).
    pub fn column_blob(&self, col: usize) -> Result<&[u8]> {
        let c = self.column(col, true)?;
        // SAFETY: in range, with a current row. Blob before bytes, as SQLite
        // requires; the bytes stay valid until the next step/reset, which
        // need &mut self and so end this borrow first.
        unsafe {
            let p = sys::zqlite_column_blob(self.raw(), c);
            let n = sys::zqlite_column_bytes(self.raw(), c);
            Ok(if p.is_null() || n == 0 { &[] } else { std::slice::from_raw_parts(p.cast(), n) })
        }
    }

    /// The column as text: `None` for NULL, an error if it is not UTF-8.
    pub fn column_text(&self, col: usize) -> Result<Option<&str>> {
        if self.column_type(col)? == ColumnType::Null {
            return Ok(None);
        }
        let c = self.column(col, true)?;
        // SAFETY: as in column_blob; text before bytes.
        let bytes = unsafe {
            let p = sys::zqlite_column_text(self.raw(), c);
            let n = sys::zqlite_column_bytes(self.raw(), c);
            if p.is_null() || n == 0 {
                &[]
            } else {
                std::slice::from_raw_parts(p as *const u8, n)
            }
        };
        std::str::from_utf8(bytes).map(Some).map_err(|e| {
            Error::new(sys::ZQLITE_ERROR as i32, format!("column {col}: text is not UTF-8 ({e})"))
        })
    }

    /// The column as an owned [`Value`] of its stored type.
    pub fn column_value(&self, col: usize) -> Result<Value> {
        Ok(match self.column_type(col)? {
            ColumnType::Null => Value::Null,
            ColumnType::Integer => Value::Integer(self.column_i64(col)?),
            ColumnType::Float => Value::Real(self.column_f64(col)?),
            ColumnType::Text => Value::Text(text_or_lossy(self.column_blob(col)?.to_vec())),
            ColumnType::Blob => Value::Blob(self.column_blob(col)?.to_vec()),
        })
    }
}

impl std::fmt::Debug for Statement<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Statement").field("columns", &self.columns).field("has_row", &self.has_row).finish()
    }
}

impl Drop for Statement<'_> {
    fn drop(&mut self) {
        // SAFETY: we own the statement.
        unsafe { sys::zqlite_finalize(self.raw.as_ptr()) };
    }
}
