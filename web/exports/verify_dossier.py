#!/usr/bin/env python3
"""Verify a Traject dossier: run `python3 verify.py` inside the unpacked folder (stdlib only).

Checks (1) every file against the sha256 in manifest.json, (2) manifest.json against SEAL.txt,
(3) each case's audit trail as a hash chain: hash(n) = sha256(hash(n-1) + canonical JSON of
event n), the first prev_hash being 64 zeros, and (4) each document's sha256 over its
canonical JSON content. Events and documents redacted under the retention policy keep their
hashes: an event counts as intact when a later erasure event commits to it. Events whose content is
confidential for the reader the pack was made for are marked "withheld": their link is checked. Exit 0 when
everything holds.
"""
import hashlib
import json
import sys
from pathlib import Path


def canonical(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256(data):
    return hashlib.sha256(data if isinstance(data, bytes) else data.encode("utf-8")).hexdigest()


def main(root):
    root = Path(root)
    problems = []
    withheld_count = 0
    manifest_bytes = (root / "manifest.json").read_bytes()
    seal = (root / "SEAL.txt").read_text().split()[-1]
    if sha256(manifest_bytes) != seal:
        problems.append("manifest.json does not match SEAL.txt")
    manifest = json.loads(manifest_bytes)
    for path, digest in sorted(manifest["files"].items()):
        target = root / path
        if not target.exists():
            problems.append(f"missing: {path}")
        elif sha256(target.read_bytes()) != digest:
            problems.append(f"changed: {path}")
    for case in manifest["cases"]:
        events = json.loads((root / case["audit"]).read_text())
        # Retention may have redacted events (content gone, hash kept): a later "pseudonymised" or
        # "erased" event lists (seq, original hash, hash of the redacted form) for each of them.
        committed = {}
        for ev in events:
            if ev["type"] in ("pseudonymised", "erased"):
                for seq, original, redacted in (ev["data"] or {}).get("redactions") or []:
                    if seq < ev["seq"]:
                        committed[seq] = (original, redacted)
        prev = "0" * 64
        for n, ev in enumerate(events, start=1):
            body = {k: ev[k] for k in ("case_id", "seq", "at", "actor_id", "type", "trigger", "from_state",
                                       "to_state", "data")}
            present = sha256(prev + canonical(body))
            redacted = committed.get(ev["seq"]) == (ev["hash"], present)
            # Withheld from this reader (confidential): the link is checked, the content cannot be.
            withheld = ev.get("withheld") is True
            withheld_count += withheld
            if ev["seq"] != n or ev["prev_hash"] != prev or (present != ev["hash"] and not redacted and not withheld):
                problems.append(f"case {case['id']}: audit event {ev['seq']} breaks the chain")
                break
            prev = ev["hash"]
        for doc in case["documents"]:
            record = json.loads((root / doc["json"]).read_text())
            if record["content"] == {"redacted": True}:
                continue  # erased under the retention policy; its sha256 is kept in the chain
            if sha256(canonical(record["content"])) != record["sha256"]:
                problems.append(f"case {case['id']}: document {record['id']} content does not match its sha256")
    for p in problems:
        print("FOUT / ERROR:", p)
    if withheld_count:
        print(f"{withheld_count} gebeurtenis(sen) met vertrouwelijke gegevens: alleen de ketenschakel gecontroleerd "
              "/ event(s) with confidential content: only their link in the chain was checked")
    print("OK: dossier intact" if not problems else f"{len(problems)} problem(s)")
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent))
