"""The worker's lanes (``[service] processes``): each region's messages in one lane, in the order
they were handed over; different regions side by side; a lane whose process died tries the
message again. The processors here are plain functions (the runner processes are tested in
tests/intake/service/test_runners.py)."""

from __future__ import annotations

import threading
from pathlib import Path

from intake.pipeline.journey import Result
from intake.pipeline.worker import Processor, TryAgain, Worker, lane_key
from tests.support.settings import make_services, make_settings


def result(inbound_id: int) -> Result:
    return Result(inbound_id, None, "accepted", None, None, (), None, None)


def test_the_lane_key_is_the_senders_region_else_the_sender(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)  # Bretagne: @bretagne.pref.gouv.fr
    bretagne = lane_key(settings, b"From: Agent <Agent7@Bretagne.Pref.Gouv.fr>\r\nSubject: x\r\n\r\n")
    assert bretagne == lane_key(settings, b"From: sgar@bretagne.pref.gouv.fr\r\n\r\nbody")
    assert bretagne == "region:53"
    assert lane_key(settings, b"From: Someone <Inconnu@Example.com>\r\n\r\n") == "inconnu@example.com"
    assert lane_key(settings, b"Subject: no sender\r\n\r\n") is None
    assert lane_key(settings, b"\xff\xfe garbage") is None


def test_one_regions_messages_keep_their_order_while_another_region_goes_by(tmp_path: Path) -> None:
    services = make_services(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite3'}")
    done: list[tuple[int, int]] = []  # (lane, message), in the order processed
    other_region_done = threading.Event()

    def processor(lane: int) -> Processor:
        def process(inbound_id: int) -> Result:
            if inbound_id == 1:  # the first message of the slow region waits for the other region's
                assert other_region_done.wait(10), "the other region waited behind this one"
            done.append((lane, inbound_id))
            if inbound_id == 4:
                other_region_done.set()
            return result(inbound_id)
        return process

    worker = Worker(services, processors=[processor(0), processor(1)])
    slow, quick = "region:53", "region:82"
    worker.start()
    try:
        futures = [worker.submit(1, slow), worker.submit(2, slow), worker.submit(3, slow), worker.submit(4, quick)]
        assert [f.result(10).inbound_id for f in futures] == [1, 2, 3, 4]
    finally:
        other_region_done.set()
        worker.stop(timeout=10)
    assert done == [(1, 4), (0, 1), (0, 2), (0, 3)]  # the slow region in the first lane, the other in the free one
    assert worker.processed == 4


def test_a_region_goes_to_the_least_busy_lane_once_its_messages_are_finished(tmp_path: Path) -> None:
    services = make_services(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite3'}")
    busy = threading.Event()

    def process(inbound_id: int) -> Result:
        if inbound_id == 1:
            assert busy.wait(10)
        return result(inbound_id)

    worker = Worker(services, processors=[process, process])
    worker.start()
    try:
        held = worker.submit(1, "region:11")  # the first lane is busy with it
        assert worker.lane_of("region:53") == 1 and worker.lane_of("region:11") == 0
        assert worker.submit(2, "region:53").result(10).inbound_id == 2
        assert worker.lane_of("region:53") == 1  # unbound again: the least busy lane
        busy.set()
        held.result(10)
        assert worker.submit(3, None).result(10).inbound_id == 3
    finally:
        busy.set()
        worker.stop(timeout=10)
    assert worker.lane_of("region:11") == 0 and worker.pending() == 0


def test_a_lane_whose_process_died_tries_the_message_again(tmp_path: Path) -> None:
    services = make_services(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite3'}")
    calls: list[int] = []

    def process(inbound_id: int) -> Result:
        calls.append(inbound_id)
        if len(calls) == 1:
            raise TryAgain("le processus de traitement n° 1 s'est arrêté ; un autre le remplace")
        return result(inbound_id)

    seen: list[Result] = []
    worker = Worker(services, on_result=lambda r, _: seen.append(r), processors=[process, process])
    worker.start()
    try:
        assert worker.submit(7, "region:53").result(10).outcome == "accepted"
    finally:
        worker.stop(timeout=10)
    assert calls == [7, 7] and [r.inbound_id for r in seen] == [7]
    assert worker.waiting_since is None


def test_an_error_that_is_not_the_stores_fails_the_future_without_retrying(tmp_path: Path) -> None:
    services = make_services(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite3'}")
    calls: list[int] = []

    def process(inbound_id: int) -> Result:
        calls.append(inbound_id)
        raise RuntimeError("bug")

    worker = Worker(services, processors=[process, process])
    worker.start()
    try:
        future = worker.submit(3, "someone@example.com")
        error = future.exception(10)
    finally:
        worker.stop(timeout=10)
    assert isinstance(error, RuntimeError) and calls == [3]
