"""The model card (README.md) of a packaged agent: Hub metadata and how to use it; reading one back."""

from __future__ import annotations

import json
import re
from pathlib import Path
from pprint import pformat
from typing import Any

from rlhub.hub.files import model_name
from rlhub.run_folder import Manifest


def model_card(manifest: Manifest, spec: Any, section: dict[str, Any], *, repo_id: str | None, mean_reward: float,
               std_reward: float, n_eval_episodes: int, deterministic: bool, has_video: bool,
               agent_returns: dict[str, tuple[float, float]] | None = None) -> str:
    """The README: metadata the Hub understands (library, tags, model-index) and how to use the agent.

    :param agent_returns: a multi-agent game's per-agent mean and std returns (``mean_reward`` is then
        the agents' summed return)
    """
    from huggingface_hub import ModelCardData
    from huggingface_hub.repocard import metadata_eval_result

    sb3_class = spec.class_path.split(":")[0].split(".")[0] in ("stable_baselines3", "sb3_contrib")
    class_name = spec.class_path.rsplit(":", 1)[-1]
    tags = [manifest.env_id, manifest.algo_id, "rlhub", "reinforcement-learning"]
    if spec.kind not in ("tabular", "bandit", "planning"):
        tags.append("deep-reinforcement-learning")
    if spec.kind == "multi-agent":
        tags.append("multi-agent-reinforcement-learning")
    if sb3_class:
        tags.append("stable-baselines3")
    evaluation = metadata_eval_result(
        model_pretty_name=class_name, task_pretty_name="reinforcement-learning", task_id="reinforcement-learning",
        metrics_pretty_name="mean_reward", metrics_id="mean_reward",
        metrics_value=f"{mean_reward:.2f} +/- {std_reward:.2f}", dataset_pretty_name=manifest.env_id,
        dataset_id=manifest.env_id,
    )
    metadata = ModelCardData(library_name="stable-baselines3" if sb3_class else "rlhub",
                             tags=list(dict.fromkeys(tags)), **evaluation)
    repo = repo_id or f"<user>/{model_name(manifest.algo_id, manifest.env_id)}"
    install = "pip install rlhub"
    if manifest.distribution and manifest.distribution != "rlhub":
        install += f" {manifest.distribution}"
    env_kwargs = " ".join(f"{key}:{json.dumps(value)}" for key, value in manifest.env_kwargs.items())
    train = f"rlhub train --algo {manifest.algo_id} --env {manifest.env_id}"
    if env_kwargs:
        train += f" --env-kwargs {env_kwargs}"
    sb3_usage = ""
    if sb3_class:
        module = spec.class_path.split(":")[0].split(".")[0]
        sb3_usage = f"""
## Usage (with Stable-Baselines3)

The model file is a plain SB3 zip: SB3's `{class_name}.load` reads it (it unpickles the file, so
only do this for agents you trust).

```python
from huggingface_hub import hf_hub_download
from {module} import {class_name}

model = {class_name}.load(hf_hub_download("{repo}", "{manifest.model_file}"))
```
"""
    provenance = f"the `{manifest.plugin}` plugin" if manifest.plugin else "rlhub"
    if manifest.distribution:
        provenance += f" (distribution `{manifest.distribution}` {manifest.distribution_version})"
    body = f"""
# **{class_name}** agent playing **{manifest.env_id}**

This is a trained **{class_name}** agent (rlhub algorithm `{manifest.algo_id}`, from {provenance})
playing **{manifest.env_id}**, trained with rlhub on
[Stable-Baselines3](https://github.com/DLR-RM/stable-baselines3).

{"Mean total return (summed over the agents)" if agent_returns else "Mean return"}: **{mean_reward:.2f} +/- {std_reward:.2f}** over {n_eval_episodes} episodes
({"deterministic" if deterministic else "stochastic"} actions){", see `replay.mp4`" if has_video else ""}.
{_agent_table(agent_returns)}
## Usage (with rlhub)

```bash
{install}
rlhub enjoy --repo-id {repo}
# or download it as a run folder, then play it
rlhub load-from-hub --repo-id {repo} -f rl_trained/
rlhub enjoy --algo {manifest.algo_id} --env {manifest.env_id} -f rl_trained/
```

```python
from rlhub.hub import load

model = load("{repo}")  # a Stable-Baselines3 BaseAlgorithm, with its environment
```

Loading never unpickles code from the repo unless you pass `--trust-remote-code`
(`trust_remote_code=True`).
{sb3_usage}
## Training (with rlhub)

```bash
{train}
rlhub push-to-hub --algo {manifest.algo_id} --env {manifest.env_id} --repo-id {repo}
```

## Hyperparameters

```python
{pformat(section, sort_dicts=False)}
```
"""
    if manifest.env_kwargs:
        body += f"\n## Environment arguments\n\n```python\n{pformat(dict(manifest.env_kwargs))}\n```\n"
    return f"---\n{metadata.to_yaml()}\n---\n{body}"


def _agent_table(agent_returns: dict[str, tuple[float, float]] | None) -> str:
    if not agent_returns:
        return ""
    rows = "".join(f"| {agent} | {mean:.2f} +/- {std:.2f} |\n" for agent, (mean, std) in agent_returns.items())
    return f"\n| agent | mean return |\n|---|---|\n{rows}"


#: The card is read only for its front matter, a hint when a repo has no manifest.
CARD_MAX_BYTES = 1 << 20


def card_metadata(path: Path) -> dict[str, Any]:
    """The YAML front matter of a (downloaded) model card; empty if it has none or it is unreadable."""
    from rlhub.config import ConfigError
    from rlhub.safe_loading import UnsafeAgentError, load_yaml_text

    if not path.is_file():
        return {}
    with open(path, "rb") as handle:
        text = handle.read(CARD_MAX_BYTES).decode(errors="replace")
    match = re.match(r"^\s*---\s*\n(.*?)\n---\s*(\n|$)", text, re.DOTALL)
    try:
        data = load_yaml_text(match.group(1), f"the front matter of {path.name}") if match else None
    except (ConfigError, UnsafeAgentError):
        return {}
    return data if isinstance(data, dict) else {}


def card_model_index(card: dict[str, Any]) -> tuple[str | None, str | None]:
    """(model name, dataset id) of the card's first model-index entry."""
    try:
        entry = card["model-index"][0]
        dataset = entry["results"][0]["dataset"]
        return entry.get("name"), dataset.get("type") or dataset.get("name")
    except (KeyError, IndexError, TypeError):
        return None, None
