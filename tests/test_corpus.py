"""Real-world files (../shared/corpus/real, see its SOURCES.md): scanned without a crash and classified sensibly.

Three layers:
1. every corpus file scanned on its own, through `scan_path` (what the CLI calls): a report, or InputError /
   NothingScannedError only where the file deserves it;
2. per-file expectations taken from the SOURCES.md notes;
3. the derived key listings (`shard_index/*.keys.txt`) and shard indexes (`*.index.json`) rebuilt into checkpoint
   folders - header-only safetensors (sparse data area) or hand-made torch zips, next to the matching corpus
   configs - and scanned as folders.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from headcheck.errors import InputError, NothingScannedError
from helpers import rules_of, scan

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus" / "real"
if not CORPUS.is_dir():
    pytest.skip(f"real-world corpus not present at {CORPUS} (it lives outside the repository)", allow_module_level=True)

_spec = importlib.util.spec_from_file_location("_headcheck_make_fixtures",
                                               REPO / "tests" / "fixtures" / "make_fixtures.py")
make_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_fixtures)

FILES = sorted(str(p.relative_to(CORPUS)) for p in CORPUS.rglob("*") if p.is_file() and p.name != "SOURCES.md")


def outcome(path: Path, **kwargs) -> tuple[str, object]:
    """("report", dict) | ("input-error", message) | ("nothing", message); anything else propagates (a crash)."""
    try:
        return "report", scan(path, **kwargs)
    except NothingScannedError as exc:
        return "nothing", str(exc)
    except InputError as exc:
        return "input-error", str(exc)


def run_cli(path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", "headcheck", "scan", str(path)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


# ------------------------------------------------------------------------------------------------ expectations


@dataclass(frozen=True)
class Want:
    outcome: str = "report"  # report | input-error | nothing
    kind: str | None = None
    head: str | None = None  # head.type
    verdict: str | None = None
    rules: frozenset[str] = frozenset()  # must be reported
    absent: frozenset[str] = frozenset()  # must not be reported
    num_labels: int | None = None
    problem_type: str | None = None
    name: str | None = None  # head.name
    model_type: str | None = None
    message: str | None = None  # must occur in the error message (input-error / nothing)


def W(outcome="report", *, rules=(), absent=(), **kw) -> Want:
    return Want(outcome, rules=frozenset(rules), absent=frozenset(absent), **kw)


def adapter(head=None, verdict=None, **kw) -> Want:
    return W(kind="adapter", head=head, verdict=verdict, **kw)


def full(head=None, **kw) -> Want:
    return W(kind="full-model", head=head, **kw)


def peft(head=None, **kw) -> Want:
    return W(kind="peft-adapter", head=head, rules={"HC118"}, **kw)


def nothing(message=None) -> Want:
    return W("nothing", message=message)


def input_error(message=None) -> Want:
    return W("input-error", message=message)


LABEL_RULES = {"HC102", "HC109"}

SINGLE_FILES: dict[str, Want] = {
    # --- head_config.json: adapters heads, alone (no weights next to them)
    # a head config without its weights file cannot be judged against weights, nor loaded (HC115)
    "head_config/AnHu2410__MD_crosslingual__adapter-head_config@6c09ade.json":
        adapter("classification", "not-convertible", rules={"HC115"}, num_labels=2, name="md"),
    "head_config/AnHu2410__MD_crosslingual__adapter-head_config@6d96581.json":
        adapter("classification", "not-convertible", rules={"HC115"}, num_labels=2, name="glue"),
    "head_config/DieseKartoffel__my-fileshare-repo__prediction_head_0_config.json": nothing("another tool"),  # FARM
    # legacy BertModelWithHeads, same family: adapters converts it by name
    "head_config/MonsoonNLP__sanaa-dialect__dialect-adapter-head_config.json":
        adapter("classification", "not-convertible", rules={"HC114", "HC115"}, num_labels=5, name="dialect-arabic"),
    "head_config/adapter-hub__adapters__adapter1-head_config.json":  # BigBird: no BigBirdAdapterModel
        adapter("classification", "not-convertible", rules={"HC106"}),
    "head_config/adapter-hub__adapters__dev-whisper-whisper_head-head_config.json":
        adapter("seq2seq_lm", "not-convertible", rules={"HC115"}, name="whisper_head"),
    "head_config/adapter-hub__adapters__output_fusion_head-head_config.json":
        adapter("classification", "not-convertible", rules={"HC106"}),
    "head_config/defreez-ucd__projector__head_config.json": nothing("another tool"),  # TensorBoard projector
    "head_config/ekgus9__Legal_Domain_PEFT__final_adapter-head_config.json":
        adapter("classification", "not-convertible", rules={"HC115"}, num_labels=2, name="dummy"),
    "head_config/visionrd-ai__vrdOCR__head_config.json": input_error("invalid JSON"),  # Python-dict syntax
    # --- adapter_config.json alone: an adapter without its head
    "adapter_config/AnHu2410__MD_crosslingual__adapter-adapter_config@6c09ade.json": adapter("none", "no-head"),
    "adapter_config/AnHu2410__MD_crosslingual__adapter-adapter_config@6d96581.json": adapter("none", "no-head"),
    "adapter_config/MonsoonNLP__sanaa-dialect__dialect-adapter-adapter_config.json": adapter("none", "no-head"),
    "adapter_config/adapter-hub__adapters__adapter1-adapter_config.json": adapter("none", "no-head"),
    # An AdapterFusion config is told apart (role "fusion") but nothing judges it: exit 3 naming it "fusion".
    # Debatable: it is an adapters artefact, so kind adapter / no-head would be at least as fair.
    "adapter_config/adapter-hub__adapters__output_fusion-adapter_fusion_config.json": nothing("fusion"),
    "adapter_config/ekgus9__Legal_Domain_PEFT__final_adapter-adapter_config.json": adapter("none", "no-head"),
    "adapter_config/yifan-h__Multilingual_Space__adapters-mlki_mbert-ep-adapter_config.json": adapter("none", "no-head"),
    "adapter_config/yifan-h__Multilingual_Space__adapters-mlki_xlmrb-es-adapter_config.json": adapter("none", "no-head"),
    "adapter_config/yifan-h__Multilingual_Space__adapters-mlki_xlmrl-tp-adapter_config.json": adapter("none", "no-head"),
    # --- PEFT adapter_config.json: a head only for the head-carrying task types
    "peft_config/3L0L0__FLAN-T5-Motivation-Model__adapter_config.json": peft("none"),  # SEQ_2_SEQ_LM: LM head is the base's
    "peft_config/AidenGatani__Emotion-Classifier__lora_model-adapter_config.json": peft("classification"),
    "peft_config/AlanLau9809__Intern_GenAI_NER__adapters-adapter_config.json": nothing("MLX"),
    "peft_config/Delta17920__fake-news-detection-peft__peft_model-adapter_config.json": peft("classification"),
    "peft_config/Hareshjethani__BERT-GPT2-Multitask-Finetuning__adapter_config.json": peft("classification"),
    "peft_config/LTtt456c__InternLM_AdapterModel__adapter_config.json": peft("none"),  # name says AdapterModel: a trap
    "peft_config/Orwell-Yu__DREAM__reward-reward_model_out-adapter_config.json": peft("none"),  # saved as CAUSAL_LM
    "peft_config/Vltava1__nlp_proj__final_adapter-adapter_config.json": peft("none"),
    "peft_config/akseljoonas__biotech-news-sentiment__lora_adapter-adapter_config.json": peft("none"),
    "peft_config/ansmlptr__PHP-Vuln-Detection__lora_model-adapter_config.json": peft("classification"),
    "peft_config/deepbiolab__gpt2-classification-peft__peft_model-adapter_config.json": peft("classification"),
    "peft_config/gurvineet__peft-implementation__peft_model-best-adapter_config.json": peft("classification"),
    "peft_config/gurvineet__peft-implementation__peft_model-checkpoint-2-adapter_config.json": peft("none"),
    "peft_config/sdtrklse__lightweight-fine-tuning__peft_model-adapter_config.json": peft("classification"),
    "peft_config/searlion__mlx-finetuning__adapters-adapter_config.json": nothing("MLX"),
    "peft_config/williamcheong0616__demo_bahasarojakPPL__final_adapter-adapter_config.json": peft("none"),
    # --- config.json of full models, alone (so HC115 "no weights" is expected and not asserted)
    "static_config/2nanbae__2025_ASR_certificate__model-config.json": full("seq2seq_lm"),
    # transformers-2.x GPT-2 config without architectures: family from keys, head unknowable without weights
    "static_config/952994221__NLP-Couplet-GPT2__model-config.json": full("unknown", model_type="gpt2"),
    "static_config/AdityaKulshrestha__Question-Answering-AdversarialQA__model-config.json":
        full("question_answering", absent=LABEL_RULES),
    "static_config/AlisherAmirbek__LlaMA2-30M__model-config.json": nothing(),  # llama2.c params
    "static_config/AmuyouCN__hc_intent_8class_l8h512__model-config.json": nothing(),  # custom classifier config
    "static_config/AnDeresh__BERT-for-MountNER__model-config.json": full("tagging", num_labels=3),
    "static_config/AwesomeGitHubRepos__bert-sequence-classification__model-config.json":
        full("unknown", model_type="distilbert"),  # transformers-2.x DistilBERT: no architectures
    "static_config/CheeXiangLing__Mental_Health_Analyzer__roberta_model-config.json": full("classification", num_labels=7),
    "static_config/Chieh-Hung-Cheng__MLHW7__saved_model-config.json": full("question_answering"),
    "static_config/DieseKartoffel__my-fileshare-repo__language_model_config.json": full("masked_lm"),
    "static_config/GayatriKhairnar06__Toxic-Comment__saved_model-config.json":
        full("multilabel_classification", rules={"HC103"}, num_labels=6),
    "static_config/HuyPham235711__BARTpho_Corrector__saved_model-config.json": full("seq2seq_lm"),
    "static_config/IrfanUruchi__Llama-3.1-8B-Computer-Networks-LLM__config.json": full("causal_lm"),
    "static_config/J-Meyers__fp-dataset-artifacts__best_model-config.json":
        full("classification", num_labels=3, absent=LABEL_RULES),
    "static_config/Jaejun02__ToxicComment__saved_model-config.json": full("classification", rules={"HC117"}, num_labels=6),
    # ChatGLM custom code, architectures ChatGLMModel vs auto_map ChatGLMForConditionalGeneration: debatable
    "static_config/Jerrykamier__blgarm__config.json": full(rules={"HC130"}),
    "static_config/LHembree25__gap-detection-model__lex-gap-model-config.json": full("causal_lm", rules={"HC106"}),
    "static_config/MananAbbott__Multi-Task-Learning__best_model-config.json": full("none", verdict="no-head"),
    "static_config/SurawutK__multi-label-text-classification-scopus__saved_model-config.json":
        full("multilabel_classification", rules={"HC103"}, num_labels=18),
    "static_config/Team-TwoPercent__ToU-Project-Artificial-Intelligence-Archived__fastival_model-config.json":
        full("classification", rules={"HC109"}),
    "static_config/Ut14__Essay-grader__best_model-config.json":
        full("classification", rules={"HC104"}, problem_type="regression", num_labels=1),
    "static_config/adapter-hub__adapters__tests-fixtures-SiBERT-config.json": full("masked_lm", absent=LABEL_RULES),
    "static_config/amaye15__CanineNet__model-config.json": full("image_classification", num_labels=120),
    "static_config/canunj__Auto-BoardGame__t5_model-config.json": full("seq2seq_lm"),
    "static_config/croftwell__t5-finetuned-summarize__fine_tuned_model-config.json": full("classification", num_labels=122),
    "static_config/higopires__ner-simpletransformers__best_model-config.json": full("tagging", num_labels=34),
    "static_config/irtezachy__Multilingual-Tweet-Intimacy-Prediction__final_model-config.json":
        full("classification", rules={"HC104"}, problem_type="regression"),
    "static_config/issaWarasna__Text-classification-with-XLNET__fine_tuned_model-config.json":
        full("classification", rules={"HC106"}, verdict="not-convertible"),
    "static_config/jellyrgb__sign_app__vit_model-config.json": full("image_classification", num_labels=24),
    "static_config/junqi-jiang__oasstpythia1.5brm__config.json":
        full("unknown", verdict="not-convertible", rules={"HC106"}),  # GPTNeoXRewardModel
    "static_config/kaderator2__SubSimDiscordbot__best_model-config.json": full("causal_lm"),
    "static_config/kulsoomsyed__ImageCaptioningApp__fine_tuned_gpt2_model-config.json": full("causal_lm"),
    "static_config/kulsoomsyed__ImageCaptioningApp__vit_model-config.json": full("none", verdict="no-head"),
    "static_config/llm-jp__Toxicity_Filter__final_model-config.json": full("classification", rules={"HC109"}),
    "static_config/lokeshpanthangi__q2_reward__reward_model-config.json":
        full("classification", rules={"HC104"}, problem_type="regression"),
    # MPTForCausalLM from custom code (auto_map): the class name is not trusted; only no crash + kind asserted
    "static_config/mikeybellissimo__LoRA-MPT__SavedModels-MPT-7B-Instruct-config.json": full(rules={"HC130"}),
    "static_config/nishiwakikazutaka__layoutlm-wikipedia-ja__config.json": full("masked_lm", rules={"HC106"}),
    "static_config/palashdandge__Fine-Tuned-Helsinki-MarianMT_Model__fine_tuned_model-config.json":
        full("seq2seq_lm", rules={"HC106"}, absent=LABEL_RULES),
    "static_config/ramaalkhouli__finedTunedCodeT5__fine_tuned_model-config.json": input_error("git lfs pull"),
    "static_config/reubzdubz__Molmo7B_D_NF4Quant__config.json": full(rules={"HC130"}),  # custom MolmoForCausalLM
    "static_config/shouryakumar6290__Stress_Detection_from_Speech_Using_Transformer_Based_Deep_Learning__final_model-config.json":
        full("classification", rules={"HC106"}),  # wav2vec2 has no flex-head model
    "static_config/tantaishiyi__japanese-qa-model__final_model-config.json": full("classification", num_labels=63828),
    "static_config/teenwolf395__Course2_final__albert_model-config.json": full("classification", rules={"HC109"}),
    "static_config/teenwolf395__Course2_final__training_results-best_model-config.json":
        full("classification", num_labels=13, absent=LABEL_RULES),
    "static_config/varunsridhar1__fp-dataset-artifacts__final_model-config.json": full("question_answering"),
    # seq2seq model carrying transformers' default 3-entry id2label: no label findings for an LM head
    "static_config/vipulroy2007-wq__radiology-summariser__final_model-config.json":
        full("seq2seq_lm", absent=LABEL_RULES),
}
for _card in (p for p in FILES if p.startswith("model_card/")):
    SINGLE_FILES[_card] = nothing("model card only")
for _listing in (p for p in FILES if p.endswith(".keys.txt")):
    SINGLE_FILES[_listing] = nothing("not a checkpoint file")  # derived text listings, not checkpoint files
for _index in (p for p in FILES if p.endswith(".index.json")):
    SINGLE_FILES[_index] = full()  # names only (no shapes): the folder tests below say more


def check(result: tuple[str, object], want: Want, where: str) -> None:
    kind, value = result
    assert kind == want.outcome, f"{where}: {kind}: {value if kind != 'report' else value['verdict']}"
    if kind != "report":
        assert "Traceback" not in value and "\n" not in value.strip()
        if want.message:
            assert want.message in value, value
        return
    report = value
    found = rules_of(report)
    checks = {
        "kind": (report["kind"], want.kind),
        "head.type": (report["head"]["type"], want.head),
        "verdict": (report["verdict"], want.verdict),
        "head.num_labels": (report["head"]["num_labels"], want.num_labels),
        "head.problem_type": (report["head"]["problem_type"], want.problem_type),
        "head.name": (report["head"]["name"], want.name),
        "model_type": (report["model_type"], want.model_type),
    }
    for label, (got, expected) in checks.items():
        if expected is not None:
            assert got == expected, f"{where}: {label} is {got!r}, expected {expected!r}; findings {report['findings']}"
    assert want.rules <= found, f"{where}: missing {want.rules - found}; got {report['findings']}"
    assert not (want.absent & found), f"{where}: unexpected {want.absent & found}"


def test_every_corpus_file_has_an_expectation():
    assert set(FILES) == set(SINGLE_FILES), set(FILES) ^ set(SINGLE_FILES)


@pytest.mark.parametrize("rel", FILES)
def test_corpus_file(rel):
    check(outcome(CORPUS / rel), SINGLE_FILES[rel], rel)


@pytest.mark.parametrize("rel", [rel for rel, want in SINGLE_FILES.items() if want.outcome != "report"])
def test_rejected_corpus_file_exits_cleanly(rel):
    result = run_cli(CORPUS / rel)
    assert result.returncode == (2 if SINGLE_FILES[rel].outcome == "input-error" else 3), result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


# ------------------------------------------------------------------------------------------------ rebuilt folders

STORAGE_DTYPES = {"FloatStorage": "F32", "HalfStorage": "F16", "BFloat16Storage": "BF16", "DoubleStorage": "F64",
                  "LongStorage": "I64", "IntStorage": "I32", "ShortStorage": "I16", "CharStorage": "I8",
                  "ByteStorage": "U8", "BoolStorage": "BOOL"}
# the weight file a listing came from -> the file written for it (safetensors: header-only, sparse data)
LISTED_FILES = {"pytorch_model_head.bin": "model_head.safetensors", "adapter_model.bin": "adapter_model.safetensors",
                "adapter_model.safetensors": "adapter_model.safetensors"}
INDEX_FILES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
CONFIG_NAMES = ("config", "adapter_config", "head_config")
# final head layers whose row count must agree with the config's labels
HEAD_OUTPUTS = re.compile(r"^(classifier|classifier\.out_proj|score|out_proj)\.(weight|bias)$")


def parse_listing(path: Path) -> tuple[dict[str, tuple[str, tuple[int, ...]]], dict[str, str] | None]:
    tensors, metadata = {}, None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# __metadata__ "):
            metadata = json.loads(line.removeprefix("# __metadata__ "))
        elif line and not line.startswith("#"):
            name, dtype, shape = line.split("\t")
            tensors[name] = (STORAGE_DTYPES.get(dtype, dtype), tuple(json.loads(shape)))
    return tensors, metadata


def split_name(listing: str) -> tuple[str, str, str]:
    """'<prefix><weight file>[@commit].keys.txt' or '<prefix><index file>' -> (prefix, weight file, '@commit' or '')."""
    stem = listing.removesuffix(".keys.txt")
    stem, _, commit = stem.partition("@")
    for weight_file in (*LISTED_FILES, *INDEX_FILES):
        if stem.endswith(weight_file):
            return stem[: -len(weight_file)], weight_file, f"@{commit}" if commit else ""
    raise AssertionError(f"unrecognised listing name {listing}")


def matching_configs(prefix: str, commit: str) -> dict[str, Path]:
    """Corpus configs of the same repository folder (same file-name prefix and commit) -> their standard name."""
    found = {}
    for folder in ("static_config", "adapter_config", "head_config", "peft_config"):
        for name in CONFIG_NAMES:
            candidate = CORPUS / folder / f"{prefix}{name}{commit}.json"
            if candidate.is_file():
                found[f"{name}.json"] = candidate
    return found


def synthetic_shapes(names, config: dict) -> dict[str, tuple[str, tuple[int, ...]]]:
    """A shard index lists names only: give head outputs the config's label count, everything else shape [1]."""
    labels = config.get("id2label") or {}
    rows = len(labels) if isinstance(labels, dict) and labels else int(config.get("num_labels") or 1)
    hidden = int(config.get("hidden_size") or config.get("d_model") or 8)
    shapes = {}
    for name in names:
        match = HEAD_OUTPUTS.match(name)
        if match:
            shapes[name] = ("F32", (rows, hidden) if match[2] == "weight" else (rows,))
        else:
            shapes[name] = ("F32", (1,))
    return shapes


def build_folder(listing_rel: str, dest: Path) -> Path:
    listing = CORPUS / listing_rel
    prefix, weight_file, commit = split_name(listing.name)
    dest.mkdir()
    configs = matching_configs(prefix, commit)
    for standard_name, source in configs.items():
        (dest / standard_name).write_bytes(source.read_bytes())
    if listing.name.endswith(".keys.txt"):
        tensors, metadata = parse_listing(listing)
        make_fixtures.write_safetensors(dest / LISTED_FILES[weight_file], tensors, metadata or {}, sparse=True)
        return dest
    index = json.loads(listing.read_text(encoding="utf-8"))
    (dest / weight_file).write_bytes(listing.read_bytes())
    config = json.loads(configs["config.json"].read_text(encoding="utf-8")) if "config.json" in configs else {}
    by_shard: dict[str, list[str]] = {}
    for name, shard in index["weight_map"].items():
        by_shard.setdefault(shard, []).append(name)
    for shard, names in by_shard.items():
        shapes = synthetic_shapes(names, config)
        if shard.endswith(".safetensors"):
            make_fixtures.write_safetensors(dest / shard, shapes, sparse=True)
        else:
            (dest / shard).write_bytes(make_fixtures.torch_zip_bytes(shapes))
    return dest


FOLDERS: dict[str, Want] = {
    # adapters flex heads saved by adapters 1.0.1 / adapter-transformers 3.1.0 / adapters 0.1.0
    "shard_index/AnHu2410__MD_crosslingual__adapter-pytorch_model_head.bin@6c09ade.keys.txt":
        adapter("classification", "already-flex", num_labels=2, name="md", absent={"HC110"}),
    "shard_index/AnHu2410__MD_crosslingual__adapter-pytorch_model_head.bin@6d96581.keys.txt":
        adapter("classification", "already-flex", num_labels=2, name="glue", absent={"HC110"}),
    "shard_index/ekgus9__Legal_Domain_PEFT__final_adapter-pytorch_model_head.bin.keys.txt":
        adapter("classification", "already-flex", num_labels=2, name="dummy", absent={"HC110"}),
    # adapter-transformers v1 BertModelWithHeads: same family, so a rename away from the flex layout
    "shard_index/MonsoonNLP__sanaa-dialect__dialect-adapter-pytorch_model_head.bin.keys.txt":
        adapter("classification", "convertible", rules={"HC114"}, num_labels=5, absent={"HC110"}),
    "shard_index/adapter-hub__adapters__adapter1-pytorch_model_head.bin.keys.txt":  # BigBird
        adapter("classification", "not-convertible", rules={"HC106"}),
    # PEFT: listing + its adapter_config.json
    "shard_index/akseljoonas__biotech-news-sentiment__lora_adapter-adapter_model.safetensors.keys.txt":
        peft("none", verdict="no-head"),  # FEATURE_EXTRACTION, no head tensors
    "shard_index/deepbiolab__gpt2-classification-peft__peft_model-adapter_model.safetensors.keys.txt":
        peft("classification", verdict="not-convertible"),  # head saved as base_model.model.score.weight
    "shard_index/sdtrklse__lightweight-fine-tuning__peft_model-adapter_model.bin.keys.txt":
        peft("classification", verdict="not-convertible"),  # modules_to_save null, yet classifier.* saved
    # shard indexes + the config of the same repository
    "shard_index/IrfanUruchi__Llama-3.1-8B-Computer-Networks-LLM__model.safetensors.index.json":
        full("causal_lm"),  # bnb 8-bit keys; whether a quantized checkpoint converts is debatable
    "shard_index/amaye15__CanineNet__model-model.safetensors.index.json":
        full("image_classification", verdict="convertible", num_labels=120),
    "shard_index/junqi-jiang__oasstpythia1.5brm__model.safetensors.index.json":
        full("unknown", verdict="not-convertible", rules={"HC106"}),
    "shard_index/nishiwakikazutaka__layoutlm-wikipedia-ja__pytorch_model.bin.index.json":
        full("masked_lm", verdict="not-convertible", rules={"HC106"}),
    "shard_index/reubzdubz__Molmo7B_D_NF4Quant__model.safetensors.index.json": full(rules={"HC130"}),  # custom code
    # no config in the corpus: weights alone, model_type unknown - only no crash + kind
    # no config.json of these repositories in the corpus: sharded weights alone say nothing of their head (issue 20 #2)
    "shard_index/NealKapadia__summarizer__pytorch_model.bin.index.json": nothing("weights alone cannot be judged"),
    "shard_index/SsmallSong__TRL_FT__pytorch_model.bin.index.json": nothing("weights alone cannot be judged"),
}


def test_every_listing_is_rebuilt():
    listings = {p for p in FILES if p.endswith((".keys.txt", ".index.json"))}
    assert listings == set(FOLDERS)


@pytest.mark.parametrize("rel", sorted(FOLDERS))
def test_rebuilt_folder(rel, tmp_path):
    folder = build_folder(rel, tmp_path / "checkpoint")
    check(outcome(folder), FOLDERS[rel], rel)


def test_pairing_finds_the_configs_of_the_same_folder(tmp_path):
    adapter_folder = build_folder(
        "shard_index/AnHu2410__MD_crosslingual__adapter-pytorch_model_head.bin@6c09ade.keys.txt", tmp_path / "a")
    assert sorted(p.name for p in adapter_folder.iterdir()) == [
        "adapter_config.json", "head_config.json", "model_head.safetensors"]
    assert json.loads((adapter_folder / "head_config.json").read_text())["version"] == "adapters.1.0.1"
    model_folder = build_folder("shard_index/amaye15__CanineNet__model-model.safetensors.index.json", tmp_path / "m")
    assert "config.json" in {p.name for p in model_folder.iterdir()}
    assert len(list(model_folder.glob("model-0000*-of-00004.safetensors"))) == 4


def test_custom_code_causal_lm_with_weights_is_not_no_head(tmp_path):
    folder = build_folder("shard_index/reubzdubz__Molmo7B_D_NF4Quant__model.safetensors.index.json", tmp_path / "m")
    report = scan(folder)
    assert report["verdict"] != "no-head", report["head"]
