"""open_store loads only the store it opens: an embedded store (every test server, `kizuna up`)
does not load the IPFS client, whose httpx also loads its own CLI (click, rich, pygments)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

OPEN = """
import sys
from pathlib import Path
from kizuna.storage.store import StoreConfig, open_store
store = open_store(StoreConfig(kind="embedded", path=Path(sys.argv[1])))
tops = {name.split(".")[0] for name in sys.modules}
print(type(store).__name__, sorted(tops & {"httpx", "rich", "pygments"}),
      "kizuna.storage.ipfs" in sys.modules)
"""


def test_an_embedded_store_loads_no_http_client(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", OPEN, str(tmp_path / "store")],
                          capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.split() == ["EmbeddedStore", "[]", "False"], done.stdout + done.stderr
