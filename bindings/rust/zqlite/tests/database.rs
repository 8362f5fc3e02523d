//! The encrypted store through the safe API: round trips, keys, statements.

#[path = "../../test-support/common.rs"]
mod common;

use std::path::Path;

use zeroize::{Zeroize, ZeroizeOnDrop};
use zqlite::{ColumnType, ErrorCode, OpenOptions, SecretKey, SecureDatabase, Value};

/// Argon2id at its minimum cost: these tests check behaviour, not KDF strength.
fn fast() -> OpenOptions {
    OpenOptions { kdf_opslimit: 1, kdf_memlimit: 8192, ..OpenOptions::default() }
}

fn open(path: &Path, key: &str) -> zqlite::Result<SecureDatabase> {
    SecureDatabase::open_with(path, key, &fast())
}

const MARKER: &str = "plaintext-marker-7f3a91";

#[test]
fn encrypted_round_trip_survives_reopen_and_hides_the_text() {
    let dir = common::TempDir::new("zq-roundtrip");
    let path = dir.join("notes.db");
    {
        let db = open(&path, "correct horse").unwrap();
        db.execute("CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT, score REAL, raw BLOB)").unwrap();
        let mut insert = db.prepare("INSERT INTO notes(body, score, raw) VALUES (?1, ?2, ?3)").unwrap();
        for i in 0..20 {
            insert.bind(1, format!("{MARKER} {i}").as_str()).unwrap();
            insert.bind(2, f64::from(i) / 2.0).unwrap();
            insert.bind(3, &[i as u8, 0, 255][..]).unwrap();
            assert!(!insert.step().unwrap(), "an INSERT returns no row");
            insert.reset().unwrap();
        }
        assert_eq!(db.changes(), 1);
        assert_eq!(db.last_insert_rowid(), 20);
    }
    let bytes = std::fs::read(&path).unwrap();
    assert!(
        !bytes.windows(MARKER.len()).any(|w| w == MARKER.as_bytes()),
        "the text reached the disk in the clear"
    );

    let db = open(&path, "correct horse").unwrap();
    let rows = db.execute("SELECT id, body, score, raw FROM notes ORDER BY id").unwrap();
    assert_eq!(rows.columns, ["id", "body", "score", "raw"]);
    assert_eq!(rows.len(), 20);
    assert_eq!(rows.rows[7][0], Value::Integer(8));
    assert_eq!(rows.get(7, "body").and_then(Value::as_str), Some(format!("{MARKER} 7").as_str()));
    assert_eq!(rows.get(7, "score"), Some(&Value::Real(3.5)));
    assert_eq!(rows.get(7, "raw").and_then(Value::as_blob), Some(&[7u8, 0, 255][..]));
}

#[test]
fn wrong_key_is_rejected_with_wrong_key() {
    let dir = common::TempDir::new("zq-wrongkey");
    let path = dir.join("a.db");
    open(&path, "right").unwrap().execute("CREATE TABLE t(x); INSERT INTO t VALUES (1)").unwrap();
    let err = open(&path, "wrong").unwrap_err();
    assert_eq!(err.code(), ErrorCode::WrongKey);
    assert_eq!(err.raw_code(), zqlite_sys::ZQLITE_WRONG_KEY as i32);
    assert!(err.message().contains("wrong key"), "message: {}", err.message());
    // The right key still works afterwards.
    let rows = open(&path, "right").unwrap().execute("SELECT x FROM t").unwrap();
    assert_eq!(rows.rows, vec![vec![Value::Integer(1)]]);
}

#[test]
fn plain_and_encrypted_files_are_told_apart() {
    let dir = common::TempDir::new("zq-plain");
    let enc = dir.join("enc.db");
    open(&enc, "k").unwrap().execute("CREATE TABLE t(x)").unwrap();
    assert_eq!(SecureDatabase::open_plain(&enc).unwrap_err().code(), ErrorCode::KeyRequired);

    let plain = dir.join("plain.db");
    SecureDatabase::open_plain(&plain).unwrap().execute("CREATE TABLE t(x)").unwrap();
    assert_eq!(open(&plain, "k").unwrap_err().code(), ErrorCode::NotEncrypted);
}

#[test]
fn raw_key_opens_and_rekey_switches_keys() {
    let dir = common::TempDir::new("zq-rekey");
    let path = dir.join("r.db");
    let raw = [0x5au8; 32];
    {
        let mut db = SecureDatabase::open_with(&path, SecretKey::raw(&raw), &fast()).unwrap();
        db.execute("CREATE TABLE t(x); INSERT INTO t VALUES ('kept')").unwrap();
        db.rekey("new passphrase", Some(&fast())).unwrap();
    }
    assert_eq!(
        SecureDatabase::open_with(&path, SecretKey::raw(&raw), &fast()).unwrap_err().code(),
        ErrorCode::WrongKey
    );
    let rows = open(&path, "new passphrase").unwrap().execute("SELECT x FROM t").unwrap();
    assert_eq!(rows.rows[0][0].as_str(), Some("kept"));
}

#[test]
fn statements_bind_and_read_every_type() {
    let db = open(Path::new(":memory:"), "k").unwrap();
    db.execute("CREATE TABLE v(i INTEGER, r REAL, t TEXT, b BLOB, n)").unwrap();
    let mut ins = db.prepare("INSERT INTO v VALUES (:i, :r, :t, :b, :n)").unwrap();
    ins.bind_named(":i", -42i64).unwrap();
    ins.bind_named(":r", 2.5).unwrap();
    ins.bind_named(":t", "héllo").unwrap();
    ins.bind_named(":b", &b"\x00\x01\x02"[..]).unwrap();
    ins.bind_named(":n", None::<i64>).unwrap();
    ins.step().unwrap();
    assert_eq!(ins.bind_named(":missing", 1).unwrap_err().code(), ErrorCode::Range);
    drop(ins);

    let mut q = db.prepare("SELECT i, r, t, b, n FROM v WHERE i = ?1").unwrap();
    assert_eq!(q.column_count(), 5);
    assert_eq!(q.column_name(2).unwrap(), "t");
    assert_eq!(q.column_i64(0).unwrap_err().code(), ErrorCode::Misuse, "no row before step");
    q.bind(1, -42).unwrap();
    assert!(q.step().unwrap());
    assert_eq!(q.column_type(0).unwrap(), ColumnType::Integer);
    assert_eq!(q.column_i64(0).unwrap(), -42);
    assert_eq!(q.column_f64(1).unwrap(), 2.5);
    assert_eq!(q.column_text(2).unwrap(), Some("héllo"));
    assert_eq!(q.column_blob(3).unwrap(), b"\x00\x01\x02");
    assert_eq!(q.column_type(4).unwrap(), ColumnType::Null);
    assert_eq!(q.column_text(4).unwrap(), None);
    assert_eq!(q.column_value(2).unwrap(), Value::Text("héllo".into()));
    assert_eq!(q.column_i64(5).unwrap_err().code(), ErrorCode::Range);
    assert!(!q.step().unwrap());

    q.reset().unwrap();
    q.clear_bindings().unwrap();
    assert!(!q.step().unwrap(), "a NULL parameter matches nothing");
}

#[test]
fn sql_errors_carry_code_and_message() {
    let db = open(Path::new(":memory:"), "k").unwrap();
    let err = db.execute("SELEC nonsense").unwrap_err();
    assert_eq!(err.code(), ErrorCode::Error);
    assert!(err.message().contains("syntax error"), "message: {err}");
    assert_eq!(format!("{err}"), err.message());
    assert!(db.prepare("SELECT * FROM missing_table").is_err());

    db.execute("CREATE TABLE u(x UNIQUE); INSERT INTO u VALUES (1)").unwrap();
    let err = db.execute("INSERT INTO u VALUES (1)").unwrap_err();
    assert_eq!(err.code(), ErrorCode::Constraint, "{err}");
    let err = db.execute("SELECT 1 \0").unwrap_err();
    assert_eq!(err.code(), ErrorCode::Misuse);
}

#[test]
fn secret_keys_are_zeroized_and_redacted() {
    fn zeroized_on_drop<T: ZeroizeOnDrop>() {}
    zeroized_on_drop::<SecretKey>();

    let mut key = SecretKey::from(String::from("hunter2"));
    assert_eq!(key.expose(), b"hunter2");
    assert_eq!(format!("{key:?}"), "SecretKey(<redacted>)");
    key.zeroize();
    assert!(key.expose().is_empty());

    let raw = SecretKey::raw(&[0xab; 32]);
    assert_eq!(raw.expose(), format!("x'{}'", "ab".repeat(32)).as_bytes());

    let err = SecureDatabase::open_encrypted(":memory:", "").unwrap_err();
    assert_eq!(err.code(), ErrorCode::Misuse);
}

#[test]
fn database_moves_between_threads() {
    fn send<T: Send>() {}
    send::<SecureDatabase>();
    let db = open(Path::new(":memory:"), "k").unwrap();
    db.execute("CREATE TABLE t(x); INSERT INTO t VALUES (3)").unwrap();
    let rows = std::thread::spawn(move || db.execute("SELECT x * 2 FROM t").unwrap()).join().unwrap();
    assert_eq!(rows.rows[0][0], Value::Integer(6));
}
