"""Shape checks shared by the cell kernels (plain Python: they run once per call)."""
import numpy as np


def check_sequence_buffers(gate_count, gates, w_hh, h, *state):
    """Raise ValueError unless gates (T,B,gH), w_hh (gH,H) and each state (T+1 or T, B, H) agree."""
    T, B, G = gates.shape[0], gates.shape[1], gates.shape[2]
    H = w_hh.shape[1]
    if G != gate_count * H or w_hh.shape[0] != G:
        raise ValueError(f"gates last dim {G} and w_hh {tuple(w_hh.shape[:2])} need {gate_count}*H")
    if tuple(h.shape[:3]) != (T + 1, B, H):
        raise ValueError(f"h must be (T+1, B, H) = {(T + 1, B, H)}, got {tuple(h.shape[:3])}")
    for buf in state:
        if tuple(buf.shape[:3]) not in ((T + 1, B, H), (T, B, H)):
            raise ValueError(f"state buffer {tuple(buf.shape[:3])} does not match (T, B, H)")


def expect_shapes(where, **buffers):
    """Raise ValueError naming the first buffer whose shape differs.

    Usage: expect_shapes("where", x=(array, (2, 3)), ...)."""
    for name, (buf, shape) in buffers.items():
        got = tuple(buf.shape[: len(shape)])
        if got != tuple(shape):
            raise ValueError(f"{where}: {name} must have shape {tuple(shape)}, got {got}")


def check_table_scatter(where, T, B, G, ids, dtable):
    """The optional (ids, dtable) pair of a backward kernel: ids (T*B,) time-major token ids,
    dtable (V, G) that the step gradients are added into at those rows."""
    if (ids is None) != (dtable is None):
        raise ValueError(f"{where}: ids and dtable go together")
    if ids is None:
        return
    if ids.shape[0] != T * B or dtable.shape[1] != G:
        raise ValueError(f"{where}: ids must be ({T * B},) and dtable (V, {G}), got "
                         f"{tuple(ids.shape[:1])} and {tuple(dtable.shape[:2])}")
    arr = np.asarray(ids)          # numpy's min/max: Python's would walk T*B elements
    if arr.size and (arr.min() < 0 or arr.max() >= dtable.shape[0]):
        raise ValueError(f"{where}: ids outside [0, {dtable.shape[0]})")


def thread_tables(dtable, count, like):
    """Where each thread adds its input-table gradient rows: dtable itself (as a (1, V, G)
    view) when one writer, else `count` zeroed private tables (threads that split the batch
    would race on rows of common tokens), summed into dtable by add_thread_tables."""
    if dtable is None:
        return np.zeros((1, 1, 1), dtype=np.asarray(like).dtype)
    table = np.asarray(dtable)
    if count <= 1:
        return table[None]
    return np.zeros((count,) + table.shape, dtype=table.dtype)


def add_thread_tables(dtable, tables):
    """Finish thread_tables: add the private tables (if any) into dtable."""
    tables = np.asarray(tables)
    if dtable is not None and tables.shape[0] > 1:
        np.asarray(dtable)[...] += tables.sum(axis=0)


class TableScatter:
    """A backward kernel's optional input-table gradient (ids, dtable), in one place: checked,
    its size (for share_init), the tables the threads add into, and their sum at the end."""

    def __init__(self, where, T, B, G, ids, dtable):
        check_table_scatter(where, T, B, G, ids, dtable)
        self.dtable = dtable
        self.on = ids is not None and ids.shape[0] > 0
        self.table_bytes = np.asarray(dtable).nbytes if self.on else 0

    def tables(self, slots, like):
        return thread_tables(self.dtable, slots if self.on else 1, like)

    def finish(self, tables):
        add_thread_tables(self.dtable, tables)
