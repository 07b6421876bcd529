"""`VerbThreads`: the extender's verbs run on worker threads, several at once, and their
answers and errors come back to the event loop."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from hami_core.scheduler.app import VerbThreads


def test_verbs_run_side_by_side_and_answer_on_the_loop() -> None:
    workers = VerbThreads(4, "test-verb")
    meeting = threading.Barrier(4, timeout=5)

    def verb(body: Any) -> dict[str, Any]:
        meeting.wait()  # only passes when four verbs run at the same time
        return {"n": body, "thread": threading.current_thread().name}

    async def main() -> list[dict[str, Any]]:
        return list(await asyncio.gather(*(workers.run(verb, n) for n in range(4))))

    answers = asyncio.run(main())
    workers.close()
    assert [a["n"] for a in answers] == [0, 1, 2, 3]
    assert len({a["thread"] for a in answers}) == 4
    assert all(a["thread"].startswith("test-verb_") for a in answers)


def test_a_failing_verb_raises_in_the_caller_and_the_threads_go_on() -> None:
    workers = VerbThreads(1, "test-verb")

    def broken(_body: Any) -> dict[str, Any]:
        raise ValueError("no such pod")

    async def main() -> dict[str, Any]:
        with pytest.raises(ValueError, match="no such pod"):
            await workers.run(broken, None)
        return await workers.run(lambda body: {"ok": body}, 1)

    assert asyncio.run(main()) == {"ok": 1}
    workers.close()


def test_closed_workers_stop_their_threads() -> None:
    workers = VerbThreads(2, "closing-verb")

    async def main() -> None:
        await asyncio.gather(*(workers.run(lambda body: {"n": body}, n) for n in range(2)))

    asyncio.run(main())
    started = [t for t in threading.enumerate() if t.name.startswith("closing-verb_")]
    assert started
    workers.close()
    for thread in started:
        thread.join(5)
        assert not thread.is_alive()
