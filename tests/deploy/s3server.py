"""An S3-compatible server for the test broker's storage: moto's S3 (its own virtualenv, .tools/s3, made by
scripts/install_podman.sh) served by werkzeug one request at a time on 127.0.0.1.

One request at a time, because Tansu keeps its metadata (producer sequence numbers, watermarks, group offsets) in
objects that it updates by compare-and-set (PUT with If-Match / If-None-Match): the server must refuse a stale write
with 412, and checking the ETag and storing the object must not interleave with another request. (s3rver ignores
If-Match on PUT: concurrent idempotent producers then lose each other's sequence numbers and Tansu answers
OutOfOrderSequenceNumber.)

Usage: .tools/s3/bin/python tests/deploy/s3server.py PORT BUCKET
"""

import sys
import threading
import urllib.request

from moto.moto_server.werkzeug_app import create_backend_app
from werkzeug.serving import make_server


def main() -> None:
    port, bucket = int(sys.argv[1]), sys.argv[2]
    app = create_backend_app("s3")
    server = make_server("127.0.0.1", port, app, threaded=False)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/{bucket}", method="PUT")
    urllib.request.urlopen(req, timeout=10).read()
    print(f"s3: serving bucket {bucket} on 127.0.0.1:{port}", flush=True)
    t.join()


if __name__ == "__main__":
    main()
