//! Connectors: the services cosync talks to. This stage so far holds the registry
//! of built-in kinds and their operations, which validation checks references
//! against.

pub mod memory;
pub mod registry;
