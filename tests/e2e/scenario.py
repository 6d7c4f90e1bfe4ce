"""What the end-to-end scenarios share: the drivers' tokens, the EMSP's calls to us, OCPP 1.6 energy readings, and
what the EMSP was told."""

import asyncio
from datetime import UTC, datetime

import httpx

from tests.ocpi_api.emsp import auth_header

TOKEN_16, TOKEN_201 = "EXM-DRIVER-16", "EXM-DRIVER-201"


def iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def emsp_call(emsp, method, url, **kwargs) -> httpx.Response:
    return httpx.request(method, url, headers={"Authorization": auth_header(emsp.our_token)}, timeout=10, **kwargs)


def energy_16(at: datetime, wh: int) -> dict:
    return {
        "timestamp": iso(at),
        "sampledValue": [
            {"value": str(wh), "measurand": "Energy.Active.Import.Register", "unit": "Wh", "context": "Sample.Periodic"}
        ],
    }


def cdr_of(emsp, session_id):
    return [c for c in emsp.cdr_posts if c["session_id"] == session_id]


async def emsp_told(emsp, *, kwh: float, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not any(c["body"].get("kwh") == kwh for c in emsp.session_calls()):
        assert asyncio.get_running_loop().time() < deadline, f"the EMSP never got kwh {kwh}"
        await asyncio.sleep(0.1)
