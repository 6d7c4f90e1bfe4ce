"""What the gateway does with what chargers say, one module per OCPP functional block:

- `provisioning`: the handshake (identity syntax, the station's security profile), connect / disconnect,
  BootNotification, EVSEs onboarded on first sight;
- `security`: brute-force protection of the handshake (failure counts, lockouts, the audit trail);
- `availability`: StatusNotification;
- `authorization`: Authorize, and the authorization a transaction keeps;
- `transactions`: 1.6 Start/StopTransaction, 2.0.1 TransactionEvent, ending a transaction (also by housekeeping);
- `reservations`: ReserveNow answers, ReservationStatusUpdate, reservations used by a transaction or expired;
- `meter_values`: MeterValues and the samples inside transaction messages;
- `message_log`: every frame kept, and pruned.

Synchronous; the consumer wraps each call once (handlers.base.db). Every write that a retransmitted frame could repeat
is keyed on natural keys backed by unique constraints (1.6 start: station + connector + start time; 2.0.1:
transactionId + seqNo; meter samples), so a replay changes nothing the second time. Domain events are announced
after commit (`events.announce`).
"""
