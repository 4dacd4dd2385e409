#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# scripts/bench.sh: installs what it needs (Debian), builds weft in Release,
# runs every benchmark for 1, 2, 4 and 8 workers, and reports the medians:
#   bench/out/results.json  medians, targets and every raw run
#   bench/out/table.txt     the table printed at the end
#   bench/out/scaling.png   throughput against workers (core runtime; sync
#                           and channels), and memory per task
#
# usage: scripts/bench.sh [--quick] [--runs N] [--workers "1 2 4 8"]
#                         [--no-deps] [--no-build] [WORKLOAD...]
#   --quick      one run of each, smaller sizes (a smoke test)
#   --runs N     runs per workload and worker count (default 5, or
#                $WEFT_BENCH_RUNS); the median is reported
#   --workers L  worker counts (default "1 2 4 8", or $WEFT_BENCH_WORKERS)
#   --no-deps    do not check Debian packages
#   --no-build   use the existing build/bench/bench/weft-bench
#   WORKLOAD     run only these (default: all of WORKLOADS below that
#                weft-bench was built with); a workload whose target is
#                relative to another brings that one along
# $WEFT_BENCH_TIMEOUT: seconds one run may take (default 180).
# Network rows (echo*, http*) start a server and a load generator on
# 127.0.0.1 ports 9300-9399, for 1 and 2 workers only, for
# $WEFT_BENCH_NET_RUNS runs (default 3; 1 with --quick) of
# $WEFT_BENCH_NET_SECONDS seconds each (default 10; 2 with --quick).
# $WEFT_BENCH_BIN: the weft-bench to run with --no-build (default: the one
# in build/bench).
#
# Runs are interleaved (run 1 of every workload and worker count, then run 2,
# ...), so a slow spell of this noisy machine spreads over all rows instead
# of spoiling one. Targets are reported, not enforced; a failed run or a
# failed self-check stops the script with one line and exit status 1.
set -euo pipefail

# One row per workload, in table order. Adding one (sync, io, ...): add it
# to the table in bench/bench.c, then a row here.
#   name | weft-bench args | --quick args | target | Go | Tokio
#        | plot: tput (core panel), sync (sync/channel panel), mem, -
# target: "op value @ workers" (workers a count or *), op <= or >=; or
# relative, "op Nx other @ workers": the median over other's median at the
# same worker count (run in the same invocation), e.g. ">= 1x base @ 2".
# Go and Tokio: shared/PEERS.md, 2 workers, or -.
# rwlock-pthread must keep rwlock's sizes: the two do the same work.
WORKLOADS='
spawn          | -n 1000000         | -n 100000        | <= 100 @ 2   | 129  | 253  | tput
yield          | -n 1000 -m 1000    | -n 1000 -m 100   | <= 20 @ 2    | 73   | 25   | tput
chain          | -n 1000000         | -n 100000        | -            | -    | -    | tput
memory         | -n 1000000         | -n 100000        | <= 4600 @ *  | 2707 | 1408 | mem
mutex          | -n 1000 -m 1000    | -n 1000 -m 100   | <= 40 @ 2    | 41   | 124  | sync
channel        | -n 1000000 -m 4    | -n 100000 -m 4   | >= 35 @ 2    | 28.9 | 7.7  | sync
pingpong       | -n 1000000         | -n 100000        | <= 165 @ 2   | 206  | 291  | sync
rwlock         | -n 1000 -m 10000   | -n 1000 -m 1000  | >= 1x rwlock-pthread @ 2 | - | - | sync
rwlock-pthread | -n 1000 -m 10000   | -n 1000 -m 1000  | -            | -    | -    | sync
echo           | net echo uring     | net echo uring   | >= 0.95x echo-raw @ 2 | - | - | -
echo-epoll     | net echo epoll     | net echo epoll   | -            | -    | -    | -
echo-raw       | net echo raw       | net echo raw     | -            | -    | -    | -
http           | net http uring     | net http uring   | <= 0.95x http-raw @ 2 | - | - | -
http-epoll     | net http epoll     | net http epoll   | -            | -    | -    | -
http-raw       | net http raw       | net http raw     | -            | -    | -    | -
file           | -n 1024 -m 4       | -n 128 -m 4      | >= 1.5x file-ring @ 2 | - | - | -
file-epoll     | -n 1024 -m 4       | -n 128 -m 4      | -            | -    | -    | -
file-ring      | -n 1024 -m 4       | -n 128 -m 4      | -            | -    | -    | -
'

PKGS="cmake make gcc libc6-dev pkg-config liburing-dev libck-dev libcmocka-dev wrk
gnuplot-nox"

die() {
	echo "bench.sh: $*" >&2
	exit 1
}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=debs.sh
. "$ROOT/scripts/debs.sh"
# Its own build directory: the release preset's build/release builds the
# tests, and configuring it here without them left stale test binaries.
BUILD=$ROOT/build/bench
BIN=${WEFT_BENCH_BIN:-$BUILD/bench/weft-bench}
OUT=$ROOT/bench/out
RUNS=${WEFT_BENCH_RUNS:-5}
WORKERS=${WEFT_BENCH_WORKERS:-"1 2 4 8"}
TIMEOUT=${WEFT_BENCH_TIMEOUT:-180}
QUICK=0
DEPS=1
BUILDIT=1
ONLY=()

while [ $# -gt 0 ]; do
	case $1 in
	--quick) QUICK=1 ;;
	--runs) [ $# -ge 2 ] || die "--runs needs a number"; RUNS=$2; shift ;;
	--runs=*) RUNS=${1#*=} ;;
	--workers) [ $# -ge 2 ] || die "--workers needs a list"; WORKERS=$2; shift ;;
	--workers=*) WORKERS=${1#*=} ;;
	--no-deps) DEPS=0 ;;
	--no-build) BUILDIT=0 ;;
	-h|--help) awk 'NR > 3 && !/^#/ { exit } NR > 3 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
	-*) die "unknown option $1 (--help lists them)" ;;
	*) ONLY+=("$1") ;;
	esac
	shift
done
[ $QUICK = 1 ] && RUNS=1
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive number, not '$RUNS'"
read -ra WLIST <<<"$WORKERS"
[ ${#WLIST[@]} -gt 0 ] || die "no worker counts"
for w in "${WLIST[@]}"; do
	[[ $w =~ ^[1-9][0-9]*$ ]] || die "bad worker count '$w'"
done
WORKERS="${WLIST[*]}"

# ---- the workload table -----------------------------------------------------
NAMES=()
declare -A ARGS QARGS TARGET GO TOKIO PLOT
trim() { # var: strips the blanks around its value
	local v
	read -r v <<<"${!1}"
	printf -v "$1" '%s' "$v"
}
RE_ABS='^(<=|>=) [0-9.]+ @ ([1-9][0-9]*|\*)$'
RE_REL='^(<=|>=) [0-9.]+x [A-Za-z0-9_-]+ @ ([1-9][0-9]*|\*)$'
while IFS='|' read -r name args qargs target go tokio plot; do
	for v in name args qargs target go tokio plot; do trim $v; done
	[ -n "$name" ] || continue
	target=$(tr -s ' ' <<<"$target")
	[ "$target" = - ] || [[ $target =~ $RE_ABS ]] || [[ $target =~ $RE_REL ]] ||
		die "WORKLOADS: bad target '$target' for $name"
	NAMES+=("$name")
	ARGS[$name]=$args QARGS[$name]=$qargs TARGET[$name]=$target
	GO[$name]=$go TOKIO[$name]=$tokio PLOT[$name]=$plot
done <<<"$WORKLOADS"

ref_of() { # name: the workload a relative target compares with, or fails
	local -a tw
	read -ra tw <<<"${TARGET[$1]}"
	[ ${#tw[@]} = 5 ] || return 1
	echo "${tw[2]}"
}
for name in "${NAMES[@]}"; do
	if ref=$(ref_of "$name"); then
		[ -n "${PLOT[$ref]:-}" ] || die "WORKLOADS: $name's target refers to unknown '$ref'"
	fi
done
in_list() { # word list...
	local x=$1
	shift
	for y in "$@"; do [ "$x" = "$y" ] && return 0; done
	return 1
}
if [ ${#ONLY[@]} -gt 0 ]; then
	for name in "${ONLY[@]}"; do
		[ -n "${PLOT[$name]:-}" ] || die "unknown workload '$name' (known: ${NAMES[*]})"
	done
	NAMES=()
	for name in "${ONLY[@]}"; do
		in_list "$name" "${NAMES[@]}" || NAMES+=("$name")
		if ref=$(ref_of "$name") && ! in_list "$ref" "${ONLY[@]}" "${NAMES[@]}"; then
			NAMES+=("$ref")
		fi
	done
fi

# ---- Debian packages -------------------------------------------------------
# shellcheck disable=SC2086 # one package per word
if [ $DEPS = 1 ]; then
	debs_install bench.sh $PKGS || exit 1
fi

# ---- build ------------------------------------------------------------------
mkdir -p "$OUT"
if [ $BUILDIT = 1 ]; then
	echo "bench.sh: building weft (Release) in build/bench"
	if ! { cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
		-DWEFT_BUILD_TESTS=OFF &&
		cmake --build "$BUILD" --target weft-bench weft-raw-uring \
			weft-echo-load echo_server http_server -j"$(nproc)"; } \
		>"$OUT/build.log" 2>&1; then
		tail -n 25 "$OUT/build.log" >&2
		die "build failed (full log: bench/out/build.log)"
	fi
fi
[ -x "$BIN" ] || die "$BIN is missing"

# A weft-bench built before a module landed lacks its workloads (see
# bench/CMakeLists.txt): a default run skips them, a named one fails.
mapfile -t HAVE < <("$BIN" -l | awk '{ print $1 }')
KEEP=()
for name in "${NAMES[@]}"; do
	if [[ ${ARGS[$name]} == net\ * ]] || in_list "$name" "${HAVE[@]}"; then
		KEEP+=("$name")
	elif [ ${#ONLY[@]} -gt 0 ]; then
		die "weft-bench has no workload '$name' (built without its module?)"
	else
		echo "bench.sh: weft-bench has no workload '$name' (built without its module?); skipped" >&2
	fi
done
[ ${#KEEP[@]} -gt 0 ] || die "nothing to run"
NAMES=("${KEEP[@]}")

# ---- run --------------------------------------------------------------------
RAW=$OUT/runs.jsonl
: >"$RAW"
ERR=$OUT/stderr.txt

NET_RUNS=${WEFT_BENCH_NET_RUNS:-3}
NET_SECONDS=${WEFT_BENCH_NET_SECONDS:-10}
if [ $QUICK = 1 ]; then NET_RUNS=1 NET_SECONDS=2; fi
NET_PORT=9300
CLK_TCK=$(getconf CLK_TCK)
is_net() { [[ ${ARGS[$1]} == net\ * ]]; }

cpu_ticks() { # pid: user + system CPU ticks of the process so far
	awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0
}

wait_port() { # port: until something listens there (5 s at most)
	local i
	for ((i = 0; i < 100; i++)); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}

# to_us "123.45us" | "1.2ms" | "2.00s": microseconds
to_us() {
	awk -v v="$1" 'BEGIN {
		n = v + 0
		if (v ~ /us$/) m = 1; else if (v ~ /ms$/) m = 1000;
		else if (v ~ /s$/) m = 1000000; else m = 1
		printf "%.2f", n * m
	}'
}

# run_net name workers run kind backend: a server (weft's example on a
# backend, or the raw liburing one), its load for NET_SECONDS, one JSON
# line like weft-bench's in $RAW. echo: value = round trips/s (k); http:
# value = the server's CPU time per request (us), with requests/s beside.
run_net() {
	local name=$1 w=$2 run=$3 kind=$4 backend=$5 pid port line c0 c1
	local out=$OUT/net.txt status=0
	port=$((NET_PORT++))
	[ $NET_PORT -le 9399 ] || NET_PORT=9300
	case $backend in
	raw) "$BUILD/bench/weft-raw-uring" "$kind" "$port" "$w" \
		>/dev/null 2>"$ERR" & ;;
	*) "$BUILD/examples/${kind}_server" -w "$w" -b "$backend" \
		"$port" >/dev/null 2>"$ERR" & ;;
	esac
	pid=$!
	if ! wait_port "$port"; then
		kill -KILL $pid 2>/dev/null
		echo; die "FAIL $name, $w workers, run $run: the server did not listen on $port ($(tail -n 1 "$ERR"))"
	fi
	if [ "$kind" = echo ]; then
		line=$(timeout -k 5 $((NET_SECONDS + 30)) "$BUILD/bench/weft-echo-load" \
			-c 64 -s 64 -d "$NET_SECONDS" -p $pid 127.0.0.1 "$port" 2>"$out") ||
			status=$?
	else
		c0=$(cpu_ticks $pid)
		timeout -k 5 $((NET_SECONDS + 30)) wrk -t1 -c64 -d"${NET_SECONDS}s" \
			--latency "http://127.0.0.1:$port/" >"$out" 2>&1 || status=$?
		c1=$(cpu_ticks $pid)
	fi
	kill -TERM $pid 2>/dev/null
	wait $pid 2>/dev/null || true
	if [ $status != 0 ]; then
		echo; die "FAIL $name, $w workers, run $run: load failed: $(tail -n 1 "$out")"
	fi
	if [ "$kind" = echo ]; then
		awk -v name="$name" -v w="$w" -v backend="$backend" -v line="$line" '
		function f(k,   re) {
			re = "\"" k "\":[^,}]*"
			if (!match(line, re)) return "null"
			return substr(line, RSTART + length(k) + 3, RLENGTH - length(k) - 3)
		}
		BEGIN {
			rt = f("rt_per_s") + 0
			printf "{\"workload\":\"%s\",\"workers\":%s,\"value\":%.3f,\"unit\":\"krt/s\",\"ops\":%s,\"mops\":%.4f,\"cpu_util\":0,\"p50_us\":%s,\"p99_us\":%s,\"cpu_us_per_rt\":%s,\"backend\":\"%s\",\"ok\":true}\n",
				name, w, rt / 1000, f("roundtrips"), rt / 1e6,
				f("p50_us"), f("p99_us"), f("server_cpu_us_per_rt"), backend
		}' >>"$RAW"
		return
	fi
	grep -q 'Non-2xx\|Socket errors' "$out" && {
		echo; die "FAIL $name, $w workers, run $run: wrk reported errors: $(grep 'Non-2xx\|Socket errors' "$out" | head -n 1)"
	}
	local reqs rps p50 p99
	reqs=$(awk '/requests in/ { print $1 }' "$out")
	rps=$(awk '/^Requests\/sec/ { print $2 }' "$out")
	p50=$(to_us "$(awk '$1 == "50%" { print $2 }' "$out")")
	p99=$(to_us "$(awk '$1 == "99%" { print $2 }' "$out")")
	[ -n "$reqs" ] && [ "$reqs" -gt 0 ] 2>/dev/null || {
		echo; die "FAIL $name, $w workers, run $run: unreadable wrk output (bench/out/net.txt)"
	}
	awk -v name="$name" -v w="$w" -v backend="$backend" -v reqs="$reqs" \
		-v rps="$rps" -v p50="$p50" -v p99="$p99" -v ticks=$((c1 - c0)) \
		-v hz="$CLK_TCK" -v secs="$NET_SECONDS" 'BEGIN {
		cpu_us = ticks * 1e6 / hz
		printf "{\"workload\":\"%s\",\"workers\":%s,\"value\":%.3f,\"unit\":\"us/req\",\"ops\":%s,\"mops\":%.4f,\"cpu_util\":%.3f,\"krps\":%.1f,\"p50_us\":%s,\"p99_us\":%s,\"backend\":\"%s\",\"ok\":true}\n",
			name, w, cpu_us / reqs, reqs, rps / 1e6,
			cpu_us / 1e6 / secs, rps / 1000, p50, p99, backend
	}' >>"$RAW"
}

run_one() { # name workers run
	local name=$1 w=$2 run=$3 args rc=0 line msg
	if [ $QUICK = 1 ]; then args=${QARGS[$name]}; else args=${ARGS[$name]}; fi
	if is_net "$name"; then
		# shellcheck disable=SC2086 # "net KIND BACKEND"
		set -- $args
		run_net "$name" "$w" "$run" "$2" "$3"
		return
	fi
	# shellcheck disable=SC2086 # args is a list of options
	line=$(timeout -k 10 "$TIMEOUT" "$BIN" -w "$w" $args "$name" 2>"$ERR") || rc=$?
	if [ $rc != 0 ]; then
		if [ $rc = 124 ] || [ $rc = 137 ]; then
			msg="hung: no result after ${TIMEOUT} s"
		elif [ $rc -gt 128 ]; then
			msg="killed by SIG$(kill -l $((rc - 128)) 2>/dev/null || echo $((rc - 128)))"
			[ -s "$ERR" ] && msg="$msg: $(tail -n 1 "$ERR")"
		else
			msg=$(tail -n 1 "$ERR" 2>/dev/null)
			msg=${msg:-"exit status $rc"}
		fi
		echo
		die "FAIL $name, $w workers, run $run: $msg (command: weft-bench -w $w $args $name)"
	fi
	case $line in
	'{'*'"ok":true}') ;;
	*) echo; die "FAIL $name, $w workers, run $run: unreadable output '$line'" ;;
	esac
	echo "$line" >>"$RAW"
}

echo "bench.sh: ${NAMES[*]} x workers $WORKERS, $RUNS run(s) each$([ $QUICK = 1 ] && echo ', quick sizes')"
START=$SECONDS
for ((run = 1; run <= RUNS; run++)); do
	printf 'run %d/%d:' "$run" "$RUNS"
	for name in "${NAMES[@]}"; do
		printf ' %s' "$name"
		if is_net "$name" && [ "$run" -gt "$NET_RUNS" ]; then
			continue
		fi
		for w in $WORKERS; do
			# Network rows: 1 and 2 workers (the load shares the cores).
			is_net "$name" && [ "$w" -gt 2 ] && continue
			run_one "$name" "$w" "$run"
			printf '.'
		done
	done
	printf ' (%d s)\n' $((SECONDS - START))
done

# ---- medians ----------------------------------------------------------------
# runs.jsonl holds flat one-line objects written by weft-bench, so awk can
# pick the fields out without a JSON tool.
MED=$OUT/medians.tsv
awk '
function field(s, key,    re, v) {
	re = "\"" key "\":(\"[^\"]*\"|[^,}]*)"
	if (!match(s, re))
		return ""
	v = substr(s, RSTART + length(key) + 3, RLENGTH - length(key) - 3)
	gsub(/"/, "", v)
	return v
}
function median(a, n,    i, j, t) {
	for (i = 2; i <= n; i++)
		for (j = i; j > 1 && a[j - 1] > a[j]; j--) {
			t = a[j]; a[j] = a[j - 1]; a[j - 1] = t
		}
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{
	k = field($0, "workload") "\t" field($0, "workers")
	if (!(k in cnt)) {
		order[++nk] = k
		unit[k] = field($0, "unit")
	}
	c = ++cnt[k]
	val[k, c] = field($0, "value") + 0
	tput[k, c] = field($0, "mops") + 0
	util[k, c] = field($0, "cpu_util") + 0
}
END {
	for (i = 1; i <= nk; i++) {
		k = order[i]
		n = cnt[k]
		lo = hi = val[k, 1]
		for (c = 1; c <= n; c++) {
			v[c] = val[k, c]; t[c] = tput[k, c]; u[c] = util[k, c]
			if (v[c] < lo) lo = v[c]
			if (v[c] > hi) hi = v[c]
		}
		printf "%s\t%.6g\t%.6g\t%.6g\t%s\t%d\t%.6g\t%.3g\n", k,
		       median(v, n), lo, hi, unit[k], n, median(t, n), median(u, n)
	}
}' "$RAW" >"$MED"

declare -A M_MED M_MIN M_MAX M_UNIT M_N M_TPUT M_UTIL
while IFS=$'\t' read -r name w med lo hi unit n tput util; do
	M_MED[$name/$w]=$med M_MIN[$name/$w]=$lo M_MAX[$name/$w]=$hi
	M_UNIT[$name/$w]=$unit M_N[$name/$w]=$n M_TPUT[$name/$w]=$tput
	M_UTIL[$name/$w]=$util
done <"$MED"

# target_of name workers: prints "op value ref" if a target applies to this
# row; ref is the workload of a relative target, or -
target_of() {
	local t=${TARGET[$1]} op val ref=- at
	local -a tw
	[ "$t" = - ] && return 1
	read -ra tw <<<"$t"
	op=${tw[0]} val=${tw[1]} at=${tw[-1]}
	[ ${#tw[@]} = 5 ] && ref=${tw[2]}
	[ "$at" = '*' ] || [ "$at" = "$2" ] || return 1
	echo "$op $val $ref"
}

ratio_of() { # name ref workers: median / ref's median, or fails
	local a=${M_MED[$1/$3]:-} b=${M_MED[$2/$3]:-}
	[ -n "$a" ] && [ -n "$b" ] || return 1
	awk -v a="$a" -v b="$b" 'BEGIN { if (b == 0) exit 1; printf "%.3f", a / b }'
}

met() { # median op value -> yes/no
	awk -v m="$1" -v op="$2" -v t="$3" 'BEGIN {
		ok = op == "<=" ? m <= t : m >= t
		print ok ? "yes" : "no"
	}'
}

num() { [ "$1" = - ] && echo null || echo "$1"; }

# eval_target name workers: sets T_SHOW (the table's target), T_MET (yes,
# no, or - without a target), T_JSON (the JSON target or null) and T_RATIO
# (a relative target's ratio, or -).
eval_target() {
	local name=$1 w=$2 t op val ref
	T_SHOW=- T_MET=- T_JSON=null T_RATIO=-
	t=$(target_of "$name" "$w") || return 0
	read -r op val ref <<<"$t"
	T_SHOW=$op$val
	if [ "$ref" = - ]; then
		T_JSON="\"$op $val ${M_UNIT[$name/$w]}\""
		T_MET=$(met "${M_MED[$name/$w]}" "$op" "$val")
	else
		T_JSON="\"$op $val $ref\""
		T_RATIO=$(ratio_of "$name" "$ref" "$w") || { T_RATIO=-; return 0; }
		T_MET=$(met "$T_RATIO" "$op" "${val%x}")
	fi
}

TABLE=$OUT/table.txt
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo none)
[ "$COMMIT" = none ] || git -C "$ROOT" diff --quiet HEAD 2>/dev/null ||
	COMMIT="$COMMIT+dirty"
DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
CPU=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null)
NCPU=$(nproc)
{
	echo "weft benchmarks, $DATE, commit $COMMIT, $NCPU CPUs ($CPU), kernel $(uname -r)"
	echo "median of $RUNS run(s)$([ $QUICK = 1 ] && echo ', QUICK sizes: not comparable with the targets')"
	echo "Go and Tokio: shared/PEERS.md (2 workers, another day: compare ratios, not figures)"
	echo
	printf '%-14s %7s %10s %-9s %21s %5s %8s %4s %6s %6s\n' \
		workload workers median unit "min..max" cpu target met Go Tokio
	for name in "${NAMES[@]}"; do
		for w in $WORKERS; do
			k=$name/$w
			[ -n "${M_MED[$k]:-}" ] || continue # not run at w workers
			go=- tk=-
			eval_target "$name" "$w"
			if [ "$w" = 2 ]; then go=${GO[$name]}; tk=${TOKIO[$name]}; fi
			printf -v range '%.1f..%.1f' "${M_MIN[$k]}" "${M_MAX[$k]}"
			printf '%-14s %7s %10.1f %-9s %21s %5.2f %8s %4s %6s %6s\n' \
				"$name" "$w" "${M_MED[$k]}" "${M_UNIT[$k]}" \
				"$range" "${M_UTIL[$k]}" "$T_SHOW" "$T_MET" "$go" "$tk"
		done
	done
	echo
	echo "cpu: CPU time / wall time of the measured interval (2 cores here)"
	echo "M = 10^6 per second; rt = round trip"
	# Relative targets: the ratio at every worker count.
	for name in "${NAMES[@]}"; do
		ref=$(ref_of "$name") || continue
		line=
		for w in $WORKERS; do
			r=$(ratio_of "$name" "$ref" "$w") || r=-
			line+=" ${r}x@$w"
		done
		echo "$name / $ref, same run, by workers:$line (target ${TARGET[$name]})"
	done
	# Network rows: the medians of what the load saw beside the value.
	if grep -q '"backend":"[a-z]*","ok"' "$RAW" && grep -q '"p99_us"' "$RAW"; then
		echo
		echo "network rows (medians): echo value = k round trips/s, http value = server us CPU/request"
		awk '
		function field(s, key,    re, v) {
			re = "\"" key "\":(\"[^\"]*\"|[^,}]*)"
			if (!match(s, re)) return ""
			v = substr(s, RSTART + length(key) + 3, RLENGTH - length(key) - 3)
			gsub(/"/, "", v)
			return v
		}
		function median(a, n,    i, j, t) {
			for (i = 2; i <= n; i++)
				for (j = i; j > 1 && a[j - 1] > a[j]; j--) {
					t = a[j]; a[j] = a[j - 1]; a[j - 1] = t
				}
			return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
		}
		/"p99_us"/ {
			k = field($0, "workload") " w=" field($0, "workers")
			if (!(k in cnt)) order[++nk] = k
			c = ++cnt[k]
			p50[k, c] = field($0, "p50_us") + 0
			p99[k, c] = field($0, "p99_us") + 0
			x = field($0, "krps")
			if (x == "") { x = field($0, "cpu_us_per_rt"); lbl[k] = "server us CPU/rt" }
			else lbl[k] = "k req/s"
			ex[k, c] = x + 0
		}
		END {
			for (i = 1; i <= nk; i++) {
				k = order[i]; n = cnt[k]
				for (c = 1; c <= n; c++) { a[c] = p50[k, c]; b[c] = p99[k, c]; e[c] = ex[k, c] }
				printf "  %-18s p50 %8.1f us  p99 %8.1f us  %s %.2f\n", k,
				       median(a, n), median(b, n), lbl[k], median(e, n)
			}
		}' "$RAW"
	fi
} >"$TABLE"

# results.json: medians with their targets, then every raw run.
{
	printf '{"date":"%s","commit":"%s","cpus":%s,"cpu":"%s","kernel":"%s",' \
		"$DATE" "$COMMIT" "$NCPU" "${CPU//\"/}" "$(uname -r)"
	printf '"runs":%s,"quick":%s,"workers":[%s],\n"results":[\n' \
		"$RUNS" "$([ $QUICK = 1 ] && echo true || echo false)" \
		"${WORKERS// /,}"
	sep=
	for name in "${NAMES[@]}"; do
		for w in $WORKERS; do
			k=$name/$w
			[ -n "${M_MED[$k]:-}" ] || continue # not run at w workers
			okj=null go=null tk=null ratio=null
			eval_target "$name" "$w"
			case $T_MET in yes) okj=true ;; no) okj=false ;; esac
			if ref=$(ref_of "$name"); then
				ratio=$(ratio_of "$name" "$ref" "$w") || ratio=null
			fi
			if [ "$w" = 2 ]; then
				go=$(num "${GO[$name]}"); tk=$(num "${TOKIO[$name]}")
			fi
			printf '%s{"workload":"%s","workers":%s,"median":%s,"min":%s,"max":%s,"unit":"%s","runs":%s,"mops":%s,"cpu_util":%s,"target":%s,"met":%s,"ratio":%s,"go":%s,"tokio":%s}' \
				"$sep" "$name" "$w" "${M_MED[$k]}" "${M_MIN[$k]}" \
				"${M_MAX[$k]}" "${M_UNIT[$k]}" "${M_N[$k]}" \
				"${M_TPUT[$k]}" "${M_UTIL[$k]}" "$T_JSON" "$okj" \
				"$ratio" "$go" "$tk"
			sep=$',\n'
		done
	done
	printf '\n],\n"raw":[\n'
	sed '$!s/$/,/' "$RAW"
	printf ']}\n'
} >"$OUT/results.json"

# ---- plot -------------------------------------------------------------------
TPUT=$OUT/throughput.dat
SYNC=$OUT/sync.dat
MEM=$OUT/memory.dat
tnames=() snames=() mnames=()
for name in "${NAMES[@]}"; do
	case ${PLOT[$name]} in
	tput) tnames+=("$name") ;;
	sync) snames+=("$name") ;;
	mem) mnames+=("$name") ;;
	esac
done
write_dat() { # file column-kind names...
	local f=$1 kind=$2 w name
	shift 2
	{
		echo "workers $*"
		for w in $WORKERS; do
			printf '%s' "$w"
			for name in "$@"; do
				if [ "$kind" != mem ]; then
					printf ' %s' "${M_TPUT[$name/$w]}"
				else
					printf ' %s' "${M_MED[$name/$w]}"
				fi
			done
			echo
		done
	} >"$f"
}
PLOTTED=
if command -v gnuplot >/dev/null; then
	[ ${#tnames[@]} -gt 0 ] && write_dat "$TPUT" tput "${tnames[@]}"
	[ ${#snames[@]} -gt 0 ] && write_dat "$SYNC" tput "${snames[@]}"
	[ ${#mnames[@]} -gt 0 ] && write_dat "$MEM" mem "${mnames[@]}"
	if [ $((${#tnames[@]} + ${#snames[@]} + ${#mnames[@]})) -gt 0 ]; then
		if gnuplot -e "tput='$([ ${#tnames[@]} -gt 0 ] && echo "$TPUT")'" \
			-e "sync='$([ ${#snames[@]} -gt 0 ] && echo "$SYNC")'" \
			-e "mem='$([ ${#mnames[@]} -gt 0 ] && echo "$MEM")'" \
			-e "out='$OUT/scaling.png'" \
			-e "subtitle='$DATE, commit $COMMIT, median of $RUNS'" \
			"$ROOT/bench/plot.gp" 2>"$OUT/gnuplot.log"; then
			PLOTTED=1
		else
			echo "bench.sh: gnuplot failed (bench/out/gnuplot.log); no plot" >&2
		fi
	fi
else
	echo "bench.sh: no gnuplot; no plot" >&2
fi

echo
cat "$TABLE"
echo
echo "results: bench/out/results.json, bench/out/table.txt$([ -n "$PLOTTED" ] && echo ', bench/out/scaling.png')"
