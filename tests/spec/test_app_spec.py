"""The spec's hosted-app keys: app, app_dir, env, interface, requests (issue 12)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from studyrun import run_cli

from bench.load.config import LoadConfig
from bench.spec import SpecError, load_spec, parse_spec
from service.config import HOSTED_HEALTH_PATH

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ("myapp", "wsgiapp", "har", "leaky")
HEAD = "name: t\ntitle: T\nallocators: [glibc]\n"
TRAFFIC = (
    '{"name": "read", "method": "GET", "path": "/items/${int:1:9}", "weight": 3}\n'
    '{"name": "write", "method": "POST", "path": "/items", "json": {"v": "${hex:4}"}}\n'
)


@pytest.fixture
def examples(tmp_path: Path) -> Path:
    """A copy of examples/ with its apps folder (the apps themselves are not needed to load)."""
    copy = tmp_path / "examples"
    shutil.copytree(ROOT / "examples", copy)
    (copy / "apps").mkdir(exist_ok=True)
    return copy


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A folder with a request file and an app folder beside where specs are written."""
    (tmp_path / "traffic.jsonl").write_text(TRAFFIC, encoding="utf-8")
    (tmp_path / "src").mkdir()
    return tmp_path


def spec_file(folder: Path, service: str, name: str = "s.yaml") -> Path:
    path = folder / name
    path.write_text(HEAD + "service:\n" + service, encoding="utf-8")
    return path


def errors(path: Path) -> list[str]:
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    return str(caught.value).splitlines()


@pytest.mark.parametrize("name", EXAMPLES)
def test_the_example_specs_load_with_absolute_paths_beside_them(examples: Path, name: str):
    spec = load_spec(examples / f"{name}.yaml")
    service = spec.service
    assert service.hosted and service.app is not None
    assert service.app_dir == examples / "apps"
    assert service.requests is not None and service.requests.is_absolute()
    assert service.requests.parent == examples
    assert service.request_mix is not None and service.request_mix.requests
    assert spec.allocator_names == ["glibc", "jemalloc"] and spec.repeats == 1
    assert service.load_s <= 12 and service.workers == 2


def test_relative_paths_mean_beside_the_spec_not_the_working_folder(
    project: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.chdir("/")
    path = spec_file(project, "  app: pkg.main:app\n  app_dir: src\n  requests: traffic.jsonl\n")
    spec = load_spec(path)
    assert spec.service.app_dir == project / "src"
    assert spec.service.requests == project / "traffic.jsonl"
    dumped = spec.service.model_dump(mode="json")  # what the service receives as its config
    assert dumped["app"] == "pkg.main:app" and dumped["app_dir"] == str(project / "src")
    assert dumped["env"] == {} and dumped["interface"] == "auto"


def test_the_new_keys_left_at_their_defaults_keep_the_spec_hash():
    plain = parse_spec(HEAD)
    spelled = parse_spec(
        HEAD + "service:\n  app: null\n  app_dir: null\n  env: {}\n  interface: auto\n"
        "  requests: null\n"
    )
    assert spelled.spec_hash == plain.spec_hash
    for key in ("app", "app_dir", "env", "interface", "requests"):
        assert f'"{key}"' not in plain.canonical_json()


@pytest.mark.parametrize("path", sorted((ROOT / "specs").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_specs_keep_their_hash(path: Path):
    text = load_spec(path).canonical_json()
    assert '"app"' not in text and '"requests' not in text


def test_the_request_files_content_enters_the_hash(project: Path):
    path = spec_file(project, "  requests: traffic.jsonl\n")
    first = load_spec(path).spec_hash
    assert load_spec(path).spec_hash == first
    assert '"requests_sha256"' in load_spec(path).canonical_json()
    traffic = project / "traffic.jsonl"
    traffic.write_text(TRAFFIC.replace('"weight": 3', '"weight": 4'), encoding="utf-8")
    assert load_spec(path).spec_hash != first


def test_an_app_needs_a_request_file(project: Path):
    path = spec_file(project, "  app: pkg.main:app\n")
    assert errors(path) == [
        f"{path}:4: service: app needs requests: a request file (JSON lines) or a .har export "
        "of the traffic to send it"
    ]


@pytest.mark.parametrize(
    ("lines", "where", "message"),
    [
        ("  requests: traffic.jsonl\n  mix: {churn: 1}\n", "4: service", "mix cannot be given"),
        ("  requests: traffic.jsonl\n  payload: {seed: 3}\n", "4: service", "payload cannot be"),
        ("  app_dir: src\n", "4: service", "app_dir and interface belong to an app"),
        ("  interface: wsgi\n", "4: service", "app_dir and interface belong to an app"),
        ("  app: main\n  requests: traffic.jsonl\n", "5: service.app", "should match pattern"),
        (
            "  app: m:a\n  app_dir: nowhere\n  requests: traffic.jsonl\n",
            "6: service.app_dir",
            "no such folder",
        ),
        ("  requests: missing.jsonl\n", "5: service.requests", "no such file"),
        (
            "  app: m:a\n  interface: rsgi\n  requests: traffic.jsonl\n",
            "6: service.interface",
            "must be 'auto', 'asgi' or 'wsgi'",
        ),
    ],
)
def test_misplaced_or_bad_app_keys_are_one_line_each(
    project: Path, lines: str, where: str, message: str
):
    path = spec_file(project, lines)
    (line,) = errors(path)
    assert line.startswith(f"{path}:{where}: "), line
    assert message in line


def test_keep_churn_with_an_app_it_sizes_the_control(project: Path):
    path = spec_file(project, "  app: m:a\n  requests: traffic.jsonl\n  churn: {seed: 9}\n")
    spec = load_spec(path)
    assert spec.service.churn.seed == 9 and spec.service.fill_s is None


@pytest.mark.parametrize(
    "name",
    [
        "LD_PRELOAD",
        "MALLOC_CONF",
        "MALLOC_ARENA_MAX",
        "GLIBC_TUNABLES",
        "PYTHONMALLOC",
        "MIMALLOC_PURGE_DELAY",
        "TCMALLOC_X",
        "JEMALLOC_X",
        "ALLOCSTUDY_SERVICE_CONFIG",
    ],
)
def test_env_refuses_the_harnesss_variables_on_their_line(project: Path, name: str):
    path = spec_file(
        project, f"  app: m:a\n  requests: traffic.jsonl\n  env:\n    OK_VAR: '1'\n    {name}: x\n"
    )
    (line,) = errors(path)
    assert line.startswith(f"{path}:9: service.env.{name}: {name} is the harness's to set")


def test_env_takes_ordinary_variables_also_for_the_synthetic_service(project: Path):
    spec = load_spec(spec_file(project, "  env: {DJANGO_SETTINGS_MODULE: s.settings}\n"))
    assert spec.service.env == {"DJANGO_SETTINGS_MODULE": "s.settings"}
    assert not spec.service.hosted


def test_a_bad_request_file_fails_the_spec_with_the_request_files_lines(project: Path):
    (project / "traffic.jsonl").write_text(
        '{"method": "GET", "path": "/"}\n{"method": "GET", "path": "nope"}\n', encoding="utf-8"
    )
    path = spec_file(project, "  app: m:a\n  requests: traffic.jsonl\n")
    (line,) = errors(path)
    assert line.endswith(
        "traffic.jsonl:2: path: must start with one / (no scheme, no host), not 'nope'"
    )


def test_allocstudy_run_on_a_bad_request_file_exits_2_before_anything_starts(project: Path):
    (project / "traffic.jsonl").write_text(
        '{"method": "GET", "path": "/"}\n\n{"method": "GET", "path": "/${nope}"}\n',
        encoding="utf-8",
    )
    path = spec_file(project, "  app: m:a\n  requests: traffic.jsonl\n")
    out = project / "results"
    done = run_cli("run", str(path), "--out", str(out), timeout=120)
    assert done.returncode == 2, done.stderr
    assert "traffic.jsonl:3: path: unknown field ${nope}" in done.stderr
    assert not out.exists()  # no run folder: nothing started
    checked = run_cli("check", str(path), timeout=120)
    assert checked.returncode == 2 and "traffic.jsonl:3: path:" in checked.stderr


def test_a_hosted_apps_load_config_sends_its_requests_and_probes_the_harness_path(
    project: Path,
):
    spec = load_spec(spec_file(project, "  app: m:a\n  requests: traffic.jsonl\n"))
    config = LoadConfig.from_service_spec(spec.service, base_url="http://127.0.0.1:9")
    assert config.mix == {"read": 3.0, "write": 1.0}
    assert [r.name for r in config.requests or []] == ["read", "write"]
    assert config.health_path == HOSTED_HEALTH_PATH
    assert config.calls()["health"].path == HOSTED_HEALTH_PATH
    assert config.endpoint_names == ("health", "read", "write")
    recycled = spec.service.model_copy(update={"max_requests": 10})  # as service_for does
    assert recycled.request_mix is spec.service.request_mix


def test_a_request_file_on_the_synthetic_service_keeps_its_health_path(project: Path):
    (project / "traffic.jsonl").write_text(
        '{"method": "POST", "path": "/churn", "weight": 3}\n'
        '{"method": "POST", "path": "/json", "body_file": "order.json"}\n',
        encoding="utf-8",
    )
    (project / "order.json").write_text('{"items": []}', encoding="utf-8")
    spec = load_spec(spec_file(project, "  requests: traffic.jsonl\n  rate: 40\n  workers: 2\n"))
    assert spec.service.churn_rate_per_worker == pytest.approx(40 * 0.75 / 2)
    config = LoadConfig.from_service_spec(spec.service, base_url="http://127.0.0.1:9")
    assert config.health_path == "/health"
    assert config.mix == {"POST /churn": 3.0, "POST /json": 1.0}


def test_the_synthetic_services_load_config_is_unchanged():
    spec = parse_spec(HEAD)
    config = LoadConfig.from_service_spec(spec.service, base_url="http://127.0.0.1:9")
    assert config.requests is None and config.health_path == "/health"
    assert config.mix == {"churn": 2, "json": 1, "xml": 1}
    assert config.endpoint_names == ("churn", "health", "json", "xml")


def test_a_request_file_that_floods_churn_is_refused_like_the_built_in_mix(project: Path):
    (project / "traffic.jsonl").write_text(
        '{"method": "POST", "path": "/churn"}\n', encoding="utf-8"
    )
    path = spec_file(
        project, "  requests: traffic.jsonl\n  rate: 2000\n  churn: {live_buffers: 500}\n"
    )
    (line,) = errors(path)
    assert line.startswith(f"{path}:5: service.requests: at this rate the short-lived buffers")
