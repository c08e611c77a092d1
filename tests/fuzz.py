"""Coverage-guided fuzzing of headcheck's parsers with atheris (pip install atheris).

    python tests/fuzz.py                         # every parser, 30 s each
    python tests/fuzz.py safetensors --seconds 120
    python tests/fuzz.py --list

Each target feeds arbitrary bytes to one parser; anything but a result or headcheck's own InputError is a
crash: atheris stops and writes the input as crash-<hash> in the working folder. Turn such a file into a
regression test (tests/test_hostile_*.py) before fixing the parser.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def _safetensors(data: bytes) -> None:
    from headcheck.read.safetensors_header import parse_header

    parse_header(data, len(data) // 2, "model.safetensors")


def _pickle(data: bytes) -> None:
    from headcheck.read.pickle_index import read_pickle_index

    read_pickle_index(io.BytesIO(data), "pytorch_model.bin")


def _json(data: bytes) -> None:
    from headcheck.read.json_text import parse_json

    parse_json(data, "config.json")


def _shard_index(data: bytes) -> None:
    from headcheck.read.facts import _read_shards

    class Index:  # a folder holding only the index: every shard it names is missing
        label = "ckpt"

        def files(self):
            return ("model.safetensors.index.json",)

        def read_json(self, rel):
            from headcheck.read.json_text import parse_json

            return parse_json(data, rel)

    _read_shards(Index(), "model.safetensors.index.json")


def _lfs_pointer(data: bytes) -> None:
    from headcheck.read.lfs import MalformedPointer, parse_pointer

    try:
        parse_pointer(data)
    except MalformedPointer:
        pass


def _card(data: bytes) -> None:
    from headcheck.read.local import read_card_file

    with tempfile.NamedTemporaryFile(suffix=".md") as card:
        card.write(data)
        card.flush()
        read_card_file(Path(card.name))


def _pre_push(data: bytes) -> None:
    from headcheck.hooks.push import parse_pre_push

    parse_pre_push(data.decode("utf-8", "replace"))


def _ls_tree(data: bytes) -> None:
    from headcheck.hooks.repo import parse_ls_tree

    parse_ls_tree(data)


TARGETS = {"safetensors": _safetensors, "pickle": _pickle, "json": _json, "shard-index": _shard_index,
           "lfs-pointer": _lfs_pointer, "card": _card, "pre-push": _pre_push, "ls-tree": _ls_tree}


def run_one(name: str, seconds: int) -> None:
    import atheris

    from headcheck.errors import InputError, NothingScannedError

    target = TARGETS[name]

    def one_input(data: bytes) -> None:
        try:
            target(data)
        except (InputError, NothingScannedError):
            pass

    with atheris.instrument_imports():
        import headcheck.read.lfs  # noqa: F401
        import headcheck.hooks.push  # noqa: F401
        import headcheck.hooks.repo  # noqa: F401
        import headcheck.read.facts  # noqa: F401
        import headcheck.read.pickle_index  # noqa: F401
        import headcheck.read.safetensors_header  # noqa: F401
    corpus = tempfile.mkdtemp(prefix=f"fuzz-{name}-")  # seeds: random bytes rarely reach past a format's magic
    for i, seed in enumerate(seeds(name)):
        Path(corpus, f"seed-{i}").write_bytes(seed)
    atheris.Setup([sys.argv[0], corpus, f"-max_total_time={seconds}", "-print_final_stats=1", "-rss_limit_mb=1024"],
                  one_input)
    atheris.Fuzz()


def seeds(name: str) -> list[bytes]:
    """Well-formed inputs of each parser, from the committed fixtures, for the fuzzer to mutate."""
    checkpoints = REPO / "tests" / "fixtures" / "checkpoints"
    files = {"safetensors": [checkpoints / "bert-seq-cls" / "model.safetensors"],
             "pickle": [checkpoints / "bert-seq-cls-bin" / "pytorch_model.bin"],
             "json": [checkpoints / "bert-seq-cls" / "config.json", checkpoints / "adapter-static-head" / "head_config.json"],
             "shard-index": [checkpoints / "sharded" / "model.safetensors.index.json"]}
    texts = {"lfs-pointer": [f"version https://git-lfs.github.com/spec/v1\noid sha256:{'0' * 64}\nsize 12\n"],
             "card": ["---\nlicense: mit\nlibrary_name: adapter-transformers\ntags: [a, b]\n---\n# card\n"],
             "pre-push": [f"refs/heads/main {'1' * 40} refs/heads/main {'0' * 40}\n"],
             "ls-tree": [f"100644 blob {'a' * 40}\tmodels/m/config.json\0"]}
    if name == "safetensors":  # the target takes the header alone
        raw = files["safetensors"][0].read_bytes()
        return [raw[8:8 + int.from_bytes(raw[:8], "little")]]
    return [path.read_bytes() for path in files.get(name, [])] + [text.encode() for text in texts.get(name, [])]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="*", choices=[[], *TARGETS], help="parsers to fuzz (default: all)")
    parser.add_argument("--seconds", type=int, default=30, help="time per parser")
    parser.add_argument("--list", action="store_true", help="list the parsers")
    args = parser.parse_args()
    if args.list:
        print("\n".join(TARGETS))
        return 0
    if len(args.targets) == 1:
        run_one(args.targets[0], args.seconds)
        return 0
    worst = 0
    for name in args.targets or TARGETS:  # one process per parser: atheris exits when its run ends
        print(f"== {name}", flush=True)
        done = subprocess.run([sys.executable, __file__, name, "--seconds", str(args.seconds)], env=os.environ)
        worst = max(worst, done.returncode)
    return worst


if __name__ == "__main__":
    sys.exit(main())
