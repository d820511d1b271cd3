#!/usr/bin/env bash
# The whole test suite: every crate, app and example, doc tests included.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --all-targets
cargo test --workspace --doc
