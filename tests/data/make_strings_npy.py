#!/usr/bin/env python3
"""Writes the numpy unicode-string arrays tests/strings.rs reads (numpy only).

    python3 tests/data/make_strings_npy.py
"""

from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
np.save(HERE / "strings_u.npy", np.array([["a", "é"], ["中文", ""], ["tab\there", "x" * 5]]))
np.save(HERE / "strings_u_fortran.npy", np.asfortranarray(np.array([["ab", "c"], ["d", "éf"]])))
