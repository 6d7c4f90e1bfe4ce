"""A process that stops while events wait in a batch: what is left is dropped with one line, not a traceback on every
interval until the process is gone."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_a_batch_waiting_when_the_process_stops_is_dropped_with_one_line_and_no_traceback():
    """The gateway's exit: its main thread is done, a database thread still finishes its work (stations going
    offline) and adds events; handing them on needs an executor, which the stopping interpreter refuses."""
    script = textwrap.dedent(
        """
        import logging, threading, time
        from concurrent.futures import ThreadPoolExecutor
        import django
        django.setup()
        from ocpp_gateway.batching import PeriodicBatch

        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
        executor = ThreadPoolExecutor(max_workers=1)
        handed = []

        def flush(keys):
            executor.submit(handed.extend, keys).result()
            print("handed on", len(keys), flush=True)

        batch = PeriodicBatch("events", flush, interval=lambda: 0.05)
        batch.add(1)
        time.sleep(0.3)  # flushed while the process runs

        def last_work():  # a non-daemon thread still working when the main thread ends
            for key in range(2, 12):
                batch.add(key)
                time.sleep(0.05)

        threading.Thread(target=last_work).start()
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={"DJANGO_SETTINGS_MODULE": "cpo.settings", "DEBUG": "1", "CPO_ENV_FILE": "", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "handed on 1" in result.stdout
    assert "Traceback" not in result.stderr and "could not hand on" not in result.stderr, result.stderr
    assert "events not handed on, the process is stopping" in result.stderr, result.stderr


@pytest.mark.parametrize(
    "refusal",
    [
        "cannot schedule new futures after interpreter shutdown",
        # the executor's own thread saw the exit first and marked the executor shut down
        "cannot schedule new futures after shutdown",
    ],
)
def test_a_batch_refused_by_a_stopping_interpreter_while_its_main_thread_lives_is_dropped_with_one_line(
    caplog, refusal
):
    """The interpreter's exit hooks shut executors down before its main thread counts as ended (a gateway stopping
    with 10,000 chargers logged a traceback every interval in that window): the batch thread says so once and ends."""
    import logging
    import time

    from ocpp_gateway.batching import PeriodicBatch

    attempts = []

    def flush(keys):
        attempts.append(keys)
        raise RuntimeError(refusal)

    batch = PeriodicBatch("events", flush, interval=lambda: 0.02)
    with caplog.at_level(logging.INFO, logger="ocpp_gateway.batching"):
        batch.add(1)
        time.sleep(0.1)
        batch.add(2)
        time.sleep(0.1)

    assert attempts[0] == [1]
    assert [r.levelname for r in caplog.records] == ["INFO"]
    assert "events not handed on, the process is stopping" in caplog.records[0].getMessage()
