"""Which tool made a downloaded repo (rlhub, the RL Zoo, huggingface_sb3), and what agent it holds."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlhub.hub.client import HubError
from rlhub.hub.files import (
    ENV_KWARGS_NAME,
    METRICS_NAME,
    MODEL_CARD_NAME,
    ZOO_ARGS_NAME,
)
from rlhub.hub.model_card import card_metadata, card_model_index
from rlhub.run_folder import (
    CONFIG_NAME,
    MANIFEST_NAME,
    VEC_NORMALIZE_NAME,
    Manifest,
    RunFolderError,
    is_file_name,
)


@dataclass
class RepoAgent:
    """A downloaded (or packaged) agent, whatever tool pushed it."""

    source: str
    folder: Path
    layout: str  # "rlhub", "rl-zoo" or "huggingface_sb3"
    manifest: Manifest
    config_section: dict[str, Any]
    env_package: str | None = None

    @property
    def model_path(self) -> Path:
        return self.folder / self.manifest.model_file

    @property
    def vec_normalize_path(self) -> Path | None:
        path = self.folder / (self.manifest.vec_normalize_file or VEC_NORMALIZE_NAME)
        return path if path.is_file() else None


def describe(folder: str | Path, source: str | None = None, *, trust_remote_code: bool = False) -> RepoAgent:
    """Work out which algorithm, environment, model file and config a repo folder holds."""
    from rlhub import registry
    from rlhub.safe_loading import config_section, read_yaml

    folder = Path(folder)
    source = source or str(folder)
    names = sorted(path.name for path in folder.iterdir() if path.is_file())
    card = card_metadata(folder / MODEL_CARD_NAME)
    env_package = None
    if MANIFEST_NAME in names:
        layout = "rlhub"
        try:
            manifest = Manifest.read(folder)  # validated: its names cannot choose paths
        except RunFolderError as error:
            raise HubError(f"{source}: {error}") from None
        env_package = json.loads((folder / MANIFEST_NAME).read_text()).get("env_package")
        if not (env_package is None or isinstance(env_package, str) and is_file_name(env_package)):
            raise HubError(f"{source}: {MANIFEST_NAME} names the env package {env_package!r}, not a package name")
        if not (folder / manifest.model_file).is_file():
            raise HubError(f"{source}: {MANIFEST_NAME} names the model file {manifest.model_file}, which the repo "
                           f"lacks (files: {', '.join(names)})")
    else:
        layout = "rl-zoo" if CONFIG_NAME in names else "huggingface_sb3"
        zips = [name for name in names if name.endswith(".zip") and name != METRICS_NAME]
        if not zips:
            raise HubError(
                f"No model file in {source} (files: {', '.join(names) or 'none'}). rlhub loads repos with an "
                f"{MANIFEST_NAME} (rlhub) or an '{{algo}}-{{env}}.zip' model (RL Zoo, huggingface_sb3)."
            )
        algo_id, model = _algo_and_model(zips, card, source)
        env_id = _env_id(folder, card, model, source, trust_remote_code)
        spec = registry.get_algorithm(algo_id)
        env_kwargs: dict[str, Any] = {}
        if (folder / ENV_KWARGS_NAME).is_file():
            env_kwargs = dict(read_yaml(folder / ENV_KWARGS_NAME, trust_remote_code=trust_remote_code) or {})
        manifest = dataclasses.replace(Manifest.for_run(spec, env_id, env_kwargs=env_kwargs), model_file=model)
        manifest.vec_normalize_file = VEC_NORMALIZE_NAME if VEC_NORMALIZE_NAME in names else None
        try:  # the env id comes from the repo's files and becomes a folder name
            manifest.validate(source)
        except RunFolderError as error:
            raise HubError(str(error)) from None
    section: dict[str, Any] = {}
    if (folder / CONFIG_NAME).is_file():
        document = read_yaml(folder / CONFIG_NAME, trust_remote_code=trust_remote_code)
        try:
            _, section = config_section(document, manifest.env_id)
        except ValueError as error:
            raise HubError(f"{source}: {CONFIG_NAME}: {error}") from None
    return RepoAgent(source, folder, layout, manifest, section, env_package)



def _algo_and_model(zips: list[str], card: dict[str, Any], source: str) -> tuple[str, str]:
    from rlhub import registry

    known = {spec.algo_id for spec in registry.list_algorithms()}
    candidates = [(name.split("-", 1)[0].lower(), name) for name in zips if "-" in name]
    matching = [(algo, name) for algo, name in candidates if algo in known]
    repo_name = source.rstrip("/").split("/")[-1]
    if matching:
        preferred = [item for item in matching if item[1] == f"{repo_name}.zip"]
        return (preferred or matching)[0]
    class_name, _ = card_model_index(card)
    if class_name and len(zips) == 1:
        for spec in registry.list_algorithms():
            if spec.class_path.rsplit(":", 1)[-1].lower() == class_name.lower() or spec.algo_id == class_name.lower():
                return spec.algo_id, zips[0]
    guesses = sorted({algo for algo, _ in candidates} | ({class_name.lower()} if class_name else set()))
    hint = f" It names {', '.join(map(repr, guesses))}, which no installed plugin provides." if guesses else ""
    raise registry.UnknownAlgorithmError(
        f"Cannot tell which algorithm made {', '.join(zips)} in {source}: rlhub expects '{{algo}}-{{env}}.zip' with "
        f"an installed algorithm id ({', '.join(sorted(known))}).{hint} Plugins add algorithms (`rlhub plugins`)."
    )


def _env_id(folder: Path, card: dict[str, Any], model: str, source: str, trust_remote_code: bool) -> str:
    from rlhub.safe_loading import read_yaml

    if (folder / ZOO_ARGS_NAME).is_file():
        args = read_yaml(folder / ZOO_ARGS_NAME, trust_remote_code=trust_remote_code)
        if isinstance(args, dict) and isinstance(args.get("env"), str):
            return args["env"]
    _, dataset = card_model_index(card)
    if isinstance(dataset, str) and dataset:
        return dataset
    stem = model[: -len(".zip")]
    if "-" in stem:
        return stem.split("-", 1)[1]
    raise HubError(f"Cannot tell which environment the agent in {source} plays: no {MANIFEST_NAME}, {ZOO_ARGS_NAME} "
                   f"or model-index in {MODEL_CARD_NAME}, and {model} is not named '{{algo}}-{{env}}.zip'")
