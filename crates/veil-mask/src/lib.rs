//! Veil's masking engine: how personal data is shown (display masks), how it is transformed for other uses
//! (the masking operators), which transformation each reader gets (masking policies), and the cryptography that
//! protects it.
//!
//! This crate does no I/O: it knows nothing of databases or HTTP. It turns plaintext into the three things Veil
//! stores for every sensitive value — authenticated ciphertext, a masked display value and a blind index — and
//! it declares how each transformation can be undone (principle 5): see [`operator`] for the operators and their
//! [`Reversibility`], [`policy`] for the per-field, per-role and per-export-profile rules.

pub mod crypto;
pub mod display;
pub mod fake;
pub mod ff1;
pub mod operator;
pub mod policy;

pub use crypto::{BlindIndexer, CryptoError, FieldCipher, SecretKey};
pub use display::{default_display, MaskSpec};
pub use operator::{
    apply, apply_untyped, reverse, reverse_untyped, FpeOptions, Generalization, HashEncoding,
    MemoryVault, Operator, OperatorContext, OperatorError, OperatorKeys, RegionKeep, Reversibility,
    TokenVault, VaultError, VaultScope,
};
pub use policy::{
    preview, preview_export, ExportProfile, Policy, PolicyError, PreviewRow, Rule, View,
};
