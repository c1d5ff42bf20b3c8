"""The loopback Hub answers the real huggingface_hub client as the Hub does."""

import os

import pytest


def test_upload_then_download_with_the_real_client(hub_server, tmp_path):
    from huggingface_hub import HfApi, hf_hub_download, snapshot_download

    api = HfApi()
    api.create_repo("alice/test-repo", exist_ok=True)
    api.create_repo("alice/test-repo", exist_ok=True)  # the second call finds it
    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    (folder / "README.md").write_text("---\ntags: [a]\n---\n# hi\n")
    (folder / "model.zip").write_bytes(os.urandom(5000))
    (folder / "sub" / "x.json").write_text("{}")
    api.upload_folder(repo_id="alice/test-repo", folder_path=folder, commit_message="first")

    assert hub_server.upload_modes("alice/test-repo") == {
        ".gitattributes": "regular", "README.md": "regular", "model.zip": "lfs", "sub/x.json": "regular"}
    downloaded = hf_hub_download("alice/test-repo", "model.zip")
    assert open(downloaded, "rb").read() == (folder / "model.zip").read_bytes()
    snapshot = snapshot_download("alice/test-repo")
    assert sorted(os.listdir(snapshot)) == [".gitattributes", "README.md", "model.zip", "sub"]
    assert api.model_info("alice/test-repo").card_data.tags == ["a"]
    assert {entry.path for entry in api.list_repo_tree("alice/test-repo", recursive=True)} == {
        ".gitattributes", "README.md", "model.zip", "sub", "sub/x.json"}
    assert all(not url.startswith("http") for _, url in hub_server.state.requests)  # only loopback paths


def test_errors_map_to_the_clients_exceptions(hub_server):
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, RemoteEntryNotFoundError, RepositoryNotFoundError

    HfApi().create_repo("alice/repo")
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("alice/nope", "model.zip")
    with pytest.raises(RemoteEntryNotFoundError):
        hf_hub_download("alice/repo", "nope.zip")
    hub_server.fail_next("POST", r"/api/repos/create", 503)
    with pytest.raises(HfHubHTTPError):
        HfApi().create_repo("alice/other")


def test_invalid_model_card_metadata_is_rejected(hub_server, tmp_path):
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo("alice/card")
    (tmp_path / "README.md").write_text("---\nmodel-index:\n- results: []\n---\n")
    with pytest.raises(ValueError, match="Invalid metadata"):
        api.upload_folder(repo_id="alice/card", folder_path=tmp_path, commit_message="bad card")
