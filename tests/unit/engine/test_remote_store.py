"""The store in an object store (fsspec's ``memory://`` and a local ``file://`` filesystem
here; a real S3 server in tests/integration/test_store_on_s3.py): files first under a
per-writer upload, the manifest last; readers trust only committed keys; downloads are
checked against the digest; the lease."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import fsspec
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelyard.data.table import Table, as_table
from modelyard.engine.dag import Pipeline
from modelyard.engine.lock import ProjectLocked
from modelyard.engine.remote import Lease, RemoteStore, StoreCorrupt
from modelyard.engine.runner import plan, run
from modelyard.engine.step import Step
from modelyard.engine.store import ArtifactStore, auto_codec
from modelyard.errors import LockedError

from . import pipeline_fixtures as fx


class Recording:
    """An fsspec filesystem that records each write and can act before one (``before``:
    called with the path about to be written)."""

    def __init__(self, fs: Any) -> None:
        self._fs = fs
        self.writes: list[str] = []
        self.before: Callable[[str], None] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fs, name)

    def _write(self, path: str) -> None:
        if self.before is not None:
            self.before(path)
        self.writes.append(path)

    def put_file(self, lpath: str, rpath: str, **kwargs: Any) -> None:
        self._write(rpath)
        self._fs.put_file(lpath, rpath, **kwargs)

    def pipe_file(self, path: str, value: bytes, **kwargs: Any) -> None:
        self._write(path)
        self._fs.pipe_file(path, value, **kwargs)


@pytest.fixture(params=["memory", "file"])
def fs_root(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Any, str]:
    """A filesystem and the store's root in it: fsspec's in-memory one, and a local folder."""
    if request.param == "memory":
        return fsspec.filesystem("memory"), f"/bucket-{uuid.uuid4().hex[:8]}/project"
    return fsspec.filesystem("file"), f"{tmp_path}/remote/project"


def remote(fs: Any, root: str, cache: Path) -> RemoteStore:
    return RemoteStore(fs, root, cache=ArtifactStore(cache, stamp={"modelyard": "test"}))


def make_table(scratch: Callable[[str], Path]) -> Table:
    frame = pl.DataFrame({"x": list(range(10)), "y": [f"v{i}" for i in range(10)]})
    return as_table(frame, scratch("rows"), batch_rows=4)  # three parts


def table_pipeline() -> Pipeline:
    return Pipeline.of(
        [
            Step("rows", make_table, resources=("scratch",)),
            Step("numbers", fx.numbers, params={"n": 4}),
            Step("total", fx.total, inputs={"values": "numbers"}),
        ]
    )


def _run(p: Pipeline, store: RemoteStore) -> Any:
    return run(p, store, resources={"scratch": store.scratch})


def test_a_run_on_another_machine_finds_every_step_committed_and_loads_it_from_the_store(
    fs_root: tuple[Any, str], tmp_path: Path
) -> None:
    fs, root = fs_root
    first = _run(table_pipeline(), remote(fs, root, tmp_path / "a"))
    assert first.ran == ["rows", "numbers", "total"]
    other = remote(fs, root, tmp_path / "b")  # another machine: an empty local cache
    assert plan(table_pipeline(), other).to_run == []
    again = _run(table_pipeline(), other)
    assert again.ran == []
    table = again.output("rows")  # the Parquet parts came down as files
    assert [p.name for p in table.parts()] == [f"part-0000{i}.parquet" for i in range(3)]
    assert table.folder.is_relative_to(tmp_path / "b")
    assert table.collect().equals(first.output("rows").collect())
    assert again.output("total") == 6
    # the keys are the local store's
    local = run(
        table_pipeline(),
        ArtifactStore(tmp_path / "local"),
        resources={"scratch": ArtifactStore(tmp_path / "local").scratch},
    )
    assert [r.key for r in local.records] == [r.key for r in first.records]


def test_the_files_go_first_under_the_writers_upload_and_the_manifest_last(
    tmp_path: Path,
) -> None:
    fs = Recording(fsspec.filesystem("memory"))
    root = f"/bucket-{uuid.uuid4().hex[:8]}"
    store = remote(fs, root, tmp_path / "cache")
    outcome = _run(table_pipeline(), store)
    key = next(r.key for r in outcome.records if r.name == "rows")
    writes = [w for w in fs.writes if f"/artifacts/rows/{key}/" in w]
    manifest = json.loads(fs.cat_file(f"{root}/artifacts/rows/{key}/meta.json"))
    assert writes[-1].endswith(f"/rows/{key}/meta.json")
    upload = f"{root}/artifacts/rows/{key}/{manifest['upload']}/"
    assert all(w.startswith(upload) for w in writes[:-1])
    assert sorted(w.removeprefix(upload) for w in writes[:-1]) == sorted(manifest["files"])
    assert len(manifest["files"]) == 3  # every part, listed with its size
    assert manifest["digest"] == store.cache.meta("rows", key)["digest"]


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs."""


def test_a_writer_killed_before_its_manifest_leaves_nothing_committed_and_the_next_completes(
    tmp_path: Path,
) -> None:
    fs = Recording(fsspec.filesystem("memory"))
    root = f"/bucket-{uuid.uuid4().hex[:8]}"

    def kill_at_commit(path: str) -> None:
        if path.endswith("/meta.json") and "/artifacts/total/" in path:
            raise Killed

    fs.before = kill_at_commit
    with pytest.raises(Killed):
        run(build(), remote(fs, root, tmp_path / "a"))
    fs.before = None
    other = remote(fs, root, tmp_path / "b")
    the_plan = plan(build(), other)
    assert the_plan.to_run == ["total"]  # its files are there, uncommitted: not trusted
    total_key = the_plan.steps[-1].key
    orphans = fs.ls(f"{root}/artifacts/total/{total_key}", detail=False)
    assert len(orphans) == 1 and "upload-" in orphans[0]
    assert run(build(), other).ran == ["total"]
    assert plan(build(), remote(fs, root, tmp_path / "c")).to_run == []
    # clean keeps what is committed and removes the upload nobody names
    removed, _ = other.clean(keep={s.name: s.key for s in the_plan})
    assert removed == 0
    left = fs.ls(f"{root}/artifacts/total/{total_key}", detail=False)
    manifest = json.loads(fs.cat_file(f"{root}/artifacts/total/{total_key}/meta.json"))
    assert sorted(p.rsplit("/", 1)[-1] for p in left) == sorted(["meta.json", manifest["upload"]])
    assert plan(build(), remote(fs, root, tmp_path / "d")).to_run == []


def build() -> Pipeline:
    return Pipeline.of(
        [
            Step("numbers", fx.numbers, params={"n": 4}),
            Step("total", fx.total, inputs={"values": "numbers"}),
        ]
    )


def test_two_writers_racing_for_one_key_both_leave_a_valid_result(tmp_path: Path) -> None:
    """Writer A uploads; before A commits, writer B saves the same key whole (with other
    bytes: a step that is not bit-for-bit reproducible); then A commits over B. The manifest
    that stands names A's complete upload, whose files match its digest; B's complete upload
    is named by nothing."""
    fs = Recording(fsspec.filesystem("memory"))
    root = f"/bucket-{uuid.uuid4().hex[:8]}"
    a, b = remote(fs, root, tmp_path / "a"), remote(fs, root, tmp_path / "b")
    codec = auto_codec()

    def b_saves_whole(path: str) -> None:
        if path.endswith("/meta.json"):
            fs.before = None
            b.save("step", "k1", {"writer": "b"}, codec, info={})
            assert remote(fs, root, tmp_path / "r1").load("step", "k1", codec) == {"writer": "b"}

    fs.before = b_saves_whole
    saved = a.save("step", "k1", {"writer": "a"}, codec, info={})
    reader = remote(fs, root, tmp_path / "r2")
    assert reader.load("step", "k1", codec) == {"writer": "a"}
    assert saved.meta["digest"] == reader.meta("step", "k1")["digest"]
    uploads = [p for p in fs.ls(f"{root}/artifacts/step/k1", detail=False) if "upload-" in p]
    assert len(uploads) == 2


def test_a_writer_that_finds_the_key_committed_keeps_the_committed_result(
    tmp_path: Path,
) -> None:
    fs = fsspec.filesystem("memory")
    root = f"/bucket-{uuid.uuid4().hex[:8]}"
    a, b = remote(fs, root, tmp_path / "a"), remote(fs, root, tmp_path / "b")
    codec = auto_codec()
    a.save("step", "k1", {"writer": "a"}, codec, info={})
    saved = b.save("step", "k1", {"writer": "b"}, codec, info={})
    assert saved.meta["digest"] == a.meta("step", "k1")["digest"]  # what the next steps key on
    assert b.load("step", "k1", codec) == {"writer": "a"}
    uploads = [p for p in fs.ls(f"{root}/artifacts/step/k1", detail=False) if "upload-" in p]
    assert len(uploads) == 1  # B uploaded nothing


def test_a_download_that_does_not_match_the_digest_is_refused(tmp_path: Path) -> None:
    fs = fsspec.filesystem("memory")
    root = f"/bucket-{uuid.uuid4().hex[:8]}"
    store = remote(fs, root, tmp_path / "a")
    store.save("step", "k1", {"rows": 3}, auto_codec(), info={})
    manifest = store.meta("step", "k1")
    fs.pipe_file(f"{root}/artifacts/step/k1/{manifest['upload']}/value.json", b'{"rows": 4}')
    reader = remote(fs, root, tmp_path / "b")
    with pytest.raises(StoreCorrupt) as err:
        reader.load("step", "k1", auto_codec())
    assert "do not match its manifest" in str(err.value)
    assert "--step step" in str(err.value)
    assert not reader.cache.has("step", "k1")  # nothing unverified enters the cache
    assert list(reader.cache.tmp.iterdir()) == []


def test_a_local_copy_with_another_digest_gives_way_to_the_committed_artifact(
    tmp_path: Path,
) -> None:
    fs = fsspec.filesystem("memory")
    root = f"/bucket-{uuid.uuid4().hex[:8]}"
    remote(fs, root, tmp_path / "a").save("step", "k1", {"v": "committed"}, auto_codec(), info={})
    cache = ArtifactStore(tmp_path / "b")
    cache.save("step", "k1", {"v": "a local run's"}, auto_codec(), info={})
    store = RemoteStore(fs, root, cache=cache)
    assert store.load("step", "k1", auto_codec()) == {"v": "committed"}
    assert cache.meta("step", "k1")["digest"] == store.meta("step", "k1")["digest"]


def test_the_last_key_of_each_step_is_kept_in_the_store(tmp_path: Path) -> None:
    fs = fsspec.filesystem("memory")
    root = f"/bucket-{uuid.uuid4().hex[:8]}"
    run(build(), remote(fs, root, tmp_path / "a"))
    other = remote(fs, root, tmp_path / "b")
    assert other.recall("total") is not None
    changed = Pipeline.of(
        [
            Step("numbers", fx.numbers, params={"n": 5}),
            Step("total", fx.total, inputs={"values": "numbers"}),
        ]
    )
    assert plan(changed, other).steps[0].reason == "parameter n changed"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=json_values)
def test_any_value_comes_back_equal_through_the_store_and_an_empty_cache(
    tmp_path: Path, value: Any
) -> None:
    fs = fsspec.filesystem("memory")
    root = f"/bucket-{uuid.uuid4().hex}"
    writer = remote(fs, root, tmp_path / uuid.uuid4().hex)
    writer.save("step", "k1", value, auto_codec(), info={})
    reader = remote(fs, root, tmp_path / uuid.uuid4().hex)
    assert reader.load("step", "k1", auto_codec()) == value
    fs.rm(root, recursive=True)


# ---------------------------------------------------------------------------- the lease


@pytest.fixture
def leases(fs_root: tuple[Any, str]) -> Iterator[Callable[..., Lease]]:
    fs, root = fs_root

    def make(**kwargs: Any) -> Lease:
        return Lease(fs, f"{root}/locks", renew=False, **kwargs)

    yield make


def test_single_steps_share_the_lease_and_a_clean_waits_for_them(
    leases: Callable[..., Lease],
) -> None:
    with leases(shared=True, command="run --step a"), leases(shared=True, command="run --step b"):
        with pytest.raises(ProjectLocked) as err, leases(shared=False, command="clean", attempts=2):
            pass
        assert isinstance(err.value, LockedError)
        assert "run --step" in str(err.value)
        assert "expires" in str(err.value) or "lease" in str(err.value)
    with leases(shared=False, command="clean") as held:  # both released
        with pytest.raises(ProjectLocked), leases(shared=True, attempts=1):
            pass
        with pytest.raises(ProjectLocked), leases(shared=False, attempts=1):
            pass
        assert held.others() == []
    with leases(shared=True):
        pass


def test_a_lease_not_renewed_by_its_expiry_is_ignored_then_removed(
    leases: Callable[..., Lease],
) -> None:
    now = [1000.0]
    dead = leases(shared=False, command="killed", seconds=60, clock=lambda: now[0])
    dead.__enter__()  # never released: its process was killed
    with pytest.raises(ProjectLocked), leases(shared=True, clock=lambda: now[0], attempts=1):
        pass
    now[0] = 1000 + 61  # past its expiry
    with leases(shared=False, clock=lambda: now[0], attempts=1):
        assert dead.fs.exists(dead.path)  # expired, ignored, kept a while for the record
    now[0] = 1000 + 60 + 61  # expired for longer than a lease lives: removed
    with leases(shared=True, clock=lambda: now[0], attempts=1):
        assert not dead.fs.exists(dead.path)


def test_a_holder_renews_its_lease_and_notices_when_it_was_taken(
    leases: Callable[..., Lease],
) -> None:
    now = [1000.0]
    holder = leases(shared=True, seconds=60, clock=lambda: now[0])
    with holder:
        now[0] = 1050
        assert holder.renew_once()
        record = json.loads(holder.fs.cat_file(holder.path))
        assert record["expires"] == 1110
        holder.fs.rm_file(holder.path)  # another contender removed it as expired
        assert not holder.renew_once()
        assert holder.lost


def test_two_exclusive_contenders_never_both_hold(fs_root: tuple[Any, str]) -> None:
    """The second writes its lease after the first listed: it sees the first and gives way;
    when both write before either lists, both see each other and neither holds."""
    fs, root = fs_root
    first = Lease(fs, f"{root}/locks", renew=False, attempts=1)
    second = Lease(fs, f"{root}/locks", renew=False, attempts=1)
    first._write()
    second._write()  # both written: each sees the other
    assert first._conflicts(first.others()) and second._conflicts(second.others())
    second._remove()
    assert not first._conflicts(first.others())


def test_an_alias_is_committed_like_any_artifact(tmp_path: Path) -> None:
    fs = fsspec.filesystem("memory")
    root = f"/bucket-{uuid.uuid4().hex[:8]}"
    store = remote(fs, root, tmp_path / "a")
    store.save("contract", "inferred", {"columns": 3}, auto_codec(), info={})
    store.alias("contract", "inferred", "declared")
    reader = remote(fs, root, tmp_path / "b")
    assert reader.load("contract", "declared", auto_codec()) == {"columns": 3}
    assert reader.meta("contract", "declared")["alias_of"] == "inferred"


def test_clean_everything_empties_the_store_and_its_cache(tmp_path: Path) -> None:
    fs = fsspec.filesystem("memory")
    root = f"/bucket-{uuid.uuid4().hex[:8]}"
    store = remote(fs, root, tmp_path / "a")
    run(build(), store)
    removed, freed = store.clean()
    assert removed == 2 and freed > 0
    assert [a for a in store.entries()] == []
    assert store.recall("total") is None
    assert list(store.cache.entries()) == []
    assert plan(build(), remote(fs, root, tmp_path / "b")).to_run == ["numbers", "total"]


def test_a_download_finding_the_same_artifact_installed_meanwhile_leaves_it_in_place(
    tmp_path: Path,
) -> None:
    """Two steps run alongside in one workdir both need an input: the second to finish its
    download keeps the first's copy, which the first may be reading."""
    fs = fsspec.filesystem("memory")
    root = f"/bucket-{uuid.uuid4().hex[:8]}"
    remote(fs, root, tmp_path / "writer").save("step", "k1", [1, 2], auto_codec(), info={})
    first = remote(fs, root, tmp_path / "shared")

    class Hooked(Recording):
        def get_file(self, rpath: str, lpath: str, **kwargs: Any) -> None:
            if self.before is not None:
                self.before(rpath)
            self._fs.get_file(rpath, lpath, **kwargs)

    hooked = Hooked(fs)
    installed: list[int] = []

    def first_installs(_: str) -> None:
        hooked.before = None
        folder = first.local_folder("step", "k1")
        installed.append((folder / "value.json").stat().st_ino)

    hooked.before = first_installs
    second = RemoteStore(hooked, root, cache=ArtifactStore(tmp_path / "shared"))
    folder = second.local_folder("step", "k1")
    assert (folder / "value.json").stat().st_ino == installed[0]  # the first's copy stayed
    assert second.load("step", "k1", auto_codec()) == [1, 2]
    assert list(second.cache.tmp.iterdir()) == []
