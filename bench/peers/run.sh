#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench/peers/run.sh: Go's and Tokio's versions of weft-bench's spawn,
# yield, mutex, channel and pingpong workloads (bench/peers/go,
# bench/peers/tokio), run interleaved with weft's on this machine, now.
# shared/PEERS.md measured Go and Tokio on another day, and this machine's
# speed swings by 2x or more between days: only figures from one run
# compare.
#
# usage: bench/peers/run.sh [--no-deps] [--runs N] [--workers "1 2"]
#   --no-deps    do not check Debian packages (golang-go, cargo and
#                librust-tokio-dev: Go 1.19 and Tokio 1.24.2 on Debian 12,
#                the versions of PEERS.md; Tokio builds offline from them)
#   --runs N     runs of each (default 5); medians are reported
#   --workers L  worker counts (default "1 2")
# Builds the peers in build/peers and weft-bench in build/bench (as
# scripts/bench.sh does). Writes
# every run to bench/out/peers.json (one JSON object per line) and prints
# the medians. A failed build or run stops it with one line and exit 1.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$ROOT/build/peers
OUT=$ROOT/bench/out
RUNS=5
WORKERS="1 2"
DEPS=1
PKGS="cmake make gcc libc6-dev pkg-config liburing-dev libck-dev golang-go
cargo librust-tokio-dev"

die() {
	echo "peers/run.sh: $*" >&2
	exit 1
}

while [ $# -gt 0 ]; do
	case $1 in
	--no-deps) DEPS=0 ;;
	--runs)
		[ $# -ge 2 ] && [[ $2 =~ ^[1-9][0-9]*$ ]] || die "--runs needs a positive number"
		RUNS=$2
		shift
		;;
	--workers)
		[ $# -ge 2 ] && [[ $2 =~ ^[1-9][0-9]*( [1-9][0-9]*)*$ ]] ||
			die "--workers needs a list like \"1 2\""
		WORKERS=$2
		shift
		;;
	*) die "unknown argument '$1' (usage: bench/peers/run.sh [--no-deps] [--runs N] [--workers \"1 2\"])" ;;
	esac
	shift
done

# shellcheck source=../../scripts/debs.sh
. "$ROOT/scripts/debs.sh"
# shellcheck disable=SC2086 # one package per word
if [ $DEPS = 1 ]; then
	debs_install peers/run.sh $PKGS || exit 1
fi

mkdir -p "$BUILD" "$OUT"
echo "peers/run.sh: building weft-bench, peer-go and peer-tokio"
{
	cmake -S "$ROOT" -B "$ROOT/build/bench" -DCMAKE_BUILD_TYPE=Release \
		-DWEFT_BUILD_TESTS=OFF &&
		cmake --build "$ROOT/build/bench" --target weft-bench -j"$(nproc)" &&
		(cd "$ROOT/bench/peers/go" &&
			GOCACHE=$BUILD/gocache GOFLAGS=-mod=mod go build -o "$BUILD/peer-go" .) &&
		(cd "$ROOT/bench/peers/tokio" &&
			CARGO_TARGET_DIR=$BUILD/cargo cargo build --release -q) &&
		cp "$BUILD/cargo/release/peer-tokio" "$BUILD/peer-tokio"
} >"$OUT/peers-build.log" 2>&1 ||
	{ tail -n 20 "$OUT/peers-build.log" >&2; die "build failed (full log: bench/out/peers-build.log)"; }

BENCH=$ROOT/build/bench/bench/weft-bench
# The sizes of scripts/bench.sh, which the peers hard-code.
declare -A WEFT_ARGS=([spawn]="-n 1000000" [yield]="-n 1000 -m 1000"
	[mutex]="-n 1000 -m 1000" [channel]="-n 1000000 -m 4"
	[pingpong]="-n 1000000")
: >"$OUT/peers.json"
for ((r = 1; r <= RUNS; r++)); do
	printf 'run %d/%d:' "$r" "$RUNS"
	for w in $WORKERS; do
		for wl in spawn yield mutex channel pingpong; do
			# shellcheck disable=SC2086 # the arguments split on purpose
			line=$("$BENCH" -w "$w" ${WEFT_ARGS[$wl]} "$wl") ||
				die "weft-bench $wl failed"
			echo "${line%\}},\"runtime\":\"weft\"}" >>"$OUT/peers.json"
			"$BUILD/peer-go" "$wl" "$w" >>"$OUT/peers.json" ||
				die "peer-go $wl failed"
			"$BUILD/peer-tokio" "$wl" "$w" >>"$OUT/peers.json" ||
				die "peer-tokio $wl failed"
			printf ' %s@%s' "$wl" "$w"
		done
	done
	echo
done

# Medians per workload, workers and runtime (mawk: no sort of its own).
awk '
function field(s, k,   re) {
	re = "\"" k "\":(\"[^\"]*\"|[^,}]*)"
	if (!match(s, re)) return ""
	s = substr(s, RSTART + length(k) + 3, RLENGTH - length(k) - 3)
	gsub(/"/, "", s)
	return s
}
{ print field($0, "workload"), field($0, "workers"), field($0, "runtime"),
	field($0, "value"), field($0, "unit") }' "$OUT/peers.json" |
	sort -k1,1 -k2,2n -k3,3 -k4,4g |
	awk '
	function flush() {
		if (n) printf "%-8s %7s %-6s %10.1f %s\n", w, k, rt,
			(n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2, u
	}
	BEGIN { printf "%-8s %7s %-6s %10s %s\n", "workload", "workers", "rt", "median", "unit" }
	$1 != w || $2 != k || $3 != rt { flush(); w = $1; k = $2; rt = $3; n = 0 }
	{ a[++n] = $4; u = $5 }
	END { flush() }'
echo "every run: bench/out/peers.json"
