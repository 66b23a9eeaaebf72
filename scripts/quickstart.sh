#!/usr/bin/env bash
# The main job: set up, build, and build the example catalog in catalog-examples/,
# printing a summary of what was built (later issues extend this to run it).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
./build/flowctl build --source catalog-examples/flow.yaml --catalog build/catalog-examples.db
