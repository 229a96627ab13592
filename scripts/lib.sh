# Shared by the scripts in this folder. Tool versions are pinned here.
PYTEST_VERSION=8.3.4
PYYAML_VERSION=6.0.3     # the version aws-sam-cli 1.170.0 resolves to
SAM_CLI_VERSION=1.170.0     # brings cfn-lint 1.58.0
CARGO_LAMBDA_VERSION=1.9.2
CARGO_FUZZ_VERSION=0.13.1
BOTO3_VERSION=1.41.5
AWSLAMBDARIC_VERSION=3.1.1
CRYPTOGRAPHY_VERSION=46.0.3
BOTOCORE_VERSION=1.43.127   # its wheel holds the SageMaker service model the emulator is checked against
CHECKOV_VERSION=3.3.30     # in its own .venv-checkov: its pins conflict with aws-sam-cli's

step() { echo; echo "==> $*"; }

# A local virtualenv (.venv) with the pinned Python test tools.
ensure_venv() {
  if [ ! -x .venv/bin/python ]; then
    step "creating .venv"
    python3 -m venv .venv
  fi
  if ! .venv/bin/python - "$PYTEST_VERSION" "$PYYAML_VERSION" 2>/dev/null <<'PY'
import sys, pytest, yaml
sys.exit(not (pytest.__version__ == sys.argv[1] and yaml.__version__ == sys.argv[2]))
PY
  then
    step "installing pytest $PYTEST_VERSION and PyYAML $PYYAML_VERSION into .venv"
    .venv/bin/pip install --quiet --disable-pip-version-check "pytest==$PYTEST_VERSION" "pyyaml==$PYYAML_VERSION"
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
    || ! .venv/bin/cargo-lambda lambda --version 2>/dev/null | grep -q "$CARGO_LAMBDA_VERSION"; then
    step "installing aws-sam-cli $SAM_CLI_VERSION and cargo-lambda $CARGO_LAMBDA_VERSION into .venv"
    .venv/bin/pip install --quiet --disable-pip-version-check \
      "aws-sam-cli==$SAM_CLI_VERSION" "cargo-lambda==$CARGO_LAMBDA_VERSION" "pyyaml==$PYYAML_VERSION"
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
