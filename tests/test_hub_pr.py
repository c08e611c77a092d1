"""`headcheck migrate org/name` with --create-pr, --push-to and --dry-run, against a local Hub that takes commits
as huggingface_hub makes them (tests/hubserver.py). Runs under every huggingface_hub major (test_hub_versions)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from helpers import CHECKPOINTS, adapter_folder_with_bin_head, run_cli, scan, train_loras, without_heavy_stack
from hubserver import FakeHub

WRITE, READ = "hf_write_token", "hf_read_token"


@pytest.fixture
def hub(server, tmp_path):
    server.clear()
    return FakeHub(server, tokens={WRITE: "write", READ: "read"})


def cli(hub, tmp_path, *args, token: str | None = WRITE, offline: bool = False, env: dict[str, str] | None = None):
    env = {"HF_ENDPOINT": hub.endpoint, "HF_HUB_CACHE": str(tmp_path / "hf-cache"), "HF_HOME": str(tmp_path / "hf-home"),
           "HEADCHECK_HUB_BACKOFF": "0", "HEADCHECK_HUB_TIMEOUT": "5", "HF_HUB_OFFLINE": "1" if offline else "0",
           # the fake Hub speaks the LFS protocol; real uploads go through Xet when hf_xet is installed
           "HF_HUB_DISABLE_XET": "1", "HF_TOKEN": token or "", **(env or {})}
    return run_cli(*args, env=env)


def repo_with(hub, tmp_path, fixture: str, repo_id: str = "org/model", **behaviour):
    folder = tmp_path / "remote" / repo_id.replace("/", "--")
    shutil.copytree(CHECKPOINTS / fixture, folder)
    return hub.add(repo_id, folder, **behaviour)


def test_create_pr_opens_one_pull_request_with_the_migrated_files(hub, tmp_path):
    repo = repo_with(hub, tmp_path, "bert-seq-cls-bin")
    scanned = repo.sha
    done = cli(hub, tmp_path, "migrate", "org/model", "--create-pr")
    assert done.returncode == 0, done.stderr
    assert f"{hub.endpoint}/org/model/discussions/1" in done.stdout
    assert repo.commits == 1 and repo.sha == scanned  # the branch itself is untouched
    pr = repo.refs["refs/pr/1"]
    assert json.loads((pr / "config.json").read_text())["architectures"] == ["BertAdapterModel"]
    assert (pr / "model.safetensors").is_file() and not (pr / "pytorch_model.bin").exists()  # superseded
    discussion = repo.discussions[0]
    assert discussion["title"].startswith("headcheck:") and scanned[:12] in discussion["title"]
    description = discussion["description"]
    for expected in ("## What headcheck found", "BertForSequenceClassification", "`BertAdapterModel`",
                     "renamed", "delete `pytorch_model.bin`", "byte for byte", "already-flex",
                     "AutoAdapterModel.from_pretrained(\"org/model\")"):
        assert expected in description, expected
    # the pull request's revision reads back through the Hub API like any other
    again = cli(hub, tmp_path, "scan", "org/model", "--revision", "refs/pr/1", "--format", "json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["verdict"] == "already-flex"


def test_a_second_run_opens_no_second_pull_request(hub, tmp_path):
    repo = repo_with(hub, tmp_path, "bert-seq-cls")
    assert cli(hub, tmp_path, "migrate", "org/model", "--create-pr").returncode == 0
    done = cli(hub, tmp_path, "migrate", "org/model", "--create-pr")
    assert done.returncode == 0, done.stderr
    assert "exists already" in done.stdout and "/discussions/1" in done.stdout
    assert repo.commits == 1 and len(repo.discussions) == 1


def test_findings_of_the_scan_are_in_the_description(hub, tmp_path):
    repo = repo_with(hub, tmp_path, "adapter-static-head", "org/adapter")
    assert cli(hub, tmp_path, "migrate", "org/adapter", "--create-pr").returncode == 0
    description = repo.discussions[0]["description"]
    assert "| HC117 | info |" in description and "load_adapter(" in description


@pytest.mark.parametrize("fixture,code,said", [
    ("bert-seq-cls-label-mismatch", 1, "verdict is not-convertible"),
    ("adapter-flex-head", 1, "already flex, nothing to fix"),
])
def test_what_cannot_be_fixed_is_refused_and_nothing_committed(hub, tmp_path, fixture, code, said):
    repo = repo_with(hub, tmp_path, fixture)
    done = cli(hub, tmp_path, "migrate", "org/model", "--create-pr")
    assert done.returncode == code, done.stderr
    assert said in done.stderr
    assert repo.commits == 0 and not hub.lfs_objects


@pytest.mark.parametrize("case,said", [
    ("no token", "needs a token with write access"),
    ("read-only token", "read-only"),
    ("gated", "gated repository"),
    ("moved", "moved since the scan"),
    ("server error", "the Hub answered 500"),
])
def test_every_failure_is_one_line_exit_2_and_nothing_committed(hub, tmp_path, case, said):
    repo = repo_with(hub, tmp_path, "bert-seq-cls", gated=case == "gated")
    token = {"no token": None, "read-only token": READ, "gated": None}.get(case, WRITE)
    if case == "moved":  # someone pushes to main between the scan and the commit
        def push_first(repo_id):
            moved = tmp_path / "moved"
            shutil.copytree(repo.folder, moved)
            repo.folder = moved
        hub.before_commit = push_first
    if case == "server error":
        hub.fail_commits = 500
    done = cli(hub, tmp_path, "migrate", "org/model", "--create-pr", token=token)
    assert done.returncode == 2, done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("headcheck:")]
    assert len(errors) == 1 and said in errors[0], done.stderr
    assert "Traceback" not in done.stderr
    assert repo.commits == 0 and not repo.discussions


def test_a_pickle_twin_of_the_weights_is_deleted_in_the_pull_request(hub, tmp_path):
    repo = repo_with(hub, tmp_path, "bert-seq-cls")
    shutil.copy(CHECKPOINTS / "bert-seq-cls-bin" / "pytorch_model.bin", repo.folder)
    assert cli(hub, tmp_path, "migrate", "org/model", "--create-pr").returncode == 0
    assert sorted(p.name for p in repo.refs["refs/pr/1"].iterdir()) == ["config.json", "model.safetensors"]


def test_dry_run_prints_the_commit_and_commits_nothing(hub, tmp_path):
    repo = repo_with(hub, tmp_path, "bert-seq-cls-bin")
    done = cli(hub, tmp_path, "migrate", "org/model", "--create-pr", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "dry run: nothing committed" in done.stdout
    assert "add    model.safetensors" in done.stdout and "delete pytorch_model.bin" in done.stdout
    assert "## What the migration did" in done.stdout
    assert repo.commits == 0 and not hub.lfs_objects


def test_push_to_creates_the_new_repository(hub, tmp_path):
    repo_with(hub, tmp_path, "bert-seq-cls")
    done = cli(hub, tmp_path, "migrate", "org/model", "--push-to", "alice/model-flex", "--private")
    assert done.returncode == 0, done.stderr
    new = hub.repos["alice/model-flex"]
    assert new.private and new.commits == 1
    assert json.loads((new.folder / "config.json").read_text())["architectures"] == ["BertAdapterModel"]
    again = cli(hub, tmp_path, "migrate", "org/model", "--push-to", "alice/model-flex")
    assert again.returncode == 1 and "exists already" in again.stderr and new.commits == 1


def test_migrate_a_hub_repository_into_a_local_folder(hub, tmp_path):
    repo_with(hub, tmp_path, "sharded")
    done = cli(hub, tmp_path, "migrate", "org/model", "--out", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "out" / "config.json").read_text())["architectures"] == ["BertAdapterModel"]
    assert "org/model" in done.stdout.splitlines()[0]  # named as the user named it, not the download folder
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".headcheck-download-")]


def test_the_result_as_json_for_scripts(hub, tmp_path):
    repo_with(hub, tmp_path, "bert-seq-cls-bin")
    done = cli(hub, tmp_path, "migrate", "org/model", "--create-pr", "--format", "json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["source"] == "org/model" and result["rescan_verdict"] == "already-flex"
    assert result["commit"]["url"].endswith("/org/model/discussions/1") and not result["commit"]["existing"]
    assert {"action": "delete", "path": "pytorch_model.bin", "size": None} in result["commit"]["changes"]


def test_migrate_offline_from_what_an_online_run_cached(hub, tmp_path):
    repo_with(hub, tmp_path, "bert-seq-cls")
    assert cli(hub, tmp_path, "migrate", "org/model", "--out", tmp_path / "online").returncode == 0
    hub.server.clear()  # nothing answers any more
    done = cli(hub, tmp_path, "migrate", "org/model", "--out", tmp_path / "offline", offline=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "offline" / "model.safetensors").read_bytes() == (tmp_path / "online" / "model.safetensors").read_bytes()


def test_a_checkpoint_in_a_subfolder(hub, tmp_path):
    folder = tmp_path / "remote" / "nested"
    shutil.copytree(CHECKPOINTS / "bert-seq-cls", folder / "models" / "final")
    (folder / "README.md").write_text("a repository whose checkpoint is not at the root\n")
    repo = hub.add("org/nested", folder)
    root = cli(hub, tmp_path, "scan", "org/nested")
    assert root.returncode == 3 and "subfolders that hold one: models/final" in root.stderr
    for target in (["org/nested/models/final"], ["org/nested", "--subfolder", "models/final"]):
        done = cli(hub, tmp_path, "scan", *target, "--format", "json")
        assert done.returncode == 0 and json.loads(done.stdout)["verdict"] == "convertible", done.stderr
    done = cli(hub, tmp_path, "migrate", "org/nested/models/final", "--create-pr")
    assert done.returncode == 0, done.stderr
    pr = repo.refs["refs/pr/1"]
    assert json.loads((pr / "models" / "final" / "config.json").read_text())["architectures"] == ["BertAdapterModel"]
    assert not (pr / "config.json").exists()


def test_the_pull_request_loads_with_adapters_and_gives_the_originals_outputs(hub, tmp_path):
    pytest.importorskip("adapters")
    zoo = pytest.importorskip("zoo")
    from huggingface_hub import snapshot_download

    from headcheck.migration.verify import compare

    original = zoo.build_static("BertForSequenceClassification", tmp_path / "remote" / "zoo", num_labels=3)
    hub.add("org/zoo", original)
    assert cli(hub, tmp_path, "migrate", "org/zoo", "--create-pr").returncode == 0
    downloaded = Path(snapshot_download("org/zoo", revision="refs/pr/1", endpoint=hub.endpoint,
                                   cache_dir=tmp_path / "download-cache", token=WRITE))
    comparison = compare(original, downloaded, original_class="BertForSequenceClassification")
    assert comparison.ok and comparison.max_logits_diff == 0 and comparison.loss_diff == 0, comparison


def test_an_adapter_repository_is_fixed_where_torch_is_not_installed(hub, tmp_path):
    """Issue 20: --create-pr for an adapter repository with a pytorch_model_head.bin, from the core install."""
    pytest.importorskip("torch")
    repo = hub.add("org/adapter", adapter_folder_with_bin_head(tmp_path / "remote" / "adapter"))
    done = cli(hub, tmp_path, "migrate", "org/adapter", "--create-pr", env=without_heavy_stack(tmp_path / "no-torch"))
    assert done.returncode == 0, done.stderr
    pr = repo.refs["refs/pr/1"]
    assert (pr / "pytorch_model_head.bin").is_file() and scan(pr)["verdict"] == "already-flex"


# --- out of adapters: migrate org/name --to transformers (issue 18 #2, the Hub part)

def flex_repo(hub, tmp_path, repo_id: str = "org/flex"):
    """A flex repository headcheck can export: bert-seq-cls migrated into flex (no torch needed)."""
    folder = tmp_path / "remote" / repo_id.replace("/", "--")
    assert run_cli("migrate", CHECKPOINTS / "bert-seq-cls", "--out", folder).returncode == 0
    return hub.add(repo_id, folder)


def test_export_pull_request_loads_with_transformers_and_gives_the_adapters_logits(hub, tmp_path):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    adapters = pytest.importorskip("adapters")
    zoo = pytest.importorskip("zoo")
    from headcheck.migration.verify import fixed_inputs

    torch.manual_seed(zoo.SEED)  # a flex model with a LoRA adapter: the pull request merges it away
    model = adapters.AutoAdapterModel.from_config(zoo.tiny_config("bert", initializer_range=0.2)).eval()
    model.add_classification_head("sst", num_labels=3)
    model.add_adapter("task", config=adapters.LoRAConfig(r=4, alpha=8, init_weights="bert"))
    train_loras(model)
    model.save_pretrained(tmp_path / "remote" / "lora")
    repo = hub.add("org/lora", tmp_path / "remote" / "lora")
    scanned = repo.sha
    dry = cli(hub, tmp_path, "migrate", "org/lora", "--to", "transformers", "--create-pr", "--dry-run")
    assert dry.returncode == 0 and "dry run: nothing committed" in dry.stdout, dry.stderr
    assert repo.commits == 0 and not hub.lfs_objects
    done = cli(hub, tmp_path, "migrate", "org/lora", "--to", "transformers", "--create-pr")
    assert done.returncode == 0, done.stderr
    assert repo.commits == 1 and repo.sha == scanned and f"{hub.endpoint}/org/lora/discussions/1" in done.stdout
    pr = repo.refs["refs/pr/1"]
    config = json.loads((pr / "config.json").read_text())
    assert config["architectures"] == ["BertForSequenceClassification"]
    assert not {"adapters", "prediction_heads"} & set(config)
    exported, info = getattr(transformers, config["architectures"][0]).from_pretrained(pr, output_loading_info=True)
    assert info["missing_keys"] == [] and info["unexpected_keys"] == [], info
    inputs = fixed_inputs(exported.config, model.config.prediction_heads["sst"])
    model.set_active_adapters("task")
    with torch.no_grad():
        torch.testing.assert_close(exported.eval()(**inputs).logits, model(**inputs).logits, atol=1e-4, rtol=0)
    title, description = repo.discussions[0]["title"], repo.discussions[0]["description"]
    assert title.startswith("headcheck: export to transformers as BertForSequenceClassification")
    assert scanned[:12] in title
    for expected in ("`BertAdapterModel` → `BertForSequenceClassification`", "adapter `task` (LoRA) merged into",
                     "adapter tensors merged away", "`adapters`, `prediction_heads` removed", "byte for byte",
                     "native `BertForSequenceClassification`",
                     'transformers.AutoModelForSequenceClassification.from_pretrained("org/lora")',
                     "without adapters"):
        assert expected in description, expected
    again = cli(hub, tmp_path, "migrate", "org/lora", "--to", "transformers", "--create-pr")
    assert again.returncode == 0 and "exists already" in again.stdout, again.stderr
    assert repo.commits == 1 and len(repo.discussions) == 1


@pytest.mark.parametrize("fixture,said", [
    ("adapter-flex-head", "HC145"),  # a bottleneck adapter: no transformers class computes it
    ("bert-seq-cls", "nothing to export"),  # a static class: transformers loads it as it is
])
def test_what_cannot_be_exported_is_refused_and_nothing_committed(hub, tmp_path, fixture, said):
    repo = repo_with(hub, tmp_path, fixture)
    done = cli(hub, tmp_path, "migrate", "org/model", "--to", "transformers", "--create-pr")
    assert done.returncode == 1, done.stderr
    assert said in done.stderr and "Traceback" not in done.stderr
    assert repo.commits == 0 and not repo.discussions and not hub.lfs_objects


def test_export_dry_run_downloads_and_commits_nothing(hub, tmp_path):
    repo = flex_repo(hub, tmp_path)
    done = cli(hub, tmp_path, "migrate", "org/flex", "--to", "transformers", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "BertForSequenceClassification (plain transformers)" in done.stdout and "dry run: nothing written" in done.stdout
    assert repo.commits == 0
    assert not list((tmp_path / "hf-cache").rglob("model.safetensors"))  # its header was read, the file not downloaded


def test_export_push_to_creates_the_new_repository(hub, tmp_path):
    flex_repo(hub, tmp_path)
    done = cli(hub, tmp_path, "migrate", "org/flex", "--to", "transformers", "--push-to", "alice/plain", "--private")
    assert done.returncode == 0, done.stderr
    new = hub.repos["alice/plain"]
    assert new.private and new.commits == 1
    config = json.loads((new.folder / "config.json").read_text())
    assert config["architectures"] == ["BertForSequenceClassification"] and "prediction_heads" not in config
    assert scan(new.folder)["exports"]["transformers"]["verdict"] == "native"


def test_export_result_as_json(hub, tmp_path):
    repo = flex_repo(hub, tmp_path)
    done = cli(hub, tmp_path, "migrate", "org/flex", "--to", "transformers", "--create-pr", "--format", "json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["source"] == "org/flex" and result["to"] == "transformers"
    assert result["architecture"] == "BertForSequenceClassification" and result["rescan_export"]["verdict"] == "native"
    commit = result["commit"]
    assert commit["url"].endswith("/org/flex/discussions/1") and not commit["existing"]
    assert commit["title"] == repo.discussions[0]["title"] and "export to transformers" in commit["title"]
    assert {c["path"] for c in commit["changes"]} == {"model.safetensors", "config.json"}


def test_an_adapter_repository_exports_onto_a_local_base(hub, tmp_path):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    adapters = pytest.importorskip("adapters")
    zoo = pytest.importorskip("zoo")

    torch.manual_seed(zoo.SEED)
    transformers.BertModel(zoo.tiny_config("bert", initializer_range=0.2)).save_pretrained(tmp_path / "base")
    model = adapters.AutoAdapterModel.from_pretrained(tmp_path / "base").eval()
    model.add_classification_head("task", num_labels=3)
    model.add_adapter("task", config=adapters.LoRAConfig(r=4, alpha=8, init_weights="bert"))
    train_loras(model)
    folder = tmp_path / "remote" / "adapter"
    folder.parent.mkdir()
    model.save_adapter(str(folder), "task", use_safetensors=True)
    config = json.loads((folder / "adapter_config.json").read_text())
    (folder / "adapter_config.json").write_text(json.dumps({**config, "model_name": "org/base"}))
    (folder / "README.md").write_text("the adapter's own card\n")
    repo = hub.add("org/adapter", folder)
    no_base = cli(hub, tmp_path, "migrate", "org/adapter", "--to", "transformers", "--create-pr")
    # model_name is a Hub id the Hub does not hold (tests/test_hub_base.py: one it holds)
    assert no_base.returncode == 2 and "base model org/base: no such local path, and no such Hub repository" \
        in no_base.stderr
    assert not list((tmp_path / "hf-cache").rglob("adapter.safetensors"))  # refused before the download
    done = cli(hub, tmp_path, "migrate", "org/adapter", "--to", "transformers", "--base", tmp_path / "base",
               "--create-pr")
    assert done.returncode == 0, done.stderr
    description = repo.discussions[0]["description"]
    assert "the base model's weights" in description and "delete `adapter_config.json`" in description
    pr = repo.refs["refs/pr/1"]
    assert sorted(p.name for p in pr.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    assert (pr / "README.md").read_text() == "the adapter's own card\n"
    exported = transformers.BertForSequenceClassification.from_pretrained(pr).eval()
    inputs = {"input_ids": torch.tensor([[2, 5, 7, 3]]), "labels": torch.tensor([1])}
    model.set_active_adapters("task")
    with torch.no_grad():
        torch.testing.assert_close(exported(**inputs).logits, model(**inputs).logits, atol=1e-4, rtol=0)


def test_dry_run_of_an_already_flex_repository_is_a_checked_copy(hub, tmp_path):
    repo_with(hub, tmp_path, "adapter-flex-head")
    done = cli(hub, tmp_path, "migrate", "org/model", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "already flex: a checked copy" in done.stdout and "dry run: nothing written" in done.stdout
