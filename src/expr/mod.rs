//! The two small languages inside cosync files: JSONPath (RFC 9535) for reading
//! records, and minijinja templates/expressions for values and conditions. Both are
//! parsed once; this module also gives the static analysis lints need.

pub mod path;
pub mod template;
pub mod value;

pub use path::{CompiledPath, PathShape};
pub use template::{ExprError, TextKind, analysis_env, classify, strip_braces};
