# Shared by the scripts in this folder: install what is missing, reuse what is present.
# shellcheck shell=bash
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# There is nothing to phone home to: no telemetry, no remote lookups from local dev.
export WRANGLER_SEND_METRICS=false
export CLOUDFLARE_CF_FETCH_ENABLED=false
export CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}"
export PATH="$CARGO_HOME/bin:$ROOT/node_modules/.bin:$PATH"

WORKER_BUILD_VERSION=0.8.7
# Schemathesis for the OpenAPI run (tests/schemathesis/): the newest release when it was added.
SCHEMATHESIS_VERSION=4.32.5
SCHEMATHESIS_VENV="$ROOT/target/schemathesis-venv"

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

# The exact wasm-bindgen the lock file resolved: the CLI must match it byte for byte.
wasm_bindgen_version() {
  awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock
}

# cargo_tool BIN CRATE VERSION: install CRATE@=VERSION unless BIN --version already says VERSION.
cargo_tool() {
  local bin=$1 crate=$2 version=$3
  if command -v "$bin" >/dev/null 2>&1 && "$bin" --version 2>/dev/null | grep -qF "$version"; then
    return
  fi
  step "installing $crate $version (once per machine; takes a while)"
  cargo install "$crate" --version "=$version"
}

ensure_tools() {
  step "checking tools"
  command -v cargo >/dev/null || { echo "cargo not found: install Rust (rustup)"; exit 1; }
  command -v npm >/dev/null || { echo "npm not found: install Node.js 20+"; exit 1; }
  # rust-toolchain.toml pins the compiler and lists the wasm target; make sure it is present.
  local toolchain
  toolchain=$(awk -F'"' '/^channel/ { print $2 }' rust-toolchain.toml)
  if ! rustup target list --installed --toolchain "$toolchain" 2>/dev/null | grep -qx wasm32-unknown-unknown; then
    rustup toolchain install "$toolchain" --profile minimal --component rustfmt,clippy
    rustup target add wasm32-unknown-unknown --toolchain "$toolchain"
  fi
  cargo_tool wasm-bindgen wasm-bindgen-cli "$(wasm_bindgen_version)"
  cargo_tool worker-build worker-build "$WORKER_BUILD_VERSION"
  # npm packages (wrangler, esbuild, binaryen's wasm-opt, test clients) from package-lock.json.
  if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    step "installing npm packages"
    npm ci --no-audit --no-fund
  fi
}

# Schemathesis SCHEMATHESIS_VERSION in a virtual environment under target/, its dependencies
# pinned by tests/schemathesis/constraints.txt; reinstalled when either changes.
ensure_schemathesis() {
  local constraints=tests/schemathesis/constraints.txt
  if "$SCHEMATHESIS_VENV/bin/schemathesis" --version 2>/dev/null | grep -qx "schemathesis, version $SCHEMATHESIS_VERSION" \
     && cmp -s "$constraints" "$SCHEMATHESIS_VENV/constraints.txt"; then
    return
  fi
  command -v python3 >/dev/null || { echo "python3 not found: install Python 3.11+ with venv (schemathesis needs it)"; exit 1; }
  step "installing schemathesis $SCHEMATHESIS_VERSION (into target/schemathesis-venv)"
  rm -rf "$SCHEMATHESIS_VENV"
  python3 -m venv "$SCHEMATHESIS_VENV"
  "$SCHEMATHESIS_VENV/bin/pip" install --quiet --disable-pip-version-check \
    -c "$constraints" "schemathesis==$SCHEMATHESIS_VERSION"
  cp "$constraints" "$SCHEMATHESIS_VENV/constraints.txt"
}

# Builds both workers in release mode, with local wasm-bindgen, wasm-opt and esbuild
# (worker-build would otherwise download them): the main one into build/, the previews worker
# (previews/, reached by the service binding PREVIEWS) into previews/build/.
build_worker() {
  step "building the worker (release)"
  local tools=(
    WASM_BINDGEN_BIN="$CARGO_HOME/bin/wasm-bindgen"
    WASM_OPT_BIN="$ROOT/node_modules/.bin/wasm-opt"
    ESBUILD_BIN="$ROOT/node_modules/.bin/esbuild"
  )
  env "${tools[@]}" worker-build --release
  step "building the previews worker (release)"
  (cd previews && env "${tools[@]}" worker-build --release)
}

# Applies D1 migrations to the local database under PERSIST (default .wrangler/state).
migrate_local() {
  local persist=${1:-.wrangler/state}
  step "applying D1 migrations locally"
  CI=true wrangler d1 migrations apply DB --local --persist-to "$persist"
}

# Creates .dev.vars (local secrets for wrangler dev) with fresh random values if it is missing.
ensure_dev_vars() {
  if [ -f .dev.vars ]; then
    return
  fi
  step "creating .dev.vars with fresh local secrets"
  local token admin
  token=$(node -e "console.log(require('crypto').randomBytes(32).toString('hex'))")
  admin=$(node -e "console.log(require('crypto').randomBytes(24).toString('hex'))")
  cat > .dev.vars <<VARS
# Local development secrets (not committed). In production: wrangler secret put NAME.
TOKEN_SECRET=$token
ADMIN_SECRET=$admin
# Turns on POST /v1/dev/token, the development sign-in. Never set it in production.
DEV_MODE=true
VARS
}

# The admin secret from .dev.vars.
dev_admin_secret() {
  sed -n 's/^ADMIN_SECRET=//p' .dev.vars
}

# Client SDK and demo app (client/). `npm install`, not `npm ci`: where the registry lacks
# rollup's other-platform builds, a lock file made there has no entries for them and `npm ci`
# rejects it; `npm install` keeps the locked versions (and records those builds where the
# registry has them, as the committed lock file does).
ensure_client() {
  if [ ! -f client/node_modules/.package-lock.json ] || [ client/package-lock.json -nt client/node_modules/.package-lock.json ]; then
    step "installing client npm packages"
    npm install --prefix client --no-audit --no-fund
  fi
}

# Builds the SDK into client/lib and the demo app into client/dist (served as static assets).
build_client() {
  step "building the client SDK and demo app"
  npm --prefix client run build
}

# Debian's Chromium for the browser tests (they never download a browser).
ensure_chromium() {
  if [ ! -x /usr/bin/chromium ]; then
    step "installing chromium (browser tests)"
    if [ "$(id -u)" -eq 0 ]; then apt-get update && apt-get install -y chromium
    else sudo apt-get update && sudo apt-get install -y chromium; fi
  fi
}
