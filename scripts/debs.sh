# SPDX-License-Identifier: MIT
#
# Sourced by scripts/test.sh, scripts/bench.sh and bench/peers/run.sh.
#
# debs_install NAME PKG...: installs those of the Debian packages PKG that
# are missing (apt-get, through sudo unless run as root), after a line
# "NAME: installing ...". If that fails it prints one line on stderr and
# returns 1. Without dpkg (not Debian) it says so and returns 0: the build
# will tell what is missing.

debs_installed() {
	local s
	s=$(dpkg -s "$1" 2>/dev/null) || return 1
	[[ $s == *$'\nStatus: install ok installed'* ]]
}

debs_install() {
	local name=$1 sudo= p
	local missing=()

	shift
	if ! command -v dpkg >/dev/null; then
		echo "$name: no dpkg here; assuming these are installed: $*" >&2
		return 0
	fi
	for p in "$@"; do
		debs_installed "$p" || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "$name: installing ${missing[*]}"
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	if ! { $sudo apt-get update -qq &&
		$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends "${missing[@]}" >/dev/null; }; then
		echo "$name: could not install ${missing[*]}" >&2
		return 1
	fi
}
