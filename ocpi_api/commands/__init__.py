"""Commands and charging profile requests from partners, by what each step does:

- `receive`: check a command and answer at once (CommandResponse / ChargingProfileResponse);
- `send`: the gateway's request for it, sent to the charger once, its answer recorded;
- `results`: the charger's answer as an OCPI result, POSTed to the partner's `response_url`;
- `tasks`: how an accepted command runs (Celery workers, or the server's event loop in the embedded mode).
"""
