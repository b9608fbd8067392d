"""`TF_CONFIG`, the environment variable that describes a multi-worker cluster.

Checked before TensorFlow starts, so that a typo is one error line on every
worker instead of a traceback (or, for some mistakes, a silent single-worker
run).

Example value, on the second of two machines:

    {"cluster": {"worker": ["node1:12345", "node2:12345"]},
     "task": {"type": "worker", "index": 1}}
"""

from __future__ import annotations

import json
import os

from reproduce.errors import ConfigError

TASK_TYPES = ("chief", "worker", "evaluator", "ps")


def read_tf_config(environ=os.environ) -> dict | None:
    """Returns the parsed `TF_CONFIG`, or None when it is unset (a single worker).

    Raises:
        ConfigError: it is not JSON, or its cluster or task is malformed.
    """
    text = environ.get("TF_CONFIG", "").strip()
    if not text:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(f"TF_CONFIG is not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise ConfigError(f"TF_CONFIG must be a JSON object with cluster and task, got {text!r}")
    cluster, task = value.get("cluster"), value.get("task")
    if not isinstance(cluster, dict) or not cluster:
        raise ConfigError(
            f"TF_CONFIG needs a cluster such as {{\"worker\": [\"host1:port\", ...]}}, "
            f"got {cluster!r}")
    for job, addresses in cluster.items():
        if job not in TASK_TYPES:
            raise ConfigError(
                f"TF_CONFIG cluster job {job!r} is unknown; valid jobs: {', '.join(TASK_TYPES)}")
        if (not isinstance(addresses, list) or not addresses
                or not all(isinstance(address, str) and ":" in address for address in addresses)):
            raise ConfigError(
                f"TF_CONFIG cluster {job!r} must list host:port addresses, got {addresses!r}")
    if not isinstance(task, dict):
        raise ConfigError(
            f"TF_CONFIG needs this process's task, e.g. {{\"type\": \"worker\", \"index\": 0}}, "
            f"got {task!r}")
    task_type, index = task.get("type"), task.get("index")
    if task_type not in cluster:
        raise ConfigError(
            f"TF_CONFIG task type {task_type!r} is not in the cluster; choose from "
            f"{', '.join(cluster)}")
    if isinstance(index, bool) or not isinstance(index, int) or not (
            0 <= index < len(cluster[task_type])):
        raise ConfigError(
            f"TF_CONFIG task index {index!r} is out of range; {task_type!r} has "
            f"{len(cluster[task_type])} task(s), indexed from 0")
    return value
