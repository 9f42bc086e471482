"""The generated protobuf/gRPC code in services/v1 matches protos/ (scripts/gen_protos.py --check)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

pytest.importorskip("grpc_tools", reason="grpcio-tools (the test extra) generates the code")


def check(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(root / "scripts" / "gen_protos.py"), "--check"],
        capture_output=True, text=True, timeout=120,
    )


def test_generated_code_is_up_to_date():
    done = check(REPO)
    assert done.returncode == 0, f"{done.stdout}{done.stderr}"


def test_check_fails_when_a_proto_changed(tmp_path: Path):
    # A copy of the generator, protos and generated code, with one field added to a proto: --check must notice.
    for rel in ("scripts/gen_protos.py", "protos", "services/v1"):
        src, dst = REPO / rel, tmp_path / rel
        if src.is_dir():
            shutil.copytree(src, dst)
        else:
            dst.parent.mkdir(parents=True)
            shutil.copy2(src, dst)
    assert check(tmp_path).returncode == 0
    records = tmp_path / "protos" / "linksyn" / "v1" / "records.proto"
    records.write_text(records.read_text().replace("  map<string, string> meta = 9;\n", "  map<string, string> meta = 9;\n  string added = 99;\n", 1))
    done = check(tmp_path)
    assert done.returncode == 1
    assert "records_pb2.py" in done.stdout and "stale generated code" in done.stdout


def test_check_fails_on_a_leftover_generated_file(tmp_path: Path):
    shutil.copytree(REPO / "protos", tmp_path / "protos")
    shutil.copytree(REPO / "services" / "v1", tmp_path / "services" / "v1")
    (tmp_path / "scripts").mkdir()
    shutil.copy2(REPO / "scripts" / "gen_protos.py", tmp_path / "scripts")
    (tmp_path / "services" / "v1" / "removed_pb2.py").write_text("# from a deleted proto\n")
    done = check(tmp_path)
    assert done.returncode == 1 and "removed_pb2.py" in done.stdout
