"""How orchestration commands end: results on stdout (text or JSON) and exit codes CI can rely on.

=====  ===================================================================
code   meaning
=====  ===================================================================
0      done (including "nothing to upload": the revision is already there)
1      the followed run/job failed or was cancelled (``--wait``)
2      bad input: unknown/mistyped ``--param``, missing spec, bad flags
3      authentication or permission refused (401/403)
4      the service could not be reached
5      a named pipeline, version, run or schedule does not exist
6      any other error the service reported
=====  ===================================================================
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

from kfp_cicd.errors import KfpCicdError
from kfp_cicd.orchestration.errors import (
    AuthenticationError,
    NotFoundError,
    OrchestrationError,
    ParameterError,
    RunFailed,
    ServiceUnreachable,
    SpecError,
)

EXIT_OK = 0
EXIT_RUN_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_AUTH = 3
EXIT_UNREACHABLE = 4
EXIT_NOT_FOUND = 5
EXIT_SERVICE_ERROR = 6

EXIT_CODES_HELP = (
    "exit codes: 0 done (also: nothing to upload), 1 run failed, 2 bad input, "
    "3 authentication/permission refused, 4 service unreachable, 5 not found, "
    "6 other service error"
)


def exit_code(error: KfpCicdError) -> int:
    """The exit code for an error (see the module table)."""
    for kind, code in (
        (RunFailed, EXIT_RUN_FAILED),
        (AuthenticationError, EXIT_AUTH),
        (ServiceUnreachable, EXIT_UNREACHABLE),
        (NotFoundError, EXIT_NOT_FOUND),
        (ParameterError, EXIT_BAD_INPUT),
        (SpecError, EXIT_BAD_INPUT),
        (OrchestrationError, EXIT_SERVICE_ERROR),
    ):
        if isinstance(error, kind):
            return code
    return EXIT_BAD_INPUT


def run_command(action: Callable[[], Any], output: str, render: Callable[[Any], str]) -> int:
    """Run ``action``; print its result (``render`` for text, JSON otherwise) or the error and its code.

    With ``--output json`` an error is also JSON on stdout (``{"error": …, "exit_code": …}``) so a
    script reads one document either way; the message goes to stderr as well.
    """
    try:
        result = action()
    except KfpCicdError as exc:
        code = exit_code(exc)
        print(f"kfp-cicd: error: {exc}", file=sys.stderr)
        if output == "json":
            print(json.dumps({"error": str(exc), "exit_code": code}))
        return code
    if output == "json":
        print(json.dumps(to_jsonable(result), indent=2, sort_keys=True))
    else:
        print(render(result))
    return EXIT_OK


def to_jsonable(value: Any) -> Any:
    """Results (dataclasses with ``to_dict``), lists of them, or plain values as JSON-ready data."""
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    return value
