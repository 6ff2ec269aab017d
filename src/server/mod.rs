//! The sync service's parts that face the network: webhook verification (the
//! receiver and workers build on it).

pub mod verify;
