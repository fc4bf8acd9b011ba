"""The Faust app, configured for fast hops and short rebalances (DESIGN.md, "Brokers").

Tables use Faust's default json codec, which is orjson when installed (it is a dependency)."""

from __future__ import annotations

from datetime import timedelta
import faust

from swarmstream.streams import transport
from swarmstream.streams.broker import bootstrap_servers
from swarmstream.streams.settings import Settings

def create_app(settings: Settings, broker_url: str) -> faust.App:
    app = faust.App(
        settings.app_id,
        broker=transport.faust_broker_url(broker_url),
        store=settings.store,
        datadir=str(settings.data_dir),
        autodiscover=False,
        web_enabled=False,  # two workers on one host would clash on port 6066
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        table_standby_replicas=0,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=settings.heartbeat_interval_s,
        broker_rebalance_timeout=settings.session_timeout_s,
        broker_commit_interval=settings.commit_interval_s,
        broker_max_poll_records=settings.max_poll_records,
        consumer_group_instance_id=settings.group_instance_id,
        consumer_auto_offset_reset="earliest",
        stream_wait_empty=False,
        stream_recovery_delay=0.0,
        producer_linger_ms=0,
        producer_acks=-1,
        table_cleanup_interval=30.0,
    )
    app.swarm_fetch_max_wait_ms = settings.fetch_max_wait_ms  # read by streams.transport
    app.swarm_bootstrap = bootstrap_servers(broker_url)  # for streams.transport.true_end_offsets
    return app


def window_expiry(settings: Settings) -> timedelta:
    return timedelta(seconds=settings.consensus_expires_s)
