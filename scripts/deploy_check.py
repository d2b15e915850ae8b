#!/usr/bin/env python3
"""Checks the Helm chart in deploy/ offline, with Helm's own engine, and the agent Job.

Renders the chart with helm-python-sdk (Helm's Go SDK) for each case below, lints it, validates
every rendered document against the Kubernetes schemas (kubernetes-validate, strict), and
compares the renders with tests/fixtures/helm/<case>.yaml, which the Rust tests
(tests/it/deploy.rs) deserialise into k8s-openapi types and check against the seed. The agent Job snapshots of the launcher
(src/infra/launcher/kube/job/snapshots/) are validated against the same schemas.

    deploy_check.py            check; exit 1 on a lint finding, a schema error or a stale render
    deploy_check.py --update   write the renders to tests/fixtures/helm/
"""

import pathlib
import sys

import helm_python as helm
import kubernetes_validate
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
CHART = ROOT / "deploy"
RENDERS = ROOT / "tests" / "fixtures" / "helm"
JOB_SNAPSHOTS = ROOT / "src" / "infra" / "launcher" / "kube" / "job" / "snapshots"
KUBE_VERSION = "1.35.0"

# case name -> (values, namespace)
CASES = {
    "default": ({}, "default"),
    "minikube": ({"distrib": "minikube"}, "default"),
    "options": (
        {
            "tag": "0.1.0",
            "token": {"secretName": "armada-token-secret"},
            "corsOrigins": "https://armada.example.com",
            "imagePullSecrets": [{"name": "armada-docker-registry-secret"}],
            "orchestrator": {"resources": {"requests": {"cpu": "250m", "memory": "256Mi"}}},
            "ingress": {
                "enabled": True,
                "className": "nginx",
                "host": "armada.example.com",
                "tlsSecretName": "armada-tls",
            },
        },
        "armada",
    ),
}


def render(values, namespace):
    """The chart rendered like `helm template armada deploy/ -n NAMESPACE`."""
    with helm.Chart.load(str(CHART)) as chart:
        manifests = chart.render(values=values, name="armada", namespace=namespace, is_install=True)
    parts = []
    for path in sorted(manifests):
        text = manifests[path].strip()
        if path.endswith("NOTES.txt") or not text:
            continue
        parts.append(f"---\n# Source: {path}\n{text}\n")
    return "".join(parts)


def lint(values, namespace):
    report = helm.lint(str(CHART), values, strict=True, namespace=namespace, kube_version=f"v{KUBE_VERSION}")
    problems = [m for m in report["messages"] if m["severity"] >= 2] + [{"error": e} for e in report["errors"]]
    return [f"lint: {p.get('path', '')}: {p['error']}" for p in problems]


def validate(text):
    errors = []
    for document in yaml.safe_load_all(text):
        if not document:
            continue
        name = f"{document.get('kind')}/{document.get('metadata', {}).get('name')}"
        try:
            kubernetes_validate.validate(document, KUBE_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            errors.append(f"{name}: {'.'.join(str(p) for p in error.path)}: {error.message}")
    return errors


def main():
    update = "--update" in sys.argv[1:]
    failures = []
    for case, (values, namespace) in CASES.items():
        failures += [f"{case}: {e}" for e in lint(values, namespace)]
        text = render(values, namespace)
        errors = validate(text)
        failures += [f"{case}: {e}" for e in errors]
        documents = sum(1 for d in yaml.safe_load_all(text) if d)
        target = RENDERS / f"{case}.yaml"
        if update:
            RENDERS.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            print(f"wrote {target.relative_to(ROOT)} ({documents} documents)")
        elif not target.exists() or target.read_text() != text:
            failures.append(
                f"{case}: {target.relative_to(ROOT)} is not what the chart renders; "
                "run scripts/test-deploy.sh --update and review the diff"
            )
        else:
            print(f"chart ({case}, namespace {namespace}): {documents} documents rendered, linted, "
                  f"valid for Kubernetes {KUBE_VERSION}")
    # The agent Jobs the launcher creates (its insta snapshots) against the same schemas.
    # Also `armada kube job`'s output for the example projects (tests/it/kube.rs).
    cli_snapshots = sorted((ROOT / "tests" / "it" / "snapshots").glob("*kube_job*.snap"))
    for snapshot in sorted(JOB_SNAPSHOTS.glob("*.snap")) + cli_snapshots:
        text = snapshot.read_text().split("\n---\n", 1)[1]
        errors = validate(text)
        failures += [f"{snapshot.name}: {e}" for e in errors]
        if not errors:
            print(f"agent Job {snapshot.stem.rsplit('__', 1)[-1]}: valid for Kubernetes {KUBE_VERSION}")
    for failure in failures:
        print(f"FAILED {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
