"""The run policy: how every flow records its work in a SyncRun and reacts to the channel's refusals.

`channel_run` opens a run of one kind (closing the kind's runs a dead worker left "running"), yields a
tally the flow fills, and on the way out finishes the run with its counts. Any failure, not only the
channel's (the database, Redis), finishes the run with the error, so none stays "running", and is
re-raised for the task to retry or report. A refusal of the credentials also flags the channel for
reauthorisation (`reauthorisation_flagged`, used alone by the calls that record no run).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.utils import timezone

from channels.connectors.base import ChannelAuthError, ChannelError, RecordError
from channels.models import Channel, SyncRun
from channels.services import sync_runs_interrupted_close
from channels.sync.text import storable_text

# A run keeps the first 500 record errors: enough to act on, small enough to show.
MAX_RECORDED_ERRORS = 500


@dataclass
class RunTally:
    run: SyncRun
    processed: int = 0
    skipped: int = 0
    errors: list[RecordError] = field(default_factory=list)

    def progress_show(self) -> None:
        """Write the counts so far on the running run, for staff watching a long run page by page."""
        SyncRun.objects.filter(pk=self.run.pk).update(
            processed=self.processed, skipped=self.skipped, failed=len(self.errors)
        )

    def refused(self, record_id: str, exc: ChannelError) -> None:
        """The channel refused one record: that record's error, and a refused credential flags the channel."""
        if isinstance(exc, ChannelAuthError):
            channel_flag_reauthorisation(channel_id=self.run.channel_id, reason=str(exc))
        self.errors.append(RecordError(record_id, str(exc)))


def channel_flag_reauthorisation(*, channel_id: int, reason: str) -> None:
    Channel.objects.filter(pk=channel_id).update(needs_reauthorisation=True, reauthorisation_reason=reason[:255])


def channel_clear_reauthorisation(*, channel_id: int) -> None:
    Channel.objects.filter(pk=channel_id).update(needs_reauthorisation=False, reauthorisation_reason="")


@contextmanager
def reauthorisation_flagged(*, channel_id: int) -> Iterator[None]:
    """Flag the channel for reauthorisation when the call inside is refused its credentials; re-raise."""
    try:
        yield
    except ChannelAuthError as exc:
        channel_flag_reauthorisation(channel_id=channel_id, reason=str(exc))
        raise


def _finish(tally: RunTally, *, error: str = "") -> None:
    run = tally.run
    run.processed = tally.processed
    run.skipped = tally.skipped
    run.failed = len(tally.errors)
    # JSON in PostgreSQL holds no NUL either, and the channel's ids and messages may carry one.
    run.errors = [
        {"record_id": storable_text(e.record_id), "reason": storable_text(e.reason)}
        for e in tally.errors[:MAX_RECORDED_ERRORS]
    ]
    run.error = storable_text(error)
    if error:
        run.status = SyncRun.Status.PARTIAL if tally.processed else SyncRun.Status.FAILED
    else:
        run.status = SyncRun.Status.PARTIAL if tally.errors else SyncRun.Status.SUCCESS
    run.finished_at = timezone.now()
    run.save()


@contextmanager
def channel_run(*, channel: Channel, kind: str, exclusive: bool = True) -> Iterator[RunTally]:
    """Record one run of `kind` for the channel. `exclusive` runs (one at a time per channel, under its lock)
    first close the runs of that kind a dead worker left running; despatch runs, one per order, do not."""
    if exclusive:
        sync_runs_interrupted_close(channel_id=channel.pk, kind=kind)
    tally = RunTally(SyncRun.objects.create(channel=channel, kind=kind))
    try:
        with reauthorisation_flagged(channel_id=channel.pk):
            yield tally
    except Exception as exc:
        _finish(tally, error=f"{type(exc).__name__}: {exc}")
        raise
    _finish(tally)
