"""The task catalogue (``config/tasks.yaml``): short task ids mapped to the prompt recorded as the task."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml


@dataclass(frozen=True)
class TaskEntry:
    """One task: id used on the command line / in services, and the language prompt stored in the dataset."""

    id: str
    prompt: str
    description: str = ""


def load_tasks(path: Path) -> dict[str, TaskEntry]:
    """Read the catalogue; ValueError names the file and the reason."""
    path = Path(path)
    try:
        cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{path}: missing") from None
    except (OSError, yaml.YAMLError) as e:
        raise ValueError(f"{path}: cannot parse YAML ({e})") from None
    items = cfg.get("tasks") if isinstance(cfg, dict) else None
    if not isinstance(items, dict) or not items:
        raise ValueError(f"{path}: needs a non-empty 'tasks' mapping")
    out: dict[str, TaskEntry] = {}
    for tid, spec in items.items():
        if (
            not isinstance(spec, dict)
            or not isinstance(spec.get("prompt"), str)
            or not spec["prompt"].strip()
        ):
            raise ValueError(f"{path}: task {tid!r} needs a non-empty 'prompt' string")
        if "\n" in spec["prompt"].strip():
            raise ValueError(f"{path}: task {tid!r} prompt must be one line")
        out[str(tid)] = TaskEntry(str(tid), spec["prompt"].strip(), str(spec.get("description", "")).strip())
    return out


def resolve_task(catalogue: dict[str, TaskEntry], task: str) -> str:
    """A task id from the catalogue becomes its prompt; any other string is used as the prompt itself."""
    entry = catalogue.get(task)
    return entry.prompt if entry is not None else task
