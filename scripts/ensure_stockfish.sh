#!/usr/bin/env bash
# Make sure a Stockfish binary is available; install Debian's package when we are root.
set -euo pipefail
if [ -n "${STOCKFISH_PATH:-}" ] && [ -x "${STOCKFISH_PATH}" ]; then exit 0; fi
if command -v stockfish >/dev/null 2>&1 || [ -x /usr/games/stockfish ]; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "Stockfish not found: installing it with apt-get (Debian package 'stockfish')..."
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq stockfish
    exit 0
fi
cat >&2 <<MSG
Stockfish was not found (looked at \$STOCKFISH_PATH, PATH and /usr/games/stockfish).
Install it with:   sudo apt-get install -y stockfish     (Debian/Ubuntu)
               or: brew install stockfish                 (macOS)
or point STOCKFISH_PATH at a Stockfish binary, then run the command again.
MSG
exit 1
