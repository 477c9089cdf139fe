"""The docs stay true to the code: endpoints, settings, and examples that run on recent data."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from api.app import BLUEPRINTS
from settings import Settings
from tests.helpers import load_btc_history
from workers.main import build_worker
from workers.queues import BACKTESTS

ROOT = Path(__file__).resolve().parents[2]
API_MD = (ROOT / "docs/api.md").read_text()
README = (ROOT / "README.md").read_text()
METHODS = ("get", "post", "put", "patch", "delete")
DAY_MS = 86_400_000


def _section(text: str, heading: str) -> str:
    """The text of a ``## heading`` section, up to the next heading of that level."""
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def test_the_endpoint_index_in_api_md_matches_the_openapi_document(client: FlaskClient) -> None:
    spec = client.get("/api/openapi.json").json
    operations = {
        (
            method.upper(),
            path,
            op["operationId"],
            "public" if op.get("security") == [] else "bearer",
        )
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
        if method in METHODS
    }
    row = re.compile(
        r"^\| `(GET|POST|PUT|PATCH|DELETE) (/\S+)` \| `(\w+)` \| (public|bearer) \|", re.M
    )
    documented = set(row.findall(_section(API_MD, "Endpoints")))
    assert operations - documented == set(), "operations missing from docs/api.md"
    assert documented - operations == set(), "docs/api.md lists operations the API lacks"


def test_architecture_md_names_every_blueprint_with_its_prefix() -> None:
    text = " ".join((ROOT / "docs/architecture.md").read_text().split())
    assert "`api.app.BLUEPRINTS`" in text
    for blueprint in BLUEPRINTS:
        assert f"`{blueprint.name}` (`{blueprint.url_prefix}`)" in text


def test_every_event_in_the_monitoring_table_is_logged_by_the_code() -> None:
    table = _section((ROOT / "docs/monitoring.md").read_text(), "Logs")
    events = {
        name
        for line in table.splitlines()
        if line.startswith("| `")
        for name in re.findall(r"`([a-z_*]+)`", line.split("|")[1])
    }
    assert "backtest_crashed" in events
    code = "\n".join(
        path.read_text()
        for folder in ("api", "workers", "models")
        for path in (ROOT / folder).rglob("*.py")
    )
    logged = set(re.findall(r"""log\.\w+\(\s*["']([a-z_]+)["']""", code))
    for event in events:
        pattern = re.compile(event.replace("*", "[a-z_]+") + "$")
        assert any(pattern.match(name) for name in logged), f"{event} is never logged"


class _Recording(dict[str, str]):
    """An empty environment that remembers every name looked up in it."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def get(self, key: str, default: Any = None) -> Any:
        self.names.append(key)
        return default


def _readme_variables() -> set[str]:
    """Names in the first column of the README's configuration table (``A_USER``, ``_ADMIN``
    abbreviations expanded)."""
    names: set[str] = set()
    for line in _section(README, "Configuration").splitlines():
        if not line.startswith("| `"):
            continue
        cell = line.split("|")[1]
        first = ""
        for token in re.findall(r"`([A-Z_]+)`", cell):
            if token.startswith("_") and first:
                names.add(first.rsplit("_", 1)[0] + token)
            else:
                first = token
                names.add(token)
    return names


def test_every_setting_read_from_the_environment_is_in_the_readme_table() -> None:
    env = _Recording()
    Settings.from_env(env)
    read = set(env.names)
    assert {"DATABASE_URL", "BACKTEST_QUOTA_MODERATOR"} <= read  # the recorder works
    missing = read - _readme_variables()
    assert missing == set(), f"settings missing from the README's configuration table: {missing}"


def test_every_settings_field_is_read_from_the_environment_or_a_known_constant() -> None:
    env = _Recording()
    Settings.from_env(env)
    renamed = {"env": "BOTYARD_ENV", "proxy_hops": "TRUSTED_PROXY_HOPS"}
    constants = {"jwt_algorithm", "db_connect_timeout", "redis_timeout"}  # not configurable
    unread = {
        field.name
        for field in dataclasses.fields(Settings)
        if renamed.get(field.name, field.name.upper()) not in env.names
    }
    assert unread == constants


# --- the curl examples of "Strategies, bots and backtests", run by bash against the test app ---

# Stand-ins for curl and jq: curl records the request (method, path, body) as a JSON line and
# jq hands out a placeholder id, which the test maps to the real ids as it replays.
_SHIMS = r"""
curl() {
  local method=GET url="" body=""
  while [ $# -gt 0 ]; do
    case "$1" in
      -X) method="$2"; shift 2 ;;
      -d) body="$2"; shift 2 ;;
      -H) shift 2 ;;
      -*) shift ;;
      *) url="$1"; shift ;;
    esac
  done
  python3 -c 'import json, sys; print(json.dumps(sys.argv[1:]))' "$method" "$url" "$body" \
    >> "$RECORD"
  echo '{}'
}
jq() { cat > /dev/null; echo "@ID@"; }
API=/api/v1
ACCESS=token
"""


def _example_requests(tmp_path: Path) -> list[tuple[str, str, str]]:
    block = _section(API_MD, "Strategies, bots and backtests").split("```sh\n", 1)[1]
    script = _SHIMS + block.split("\n```", 1)[0]
    record = tmp_path / "requests.jsonl"
    subprocess.run(
        ["bash", "-euc", script], env={"RECORD": str(record), "PATH": "/usr/bin:/bin"}, check=True
    )
    return [tuple(json.loads(line)) for line in record.read_text().splitlines()]  # type: ignore[misc]


@pytest.fixture
def recent_market(db: Any) -> Iterator[None]:
    """Like the seed: BTC-USD's 1m history over the last 15 days, up to the current minute."""
    now = int(time.time() * 1000) // 60_000 * 60_000
    load_btc_history(now - 15 * DAY_MS, now)
    db.commit()
    yield


def test_the_bot_and_backtest_examples_work_on_recent_data(
    app: Flask,
    client: FlaskClient,
    owner: dict[str, str],
    recent_market: None,
    tmp_path: Path,
) -> None:
    requests = _example_requests(tmp_path)
    assert [(m, p.split("?")[0]) for m, p, _ in requests] == [
        ("GET", "/api/v1/strategies"),
        ("POST", "/api/v1/bots"),
        ("GET", "/api/v1/bots"),
        ("PATCH", "/api/v1/bots/@ID@"),
        ("PATCH", "/api/v1/bots/@ID@"),
        ("POST", "/api/v1/backtests"),
        ("GET", "/api/v1/backtests/@ID@"),
        ("GET", "/api/v1/backtests/@ID@/trades"),
        ("GET", "/api/v1/backtests/@ID@/equity"),
        ("GET", "/api/v1/backtests/@ID@/equity"),
        ("DELETE", "/api/v1/backtests/@ID@"),
    ]
    ids: dict[str, str] = {}
    for method, documented_path, body in requests:
        path = re.sub(r"/(bots|backtests)/@ID@", lambda m: f"/{m[1]}/{ids[m[1]]}", documented_path)
        payload: Mapping[str, Any] | None = None
        if body:
            payload = json.loads(body.replace("@ID@", ids.get("bots", "@ID@")))
        response = client.open(path, method=method, json=payload, headers=owner)
        if method == "DELETE":  # the backtest has finished by then: the docs say 409
            assert response.status_code == 409, response.json
            continue
        assert response.status_code in (200, 201, 202), (method, path, response.json)
        if method == "POST":
            ids[path.rsplit("/", 1)[1]] = response.json["id"]
        if path.endswith("/backtests") and method == "POST":
            assert build_worker(app, (BACKTESTS,), simple=True).work(burst=True)
            done = client.get(f"/api/v1/backtests/{ids['backtests']}", headers=owner).json
            assert done["status"] == "succeeded", done
            assert done["bars"] >= 14 * 24 - 1  # 14 days of 1h bars, the last maybe forming
    bot = client.get(f"/api/v1/bots/{ids['bots']}", headers=owner).json
    assert bot["schedule"]["windows"][0]["end"] == "17:30"
    assert bot["risk"]["stop_loss"] == 0.05 and bot["risk"]["trailing_stop"] == 0.08  # merged
