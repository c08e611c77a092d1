"""`migrate ADAPTER_DIR --to transformers` onto a base model from the Hub (`--base org/name`, or adapter_config.json's
model_name when it is no local folder), and `--adapter` / `--head` naming what a checkpoint does not hold, through
the console script against the fake Hub (tests/hubserver.py). Runs under every huggingface_hub major
(test_hub_versions); only the --verify case needs the heavy stack."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from helpers import CHECKPOINTS, REPO, run_cli
from test_hub import free_port
from test_hub_pr import cli, flex_repo, hub  # noqa: F401 (hub: the fixture)

EXPORTS = REPO / "tests" / "fixtures" / "exports"
ADAPTER, BASE = EXPORTS / "bert-lora-adapter", EXPORTS / "bert-lora-adapter.base"


def served_base(hub, tmp_path, repo_id: str = "org/base"):
    """The fixture's base model on the Hub, beside files an export must not fetch (a tokenizer, remote code)."""
    folder = tmp_path / "remote" / repo_id.replace("/", "--")
    shutil.copytree(BASE, folder)
    (folder / "tokenizer.json").write_text("{}\n")
    (folder / "modeling_evil.py").write_text("raise SystemExit('never fetched, never run')\n")
    return hub.add(repo_id, folder)


def adapter_naming(tmp_path, model_name: str) -> Path:
    """The fixture's adapter folder with adapter_config.json's model_name set to `model_name`."""
    folder = tmp_path / "adapter"
    shutil.copytree(ADAPTER, folder)
    config = json.loads((folder / "adapter_config.json").read_text())
    (folder / "adapter_config.json").write_text(json.dumps({**config, "model_name": model_name}, indent=2))
    return folder


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def requested(hub, repo_id: str) -> set[str]:
    """The files of `repo_id` anyone asked the fake Hub for (HEAD or GET)."""
    prefix = f"/{repo_id}/resolve/"
    return {request.path[len(prefix):].partition("/")[2] for request, _ in hub.server.log
            if request.path.startswith(prefix)}


def local(*args):
    """run_cli without any Hub: offline, with an empty cache."""
    return run_cli(*args, env={"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": "/nonexistent/hf-cache"})


def local_export(tmp_path) -> dict[str, bytes]:
    done = local("migrate", ADAPTER, "--to", "transformers", "--base", BASE, "--out", tmp_path / "local")
    assert done.returncode == 0, done.stderr
    return files_of(tmp_path / "local")


def test_a_hub_base_gives_the_export_of_the_same_base_as_a_local_folder(hub, tmp_path):
    base = served_base(hub, tmp_path)
    default = cli(hub, tmp_path, "migrate", adapter_naming(tmp_path, "org/base"), "--to", "transformers",
                  "--out", tmp_path / "by-name", "--format", "json")  # model_name is a Hub id: no --base needed
    assert default.returncode == 0, default.stderr
    assert default.stderr == ""  # no download progress on a pipe
    result = json.loads(default.stdout)
    assert result["base"]["name"] == "org/base" and result["base"]["revision"] == base.sha
    assert result["architecture"] == "BertForSequenceClassification"
    assert requested(hub, "org/base") == {"config.json", "model.safetensors"}  # no tokenizer, never code
    given = cli(hub, tmp_path, "migrate", ADAPTER, "--to", "transformers", "--base", "org/base",
                "--out", tmp_path / "by-option")
    assert given.returncode == 0, given.stderr
    assert f"on base model org/base (Hub, commit {base.sha[:12]})" in given.stdout
    expected = local_export(tmp_path)
    assert sorted(expected) == ["config.json", "model.safetensors"]
    assert files_of(tmp_path / "by-name") == expected and files_of(tmp_path / "by-option") == expected


def test_dry_run_with_a_hub_base_writes_nothing(hub, tmp_path):
    served_base(hub, tmp_path)
    done = cli(hub, tmp_path, "migrate", ADAPTER, "--to", "transformers", "--base", "org/base", "--dry-run",
               "--format", "json", "--out", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    assert plan["out"] is None and plan["base"]["name"] == "org/base"
    assert any(d["tensor"].endswith("lora_A") for d in plan["dropped"])  # the adapter, merged away
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hf-cache", "remote"]


def test_a_hub_base_from_the_cache_alone_offline(hub, tmp_path):
    """HF_HUB_OFFLINE=1: the base model as huggingface_hub (or transformers) left it in the cache, never fetched by
    headcheck before."""
    from huggingface_hub import hf_hub_download

    served_base(hub, tmp_path)
    for name in ("config.json", "model.safetensors"):  # as transformers' from_pretrained("org/base") fills it
        hf_hub_download("org/base", name, cache_dir=tmp_path / "hf-cache", endpoint=hub.endpoint, token=False)
    hub.server.clear()  # nothing answers any more
    done = cli(hub, tmp_path, "migrate", adapter_naming(tmp_path, "org/base"), "--to", "transformers",
               "--out", tmp_path / "offline", offline=True)
    assert done.returncode == 0, done.stderr
    assert not hub.server.log
    assert files_of(tmp_path / "offline") == local_export(tmp_path)


@pytest.mark.parametrize("case,code,said", [
    ("no such repository", 2, "base model org/missing: no such local path, and no such Hub repository"),
    ("no weights", 2, "base model org/base: no weights (model.safetensors"),
    ("unreachable", 2, "base model org/base: cannot connect to http://127.0.0.1:"),
    ("not in the offline cache", 2, "base model org/base: no config.json in the local cache (HF_HUB_OFFLINE=1)"),
    ("no organisation", 4, "no Hub repository id (org/name, e.g. google-bert/bert-base-uncased)"),
])
def test_a_base_that_cannot_be_read_is_one_line_and_nothing_written(hub, tmp_path, case, code, said):
    base = served_base(hub, tmp_path)
    if case == "no weights":
        (base.folder / "model.safetensors").unlink()
    named = {"no such repository": "org/missing", "no organisation": "bert-base-uncased"}.get(case, "org/base")
    env = {"HF_ENDPOINT": f"http://127.0.0.1:{free_port()}"} if case == "unreachable" else None
    done = cli(hub, tmp_path, "migrate", adapter_naming(tmp_path, named), "--to", "transformers",
               "--out", tmp_path / "out", offline=case == "not in the offline cache", env=env)
    assert done.returncode == code, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert said in lines[-1] and "Traceback" not in done.stderr, done.stderr
    if code == 2:
        assert len(lines) == 1, done.stderr
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_an_adapter_repository_exports_onto_its_hub_base_as_a_pull_request(hub, tmp_path):
    served_base(hub, tmp_path)
    repo = hub.add("org/adapter", adapter_naming(tmp_path, "org/base"))
    dry = cli(hub, tmp_path, "migrate", "org/adapter", "--to", "transformers", "--create-pr", "--dry-run")
    assert dry.returncode == 0 and "dry run: nothing committed" in dry.stdout, dry.stderr
    assert repo.commits == 0
    done = cli(hub, tmp_path, "migrate", "org/adapter", "--to", "transformers", "--create-pr", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["base"]["name"] == "org/base"
    pr = repo.refs["refs/pr/1"]
    assert sorted(p.name for p in pr.iterdir()) == ["config.json", "model.safetensors"]
    assert files_of(pr) == local_export(tmp_path)
    pushed = cli(hub, tmp_path, "migrate", "org/adapter", "--to", "transformers", "--base", "org/base",
                 "--push-to", "alice/plain")
    assert pushed.returncode == 0, pushed.stderr
    assert files_of(hub.repos["alice/plain"].folder) == files_of(pr)


def test_verify_loads_the_base_the_export_was_built_on(hub, tmp_path):
    pytest.importorskip("adapters")
    served_base(hub, tmp_path)
    done = cli(hub, tmp_path, "migrate", adapter_naming(tmp_path, "org/base"), "--to", "transformers",
               "--out", tmp_path / "out", "--verify", "--format", "json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["comparison"]["ok"] and result["comparison"]["max_logits_diff"] < 1e-4, result["comparison"]
    # the original was loaded from the fetched files, not fetched again by transformers (which asks for more)
    assert requested(hub, "org/base") == {"config.json", "model.safetensors"}


# --- --adapter / --head naming what the checkpoint does not hold: a usage error, before anything is downloaded

def test_adapter_naming_nothing_in_a_hub_repository_is_a_usage_error(hub, tmp_path):
    flex_repo(hub, tmp_path)  # a flex model without adapters
    lora = tmp_path / "remote" / "lora"
    shutil.copytree(EXPORTS / "bert-lora-seqcls", lora)  # a flex model with the adapter `sentiment`
    hub.add("org/lora", lora)
    served_base(hub, tmp_path)
    hub.add("org/adapter", adapter_naming(tmp_path, "org/base"))
    for repo_id, choice, holds in (("org/flex", ["--adapter", "nope"], "adapters are none"),
                                   ("org/lora", ["--adapter", "nope"], "adapters are sentiment"),
                                   ("org/adapter", ["--adapter", "nope"], "adapters are sentiment"),
                                   ("org/adapter", ["--head", "nope"], "heads are sentiment")):
        for extra in (["--dry-run"], ["--create-pr"], ["--out", tmp_path / "out"]):
            done = cli(hub, tmp_path, "migrate", repo_id, "--to", "transformers", *choice, *extra)
            assert done.returncode == 4, (repo_id, extra, done.stdout + done.stderr)
            assert f"{' '.join(choice)}: the checkpoint's {holds}" in done.stderr, done.stderr
    assert not (tmp_path / "out").exists() and not hub.lfs_objects
    assert not list((tmp_path / "hf-cache").rglob("*.safetensors"))  # refused from the headers


def test_adapter_naming_nothing_in_a_local_folder_is_a_usage_error(tmp_path):
    for source, choice, holds in ((CHECKPOINTS / "adapter-flex-head", ["--head", "nope"], "heads are"),
                                  (ADAPTER, ["--adapter", "nope"], "adapters are sentiment")):
        done = local("migrate", source, "--to", "transformers", "--base", BASE, *choice, "--out", tmp_path / "out")
        assert done.returncode == 4 and f"{' '.join(choice)}: the checkpoint's {holds}" in done.stderr, done.stderr
    assert not (tmp_path / "out").exists()


def test_a_scan_reads_only_the_base_models_config(hub, tmp_path):
    """base_model(weights=False), as a scan of an adapter repository (and a judge of the base's config) asks it."""
    served_base(hub, tmp_path)
    hub.add("org/adapter", adapter_naming(tmp_path, "org/base"))
    done = cli(hub, tmp_path, "scan", "org/adapter", "--format", "json")
    assert done.returncode == 0, done.stderr
    evidence = json.loads(done.stdout)["head"]["evidence"]
    assert "base model org/base: model_type 'bert', from_pretrained builds BertAdapterModel" in evidence, evidence
    assert requested(hub, "org/base") == {"config.json"}


def sharded(source: Path, folder: Path) -> Path:
    """The base model with its model.safetensors split in two shards and an index, as save_pretrained shards."""
    import struct

    shutil.copytree(source, folder, ignore=shutil.ignore_patterns("model.safetensors"))
    data = (source / "model.safetensors").read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + length])
    header.pop("__metadata__", None)
    names = sorted(header)
    weight_map = {}
    for part, chunk in enumerate((names[:len(names) // 2], names[len(names) // 2:]), 1):
        shard, offset, new, body = f"model-{part:05d}-of-00002.safetensors", 0, {"__metadata__": {"format": "pt"}}, b""
        for name in chunk:
            start, end = header[name]["data_offsets"]
            new[name] = {**header[name], "data_offsets": [offset, offset + end - start]}
            body += data[8 + length + start:8 + length + end]
            offset += end - start
            weight_map[name] = shard
        text = json.dumps(new).encode()
        (folder / shard).write_bytes(struct.pack("<Q", len(text)) + text + body)
    (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return folder


def test_a_sharded_hub_base_gives_the_export_of_the_same_local_folder(hub, tmp_path):
    local_base = sharded(BASE, tmp_path / "sharded-base")
    hub.add("org/sharded", sharded(BASE, tmp_path / "remote" / "sharded"))
    done = cli(hub, tmp_path, "migrate", ADAPTER, "--to", "transformers", "--base", "org/sharded",
               "--out", tmp_path / "from-hub")
    assert done.returncode == 0, done.stderr
    assert requested(hub, "org/sharded") == {"config.json", "model.safetensors.index.json",
                                             "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}
    again = local("migrate", ADAPTER, "--to", "transformers", "--base", local_base, "--out", tmp_path / "from-folder")
    assert again.returncode == 0, again.stderr
    assert files_of(tmp_path / "from-hub") == files_of(tmp_path / "from-folder")
    assert "model.safetensors.index.json" in files_of(tmp_path / "from-hub")


def test_a_peft_export_onto_a_hub_base(hub, tmp_path):
    """--to peft reads the same base (its tensor headers, to check the adapter fits): from the Hub, the adapter is
    the one written against the local folder, and base_model_name_or_path names the Hub id."""
    served_base(hub, tmp_path)
    done = cli(hub, tmp_path, "migrate", adapter_naming(tmp_path, "org/base"), "--to", "peft",
               "--out", tmp_path / "from-hub")
    assert done.returncode == 0, done.stderr
    again = local("migrate", ADAPTER, "--to", "peft", "--base", BASE, "--out", tmp_path / "from-folder")
    assert again.returncode == 0, again.stderr
    hub_files, local_files = files_of(tmp_path / "from-hub"), files_of(tmp_path / "from-folder")
    assert hub_files["adapter_model.safetensors"] == local_files["adapter_model.safetensors"]
    config = json.loads(hub_files["adapter_config.json"])
    assert config["base_model_name_or_path"] == "org/base"
    assert {**config, "base_model_name_or_path": None} == {**json.loads(local_files["adapter_config.json"]),
                                                          "base_model_name_or_path": None}


def test_an_adapter_repository_becomes_a_peft_adapter_by_pull_request(hub, tmp_path):
    """--to peft --create-pr (issue 19): one pull request with PEFT's two files, the adapters files deleted, a
    description that says how to load it with PEFT; a second run finds it and commits nothing; --push-to gives the
    same files; a PEFT repository has nothing to export."""
    served_base(hub, tmp_path)
    repo = hub.add("org/adapter", adapter_naming(tmp_path, "org/base"))
    done = cli(hub, tmp_path, "migrate", "org/adapter", "--to", "peft", "--create-pr")
    assert done.returncode == 0, done.stderr
    pr = repo.refs["refs/pr/1"]
    assert sorted(p.name for p in pr.iterdir()) == ["adapter_config.json", "adapter_model.safetensors"]
    exported = local("migrate", ADAPTER, "--to", "peft", "--base", BASE, "--out", tmp_path / "local")
    assert exported.returncode == 0, exported.stderr
    assert files_of(pr)["adapter_model.safetensors"] == files_of(tmp_path / "local")["adapter_model.safetensors"]
    (discussion,) = repo.discussions
    assert discussion["title"].startswith("headcheck: export as a PEFT adapter of BertForSequenceClassification")
    for expected in ("`exports.peft` is **exportable**", "from peft import PeftModel",
                     'model = PeftModel.from_pretrained(BertForSequenceClassification.from_pretrained("org/base", '
                     'num_labels=2), "org/adapter")', "delete `head_config.json`", "delete `adapter.safetensors`"):
        assert expected in discussion["description"], expected
    again = cli(hub, tmp_path, "migrate", "org/adapter", "--to", "peft", "--create-pr")
    assert again.returncode == 0 and len(repo.discussions) == 1, again.stderr
    pushed = cli(hub, tmp_path, "migrate", "org/adapter", "--to", "peft", "--push-to", "alice/peft")
    assert pushed.returncode == 0, pushed.stderr
    assert files_of(hub.repos["alice/peft"].folder) == files_of(pr)
    hub.add("org/peft", pr)
    native = cli(hub, tmp_path, "migrate", "org/peft", "--to", "peft", "--create-pr")
    assert native.returncode == 1 and "already a PEFT adapter" in native.stderr, native.stderr
