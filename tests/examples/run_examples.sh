#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The examples end to end, under one backend: http_server answers
# fetch_many's requests (all must succeed) and a pipelined pair; echo_server
# echoes; both stop with exit status 0 on SIGTERM; bad arguments give a
# usage line and status 2.
#
# usage: run_examples.sh EXAMPLES_DIR uring|epoll PORT_BASE
set -u
dir=$1 backend=$2 base=$3
fail() { echo "run_examples ($backend): $*" >&2; exit 1; }

wait_port() {
	for ((i = 0; i < 200; i++)); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}

stop() { # pid name: SIGTERM, then the exit status must be 0
	kill -TERM "$1" 2>/dev/null
	wait "$1"
	local st=$?
	[ $st = 0 ] || fail "$2 exited with status $st after SIGTERM"
}

"$dir/http_server" 2>/dev/null && fail "http_server without a port succeeded"
[ $? = 2 ] || fail "http_server without a port: status is not 2"

# HTTP: the crawler against the server.
"$dir/http_server" -l 127.0.0.1 -w 2 -b "$backend" "$base" >/dev/null &
hs=$!
wait_port "$base" || fail "http_server did not listen on $base"
out=$("$dir/fetch_many" -n 300 -k 20 -t 5000 127.0.0.1 "$base" /) ||
	fail "fetch_many failed: $out"
# Two pipelined requests on one connection: two responses.
resp=$(exec 3<>"/dev/tcp/127.0.0.1/$base"
	printf 'GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >&3
	timeout 5 cat <&3)
n=$(grep -c 'HTTP/1.1 200' <<<"$resp")
[ "$n" = 2 ] || fail "pipelined pair: $n responses"
# A malformed request: 400.
resp=$(exec 3<>"/dev/tcp/127.0.0.1/$base"
	printf 'BLAH\r\n\r\n' >&3
	timeout 5 cat <&3)
grep -q 'HTTP/1.1 400' <<<"$resp" || fail "malformed request: no 400"
stop $hs http_server

# Echo.
"$dir/echo_server" -l 127.0.0.1 -w 2 -b "$backend" $((base + 1)) >/dev/null &
es=$!
wait_port $((base + 1)) || fail "echo_server did not listen on $((base + 1))"
resp=$(exec 3<>"/dev/tcp/127.0.0.1/$((base + 1))"
	printf 'hello weft\n' >&3
	timeout 5 head -c 11 <&3)
[ "$resp" = "hello weft" ] || fail "echo: got '$resp'"
stop $es echo_server
echo "run_examples ($backend): ok"
