"""Validation during training: evaluate every set, log it, write sample images, keep the best weights."""

from __future__ import annotations

import logging
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

import torch
from torch import nn
from torch.utils.data import DataLoader

from mcir.core.dist import is_main_process
from mcir.core.inference import infer
from mcir.engine.checkpointer import Checkpointer
from mcir.engine.evaluator import Evaluator, OutputHook
from mcir.engine.logger import TensorBoardWriter
from mcir.utils.img_util import imwrite, tensor2img


class Validation:
    """What the trainer does at each validation.

    Args:
        evaluator: Computes the metrics of a validation pass.
        loaders: ``{dataset name: loader}``.
        infer_options: ``use_ema``, ``tile``, ``tile_overlap``, ``self_ensemble``.
        save_img_dir: Where validation writes restored images (None: don't).
        num_tb_img: The first this many restored images of every set go to TensorBoard and ``sample_dir``.
        sample_dir: Folder of those images (``visualization/``): ``<set>/<iter>/<stem>_<iter>.png``.
        eval_wrap: Turns the evaluation network into what validation runs (``val.compile``: a compiled module
            sharing its weights, made once per network); None: the network itself.
    """

    def __init__(
        self,
        evaluator: Evaluator,
        loaders: Mapping[str, DataLoader],
        infer_options: Optional[Mapping[str, Any]] = None,
        save_img_dir: Optional[str] = None,
        num_tb_img: int = 0,
        sample_dir: Optional[str] = None,
        eval_wrap: Optional[Callable[[nn.Module], nn.Module]] = None,
    ):
        self.evaluator = evaluator
        self.loaders = dict(loaders)
        self.infer_options = dict(infer_options or {})
        self.save_img_dir = save_img_dir
        self.num_tb_img = max(int(num_tb_img), 0)
        self.sample_dir = sample_dir
        self.history: Dict[str, Dict[str, float]] = {}
        self.best: Dict[str, Dict[str, Any]] = {}
        self.eval_wrap = eval_wrap
        self._wrapped: Dict[int, Tuple[nn.Module, nn.Module]] = {}  # id(network) -> (network, wrapped)

    def run(self, step: Any, it: int, checkpointer: Checkpointer, logger: logging.Logger,
            tb: TensorBoardWriter) -> Dict[str, Dict[str, float]]:
        """Evaluate every set with ``step``'s evaluation network at iteration ``it``; log and keep the best.

        Returns:
            The averages per set.
        """
        opts = dict(self.infer_options)
        net = self._network(step.eval_network(opts.pop("use_ema", True)))
        for name, loader in self.loaders.items():
            img_dir = f"{self.save_img_dir}/{name}/{it}" if self.save_img_dir else None
            result = self.evaluator.evaluate(
                lambda x: infer(net, x, device=step.device, **opts),
                loader,
                save_dir=img_dir,
                suffix=str(it),
                on_output=self._sample_writer(tb, name, it, saved_by_evaluator=img_dir is not None),
            )
            avg = result["average"]
            self.history[name] = avg
            logger.info("validation %s @ iter %d: %s", name, it, ", ".join(f"{k}: {v:.4f}" for k, v in avg.items()))
            tb.scalars(avg, it, prefix=f"metrics/{name}/")
            self.keep_best(name, avg, it, lambda: step.weights(), checkpointer, logger)
        return self.history

    def _network(self, net: nn.Module) -> nn.Module:
        """``net`` as validation runs it: wrapped once by ``eval_wrap`` (the pair is kept so the id stays valid)."""
        if self.eval_wrap is None:
            return net
        if id(net) not in self._wrapped:
            self._wrapped[id(net)] = (net, self.eval_wrap(net))
        return self._wrapped[id(net)][1]

    def _sample_writer(self, tb: TensorBoardWriter, dataset: str, it: int,
                       saved_by_evaluator: bool) -> Optional[OutputHook]:
        """Hook writing the first ``num_tb_img`` restored images to TensorBoard and ``sample_dir``."""
        if self.num_tb_img == 0 or not is_main_process():
            return None
        limit = self.evaluator.num_save_img

        def write(index: int, stem: str, output: torch.Tensor) -> None:
            if index >= self.num_tb_img:
                return
            img = tensor2img(output.float().cpu())
            tb.image(f"val_images/{dataset}/{stem}", img, it)
            if self.sample_dir and not (saved_by_evaluator and (limit is None or index < limit)):
                imwrite(img, f"{self.sample_dir}/{dataset}/{it}/{stem}_{it}.png")

        return write

    def keep_best(self, name: str, avg: Mapping[str, float], it: int, weights: Any, checkpointer: Checkpointer,
                  logger: logging.Logger) -> None:
        """Save the weights when the set's first metric improved (``better: higher`` / ``lower``).

        Every rank tracks the best value (validation averages are identical on all ranks); rank 0 writes.

        Args:
            name: The validation set.
            avg: Its averages.
            it: The iteration.
            weights: Returns the weights to save (called only when they are saved).
            checkpointer: Writes them.
            logger: Says so.
        """
        if not avg:
            return
        metric = self.evaluator.metric_names[0]
        better = self.evaluator.metric_set.cfgs[metric].get("better", "higher")
        value = float(avg[metric])
        old = self.best.get(name)
        if old is not None and not (value > old["value"] if better == "higher" else value < old["value"]):
            return
        self.best[name] = {"metric": metric, "better": better, "value": value, "iter": it}
        if is_main_process():
            path = checkpointer.save_best(name, self.best[name], weights())
            logger.info("best %s on %s so far: %.4f @ iter %d (%s)", metric, name, value, it, path.name)
