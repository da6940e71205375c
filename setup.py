"""Build of the compiled exact layer ``exactrelu._core`` (C++17 and GMP); everything else about the
package is in pyproject.toml. The extension is optional: without a C++ compiler or GMP's headers
the package installs without it and the pure-Python exact layer does all the work (slower)."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "exactrelu._core",
            sources=["exactrelu/_core.cpp"],
            libraries=["gmp"],
            # -g0: no debug info (Python's own CFLAGS carry -g: 4.4 MB with it, 0.35 MB without)
            extra_compile_args=["-std=c++17", "-O2", "-fvisibility=hidden", "-g0"],
            language="c++",
            optional=True,
        )
    ]
)
