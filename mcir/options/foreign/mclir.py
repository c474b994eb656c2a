"""The published MCIR code's (Aitical/MCLIR) negative-model keys translated into MCIRModel's."""

from __future__ import annotations

from typing import Any, Dict, List

from mcir.options.foreign.edit import Change, ModelAlias, OptionEdit

# Defaults of the original code when a key is left out (sr_neg_multi_model.py, sr_neg_model.py).
NEG_START_DEFAULT = {"many": 0.01, "one": 0.999}
# Defaults of the original PerceptualLoss (basicsr/losses/basic_loss.py), which SPNLoss does not share.
PERCEPTUAL_DEFAULTS = {"vgg_type": "vgg19", "use_input_norm": True, "range_norm": False, "criterion": "l1"}


def translate_mclir(edit: OptionEdit, alias: ModelAlias) -> None:
    """Translate the negatives, λ and the other keys the published MCIR models read.

    Args:
        edit: The option tree being translated (changed in place, changes recorded).
        alias: The model type's entry of ``MODEL_ALIASES``.
    """
    for key, why in (("train.perceptual_contrastive_opt", "a (output, negative, gt) term"),
                     ("train.contrastive_opt", "a (output, negative, gt) term"),
                     ("network_g_net", "negatives with their own architecture")):
        if edit.get(key):
            raise edit.fail(key, f"{why} has no mcir equivalent")
    if edit.has("train"):
        _negatives(edit, alias.negatives)
        _negative_loss(edit, alias.negatives)
        _grad_clip(edit)
        if not alias.val_uses_ema and (edit.get("train.ema_decay") or 0) > 0:
            edit.set("val.use_ema", False, "the original validates the trained network, not its EMA copy")
    edit.drop("path_neg", "never read by this model" if alias.negatives == "many" else
              "only path_neg.pretrain_network_g_neg is read, and it loads the target's own weights into the target")
    edit.drop("val.ensemble", "x4 rotations; mcir's val.self_ensemble averages the 8 flips and rotations")
    if alias.input_norm:
        if edit.get("network_g.type") != "FFANet":
            raise edit.fail("network_g.type", "this model normalises the input with the RESIDE mean/std; in mcir "
                            "only FFANet does that (input_norm)")
        edit.set("network_g.input_norm", True, "the original model feeds the network the RESIDE-normalised input")


def _negatives(edit: OptionEdit, kind: str) -> None:
    """``neg_iter`` / ``neg_decay`` / ``neg_start`` as ``train.negatives`` (Eq. 1: θ' ← w·θ' + (1 − w)·θ)."""
    steps, decay = edit.get("train.neg_iter"), edit.get("train.neg_decay")
    if kind == "one":
        if not isinstance(steps, int) or steps < 1:
            raise edit.fail("train.neg_iter", "SRNegModel needs one positive update interval")
        steps_out: List[int] = [steps]
        decay_out: Any = float(decay or 0.0)
        why = "w: the negative keeps w of its own weights (θ' ← w·θ' + (1 − w)·θ), as mcir's decay"
    else:
        if not isinstance(steps, list) or not steps:
            raise edit.fail("train.neg_iter", "needs a list with the update interval of each negative")
        if not isinstance(decay, list) or len(decay) != len(steps):
            raise edit.fail("train.neg_decay", f"needs a list with one decay per neg_iter entry ({len(steps)})")
        steps_out, decay_out = list(steps), list(reversed(decay))
        # sr_neg_multi_model.py: `for idx, neg_iter in enumerate(self.neg_iter[::-1])` updates negative idx every
        # neg_iter[N-1-idx] iterations with neg_decay[idx], so each interval runs with the reversed decay list.
        why = ("the original updates negative i every neg_iter[N-1-i] iterations with neg_decay[i]; decays put "
               "in the order the intervals run with them" if decay_out != decay else
               "the original pairs neg_decay[i] with neg_iter[N-1-i]; these decays read the same reversed")
    edit.move("train.neg_iter", "train.negatives.steps", "update interval of each negative", value=steps_out)
    if edit.has("train.neg_decay"):
        edit.move("train.neg_decay", "train.negatives.decay", why, value=decay_out)
    else:
        edit.set("train.negatives.decay", decay_out, "the original's default 0: a plain copy at each update")
    share = "share of random weights in each negative's start: θ' = s·random + (1 − s)·θ"
    if edit.has("train.neg_start"):
        edit.move("train.neg_start", "train.negatives.neg_start", share)
    else:
        edit.set("train.negatives.neg_start", NEG_START_DEFAULT[kind], f"the original's default {share}")
    edit.set("train.negatives.init", "blend", "the original blends a fresh network into the target's copy")
    edit.drop("train.update_scaling", "read but never used by the original")


def _negative_loss(edit: OptionEdit, kind: str) -> None:
    """``perceptual_opt`` is the negative term (subtracted, averaged over the negatives): SPNLoss, λ = its weight."""
    pos = edit.get("train.perceptual_pos_opt")
    p = edit.get("train.perceptual_opt")
    if p is None:
        edit.set("train.neg_opt", {"type": "SPNLoss", "loss_weight": 0.0},
                 "no perceptual_opt: the original trains without a negative term (λ = 0)")
    else:
        _check_perceptual(edit, p, kind)
        neg: Dict[str, Any] = {}
        for k, v in p.items():  # the original's key order
            if k != "style_weight":
                neg[{"perceptual_weight": "loss_weight"}.get(k, k)] = "SPNLoss" if k == "type" else v
        neg.setdefault("loss_weight", 1.0)
        for k, v in PERCEPTUAL_DEFAULTS.items():
            neg.setdefault(k, v)
        edit.move("train.perceptual_opt", "train.neg_opt",
                  "the original subtracts perceptual_opt(output, negative) averaged over the negatives", value=neg)
        lam = "λ: SPNLoss's loss_weight"
        nested = [Change("train.perceptual_opt.type", "set", "the same VGG distance", old=p.get("type"), new="SPNLoss")]
        if "perceptual_weight" in p:
            nested.append(Change("train.perceptual_opt.perceptual_weight", "move", lam, new=neg["loss_weight"],
                                 new_key="train.neg_opt.loss_weight"))
        else:
            nested.append(Change("train.neg_opt.loss_weight", "add", f"{lam} (their default)", new=neg["loss_weight"]))
        for k in PERCEPTUAL_DEFAULTS:
            if k not in p:
                nested.append(Change(f"train.neg_opt.{k}", "add", "their PerceptualLoss default", new=neg[k]))
        if "style_weight" in p:
            why = "the negative models ignore the style term"
            nested.append(Change("train.perceptual_opt.style_weight", "drop", why))
        edit.changes.extend(nested)
    if pos is not None:
        edit.move("train.perceptual_pos_opt", "train.perceptual_opt", "the positive perceptual term (output vs gt)")
        if edit.get("train.perceptual_opt.style_weight"):
            edit.drop("train.perceptual_opt.style_weight", "the original model ignores the style term")


def _check_perceptual(edit: OptionEdit, p: Dict[str, Any], kind: str) -> None:
    if p.get("type") != "PerceptualLoss":
        raise edit.fail("train.perceptual_opt.type", f"'{p.get('type')}' against the negatives has no mcir "
                        "equivalent (PerceptualLoss translates to SPNLoss)")
    if p.get("criterion", "l1") not in ("l1", "l2"):
        raise edit.fail("train.perceptual_opt.criterion", "SPNLoss compares features with l1 or l2 only")
    if not isinstance(p.get("layer_weights"), dict):
        raise edit.fail("train.perceptual_opt.layer_weights", "needs the VGG layers and their weights")
    if kind == "one" and p.get("style_weight"):
        raise edit.fail("train.perceptual_opt.style_weight", "SRNegModel subtracts a style term too; SPNLoss has "
                        "none (set it to 0)")


def _grad_clip(edit: OptionEdit) -> None:
    """The published models clip at ``train.use_grad_clip`` (a max norm) and never read ``use_grad_norm``."""
    edit.drop("train.use_grad_norm", "never read (the code reads train.use_grad_clip): the original run does not clip")
    value = edit.get("train.use_grad_clip")
    if value:
        norm = 1.0 if value is True else float(value)
        edit.move("train.use_grad_clip", "train.clip_grad_norm", "the original's max gradient norm", value=norm)
    else:
        edit.drop("train.use_grad_clip", "off: no clipping, as mcir's default")
