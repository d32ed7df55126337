"""PyInstaller entry point of the frozen `biotag-gui` desktop application."""
import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()
    from biotag.desktop.app import main

    sys.exit(main())
