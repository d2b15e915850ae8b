//! External engines, one folder each: a small trait naming what the product needs, an
//! embedded implementation and a distributed one. Nothing here knows about roles.

pub mod broker;
pub mod config_store;
pub mod db;
pub mod launcher;

#[cfg(test)]
pub mod testing;
