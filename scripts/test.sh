#!/usr/bin/env bash
# Runs the whole test suite: formatting, lints, unit and integration tests (with real Redis and
# RabbitMQ started by the tests themselves on loopback), the deployment files' checks, and the
# browser tests.
# Installs what it needs first (Debian packages via apt-get, npm packages locally).
# Usage: ./scripts/test.sh            (everything)
#        SKIP_INSTALL=1 ./scripts/test.sh   (assume the packages are already there)
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/armada-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export RUST_BACKTRACE="${RUST_BACKTRACE:-1}"
# Every test that needs Redis or RabbitMQ runs against them or fails: the suite never passes by
# skipping them (a plain `cargo test` skips them, loudly, where they are not installed).
export ARMADA_TEST_REQUIRE_LIVE=1

step() { printf '\n==> %s\n' "$*"; }

if [ "${SKIP_INSTALL:-0}" != "1" ]; then
  step "installing test dependencies"
  ./scripts/install-test-deps.sh
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --locked -- -D warnings

step "cargo test"
cargo test --locked --all-targets

step "deploy checks: Helm chart, agent Job, Dockerfile, docker-compose.yml (scripts/test-deploy.sh)"
./scripts/test-deploy.sh

if [ -d tests/browser ]; then
  step "browser tests"
  cargo build --locked
  (cd tests/browser && npm ci --no-audit --no-fund --silent && ARMADA_BROWSER_REQUIRE_ALL=1 ARMADA_BIN="$CARGO_TARGET_DIR/debug/armada" node run.mjs)
fi

step "all tests passed"
