"""How a charger's answer to a command reads for staff: "Accepted", "Rejected (reason)", "3 keys" — never the
Python or JSON shape of the reply."""

from typing import Any


def _status_text(answer: dict) -> str | None:
    status = answer.get("status")
    if not isinstance(status, str):
        return None
    info = answer.get("statusInfo") or answer.get("status_info")
    reason = info.get("reasonCode") if isinstance(info, dict) else None
    return f"{status} ({reason})" if reason else status


def command_answer_text(*, action: str, answer: Any) -> str:
    """One line for an answer. Configuration replies list their keys and values (few, shown in full)."""
    if answer is None or answer == {}:
        return "answered with no content"
    if isinstance(answer, bool):
        return "yes" if answer else "no"
    if not isinstance(answer, dict):
        return str(answer)
    if "configurationKey" in answer or "unknownKey" in answer:
        keys = answer.get("configurationKey") or []
        parts = [f"{k.get('key')} = {k.get('value', '')}" for k in keys if isinstance(k, dict)]
        unknown = answer.get("unknownKey") or []
        if unknown:
            parts.append("unknown: " + ", ".join(str(k) for k in unknown))
        return f"{len(keys)} key(s): " + "; ".join(parts) if parts else "no key"
    if "getVariableResult" in answer:
        results = answer["getVariableResult"] or []
        return "; ".join(
            f"{r.get('component', {}).get('name')}.{r.get('variable', {}).get('name')} "
            f"{r.get('attributeStatus')}" + (f" = {r['attributeValue']}" if "attributeValue" in r else "")
            for r in results
            if isinstance(r, dict)
        )
    if "setVariableResult" in answer:
        results = answer["setVariableResult"] or []
        return "; ".join(str(r.get("attributeStatus")) for r in results if isinstance(r, dict))
    text = _status_text(answer)
    if text is not None:
        return text
    return ", ".join(f"{key}: {value}" for key, value in answer.items())
