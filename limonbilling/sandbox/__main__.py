"""`python -m limonbilling.sandbox [--port 5001]`: serve the NestPay simulator on loopback."""
import argparse

from werkzeug.serving import run_simple

from . import create_simulator

parser = argparse.ArgumentParser(description="Local NestPay 3D_PAY simulator (development only).")
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--port", type=int, default=5001)
arguments = parser.parse_args()
run_simple(arguments.host, arguments.port, create_simulator(), threaded=True)
