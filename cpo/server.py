"""`python -m cpo.server`: daphne, as the platform runs it (same command-line options as `daphne`).

One difference from stock daphne: a websocket that breaks the protocol or sends a message above the transport limit
(`--websocket_max_message_size`, 1 MiB by default) is closed with the close code RFC 6455 defines for it (1009
"message too big", 1002 protocol error) instead of having its TCP connection dropped (seen as 1006): a charger
learns why, and reconnects. That is autobahn's `failByDrop` option, which daphne leaves at its default (drop).
"""

from daphne.cli import CommandLineInterface
from daphne.server import Server as DaphneServer


class Server(DaphneServer):
    """Daphne's server with autobahn's `failByDrop` off on its websocket factory.

    Daphne builds the factory inside `run()` and sets only its own options; catching the assignment is the one
    place to add ours without copying `run()`.
    """

    @property
    def ws_factory(self):
        return self.__dict__["ws_factory"]

    @ws_factory.setter
    def ws_factory(self, factory) -> None:
        factory.setProtocolOptions(failByDrop=False)
        self.__dict__["ws_factory"] = factory


class ServerCommandLine(CommandLineInterface):
    server_class = Server


if __name__ == "__main__":
    ServerCommandLine.entrypoint()
