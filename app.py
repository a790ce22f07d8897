"""The clinician's web app, as the design card names it: `python app.py [--host] [--port] [--model DIR] [--share]`.
Everything lives in heartbeat.serve; this file is only the entry point."""
import sys

from heartbeat.serve import main

if __name__ == "__main__":
    sys.exit(main())
