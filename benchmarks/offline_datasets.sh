#!/usr/bin/env bash
# The datasets of benchmarks/offline.yml, made with rlhub itself: an expert per environment, then
# `rlhub collect` (20k transitions each). Datasets go to $MINARI_DATASETS_PATH (default ~/.minari/datasets).
# Run: bash benchmarks/offline_datasets.sh [LOG_FOLDER]
set -euo pipefail
experts=${1:-benchmark/experts}
rlhub train --algo ppo --env CartPole-v1 --seed 0 -f "$experts" -q --no-progress
rlhub collect --algo ppo --env CartPole-v1 -f "$experts" --n-steps 20000 --epsilon 0.3 \
  --dataset-id rlhub/CartPole-v1/ppo-eps03-v0 --no-progress
rlhub collect --algo ppo --env CartPole-v1 -f "$experts" --n-steps 20000 \
  --dataset-id rlhub/CartPole-v1/ppo-expert-v0 --no-progress
rlhub train --algo sac --env Pendulum-v1 --seed 0 -f "$experts" -q --no-progress
rlhub collect --algo sac --env Pendulum-v1 -f "$experts" --n-steps 20000 --action-noise 0.3 \
  --dataset-id rlhub/Pendulum-v1/sac-noise03-v0 --no-progress
