#!/usr/bin/env bash
# Before/after figures of the shuffle_map bench (crates/npyflow/benches/shuffle_map.rs) in one
# run: builds the bench at BASE (default: the commit before the parallel engine handed results
# over in runs) from `git archive`, with this tree's bench file, and runs the two builds
# alternately ROUNDS times (default 3). Prints the bench's JSON lines, each with "build".
#
#     scripts/bench_shuffle_map.sh [BASE] [ROUNDS]
set -euo pipefail
base=${1:-3321207}
rounds=${2:-3}
root=$(git rev-parse --show-toplevel)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
git -C "$root" archive "$base" | tar -x -C "$tmp"
cp "$root/crates/npyflow/benches/shuffle_map.rs" "$tmp/crates/npyflow/benches/"
cp "$root/crates/npyflow/Cargo.toml" "$tmp/crates/npyflow/Cargo.toml"
# A target folder of its own for the base: in a shared one, cargo would take one build's
# files for the other's (same hashes, sources at the same relative paths).
bench_bin() {
    (cd "$1" && CARGO_TARGET_DIR=$2 cargo bench -j1 --locked -p npyflow --bench shuffle_map --no-run \
        --message-format=json 2>/dev/null) |
        python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "shuffle_map" and m.get("executable"):
        print(m["executable"])' | tail -1
}
before=$(bench_bin "$tmp" "$root/target/bench-base")
after=$(bench_bin "$root" "$root/target")
for _ in $(seq "$rounds"); do
    for build in before after; do
        bin=$before
        [ "$build" = after ] && bin=$after
        "$bin" | sed "s/^{/{\"build\": \"$build\", /"
    done
done
