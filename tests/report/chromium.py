"""Headless Chromium on a run folder served on loopback, for the report tests."""

import functools
import http.server
import json
import re
import subprocess
import threading
from pathlib import Path


def probe_page(page: str, result: str) -> str:
    """A page that loads ``page`` (report.html, compare.html) in an iframe and, once it has loaded,
    prints RESULT and the JSON of the script expression ``result``, which reads ``doc`` (the
    loaded page's document) and ``imgs`` (its images)."""
    return f"""<!doctype html><html><body><pre id=out>pending</pre>
<iframe id=f src="{page}" width=1200 height=900></iframe>
<script>
document.getElementById('f').addEventListener('load', () => {{
  const doc = document.getElementById('f').contentDocument;
  const imgs = [...doc.images];
  document.getElementById('out').textContent = 'RESULT ' + JSON.stringify({result});
}});
</script></body></html>"""


def render(folder, chromium: str, probe: str) -> tuple[dict, str]:
    """Serve ``folder`` on loopback, open ``probe`` (a page that loads report.html and prints
    RESULT {json}) in headless Chromium, and return that JSON and Chromium's log."""
    folder = Path(folder)
    (folder / "probe.html").write_text(probe)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=folder)
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={folder}/.chrome",
             "--enable-logging=stderr", "--v=0", "--virtual-time-budget=10000", "--dump-dom",
             f"http://127.0.0.1:{server.server_port}/probe.html"],
            capture_output=True, text=True, timeout=120)
    finally:
        server.shutdown()
    found = re.search(r"RESULT (\{.*?\})</pre>", result.stdout)
    assert found, result.stdout[-2000:] + result.stderr[-2000:]
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&")), result.stderr
