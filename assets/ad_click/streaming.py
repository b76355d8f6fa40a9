"""The stream consumer as a Dagster job: each run drains the stream, then stops when it has been idle a while."""

import dagster as dg

from assets.ad_click.resources import EventStream
from assets.common import CASE_TAG, TRIGGER_TAG


class ConsumerConfig(dg.Config):
    until_idle_seconds: float = 20.0
    consumer: str = "dagster-consumer"


@dg.op(description="Consume ad events into the real-time aggregates and the lake until the stream is idle.")
def consume_ad_events(context: dg.OpExecutionContext, config: ConsumerConfig, ad_click_stream: EventStream) -> int:
    from models.ad_click.stream import consume

    def progress(n: int) -> None:
        if n % 10_000 < 500:
            context.log.info(f"{n} events consumed")

    handled = consume(ad_click_stream.url, config.consumer, ad_click_stream.lake_dir, config.until_idle_seconds, on_batch=progress)
    context.add_output_metadata({"events": handled, "lake_dir": ad_click_stream.lake_dir})
    return handled


@dg.job(
    description="Drain the ad event stream into real-time aggregates and the lake (micro-batch). Its schedule runs it "
    "every minute once turned on; launch it by hand to drain what a replay sent.",
    run_tags={CASE_TAG: "ad_click", TRIGGER_TAG: "manual"},
)
def ad_click_stream_consumer_job():
    consume_ad_events()


ad_click_stream_consumer_schedule = dg.ScheduleDefinition(
    job=ad_click_stream_consumer_job,
    cron_schedule="* * * * *",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Every minute: a consumer run drains what arrived (turn on in the UI when events are flowing).",
)
