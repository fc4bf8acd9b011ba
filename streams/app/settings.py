"""Settings from the environment (``SWARM_*``), with defaults that run the demo.

The timing defaults are tuned for the embedded broker and short-lived tests
(see DESIGN.md, "Brokers"): raise ``SWARM_SESSION_TIMEOUT_S`` in production.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_CATALOG = Path(__file__).resolve().parents[2] / "agents" / "models" / "models.yaml"
DEFAULT_CHAINS = Path(__file__).resolve().parents[2] / "agents" / "fallback" / "chains.yaml"
DEFAULT_WORKFLOWS = Path(__file__).resolve().parents[2] / "agents" / "workflows" / "workflows.yaml"
DEFAULT_TOOLS = Path(__file__).resolve().parents[2] / "agents" / "tools" / "tools.yaml"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SWARM_", extra="ignore")

    broker: str = Field("", description="kafka://host:port[,host:port]; empty starts the embedded broker")
    app_id: str = Field("swarmstream", description="the workers' consumer group and changelog prefix")
    topic_prefix: str = Field("swarm", description="every topic is <prefix>.<name>; tests use unique prefixes")
    partitions: int = Field(4, ge=1, le=1024)
    models: Path = Field(DEFAULT_CATALOG, description="the model catalog (models.yaml)")
    chains: Path = Field(DEFAULT_CHAINS, description="fallback chains, breakers and retry policies (chains.yaml)")
    tools: Path = Field(DEFAULT_TOOLS, description="tools, MCP servers, permission policies and loop limits (tools.yaml)")
    sim_url: str | None = Field(None, description="base URL of the simulated fleet, for `provider: simulated`")
    store: str = Field("memory://", description="table store: memory:// (restored from the changelogs) or "
                       "rocksdb:// (also on local disk, needs rocksdict: restarts read only the changelogs' tails)")
    data_dir: Path = Field(Path(".swarmstream"), description="where rocksdb tables live")

    session_timeout_s: float = Field(2.0, gt=0)
    heartbeat_interval_s: float = Field(0.3, gt=0)
    commit_interval_s: float = Field(0.5, gt=0)
    fetch_max_wait_ms: int = Field(
        10, ge=0, description="how long an idle fetch waits; Tansu holds it that long, so every hop could"
    )
    fetch_min_bytes: int = Field(
        1, ge=1, description="how much a fetch waits to gather (up to the fetch wait). On Apache Kafka 4.0 at 300 "
        "tasks/s, 8192 took the worker from 0.95 to 0.70 of a core (1 returns at once with a few records, so the "
        "fetch loop runs as fast as the worker can turn it) for +4 ms at the median; not measured on the embedded "
        "broker"
    )
    max_poll_records: int = Field(500, ge=1)
    producer_linger_ms: int = Field(
        2, ge=0, description="how long the worker's producer waits to fill a batch. bench pipeline, 2,000 tasks, "
        "2 ms vs 0: +17% tasks/s, -8% worker and -35% broker CPU per task, no measurable latency cost at 100 tasks/s "
        "(the broker acks in ~0.4 ms, so with 0 most produce requests carried one or two records)"
    )
    group_instance_id: str | None = Field(None, description="static membership: faster restarts")

    default_timeout_ms: int = Field(30_000, gt=0)
    review_threshold: float = Field(0.5, ge=0, le=1, description="agreement below this goes to human review")
    early_stop_threshold: float = Field(
        0.65, gt=0, le=1, description="Beta stopping rule threshold (bench consensus: 38% fewer calls, no accuracy lost)"
    )
    consensus_window_s: int = Field(3600, gt=0, description="tumbling window of the consensus table")
    judge: str | None = Field(None, description="judge / fuse / vote_then_judge: the judge model, or a chain whose "
                              "links are tried in turn, for tasks that name none (agents/consensus/judging.py)")
    judge_split_below: float = Field(0.75, gt=0, le=1, description="vote_then_judge asks the judge when the vote's "
                                     "agreement is below this (3 voters: a 2-1 split is judged, a unanimous vote not)")
    embeddings_model: str | None = Field(None, description="a catalog model with the `embeddings` capability: free-text "
                                         "clustering by meaning (/v1/embeddings); none: the lexical embedder")
    embeddings_local: str | None = Field(None, description="a fastembed model name or a directory holding one: "
                                         "local clustering by meaning (extra [embed]; agents/consensus/local_embedder.py)")
    embeddings_threshold: float | None = Field(None, gt=0, le=1, description="the cosine at which two answers say "
                                               "the same in that model's space (none: 0.7, measured on MiniLM)")
    consensus_expires_s: int = Field(
        7200, gt=0, description="how long after its creation a task's state (a finished task's: its ~200-byte done "
        "record) and its tool entries are kept, then deleted with a tombstone: that long a redelivered task is "
        "answered from it, a late outcome is ignored and feedback finds who answered what"
    )
    expire_interval_s: float = Field(
        30.0, gt=0, description="how often every table deletes its entries past their retention (a tombstone each): "
        "at ~300 tasks/s a pass finds a few thousand, not a backlog"
    )
    intake_in_flight: int = Field(256, ge=1)
    shed_soft_lag: int = Field(
        5_000, ge=0, description="requests waiting on one partition of a model's topic past which intake slows; 0: off"
    )
    shed_hard_lag: int = Field(
        50_000, ge=1, description="past this many, a new task asking that model ends at once as `rejected`"
    )
    shed_max_delay_ms: int = Field(1_000, ge=0, description="intake's wait per task just under the hard limit")
    admit_queue_share: float = Field(
        0.25, ge=0, le=1, description="a new task whose wait before intake plus the wait at its models (this worker's "
        "own measure) passes this share of its timeout (at least 1 s) ends at once as `rejected`, with the reason; "
        "intake waits a little from half of that; 0: off (agents/dispatch/shedding.py). 25%: an admitted task keeps "
        "three quarters of its timeout for its model calls, retries and the join"
    )
    dedupe_model_calls: bool = Field(
        True, description="skip a redelivered model request whose outcome the task state already counts "
        "(agents/models/dedupe.py): after a crash, only calls whose outcome was still on its way are repeated"
    )
    strategies: dict[str, str] = Field(
        default_factory=dict,
        description='custom aggregation strategies, JSON name -> "package.module:function"; tasks name them in `strategy`',
    )
    policy: str = Field("thompson", description="select mode's default policy (agents/selection/policies.py)")
    workflows: Path = Field(DEFAULT_WORKFLOWS, description="declarative workflows (workflows.yaml): tasks name one in `workflow`")
    budgets: dict[str, dict[str, int | None]] = Field(
        default_factory=dict,
        description='per tenant spend limits, JSON: {"acme": {"per_day_micros": 5000000, "per_month_micros": null}}; '
        '"*" applies to tenants not named',
    )

    # -- operating: metrics, logs, a managed cluster (deploy/README.md) ----------------------
    metrics_port: int = Field(0, ge=0, le=65535, description="Prometheus endpoint of each worker; 0 = off")
    log_format: Literal["text", "json"] = Field("text", description="json: one JSON object per line (streams/observe/jsonlog.py)")
    tracing: bool = Field(
        False, description="an OpenTelemetry span per handled event, the trace context carried on every event a worker "
        "writes (streams/engine/tracing.py; needs opentelemetry, spans are recorded when an SDK tracer provider is configured)"
    )
    broker_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="how workers and clients talk to the cluster")
    broker_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        None, description="with a SASL_* protocol")
    broker_sasl_username: str | None = None
    broker_sasl_password: SecretStr | None = Field(None, description="never logged, never on a topic")
    broker_ssl_cafile: Path | None = Field(None, description="CA bundle for SSL/SASL_SSL; empty = the system's")

    @model_validator(mode="after")
    def _shed_limits(self) -> Settings:
        if self.shed_soft_lag and self.shed_hard_lag <= self.shed_soft_lag:
            raise ValueError(f"SWARM_SHED_HARD_LAG ({self.shed_hard_lag}) must be above SWARM_SHED_SOFT_LAG "
                             f"({self.shed_soft_lag}); set SWARM_SHED_SOFT_LAG=0 to turn load shedding off")
        return self

    @field_validator("broker")
    @classmethod
    def _broker_url(cls, value: str) -> str:
        if value and "://" not in value:
            value = f"kafka://{value}"
        return value

    @property
    def topics(self) -> TopicNames:
        return TopicNames(self.topic_prefix)


@dataclass(frozen=True)
class TopicNames:
    """Every topic name, derived from one prefix so runs never share topics by accident."""

    prefix: str = "swarm"

    @property
    def tasks(self) -> str:
        return f"{self.prefix}.tasks"

    @property
    def responses(self) -> str:
        return f"{self.prefix}.responses"

    @property
    def failures(self) -> str:
        return f"{self.prefix}.failures"

    @property
    def results(self) -> str:
        return f"{self.prefix}.results"

    @property
    def review(self) -> str:
        return f"{self.prefix}.review"

    @property
    def review_decisions(self) -> str:
        """A person's decision on each review item (the console, ``streams/console``)."""
        return f"{self.prefix}.review-decisions"

    @property
    def dead_letters(self) -> str:
        return f"{self.prefix}.dead-letters"

    @property
    def delays(self) -> str:
        return f"{self.prefix}.delays"

    @property
    def calls(self) -> str:
        return f"{self.prefix}.calls"

    @property
    def quality(self) -> str:
        return f"{self.prefix}.quality"

    @property
    def select(self) -> str:
        return f"{self.prefix}.select"

    @property
    def selections(self) -> str:
        return f"{self.prefix}.selections"

    @property
    def feedback(self) -> str:
        return f"{self.prefix}.feedback"

    @property
    def step_results(self) -> str:
        """Workflow steps' child results, keyed by the workflow's task id."""
        return f"{self.prefix}.step-results"

    def step(self, workflow: str, step: str) -> str:
        """A workflow step's topic: the workflow task travels these, step by step."""
        return f"{self.prefix}.step.{workflow}.{step}"

    def model(self, model_id: str) -> str:
        return f"{self.prefix}.model.{model_id}"

    @property
    def tool_calls(self) -> str:
        return f"{self.prefix}.tool-calls"

    @property
    def tool_results(self) -> str:
        return f"{self.prefix}.tool-results"

    @property
    def approvals(self) -> str:
        return f"{self.prefix}.approvals"

    @property
    def audit(self) -> str:
        return f"{self.prefix}.audit"

    def all(self, model_ids: list[str]) -> list[str]:
        """Source topics first: Tansu auto-creates a topic referenced before it exists
        with 4 partitions, so every topic is created explicitly, in this order."""
        return [
            self.tasks,
            self.feedback,
            self.select,
            *(self.model(m) for m in model_ids),
            self.delays,
            self.tool_calls,
            self.tool_results,
            self.approvals,
            self.responses,
            self.failures,
            self.calls,
            self.quality,
            self.selections,
            self.results,
            self.review,
            self.review_decisions,
            self.dead_letters,
            self.audit,
        ]
