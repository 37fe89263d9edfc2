"""Structured reports sent to the hospital's PACS, each one acknowledged or reported failed.

Two ways PACS accept objects: DICOMweb STOW-RS (an HTTP POST of
``multipart/related; type="application/dicom"``; the answer lists each SOP
instance as stored or failed) and DIMSE C-STORE (an association, one
C-STORE per object; status 0x0000 is success, 0xB000-0xB007 a warning that
it was stored with coercion). Nothing is marked sent unless the PACS
acknowledged that very SOP Instance UID; each object's outcome is an audit
event. Connection failures, 5xx, 408 and 429 answers are retried
(``attempts``); a refusal is not. Those attempts are the only retries: the
DICOMweb client's own (up to five, with waits from a second) are switched
off for STOW-RS, so every attempt made is one counted and audited.

Only destinations named in the settings (``SIEVE_PACS__DESTINATIONS``) are
ever contacted: there is no default, so nothing leaves unless an admin said
where to.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom
from sqlalchemy.orm import Session

from db import audit
from jobs.settings import DestinationSettings, Settings
from worker import errors

logger = logging.getLogger(__name__)

Sender = Callable[[DestinationSettings, pydicom.Dataset], tuple[bool, str]]
_RETRY_PAUSE_S = 1.0
_C_STORE_WARNINGS = range(0xB000, 0xB008)
# HTTP answers that say "not now" rather than "no": request timeout, too many requests.
_STOW_RETRY_STATUSES = frozenset({408, 429})


@dataclass(frozen=True)
class SendOutcome:
    """What the destination said about one object."""

    destination: str
    path: Path
    sop_instance_uid: str
    sent: bool
    detail: str
    attempts: int


def destination(settings: Settings, name: str) -> DestinationSettings:
    """The configured destination ``name``; UsageError naming those there are."""
    try:
        return settings.pacs.destinations[name]
    except KeyError:
        known = ", ".join(sorted(settings.pacs.destinations)) or "none are configured"
        raise errors.UsageError(
            f"no PACS destination {name!r} (SIEVE_PACS__DESTINATIONS; known: {known})"
        ) from None


def send_objects(
    session: Session,
    settings: Settings,
    name: str,
    paths: Sequence[Path],
    job_id: int,
    actor: str,
) -> list[SendOutcome]:
    """Send each file in ``paths`` to destination ``name``; one audit event per object."""
    target = destination(settings, name)
    sender: Sender = _stow if target.protocol == "stow-rs" else _c_store
    outcomes = []
    for path in paths:
        outcome = _with_attempts(name, target, path, sender)
        outcomes.append(outcome)
        # Recorded as each object is answered: a send cut short still leaves its record.
        audit.append_event(session, _event(outcome, target, job_id, actor))
        session.commit()
    return outcomes


def _event(
    outcome: SendOutcome, target: DestinationSettings, job_id: int, actor: str
) -> audit.EventDraft:
    return audit.EventDraft(
        "dicom.sent" if outcome.sent else "dicom.send_failed",
        actor,
        job_id,
        details={
            "destination": outcome.destination,
            "protocol": target.protocol,
            "sop_instance_uid": outcome.sop_instance_uid,
            "file": outcome.path.name,
            "detail": outcome.detail,
            "attempts": outcome.attempts,
        },
    )


class _Retryable(Exception):
    """A connection-level failure: trying again may succeed."""


class _Refused(Exception):
    """The destination will not take this object (no SOP class agreed, a bad URL)."""


def _with_attempts(
    name: str, target: DestinationSettings, path: Path, sender: Sender
) -> SendOutcome:
    dataset = pydicom.dcmread(path)
    uid = str(dataset.SOPInstanceUID)
    detail = ""
    for attempt in range(1, target.attempts + 1):
        try:
            sent, detail = sender(target, dataset)
            return SendOutcome(name, path, uid, sent, detail, attempt)
        except _Refused as exc:
            return SendOutcome(name, path, uid, False, str(exc), attempt)
        except _Retryable as exc:
            detail = str(exc)
            logger.warning("sending %s to %s, attempt %d: %s", uid, name, attempt, detail)
            if attempt < target.attempts:
                time.sleep(_RETRY_PAUSE_S * attempt)
    return SendOutcome(name, path, uid, False, f"gave up: {detail}", target.attempts)


def dicomweb_client(target: DestinationSettings) -> tuple[Any, Any]:
    """A DICOMweb client for ``target`` and its HTTP session (close it when done).

    The session ignores proxy variables: the request goes straight to the
    PACS named, never through whatever the environment points at.
    """
    import requests
    from dicomweb_client.api import DICOMwebClient

    if target.protocol != "stow-rs" or not target.url:
        raise errors.UsageError("this needs a DICOMweb (stow-rs) destination with a url")
    session = requests.Session()
    session.trust_env = False
    if target.username:
        secret = target.password.get_secret_value() if target.password else ""
        session.auth = (target.username, secret)
    return DICOMwebClient(url=target.url, session=session, timeout=target.timeout_s), session


def _stow(target: DestinationSettings, dataset: pydicom.Dataset) -> tuple[bool, str]:
    import requests

    client, session = dicomweb_client(target)
    client.set_http_retry_params(retry=False)  # _with_attempts retries, counting each one
    try:
        answer = client.store_instances([dataset])
    except requests.exceptions.ConnectionError as exc:
        raise _Retryable(f"cannot connect to {target.url}: {exc}") from exc
    except requests.exceptions.Timeout as exc:
        raise _Retryable(f"no answer from {target.url} within {target.timeout_s:g} s") from exc
    except requests.exceptions.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else 0
        if status >= 500 or status in _STOW_RETRY_STATUSES:
            raise _Retryable(f"{target.url} answered HTTP {status}") from exc
        return False, f"refused: HTTP {status}{_failure_reason(exc.response)}"
    except requests.exceptions.RequestException as exc:
        # A malformed URL, a broken chunked answer, too many redirects.
        raise _Refused(f"the request to {target.url} failed: {exc}") from exc
    finally:
        session.close()
    stored = {
        str(item.ReferencedSOPInstanceUID) for item in answer.get("ReferencedSOPSequence", [])
    }
    failed = answer.get("FailedSOPSequence", [])
    if str(dataset.SOPInstanceUID) in stored and not failed:
        return True, "stored (STOW-RS)"
    reason = _reason_text(failed[0]) if failed else "not in the stored list"
    return False, f"refused by STOW-RS: failure reason {reason}"


def _failure_reason(response: Any) -> str:
    """The Failure Reason a refusing STOW-RS answer gives (PS3.18 10.5.3), if it gives one.

    A 409 carries the same Store Instances Response as a 200 would; without
    its reason an admin sees only "conflict".
    """
    content_type = response.headers.get("Content-Type", "") if response is not None else ""
    if "json" not in content_type:
        return ""
    try:
        answer = pydicom.Dataset.from_json(response.json())
    except (ValueError, KeyError, TypeError):  # not JSON, or not a DICOM JSON dataset
        return ""
    failed = answer.get("FailedSOPSequence", [])
    return f", failure reason {_reason_text(failed[0])}" if failed else ""


def _reason_text(failed: pydicom.Dataset) -> str:
    reason = failed.get("FailureReason")
    try:
        return "?" if reason is None else f"0x{int(reason):04X}"
    except (TypeError, ValueError):  # a PACS that puts text where a code belongs
        return repr(str(reason))[:80]


def _c_store(target: DestinationSettings, dataset: pydicom.Dataset) -> tuple[bool, str]:
    from pynetdicom import AE

    entity = AE(ae_title=target.calling_ae)
    entity.acse_timeout = entity.dimse_timeout = entity.network_timeout = target.timeout_s
    entity.add_requested_context(dataset.SOPClassUID, dataset.file_meta.TransferSyntaxUID)
    assert target.host is not None
    association = entity.associate(target.host, target.port, ae_title=target.called_ae)
    if not association.is_established:
        raise _Retryable(
            f"no association with {target.called_ae}@{target.host}:{target.port} "
            "(refused, aborted or unreachable)"
        )
    try:
        status = association.send_c_store(dataset)
    except ValueError as exc:  # pynetdicom: no accepted presentation context for the class
        raise _Refused(f"{target.called_ae} accepts no context for this object: {exc}") from exc
    finally:
        association.release()
    code = int(getattr(status, "Status", -1)) if status else -1
    if code == 0x0000:
        return True, "stored (C-STORE status 0x0000)"
    if code in _C_STORE_WARNINGS:
        return True, f"stored with a warning (C-STORE status 0x{code:04X})"
    if code == -1:
        raise _Retryable("the association ended before the C-STORE answered")
    return False, f"refused (C-STORE status 0x{code:04X})"
