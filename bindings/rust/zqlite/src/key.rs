//! Key material on the Rust side: owned bytes that are wiped when dropped.
//!
//! libzqlite copies the key into its own locked memory at open and wipes that
//! copy at close; a `SecretKey` covers the caller's copy, from the moment it
//! is handed over until it is dropped (right after the open, usually).

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// A passphrase, or a raw 256-bit key in zqlite's `x'<64 hex digits>'`
/// form. Its bytes are zeroized (the whole allocation) on drop; `Debug`
/// never shows them.
#[derive(Clone)]
pub struct SecretKey(Zeroizing<Vec<u8>>);

impl SecretKey {
    /// A passphrase (run through Argon2id by the library). Taking the
    /// `String` by value means its buffer is the one that gets wiped.
    pub fn passphrase(passphrase: impl Into<SecretKey>) -> SecretKey {
        passphrase.into()
    }

    /// A raw 256-bit key, used without key derivation.
    pub fn raw(key: &[u8; 32]) -> SecretKey {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut text = Zeroizing::new(Vec::with_capacity(3 + 64));
        text.extend_from_slice(b"x'");
        for b in key {
            text.push(HEX[usize::from(b >> 4)]);
            text.push(HEX[usize::from(b & 15)]);
        }
        text.push(b'\'');
        SecretKey(text)
    }

    /// The bytes handed to the C library. Do not copy them elsewhere.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Zeroize for SecretKey {
    fn zeroize(&mut self) {
        self.0.zeroize();
    }
}

// The inner Zeroizing wipes on drop.
impl ZeroizeOnDrop for SecretKey {}

impl From<String> for SecretKey {
    fn from(s: String) -> Self {
        SecretKey(Zeroizing::new(s.into_bytes()))
    }
}

impl From<Vec<u8>> for SecretKey {
    fn from(v: Vec<u8>) -> Self {
        SecretKey(Zeroizing::new(v))
    }
}

/// Copies the borrowed bytes; wiping the original stays the caller's job.
impl From<&str> for SecretKey {
    fn from(s: &str) -> Self {
        SecretKey(Zeroizing::new(s.as_bytes().to_vec()))
    }
}

/// Copies the borrowed bytes; wiping the original stays the caller's job.
impl From<&[u8]> for SecretKey {
    fn from(s: &[u8]) -> Self {
        SecretKey(Zeroizing::new(s.to_vec()))
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}
