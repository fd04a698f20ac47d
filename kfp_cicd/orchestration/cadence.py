"""Schedule cadences: cron expressions for KFP (6 fields) and Vertex (5 fields, TZ prefix), intervals.

KFP's scheduler uses robfig/cron with a leading seconds field, so a familiar 5-field expression
``0 3 * * *`` is given a ``0`` seconds field. Vertex takes 5 fields with an optional
``TZ=Area/City`` or ``CRON_TZ=…`` prefix. ``--every`` takes ``90s``, ``15m``, ``6h``, ``1d``.
Every field is checked (:func:`kfp_cicd.parameter_validation.check_cron`) before a schedule is
created: a server may store an expression it can never fire on.
"""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kfp_cicd.errors import DataError
from kfp_cicd.orchestration.errors import ParameterError
from kfp_cicd.parameter_validation import check_cron

_INTERVAL = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_TZ_PREFIX = re.compile(r"^(CRON_TZ|TZ)=(\S+)\s+(.*)$")


def interval_seconds(every: str) -> int:
    """``24h`` → 86400; at least one minute (KFP's scheduler does not run faster)."""
    match = _INTERVAL.match(every)
    if not match:
        raise ParameterError(f"--every {every!r} is not an interval like 30m, 6h or 1d")
    seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds < 60:
        raise ParameterError(f"--every {every!r} is shorter than one minute; use 1m or more")
    return seconds


def kfp_cron(expression: str) -> str:
    """A KFP (robfig/cron, seconds first) expression from a 5- or 6-field cron."""
    if _TZ_PREFIX.match(expression.strip()):
        raise ParameterError(
            "KFP cron schedules run in the cluster's time zone; drop the TZ= prefix (it is a Vertex feature)"
        )
    fields = expression.split()
    if len(fields) not in (5, 6):
        raise ParameterError(
            f"--cron {expression!r} needs 5 fields (min hour day month weekday), or 6 with leading seconds"
        )
    cron = " ".join(["0", *fields] if len(fields) == 5 else fields)
    try:
        return check_cron(cron, seconds=True, question_mark=True)
    except DataError as exc:
        raise ParameterError(f"{exc} (KFP runs it as '{cron}', seconds first)") from None


def vertex_cron(expression: str) -> str:
    """A Vertex cron: 5 fields, optionally prefixed by a valid ``TZ=``/``CRON_TZ=`` IANA zone."""
    expression = expression.strip()
    body = expression
    match = _TZ_PREFIX.match(expression)
    if match:
        try:
            ZoneInfo(match.group(2))
        except (ZoneInfoNotFoundError, ValueError):
            raise ParameterError(
                f"--cron time zone {match.group(2)!r} is not an IANA zone (e.g. TZ=Europe/Berlin)"
            ) from None
        body = match.group(3)
    if len(body.split()) != 5:
        raise ParameterError(
            f"--cron {expression!r} needs 5 fields (min hour day month weekday), "
            "optionally after TZ=Area/City"
        )
    try:
        check_cron(body, sunday_seven=True)
    except DataError as exc:
        raise ParameterError(str(exc)) from None
    return expression
