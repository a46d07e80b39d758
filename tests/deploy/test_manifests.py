"""The container image definition and the Kubernetes manifests, checked offline.

Manifests are validated against the Kubernetes 1.37 OpenAPI schemas that `kubernetes-validate`
ships (strict: unknown fields fail), then read for what an operator relies on: probes on the
health routes, a preStop wait and a grace period that cover the drain, secrets by reference,
and only variables the service knows.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from adaptor.config import Settings

DEPLOY = Path(__file__).parents[2] / "deploy"
MANIFESTS = sorted((DEPLOY / "kubernetes").glob("*.yaml"))
KUBERNETES = "1.37.0"


def documents() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for path in MANIFESTS:
        found += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return found


def resource(kind: str, name: str = "adaptor-service") -> dict[str, Any]:
    for doc in documents():
        if doc["kind"] == kind and doc["metadata"]["name"] == name:
            return doc
    raise AssertionError(f"no {kind} {name}")


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda path: path.name)
def test_manifest_is_valid_against_the_kubernetes_schemas(path: Path) -> None:
    for document in yaml.safe_load_all(path.read_text()):
        if document:
            kubernetes_validate.validate(document, KUBERNETES, strict=True)


def test_the_validator_rejects_an_unknown_field() -> None:
    broken = resource("Deployment")
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["path"] = "/x"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES, strict=True)


def settings_variables() -> set[str]:
    return {info.alias or name.upper() for name, info in Settings.model_fields.items()}


def test_deployment_runs_replicas_that_drain_within_their_grace_period() -> None:
    deployment = resource("Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert deployment["spec"]["replicas"] >= 3
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert container["resources"]["requests"]["cpu"]
    assert container["resources"]["requests"]["memory"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    config = resource("ConfigMap")["data"]
    pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    drain = float(config["SHUTDOWN_DELAY_SECONDS"]) + float(config["SHUTDOWN_GRACE_SECONDS"])
    # preStop, then the drain, then a few seconds to flush logs and events and close.
    assert pre_stop + drain + 5 <= pod["terminationGracePeriodSeconds"]
    assert config["ENVIRONMENT"] == "production"


def test_secrets_come_by_reference_and_every_variable_is_a_setting() -> None:
    container = resource("Deployment")["spec"]["template"]["spec"]["containers"][0]
    by_reference = {
        item["name"]: item["valueFrom"]["secretKeyRef"]
        for item in container["env"]
        if "valueFrom" in item
    }
    assert {"ENCRYPTION_KEY", "ADMIN_API_KEY", "POSTGRES_URI"} <= set(by_reference)
    assert not [item for item in container["env"] if "value" in item]
    known = settings_variables()
    assert set(resource("ConfigMap")["data"]) <= known
    assert set(by_reference) <= known
    assert set(resource("Secret")["stringData"]) <= known


def test_disruption_budget_and_autoscaler_keep_the_replicas() -> None:
    deployment = resource("Deployment")
    selector = deployment["spec"]["selector"]["matchLabels"]
    pdb = resource("PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"] == selector
    assert 0 < pdb["spec"]["minAvailable"] < deployment["spec"]["replicas"]
    hpa = resource("HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert hpa["spec"]["minReplicas"] >= deployment["spec"]["replicas"]
    assert resource("Service")["spec"]["selector"] == selector
    externals = {doc["metadata"]["name"] for doc in documents() if doc["kind"] == "Service"}
    assert {"postgres", "redis"} <= externals


def test_image_is_multi_stage_non_root_with_a_health_check_and_adaptor_serve() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    lines = [line.strip() for line in re.sub(r"\\\n", " ", text).splitlines()]
    instructions = [line for line in lines if line and not line.startswith("#")]
    stages = [line for line in instructions if line.startswith("FROM ")]
    assert len(stages) >= 2
    assert "COPY --from=build" in text
    final = instructions[instructions.index(stages[-1]) :]
    users = [line.split()[1] for line in final if line.startswith("USER ")]
    assert users
    assert users[-1].split(":")[0] not in ("0", "root")
    assert any(line.startswith("HEALTHCHECK") and "/health/live" in line for line in final)
    assert 'ENTRYPOINT ["adaptor"]' in final
    assert 'CMD ["serve"]' in final
