"""Pushing a packaged agent to the Hub, retrying transient errors and keeping the package on failure."""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rlhub.hub.client import Echo, HubError, check_repo_id, endpoint, with_retries
from rlhub.hub.packaging import PackageResult, package


@dataclass
class PushResult:
    repo_url: str
    commit_url: str
    packaged: PackageResult
    upload_seconds: float
    kept_folder: Path | None


def push(
    run_dir: str | Path,
    repo_id: str,
    *,
    commit_message: str | None = None,
    private: bool | None = None,
    token: str | None = None,
    n_eval_episodes: int = 10,
    video_length: int = 1000,
    deterministic: bool | None = None,
    seed: int = 0,
    load_best: bool = False,
    checkpoint: int | None = None,
    device: str = "auto",
    echo: Echo | None = None,
) -> PushResult:
    """Package the agent of ``run_dir`` and upload it to ``repo_id`` (created if missing).

    The token comes from ``token``, ``HF_TOKEN`` or the stored login; ``HF_ENDPOINT`` is honoured.
    Transient errors are retried with backoff; if the upload still fails, the packaged folder is
    kept and the :class:`HubError` names it.
    """
    from huggingface_hub import HfApi, get_token

    say = echo or (lambda message: None)
    check_repo_id(repo_id)
    token = token or get_token()
    if not token:
        raise HubError(
            "No Hugging Face token: pushing needs one with write access. Set HF_TOKEN, or run `hf auth login` "
            "(create a token at https://huggingface.co/settings/tokens)."
        )
    folder = Path(tempfile.mkdtemp(prefix="rlhub-push-"))
    packaged = package(run_dir, folder, repo_id=repo_id, n_eval_episodes=n_eval_episodes, video_length=video_length,
                       deterministic=deterministic, seed=seed, load_best=load_best, checkpoint=checkpoint,
                       device=device, echo=say)
    say(f"Packaged {len(packaged.files)} files ({packaged.size_bytes / 1e6:.2f} MB) in {packaged.seconds:.1f} s; "
        f"pushing to {repo_id} on {endpoint()}")
    api = HfApi(endpoint=endpoint(), token=token)
    message = commit_message or f"Upload {packaged.manifest.algo_id} agent on {packaged.manifest.env_id} with rlhub"
    started = time.perf_counter()
    try:
        repo_url = with_retries(lambda: api.create_repo(repo_id, private=private, exist_ok=True), "create", say)
        commit = with_retries(lambda: api.upload_folder(repo_id=repo_id, folder_path=folder, commit_message=message),
                               "upload", say)
    except HubError as error:
        raise HubError(f"{error} The packaged agent is kept in {folder}; upload it later with "
                       f"`hf upload {repo_id} {folder} .`") from None
    upload_seconds = time.perf_counter() - started
    shutil.rmtree(folder, ignore_errors=True)
    return PushResult(str(repo_url), commit.commit_url, packaged, upload_seconds, kept_folder=None)
