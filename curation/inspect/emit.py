"""Print a command's result to stdout, quietly when the reader left (`curate stats OUT |
head`): the command still exits with its own status, without a BrokenPipeError."""

from __future__ import annotations

import os
import sys


def emit(text: str) -> None:
    try:
        print(text, flush=True)
    except BrokenPipeError:
        # Python would report the pipe again when flushing stdout at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
