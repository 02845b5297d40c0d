"""Patch Debian's torch in the test image so TCPStore never asks for libuv.

Debian builds torch without libuv, but TCPStore's ``use_libuv`` argument defaults to True and
several callers (torchrun's static and c10d rendezvous, the agent-store client) do not pass
it, so a plain ``torchrun --master-addr=... train.py`` fails with "use_libuv was requested but
PyTorch was build without libuv support". This inserts, right after torch.distributed is
initialised and before anything imports TCPStore, a subclass that always passes
use_libuv=False (the only value this build supports).

Run inside the image's chroot with its python3; idempotent; exits non-zero when the
anchor line is gone (a new torch version: check whether the patch is still needed).
"""

import importlib.util
import pathlib
import py_compile
import sys

MARK = "# kubeflow-trainer-test: TCPStore without libuv"
ANCHOR = '    raise RuntimeError("Failed to initialize torch.distributed")\n'
BLOCK = f"""
{MARK} (see scripts/containers/torch_no_libuv.py in the
# Kubeflow Trainer repository). This torch is built without libuv.
if is_available():
    import torch._C._distributed_c10d as _kft_c10d

    class _KftTCPStore(_kft_c10d.TCPStore):
        def __init__(self, *args, **kwargs):
            if len(args) > 8:
                args = args[:8] + (False,) + args[9:]
            else:
                kwargs["use_libuv"] = False
            super().__init__(*args, **kwargs)

    _KftTCPStore.__name__ = _KftTCPStore.__qualname__ = "TCPStore"
    _KftTCPStore.__module__ = _kft_c10d.TCPStore.__module__
    _KftTCPStore.__doc__ = _kft_c10d.TCPStore.__doc__
    _kft_c10d.TCPStore = _KftTCPStore
"""

spec = importlib.util.find_spec("torch")
if spec is None or spec.origin is None:
    sys.exit("torch_no_libuv: torch not found")
path = pathlib.Path(spec.origin).parent / "distributed" / "__init__.py"
src = path.read_text()
if "use_libuv" not in (path.parent / "rendezvous.py").read_text():
    print("torch_no_libuv: this torch has no libuv TCPStore option; nothing to patch")
    sys.exit(0)
if MARK in src:
    print(f"torch_no_libuv: {path} already patched")
    sys.exit(0)
if ANCHOR not in src:
    sys.exit(f"torch_no_libuv: anchor line not found in {path}")
path.write_text(src.replace(ANCHOR, ANCHOR + BLOCK, 1))
# Refresh the byte code that Debian's py3compile made, so containers do not recompile it.
py_compile.compile(str(path), doraise=True, invalidation_mode=py_compile.PycInvalidationMode.TIMESTAMP)
print(f"torch_no_libuv: patched {path}")
