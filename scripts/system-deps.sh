#!/usr/bin/env bash
# Install from Debian what the tests need when it is missing: PostgreSQL, Java, Chromium.
set -euo pipefail

missing=()

have_postgres() {
    command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1 && return 0
    compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null
}
have_java() {
    command -v java >/dev/null 2>&1 || { [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; }
}
have_chromium() {
    command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1
}
# python3 -m venv needs ensurepip, which Debian ships separately.
have_venv() {
    [ -x .venv/bin/python ] || python3 -c "import ensurepip, venv" >/dev/null 2>&1
}

have_postgres || missing+=(postgresql)
have_java || missing+=(default-jre-headless)
have_chromium || missing+=(chromium)
(cd "$(dirname "$0")/.." && have_venv) || missing+=(python3-venv)

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    sudo=()
elif command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
else
    echo "system-deps: missing ${missing[*]}; run as root or install them yourself" >&2
    exit 1
fi

echo "system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
