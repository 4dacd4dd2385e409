#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# scripts/test.sh: the whole test suite, as CI runs it (.ci/run calls this).
# Installs the Debian packages it needs when they are missing, then:
#   1. gcc, RelWithDebInfo, -Werror: every test (unit + stress)
#   2. clang, -Werror: builds everything (both compilers must stay clean)
#   3. clang + ThreadSanitizer: every test, the stress suite included
#   4. gcc + AddressSanitizer + UndefinedBehaviorSanitizer: every test
#   5. cmake --install into a scratch prefix, then a program written only
#      against the public headers is built with pkg-config and with
#      find_package(weft) and run
# usage: scripts/test.sh [--no-deps] [plain|clang|tsan|asan|install ...]
# $WEFT_TEST_REPEAT: how often the sanitizer stages repeat the stress and
# lifecycle tests (default 4).
# Prints one line per stage and "N passed, N failed" at the end; exits 1 if
# anything failed.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=debs.sh
. "$ROOT/scripts/debs.sh"
JOBS=$(nproc 2>/dev/null || echo 2)
PKGS="cmake make gcc libc6-dev clang libclang-rt-14-dev pkg-config
liburing-dev libck-dev libcmocka-dev util-linux"

deps=1
stages=()
for a in "$@"; do
	case $a in
	--no-deps) deps=0 ;;
	plain | clang | tsan | asan | install) stages+=("$a") ;;
	*) echo "test.sh: unknown argument '$a'" >&2; exit 2 ;;
	esac
done
[ ${#stages[@]} -gt 0 ] || stages=(plain clang tsan asan install)

install_deps() {
	# shellcheck disable=SC2086 # one package per word
	debs_install test.sh $PKGS || exit 1
}

passed=0
failed=0
failures=()

# build <dir> <cc> <cmake args...>
build() {
	local dir=$1 cc=$2
	shift 2
	cmake -S "$ROOT" -B "$dir" -DCMAKE_C_COMPILER="$cc" -DWEFT_WERROR=ON \
		"$@" >"$dir.log" 2>&1 &&
		cmake --build "$dir" -j"$JOBS" >>"$dir.log" 2>&1
}

# stage <name> <command...>: runs it, counts it, shows the log on failure.
stage() {
	local name=$1
	shift
	local t0=$SECONDS
	if "$@"; then
		echo "test.sh: $name: ok ($((SECONDS - t0)) s)"
		passed=$((passed + 1))
	else
		echo "test.sh: $name: FAILED ($((SECONDS - t0)) s)"
		failed=$((failed + 1))
		failures+=("$name")
	fi
}

run_ctest() {
	local dir=$1
	shift
	(cd "$dir" && ctest -j"$JOBS" --output-on-failure "$@") \
		>"$dir.ctest.log" 2>&1
	local rc=$?
	grep -E 'tests passed|tests failed' "$dir.ctest.log" | sed 's/^/    /'
	if [ $rc -ne 0 ]; then
		grep -E '^\s+[0-9]+ - |FAILED|ERROR|WARNING: ThreadSanitizer|ERROR: AddressSanitizer|runtime error' \
			"$dir.ctest.log" | head -40
		echo "    (full log: $dir.ctest.log)"
	fi
	return $rc
}

plain() {
	local d=$ROOT/build/ci-gcc
	build "$d" gcc -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWEFT_BUILD_BENCH=ON ||
		{ tail -30 "$d.log"; return 1; }
	run_ctest "$d"
}

clang_build() {
	local d=$ROOT/build/ci-clang
	build "$d" clang -DCMAKE_BUILD_TYPE=RelWithDebInfo ||
		{ tail -30 "$d.log"; return 1; }
	# And the portable ucontext fallback still builds and runs.
	local u=$ROOT/build/ci-ucontext
	build "$u" clang -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWEFT_CONTEXT=ucontext \
		-DWEFT_BUILD_BENCH=OFF || { tail -30 "$u.log"; return 1; }
	"$u/examples/hello" >/dev/null
}

# Under a sanitizer, the whole suite once, then the stress validators and
# the lifecycle matrix again and again: each run draws a new seed (printed
# in the log), so rare interleavings get more chances to show up.
REPEAT=${WEFT_TEST_REPEAT:-4}

tsan() {
	local d=$ROOT/build/ci-tsan
	build "$d" clang -DWEFT_SANITIZE=thread ||
		{ tail -30 "$d.log"; return 1; }
	export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1"
	run_ctest "$d" && run_ctest "$d" -R 'stress|lifecycle' \
		--repeat until-fail:"$REPEAT"
}

asan() {
	local d=$ROOT/build/ci-asan
	build "$d" gcc -DWEFT_SANITIZE=address ||
		{ tail -30 "$d.log"; return 1; }
	export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
	export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
	run_ctest "$d" && run_ctest "$d" -R 'stress|lifecycle' \
		--repeat until-fail:"$REPEAT"
}

install_check() {
	local d=$ROOT/build/ci-install prefix=$ROOT/build/ci-prefix
	rm -rf "$prefix" "$d-consumer"
	build "$d" gcc -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$prefix" \
		-DWEFT_BUILD_TESTS=OFF -DWEFT_BUILD_BENCH=OFF -DWEFT_BUILD_EXAMPLES=OFF ||
		{ tail -30 "$d.log"; return 1; }
	cmake --install "$d" >>"$d.log" 2>&1 || { tail -20 "$d.log"; return 1; }
	# pkg-config, static and shared
	local pc="PKG_CONFIG_PATH=$prefix/lib/pkgconfig:$prefix/lib/$(gcc -dumpmachine)/pkgconfig"
	env "$pc" sh -c "cc -Wall -Wextra -Werror -o '$d/hello-pc' \
		'$ROOT/examples/hello.c' \$(pkg-config --cflags --libs weft) -pthread" ||
		return 1
	LD_LIBRARY_PATH=$prefix/lib:$prefix/lib/$(gcc -dumpmachine) "$d/hello-pc" >/dev/null ||
		return 1
	# find_package(weft)
	mkdir -p "$d-consumer"
	cat >"$d-consumer/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.20)
project(consumer C)
find_package(weft 0.1 REQUIRED)
add_executable(hello hello.c)
target_link_libraries(hello PRIVATE weft::weft)
CM
	cp "$ROOT/examples/hello.c" "$d-consumer/"
	cmake -S "$d-consumer" -B "$d-consumer/build" \
		-DCMAKE_PREFIX_PATH="$prefix" >>"$d.log" 2>&1 &&
		cmake --build "$d-consumer/build" >>"$d.log" 2>&1 &&
		"$d-consumer/build/hello" >/dev/null || { tail -20 "$d.log"; return 1; }
}

[ $deps -eq 1 ] && install_deps
mkdir -p "$ROOT/build"
for s in "${stages[@]}"; do
	case $s in
	plain) stage "gcc build + tests" plain ;;
	clang) stage "clang build (+ ucontext fallback)" clang_build ;;
	tsan) stage "ThreadSanitizer tests" tsan ;;
	asan) stage "AddressSanitizer+UBSan tests" asan ;;
	install) stage "install + pkg-config + find_package" install_check ;;
	esac
done
echo "stages: $passed passed, $failed failed"
[ $failed -eq 0 ] || { echo "test.sh: failed: ${failures[*]}"; exit 1; }
