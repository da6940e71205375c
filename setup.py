"""Build of the compiled exact layer ``exactrelu._core`` and of the independent checker's compiled
pass ``exactrelu._checkcore`` (C++17 and GMP, no code shared between them); everything else about
the package is in pyproject.toml. Both extensions are optional: without a C++ compiler or GMP's
headers the package installs without them and the pure-Python paths do all the work (slower)."""

from setuptools import Extension, setup


def _extension(name: str) -> Extension:
    return Extension(
        f"exactrelu.{name}",
        sources=[f"exactrelu/{name}.cpp"],
        libraries=["gmp"],
        # -g0: no debug info (Python's own CFLAGS carry -g: 4.4 MB with it, 0.35 MB without)
        extra_compile_args=["-std=c++17", "-O2", "-fvisibility=hidden", "-g0"],
        language="c++",
        optional=True,
    )


setup(ext_modules=[_extension("_core"), _extension("_checkcore")])
