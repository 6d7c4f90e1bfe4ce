"""What a server process announces about its own life, for the apps above `cpo` to act on."""

from django.dispatch import Signal

# Sent by a server process stopping gracefully (cpo.server.GracefulShutdown), after its chargers' consumers have run
# `disconnect()` and before its event loop and executors go: what is batched in memory is handed on now (the stations
# just marked offline among it), not dropped with the process.
process_stopping = Signal()
