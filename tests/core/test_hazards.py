"""The hazard index: which earlier unfinished calls a new call must wait for."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from asyncfc.scheduler import MAX_LABEL_DEPTH, Call, HazardIndex
from asyncfc.tools import ROOT, labels_conflict


class Calls:
    """Registers calls in program order against one index."""

    def __init__(self) -> None:
        self.index = HazardIndex()
        self.seq = itertools.count(1)

    def add(self, reads: set[str] | None = None, writes: set[str] | None = None) -> tuple[Call, set[Call]]:
        call = Call(next(self.seq), "c", "t", "{}")
        return call, self.index.register(call, set(reads or ()), set(writes or ()))


def test_write_then_read_waits() -> None:
    c = Calls()
    w, _ = c.add(writes={"fs/cwd"})
    _, waits = c.add(reads={"fs/cwd"})
    assert waits == {w}


def test_read_then_write_waits() -> None:
    c = Calls()
    r, _ = c.add(reads={"fs/cwd"})
    _, waits = c.add(writes={"fs/cwd"})
    assert waits == {r}


def test_write_then_write_waits() -> None:
    c = Calls()
    w, _ = c.add(writes={"db"})
    _, waits = c.add(writes={"db"})
    assert waits == {w}


def test_labels_past_the_depth_limit_conflict_as_their_prefix() -> None:
    """A model can write a path of 250,000 segments; indexing each one took seconds."""
    deep = "fs/" + "/".join(["d"] * 250_000)
    c = Calls()
    writer, _ = c.add(writes={deep + "/x"})
    _, waits = c.add(reads={deep + "/y"})  # differs only past the limit: they conflict
    assert waits == {writer}
    _, waits = c.add(reads={"fs/d/d"})  # a real prefix still conflicts
    assert waits == {writer}
    sibling = "/".join(["fs", *["d"] * (MAX_LABEL_DEPTH - 2), "z"])  # differs at segment 64
    _, waits = c.add(writes={sibling})
    assert writer not in waits, "a label that differs within the limit is told apart"


def test_prefix_conflicts_both_ways() -> None:
    c = Calls()
    parent, _ = c.add(writes={"fs"})
    _, waits = c.add(reads={"fs/cwd"})
    assert waits == {parent}

    c = Calls()
    child, _ = c.add(writes={"fs/cwd/deep"})
    _, waits = c.add(reads={"fs"})
    assert waits == {child}

    c = Calls()
    reader, _ = c.add(reads={"fs/tree/x"})
    _, waits = c.add(writes={"fs/tree"})
    assert waits == {reader}

    c = Calls()
    reader, _ = c.add(reads={"fs"})
    _, waits = c.add(writes={"fs/tree"})
    assert waits == {reader}


def test_root_conflicts_with_everything() -> None:
    c = Calls()
    a, _ = c.add(reads={"x/y"})
    b, _ = c.add(writes={"z"})
    root, waits = c.add(reads={ROOT}, writes={ROOT})
    assert waits == {a, b}
    _, waits = c.add(reads={"q"})
    assert waits == {root}
    _, waits = c.add(reads={ROOT})
    assert waits == {root}


def test_reads_do_not_wait_for_reads() -> None:
    c = Calls()
    c.add(reads={"fs/cwd"})
    c.add(reads={"fs"})
    _, waits = c.add(reads={"fs/cwd", ROOT})
    assert waits == set()


def test_disjoint_labels_do_not_wait() -> None:
    for first, second in [("fs/cwd", "fs/tree"), ("fs/a", "fs/ab"), ("fs/ab", "fs/a"), ("a", "b")]:
        for a, b in [("w", "w"), ("w", "r"), ("r", "w")]:
            c = Calls()
            c.add(**{"writes" if a == "w" else "reads": {first}})
            _, waits = c.add(**{"writes" if b == "w" else "reads": {second}})
            assert waits == set(), (first, second, a, b)


def test_pure_calls_never_wait() -> None:
    c = Calls()
    c.add(reads={ROOT}, writes={ROOT})
    _, waits = c.add()
    assert waits == set()


def test_transitive_reduction_after_finish() -> None:
    c = Calls()
    w1, _ = c.add(writes={"a"})
    r1, waits = c.add(reads={"a"})
    assert waits == {w1}
    r2, waits = c.add(reads={"a/b"})
    assert waits == {w1}
    w2, waits = c.add(writes={"a"})
    assert waits == {w1, r1, r2}
    # later calls need only wait for w2, which itself waits for everything older
    _, waits = c.add(reads={"a/b"})
    assert waits == {w2}
    # finishing in a legal order (w2 cannot finish before the calls it waits for)
    for done in (w1, r1, r2):
        c.index.finish(done)
    _, waits = c.add(writes={"a/b/c"})
    assert w2 in waits and not waits & {w1, r1, r2}
    c.index.finish(w2)
    last, waits = c.add(writes={"a"})
    assert w2 not in waits and waits  # still ordered after the unfinished readers/writers
    c.index.finish(last)


def test_finish_releases_everything() -> None:
    c = Calls()
    calls = [c.add(writes={f"k/{i % 3}"}, reads={"k"})[0] for i in range(10)]
    for call in calls:
        c.index.finish(call)
    assert len(c.index) == 0
    _, waits = c.add(reads={ROOT}, writes={ROOT})
    assert waits == set()


def test_readers_are_indexed_only_when_a_writer_comes() -> None:
    c = Calls()
    readers = [c.add(reads={f"data/{i}"})[0] for i in range(4)]
    assert c.index.root.children is None and len(c.index) == 4  # noted, not indexed
    c.index.finish(readers[0])
    writer, waits = c.add(writes={"data"})  # finds the unfinished readers through the index
    assert waits == set(readers[1:])
    _, waits = c.add(reads={"data/9"})  # a writer is unfinished: indexed at once
    assert waits == {writer}


def test_thousands_of_disjoint_and_pure_calls_do_not_wait() -> None:
    c = Calls()
    writers = []
    for i in range(3000):
        w, waits = c.add(reads={f"users/{i}/profile"}, writes={f"users/{i}/posts"})
        assert waits == set()
        writers.append(w)
        _, waits = c.add()
        assert waits == set()
    # ... and a root writer waits for all of them, found through the index
    _, waits = c.add(writes={ROOT})
    assert waits == set(writers)


# -- property: the index never misses a conflict with an unfinished earlier call ----------

LABELS = [ROOT, "a", "a/b", "a/b/c", "a/bc", "b", "b/x"]


def _conflicts(r1: set[str], w1: set[str], r2: set[str], w2: set[str]) -> bool:
    return any(labels_conflict(x, y) for x in w1 for y in r2 | w2) or any(
        labels_conflict(x, y) for x in r1 for y in w2
    )


op = st.one_of(
    st.tuples(
        st.just("add"),
        st.frozensets(st.sampled_from(LABELS), max_size=2),
        st.frozensets(st.sampled_from(LABELS), max_size=2),
    ),
    st.tuples(st.just("finish"), st.integers(0, 50), st.just(frozenset())),
)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(op, max_size=40))
def test_waits_cover_every_unfinished_conflict(ops: list[tuple[str, object, frozenset[str]]]) -> None:
    c = Calls()
    labels: dict[Call, tuple[set[str], set[str]]] = {}
    waits_of: dict[Call, set[Call]] = {}
    unfinished: list[Call] = []
    finished: set[Call] = set()
    for kind, a, b in ops:
        if kind == "finish":
            # only a call whose waits have all finished may finish (as in the scheduler)
            ready = [x for x in unfinished if waits_of[x] <= finished]
            if ready:
                assert isinstance(a, int)
                done = ready[a % len(ready)]
                c.index.finish(done)
                unfinished.remove(done)
                finished.add(done)
            continue
        assert isinstance(a, frozenset)
        reads, writes = set(a), set(b)
        call, waits = c.add(reads=reads, writes=writes)
        # sound: only earlier unfinished calls that really conflict
        for w in waits:
            assert w in unfinished
            assert _conflicts(*labels[w], reads, writes)
        # complete: every unfinished conflicting call is reached through the waits
        reach: set[Call] = set()
        todo = list(waits)
        while todo:
            x = todo.pop()
            if x not in reach:
                reach.add(x)
                todo.extend(waits_of[x] - finished)
        for other in unfinished:
            if _conflicts(*labels[other], reads, writes):
                assert other in reach, (other.seq, labels[other], reads, writes)
        labels[call] = (reads, writes)
        waits_of[call] = waits
        unfinished.append(call)
