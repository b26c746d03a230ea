"""Hostile and malformed snapshot pickles: refused quickly, in bounded memory, clearly.

Each file is a golden t16 snapshot (tests/snapshot_writer.py) with one
defect: "billion laughs" shared references in the constructor arguments or
in `training_set_kwargs`, a stride-0 tensor of a few bytes that would
materialise gigabytes, one storage shared by thousands of tensors,
constructor arguments asking for terabytes, a self-referencing argument,
50,000-deep nesting, a module that is an int, a truncated file and a zip
renamed `.pkl`. Every one must raise a ValueError naming the file and the
defect within 2 s and 200 MB of extra peak memory. They are loaded one after
the other in one fresh process (peak RSS only grows, so the peak after all
of them bounds each), on the current backend.
"""

import collections
import json
import pickle
import re
import zipfile

import numpy as np
import pytest
import torch

from tests.conftest import golden_case
from tests.snapshot_writer import write_case_snapshot
from tests.testing import run_python


def _laughs(levels=9, width=10):
    """`width ** levels` values in a few hundred bytes of pickle (shared references)."""
    value = [0] * width
    for _ in range(levels):
        value = [value] * width
    return value


def _self_referencing():
    value = {"a": 1}
    value["me"] = value
    return value


def _deep(path, case, depth=50_000):
    """A snapshot whose training_set_kwargs hold a list nested `depth` deep.

    Python's pickler cannot write such a list (it recurses); the opcodes are
    spliced in where a placeholder string was (protocol 3: no frames).
    """
    marker = "DEEP-NESTING-PLACEHOLDER"
    write_case_snapshot(path, case, protocol=3, extra={"training_set_kwargs": {"path": marker}})
    raw = open(path, "rb").read()
    encoded = marker.encode()
    placeholder = b"X" + len(encoded).to_bytes(4, "little") + encoded  # BINUNICODE
    assert raw.count(placeholder) == 1
    nested = b"]" * depth + b"a" * (depth - 1)  # EMPTY_LIST x depth, APPEND x (depth - 1)
    with open(path, "wb") as f:
        f.write(raw.replace(placeholder, nested))


class _View:
    """Pickles as a tensor viewing all of `storage`: the storage object is
    written once and referenced by every view (torch would write a copy of
    the storage for each tensor it pickles)."""

    def __init__(self, storage):
        self.storage = storage

    def __reduce__(self):
        return torch._utils._rebuild_tensor_v2, (self.storage, 0, (self.storage.size(),), (1,),
                                                 False, collections.OrderedDict())


def _add_module_int(data):
    data["G"].state["_modules"]["bogus"] = 7


def _files(tmp_path):
    case = golden_case("t16")
    files = {}

    def write(name, **kwargs):
        files[name] = write_case_snapshot(str(tmp_path / f"{name}.pkl"), case, **kwargs)

    write("laughs_in_kwargs", init_kwargs={"G": {"laughs": _laughs()}})
    write("laughs_in_training_set", extra={"training_set_kwargs": {"path": _laughs()}})
    stride0 = dict(case.state("G"))
    # One float16 storage element viewed as 50,000 x 50,000 (5 GB as float16).
    stride0["mapping.w_avg"] = torch.zeros(1, dtype=torch.float16).expand(50_000, 50_000)
    files["stride_zero_tensor"] = str(tmp_path / "stride_zero_tensor.pkl")
    from tests.snapshot_writer import write_snapshot

    write_snapshot(files["stride_zero_tensor"], stride0, case.meta["G_kwargs"], case.state("D"),
                   case.meta["D_kwargs"])
    shared = dict(case.state("G"))
    storage = torch.storage.TypedStorage(  # 2 MB, written once, viewed 2000 times
        wrap_storage=torch.zeros(1_000_000, dtype=torch.float16).untyped_storage(),
        dtype=torch.float16, _internal=True)
    shared.update({f"mapping.shared{i}": _View(storage) for i in range(2000)})
    files["shared_storage"] = str(tmp_path / "shared_storage.pkl")
    write_snapshot(files["shared_storage"], shared, case.meta["G_kwargs"], case.state("D"),
                   case.meta["D_kwargs"])
    write("huge_dims", init_kwargs={"G": {"z_dim": 10**6, "w_dim": 10**6}})
    write("dims_beyond_the_weights", init_kwargs={"G": {"z_dim": 60000, "w_dim": 60000}})
    write("self_reference", init_kwargs={"G": {"mapping_kwargs": _self_referencing()}})
    files["deep_nesting"] = str(tmp_path / "deep_nesting.pkl")
    _deep(files["deep_nesting"], case)
    write("module_is_an_int", edit=_add_module_int)
    write("truncated")
    raw = open(files["truncated"], "rb").read()
    open(files["truncated"], "wb").write(raw[: len(raw) // 2])
    files["zip_renamed"] = str(tmp_path / "zip_renamed.pkl")
    with zipfile.ZipFile(files["zip_renamed"], "w") as archive:
        archive.writestr("model/config.json", "{}")
    return files


EXPECTED = {
    "laughs_in_kwargs": r"at most 100000 values in the constructor arguments of Generator",
    "laughs_in_training_set": r"at most 100000 values in the training_set_kwargs",
    "stride_zero_tensor": r"size \[50000, 50000\] .* does not fit its storage of 1 elements",
    "shared_storage": r"tensors hold more than \d+ elements in all",
    "huge_dims": r"generator setting z_dim to be an integer in \[0, 65536\]\. Received: 1000000",
    "dims_beyond_the_weights": r"describe at least [\d,]+ weights; the state holds [\d,]+ values",
    "self_reference": r"without self-references",
    "deep_nesting": r"nested at most 64 deep",
    "module_is_an_int": r"Expected a module at bogus\. Received: int",
    "truncated": r"not a valid reference snapshot.*truncated",
    "zip_renamed": r"is a zip archive",
}

LOADER = """
import json, resource, time
from keras_afgan.convert import load_reference_pickle
from keras_afgan.models import Generator
# Warm up what every load imports once (torch reads the tensors), so the
# first file's time is its own.
import torch
Generator(z_dim=8, w_dim=8, img_resolution=16, channel_base=64, channel_max=4)
files = json.load(open(FILES))
peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MB
baseline, results = peak(), {}
for name, path in files.items():
    start = time.time()
    try:
        load_reference_pickle(path)
        outcome = ("loaded", "")
    except Exception as error:  # what a user would see
        outcome = (type(error).__name__, str(error))
    results[name] = outcome + (time.time() - start,)
print(json.dumps({"results": results, "extra_mb": peak() - baseline}))
"""


def test_hostile_and_malformed_pickles_are_refused_quickly_in_bounded_memory(tmp_path):
    import keras

    files = _files(tmp_path)
    assert sorted(files) == sorted(EXPECTED)
    listing = tmp_path / "files.json"
    listing.write_text(json.dumps(files))
    code = LOADER.replace("FILES", repr(str(listing)))
    out = json.loads(run_python(code, keras.config.backend()).strip().splitlines()[-1])
    failures = []
    for name, (kind, message, seconds) in out["results"].items():
        if kind != "ValueError" or files[name] not in message:
            failures.append(f"{name}: {kind}: {message[:300]}")
        elif not re.search(EXPECTED[name], message):
            failures.append(f"{name}: message {message[:300]!r} does not match {EXPECTED[name]!r}")
        elif seconds > 2.0:
            failures.append(f"{name}: took {seconds:.2f} s")
    assert not failures, "\n".join(failures)
    assert out["extra_mb"] < 200, f"peak memory grew by {out['extra_mb']:.0f} MB"


def test_a_global_outside_the_format_stays_an_unpickling_error(tmp_path):
    """The security refusal is not folded into the malformed-file ValueError."""
    path = write_case_snapshot(str(tmp_path / "s.pkl"), golden_case("t16"),
                               extra={"augment_pipe": np.random.default_rng})
    from keras_afgan.convert import load_reference_pickle

    with pytest.raises(pickle.UnpicklingError, match="Refusing to load global"):
        load_reference_pickle(path)
