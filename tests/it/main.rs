//! Integration tests, one binary (each test binary links the whole dependency tree).

mod worker;
