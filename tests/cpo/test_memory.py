"""The garbage collector policy of a process holding charger sockets (cpo/memory.py): what a closed connection
leaves in reference cycles is collected even though it was frozen while the connection lived."""

import asyncio
import gc
import weakref

from cpo.memory import gc_freeze_every


class Connection:
    """Stands for a socket's protocol, transport and consumer objects, which refer to each other."""

    def __init__(self):
        self.me = self


def test_the_cycles_of_connections_that_closed_after_being_frozen_are_collected():
    left: list[weakref.ref] = []
    release = asyncio.Event()

    async def application(scope, receive, send):
        connection = Connection()
        left.append(weakref.ref(connection))
        await release.wait()  # held while the next connections come (and freeze it)

    app = gc_freeze_every(application, 2, collect_seconds=0)

    async def scenario():
        held = [asyncio.create_task(app({"type": "websocket"}, None, None)) for _ in range(4)]
        await asyncio.sleep(0)
        release.set()
        await asyncio.gather(*held)
        await asyncio.sleep(0.01)  # the collection is due at once: the loop's next turn

    try:
        asyncio.run(scenario())
        gc.collect()
        assert len(left) == 4
        assert [ref() for ref in left] == [None] * 4
    finally:
        gc.unfreeze()


def test_the_frozen_objects_are_collected_no_more_often_than_the_interval_allows():
    left: list[weakref.ref] = []

    async def application(scope, receive, send):
        connection = Connection()
        left.append(weakref.ref(connection))

    app = gc_freeze_every(application, 1, collect_seconds=3600)

    async def scenario():
        for _ in range(3):
            await app({"type": "websocket"}, None, None)

    try:
        gc.collect()
        asyncio.run(scenario())
        gc.collect()
        assert any(ref() is not None for ref in left)  # frozen: left for the collection due within the hour
    finally:
        gc.unfreeze()
        gc.collect()
