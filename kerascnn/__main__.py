"""`python -m kerascnn ...`: the same CLI as the `kerascnn` console script."""
from kerascnn.cli import main

main(prog_name="kerascnn")
