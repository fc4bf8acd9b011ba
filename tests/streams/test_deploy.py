"""deploy/: the compose file, Prometheus and Grafana agree with the code they run.

The static checks always run. ``docker compose config`` runs too where a Docker
engine with the compose plugin answers (none does on the build machines).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from swarmstream.streams.app.settings import Settings
from swarmstream.streams.observe.metrics import WorkerMetrics

DEPLOY = Path(__file__).parents[2] / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())  # safe_load resolves the <<: merge keys


def env_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def test_the_services_are_all_there() -> None:
    services = compose()["services"]
    assert {"kafka", "topics", "sim-fleet", "worker-1", "worker-2", "prometheus", "grafana"} <= set(services)
    assert not any("zookeeper" in name for name in services)
    assert services["sim-fleet"]["command"][:2] == ["swarmstream", "sim-fleet"]
    for worker in ("worker-1", "worker-2"):
        assert services[worker]["command"][:2] == ["swarmstream", "worker"]
        assert services[worker]["depends_on"]["topics"]["condition"] == "service_completed_successfully"
    assert services["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"


def test_kafka_is_a_4x_kraft_node() -> None:
    kafka = compose()["services"]["kafka"]
    image, _, tag = kafka["image"].partition(":")
    assert image == "apache/kafka" and re.fullmatch(r"4\.\d+\.\d+", tag), kafka["image"]
    env = env_of(kafka)
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    node_id = env["KAFKA_NODE_ID"]
    voters = dict(v.split("@", 1) for v in env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(","))
    assert voters[node_id] == "kafka:9093"
    listeners = dict(item.split("://", 1) for item in env["KAFKA_LISTENERS"].split(","))
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] in listeners
    protocol_map = dict(item.split(":", 1) for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert set(listeners) <= set(protocol_map)
    assert len(env["CLUSTER_ID"]) == 22  # a base64 UUID, as `kafka-storage.sh random-uuid` prints
    assert not any(k.startswith("KAFKA_ZOOKEEPER") for k in env)
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"  # one node
    assert "healthcheck" in kafka


def test_worker_environment_names_real_settings() -> None:
    services = compose()["services"]
    fields = set(Settings.model_fields)
    for name in ("worker-1", "worker-2", "topics"):
        env = env_of(services[name])
        unknown = [k for k in env if k.startswith("SWARM_") and k.removeprefix("SWARM_").lower() not in fields]
        assert unknown == [], f"{name}: {unknown} are not fields of streams.app.settings.Settings"
        settings = Settings(**{k.removeprefix("SWARM_").lower(): v for k, v in env.items() if k.startswith("SWARM_")})
        assert settings.broker == "kafka://kafka:9092"
    one, two = env_of(services["worker-1"]), env_of(services["worker-2"])
    assert one["SWARM_GROUP_INSTANCE_ID"] != two["SWARM_GROUP_INSTANCE_ID"]  # static members must differ
    assert one["SWARM_PARTITIONS"] == env_of(services["kafka"])["KAFKA_NUM_PARTITIONS"]
    assert one["SWARM_SIM_URL"].startswith("http://sim-fleet:8000")
    assert "--port" in services["sim-fleet"]["command"]
    assert services["sim-fleet"]["command"][services["sim-fleet"]["command"].index("--port") + 1] == "8000"


def test_prometheus_scrapes_every_worker_on_its_metrics_port() -> None:
    services = compose()["services"]
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    targets = {t for job in config["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]}
    workers = [name for name in services if name.startswith("worker-")]
    assert targets == {f"{w}:{env_of(services[w])['SWARM_METRICS_PORT']}" for w in workers}
    mounted = services["prometheus"]["volumes"][0].split(":")[0]
    assert (DEPLOY / mounted).resolve() == (DEPLOY / "prometheus" / "prometheus.yml").resolve()


def exported_metric_names() -> set[str]:
    metrics = WorkerMetrics()
    names = {sample.name for family in metrics.registry.collect() for sample in family.samples}
    names |= {f"{family.name}_{suffix}" for family in metrics.registry.collect()
              for suffix in ("total", "bucket", "count", "sum")}
    return names | {"swarm_breaker_state", "swarm_consumer_lag"}  # the scrape-time collectors


def test_the_dashboard_queries_only_metrics_the_workers_export() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "swarmstream.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert len(exprs) >= 8
    used = {name for expr in exprs for name in re.findall(r"\bswarm_[a-z_]+", expr)}
    assert used - exported_metric_names() == set()
    assert {"swarm_tasks_total", "swarm_model_calls_total", "swarm_model_call_latency_seconds_bucket",
            "swarm_model_cost_micros_total", "swarm_consumer_lag", "swarm_breaker_state"} <= used
    datasource = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text())
    uid = datasource["datasources"][0]["uid"]
    assert {t["datasource"]["uid"] for panel in dashboard["panels"] for t in panel["targets"]} == {uid}
    provider = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "dashboards" / "swarmstream.yml").read_text())
    path = provider["providers"][0]["options"]["path"]
    assert any(v.endswith(":" + path + ":ro") for v in compose()["services"]["grafana"]["volumes"])


def test_the_dockerfile_copies_what_exists() -> None:
    root = DEPLOY.parent
    copied = [source for line in (DEPLOY / "Dockerfile").read_text().splitlines() if line.startswith("COPY ")
              for source in line.split()[1:-1]]  # COPY <source>... <destination>
    assert copied and all((root / path).exists() for path in copied), copied
    assert {"schemas", "agents", "streams", "pyproject.toml", "setup.py"} <= set(copied)
    assert (DEPLOY / "create_topics.py").exists()


def docker_compose_answers() -> str | None:
    """None if `docker compose` can be used here, else why not."""
    if shutil.which("docker") is None:
        return "no docker command on this machine"
    info = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=30)
    if info.returncode != 0:
        return f"no Docker engine answers (`docker info`: {(info.stderr or info.stdout).strip().splitlines()[-1:]})"
    plugin = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True, timeout=30)
    if plugin.returncode != 0:
        return "the docker compose plugin is not installed"
    return None


def test_docker_compose_accepts_the_file() -> None:
    reason = docker_compose_answers()
    if reason is not None:
        pytest.skip(f"docker compose config not run: {reason}; the static checks above ran")
    done = subprocess.run(["docker", "compose", "-f", str(COMPOSE), "config", "--quiet"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
