"""Image sizes, build times, and each compiled task's start-up time inside its image.

Runs the opt-in image test (tests/images/test_images_run.py, which builds or reuses the images with
buildah and runs every compiled task in its image) with ``KFP_CICD_IMAGE_FIGURES`` set, then writes a
table. Start-up is the time from ``buildah run`` to the task's first log line (interpreter start, kfp
executor, component imports). Build times come from ``images/build.py``'s JSON line (``--build-json``),
since a test run that reuses images builds nothing.

    .venv/bin/python benchmarks/image_figures.py [--figures FILE] [--build-json FILE]
        [--output benchmarks/results/images.md]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "unknown CPU",
    )
    return f"{os.cpu_count()} CPUs ({cpu}), {platform.platform()}"


def storage_driver() -> str:
    """The storage driver buildah really uses (1.28 ignores ``STORAGE_DRIVER``; storage.conf decides)."""
    result = subprocess.run(["buildah", "info"], capture_output=True, text=True)
    if result.returncode != 0:
        return "unknown"
    return json.loads(result.stdout).get("store", {}).get("GraphDriverName", "unknown")


def run_image_test(figures: Path) -> None:
    """The in-image test with figures recorded to ``figures``."""
    env = {**os.environ, "KFP_CICD_IMAGE_TESTS": "1", "KFP_CICD_IMAGE_FIGURES": str(figures)}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-m",
            "images",
            "-k",
            "every_compiled_task",
            str(REPO_ROOT / "tests" / "images" / "test_images_run.py"),
        ],
        env=env,
        check=True,
    )


def table(figures: dict, builds: list[dict]) -> str:
    build_seconds = {b["name"]: b["seconds"] for b in builds if not b.get("reused")}
    lines = ["| image | size MB | build s |", "| --- | ---: | ---: |"]
    for name, image in sorted(figures["images"].items(), key=lambda item: item[1]["size_bytes"]):
        seconds = build_seconds.get(name) or (None if image["reused"] else image["build_seconds"])
        lines.append(
            f"| `{image['ref']}` | {image['size_bytes'] / 1e6:,.0f} | "
            f"{f'{seconds:.0f}' if seconds else '-'} |"
        )
    lines += ["", "| task | image | start → first log line s | task total s |", "| --- | --- | ---: | ---: |"]
    for task in figures["tasks"]:
        first = task["seconds_to_first_line"]
        lines.append(
            f"| {task['function']} | `{task['image']}` | {first:.1f} | {task['seconds']:.1f} |"
            if first is not None
            else f"| {task['function']} | `{task['image']}` | - | {task['seconds']:.1f} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--figures", type=Path, help="figures of an earlier test run (default: run it now)")
    parser.add_argument("--build-json", type=Path, help="the JSON line images/build.py printed")
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "benchmarks" / "results" / "images.md")
    args = parser.parse_args()
    figures_file = args.figures
    if figures_file is None:
        figures_file = Path(tempfile.mkdtemp()) / "figures.json"
        run_image_test(figures_file)
    figures = json.loads(figures_file.read_text())
    builds = json.loads(args.build_json.read_text().strip().splitlines()[-1]) if args.build_json else []
    text = "\n".join(
        [
            "# Image sizes, build times and task start-up",
            "",
            f"- date: {dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()}",
            f"- machine: {machine()}",
            f"- builder: buildah, {storage_driver()} storage, chroot isolation, base "
            "`localhost/kfp-cicd-base:bookworm` "
            "(debootstrap bookworm, Python 3.11.2); the machine was shared with other jobs "
            "(builds under `nice`)",
            "- method: `benchmarks/image_figures.py` (tests/images/test_images_run.py with "
            "`KFP_CICD_IMAGE_FIGURES`); sizes as buildah reports them (uncompressed); for comparison, users "
            "measured TFX's image at ~6.7 GB",
            "",
            table(figures, builds),
            "",
        ]
    )
    args.output.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
