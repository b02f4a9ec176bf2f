"""Compile a Triton kernel for a GPU that is not here, and report what it uses.

triton.compile(ASTSource(...), target=GPUTarget("cuda", cc, 32)) runs the whole pipeline to a cubin
without a driver (ptxas and cuobjdump ship in the triton wheel). Pointer arguments are declared 16-byte
aligned, as the JIT specialises them at a real launch with torch's allocations; without that the
compiler cannot vectorise the stores. Must run without TRITON_INTERPRET: use compile_in_subprocess().
"""
import json
import os
import re
import subprocess
import sys


def compile_report(kernel, signature, constexprs, cc, num_warps=4):
    """-> {"registers", "local_bytes" (spills), "stack_bytes", "vector_stores", "vector_loads", "stores",
    "sqrt_rn_f64" (correctly rounded float64 square roots), "approx" (approximate math instructions)}."""
    import tempfile

    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    attrs = {(i,): [["tt.divisibility", 16]] for i, t in enumerate(signature.values()) if t.startswith("*")}
    src = ASTSource(fn=kernel, signature=signature, constexprs=constexprs, attrs=attrs)
    compiled = triton.compile(src, target=GPUTarget("cuda", cc, 32), options={"num_warps": num_warps})
    ptx = compiled.asm["ptx"]
    cuobjdump = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "cuobjdump")
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(compiled.asm["cubin"])
        f.flush()
        usage = subprocess.run([cuobjdump, "-res-usage", f.name], capture_output=True, text=True,
                               check=True).stdout
    field = lambda name: int(re.search(rf"{name}:(\d+)", usage).group(1))  # noqa: E731
    return {"registers": field("REG"), "local_bytes": field("LOCAL"), "stack_bytes": field("STACK"),
            "vector_stores": len(re.findall(r"st\.global\.v[24]", ptx)),
            "vector_loads": len(re.findall(r"ld\.global(?:\.\w+)*\.v[24]", ptx)),
            "stores": len(re.findall(r"st\.global", ptx)),
            "sqrt_rn_f64": len(re.findall(r"sqrt\.rn\.f64", ptx)), "approx": len(re.findall(r"\.approx\.", ptx))}


def compile_in_subprocess(module, kernel_name, signature, constexprs, cc, num_warps=4):
    """compile_report() in a fresh interpreter without TRITON_INTERPRET (tests set it for the process)."""
    code = (
        "import json, sys, importlib\n"
        "sys.path.insert(0, %r)\n"
        "from triton_build import compile_report\n"
        "k = getattr(importlib.import_module(%r), %r)\n"
        "print(json.dumps(compile_report(k, %r, %r, %d, %d)))\n"
    ) % (os.path.dirname(__file__), module, kernel_name, signature, constexprs, cc, num_warps)
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"compiling {module}.{kernel_name} for sm_{cc} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])
