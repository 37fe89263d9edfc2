"""Sieve's tables.

The shape follows what later work needs without rewrites:

* ``jobs`` hold what was submitted; ``items`` are its distinct input files
  (one row per content hash within a job) and ``item_sources`` every path that
  pointed at that content, so an exact duplicate is processed once and reported
  under each of its paths.
* ``runs`` are first-class: a job can be run again (failed items only, a new
  prompt, a new model) and both runs stay. Per-run item state lives in
  ``item_runs``; ``results`` are keyed by ``(run_id, item_id)`` and carry their
  full provenance.
* ``segments`` are what extraction read from an item (pages, frames, audio
  chunks); they belong to the item, so a re-run with a new prompt reuses them.
* ``audit_events`` is append-only and hash-chained per job (see ``db.audit``).
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from db.base import Base, utcnow


class ItemState(str, enum.Enum):
    """Where one item stands in one run."""

    pending = "pending"  # recorded, not yet handed to the broker
    queued = "queued"  # a task message was published for it
    running = "running"  # a worker holds its lease
    done = "done"  # a result is stored
    failed = "failed"  # stopped by an error; error_code says which
    unsupported = "unsupported"  # no extractor or model capability for it
    cancelled = "cancelled"  # the run was cancelled before it finished


FINAL_ITEM_STATES = frozenset(
    {ItemState.done, ItemState.failed, ItemState.unsupported, ItemState.cancelled}
)


class RunState(str, enum.Enum):
    """Where a run stands as a whole."""

    pending = "pending"  # created, no item started
    running = "running"  # some items are not final yet
    completed = "completed"  # every item is final (some may have failed)
    cancelled = "cancelled"  # stopped by a user


def _enum_column(enum_cls: type[enum.Enum]) -> Enum:
    # Stored as text with a CHECK constraint: portable to SQLite and easy to
    # extend with a migration (a native Postgres enum is not).
    return Enum(
        enum_cls,
        native_enum=False,
        create_constraint=True,
        length=16,
        values_callable=lambda members: [member.value for member in members],
        name=f"{enum_cls.__name__.lower()}",
        validate_strings=True,
    )


class Job(Base):
    """A set of input files submitted together under one name."""

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    submitted_by: Mapped[str] = mapped_column(String(200))  # OS user (later: API user)
    submitted_host: Mapped[str] = mapped_column(String(255))
    input_roots: Mapped[list[Any]] = mapped_column()  # the paths the user named
    file_count: Mapped[int] = mapped_column(Integer, default=0)  # paths, duplicates included
    item_count: Mapped[int] = mapped_column(Integer, default=0)  # distinct contents
    paused_at: Mapped[dt.datetime | None] = mapped_column()  # workers claim nothing while set
    # How top-level documents are de-duplicated: "global", "custodian" or "none"
    # (see worker.families.dedup_key).
    dedup_mode: Mapped[str] = mapped_column(String(16), default="global", server_default="global")

    runs: Mapped[list[Run]] = relationship(back_populates="job", order_by="Run.number")
    items: Mapped[list[Item]] = relationship(back_populates="job", order_by="Item.id")


class Run(Base):
    """One pass of a task over a job's items, with the model it asked for."""

    __tablename__ = "runs"
    __table_args__ = (UniqueConstraint("job_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="RESTRICT"), index=True)
    number: Mapped[int] = mapped_column(Integer)  # 1 for the first run of a job
    parent_run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))  # re-runs
    state: Mapped[RunState] = mapped_column(_enum_column(RunState), default=RunState.pending)
    executor: Mapped[str] = mapped_column(String(32))  # "in_process" or "celery"
    task_name: Mapped[str] = mapped_column(String(64))
    task_version: Mapped[str] = mapped_column(String(32))
    task_options: Mapped[dict[str, Any]] = mapped_column()  # labels, schema, free prompt
    prompt_hash: Mapped[str] = mapped_column(String(64))  # template + schema
    model_name: Mapped[str] = mapped_column(String(300))
    model_path: Mapped[str] = mapped_column(Text)
    model_settings: Mapped[dict[str, Any]] = mapped_column()
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column()
    finished_at: Mapped[dt.datetime | None] = mapped_column()
    # A re-run: the run it re-ran, its --failed-only / --where, and how many
    # items that selected (None for a job's first run: every item).
    selection: Mapped[dict[str, Any] | None] = mapped_column()
    estimate: Mapped[dict[str, Any] | None] = mapped_column()  # shown before it ran
    priority: Mapped[str] = mapped_column(String(8), default="normal", server_default="normal")
    deterministic: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    job: Mapped[Job] = relationship(back_populates="runs")


class Item(Base):
    """One document of a job: a submitted file, or a message or attachment found inside one.

    Top-level documents are de-duplicated by ``dedup_key`` (one item per key in
    a job, every path that pointed at it in ``item_sources``); a child inside a
    family (an attachment) has no key: it is never removed from its family,
    whatever else in the job holds the same bytes.
    """

    __tablename__ = "items"
    __table_args__ = (UniqueConstraint("job_id", "dedup_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="RESTRICT"), index=True)
    path: Mapped[str] = mapped_column(Text)  # first path seen; all are in item_sources
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    md5: Mapped[str] = mapped_column(String(32))
    media_type: Mapped[str] = mapped_column(String(127))
    stored_path: Mapped[str] = mapped_column(Text)  # relative to the objects directory
    extractor: Mapped[str | None] = mapped_column(String(64))  # "name/version", once extracted
    page_count: Mapped[int | None] = mapped_column(Integer)
    doc_metadata: Mapped[dict[str, Any] | None] = mapped_column()  # title, author, dates…
    # Patient/person identifiers (DICOM PS3.15 basic profile): never in prompts by default.
    identifiers: Mapped[dict[str, Any] | None] = mapped_column()
    custodian: Mapped[str | None] = mapped_column(String(200))  # whose files these were
    # Families: the container or message this came out of (None: submitted as
    # is), the top-level document of its family (itself for a top-level one),
    # its depth below what was submitted and its place among its siblings.
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("items.id", ondelete="RESTRICT"))
    family_id: Mapped[int | None] = mapped_column(Integer, index=True)
    level: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    ordinal: Mapped[int | None] = mapped_column(Integer)  # 1-based among its siblings
    dedup_key: Mapped[str | None] = mapped_column(String(200))  # None for a family's children
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    job: Mapped[Job] = relationship(back_populates="items")
    sources: Mapped[list[ItemSource]] = relationship(
        back_populates="item", order_by="ItemSource.id", foreign_keys="ItemSource.item_id"
    )
    segments: Mapped[list[StoredSegment]] = relationship(
        back_populates="item", order_by="(StoredSegment.kind, StoredSegment.index)"
    )


class ItemSource(Base):
    """A path the user submitted, pointing at an item's content."""

    __tablename__ = "item_sources"
    __table_args__ = (UniqueConstraint("job_id", "path"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="RESTRICT"))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="RESTRICT"), index=True)
    path: Mapped[str] = mapped_column(Text)
    custodian: Mapped[str | None] = mapped_column(String(200))  # whose copy this path was
    # The container this path was found in (a mailbox, a message), None when submitted.
    container_item_id: Mapped[int | None] = mapped_column(ForeignKey("items.id"))
    # "member": one instance file of a series or study item (its content is the item's
    # manifest, not this file's); None: the item's own file or a duplicate of it.
    role: Mapped[str | None] = mapped_column(String(16))

    item: Mapped[Item] = relationship(back_populates="sources", foreign_keys=[item_id])


class ItemRun(Base):
    """The state of one item in one run, with the lease of the worker on it."""

    __tablename__ = "item_runs"
    __table_args__ = (
        UniqueConstraint("run_id", "item_id"),
        Index("ix_item_runs_run_id_state", "run_id", "state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="RESTRICT"))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="RESTRICT"), index=True)
    state: Mapped[ItemState] = mapped_column(_enum_column(ItemState), default=ItemState.pending)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    error_detail: Mapped[str | None] = mapped_column(Text)  # traceback of internal errors
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(255))  # host:pid of the worker
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column()
    queued_at: Mapped[dt.datetime | None] = mapped_column()
    started_at: Mapped[dt.datetime | None] = mapped_column()
    finished_at: Mapped[dt.datetime | None] = mapped_column()
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    item: Mapped[Item] = relationship()
    run: Mapped[Run] = relationship()


class StoredSegment(Base):
    """One page, image, frame or audio chunk read from an item."""

    __tablename__ = "segments"
    __table_args__ = (UniqueConstraint("item_id", "kind", "index"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="RESTRICT"))
    kind: Mapped[str] = mapped_column(String(16))  # worker.extractors.base.SegmentKind
    index: Mapped[int] = mapped_column(Integer)  # 0-based within (item, kind)
    label: Mapped[str] = mapped_column(String(64))  # what results cite: "page 3"
    text: Mapped[str] = mapped_column(Text, default="")
    artifact_path: Mapped[str | None] = mapped_column(Text)  # relative to artifacts dir
    start_seconds: Mapped[float | None] = mapped_column(Float)
    end_seconds: Mapped[float | None] = mapped_column(Float)
    needs_ocr: Mapped[bool] = mapped_column(Boolean, default=False)
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)

    item: Mapped[Item] = relationship(back_populates="segments")


class Result(Base):
    """What the model produced for one item in one run, and how."""

    __tablename__ = "results"
    __table_args__ = (UniqueConstraint("run_id", "item_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="RESTRICT"))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="RESTRICT"), index=True)
    output: Mapped[dict[str, Any]] = mapped_column()  # the task's JSON, schema-valid
    # SHA-256 of the output's canonical JSON: equal hashes, equal answers.
    output_sha256: Mapped[str | None] = mapped_column(String(64))
    citations: Mapped[list[Any]] = mapped_column()  # segment labels the output rests on
    partials: Mapped[list[Any]] = mapped_column()  # map step outputs, each with its pages
    # provenance
    input_sha256: Mapped[str] = mapped_column(String(64))
    model_name: Mapped[str] = mapped_column(String(300))
    model_sha256: Mapped[str] = mapped_column(String(64))
    task_name: Mapped[str] = mapped_column(String(64))
    task_version: Mapped[str] = mapped_column(String(32))
    prompt_hash: Mapped[str] = mapped_column(String(64))
    sampling: Mapped[dict[str, Any]] = mapped_column()  # temperature, top_p, max tokens, n_ctx
    # llama-cpp-python, ggml (version and commit) and the grammar engine's version.
    runtime: Mapped[dict[str, Any] | None] = mapped_column()
    seed: Mapped[int] = mapped_column(BigInteger)
    prompt_tokens: Mapped[int] = mapped_column(Integer)
    completion_tokens: Mapped[int] = mapped_column(Integer)
    model_calls: Mapped[int] = mapped_column(Integer)
    timings: Mapped[dict[str, Any]] = mapped_column()  # seconds per stage
    extractor: Mapped[str] = mapped_column(String(64))
    # What the model was given: modalities, pictures available and sent, and a
    # note when part of the item could not be shown to it (a model that cannot see).
    inputs: Mapped[dict[str, Any] | None] = mapped_column()
    # Each quote the answer gives, checked against its cited page (worker/grounding.py);
    # None when the answer quotes nothing.
    grounding: Mapped[dict[str, Any] | None] = mapped_column()
    produced_by: Mapped[str] = mapped_column(String(255))  # worker host:pid
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class EmailMessage(Base):
    """The headers of an e-mail item, its identity hashes and its place in a thread.

    Written when the message is extracted; ``thread_*`` and ``inclusive`` are
    recomputed for the whole job by :func:`worker.email_threads.rethread_job`.
    """

    __tablename__ = "email_messages"

    item_id: Mapped[int] = mapped_column(
        ForeignKey("items.id", ondelete="RESTRICT"), primary_key=True
    )
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="RESTRICT"), index=True)
    message_id: Mapped[str | None] = mapped_column(Text)  # without angle brackets
    in_reply_to: Mapped[str | None] = mapped_column(Text)
    references: Mapped[list[Any]] = mapped_column(default=list)  # oldest first
    thread_index: Mapped[str | None] = mapped_column(Text)  # Outlook's, base64 as sent
    subject: Mapped[str | None] = mapped_column(Text)
    sender: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[dt.datetime | None] = mapped_column()
    # The normalised e-mail hash (see worker.email_identity) and the EDRM Message-ID hash.
    email_hash: Mapped[str] = mapped_column(String(64), index=True)
    message_id_hash: Mapped[str | None] = mapped_column(String(32))
    # MD5 of the body reduced to letters and digits; what inclusiveness compares.
    body_digest: Mapped[str] = mapped_column(String(32))
    body_letters: Mapped[str] = mapped_column(Text, default="")  # that reduced body
    attachment_hashes: Mapped[list[Any]] = mapped_column(default=list)
    thread_id: Mapped[str | None] = mapped_column(String(64), index=True)
    thread_position: Mapped[int | None] = mapped_column(Integer)  # 0 for the thread's root
    inclusive: Mapped[bool | None] = mapped_column(Boolean)
    included_in_item_id: Mapped[int | None] = mapped_column(Integer)  # a later one quoting all


class DicomPatient(Base):
    """A patient of an indexed archive; who it is stays in ``identifiers``, apart."""

    __tablename__ = "dicom_patients"
    __table_args__ = (UniqueConstraint("job_id", "patient_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="RESTRICT"))
    # SHA-256 of the job, IssuerOfPatientID and PatientID: groups without naming.
    patient_key: Mapped[str] = mapped_column(String(64))
    identifiers: Mapped[dict[str, Any] | None] = mapped_column()  # PatientID, name, birth date


class DicomStudy(Base):
    """A study: its series, and the item reviewing it when the unit is the study."""

    __tablename__ = "dicom_studies"
    __table_args__ = (UniqueConstraint("job_id", "study_instance_uid"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="RESTRICT"))
    patient_id: Mapped[int] = mapped_column(ForeignKey("dicom_patients.id", ondelete="RESTRICT"))
    study_instance_uid: Mapped[str] = mapped_column(String(64))
    study_date: Mapped[str | None] = mapped_column(String(8))  # DICOM DA, YYYYMMDD
    modalities: Mapped[list[Any]] = mapped_column(default=list)
    identifiers: Mapped[dict[str, Any] | None] = mapped_column()  # accession number, study ID
    item_id: Mapped[int | None] = mapped_column(ForeignKey("items.id", ondelete="RESTRICT"))


class DicomSeries(Base):
    """A series: its instances, and the item reviewing it when the unit is the series."""

    __tablename__ = "dicom_series"
    __table_args__ = (UniqueConstraint("job_id", "series_instance_uid"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="RESTRICT"))
    study_id: Mapped[int] = mapped_column(ForeignKey("dicom_studies.id", ondelete="RESTRICT"))
    series_instance_uid: Mapped[str] = mapped_column(String(64))
    series_number: Mapped[int | None] = mapped_column(Integer)
    modality: Mapped[str | None] = mapped_column(String(16))
    description: Mapped[str | None] = mapped_column(Text)
    body_part: Mapped[str | None] = mapped_column(String(64))
    frame_of_reference_uid: Mapped[str | None] = mapped_column(String(64))
    series_date: Mapped[str | None] = mapped_column(String(8))  # DICOM DA, YYYYMMDD
    instance_count: Mapped[int] = mapped_column(Integer, default=0)
    item_id: Mapped[int | None] = mapped_column(ForeignKey("items.id", ondelete="RESTRICT"))


class DicomInstance(Base):
    """One instance file as the header-only pass read it (no pixel was decoded)."""

    __tablename__ = "dicom_instances"
    __table_args__ = (Index("ix_dicom_instances_job_sop", "job_id", "sop_instance_uid"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="RESTRICT"))
    series_id: Mapped[int] = mapped_column(
        ForeignKey("dicom_series.id", ondelete="RESTRICT"), index=True
    )
    # The item that reviews it: its own (unit instance), or its series' or study's.
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="RESTRICT"))
    path: Mapped[str] = mapped_column(Text)  # first path seen
    sha256: Mapped[str] = mapped_column(String(64))
    sop_instance_uid: Mapped[str] = mapped_column(String(64))
    sop_class_uid: Mapped[str] = mapped_column(String(64))
    transfer_syntax_uid: Mapped[str | None] = mapped_column(String(64))
    number_of_frames: Mapped[int] = mapped_column(Integer, default=1)
    rows: Mapped[int | None] = mapped_column(Integer)
    columns: Mapped[int | None] = mapped_column(Integer)
    instance_number: Mapped[int | None] = mapped_column(Integer)
    acquisition_number: Mapped[int | None] = mapped_column(Integer)
    acquisition_date: Mapped[str | None] = mapped_column(String(8))  # DICOM DA, YYYYMMDD
    content_date: Mapped[str | None] = mapped_column(String(8))  # when the image was made
    image_type: Mapped[list[Any]] = mapped_column(default=list)
    image_position: Mapped[list[Any] | None] = mapped_column()  # mm, patient coordinates
    image_orientation: Mapped[list[Any] | None] = mapped_column()  # row and column cosines


class DeidMapping(Base):
    """What de-identification replaced, original beside replacement: the re-identification key.

    Read only through ``sieve deid mapping``, which records each read as an
    audit event; never exported with the de-identified copy.
    """

    __tablename__ = "deid_mappings"
    __table_args__ = (UniqueConstraint("job_id", "kind", "original"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="RESTRICT"))
    kind: Mapped[str] = mapped_column(String(16))  # "uid", "patient" or "date_offset"
    original: Mapped[str] = mapped_column(Text)
    replacement: Mapped[str] = mapped_column(Text)
    study_instance_uid: Mapped[str | None] = mapped_column(String(64))  # the original study
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class UserRole(str, enum.Enum):
    """What a person signed in to the console or the API may do."""

    admin = "admin"  # submit, re-run, pause, cancel; manage users and grants
    reviewer = "reviewer"  # read the jobs granted to them and record decisions on items
    auditor = "auditor"  # read audit trails and reports, verify chains; no document content


class User(Base):
    """A local account: a name, a role and an Argon2 hash of the password."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[UserRole] = mapped_column(_enum_column(UserRole))
    password_hash: Mapped[str] = mapped_column(Text)  # argon2id, parameters in the hash
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200))
    disabled_at: Mapped[dt.datetime | None] = mapped_column()  # no login, no token while set


class ApiToken(Base):
    """A bearer token for the API; only its SHA-256 is kept (the token is shown once)."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    label: Mapped[str] = mapped_column(String(100))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column()

    user: Mapped[User] = relationship()


class WebSession(Base):
    """A signed-in browser: the cookie's SHA-256, its CSRF token and when it ends."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    cookie_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    address: Mapped[str | None] = mapped_column(String(64))  # the client it was opened from
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column()
    ended_at: Mapped[dt.datetime | None] = mapped_column()  # signed out

    user: Mapped[User] = relationship()


class JobGrant(Base):
    """A reviewer's access to one job's documents."""

    __tablename__ = "job_grants"
    __table_args__ = (UniqueConstraint("user_id", "job_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="RESTRICT"), index=True)
    granted_by: Mapped[str] = mapped_column(String(200))
    granted_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ReviewDecision(Base):
    """A person's verdict on what the model said about an item in a run."""

    __tablename__ = "review_decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="RESTRICT"), index=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="RESTRICT"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    decision: Mapped[str] = mapped_column(String(16))  # "agree", "disagree" or "note"
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    user: Mapped[User] = relationship()


class AuditEvent(Base):
    """One append-only, hash-chained record of something that happened.

    ``chain`` names the sequence this event extends ("job:12", or "global");
    ``seq`` numbers it within the chain, and the unique constraint on both means
    two writers can never fork a chain. ``event_hash`` covers every field and
    ``prev_hash``, so changing any stored event breaks verification.
    """

    __tablename__ = "audit_events"
    __table_args__ = (UniqueConstraint("chain", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chain: Mapped[str] = mapped_column(String(32))
    seq: Mapped[int] = mapped_column(Integer)
    occurred_at: Mapped[dt.datetime] = mapped_column()
    actor: Mapped[str] = mapped_column(String(255))  # os user, or worker host:pid
    action: Mapped[str] = mapped_column(String(64))  # "item.state", "result.stored", …
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id"), index=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))
    item_id: Mapped[int | None] = mapped_column(ForeignKey("items.id"))
    item_sha256: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column()
    prev_hash: Mapped[str] = mapped_column(String(64))
    event_hash: Mapped[str] = mapped_column(String(64), unique=True)
