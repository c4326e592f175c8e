#!/usr/bin/env bash
# ensure-tools.sh installs, with apt, the programs the make targets need and
# that are missing: redis-server and redis-cli (packages redis-server and
# redis-tools) for tests, chromium for the status page's browser test, wrk
# for the load test. It does nothing when they are
# all there, so it is safe to run every time.
#
# Usage: scripts/ensure-tools.sh [redis] [chromium] [wrk]   (no arguments: all of them)
set -euo pipefail

want=("$@")
if [[ ${#want[@]} -eq 0 ]]; then
	want=(redis chromium wrk)
fi

pkgs=()
for tool in "${want[@]}"; do
	case "$tool" in
	redis)
		command -v redis-server >/dev/null 2>&1 || pkgs+=(redis-server)
		command -v redis-cli >/dev/null 2>&1 || pkgs+=(redis-tools)
		;;
	chromium)
		command -v chromium >/dev/null 2>&1 || pkgs+=(chromium)
		;;
	wrk)
		command -v wrk >/dev/null 2>&1 || pkgs+=(wrk)
		;;
	*)
		echo "ensure-tools.sh: unknown tool \"$tool\" (known: redis, chromium, wrk)" >&2
		exit 2
		;;
	esac
done

if [[ ${#pkgs[@]} -eq 0 ]]; then
	exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
	echo "ensure-tools.sh: missing ${pkgs[*]} and there is no apt-get: install them with your package manager" >&2
	exit 1
fi

sudo=()
if [[ "$(id -u)" -ne 0 ]]; then
	if ! command -v sudo >/dev/null 2>&1; then
		echo "ensure-tools.sh: missing ${pkgs[*]}: run as root or install sudo" >&2
		exit 1
	fi
	sudo=(sudo)
fi

echo "ensure-tools.sh: installing ${pkgs[*]} with apt-get" >&2
"${sudo[@]}" apt-get update
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${pkgs[@]}"
