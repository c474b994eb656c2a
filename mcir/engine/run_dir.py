"""Run folders: ``experiments/<name>/{models,training_states,logs,visualization}`` and archiving old runs."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional


@dataclass(frozen=True)
class RunDir:
    """Paths of one training run.

    Args:
        root: The run folder (``experiments/<name>``).
    """

    root: Path

    @property
    def models(self) -> Path:
        """Weights files (``net_g_<iter>.pth``)."""
        return self.root / "models"

    @property
    def training_states(self) -> Path:
        """Resumable training states (``<iter>.state``)."""
        return self.root / "training_states"

    @property
    def logs(self) -> Path:
        """Log file, resolved options and TensorBoard events."""
        return self.root / "logs"

    @property
    def visualization(self) -> Path:
        """Restored validation images."""
        return self.root / "visualization"

    def create(self, archive_existing: bool) -> Optional[Path]:
        """Create the folders; with ``archive_existing``, first rename an existing run folder.

        Args:
            archive_existing: Rename an existing folder to ``<name>_archived_<timestamp>`` (new run).

        Returns:
            The archive path when a folder was archived, else None.
        """
        archived = None
        if archive_existing and self.root.exists():
            stamp = time.strftime("%Y%m%d_%H%M%S")
            archived = self.root.with_name(f"{self.root.name}_archived_{stamp}")
            n = 1
            while archived.exists():
                archived = self.root.with_name(f"{self.root.name}_archived_{stamp}_{n}")
                n += 1
            self.root.rename(archived)
        for p in (self.models, self.training_states, self.logs, self.visualization):
            p.mkdir(parents=True, exist_ok=True)
        return archived


def experiment_root(name: str, experiments_root: Optional[str]) -> Path:
    """``experiments_root`` when set, else ``experiments/<name>`` under the current folder."""
    return Path(experiments_root) if experiments_root else Path("experiments") / name
