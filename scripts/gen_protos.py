"""Generate the Python code for protos/linksyn/v1/*.proto into services/v1/ (importable as linksyn.v1).

Run: python scripts/gen_protos.py            (writes the files)
     python scripts/gen_protos.py --check    (exit 1 if the committed files are stale; what the test runs)
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
OUT_DIR = ROOT / "services" / "v1"


def generate(into: Path) -> list[Path]:
    """Run grpc_tools.protoc on every .proto; return the generated files under `into`."""
    from grpc_tools import protoc
    import grpc_tools

    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in (PROTO_ROOT / "linksyn" / "v1").glob("*.proto"))
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"--python_out={into}",
        f"--pyi_out={into}",
        f"--grpc_python_out={into}",
        *protos,
    ]
    if protoc.main(args) != 0:
        raise SystemExit(f"protoc failed on {protos}")
    gen = into / "linksyn" / "v1"
    (gen / "__init__.py").write_text('"""Generated protobuf and gRPC code (scripts/gen_protos.py); do not edit."""\n')
    return sorted(gen.iterdir())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="compare with the committed files instead of writing")
    opts = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        files = generate(Path(tmp))
        if opts.check:
            stale = [f.name for f in files if not (OUT_DIR / f.name).exists() or not filecmp.cmp(f, OUT_DIR / f.name, shallow=False)]
            extra = sorted({p.name for p in OUT_DIR.glob("*.py*")} - {f.name for f in files})
            if stale or extra:
                print(f"stale generated code in {OUT_DIR}: differs={stale} extra={extra}; run python scripts/gen_protos.py")
                return 1
            print(f"generated code in {OUT_DIR} is up to date ({len(files)} files)")
            return 0
        if OUT_DIR.exists():
            shutil.rmtree(OUT_DIR)
        OUT_DIR.mkdir(parents=True)
        for f in files:
            shutil.copy2(f, OUT_DIR / f.name)
        print(f"wrote {len(files)} files to {OUT_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
