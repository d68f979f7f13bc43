"""`python -m web.cli`: the `traject` command, as `traject run` starts its children."""
from . import main

main(prog_name="traject")
