# Shared by the scripts in this folder. Tool versions are pinned here.
PYTEST_VERSION=8.3.4
PYYAML_VERSION=6.0.3     # the version aws-sam-cli 1.170.0 resolves to
SAM_TRANSLATOR_VERSION=1.115.0   # the same: the SAM transform, run offline by tests/template
CFN_LINT_VERSION=1.58.0          # the same: its resource schemas, read by tests/template
SAM_CLI_VERSION=1.170.0     # brings cfn-lint 1.58.0
CARGO_LAMBDA_VERSION=1.9.2
ZIGLANG_VERSION=0.17.1      # cargo-lambda's C compiler and linker (its wheel asks for ziglang>=0.10)
CARGO_FUZZ_VERSION=0.13.1
BOTO3_VERSION=1.41.5
AWSLAMBDARIC_VERSION=3.1.1
CRYPTOGRAPHY_VERSION=46.0.3
BOTOCORE_VERSION=1.43.127   # its wheel holds the SageMaker service model the emulator is checked against
CHECKOV_VERSION=3.3.30     # in its own .venv-checkov: its pins conflict with aws-sam-cli's
CARGO_AUDITABLE_VERSION=0.7.7   # embeds the dependency list in release binaries
RUST_AUDIT_INFO_VERSION=0.5.4   # reads it back (scripts/check-release)

step() { echo; echo "==> $*"; }

# A local virtualenv (.venv) with the pinned Python test tools.
ensure_venv() {
  if [ ! -x .venv/bin/python ]; then
    step "creating .venv"
    python3 -m venv .venv
  fi
  if ! .venv/bin/python - "$PYTEST_VERSION" "$PYYAML_VERSION" "$SAM_TRANSLATOR_VERSION" "$CFN_LINT_VERSION" 2>/dev/null <<'PY'
import sys, pytest, yaml, samtranslator, cfnlint.version
sys.exit((pytest.__version__, yaml.__version__, samtranslator.__version__, cfnlint.version.__version__) != tuple(sys.argv[1:]))
PY
  then
    step "installing pytest $PYTEST_VERSION, PyYAML $PYYAML_VERSION, aws-sam-translator $SAM_TRANSLATOR_VERSION, cfn-lint $CFN_LINT_VERSION into .venv"
    .venv/bin/pip install --quiet --disable-pip-version-check "pytest==$PYTEST_VERSION" "pyyaml==$PYYAML_VERSION" \
      "aws-sam-translator==$SAM_TRANSLATOR_VERSION" "cfn-lint==$CFN_LINT_VERSION"
  fi
}

# botocore's wheel (not installed: only read), for the SageMaker service model
# in it (botocore/data/sagemaker/2017-07-24/service-2.json.gz). The end-to-end
# tests find it through SAGEMAKER_SERVICE_MODEL_WHEEL.
ensure_service_model() {
  SAGEMAKER_SERVICE_MODEL_WHEEL="$PWD/.tools/botocore-$BOTOCORE_VERSION-py3-none-any.whl"
  if [ ! -f "$SAGEMAKER_SERVICE_MODEL_WHEEL" ]; then
    step "downloading botocore $BOTOCORE_VERSION's wheel (the SageMaker service model) into .tools"
    mkdir -p .tools
    python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
      -d .tools "botocore==$BOTOCORE_VERSION"
  fi
  export SAGEMAKER_SERVICE_MODEL_WHEEL
}

# The deployment tools: the SAM CLI (with cfn-lint) and cargo-lambda, into .venv.
ensure_deploy_tools() {
  ensure_venv
  if ! .venv/bin/sam --version 2>/dev/null | grep -q "$SAM_CLI_VERSION" \
    || ! .venv/bin/cargo-lambda lambda --version 2>/dev/null | grep -q "$CARGO_LAMBDA_VERSION" \
    || [ "$(.venv/bin/python -m ziglang version 2>/dev/null)" != "$ZIGLANG_VERSION" ]; then
    step "installing aws-sam-cli $SAM_CLI_VERSION, cargo-lambda $CARGO_LAMBDA_VERSION and ziglang $ZIGLANG_VERSION into .venv"
    .venv/bin/pip install --quiet --disable-pip-version-check \
      "aws-sam-cli==$SAM_CLI_VERSION" "cargo-lambda==$CARGO_LAMBDA_VERSION" "ziglang==$ZIGLANG_VERSION" \
      "pyyaml==$PYYAML_VERSION"
  fi
  export PATH="$PWD/.venv/bin:$PATH" SAM_CLI_TELEMETRY=0
}

# checkov, pinned, in a virtualenv of its own (.venv-checkov): its dependencies
# conflict with aws-sam-cli's, so it never shares .venv.
ensure_checkov() {
  if [ ! -x .venv-checkov/bin/python ]; then
    step "creating .venv-checkov"
    python3 -m venv .venv-checkov
  fi
  if [ "$(.venv-checkov/bin/checkov --version 2>/dev/null)" != "$CHECKOV_VERSION" ]; then
    step "installing checkov $CHECKOV_VERSION into .venv-checkov"
    .venv-checkov/bin/pip install --quiet --disable-pip-version-check "checkov==$CHECKOV_VERSION"
  fi
}

# A cargo tool, pinned, installed from crates.io into ROOT/bin (default
# .tools; cargo records what it installed in ROOT/.crates.toml).
ensure_cargo_tool() {  # crate version [root]
  local root="${3:-$PWD/.tools}"
  if [ ! -x "$root/bin/$1" ] || ! grep -q "^\"$1 $2 " "$root/.crates.toml" 2>/dev/null; then
    step "installing $1 $2 into $root (crates.io)"
    cargo install "$1" --version "$2" --locked --root "$root" --quiet
  fi
}

# Every release build of the function (scripts/release, bench/run) goes
# through cargo-auditable, so that the binary carries its dependency list
# (`cargo audit bin`, scanners). Set as `cargo auditable build` sets it
# (cargo-auditable's src/cargo_auditable.rs): sam build and cargo-lambda run
# cargo themselves. The wrapper applies to the workspace's crates only; both
# scripts share it, so neither relinks the other's build. It is installed in
# CARGO_HOME, not in the clone: cargo mixes the wrapper's path into the
# workspace crates' symbol hashes, so a path per clone would make two clones'
# builds differ.
release_build_env() {
  local root="${CARGO_HOME:-$HOME/.cargo}"
  ensure_cargo_tool cargo-auditable "$CARGO_AUDITABLE_VERSION" "$root"
  export RUSTC_WORKSPACE_WRAPPER="$root/bin/cargo-auditable"
  export CARGO_AUDITABLE_ORIG_ARGS='{"offline":false,"locked":true,"frozen":false,"config":[]}'
}

# arm64 on an x86_64 machine, from Debian's packages (apt-get; needs root),
# installed when missing. Debian keeps only the newest build of a package, so
# these are not pinned: BUILDINFO records the compiler, and it is checked
# against the workspace's rust-version.
apt_ensure() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [ ${#missing[@]} -gt 0 ] || return 0
  step "apt-get install ${missing[*]}"
  dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64
  # Always update first: an old package list offers an older rustc-web.
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# qemu-user and the aarch64 loader and libc (for qemu's -L): runs an aarch64
# binary here. Sets ARM64_SYSROOT.
ensure_qemu_arm64() {
  apt_ensure qemu-user-static libc6-arm64-cross libgcc-s1-arm64-cross
  ARM64_SYSROOT=/usr/aarch64-linux-gnu
}

# An aarch64 compiler when rustup has no aarch64 target (here: its
# distribution server is not reachable): Debian's rustc-web at /usr/bin/rustc,
# with the aarch64 standard library for exactly that compiler. Sets ARM64_RUSTC.
ensure_arm64_rustc() {
  local msrv
  msrv=$(sed -n 's/^rust-version *= *"\([0-9.]*\)".*/\1/p' Cargo.toml)
  debian_rustc_is_new_enough() {
    [ "$(printf '%s\n%s\n' "$msrv" "$(/usr/bin/rustc --version | awk '{print $2}')" | sort -V | head -n1)" = "$msrv" ]
  }
  apt_ensure rustc-web cargo-web libstd-rust-web-dev:arm64
  if ! debian_rustc_is_new_enough; then
    # Installed from an old package list: upgrade it.
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --only-upgrade rustc-web cargo-web libstd-rust-web-dev:arm64 >/dev/null
  fi
  if ! debian_rustc_is_new_enough; then
    echo "Debian's $(/usr/bin/rustc --version) is older than the workspace's rust-version $msrv" >&2
    return 1
  fi
  ARM64_RUSTC=/usr/bin/rustc
}
