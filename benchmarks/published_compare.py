"""Published MCIR (Aitical/MCLIR SRNegModel_Multi.optimize_parameters) vs mcir's MCIRModel TrainStep, one process.

EDSR-light x4 (64 feat, 16 blocks), batch 16, LR 48 / HR 192, N = 4 negatives (neg_iter 100/200/500/1000,
neg_decay 0.1, neg_start 0.1), VGG16 relu1_2/relu2_2/relu3_3 = 0.2/0.3/0.5, lambda = perceptual_weight = 1e-4,
L1 pixel loss, Adam lr 1e-4, CPU, random-initialised VGG on both sides.

Variants (all timed interleaved in this one process, after one warm-up step each):
  published_spn      SRNegModel_Multi (MCLIR) with pixel_opt L1 + perceptual_opt PerceptualLoss
  published_l1       plain BasicSR SRModel (MCLIR's copy), L1 only
  published_neg_l1   SRNegModel_Multi without perceptual_opt (L1 + the 4 no-grad negative forwards it still runs)
  mcir_spn           mcir MCIRModel TrainStep   (benchmarks/spn_step.py build("spn"))
  mcir_baseline      mcir RestorationModel TrainStep (build("baseline"))

Peak RSS: VmHWM of a fresh child process per variant (`--child VARIANT`: imports, batch, build, 2 steps).
`--check`: numerical check that the published and mcir negative terms agree given identical weights.

Sources (not part of mcir, never committed): a folder holding XPixelGroup/BasicSR (8d56e3a0 was used) with
Aitical/MCLIR (e42fb400) copied over it, given as ``MCIR_PUBLISHED_SRC`` (default ``/tmp/published_bench/basicsr_src``).
It is only put on ``sys.path``; nothing is compiled or installed.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import time
import types
import warnings
from pathlib import Path

MCIR_ROOT = Path(__file__).resolve().parents[1]
BASICSR_SRC = Path(os.environ.get("MCIR_PUBLISHED_SRC", "/tmp/published_bench/basicsr_src"))
HERE = Path(os.environ.get("MCIR_PUBLISHED_OUT", "/tmp/published_bench"))
sys.path.insert(0, str(BASICSR_SRC))
sys.path.insert(0, str(MCIR_ROOT))

import torch  # noqa: E402
import torchvision  # noqa: E402

warnings.filterwarnings("ignore")

# ---- published side ------------------------------------------------------------------------------
import basicsr  # noqa: E402,F401  (registers archs, losses, models)
import basicsr.archs.vgg_arch as vgg_arch  # noqa: E402
from basicsr.models.sr_model import SRModel  # noqa: E402
from basicsr.models.sr_neg_multi_model import SRNegModel_Multi  # noqa: E402

# Runtime patch (not a source edit): BasicSR's VGGFeatureExtractor calls torchvision `vgg16(pretrained=True)`,
# which would download ImageNet weights. Build the very same torchvision vgg16 with random weights instead.
assert not os.path.exists(vgg_arch.VGG_PRETRAIN_PATH)
vgg_arch.vgg = types.SimpleNamespace(
    vgg16=lambda pretrained=False, **kw: torchvision.models.vgg16(weights=None),
    vgg19=lambda pretrained=False, **kw: torchvision.models.vgg19(weights=None),
)

# ---- mcir side -----------------------------------------------------------------------------------
from benchmarks.spn_step import build as mcir_build  # noqa: E402
from benchmarks.spn_step import real_batch  # noqa: E402

BATCH = 16
N_NEG = 4


def published_opt(perceptual: bool) -> dict:
    """The option dict BasicSR's parse_options would hand to the model (train mode, CPU, no dist)."""
    root = str(HERE / "experiments" / "bench")
    train = {
        "ema_decay": 0,
        "neg_decay": [0.1] * N_NEG,  # a list: the published code indexes self.neg_decay[idx]
        "neg_iter": [100, 200, 500, 1000],
        "neg_start": 0.1,
        "optim_g": {"type": "Adam", "lr": 1e-4, "weight_decay": 0, "betas": [0.9, 0.999]},
        "scheduler": {"type": "MultiStepLR", "milestones": [200000], "gamma": 0.5},
        "total_iter": 300000,
        "warmup_iter": -1,
        "pixel_opt": {"type": "L1Loss", "loss_weight": 1.0, "reduction": "mean"},
    }
    if perceptual:
        train["perceptual_opt"] = {
            "type": "PerceptualLoss",
            "layer_weights": {"relu1_2": 0.2, "relu2_2": 0.3, "relu3_3": 0.5},
            "vgg_type": "vgg16",
            "use_input_norm": True,
            "range_norm": False,
            "perceptual_weight": 1e-4,
            "style_weight": 0,
            "criterion": "l1",
        }
    return {
        "name": "bench",
        "model_type": "SRNegModel_Multi",
        "scale": 4,
        "num_gpu": 0,
        "manual_seed": 0,
        "is_train": True,
        "dist": False,
        "rank": 0,
        "world_size": 1,
        "auto_resume": False,
        "network_g": {"type": "EDSR", "num_in_ch": 3, "num_out_ch": 3, "num_feat": 64, "num_block": 16,
                      "upscale": 4, "res_scale": 1, "img_range": 255.0, "rgb_mean": [0.4488, 0.4371, 0.4040]},
        "path": {"pretrain_network_g": None, "strict_load_g": True, "resume_state": None,
                 "experiments_root": root, "models": root + "/models", "training_states": root + "/training_states",
                 "log": root, "visualization": root + "/visualization"},
        "train": train,
        "val": {"val_freq": 5000, "save_img": False},
        "logger": {"print_freq": 100, "save_checkpoint_freq": 5000, "use_tb_logger": False},
    }


def build(kind: str):
    """A fresh model of one variant (seed 0) and a function running one training step at iteration ``it``."""
    torch.manual_seed(0)
    if kind == "published_spn":
        m = SRNegModel_Multi(copy.deepcopy(published_opt(True)))
        return m, lambda batch, it: (m.feed_data(batch), m.optimize_parameters(it, None))
    if kind == "published_neg_l1":
        m = SRNegModel_Multi(copy.deepcopy(published_opt(False)))
        return m, lambda batch, it: (m.feed_data(batch), m.optimize_parameters(it, None))
    if kind == "published_l1":
        opt = copy.deepcopy(published_opt(False))
        opt["model_type"] = "SRModel"
        m = SRModel(opt)
        return m, lambda batch, it: (m.feed_data(batch), m.optimize_parameters(it))
    if kind == "mcir_spn":
        step = mcir_build("spn")
        return step.model, step
    if kind == "mcir_baseline":
        step = mcir_build("baseline")
        return step.model, step
    raise ValueError(kind)


VARIANTS = ["published_spn", "published_l1", "published_neg_l1", "mcir_spn", "mcir_baseline"]


def vm_hwm_mib() -> float:
    """Peak resident memory of this process image (VmHWM), in MiB."""
    status = Path("/proc/self/status").read_text()
    return next(int(l.split()[1]) for l in status.splitlines() if l.startswith("VmHWM:")) / 1024


def child(kind: str) -> None:
    """Run one variant for two steps in this fresh process and print its peak RSS."""
    batch = real_batch(BATCH)
    base = vm_hwm_mib()
    _, step = build(kind)
    for it in (1, 2):
        step(batch, it)
    print(json.dumps({"kind": kind, "vmhwm_mib": vm_hwm_mib(), "vmhwm_before_build_mib": base}))


def peak_rss(kind: str) -> dict:
    """Peak RSS (MiB) of a fresh child process running one variant."""
    out = subprocess.run([sys.executable, __file__, "--child", kind], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def check(batch) -> dict:
    """Give the published model mcir's exact weights (net_g, negatives, VGG) and compare the loss terms."""
    mc, _ = build("mcir_spn")
    pub, _ = build("published_spn")
    pub.net_g.load_state_dict(mc.net_g.state_dict())
    for pn, mn in zip(pub.net_g_neg, mc.negatives.negatives):
        pn.load_state_dict(mn.module.state_dict())
    pub_convs = [m for m in pub.cri_perceptual.vgg.vgg_net if isinstance(m, torch.nn.Conv2d)]
    mc_convs = [m for m in mc.spn.vgg.features if isinstance(m, torch.nn.Conv2d)]
    assert len(pub_convs) == len(mc_convs) == 7
    with torch.no_grad():
        for a, b in zip(pub_convs, mc_convs):
            a.weight.copy_(b.weight)
            a.bias.copy_(b.bias)
    lq = batch["lq"][:4]
    with torch.no_grad():
        out_p = pub.net_g(lq)
        negs_p = [n(lq) for n in pub.net_g_neg]
        l_neg_p = sum(pub.cri_perceptual(out_p, n)[0] for n in negs_p) / len(negs_p)  # = lambda * mean distance
        out_m = mc.net_g(lq)
        negs_m = mc.negatives(lq)
        l_neg_m = mc.neg_lambda * mc.spn.distance(out_m, negs_m)
    return {
        "max_abs_diff_output": float((out_p - out_m).abs().max()),
        "max_abs_diff_negatives": float(max((a - b).abs().max() for a, b in zip(negs_p, negs_m))),
        "published_lambda_l_neg": float(l_neg_p),
        "mcir_lambda_l_neg": float(l_neg_m),
        "rel_diff": float(abs(l_neg_p - l_neg_m) / abs(l_neg_m)),
    }


def main() -> None:
    """Time all variants interleaved, measure peak RSS, write and print the JSON result."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--child", choices=VARIANTS)
    ap.add_argument("--no-rss", action="store_true")
    ap.add_argument("--out", default=str(HERE / "result.json"))
    args = ap.parse_args()
    if args.child:
        child(args.child)
        return
    t_start = time.perf_counter()
    batch = real_batch(BATCH)
    print("check:", json.dumps(ck := check(batch)), flush=True)
    steps = {k: build(k)[1] for k in VARIANTS}
    it = {k: 0 for k in VARIANTS}
    warm = {}
    for k in VARIANTS:  # warm-up (iteration 1)
        it[k] += 1
        t0 = time.perf_counter()
        steps[k](batch, it[k])
        warm[k] = time.perf_counter() - t0
        print(f"warm-up {k}: {warm[k]:.2f}s", flush=True)
    samples = {k: [] for k in VARIANTS}
    for r in range(args.repeats):  # interleaved: a b c d e, a b c d e, ...
        for k in VARIANTS:
            it[k] += 1
            t0 = time.perf_counter()
            steps[k](batch, it[k])
            samples[k].append(time.perf_counter() - t0)
        print(f"repeat {r + 1}: " + ", ".join(f"{k} {samples[k][-1]:.2f}" for k in VARIANTS), flush=True)
    med = {k: statistics.median(v) for k, v in samples.items()}
    del steps
    rss = {} if args.no_rss else {k: peak_rss(k) for k in VARIANTS}
    result = {
        "seconds_median": {k: round(v, 3) for k, v in med.items()},
        "seconds_samples": {k: [round(x, 3) for x in v] for k, v in samples.items()},
        "seconds_warmup": {k: round(v, 3) for k, v in warm.items()},
        "ratios": {
            "published_spn_over_mcir_spn": round(med["published_spn"] / med["mcir_spn"], 3),
            "published_spn_over_published_l1": round(med["published_spn"] / med["published_l1"], 3),
            "published_spn_over_published_neg_l1": round(med["published_spn"] / med["published_neg_l1"], 3),
            "mcir_spn_over_mcir_baseline": round(med["mcir_spn"] / med["mcir_baseline"], 3),
            "published_l1_over_mcir_baseline": round(med["published_l1"] / med["mcir_baseline"], 3),
        },
        "peak_rss_mib": {k: round(v["vmhwm_mib"]) for k, v in rss.items()},
        "rss_before_build_mib": {k: round(v["vmhwm_before_build_mib"]) for k, v in rss.items()},
        "rss_ratios": ({
            "published_spn_over_mcir_spn": round(rss["published_spn"]["vmhwm_mib"] / rss["mcir_spn"]["vmhwm_mib"], 3),
            "mcir_spn_over_mcir_baseline": round(rss["mcir_spn"]["vmhwm_mib"] / rss["mcir_baseline"]["vmhwm_mib"], 3),
        } if rss else {}),
        "loss_check": ck,
        "batch": BATCH, "negatives": N_NEG, "repeats": args.repeats, "warmup_steps": 1,
        "threads": torch.get_num_threads(), "interop_threads": torch.get_num_interop_threads(),
        "torch": torch.__version__, "torchvision": torchvision.__version__,
        "cpu_count": os.cpu_count(),
        "sources": {
            "MCLIR": "Aitical/MCLIR e42fb400d7ccca2fb3ee08d23ff6994485c6c29f",
            "BasicSR": "XPixelGroup/BasicSR 8d56e3a045f9fb3e1d8872f92ee4a4f07f886b0a",
            "mcir": subprocess.run(["git", "-C", str(MCIR_ROOT), "rev-parse", "HEAD"], capture_output=True,
                                   text=True).stdout.strip()
                    + (" (+ uncommitted working-tree changes)" if subprocess.run(
                        ["git", "-C", str(MCIR_ROOT), "status", "--porcelain", "--untracked-files=no"],
                        capture_output=True, text=True).stdout.strip() else " (clean tree)"),
        },
        "total_wall_s": round(time.perf_counter() - t_start, 1),
    }
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
