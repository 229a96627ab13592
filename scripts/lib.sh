# Shared by the scripts in this folder.
PYTEST_VERSION=8.3.4

step() { echo; echo "==> $*"; }

# A local virtualenv with the pinned Python tools.
ensure_venv() {
  if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c "import pytest, sys; sys.exit(pytest.__version__ != '$PYTEST_VERSION')" 2>/dev/null; then
    step "installing pytest $PYTEST_VERSION into .venv"
    python3 -m venv .venv
    .venv/bin/pip install --quiet --disable-pip-version-check "pytest==$PYTEST_VERSION"
  fi
}
