//! The config pipeline: `$env_` substitution, CSV rows, deep merge, run plan. Pure functions, no IO.
