//! Veil's masking engine: how personal data is shown (display masks) and how it is protected (cryptography).
//!
//! This crate does no I/O: it knows nothing of databases or HTTP. It turns plaintext into the three things Veil
//! stores for every sensitive value — authenticated ciphertext, a masked display value and a blind index — and
//! it declares how each transformation can be undone.

pub mod crypto;
pub mod display;

pub use crypto::{BlindIndexer, CryptoError, FieldCipher, SecretKey};
pub use display::default_display;
