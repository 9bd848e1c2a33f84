"""Every file in cluster/ is validated: launcher YAMLs with Ray's own config preparation and
schema validation, KubeRay manifests for the fields the operator requires."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
LAUNCHER = sorted((ROOT / "cluster").glob("*.yaml"))
KUBERAY = sorted((ROOT / "cluster" / "kuberay").glob("*.yaml"))


def test_every_cluster_file_is_covered():
    all_files = sorted(p for p in (ROOT / "cluster").rglob("*") if p.is_file())
    assert all_files == sorted(LAUNCHER + KUBERAY) and LAUNCHER and KUBERAY


@pytest.mark.parametrize("path", LAUNCHER, ids=lambda p: p.name)
def test_launcher_yaml_passes_ray_validation(path):
    from ray.autoscaler._private.util import prepare_config, validate_config

    raw = yaml.safe_load(path.read_text())
    prepared = prepare_config(copy.deepcopy(raw))
    validate_config(prepared)
    commands = " ".join(raw["head_start_ray_commands"] + raw["worker_start_ray_commands"])
    assert "RAY_AUTH_MODE=token" in commands  # token auth on every node
    assert "--dashboard-host=127.0.0.1" in " ".join(raw["head_start_ray_commands"])  # not exposed
    assert "torch==2.13.0" in " ".join(raw["setup_commands"])  # CPU/pinned torch before the project


def test_onprem_workers_advertise_ipus():
    raw = yaml.safe_load((ROOT / "cluster" / "local.yaml").read_text())
    assert '"IPU"' in " ".join(raw["worker_start_ray_commands"])


def test_cloud_clusters_autoscale_gpu_workers():
    for name in ("aws.yaml", "gcp.yaml"):
        raw = yaml.safe_load((ROOT / "cluster" / name).read_text())
        gpu = raw["available_node_types"]["gpu_worker"]
        assert gpu["min_workers"] == 0 < gpu["max_workers"] <= raw["max_workers"]


def _check_pod_template(template: dict, where: str) -> None:
    containers = template["spec"]["containers"]
    assert containers and all(c.get("name") and c.get("image") for c in containers), where
    env = {e["name"]: e for c in containers for e in c.get("env", [])}
    assert env["RAY_AUTH_MODE"]["value"] == "token", where
    assert "secretKeyRef" in env["RAY_AUTH_TOKEN"]["valueFrom"], where  # the token never sits in the manifest


def _check_cluster_spec(spec: dict, where: str) -> None:
    assert spec["rayVersion"] == "2.60.0", where
    head = spec["headGroupSpec"]
    assert isinstance(head["rayStartParams"], dict)
    assert head.get("serviceType", "ClusterIP") == "ClusterIP", f"{where}: dashboard must not be exposed"
    _check_pod_template(head["template"], f"{where}.headGroupSpec")
    for group in spec.get("workerGroupSpecs", []):
        assert group["groupName"] and isinstance(group["rayStartParams"], dict)
        assert 0 <= group["minReplicas"] <= group.get("replicas", group["minReplicas"]) <= group["maxReplicas"]
        _check_pod_template(group["template"], f"{where}.{group['groupName']}")


def test_cloud_nodes_join_a_restricted_network_not_rays_default():
    """AWS: every node type names its security group (Ray then creates none: its default group opens
    SSH to 0.0.0.0/0); GCP: every node joins a named VPC network with the firewall tag."""
    for path in (ROOT / "cluster" / "aws.yaml", ROOT / "cluster" / "gcp.yaml"):
        raw = yaml.safe_load(path.read_text())
        for name, node_type in raw["available_node_types"].items():
            config = node_type["node_config"]
            if raw["provider"]["type"] == "aws":
                assert config["SecurityGroupIds"], f"{path.name}:{name}"
            else:
                assert config["tags"]["items"] == ["graphium-ray"], f"{path.name}:{name}"
                assert config["networkInterfaces"][0]["network"].endswith("/networks/graphium-ray")
    for path in LAUNCHER + KUBERAY:  # nothing opened to the world outside comments
        assert not [ln for ln in path.read_text().splitlines() if "0.0.0.0/0" in ln.split("#")[0]], path.name


def test_kuberay_network_policy_admits_only_the_cluster_and_submitters():
    docs = {p.name: yaml.safe_load(p.read_text()) for p in KUBERAY}
    policy = docs["networkpolicy.yaml"]
    assert policy["kind"] == "NetworkPolicy" and policy["spec"]["policyTypes"] == ["Ingress"]
    label = policy["spec"]["podSelector"]["matchLabels"]
    for name in ("raycluster.yaml", "rayjob.yaml"):  # every pod of both manifests is selected
        spec = docs[name]["spec"] if name == "raycluster.yaml" else docs[name]["spec"]["rayClusterSpec"]
        for group in [spec["headGroupSpec"], *spec["workerGroupSpecs"]]:
            assert group["template"]["metadata"]["labels"].items() >= label.items(), name
    own, outside = policy["spec"]["ingress"]
    assert own["from"] == [{"podSelector": {"matchLabels": label}}] and "ports" not in own
    assert sorted(p["port"] for p in outside["ports"]) == [8265, 10001]
    assert all("podSelector" in peer for peer in outside["from"])  # no ipBlock: nothing from anywhere


@pytest.mark.parametrize("path", [p for p in KUBERAY if p.name != "networkpolicy.yaml"], ids=lambda p: p.name)
def test_kuberay_manifest_has_required_fields(path):
    doc = yaml.safe_load(path.read_text())
    assert doc["apiVersion"] == "ray.io/v1" and doc["metadata"]["name"]
    if doc["kind"] == "RayCluster":
        _check_cluster_spec(doc["spec"], path.name)
    else:
        assert doc["kind"] == "RayJob" and doc["spec"]["entrypoint"].startswith("graphium-ray ")
        _check_cluster_spec(doc["spec"]["rayClusterSpec"], path.name)
