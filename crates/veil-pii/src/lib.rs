//! Detection, normalisation and validation of Chinese personal data.
//!
//! `veil-pii` is the bottom layer of Veil: pure functions over `&str`, no I/O, no clock, no
//! dependencies. Everything above it (masking, storage, the HTTP API, the CLI) asks this crate
//! whether a value is a well-formed instance of a [`PiiKind`] and what its canonical form is.
//!
//! The entry point is [`validate`]: it normalises the input (full-width characters, separators,
//! country prefixes; see [`normalize`]) and checks it against the kind's standard. Rejections
//! carry a [`Reason`] whose message never contains the input, so errors can be logged and shown
//! without leaking personal data.
//!
//! ```
//! use veil_pii::{validate, Date, Details, PiiKind};
//!
//! let today = Date::new(2026, 11, 29).unwrap();
//! let id = validate(PiiKind::CnId, "１１０１０１１９８４０２２７６１５１", today).unwrap();
//! assert_eq!(id.normalized, "110101198402276151");
//! if let Details::CnId(info) = &id.details {
//!     assert_eq!(info.province, "北京市");
//! }
//! assert!(validate(PiiKind::CnMobile, "+86 120 8728 1353", today).is_err());
//! ```
//!
//! [`scan`] finds personal data in free text (notes, `veil pii scan`) and reports [`Span`]s with
//! char and byte offsets, validity and a confidence; see the [`scan`](mod@scan) module.
//!
//! ```
//! use veil_pii::{scan, Date, PiiKind};
//!
//! let today = Date::new(2026, 11, 29).unwrap();
//! let spans = scan("客户张浩然，手机138 1234 5678，订单号2026112913812345678", today);
//! let kinds: Vec<_> = spans.iter().map(|s| (s.kind, s.start, s.end, s.valid)).collect();
//! assert_eq!(
//!     kinds,
//!     [(PiiKind::PersonName, 2, 5, true), (PiiKind::CnMobile, 8, 21, true)]
//! );
//! ```

pub mod kind;
pub use kind::PiiKind;
pub mod date;
pub use date::Date;
pub mod normalize;
pub mod validation;
pub use validation::{validate, Details, Invalid, Reason, Validated};

pub mod address;
pub mod bank_card;
pub mod birth_date;
pub mod cn_id;
pub use cn_id::Sex;
pub mod cn_landline;
pub mod cn_mobile;
pub mod cn_passport;
pub mod email;
pub mod hk_id;
pub mod hk_macau_permit;
pub mod person_name;
pub mod scan;
pub use scan::{scan, Scanner, Span};
pub mod tw_permit;
pub mod uscc;
