#!/usr/bin/env bash
# Profile the real server under load: bash bench/pyspy.sh WORKLOAD [SECONDS]
# Serves the (quick) benchmark data on SQLite, drives WORKLOAD with wrk (16 connections)
# and samples the server with py-spy; prints the hottest functions, own and inclusive.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python -m bench.spy "$@"
