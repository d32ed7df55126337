"""PyInstaller entry point of the frozen `biotag` command line."""
import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()  # `biotag tag --workers N` spawns worker processes
    from biotag.runtime.cli import main

    sys.exit(main())
