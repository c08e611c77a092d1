"""Hub repositories scanned through a real HTTP server on 127.0.0.1 that speaks the Hub's API."""

from __future__ import annotations

import json
import os
import socket
import struct
import sys
from pathlib import Path

import pytest

from headcheck.judge.engine import scan_path, scan_target
from headcheck.errors import InputError
from helpers import CHECKPOINTS, run_cli, validated
from hubserver import FakeHub

SAME_AS_LOCAL = ("kind", "layout", "model_type", "head", "verdict", "findings", "plan")
FIXTURE_REPOS = ["bert-seq-cls", "bert-seq-cls-bin", "sharded", "roberta-multilabel", "bert-custom-head",
                 "bert-seq-cls-label-mismatch", "xlnet-seq-cls", "adapter-flex-head", "adapter-static-head",
                 "adapter-pretraining-head", "adapter-no-head", "peft-seq-cls", "unsafe-pickle", "no-architectures"]


@pytest.fixture
def hub(server, tmp_path, monkeypatch):
    server.clear()
    fake = FakeHub(server)
    monkeypatch.setenv("HF_ENDPOINT", fake.endpoint)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("HEADCHECK_HUB_BACKOFF", "0")
    monkeypatch.setenv("HEADCHECK_HUB_TIMEOUT", "2")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    return fake


def hub_env(hub: FakeHub, **extra) -> dict[str, str]:
    return {"HF_ENDPOINT": hub.endpoint, "HF_HUB_CACHE": os.environ["HF_HUB_CACHE"], "HEADCHECK_HUB_BACKOFF": "0",
            "HEADCHECK_HUB_TIMEOUT": "2", **extra}


def comparable(report) -> dict:
    data = validated(json.loads(json.dumps(report.to_dict())))
    # Only a Hub scan can look up an adapter's base model; that evidence line has no local counterpart.
    data["head"]["evidence"] = [e for e in data["head"]["evidence"] if not e.startswith("base model ")]
    return {key: data[key] for key in SAME_AS_LOCAL}


@pytest.mark.parametrize("fixture", FIXTURE_REPOS)
def test_remote_report_equals_local_report(hub, fixture):
    hub.add(f"acme/{fixture}", CHECKPOINTS / fixture)
    remote = scan_target(f"acme/{fixture}")
    assert remote.source == f"acme/{fixture}"
    assert comparable(remote) == comparable(scan_path(CHECKPOINTS / fixture))


@pytest.mark.parametrize("fixture", ["bert-seq-cls", "bert-seq-cls-bin", "sharded"])
def test_xet_redirected_weights_give_the_local_report(hub, fixture):
    """Xet-backed weight files answer /resolve with a redirect; the Range read follows it."""
    repo = hub.add(f"acme/{fixture}", CHECKPOINTS / fixture, xet=True)
    assert comparable(scan_target(f"acme/{fixture}")) == comparable(scan_path(CHECKPOINTS / fixture))
    assert repo.bridged > 0


def test_real_tiny_checkpoints_from_the_zoo(hub, tmp_path):
    zoo = pytest.importorskip("zoo")
    for class_name in ("BertForMaskedLM", "T5ForQuestionAnswering", "XmodForSequenceClassification"):
        folder = zoo.build_static(class_name, tmp_path / class_name)
        hub.add(f"acme/{class_name}", folder)
        assert comparable(scan_target(f"acme/{class_name}")) == comparable(scan_path(folder))


def test_revision_in_target_and_option(hub):
    hub.add("acme/bert", CHECKPOINTS / "bert-seq-cls", revisions=("main", "v1"))
    assert scan_target("acme/bert@v1").source == "acme/bert@v1"
    assert scan_target("acme/bert", revision="v1").verdict.value == "convertible"
    with pytest.raises(InputError, match="revision 'v2' not found"):
        scan_target("acme/bert@v2")


def write_big_safetensors(folder: Path, data_bytes: int) -> int:
    """config + a safetensors whose data area is `data_bytes` (sparse); returns the header size."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text((CHECKPOINTS / "bert-seq-cls" / "config.json").read_text())
    src = (CHECKPOINTS / "bert-seq-cls" / "model.safetensors").read_bytes()
    n = struct.unpack("<Q", src[:8])[0]
    header = json.loads(src[8:8 + n])
    filler = data_bytes // 4
    header["bert.embeddings.padding_for_size"] = {"dtype": "F32", "shape": [filler],
                                                  "data_offsets": [len(src) - 8 - n, len(src) - 8 - n + filler * 4]}
    raw = json.dumps(header).encode()
    path = folder / "model.safetensors"
    with path.open("wb") as fh:
        fh.write(struct.pack("<Q", len(raw)) + raw + src[8 + n:])
        fh.truncate(8 + len(raw) + len(src) - 8 - n + filler * 4)
    return 8 + len(raw)


def test_safetensors_bytes_fetched_are_headers_plus_64kb(hub, tmp_path):
    header = write_big_safetensors(tmp_path / "big", 60_000_000)
    hub.add("acme/big", tmp_path / "big")
    report = scan_target("acme/big")
    assert report.verdict.value == "convertible"
    json_bytes = (tmp_path / "big" / "config.json").stat().st_size
    sent = hub.bytes_sent("acme/big")
    assert (tmp_path / "big" / "model.safetensors").stat().st_size > 60_000_000
    assert sent <= json_bytes + header + 64 * 1024, sent


def write_big_bin(folder: Path, writer: str) -> None:
    """A 65 MB pytorch_model.bin, written by torch itself or by the torch-free fixture writer (same zip layout),
    so that the byte budget is tested under every huggingface_hub, with or without torch."""
    shapes = {"bert.embeddings.word_embeddings.weight": (16_000, 1024), "classifier.weight": (3, 1024),
              "classifier.bias": (3,)}
    if writer == "torch":
        torch = pytest.importorskip("torch")
        torch.save({name: torch.zeros(shape) for name, shape in shapes.items()}, folder / "pytorch_model.bin")
    else:
        from fixtures import make_fixtures

        tensors = {name: ("F32", shape) for name, shape in shapes.items()}
        (folder / "pytorch_model.bin").write_bytes(make_fixtures.torch_zip_bytes(tensors))


def test_xet_redirected_safetensors_bytes_stay_within_the_budget(hub, tmp_path):
    header = write_big_safetensors(tmp_path / "big", 60_000_000)
    repo = hub.add("acme/big", tmp_path / "big", xet=True)
    assert scan_target("acme/big").verdict.value == "convertible"
    json_bytes = (tmp_path / "big" / "config.json").stat().st_size
    assert repo.bridged > 0
    assert repo.bytes_sent <= json_bytes + header + 64 * 1024, repo.bytes_sent


@pytest.mark.parametrize("writer", ["torch", "fixture-writer"])
def test_bin_bytes_fetched_stay_under_1mb(hub, tmp_path, writer):
    folder = tmp_path / "bigbin"
    folder.mkdir()
    (folder / "config.json").write_text((CHECKPOINTS / "bert-seq-cls" / "config.json").read_text())
    write_big_bin(folder, writer)
    assert (folder / "pytorch_model.bin").stat().st_size >= 50_000_000
    hub.add("acme/bigbin", folder)
    report = scan_target("acme/bigbin")
    assert report.head.num_labels == 3
    assert hub.bytes_sent("acme/bigbin") <= 1_000_000, hub.bytes_sent("acme/bigbin")


def test_offline_with_prefilled_cache_needs_no_server(hub, tmp_path):
    hub.add("acme/bert", CHECKPOINTS / "bert-seq-cls")
    online = comparable(scan_target("acme/bert"))
    dead = f"http://127.0.0.1:{free_port()}"
    result = run_cli("scan", "acme/bert", "--format", "json",
                     env=hub_env(hub, HF_HUB_OFFLINE="1", HF_ENDPOINT=dead))
    assert result.returncode == 0, result.stderr
    assert {k: v for k, v in json.loads(result.stdout).items() if k in SAME_AS_LOCAL} == online


def test_offline_with_empty_cache_says_what_is_missing(hub, tmp_path):
    result = run_cli("scan", "acme/bert", env=hub_env(hub, HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(tmp_path / "empty")))
    assert result.returncode == 2
    assert "not in the local cache" in result.stderr and "HF_HUB_OFFLINE" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("behaviour,expected", [
    ({"private": True}, "no such Hub repository, or it is private"),
    ({"gated": True}, "HF_TOKEN"),
    ({"fail_status": 429}, "rate limited"),
    ({"fail_status": 503}, "HTTP 503"),
    ({"delay": 3.0}, "timed out"),
    ({"vanished": ("model.safetensors",)}, "no longer on the Hub"),
])
def test_hub_errors_give_one_line_and_exit_2(hub, behaviour, expected):
    hub.add("acme/broken", CHECKPOINTS / "bert-seq-cls", **behaviour)
    result = run_cli("scan", "acme/broken", env=hub_env(hub, HEADCHECK_HUB_RETRIES="1"))
    assert result.returncode == 2, result.stdout + result.stderr
    assert expected in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_revision_not_found_via_cli(hub):
    hub.add("acme/bert", CHECKPOINTS / "bert-seq-cls")
    result = run_cli("scan", "acme/bert@nope", env=hub_env(hub))
    assert result.returncode == 2 and "revision 'nope' not found" in result.stderr


def test_connection_refused(hub):
    result = run_cli("scan", "acme/bert", env=hub_env(hub, HF_ENDPOINT=f"http://127.0.0.1:{free_port()}",
                                                      HEADCHECK_HUB_RETRIES="0"))
    assert result.returncode == 2
    assert "cannot connect" in result.stderr or "cannot reach" in result.stderr, result.stderr


@pytest.mark.parametrize("status", [429, 503])
def test_transient_failures_are_retried(hub, status):
    repo = hub.add("acme/flaky", CHECKPOINTS / "bert-seq-cls", fail_status=status, fail_times=2)
    assert scan_target("acme/flaky").verdict.value == "convertible"
    assert repo.failures_left < 0  # the failures were really served, then retried past


def test_token_is_sent(hub, monkeypatch):
    seen = []
    original = hub.handle

    def spy(request):
        seen.append(request.headers.get("Authorization"))
        return original(request)

    hub.handle = spy
    hub.server.clear()
    hub.server.expect_request(__import__("re").compile(".*")).respond_with_handler(spy)
    hub.add("acme/bert", CHECKPOINTS / "bert-seq-cls")
    scan_target("acme/bert", token="hf_secret")
    assert "Bearer hf_secret" in seen
    monkeypatch.setenv("HF_TOKEN", "hf_from_env")
    seen.clear()
    scan_target("acme/bert")
    assert "Bearer hf_from_env" in seen


def test_adapter_repo_checks_its_base_model(hub, tmp_path):
    import shutil

    folder = tmp_path / "adapter"
    shutil.copytree(CHECKPOINTS / "adapter-flex-head", folder)
    config = json.loads((folder / "adapter_config.json").read_text())
    config["model_name"] = "acme/base"
    (folder / "adapter_config.json").write_text(json.dumps(config))
    base = tmp_path / "base"
    base.mkdir()
    base_config = json.loads((CHECKPOINTS / "bert-seq-cls" / "config.json").read_text())
    (base / "config.json").write_text(json.dumps({**base_config, "model_type": "roberta"}))
    hub.add("acme/adapter", folder)
    hub.add("acme/base", base)
    report = scan_target("acme/adapter")
    assert "HC126" in {f.rule for f in report.findings}
    assert "base model acme/base: model_type 'roberta', from_pretrained builds RobertaAdapterModel" in report.head.evidence
    same_family = tmp_path / "base2"  # a new repository: the fake hub's commit id follows the folder
    same_family.mkdir()
    (same_family / "config.json").write_text(json.dumps(base_config))
    config["model_name"] = "acme/base2"
    folder2 = tmp_path / "adapter2"
    shutil.copytree(folder, folder2)
    (folder2 / "adapter_config.json").write_text(json.dumps(config))
    hub.add("acme/base2", same_family)
    hub.add("acme/adapter2", folder2)
    assert "HC126" not in {f.rule for f in scan_target("acme/adapter2").findings}
    folder3 = tmp_path / "adapter3"  # a base that cannot be reached is said, not guessed
    shutil.copytree(folder, folder3)
    (folder3 / "adapter_config.json").write_text(json.dumps({**config, "model_name": "acme/gone"}))
    hub.add("acme/adapter3", folder3)
    evidence = scan_target("acme/adapter3").head.evidence
    assert any(line.startswith("base model acme/gone: config not reachable") for line in evidence)


def test_scan_of_hub_repo_imports_no_torch(hub):
    hub.add("acme/bertbin", CHECKPOINTS / "bert-seq-cls-bin")
    code = ("import sys, headcheck.judge.engine as e; e.scan_target('acme/bertbin'); "
            "print(sorted(m for m in ('torch', 'transformers', 'adapters') if m in sys.modules))")
    import subprocess

    result = subprocess.run([sys.executable, "-c", code], env={**os.environ, **hub_env(hub)},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_bulk_200_repos_with_8_jobs(hub, tmp_path):
    for i in range(200):
        fixture = ("bert-seq-cls", "adapter-flex-head", "xlnet-seq-cls", "peft-seq-cls")[i % 4]
        hub.add(f"bulk/repo{i}", CHECKPOINTS / fixture)
    hub.add("bulk/broken", CHECKPOINTS / "bert-seq-cls", private=True)
    listing = tmp_path / "repos.txt"
    listing.write_text("# repos to check\n" + "\n".join(f"bulk/repo{i}" for i in range(200)) + "\nbulk/broken\n")
    result = run_cli("scan", "--from-file", listing, "--jobs", "8", "--format", "json", env=hub_env(hub))
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 201
    reports = [line for line in lines if "verdict" in line]
    assert sorted(r["source"] for r in reports) == sorted(f"bulk/repo{i}" for i in range(200))
    for report in reports:
        validated(report)
    errors = [line for line in lines if "error" in line]
    assert errors == [{"schema_version": 1, "source": "bulk/broken", "exit_code": 2,
                       "error": errors[0]["error"]}] and "no such Hub repository" in errors[0]["error"]
    assert result.returncode == 2  # the worst outcome: one repository could not be read
    summary = result.stderr.strip().splitlines()[-1]
    assert summary.startswith("headcheck: 201 scanned:") and "error 1" in summary and "convertible 50" in summary


def test_irregular_torch_file_and_tokenizer_code_are_reported_remotely_and_from_the_cache(hub, tmp_path):
    """Issue 21: the HC134 notes of a .bin read by ranged reads survive the header cache; HC136 from a
    tokenizer_config.json of the repository (the .npy check, HC135, is local only: it would download the arrays)."""
    import shutil

    from hostile import strict

    folder = tmp_path / "irregular"
    shutil.copytree(CHECKPOINTS / "bert-seq-cls-bin", folder)
    tensors = {n: (i.dtype, i.shape) for n, i in scan_index(folder / "pytorch_model.bin").items()}
    (folder / "pytorch_model.bin").write_bytes(strict.cases(tensors)["pickle-in-data-txt"])
    (folder / "tokenizer_config.json").write_text(json.dumps({"auto_map": {"AutoTokenizer": ["tok.T", None]}}))
    hub.add("acme/irregular", folder)
    local = comparable(scan_path(folder))
    assert {"HC134", "HC136"} <= {f["rule"] for f in local["findings"]}
    assert comparable(scan_target("acme/irregular")) == local
    assert comparable(scan_target("acme/irregular")) == local  # the second time from the header cache


def scan_index(path: Path) -> dict:
    from headcheck.read.pickle_index import read_pickle_index

    return read_pickle_index(path, path.name)
