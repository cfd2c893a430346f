"""Run ``follow`` on a modelyard.yaml in its own process (what `modelyard ingest --follow` will
do), so tests can SIGKILL / SIGTERM it. Usage: python _ingest_worker.py YAML [UNTIL_IDLE]."""

from __future__ import annotations

import json
import logging
import sys

from modelyard.config.loader import load_config
from modelyard.data.streaming import follow

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    config = load_config(sys.argv[1])
    until_idle = float(sys.argv[2]) if len(sys.argv) > 2 else None
    stats = follow(config, until_idle=until_idle)
    print(
        json.dumps(
            {
                "records": stats.records,
                "duplicates": stats.duplicates,
                "stopped_by": stats.stopped_by,
            }
        ),
        flush=True,
    )
