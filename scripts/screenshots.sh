#!/usr/bin/env bash
# Screenshots of the built docs site (home page and one API page) with
# headless Chromium, into docs/assets/. Needs Debian's chromium package
# (apt-get install -y chromium) and the docs extra (pip install ".[docs]").
# Usage: scripts/screenshots.sh [port]
set -euo pipefail
cd "$(dirname "$0")/.."
port=${1:-8765}
python=${PYTHON:-.venv/bin/python}
site=$(mktemp -d)
profile=$(mktemp -d)
NO_MKDOCS_2_WARNING=1 "$python" -m mkdocs build --strict --site-dir "$site" -q
"$python" -m http.server "$port" --bind 127.0.0.1 --directory "$site" >/dev/null 2>&1 &
server=$!
trap 'kill "$server"; rm -rf "$site" "$profile"' EXIT
for _ in $(seq 50); do
    curl -sf "http://127.0.0.1:$port/" >/dev/null && break
    sleep 0.2
done

shoot() {  # shoot <url path> <png>
    chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --hide-scrollbars --user-data-dir="$profile" --window-size=1280,1600 \
        --screenshot="$2" "http://127.0.0.1:$port/$1" 2>/dev/null
    echo "$2"
}
shoot "" docs/assets/screenshot-home.png
shoot "api/layers/" docs/assets/screenshot-api-layers.png
