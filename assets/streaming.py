"""The stream consumer as a Dagster job, for every case with a stream (models/event_stream.py): each run drains the
stream into the case's real-time aggregates, then stops once it has been idle a while; a schedule, stopped by
default, runs it every minute."""

from collections.abc import Callable

import dagster as dg

from assets.common import CASE_TAG, TRIGGER_TAG
from assets.resources import EventStream


class ConsumerConfig(dg.Config):
    until_idle_seconds: float = 20.0
    consumer: str = "dagster-consumer"


def stream_consumer(case: str, op_name: str, what: str, consume: Callable[..., int]
                    ) -> tuple[dg.JobDefinition, dg.ScheduleDefinition]:
    """`<case>_stream_consumer_job` (one op, `op_name`, reading the resource `<case>_stream`) and its schedule.
    `consume(stream_resource, consumer, until_idle, on_batch)` drains the stream and returns the events handled."""
    resource_key = f"{case}_stream"

    @dg.op(name=op_name, description=f"Consume {what} until the stream is idle.", required_resource_keys={resource_key})
    def consume_events(context: dg.OpExecutionContext, config: ConsumerConfig) -> int:
        stream: EventStream = getattr(context.resources, resource_key)

        def progress(n: int) -> None:
            if n % 10_000 < 500:
                context.log.info(f"{n} events consumed")

        handled = consume(stream, config.consumer, config.until_idle_seconds, progress)
        context.add_output_metadata({"events": handled, **({"lake_dir": stream.lake_dir} if stream.lake_dir else {})})
        return handled

    @dg.job(
        name=f"{case}_stream_consumer_job",
        description=f"Drain the {case} event stream: {what} (micro-batch). Its schedule runs it every minute once "
        "turned on; launch it by hand to drain what a replay sent.",
        run_tags={CASE_TAG: case, TRIGGER_TAG: "manual"},
    )
    def consumer_job():
        consume_events()

    schedule = dg.ScheduleDefinition(
        name=f"{case}_stream_consumer_job_schedule",
        job=consumer_job,
        cron_schedule="* * * * *",
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description="Every minute: a consumer run drains what arrived (turn on in the UI when events are flowing).",
    )
    return consumer_job, schedule
