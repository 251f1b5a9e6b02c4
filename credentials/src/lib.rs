//! Mobile credentials signed by GPKI certificates: the mobile public-official ID as
//! an ISO/IEC 18013-5 mdoc and as an IETF SD-JWT VC, from one data model, with
//! its status in an IETF OAuth Token Status List.
//!
//! **Architecture invariant:** like `pki`, this crate builds and checks; it never
//! touches the store and does no network I/O. Callers record, fetch and serve.

pub mod b64;
pub mod jose;
pub mod keys;
pub mod mdoc;
pub mod model;
pub mod proof;
pub mod qr;
pub mod sdjwt;
pub mod status;
pub mod verify;

pub use keys::{Alg, HolderKey, IssuerKey, PublicKey};
pub use model::{OfficialId, StatusRef, Validity, Value};
