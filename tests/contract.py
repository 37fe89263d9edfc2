"""What users rely on, written once for every test that checks it (from the README's CLI contract)."""

from __future__ import annotations

# Every JSONL row of `sieve results` always has these, whatever the item's state.
JSONL_ROW_FIELDS = (
    "job_id",
    "run_id",
    "item_id",
    "path",
    "sha256",
    "state",
    "error_code",
    "error_message",
    "result",
)
