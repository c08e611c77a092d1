"""The project configuration ([tool.headcheck] in pyproject.toml, or .headcheck.toml) through `headcheck scan`.

* discovery: from each target upwards, the nearest folder wins; a pyproject.toml without the table is passed
  over; `.headcheck.toml` before pyproject.toml in one folder; --config FILE, --no-config;
* `ignore` (codes or names), `per-path-ignores`, `--ignore`: ignored findings stay in the JSON report
  (`ignored`, `ignored_by`, schema-valid) and in SARIF (`suppressions`), the text report counts them, and
  they do not count for the exit code; the verdict is unchanged;
* `exclude`: the target is not scanned, said on stderr and (JSON) as a record; `fail-on` and --fail-on;
* a malformed configuration is exit code 4 with one line naming the file and the key;
* the schema ships in the package and is itself a valid Draft 2020-12 schema.

The hooks and the Action: tests/test_githook.py, tests/test_precommit.py, tests/test_action.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
from helpers import CHECKPOINTS, REPO, validated

from headcheck.errors import ConfigError
from headcheck.judge.suppress import policy
from headcheck.read.project_config import find_config, load_config, matches

BROKEN, MULTILABEL, GOOD = "bert-seq-cls-label-mismatch", "roberta-multilabel", "bert-seq-cls"  # HC102 / HC103 / -
SARIF_SCHEMA = json.loads((REPO / "tests" / "data" / "sarif-2.1.0.schema.json").read_text(encoding="utf-8"))


def headcheck(*args, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "PYTHONPATH")}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run([sys.executable, "-m", "headcheck", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def put(root: Path, folder: str, fixture: str) -> Path:
    shutil.copytree(CHECKPOINTS / fixture, root / folder)
    return root / folder


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def project(tmp_path) -> Path:
    root = tmp_path / "project"
    put(root, "models/bad", BROKEN)
    put(root, "models/ml", MULTILABEL)
    put(root, "models/legacy/old", BROKEN)
    return root


# -- discovery ----------------------------------------------------------------------------------------


def test_the_nearest_configuration_wins_and_pyproject_without_the_table_is_passed_over(tmp_path):
    write(tmp_path / "pyproject.toml", '[tool.headcheck]\nignore = ["HC103"]\n')
    write(tmp_path / "a" / "pyproject.toml", '[project]\nname = "not-ours"\n')  # no table: passed over
    write(tmp_path / "a" / "b" / "pyproject.toml", '[tool.headcheck]\nignore = ["HC114"]\n')
    (tmp_path / "a" / "b" / "c" / "d").mkdir(parents=True)
    (tmp_path / "a" / "x").mkdir()
    assert find_config(tmp_path / "a" / "b" / "c" / "d").ignore == ("HC114",)
    assert find_config(tmp_path / "a" / "b" / "c" / "d").root == tmp_path / "a" / "b"
    assert find_config(tmp_path / "a" / "x").ignore == ("HC103",)
    assert find_config(tmp_path / "a" / "x").file.endswith("pyproject.toml")
    config_file = write(tmp_path / "a" / "x" / "config.json", "{}")
    assert find_config(config_file).root == tmp_path  # a file target: from its folder upwards


def test_headcheck_toml_comes_before_pyproject_in_one_folder(tmp_path):
    write(tmp_path / "pyproject.toml", '[tool.headcheck]\nignore = ["HC103"]\n')
    write(tmp_path / ".headcheck.toml", 'ignore = ["HC114"]\n')
    found = find_config(tmp_path)
    assert found.ignore == ("HC114",) and found.prefix == "" and found.file.endswith(".headcheck.toml")
    assert found.key("ignore", 0) == "ignore[0]"
    write(tmp_path / "sub" / "pyproject.toml", '[tool.headcheck]\nfail-on = "warning"\n')
    assert find_config(tmp_path / "sub").fail_on == "warning"  # nearer folder first, whatever the file name
    write(tmp_path / "empty" / ".headcheck.toml", "")  # an empty .headcheck.toml is a configuration: the defaults
    assert find_config(tmp_path / "empty").ignore == () and find_config(tmp_path / "empty").root == tmp_path / "empty"


@pytest.mark.parametrize(("pattern", "path", "expected"), [
    ("legacy", "models/legacy/v1", True),  # no '/': a folder name at any depth, and everything below it
    ("legacy", "models/legacy-2", False),
    ("legacy/", "x/legacy", True),
    ("/legacy", "legacy/v1", True),  # a leading '/' anchors it to the configuration's folder
    ("/legacy", "models/legacy", False),
    ("models/*", "models/a", True),
    ("models/*", "models/a/b", True),  # a parent matches
    ("models/*", "other/models/a", False),  # patterns with '/' are anchored
    ("*/legacy", "a/b/legacy", False),  # '*' never crosses a '/'
    ("**/legacy", "a/b/legacy", True),
    ("**/legacy", "legacy", True),
    ("models/**/old", "models/old", True),
    ("models/v[0-9]", "models/v3/x", True),
    ("m?dels/a*", "models/abc", True),
    ("Models/*", "models/a", False),  # case-sensitive
])
def test_pattern_semantics(pattern, path, expected):
    assert matches(pattern, tuple(path.split("/"))) is expected


def test_cli_discovers_per_target_and_no_config_and_config_file(tmp_path):
    write(tmp_path / "one" / "pyproject.toml", '[tool.headcheck]\nignore = ["label-count-mismatch"]\n')
    put(tmp_path, "one/bad", BROKEN)
    put(tmp_path, "two/bad", BROKEN)  # no configuration above it
    done = headcheck("scan", "one/bad", "two/bad", "--format", "json", cwd=tmp_path)
    assert done.returncode == 1, done.stderr  # two/bad's HC102 counts
    reports = {r["source"]: validated(r) for r in map(json.loads, done.stdout.splitlines())}
    assert reports["one/bad"]["findings"][0]["ignored"] is True
    assert "ignored" not in reports["two/bad"]["findings"][0]
    assert headcheck("scan", "one/bad", cwd=tmp_path).returncode == 0
    assert headcheck("scan", "one/bad", "--no-config", cwd=tmp_path).returncode == 1
    shared = write(tmp_path / "ci" / "headcheck.toml", 'ignore = ["HC102"]\n')  # any name, top-level keys
    done = headcheck("scan", "one/bad", "two/bad", "--config", shared, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("1 finding ignored (config ci/headcheck.toml: HC102)") == 2
    both = headcheck("scan", "one/bad", "--config", shared, "--no-config", cwd=tmp_path)
    assert both.returncode == 4 and "--config and --no-config" in both.stderr


# -- ignore, per-path-ignores, --ignore -----------------------------------------------------------------------


def test_ignored_findings_are_reported_marked_and_do_not_count(project):
    write(project / "pyproject.toml", '[project]\nname = "models"\n\n[tool.headcheck]\nignore = ["multilabel-head"]\n'
                                      '[tool.headcheck.per-path-ignores]\n"models/bad" = ["HC102"]\n')
    done = headcheck("scan", "models/bad", "--format", "json", cwd=project)
    assert done.returncode == 0, done.stderr
    report = validated(json.loads(done.stdout))
    assert report["verdict"] == "not-convertible"  # a fact about the checkpoint: ignoring does not change it
    (finding,) = report["findings"]
    assert finding["rule"] == "HC102" and finding["ignored"] is True
    assert finding["ignored_by"] == 'pyproject.toml: tool.headcheck.per-path-ignores."models/bad"'

    text = headcheck("scan", "models/bad", cwd=project)
    assert text.returncode == 0
    assert "1 finding ignored (config pyproject.toml: HC102)" in text.stdout
    assert "declares 3 labels" not in text.stdout  # counted, not listed

    ml = validated(json.loads(headcheck("scan", "models/ml", "--format", "json", "--fail-on", "warning",
                                        cwd=project).stdout))
    assert [(f["rule"], f["ignored_by"]) for f in ml["findings"]] == [("HC103", "pyproject.toml: tool.headcheck.ignore")]
    assert headcheck("scan", "models/ml", "--fail-on", "warning", cwd=project).returncode == 0
    # the per-path entry is anchored to the configuration's folder: the legacy copy's HC102 counts
    assert headcheck("scan", "models/legacy/old", cwd=project).returncode == 1


def test_cli_ignore_adds_codes_or_names_and_unknown_ones_are_usage_errors(project):
    done = headcheck("scan", "models/bad", "models/ml", "--ignore", "HC102,multilabel-head", "--fail-on", "warning",
                     "--format", "json", cwd=project)
    assert done.returncode == 0, done.stdout + done.stderr
    for line in done.stdout.splitlines():
        report = validated(json.loads(line))
        assert all(f["ignored_by"] == "--ignore" for f in report["findings"]), report["findings"]
    assert headcheck("scan", "models/bad", "--ignore", "hc102", cwd=project).returncode == 0
    assert headcheck("scan", "models/ml", "--ignore", "HC102", "--fail-on", "warning", cwd=project).returncode == 1
    unknown = headcheck("scan", "models/bad", "--ignore", "HC102", "--ignore", "no-such-rule", cwd=project)
    assert unknown.returncode == 4
    assert unknown.stderr.strip() == ("headcheck: config error: --ignore: unknown rule 'no-such-rule'; "
                                      "`headcheck rule` lists the codes and names")


def test_ignored_findings_are_sarif_suppressions_and_not_annotated(project, tmp_path):
    write(project / ".headcheck.toml", 'ignore = ["HC102"]\n')
    sarif = json.loads(headcheck("scan", "models/bad", "--format", "sarif", cwd=project).stdout)
    jsonschema.Draft4Validator(SARIF_SCHEMA, format_checker=jsonschema.FormatChecker()).validate(sarif)
    (result,) = sarif["runs"][0]["results"]
    assert result["ruleId"] == "HC102" and result["level"] == "error"
    assert result["suppressions"] == [{"kind": "external", "status": "accepted",
                                       "justification": "rule HC102 ignored by .headcheck.toml: ignore"}]
    assert sarif["runs"][0]["properties"]["checkpoints"][0]["ignored"] == 1
    summary = tmp_path / "summary.md"
    github = headcheck("scan", "models/bad", "--format", "github", "--summary", summary, cwd=project)
    assert github.returncode == 0
    assert "::error" not in github.stdout and "0 findings (1 ignored)" in github.stdout
    assert "| 0 (1 ignored) |" in summary.read_text()


def test_fail_on_from_the_configuration_and_the_command_line_overrides_it(project):
    write(project / ".headcheck.toml", 'fail-on = "warning"\n')
    assert headcheck("scan", "models/ml", cwd=project).returncode == 1  # HC103 is a warning
    assert headcheck("scan", "models/ml", "--fail-on", "error", cwd=project).returncode == 0
    write(project / ".headcheck.toml", 'fail-on = "never"\n')
    assert headcheck("scan", "models/bad", cwd=project).returncode == 0
    assert headcheck("scan", "models/none", cwd=project).returncode == 2  # never hides unreadable input


# -- exclude ----------------------------------------------------------------------------------------------


def test_excluded_targets_are_not_scanned_and_say_so(project):
    write(project / "pyproject.toml", '[tool.headcheck]\nexclude = ["legacy"]\n')
    done = headcheck("scan", "models/legacy/old", cwd=project)
    assert done.returncode == 0 and done.stdout == ""
    assert done.stderr.strip() == ("headcheck: models/legacy/old: not scanned: excluded by pyproject.toml "
                                   "(exclude 'legacy')")
    record = json.loads(headcheck("scan", "models/legacy/old", "--format", "json", cwd=project).stdout)
    assert record == {"schema_version": 1, "source": "models/legacy/old", "excluded": True,
                      "excluded_by": "pyproject.toml: tool.headcheck.exclude", "pattern": "legacy", "exit_code": 0}
    sarif = json.loads(headcheck("scan", "models/legacy/old", "--format", "sarif", cwd=project).stdout)
    assert sarif["runs"][0]["results"] == []
    several = headcheck("scan", "models/legacy/old", "models/ml", "models/bad", "--format", "json", cwd=project)
    assert several.returncode == 1  # models/bad still counts
    sources = [json.loads(line)["source"] for line in several.stdout.splitlines()]
    assert sorted(sources) == ["models/bad", "models/legacy/old", "models/ml"]
    assert "2 scanned: convertible 1, not-convertible 1; 1 excluded by the configuration" in several.stderr
    assert headcheck("scan", "models/legacy/old", "--no-config", cwd=project).returncode == 1
    # a target below the configuration's folder only: the same folder elsewhere is not excluded by it
    outside = put(project.parent, "elsewhere/legacy", BROKEN)
    assert headcheck("scan", outside, "--config", project / "pyproject.toml", cwd=project).returncode == 1


# -- malformed configurations ----------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "key", "problem"), [
    ('ignore = "HC103"', "tool.headcheck.ignore", "'HC103' is not of type 'array'"),
    ('ignore = ["HC103", "HC999"]', "tool.headcheck.ignore[1]", "unknown rule 'HC999'"),
    ('ignore = ["HC 103"]', "tool.headcheck.ignore[0]", "not a rule code (HC103) or rule name"),
    ('fail-on = "warn"', "tool.headcheck.fail-on", "'warn' is not one of ['error', 'warning', 'never']"),
    ('fail_on = "warning"', "tool.headcheck.fail_on", "unknown key; did you mean 'fail-on'?"),
    ('ignores = ["HC103"]', "tool.headcheck.ignores", "unknown key (known: exclude, fail-on, ignore, per-path-ignores, require-export)"),
    ('exclude = ["../elsewhere"]', "tool.headcheck.exclude[0]", "no '..'"),
    ('[tool.headcheck.per-path-ignores]\n"models/*" = ["HC102", "multilabel-heads"]',
     'tool.headcheck.per-path-ignores."models/*"[1]', "unknown rule 'multilabel-heads'"),
    ('[tool.headcheck.per-path-ignores]\n"models/*" = "HC102"', 'tool.headcheck.per-path-ignores."models/*"',
     "is not of type 'array'"),
])
def test_a_malformed_configuration_is_a_usage_error_naming_file_and_key(project, text, key, problem):
    body = text if text.startswith("[") else f"[tool.headcheck]\n{text}\n"
    write(project / "pyproject.toml", body)
    for args in (["models/ml"], ["models/ml", "models/bad", "--format", "json"]):
        done = headcheck("scan", *args, cwd=project)
        assert done.returncode == 4, done.stderr
        assert done.stdout == ""  # nothing was scanned
        (line,) = done.stderr.splitlines()
        assert line.startswith(f"headcheck: config error: pyproject.toml: {key}: "), line
        assert problem in line, line


@pytest.mark.parametrize(("name", "text", "expected"), [
    ("pyproject.toml", "[tool.headcheck\nignore = []", "pyproject.toml: invalid TOML: Expected ']'"),
    ("pyproject.toml", "tool.headcheck = 3", "pyproject.toml: tool.headcheck: must be a table"),
    (".headcheck.toml", '[tool.headcheck]\nignore = ["HC103"]',
     ".headcheck.toml: tool.headcheck: .headcheck.toml holds the keys at its top level"),
    (".headcheck.toml", "exclude = [1]", ".headcheck.toml: exclude[0]: 1 is not of type 'string'"),
])
def test_broken_toml_and_misplaced_tables(tmp_path, name, text, expected):
    write(tmp_path / name, text)
    with pytest.raises(ConfigError) as info:
        policy(find_config(tmp_path))
    assert str(info.value).startswith(f"{tmp_path / name}: "), str(info.value)  # not below the cwd: absolute
    assert f"{tmp_path}/{expected}" in str(info.value), str(info.value)


def test_config_file_must_exist_and_a_pyproject_must_have_the_table(tmp_path):
    write(tmp_path / "pyproject.toml", '[project]\nname = "x"\n')
    put(tmp_path, "m", GOOD)
    missing = headcheck("scan", "m", "--config", "nope.toml", cwd=tmp_path)
    assert missing.returncode == 4 and missing.stderr.strip() == "headcheck: config error: nope.toml: no such file"
    no_table = headcheck("scan", "m", "--config", "pyproject.toml", cwd=tmp_path)
    assert no_table.returncode == 4
    assert "pyproject.toml: tool.headcheck: no [tool.headcheck] table" in no_table.stderr
    with pytest.raises(ConfigError):
        load_config(tmp_path / "pyproject.toml")


# -- schemas ------------------------------------------------------------------------------------------------


def test_the_config_schema_ships_with_the_package_and_is_valid():
    schema = json.loads((resources.files("headcheck") / "schemas" / "config.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    assert set(schema["properties"]) == {"ignore", "fail-on", "exclude", "per-path-ignores", "require-export"}
    validator = jsonschema.Draft202012Validator(schema)
    assert validator.is_valid({"ignore": ["HC103", "multilabel-head"], "fail-on": "never", "exclude": ["a/**"],
                               "per-path-ignores": {"models/*": ["HC114"]}})
    assert not validator.is_valid({"per-path-ignores": {"/": ["HC114"]}})


def test_reports_without_ignored_findings_keep_their_keys():
    """An optional key, only on ignored findings: schema_version 1 reports read as before."""
    report = headcheck("scan", CHECKPOINTS / MULTILABEL, "--format", "json", "--no-config", cwd=REPO)
    (finding,) = json.loads(report.stdout)["findings"]
    assert set(finding) == {"rule", "severity", "message", "file", "hint", "key"}


def test_the_readme_example_and_key_table_match_the_schema(tmp_path):
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Configuration"):]
    section = section[:section.index("\n## ")]
    example = section[section.index("```toml\n") + len("```toml\n"):]
    example = example[:example.index("```")]
    write(tmp_path / "pyproject.toml", example)
    found = policy(find_config(tmp_path))  # parses, validates, and every rule it names exists
    assert found.config.fail_on == "warning" and found.codes["legacy-head-class"] == "HC114"
    documented = {line.split("`")[1] for line in section.splitlines() if line.startswith("| `")}
    schema = json.loads((resources.files("headcheck") / "schemas" / "config.schema.json").read_text())
    assert documented == set(schema["properties"])
