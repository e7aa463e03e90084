"""Export a hospital's data with FHIR Bulk Data Access ``$export``, as an analytics job would.

    python docs/examples/bulk_export.py --key hk_… --secret hks_… \\
        --server http://127.0.0.1:8000 --hospital sandbox [--level patient] [--type Patient,Observation]

It gets a token with the key (client credentials), kicks off the export (``Prefer:
respond-async``), polls the status URL as ``Retry-After`` says, and downloads every file of the
manifest into ``export/`` (one ndjson file per type and part), printing what it got.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import requests

LEVELS = {"system": "$export", "patient": "Patient/$export"}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--key", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--server", default="http://127.0.0.1:8000")
    parser.add_argument("--hospital", default="sandbox")
    parser.add_argument("--level", choices=LEVELS, default="system")
    parser.add_argument("--type", help="resource types, comma-separated (all by default)")
    parser.add_argument("--out", type=Path, default=Path("export"))
    args = parser.parse_args()

    token = requests.post(
        f"{args.server}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(args.key, args.secret),
        timeout=30,
    )
    token.raise_for_status()
    auth = {"Authorization": f"Bearer {token.json()['access_token']}"}

    base = f"{args.server}/fhir/{args.hospital}"
    params = {"_type": args.type} if args.type else {}
    kickoff = requests.get(
        f"{base}/{LEVELS[args.level]}",
        params=params,
        headers={**auth, "Accept": "application/fhir+json", "Prefer": "respond-async"},
        timeout=30,
    )
    if kickoff.status_code != 202:
        raise SystemExit(f"kick-off refused ({kickoff.status_code}): {kickoff.text}")
    status_url = kickoff.headers["Content-Location"]
    print(f"kicked off: {status_url}")

    while True:
        status = requests.get(status_url, headers={**auth, "Accept": "application/json"}, timeout=30)
        if status.status_code != 202:
            break
        print(f"  {status.headers.get('X-Progress', 'in progress')}")
        time.sleep(int(status.headers.get("Retry-After", "1")))
    if status.status_code != 200:
        raise SystemExit(f"the export failed ({status.status_code}): {status.text}")
    manifest = status.json()
    print(f"done: transactionTime {manifest['transactionTime']}")

    args.out.mkdir(parents=True, exist_ok=True)
    for entry in manifest["output"] + manifest["error"]:
        target = args.out / entry["url"].rsplit("/", 1)[1]
        with requests.get(
            entry["url"], headers={**auth, "Accept": "application/fhir+ndjson"}, stream=True, timeout=60
        ) as download:
            download.raise_for_status()
            with target.open("wb") as file:
                for chunk in download.iter_content(64 * 1024):
                    file.write(chunk)
        print(f"  {entry['type']}: {entry['count']} resources -> {target}")


if __name__ == "__main__":
    main()
