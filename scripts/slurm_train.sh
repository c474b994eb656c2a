#!/usr/bin/env bash
# Multi-node training on SLURM: srun starts one torchrun per node, each torchrun starts one mcir process per
# GPU, and they meet at a rendezvous on the job's first node. Submit from the repository root:
#
#   sbatch --nodes=2 --gpus-per-node=4 scripts/slurm_train.sh options/train/SR/X.yml [train.py arguments]
#
# --auto_resume is on, so a requeued or resubmitted job continues from the run's newest training state.
#SBATCH --job-name=mcir
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=1
#SBATCH --cpus-per-task=8
#SBATCH --output=slurm-%j.out
set -euo pipefail

opt=${1:?usage: sbatch [--nodes=N --gpus-per-node=G] scripts/slurm_train.sh OPTION_FILE [train.py arguments]}
shift
gpus_per_node=${GPUS_PER_NODE:-${SLURM_GPUS_ON_NODE:-1}}
head_node=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
port=${MASTER_PORT:-29500}

srun --ntasks-per-node=1 torchrun \
    --nnodes="$SLURM_NNODES" \
    --nproc_per_node="$gpus_per_node" \
    --rdzv_id="$SLURM_JOB_ID" \
    --rdzv_backend=c10d \
    --rdzv_endpoint="$head_node:$port" \
    mcir/train.py -opt "$opt" --launcher pytorch --auto_resume "$@"
