//! Armada: run one automation script at scale. The library behind the `armada` binary.

pub mod pipeline;
